/* A held paxos resource with the fence of its writes; see lease.h. */
#include "spm/lease.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/strutil.h"
#include "io/fence.h"
#include "metadata/sanlock_fmt.h"

struct keel_lease {
    struct keel_delta *me;
    struct keel_blockdev *dev;
    uint64_t offset;
    char lockspace[KEEL_SANLOCK_NAME_LEN + 1];
    char resource[KEEL_SANLOCK_NAME_LEN + 1];
    struct keel_paxos_owner held;
    struct keel_fence *fence;
};

int keel_lease_acquire(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource, struct keel_lease **ret,
                       struct keel_error *err)
{
    struct keel_lease *l = calloc(1, sizeof(*l));
    char what[160];

    if (l == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    l->me = me;
    l->dev = dev;
    l->offset = offset;
    keel_strlcpy(l->lockspace, lockspace, sizeof(l->lockspace));
    keel_strlcpy(l->resource, resource, sizeof(l->resource));
    snprintf(what, sizeof(what), "lease %s:%s", lockspace, resource);
    l->fence = keel_fence_new(what);
    if (l->fence == NULL) {
        free(l);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    if (keel_paxos_acquire(me, dev, offset, lockspace, resource, &l->held, err) != 0)
        goto fail;
    if (keel_delta_add_fence(me, l->fence, err) != 0) {
        /* The host id ran out while we balloted: the resource is not ours to use. */
        keel_error_prefix(err, "lease %s:%s", lockspace, resource);
        goto fail;
    }
    *ret = l;
    return 0;
fail:
    keel_fence_free(l->fence);
    free(l);
    return -1;
}

struct keel_fence *keel_lease_fence(struct keel_lease *l)
{
    return l->fence;
}

uint64_t keel_lease_lver(const struct keel_lease *l)
{
    return l->held.lver;
}

const char *keel_lease_resource(const struct keel_lease *l)
{
    return l->resource;
}

int keel_lease_check(struct keel_lease *l, struct keel_error *err)
{
    return keel_fence_check(l->fence, err);
}

int keel_lease_release(struct keel_lease *l, struct keel_error *err)
{
    int rc = 0;

    if (l == NULL)
        return 0;
    keel_delta_remove_fence(l->me, l->fence);
    if (keel_delta_valid(l->me, NULL))
        rc = keel_paxos_release(l->me, l->dev, l->offset, l->lockspace, l->resource, &l->held,
                                err);
    keel_fence_free(l->fence);
    free(l);
    return rc;
}

void keel_lease_free(struct keel_lease *l)
{
    if (l == NULL)
        return;
    keel_delta_remove_fence(l->me, l->fence);
    keel_fence_free(l->fence);
    free(l);
}

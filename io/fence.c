/* The write gate of a lease holder; see fence.h. */
#include "io/fence.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/monotime.h"
#include "common/strutil.h"

struct keel_fence {
    pthread_mutex_t lock;
    char what[128];
    bool open;
    uint64_t start_until, valid_until;
    char why[160];          /* why it is shut */
    uint64_t refused;
};

struct keel_fence *keel_fence_new(const char *what)
{
    struct keel_fence *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    pthread_mutex_init(&f->lock, NULL);
    keel_strlcpy(f->what, what, sizeof(f->what));
    keel_strlcpy(f->why, "lease not held", sizeof(f->why));
    return f;
}

void keel_fence_free(struct keel_fence *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Shut an open fence whose deadline passed; lock held. */
static void expire(struct keel_fence *f, uint64_t now)
{
    if (f->open && now >= f->valid_until) {
        f->open = false;
        keel_strlcpy(f->why, "lease deadline passed", sizeof(f->why));
    }
}

void keel_fence_arm(struct keel_fence *f, uint64_t start_until, uint64_t valid_until)
{
    pthread_mutex_lock(&f->lock);
    f->open = true;
    f->start_until = start_until;
    f->valid_until = valid_until;
    expire(f, keel_lease_clock_ns());
    pthread_mutex_unlock(&f->lock);
}

bool keel_fence_extend(struct keel_fence *f, uint64_t start_until, uint64_t valid_until)
{
    bool ok;

    pthread_mutex_lock(&f->lock);
    expire(f, keel_lease_clock_ns());
    ok = f->open;
    if (ok) {
        if (start_until > f->start_until)
            f->start_until = start_until;
        if (valid_until > f->valid_until)
            f->valid_until = valid_until;
    }
    pthread_mutex_unlock(&f->lock);
    return ok;
}

void keel_fence_shut(struct keel_fence *f, const char *why)
{
    pthread_mutex_lock(&f->lock);
    if (f->open) {
        f->open = false;
        keel_strlcpy(f->why, why != NULL ? why : "shut", sizeof(f->why));
    }
    pthread_mutex_unlock(&f->lock);
}

int keel_fence_check(struct keel_fence *f, struct keel_error *err)
{
    uint64_t now = keel_lease_clock_ns();
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    expire(f, now);
    if (!f->open)
        rc = keel_error_set(err, KEEL_E_FENCED, 0, "%s: write refused: %s", f->what, f->why);
    else if (now >= f->start_until)
        rc = keel_error_set(err, KEEL_E_FENCED, 0,
                            "%s: write refused: %" PRIu64 " ms to the lease deadline, less "
                            "than one io timeout", f->what,
                            (f->valid_until - now) / KEEL_NS_PER_MS);
    if (rc != 0)
        f->refused++;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

uint64_t keel_fence_valid_until(struct keel_fence *f)
{
    uint64_t v;

    pthread_mutex_lock(&f->lock);
    expire(f, keel_lease_clock_ns());
    v = f->open ? f->valid_until : 0;
    pthread_mutex_unlock(&f->lock);
    return v;
}

uint64_t keel_fence_refused(struct keel_fence *f)
{
    uint64_t v;

    pthread_mutex_lock(&f->lock);
    v = f->refused;
    pthread_mutex_unlock(&f->lock);
    return v;
}

void keel_fence_count_refused(struct keel_fence *f)
{
    pthread_mutex_lock(&f->lock);
    f->refused++;
    pthread_mutex_unlock(&f->lock);
}

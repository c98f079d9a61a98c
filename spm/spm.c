/* This host as the SPM of a pool; see spm.h. */
#include "spm/spm.h"

#include <stdlib.h>
#include <string.h>

#include "io/fence.h"
#include "spm/lease.h"

struct keel_spm {
    struct keel_lease *lease;
    struct keel_spm_conn *conns;
    size_t nconns;
    struct keel_sd **sds;           /* master first */
    struct keel_journal **journals;
    size_t nsds;
    struct keel_pool_recovery resolver;
};

static void fence_all(struct keel_spm *s, struct keel_fence *f)
{
    for (size_t i = 0; i < s->nconns; i++) {
        if (s->conns[i].dev != NULL)
            keel_blockdev_set_fence(s->conns[i].dev, f);
        if (s->conns[i].fs != NULL)
            keel_fs_set_fence(s->conns[i].fs, f);
    }
}

static void teardown(struct keel_spm *s)
{
    for (size_t i = 0; i < s->nsds; i++)
        keel_journal_close(s->journals[i]);
    if (s->lease != NULL)
        fence_all(s, NULL);
    free(s->journals);
    free(s->sds);
    free(s->conns);
}

int keel_spm_start(const struct keel_spm_config *c, struct keel_spm **ret,
                   struct keel_journal_report *rep, struct keel_error *err)
{
    struct keel_spm *s = calloc(1, sizeof(*s));
    const char *ls = keel_sd_info(c->master)->uuid;

    if (rep != NULL)
        memset(rep, 0, sizeof(*rep));
    if (s == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    s->nsds = c->ndomains + 1;
    s->sds = calloc(s->nsds, sizeof(*s->sds));
    s->journals = calloc(s->nsds, sizeof(*s->journals));
    s->conns = calloc(c->nconns ? c->nconns : 1, sizeof(*s->conns));
    if (s->sds == NULL || s->journals == NULL || s->conns == NULL) {
        teardown(s);
        free(s);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    memcpy(s->conns, c->conns, c->nconns * sizeof(*s->conns));
    s->nconns = c->nconns;
    s->sds[0] = c->master;
    for (size_t i = 0; i < c->ndomains; i++)
        s->sds[i + 1] = c->domains[i];
    s->resolver = c->resolver;
    s->resolver.master = c->master;

    /* 1. The lease; 2. its fence on every metadata connection. */
    if (keel_lease_acquire(c->me, c->leases, c->sdm_offset, ls, "SDM", &s->lease, err) != 0)
        goto fail;
    fence_all(s, keel_lease_fence(s->lease));
    /* 3. The SPM in the pool keys (VDSM's disk backend does the same). */
    if (keel_pool_spm_started(c->master, keel_delta_host_id(c->me), keel_lease_lver(s->lease),
                              err) != 0)
        goto fail;
    /* 4. Every journal recovered before any new work; 5. then installed. */
    for (size_t i = 0; i < s->nsds; i++) {
        struct keel_journal_report r;

        if (keel_journal_open(s->sds[i], keel_lease_lver(s->lease), keel_delta_host_id(c->me),
                              &s->journals[i], err) != 0)
            goto fail;
        if (i == 0)
            keel_journal_set_handler(s->journals[i], keel_pool_recover_record, &s->resolver);
        if (keel_journal_recover(s->journals[i], &r, err) != 0)
            goto fail;
        if (rep != NULL) {
            rep->finished += r.finished;
            rep->rolled_back += r.rolled_back;
            rep->bad += r.bad;
            for (unsigned k = 0; k < r.nlines && rep->nlines < 8; k++)
                memcpy(rep->lines[rep->nlines++], r.lines[k], sizeof(r.lines[k]));
        }
    }
    for (size_t i = 0; i < s->nsds; i++)
        keel_journal_attach(s->journals[i]);
    *ret = s;
    return 0;
fail:
    keel_error_prefix(err, "starting the SPM of pool %s", keel_sd_info(c->master)->pool_uuids);
    teardown(s);
    if (s->lease != NULL)
        keel_lease_release(s->lease, NULL);
    free(s);
    return -1;
}

uint64_t keel_spm_lver(const struct keel_spm *s)
{
    return keel_lease_lver(s->lease);
}

int keel_spm_check(struct keel_spm *s, struct keel_error *err)
{
    return keel_lease_check(s->lease, err);
}

struct keel_journal *keel_spm_journal(struct keel_spm *s, const char *sd_uuid)
{
    for (size_t i = 0; i < s->nsds; i++)
        if (strcmp(keel_sd_info(s->sds[i])->uuid, sd_uuid) == 0)
            return s->journals[i];
    return NULL;
}

int keel_spm_stop(struct keel_spm *s, struct keel_error *err)
{
    int rc;

    teardown(s);
    rc = keel_lease_release(s->lease, err);
    free(s);
    return rc;
}

void keel_spm_abandon(struct keel_spm *s)
{
    teardown(s);
    keel_lease_free(s->lease);
    free(s);
}

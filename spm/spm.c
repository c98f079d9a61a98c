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
    uint64_t host_id;
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
    s->host_id = keel_delta_host_id(c->me);

    /* 1. The lease; 2. its fence on every metadata connection. */
    if (keel_lease_acquire(c->me, c->leases, c->sdm_offset, ls, "SDM", &s->lease, err) != 0)
        goto fail;
    fence_all(s, keel_lease_fence(s->lease));
    s->resolver.fence = keel_lease_fence(s->lease);
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

struct keel_fence *keel_spm_fence(struct keel_spm *s)
{
    return keel_lease_fence(s->lease);
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

static void fence_conn(const struct keel_spm_conn *c, struct keel_fence *f)
{
    if (c->dev != NULL)
        keel_blockdev_set_fence(c->dev, f);
    if (c->fs != NULL)
        keel_fs_set_fence(c->fs, f);
}

/* Take conns [0, n) out of s's list, their fence removed (they may be closed after). */
static void forget_conns(struct keel_spm *s, const struct keel_spm_conn *conns, size_t n)
{
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < s->nconns; i++) {
            if (s->conns[i].dev != conns[k].dev || s->conns[i].fs != conns[k].fs)
                continue;
            fence_conn(&s->conns[i], NULL);
            s->conns[i] = s->conns[--s->nconns];
            break;
        }
}

int keel_spm_add_domain(struct keel_spm *s, struct keel_sd *sd, const struct keel_spm_conn *conns,
                        size_t nconns, struct keel_journal_report *rep, struct keel_error *err)
{
    const char *uuid = keel_sd_info(sd)->uuid;
    struct keel_sd **sds;
    struct keel_journal **js, *j = NULL;
    struct keel_spm_conn *cs;
    struct keel_journal_report r;

    if (keel_spm_journal(s, uuid) != NULL)
        return keel_error_set(err, KEEL_E_EXIST, 0, "storage domain %s: already a domain of "
                              "the SPM", uuid);
    sds = realloc(s->sds, (s->nsds + 1) * sizeof(*sds));
    if (sds != NULL)
        s->sds = sds;
    js = realloc(s->journals, (s->nsds + 1) * sizeof(*js));
    if (js != NULL)
        s->journals = js;
    cs = realloc(s->conns, (s->nconns + nconns + 1) * sizeof(*cs));
    if (cs != NULL)
        s->conns = cs;
    if (sds == NULL || js == NULL || cs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    /* Every connection fenced before the first write (recovery may write on any LUN). */
    for (size_t k = 0; k < nconns; k++) {
        fence_conn(&conns[k], keel_lease_fence(s->lease));
        s->conns[s->nconns++] = conns[k];
    }
    if (keel_spm_check(s, err) != 0 ||
        keel_journal_open(sd, keel_lease_lver(s->lease), s->host_id, &j, err) != 0 ||
        keel_journal_recover(j, rep != NULL ? rep : &r, err) != 0) {
        keel_journal_close(j);
        forget_conns(s, conns, nconns);
        return keel_error_prefix(err, "storage domain %s", uuid);
    }
    keel_journal_attach(j);
    s->sds[s->nsds] = sd;
    s->journals[s->nsds++] = j;
    return 0;
}

void keel_spm_remove_domain(struct keel_spm *s, const char *sd_uuid,
                            const struct keel_spm_conn *conns, size_t nconns)
{
    for (size_t i = 1; i < s->nsds; i++) {
        if (strcmp(keel_sd_info(s->sds[i])->uuid, sd_uuid) != 0)
            continue;
        keel_journal_close(s->journals[i]);
        memmove(&s->sds[i], &s->sds[i + 1], (s->nsds - i - 1) * sizeof(*s->sds));
        memmove(&s->journals[i], &s->journals[i + 1],
                (s->nsds - i - 1) * sizeof(*s->journals));
        s->nsds--;
        break;
    }
    forget_conns(s, conns, nconns);
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

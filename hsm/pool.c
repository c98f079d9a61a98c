/*
 * keeld's storage pool and SPM: the StoragePool.* methods (api.json) and
 * the writer every Volume.* change goes through.  See pool.h.
 *
 *   (none) --connect--> CONNECTED --spmStart--> SPM --spmStop--> CONNECTED
 *   CONNECTED --disconnect--> (none)     SPM: disconnect refused
 *   SPM --lease lost (seen by the next change)--> CONNECTED, Pool.spm "lost"
 *
 * Invariants:
 *   1. Every lockspace member has a lease connection of its own; the
 *      delta lease renews through it and nothing else writes on it but
 *      paxos leases (SDM, volume leases) of that lockspace.
 *   2. While SPM, every metadata write of a pool domain goes through the
 *      SPM's own connection of that domain, fenced by the SDM lease and
 *      journalled; keel_spm_check() passes before each change starts.
 *   3. A member is left only when no SPM and no job needs it (pins == 0).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strutil.h"
#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "hsm/rpc.h"
#include "hsm/storage.h"
#include "spm/lease.h"
#include "spm/paxos.h"
#include "spm/pool.h"
#include "spm/spm.h"

#define MOD "hsm.pool"

/* A lockspace this host joined: its host id in a domain's ids area. */
struct member {
    char sd[KEEL_UUID_LEN + 1];
    struct keel_hsm_own conn;           /* the lease connection */
    struct keel_sd_region ids, leases;
    struct keel_delta *delta;
};

/* A domain of the SPM, on the SPM's own (fenced) connection. */
struct spm_dom {
    char sd[KEEL_UUID_LEN + 1];
    struct keel_hsm_own md;
    bool journalled;                /* a domain of the SPM: journal installed, conns in it */
};

struct keel_hsm_pool {
    struct keel_hsm *h;
    pthread_mutex_t lock;
    char uuid[KEEL_UUID_LEN + 1];       /* the connected pool, "" for none */
    char master[KEEL_UUID_LEN + 1];
    struct member *members[KEEL_POOL_MAX_DOMAINS];
    size_t nmembers;
    unsigned pins;                      /* jobs using a member */
    struct keel_spm *spm;
    struct spm_dom *doms[KEEL_POOL_MAX_DOMAINS]; /* the master first */
    size_t ndoms;
};

static struct keel_delta_timing timing(struct keel_hsm *h)
{
    unsigned n = keel_hsm_cfg(h)->lease_io_timeout;
    struct keel_delta_timing t = { .io_timeout = n ? n : 10 };

    t.slack = 6 * t.io_timeout; /* oVirt's 60 s at N = 10 */
    return t;
}

/* Requests on lease and SPM connections end within N (spm/delta.h). */
static unsigned lease_timeout_ms(struct keel_hsm *h)
{
    return timing(h).io_timeout * 1000;
}

/* ---- lockspaces ---- */

static struct member *member_find(struct keel_hsm_pool *p, const char *sd)
{
    for (size_t i = 0; i < p->nmembers; i++)
        if (strcmp(p->members[i]->sd, sd) == 0)
            return p->members[i];
    return NULL;
}

static void member_free(struct member *m)
{
    if (m == NULL)
        return;
    keel_delta_free(m->delta);
    keel_sd_region_close(&m->leases);
    keel_sd_region_close(&m->ids);
    keel_hsm_own_close(&m->conn);
    free(m);
}

/* Join sd's lockspace: acquire our host id (waits 2N) and start renewing it. */
static int member_join(struct keel_hsm_pool *p, const char *sd, struct member **ret,
                       struct keel_error *err)
{
    struct keel_delta_timing t = timing(p->h);
    struct member *m;
    char host[64], name[48];

    if ((*ret = member_find(p, sd)) != NULL)
        return 0;
    if (p->nmembers == KEEL_POOL_MAX_DOMAINS)
        return keel_error_set(err, KEEL_E_NOSPC, 0, "pool %s: too many domains", p->uuid);
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    keel_strlcpy(m->sd, sd, sizeof(m->sd));
    if (gethostname(host, sizeof(host)) != 0)
        keel_strlcpy(host, "keel", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    /* sanlock's unique name of this host incarnation: its name and id. */
    snprintf(name, sizeof(name), "%.30s.keel%u", host, keel_hsm_cfg(p->h)->host_id);
    if (keel_hsm_own_open(p->h, sd, lease_timeout_ms(p->h), &m->conn, err) != 0 ||
        keel_sd_lock_area_open(m->conn.sd, "ids", &m->ids, err) != 0 ||
        keel_sd_lock_area_open(m->conn.sd, "leases", &m->leases, err) != 0 ||
        keel_delta_acquire(m->ids.dev, m->ids.offset, sd, keel_hsm_cfg(p->h)->host_id, name, &t,
                           &m->delta, err) != 0 ||
        keel_delta_start(m->delta, err) != 0) {
        member_free(m);
        return keel_error_prefix(err, "joining the lockspace of storage domain %s", sd);
    }
    p->members[p->nmembers++] = m;
    keel_log(KEEL_LOG_INFO, MOD, "joined lockspace %s as host %u", sd,
             keel_hsm_cfg(p->h)->host_id);
    *ret = m;
    return 0;
}

static void member_leave(struct member *m)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (keel_delta_release(m->delta, &err) != 0)
        keel_log(KEEL_LOG_WARN, MOD, "leaving lockspace %s: %s", m->sd, err.msg);
    else
        keel_log(KEEL_LOG_INFO, MOD, "left lockspace %s", m->sd);
    member_free(m);
}

static void leave_all(struct keel_hsm_pool *p)
{
    while (p->nmembers > 0)
        member_leave(p->members[--p->nmembers]);
    p->uuid[0] = p->master[0] = '\0';
}

/* ---- the SPM ---- */

static void spm_dom_free(struct spm_dom *d)
{
    if (d == NULL)
        return;
    keel_hsm_own_fence(&d->md, NULL);
    keel_hsm_own_close(&d->md);
    free(d);
}

static struct spm_dom *spm_dom_open(struct keel_hsm_pool *p, const char *sd,
                                    struct keel_error *err)
{
    struct spm_dom *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    keel_strlcpy(d->sd, sd, sizeof(d->sd));
    if (keel_hsm_own_open(p->h, sd, lease_timeout_ms(p->h), &d->md, err) != 0) {
        free(d);
        return NULL;
    }
    return d;
}

static struct spm_dom *spm_dom_find(struct keel_hsm_pool *p, const char *sd)
{
    for (size_t i = 0; i < p->ndoms; i++)
        if (strcmp(p->doms[i]->sd, sd) == 0)
            return p->doms[i];
    return NULL;
}

static void spm_doms_close(struct keel_hsm_pool *p)
{
    while (p->ndoms > 0)
        spm_dom_free(p->doms[--p->ndoms]);
}

/* The SPM's connections as spm/spm.h wants them (n: room for every LUN). */
static size_t spm_conns(struct spm_dom *d, struct keel_spm_conn *c)
{
    size_t n = 0;

    if (d->md.fs != NULL)
        c[n++] = (struct keel_spm_conn){ .fs = d->md.fs };
    for (size_t i = 0; i < d->md.ndevs; i++)
        c[n++] = (struct keel_spm_conn){ .dev = d->md.devs[i] };
    return n;
}

static void emit_spm(struct keel_hsm_pool *p, const char *status, uint64_t lver,
                     const char *error)
{
    keel_hsm_emit(p->h, "Pool.spm", json_pack("{s:s, s:s, s:i, s:I, s:s}", "pool", p->uuid,
                                              "status", status, "host_id",
                                              (int)keel_hsm_cfg(p->h)->host_id, "lver",
                                              (json_int_t)lver, "error", error ? error : ""));
}

static void spm_end(struct keel_hsm_pool *p, bool lost)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t lver = keel_spm_lver(p->spm);

    /* No connection keeps the SDM fence past the lease that owns it (io/fence.h). */
    for (size_t k = 0; k < p->ndoms; k++)
        keel_hsm_own_fence(&p->doms[k]->md, NULL);
    if (lost) {
        keel_spm_abandon(p->spm);
        keel_log(KEEL_LOG_ERROR, MOD, "pool %s: the SPM lease is lost: no longer SPM", p->uuid);
    } else if (keel_spm_stop(p->spm, &err) != 0) {
        keel_log(KEEL_LOG_WARN, MOD, "pool %s: stopping the SPM: %s", p->uuid, err.msg);
    } else {
        keel_log(KEEL_LOG_INFO, MOD, "pool %s: SPM stopped", p->uuid);
    }
    p->spm = NULL;
    spm_doms_close(p);
    emit_spm(p, lost ? "lost" : "free", lver, lost ? "the SPM lease is lost" : NULL);
}

/*
 * 0 while this host may write as SPM (invariant 2).  A fence that is only
 * closing (the host id not renewed for a while: storage slow) refuses the
 * change; a host id lease that is lost ends the SPM for good.
 */
static int spm_alive(struct keel_hsm_pool *p, struct keel_error *err)
{
    struct member *m = member_find(p, p->master);

    if (keel_spm_check(p->spm, err) == 0)
        return 0;
    if (m != NULL && keel_delta_valid(m->delta, NULL))
        return keel_error_prefix(err, "pool %s: SPM", p->uuid);
    spm_end(p, true);
    return keel_error_prefix(err, "pool %s: SPM", p->uuid);
}

/* Recovery opens the domains a pool.* record names on SPM connections. */
static struct keel_sd *resolver_open(void *opaque, struct keel_fence *fence, const char *sd,
                                     struct keel_error *err)
{
    struct keel_hsm_pool *p = opaque;
    struct spm_dom *d = spm_dom_find(p, sd);

    if (d != NULL)
        return d->md.sd;
    if (p->ndoms == KEEL_POOL_MAX_DOMAINS) {
        keel_error_set(err, KEEL_E_NOSPC, 0, "pool %s: too many domains", p->uuid);
        return NULL;
    }
    if ((d = spm_dom_open(p, sd, err)) == NULL)
        return NULL;
    keel_hsm_own_fence(&d->md, fence);
    p->doms[p->ndoms++] = d;
    return d->md.sd;
}

static void resolver_close(void *opaque, struct keel_sd *sd)
{
    (void)opaque;
    (void)sd; /* kept until the SPM stops */
}

/* ---- common checks ---- */

static int need_pool(struct keel_hsm_pool *p, const char *pool, struct keel_error *err)
{
    if (p->uuid[0] == '\0')
        return keel_error_set(err, KEEL_E_NOENT, 0, "pool %s: not connected", pool);
    if (strcmp(p->uuid, pool) != 0)
        return keel_error_set(err, KEEL_E_NOENT, 0, "pool %s: not connected (this host is in "
                              "pool %s)", pool, p->uuid);
    return 0;
}

static int need_spm(struct keel_hsm_pool *p, const char *pool, struct keel_error *err)
{
    if (need_pool(p, pool, err) != 0)
        return -1;
    if (p->spm == NULL)
        return keel_error_set(err, KEEL_E_PERM, 0, "pool %s: this host is not its SPM", pool);
    return spm_alive(p, err);
}

/* The pool keys of master, read through the domain cache. */
static int read_pool(struct keel_hsm *h, const char *master, struct keel_pool_info *info,
                     struct keel_error *err)
{
    struct keel_hsm_dom *d;
    int rc;

    if (keel_hsm_dom_get(h, master, &d, err) != 0)
        return -1;
    rc = keel_pool_info(d->sd, info, err);
    keel_hsm_dom_put(h, d);
    return rc;
}

/* The lockspaces this host joined, each valid while its host id lease holds (pool lock held). */
static json_t *lockspaces_json(struct keel_hsm_pool *p)
{
    json_t *ls = json_array();

    for (size_t k = 0; ls != NULL && k < p->nmembers; k++)
        json_array_append_new(ls, json_pack("{s:s, s:b}", "sd", p->members[k]->sd, "valid",
                                            keel_delta_valid(p->members[k]->delta, NULL)));
    return ls;
}

static json_t *info_json(struct keel_hsm_pool *p, const struct keel_pool_info *i)
{
    json_t *doms = json_array(), *ls = lockspaces_json(p);

    for (size_t k = 0; k < i->ndomains; k++)
        json_array_append_new(doms, json_pack("{s:s, s:s}", "sd", i->domains[k].uuid, "status",
                                              i->domains[k].active ? "active" : "attached"));
    return json_pack("{s:s, s:o, s:s, s:I, s:I, s:I, s:o, s:b, s:b, s:o}", "uuid", i->uuid,
                     "name", keel_rpc_string(i->name), "master", i->master, "master_version",
                     (json_int_t)i->master_version, "spm_id", (json_int_t)i->spm_id, "spm_lver",
                     (json_int_t)i->spm_lver, "domains", doms, "connected",
                     strcmp(p->uuid, i->uuid) == 0, "spm", p->spm != NULL &&
                     strcmp(p->uuid, i->uuid) == 0, "lockspaces", ls);
}

static int result_info(struct keel_hsm_pool *p, const char *master, json_t **result,
                       struct keel_error *err)
{
    struct keel_pool_info i;

    if (read_pool(p->h, master, &i, err) != 0)
        return -1;
    *result = info_json(p, &i);
    return *result ? 0 : keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
}

/* ---- methods ---- */

int keel_hsm_storage_pool_create(struct keel_hsm_call *call,
                                 const struct keel_api_storage_pool_create_params *a,
                                 json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    struct member *m = NULL;
    struct keel_lease *sdm = NULL;
    struct spm_dom *d = NULL;
    bool joined;
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (p->uuid[0] != '\0') {
        keel_error_set(err, KEEL_E_BUSY, 0, "this host is connected to pool %s: disconnect "
                       "it first", p->uuid);
        goto out;
    }
    /*
     * As VDSM does: our host id on the master and its SDM lease for the
     * time of the change, so that no SPM can write there meanwhile.
     */
    joined = member_find(p, a->master) == NULL;
    if (member_join(p, a->master, &m, err) != 0)
        goto out;
    if (keel_lease_acquire(m->delta, m->leases.dev, m->leases.offset +
                           keel_sd_info(m->conn.sd)->alignment, a->master, "SDM", &sdm,
                           err) != 0)
        goto leave;
    if ((d = spm_dom_open(p, a->master, err)) == NULL)
        goto release;
    keel_hsm_own_fence(&d->md, keel_lease_fence(sdm));
    rc = keel_pool_create(d->md.sd, a->pool, a->name, a->has_force && a->force, err);
    spm_dom_free(d);
release:
    if (keel_lease_release(sdm, rc == 0 ? err : NULL) != 0)  /* frees sdm */
        rc = -1;
leave:
    if (joined) {
        p->nmembers--;
        member_leave(m);
    }
    if (rc == 0) {
        keel_log(KEEL_LOG_INFO, MOD, "pool %s created on master %s", a->pool, a->master);
        rc = result_info(p, a->master, result, err);
    }
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_connect(struct keel_hsm_call *call,
                                  const struct keel_api_storage_pool_connect_params *a,
                                  json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    struct keel_pool_info i;
    struct member *m;
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (p->uuid[0] != '\0' && strcmp(p->uuid, a->pool) != 0) {
        keel_error_set(err, KEEL_E_BUSY, 0, "this host is connected to pool %s: disconnect it "
                       "first", p->uuid);
        goto out;
    }
    if (read_pool(call->hsm, a->master, &i, err) != 0)
        goto out;
    if (strcmp(i.uuid, a->pool) != 0) {
        keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s is the master of pool %s, not "
                       "of %s", a->master, i.uuid, a->pool);
        goto out;
    }
    /* The master's lockspace is needed (SPM); an Active domain's is joined when it reads. */
    if (member_join(p, a->master, &m, err) != 0)
        goto out;
    keel_strlcpy(p->uuid, a->pool, sizeof(p->uuid));
    keel_strlcpy(p->master, a->master, sizeof(p->master));
    for (size_t k = 0; k < i.ndomains; k++) {
        struct keel_error e2 = KEEL_ERROR_INIT;

        if (i.domains[k].active && member_join(p, i.domains[k].uuid, &m, &e2) != 0)
            keel_log(KEEL_LOG_WARN, MOD, "pool %s: %s", a->pool, e2.msg);
    }
    keel_log(KEEL_LOG_INFO, MOD, "connected to pool %s (master %s)", a->pool, a->master);
    *result = info_json(p, &i);
    rc = 0;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_disconnect(struct keel_hsm_call *call,
                                     const struct keel_api_storage_pool_disconnect_params *a,
                                     json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_pool(p, a->pool, err) != 0)
        goto out;
    if (p->spm != NULL) {
        keel_error_set(err, KEEL_E_BUSY, 0, "pool %s: this host is its SPM: stop the SPM first",
                       a->pool);
        goto out;
    }
    if (p->pins > 0) {
        keel_error_set(err, KEEL_E_BUSY, 0, "pool %s: %u jobs are using it", a->pool, p->pins);
        goto out;
    }
    leave_all(p);
    keel_log(KEEL_LOG_INFO, MOD, "disconnected from pool %s", a->pool);
    *result = json_object();
    rc = 0;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_get_info(struct keel_hsm_call *call,
                                   const struct keel_api_storage_pool_get_info_params *a,
                                   json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_pool(p, a->pool, err) == 0)
        rc = result_info(p, p->master, result, err);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_spm_start(struct keel_hsm_call *call,
                                    const struct keel_api_storage_pool_spm_start_params *a,
                                    json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    struct keel_pool_info i;
    struct keel_spm_config c = { 0 };
    struct keel_spm_conn *conns = NULL;
    struct keel_sd *doms[KEEL_POOL_MAX_DOMAINS];
    struct keel_journal_report rep;
    struct member *m;
    size_t nconn = 0;
    json_t *lines;
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_pool(p, a->pool, err) != 0)
        goto out;
    if (p->spm != NULL) {
        *result = json_pack("{s:s, s:i, s:I}", "status", "SPM", "host_id",
                            (int)keel_hsm_cfg(call->hsm)->host_id, "lver",
                            (json_int_t)keel_spm_lver(p->spm));
        rc = 0;
        goto out;
    }
    m = member_find(p, p->master);
    if (read_pool(call->hsm, p->master, &i, err) != 0)
        goto out;
    /* The SPM's own connections: the master first, then every Active domain. */
    if ((p->doms[0] = spm_dom_open(p, p->master, err)) == NULL)
        goto out;
    p->doms[0]->journalled = true;
    p->ndoms = 1;
    for (size_t k = 0; k < i.ndomains; k++) {
        struct keel_error e2 = KEEL_ERROR_INIT;
        struct spm_dom *d;

        if (!i.domains[k].active || strcmp(i.domains[k].uuid, p->master) == 0)
            continue;
        /* An Active domain that cannot be reached is no reason to refuse the SPM. */
        if ((d = spm_dom_open(p, i.domains[k].uuid, &e2)) == NULL) {
            keel_log(KEEL_LOG_WARN, MOD, "pool %s: SPM without %s", a->pool, e2.msg);
            continue;
        }
        d->journalled = true;
        p->doms[p->ndoms++] = d;
    }
    for (size_t k = 0; k < p->ndoms; k++)
        nconn += 1 + p->doms[k]->md.ndevs;
    if ((conns = calloc(nconn, sizeof(*conns))) == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto fail;
    }
    nconn = 0;
    for (size_t k = 0; k < p->ndoms; k++) {
        nconn += spm_conns(p->doms[k], conns + nconn);
        if (k > 0)
            doms[k - 1] = p->doms[k]->md.sd;
    }
    c.me = m->delta;
    c.leases = m->leases.dev;
    c.sdm_offset = m->leases.offset + keel_sd_info(m->conn.sd)->alignment;
    c.master = p->doms[0]->md.sd;
    c.domains = doms;
    c.ndomains = p->ndoms - 1;
    c.conns = conns;
    c.nconns = nconn;
    c.resolver = (struct keel_pool_recovery){ .open = resolver_open, .close = resolver_close,
                                              .opaque = p };
    if (keel_spm_start(&c, &p->spm, &rep, err) != 0)
        goto fail;
    free(conns);
    keel_log(KEEL_LOG_INFO, MOD, "pool %s: SPM started, lver %" PRIu64 "; recovery finished %u, "
             "rolled back %u", a->pool, keel_spm_lver(p->spm), rep.finished, rep.rolled_back);
    emit_spm(p, "SPM", keel_spm_lver(p->spm), NULL);
    lines = json_array();
    for (unsigned k = 0; k < rep.nlines; k++)
        json_array_append_new(lines, json_string(rep.lines[k]));
    *result = json_pack("{s:s, s:i, s:I, s:{s:i, s:i, s:i, s:o}}", "status", "SPM", "host_id",
                        (int)keel_hsm_cfg(call->hsm)->host_id, "lver",
                        (json_int_t)keel_spm_lver(p->spm), "recovery", "finished",
                        (int)rep.finished, "rolled_back", (int)rep.rolled_back, "bad",
                        (int)rep.bad, "lines", lines);
    rc = 0;
    goto out;
fail:
    free(conns);
    p->spm = NULL;
    spm_doms_close(p);
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_spm_stop(struct keel_hsm_call *call,
                                   const struct keel_api_storage_pool_spm_stop_params *a,
                                   json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_pool(p, a->pool, err) == 0) {
        if (p->spm != NULL)
            spm_end(p, false);
        *result = json_object();
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int keel_hsm_storage_pool_get_spm_status(
    struct keel_hsm_call *call, const struct keel_api_storage_pool_get_spm_status_params *a,
    json_t **result, struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    struct keel_paxos_owner o;
    struct member *m;
    const char *status, *state = "";
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_pool(p, a->pool, err) != 0)
        goto out;
    if (p->spm != NULL && spm_alive(p, err) != 0)
        err->code = KEEL_OK; /* lost: reported below as it is on storage */
    m = member_find(p, p->master);
    /* As VDSM: the SDM lease's leader says who is SPM, not the pool keys. */
    if (keel_paxos_owner(m->leases.dev, m->leases.offset + keel_sd_info(m->conn.sd)->alignment,
                         p->master, "SDM", &o, err) != 0)
        goto out;
    if (p->spm != NULL) {
        status = "SPM";
    } else if (o.host_id == 0 || o.timestamp == 0) {
        status = "Free";
    } else {
        enum keel_host_state hs = keel_delta_host_state(m->delta, o.host_id);

        state = keel_host_state_name(hs);
        status = hs == KEEL_HOST_DEAD || hs == KEEL_HOST_FREE ? "Free" : "Other";
    }
    *result = json_pack("{s:s, s:I, s:I, s:s}", "status", status, "host_id",
                        (json_int_t)(o.timestamp == 0 ? 0 : o.host_id), "lver",
                        (json_int_t)o.lver, "host_state", state);
    rc = *result ? 0 : keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* A pool domain's change by the SPM, on a connection of its own fenced by the SDM lease. */
static struct spm_dom *spm_open_fenced(struct keel_hsm_pool *p, const char *sd,
                                       struct keel_error *err)
{
    struct spm_dom *d = spm_dom_open(p, sd, err);

    if (d != NULL)
        keel_hsm_own_fence(&d->md, keel_spm_fence(p->spm));
    return d;
}

/* ---- the SPM's domain verbs ---- */

typedef int spm_op_fn(struct keel_hsm_pool *p, const char *sd, bool force,
                      struct keel_error *err);

/* One of the verbs below: as the SPM of pool, op on domain sd, then the pool as it is now. */
static int spm_domain_verb(struct keel_hsm_call *call, const char *pool, const char *sd,
                           bool force, spm_op_fn *op, const char *done, json_t **result,
                           struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(call->hsm);
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (need_spm(p, pool, err) == 0 && op(p, sd, force, err) == 0) {
        keel_log(KEEL_LOG_INFO, MOD, "pool %s: %s %s", pool, done, sd);
        rc = result_info(p, p->master, result, err);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int op_attach(struct keel_hsm_pool *p, const char *sd, bool force, struct keel_error *err)
{
    struct spm_dom *d = spm_open_fenced(p, sd, err);
    int rc;

    if (d == NULL)
        return -1;
    rc = keel_pool_attach(p->doms[0]->md.sd, d->md.sd, force,
                          keel_spm_journal(p->spm, p->master), err);
    spm_dom_free(d);
    return rc;
}

/* The SPM changes an activated domain too: fenced, its journal recovered and installed. */
static int spm_take(struct keel_hsm_pool *p, const char *sd, struct keel_error *err)
{
    struct keel_spm_conn conns[1 + 64];
    struct spm_dom *d = spm_dom_find(p, sd);
    bool opened = false;
    size_t n;

    if (d != NULL && d->journalled)
        return 0;
    if (d == NULL) {  /* else opened by the journal's recovery: it gets its own journal now */
        if (p->ndoms == KEEL_POOL_MAX_DOMAINS)
            return keel_error_set(err, KEEL_E_NOSPC, 0, "pool %s: too many domains", p->uuid);
        if ((d = spm_dom_open(p, sd, err)) == NULL)
            return -1;
        opened = true;
    }
    if (d->md.ndevs + 1 > sizeof(conns) / sizeof(conns[0])) {
        if (opened)
            spm_dom_free(d);
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "storage domain %s: too many LUNs",
                              sd);
    }
    n = spm_conns(d, conns);
    if (keel_spm_add_domain(p->spm, d->md.sd, conns, n, NULL, err) != 0) {
        if (opened)
            spm_dom_free(d);
        return -1;
    }
    d->journalled = true;
    if (opened)
        p->doms[p->ndoms++] = d;
    return 0;
}

static int op_activate(struct keel_hsm_pool *p, const char *sd, bool force,
                       struct keel_error *err)
{
    (void)force;
    if (keel_pool_activate(p->doms[0]->md.sd, sd, err) != 0)
        return -1;
    return spm_take(p, sd, err);
}

static int op_deactivate(struct keel_hsm_pool *p, const char *sd, bool force,
                         struct keel_error *err)
{
    (void)force;
    if (keel_pool_deactivate(p->doms[0]->md.sd, sd, err) != 0)
        return -1;
    for (size_t k = 1; k < p->ndoms; k++) {
        struct keel_spm_conn conns[1 + 64];

        if (strcmp(p->doms[k]->sd, sd) != 0)
            continue;
        if (p->doms[k]->md.ndevs + 1 <= sizeof(conns) / sizeof(conns[0]))
            keel_spm_remove_domain(p->spm, sd, conns, spm_conns(p->doms[k], conns));
        spm_dom_free(p->doms[k]);
        memmove(&p->doms[k], &p->doms[k + 1], (p->ndoms - k - 1) * sizeof(p->doms[0]));
        p->ndoms--;
        break;
    }
    return 0;
}

static int op_detach(struct keel_hsm_pool *p, const char *sd, bool force, struct keel_error *err)
{
    struct spm_dom *d;
    int rc;

    (void)force;
    if (spm_dom_find(p, sd) != NULL && strcmp(sd, p->master) != 0)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s: active in pool %s: "
                              "deactivate it first", sd, p->uuid);
    if ((d = spm_open_fenced(p, sd, err)) == NULL)
        return -1;
    rc = keel_pool_detach(p->doms[0]->md.sd, d->md.sd, keel_spm_journal(p->spm, p->master), err);
    spm_dom_free(d);
    /* Its lockspace is left too, unless a job is using the pool's. */
    for (size_t k = 0; rc == 0 && k < p->nmembers; k++)
        if (strcmp(p->members[k]->sd, sd) == 0 && p->pins == 0) {
            member_leave(p->members[k]);
            p->members[k] = p->members[--p->nmembers];
            break;
        }
    return rc;
}

int keel_hsm_storage_pool_attach_domain(
    struct keel_hsm_call *call, const struct keel_api_storage_pool_attach_domain_params *a,
    json_t **result, struct keel_error *err)
{
    return spm_domain_verb(call, a->pool, a->sd, a->has_force && a->force, op_attach,
                           "attached", result, err);
}

int keel_hsm_storage_pool_activate_domain(
    struct keel_hsm_call *call, const struct keel_api_storage_pool_activate_domain_params *a,
    json_t **result, struct keel_error *err)
{
    return spm_domain_verb(call, a->pool, a->sd, false, op_activate, "activated", result, err);
}

int keel_hsm_storage_pool_deactivate_domain(
    struct keel_hsm_call *call, const struct keel_api_storage_pool_deactivate_domain_params *a,
    json_t **result, struct keel_error *err)
{
    return spm_domain_verb(call, a->pool, a->sd, false, op_deactivate, "deactivated", result,
                           err);
}

int keel_hsm_storage_pool_detach_domain(
    struct keel_hsm_call *call, const struct keel_api_storage_pool_detach_domain_params *a,
    json_t **result, struct keel_error *err)
{
    return spm_domain_verb(call, a->pool, a->sd, false, op_detach, "detached", result, err);
}

/* ---- the writer ---- */

int keel_hsm_writer_get(struct keel_hsm *h, const char *sd_uuid, struct keel_hsm_writer *w,
                        struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(h);
    struct spm_dom *d;

    memset(w, 0, sizeof(*w));
    pthread_mutex_lock(&p->lock);
    if (p->spm != NULL && (d = spm_dom_find(p, sd_uuid)) != NULL && d->journalled) {
        if (spm_alive(p, err) != 0) {
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        w->sd = d->md.sd;
        w->spm = p;
        return 0;
    }
    pthread_mutex_unlock(&p->lock);
    if (keel_hsm_dom_get(h, sd_uuid, &w->d, err) != 0)
        return -1;
    if (keel_hsm_dom_may_change(w->d, err) != 0) {
        keel_hsm_dom_put(h, w->d);
        w->d = NULL;
        return -1;
    }
    w->sd = w->d->sd;
    return 0;
}

void keel_hsm_writer_put(struct keel_hsm *h, struct keel_hsm_writer *w)
{
    if (w->spm != NULL)
        pthread_mutex_unlock(&w->spm->lock);
    if (w->d != NULL)
        keel_hsm_dom_put(h, w->d);
    memset(w, 0, sizeof(*w));
}

/* ---- jobs' lockspaces ---- */

int keel_hsm_pool_lockspace(struct keel_hsm *h, const char *sd_uuid, struct keel_delta **delta,
                            struct keel_error *err)
{
    struct keel_hsm_pool *p = keel_hsm_pool(h);
    struct keel_pool_info i;
    struct member *m = NULL;
    bool in = false;
    int rc = -1;

    pthread_mutex_lock(&p->lock);
    if (p->uuid[0] == '\0') {
        keel_error_set(err, KEEL_E_PERM, 0, "storage domain %s: this host is in no pool",
                       sd_uuid);
        goto out;
    }
    /* Active now (a member may stay joined after a detach while jobs ran). */
    if (read_pool(h, p->master, &i, err) != 0)
        goto out;
    for (size_t k = 0; k < i.ndomains; k++)
        in = in || (strcmp(i.domains[k].uuid, sd_uuid) == 0 && i.domains[k].active);
    if (!in) {
        keel_error_set(err, KEEL_E_PERM, 0, "storage domain %s: not an active domain of pool %s",
                       sd_uuid, p->uuid);
        goto out;
    }
    if ((m = member_find(p, sd_uuid)) == NULL && member_join(p, sd_uuid, &m, err) != 0)
        goto out;
    if (!keel_delta_valid(m->delta, NULL)) {
        keel_error_set(err, KEEL_E_FENCED, 0, "lockspace %s: this host's id is lost", sd_uuid);
        goto out;
    }
    *delta = m->delta;
    p->pins++;
    rc = 0;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void keel_hsm_pool_unpin(struct keel_hsm *h)
{
    struct keel_hsm_pool *p = keel_hsm_pool(h);

    pthread_mutex_lock(&p->lock);
    p->pins--;
    pthread_mutex_unlock(&p->lock);
}

json_t *keel_hsm_pool_stats(struct keel_hsm *h)
{
    struct keel_hsm_pool *p = keel_hsm_pool(h);
    json_t *o;

    pthread_mutex_lock(&p->lock);
    o = json_pack("{s:s, s:b, s:I, s:o}", "uuid", p->uuid, "spm", p->spm != NULL, "spm_lver",
                  (json_int_t)(p->spm ? keel_spm_lver(p->spm) : 0), "lockspaces",
                  lockspaces_json(p));
    pthread_mutex_unlock(&p->lock);
    return o;
}

/* ---- life ---- */

int keel_hsm_pool_new(struct keel_hsm *h, struct keel_hsm_pool **ret, struct keel_error *err)
{
    struct keel_hsm_pool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    p->h = h;
    pthread_mutex_init(&p->lock, NULL);
    *ret = p;
    return 0;
}

void keel_hsm_pool_free(struct keel_hsm_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->spm != NULL)
        spm_end(p, false);
    leave_all(p);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

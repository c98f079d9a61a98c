/*
 * keeld's data jobs and Job.* methods (api.json): Data.copy over the copy
 * engine (volume/copy.h), Data.zero, Data.measure.
 *
 * A copy job, on connections of its own (keel_hsm_own) to both domains:
 *
 *   for each destination volume (base first; one when collapsed):
 *     check: it exists, ILLEGAL, big enough
 *     [pool domain] take its volume lease; fence the destination connection
 *     copy (raw or qcow2) --> flush --> compare with the source (verify)
 *     --> LEGAL (its metadata, under the lease) --> unfence, release
 *
 * Invariant: a destination volume becomes LEGAL only after its bytes were
 * flushed and compared equal to the source, by the holder of its lease;
 * anything else leaves it ILLEGAL.  The source is only read.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/jobs.h"
#include "hsm/pool.h"
#include "hsm/storage.h"
#include "spm/lease.h"
#include "volume/copy.h"
#include "volume/image.h"
#include "volume/vol.h"

#define MOD "hsm.data"
#define MiB (UINT64_C(1) << 20)

/* The source chain's layers, base first, up to `top`, opened on sd. */
struct layers {
    struct keel_chain chain;
    size_t n;                        /* layers used: chain.vols[0..n) */
    struct keel_vol_payload p[KEEL_COPY_MAX_LAYERS];
    struct keel_copy_layer l[KEEL_COPY_MAX_LAYERS];
};

static void layers_close(struct layers *s)
{
    for (size_t i = 0; i < s->n; i++)
        keel_vol_payload_close(&s->p[i]);
    keel_chain_release(&s->chain);
    memset(s, 0, sizeof(*s));
}

static int layer_open(struct keel_sd *sd, const struct keel_vol_entry *e, struct keel_vol_payload *p,
                      struct keel_copy_layer *l, struct keel_error *err)
{
    if (keel_vol_payload_open(sd, e->uuid, p, err) != 0)
        return -1;
    *l = (struct keel_copy_layer){ .dev = p->dev, .offset = p->offset, .size = p->size,
                                   .qcow2 = e->md.format == KEEL_VOL_COW };
    /* A raw volume is its capacity: its LV may be longer (whole extents). */
    if (!l->qcow2 && e->md.capacity < l->size)
        l->size = e->md.capacity;
    return 0;
}

static int layers_open(struct keel_sd *sd, const char *img, const char *top, struct layers *s,
                       struct keel_error *err)
{
    memset(s, 0, sizeof(*s));
    if (keel_image_chain(sd, img, &s->chain, err) != 0)
        return -1;
    for (size_t i = 0; i < s->chain.n; i++) {
        if (i >= KEEL_COPY_MAX_LAYERS) {
            keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "image %s: more than %d layers", img,
                           KEEL_COPY_MAX_LAYERS);
            goto fail;
        }
        if (layer_open(sd, &s->chain.vols[i], &s->p[i], &s->l[i], err) != 0)
            goto fail;
        s->n = i + 1;
        if (top != NULL && strcmp(s->chain.vols[i].uuid, top) == 0)
            return 0;
    }
    if (top == NULL)
        return 0;
    keel_error_set(err, KEEL_E_NOENT, 0, "image %s: volume %s is not in its chain", img, top);
fail:
    layers_close(s);
    return -1;
}

/* Layers [0, n) top first, as the copy engine takes a chain. */
static void top_first(const struct keel_copy_layer *base_first, size_t n,
                      struct keel_copy_layer *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = base_first[n - 1 - i];
}

/* ---- volume leases ---- */

/*
 * With delta (the domain is in a pool): take volume vol's lease and gate
 * every write of own's connections with its fence.  Without: nothing
 * (a domain in no pool has no lockspace).
 */
static int lease_take(struct keel_delta *delta, struct keel_hsm_own *own, const char *sd,
                      const char *vol, struct keel_vol_payload *lp, struct keel_lease **lease,
                      struct keel_error *err)
{
    *lease = NULL;
    if (delta == NULL)
        return 0;
    if (keel_vol_lease_open(own->sd, vol, lp, err) != 0 ||
        keel_lease_acquire(delta, lp->dev, lp->offset, sd, vol, lease, err) != 0)
        return -1;
    keel_hsm_own_fence(own, keel_lease_fence(*lease));
    return 0;
}

static void lease_drop(struct keel_hsm_job *j, struct keel_hsm_own *own,
                       struct keel_vol_payload *lp, struct keel_lease *lease)
{
    if (lease != NULL) {
        struct keel_error e2 = KEEL_ERROR_INIT;

        keel_hsm_own_fence(own, NULL);
        if (keel_lease_release(lease, &e2) != 0)
            keel_log(KEEL_LOG_WARN, MOD, "job %s: %s", keel_hsm_job_id(j), e2.msg);
    }
    keel_vol_payload_close(lp);
}

/* The lockspace of a pool's domain (pinned: unpin when done); NULL for a domain in no pool. */
static int lockspace_of(struct keel_hsm *h, struct keel_sd *sd, const char *sd_uuid,
                        struct keel_delta **delta, bool *pinned, struct keel_error *err)
{
    const char *pool = keel_sd_info(sd)->pool_uuids;

    *delta = NULL;
    *pinned = false;
    if (pool == NULL || pool[0] == '\0')
        return 0;
    if (keel_hsm_pool_lockspace(h, sd_uuid, delta, err) != 0)
        return -1;
    *pinned = true;
    return 0;
}

/* ---- Data.copy ---- */

struct copy_job {
    struct keel_hsm *h;
    char src_sd[KEEL_UUID_LEN + 1], src_img[KEEL_UUID_LEN + 1], src_vol[KEEL_UUID_LEN + 1];
    char dst_sd[KEEL_UUID_LEN + 1], dst_img[KEEL_UUID_LEN + 1], dst_vol[KEEL_UUID_LEN + 1];
    bool collapse, verify;
    /* while running */
    struct keel_hsm_job *job;
    struct keel_hsm_own src, dst;
    struct layers s;
    struct keel_delta *delta;       /* the destination's lockspace, or NULL (no pool) */
    uint64_t done, total;           /* progress over every volume */
};

static void on_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct copy_job *c = opaque;

    (void)total;
    keel_hsm_job_progress(c->job, c->done + done, c->total);
}

/*
 * The destination volume vol: ILLEGAL (a copy destination), in dst_img,
 * over `parent` (the blank UUID for none), of the source's capacity (a
 * bigger one would show an old volume's bytes past the copy).
 */
static int check_dst(struct copy_job *c, const char *vol, const char *parent, uint64_t capacity,
                     struct keel_vol_entry *e, struct keel_error *err)
{
    if (keel_vol_info(c->dst.sd, vol, e, err) != 0)
        return keel_error_prefix(err, "copy destination");
    if (!e->has_md || strcmp(e->image, c->dst_img) != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy destination %s: not a volume of image "
                              "%s", vol, c->dst_img);
    if (e->md.legality != KEEL_VOL_ILLEGAL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy destination %s: LEGAL: the SPM "
                              "creates a copy's destination ILLEGAL", vol);
    if (strcmp(e->md.parent, parent) != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy destination %s: its parent is %s, the "
                              "copy's is %s", vol, e->md.parent, parent);
    if (e->md.capacity != capacity)
        return keel_error_set(err, KEEL_E_RANGE, 0, "copy destination %s: capacity %" PRIu64
                              ", the source's is %" PRIu64, vol, e->md.capacity, capacity);
    return 0;
}

/* The bytes the copy into destination volume k writes (what Data.measure says). */
static int needed(const struct keel_copy_layer *chain, size_t n, bool layer, bool qcow2,
                  uint64_t capacity, uint64_t *need, struct keel_error *err)
{
    if (!qcow2) {
        *need = capacity;
        return 0;
    }
    return layer ? keel_copy_measure_layer_qcow2(&chain[0], need, err)
                 : keel_copy_measure_qcow2(chain, n, need, err);
}

/*
 * The destination's payload, sized for the copy: a file is cut to nothing
 * and grown to what the copy writes (so that it reads as zeroes, even
 * after a failed copy into it); an LV must be big enough already.
 */
static int open_dst(struct copy_job *c, const struct keel_vol_entry *e, uint64_t need,
                    struct keel_vol_payload *p, struct keel_copy_layer *l, struct keel_error *err)
{
    if (layer_open(c->dst.sd, e, p, l, err) != 0)
        return -1;
    if (keel_sd_is_block(c->dst.sd)) {
        if (p->size >= need)
            return 0;
        keel_vol_payload_close(p);
        return keel_error_set(err, KEEL_E_NOSPC, 0, "copy destination %s: its LV holds %" PRIu64
                              " bytes, the copy writes %" PRIu64 " (create it with the "
                              "initial_size Data.measure gives)", e->uuid, p->size, need);
    }
    if (keel_file_truncate(p->file, 0, err) != 0 || keel_file_truncate(p->file, need, err) != 0) {
        keel_vol_payload_close(p);
        return -1;
    }
    keel_vol_payload_close(p);
    return layer_open(c->dst.sd, e, p, l, err);
}

/*
 * Copy src layers [0, n) (base first) into destination volume vol: the
 * whole chain collapsed, or (layer) only layers[n - 1] over its parent.
 * d collects the destination layers (base first) for the verification.
 */
static int copy_volume(struct copy_job *c, const char *vol, size_t n, bool layer,
                       struct layers *d, struct keel_error *err)
{
    const struct keel_vol_entry *top = &c->s.chain.vols[n - 1];
    struct keel_copy_layer chain[KEEL_COPY_MAX_LAYERS];
    struct keel_copy_opts o = { .progress = on_progress, .opaque = c,
                                .cancel = keel_hsm_job_cancel_flag(c->job) };
    struct keel_copy_stats st = { 0 };
    struct keel_vol_payload lp = { 0 };
    struct keel_lease *lease = NULL;
    struct keel_vol_entry e;
    struct keel_copy_dst dst;
    size_t k = d->n;
    bool qcow2;
    uint64_t need;
    int rc = -1;

    const char *parent = layer && n > 1 ? c->s.chain.vols[n - 2].uuid : KEEL_BLANK_UUID;

    if (check_dst(c, vol, parent, top->md.capacity, &e, err) != 0)
        return -1;
    qcow2 = e.md.format == KEEL_VOL_COW;
    top_first(c->s.l, n, chain);
    if (layer && !qcow2 && n > 1)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy destination %s: raw, but its source "
                              "%s is a layer over a parent", vol, top->uuid);
    if (needed(chain, n, layer, qcow2, top->md.capacity, &need, err) != 0)
        return -1;
    /*
     * The lease first: every write below, truncation included, is under its
     * fence; and what was checked is checked again under it (another host
     * may have copied into it meanwhile).
     */
    if (lease_take(c->delta, &c->dst, c->dst_sd, vol, &lp, &lease, err) != 0 ||
        (lease != NULL && check_dst(c, vol, parent, top->md.capacity, &e, err) != 0))
        goto out;
    if (open_dst(c, &e, need, &d->p[k], &d->l[k], err) != 0)
        goto out;
    d->n++;
    dst = (struct keel_copy_dst){ .dev = d->p[k].dev, .offset = d->p[k].offset,
                                  .size = d->p[k].size,
                                  .reads_zero = !keel_sd_is_block(c->dst.sd) };
    if (layer && qcow2) {
        /* The backing format is the destination parent's (a raw base may become qcow2). */
        bool over = n > 1;

        rc = keel_copy_layer_to_qcow2(&chain[0], over ? parent : NULL,
                                      !over ? NULL : d->l[k - 1].qcow2 ? "qcow2" : "raw", &dst,
                                      &o, &st, err);
    } else if (qcow2) {
        rc = keel_copy_to_qcow2(chain, layer ? 1 : n, &dst, &o, &st, err);
    } else {
        rc = keel_copy_to_raw(chain, layer ? 1 : n, &dst, &o, &st, err);
    }
    /* Verified as a guest reads it: the destination chain so far against the source's. */
    if (rc == 0 && c->verify) {
        struct keel_copy_layer back[KEEL_COPY_MAX_LAYERS];

        top_first(d->l, d->n, back);
        rc = keel_copy_compare(chain, n, back, layer ? d->n : 1, top->md.capacity, err);
    }
    if (rc == 0 && __atomic_load_n(o.cancel, __ATOMIC_SEQ_CST))
        rc = keel_error_set(err, KEEL_E_CANCELLED, 0, "copy cancelled before %s was marked "
                            "LEGAL", vol);
    if (rc == 0)
        rc = keel_vol_set_legality(c->dst.sd, vol, KEEL_VOL_LEGAL, err);
    if (rc == 0)
        keel_log(KEEL_LOG_INFO, MOD, "job %s: %s/%s copied to %s/%s (%" PRIu64 " bytes read, "
                 "%" PRIu64 " of data, %" PRIu64 " zeroed, %" PRIu64 " skipped)",
                 keel_hsm_job_id(c->job), c->src_sd, top->uuid, c->dst_sd, vol, st.read, st.data,
                 st.zeroed, st.skipped);
out:
    lease_drop(c->job, &c->dst, &lp, lease);
    c->done += top->md.capacity;
    return rc == 0 ? 0 : keel_error_prefix(err, "copying %s to storage domain %s", top->uuid,
                                           c->dst_sd);
}

static int copy_run(struct keel_hsm_job *j, void *opaque, struct keel_error *err)
{
    struct copy_job *c = opaque;
    struct layers d = { 0 };
    bool pinned = false;
    int rc = -1;

    c->job = j;
    if (keel_hsm_own_open(c->h, c->src_sd, 0, &c->src, err) != 0 ||
        keel_hsm_own_open(c->h, c->dst_sd, 0, &c->dst, err) != 0 ||
        layers_open(c->src.sd, c->src_img, c->src_vol[0] ? c->src_vol : NULL, &c->s, err) != 0)
        goto out;
    /* What is copied must be whole (VDSM refuses an illegal source too). */
    for (size_t i = 0; i < c->s.n; i++)
        if (c->s.chain.vols[i].status != KEEL_VOL_OK) {
            keel_error_set(err, KEEL_E_INVAL, 0, "copy source %s: not LEGAL", c->s.chain.vols[i].uuid);
            goto out;
        }
    if (lockspace_of(c->h, c->dst.sd, c->dst_sd, &c->delta, &pinned, err) != 0)
        goto out;
    for (size_t i = 0; i < c->s.n; i++)
        c->total += c->collapse ? 0 : c->s.chain.vols[i].md.capacity;
    if (c->collapse) {
        c->total = c->s.chain.vols[c->s.n - 1].md.capacity;
        rc = copy_volume(c, c->dst_vol, c->s.n, false, &d, err);
    } else {
        rc = 0;
        for (size_t i = 0; rc == 0 && i < c->s.n; i++)
            rc = copy_volume(c, c->s.chain.vols[i].uuid, i + 1, true, &d, err);
    }
    if (rc == 0)
        keel_hsm_job_progress(j, c->total, c->total);
out:
    for (size_t i = 0; i < d.n; i++)
        keel_vol_payload_close(&d.p[i]);
    layers_close(&c->s);
    if (pinned)
        keel_hsm_pool_unpin(c->h);
    keel_hsm_own_close(&c->dst);
    keel_hsm_own_close(&c->src);
    return rc;
}

int keel_hsm_data_copy(struct keel_hsm_call *call, const struct keel_api_data_copy_params *p,
                       json_t **result, struct keel_error *err)
{
    struct copy_job *c;
    char id[KEEL_UUID_LEN + 1];
    json_t *desc;

    if (p->has_collapse && p->collapse && p->dst_volume == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "a collapsed copy needs dst_volume");
    if (!(p->has_collapse && p->collapse) && p->dst_volume != NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "dst_volume is for a collapsed copy: a "
                              "copy preserving the chain keeps the volume UUIDs");
    if (strcmp(p->src_sd, p->dst_sd) == 0 &&
        strcmp(p->src_image, p->dst_image ? p->dst_image : p->src_image) == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "image %s: source and destination are the "
                              "same image of the same domain", p->src_image);
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    c->h = call->hsm;
    keel_strlcpy(c->src_sd, p->src_sd, sizeof(c->src_sd));
    keel_strlcpy(c->src_img, p->src_image, sizeof(c->src_img));
    keel_strlcpy(c->src_vol, p->src_volume ? p->src_volume : "", sizeof(c->src_vol));
    keel_strlcpy(c->dst_sd, p->dst_sd, sizeof(c->dst_sd));
    keel_strlcpy(c->dst_img, p->dst_image ? p->dst_image : p->src_image, sizeof(c->dst_img));
    keel_strlcpy(c->dst_vol, p->dst_volume ? p->dst_volume : "", sizeof(c->dst_vol));
    c->collapse = p->has_collapse && p->collapse;
    c->verify = !p->has_verify || p->verify;
    desc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:b}", "src_sd", c->src_sd,
                     "src_image", c->src_img, "src_volume", c->src_vol, "dst_sd", c->dst_sd,
                     "dst_image", c->dst_img, "collapse", c->collapse, "dst_volume", c->dst_vol,
                     "verify", c->verify);
    if (keel_hsm_job_start(call->hsm, p->job, "copy", desc, copy_run, c, free, id, err) != 0)
        return -1;
    *result = json_pack("{s:s}", "job", id);
    return 0;
}

/* ---- Data.zero ---- */

struct zero_job {
    struct keel_hsm *h;
    char sd[KEEL_UUID_LEN + 1], vol[KEEL_UUID_LEN + 1];
    bool discard;
};

#define ZERO_STEP (64 * MiB)

static int zero_run(struct keel_hsm_job *j, void *opaque, struct keel_error *err)
{
    struct zero_job *z = opaque;
    struct keel_hsm_own own = { 0 };
    struct keel_vol_payload p = { 0 }, lp = { 0 };
    struct keel_lease *lease = NULL;
    struct keel_delta *delta = NULL;
    bool pinned = false;
    int rc = -1;

    if (keel_hsm_own_open(z->h, z->sd, 0, &own, err) != 0)
        return -1;
    if (lockspace_of(z->h, own.sd, z->sd, &delta, &pinned, err) != 0 ||
        lease_take(delta, &own, z->sd, z->vol, &lp, &lease, err) != 0)
        goto out;
    /* A parent or a template is someone else's data: wiped only once it is nobody's. */
    {
        struct keel_vol_entry e;

        if (keel_vol_info(own.sd, z->vol, &e, err) != 0)
            goto out;
        if (e.has_md && e.md.role != KEEL_VOL_LEAF) {
            keel_error_set(err, KEEL_E_BUSY, 0, "volume %s is a %s volume: others read it",
                           z->vol, keel_vol_role_name(e.md.role));
            goto out;
        }
    }
    /* ILLEGAL before the first zero: a half-wiped volume is never LEGAL. */
    if (keel_vol_set_legality(own.sd, z->vol, KEEL_VOL_ILLEGAL, err) != 0 ||
        keel_vol_payload_open(own.sd, z->vol, &p, err) != 0)
        goto out;
    rc = 0;
    for (uint64_t at = 0; rc == 0 && at < p.size; at += ZERO_STEP) {
        uint64_t len = KEEL_MIN(ZERO_STEP, p.size - at);

        if (__atomic_load_n(keel_hsm_job_cancel_flag(j), __ATOMIC_SEQ_CST))
            rc = keel_error_set(err, KEEL_E_CANCELLED, 0, "zeroing %s cancelled at %" PRIu64
                                " of %" PRIu64 " bytes", z->vol, at, p.size);
        else
            rc = keel_blockdev_write_zeroes(p.dev, p.offset + at, len, err);
        if (rc == 0 && z->discard)
            rc = keel_blockdev_discard(p.dev, p.offset + at, len, err);
        if (rc == 0)
            keel_hsm_job_progress(j, at + len, p.size);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(p.dev, err);
    if (rc == 0)
        keel_log(KEEL_LOG_INFO, MOD, "job %s: volume %s of storage domain %s zeroed (%" PRIu64
                 " bytes)%s", keel_hsm_job_id(j), z->vol, z->sd, p.size,
                 z->discard ? " and discarded" : "");
out:
    keel_vol_payload_close(&p);
    lease_drop(j, &own, &lp, lease);
    if (pinned)
        keel_hsm_pool_unpin(z->h);
    keel_hsm_own_close(&own);
    return rc == 0 ? 0 : keel_error_prefix(err, "zeroing volume %s", z->vol);
}

int keel_hsm_data_zero(struct keel_hsm_call *call, const struct keel_api_data_zero_params *p,
                       json_t **result, struct keel_error *err)
{
    struct zero_job *z = calloc(1, sizeof(*z));
    char id[KEEL_UUID_LEN + 1];

    if (z == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    z->h = call->hsm;
    keel_strlcpy(z->sd, p->sd, sizeof(z->sd));
    keel_strlcpy(z->vol, p->volume, sizeof(z->vol));
    z->discard = p->has_discard && p->discard;
    if (keel_hsm_job_start(call->hsm, p->job, "zero",
                           json_pack("{s:s, s:s, s:b}", "sd", z->sd, "volume", z->vol,
                                     "discard", z->discard),
                           zero_run, z, free, id, err) != 0)
        return -1;
    *result = json_pack("{s:s}", "job", id);
    return 0;
}

/* ---- Data.measure ---- */

int keel_hsm_data_measure(struct keel_hsm_call *call,
                          const struct keel_api_data_measure_params *p, json_t **result,
                          struct keel_error *err)
{
    struct keel_hsm_dom *d;
    struct layers s;
    bool collapse = p->has_collapse && p->collapse;
    bool qcow2 = p->format == NULL || strcmp(p->format, "cow") == 0;
    uint64_t total = 0, bytes;
    json_t *vols = json_array();
    bool opened;
    int rc;

    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0) {
        json_decref(vols);
        return -1;
    }
    rc = layers_open(d->sd, p->image, p->volume, &s, err);
    opened = rc == 0;
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        const struct keel_vol_entry *e = &s.chain.vols[collapse ? s.n - 1 : i];
        struct keel_copy_layer chain[KEEL_COPY_MAX_LAYERS];

        if (collapse && !qcow2) {
            bytes = e->md.capacity;
        } else if (collapse) {
            top_first(s.l, s.n, chain);
            rc = keel_copy_measure_qcow2(chain, s.n, &bytes, err);
        } else if (s.l[i].qcow2) {
            rc = keel_copy_measure_layer_qcow2(&s.l[i], &bytes, err);
        } else {
            bytes = e->md.capacity;
        }
        if (rc == 0) {
            total += bytes;
            json_array_append_new(vols, json_pack("{s:s, s:I}", "volume", e->uuid, "bytes",
                                                  (json_int_t)bytes));
        }
        if (collapse)
            break;
    }
    if (opened)
        layers_close(&s);
    keel_hsm_dom_put(call->hsm, d);
    if (rc != 0) {
        json_decref(vols);
        return -1;
    }
    *result = json_pack("{s:I, s:o}", "bytes", (json_int_t)total, "volumes", vols);
    return 0;
}

/* ---- Job.* ---- */

int keel_hsm_job_list(struct keel_hsm_call *call, const struct keel_api_job_list_params *p,
                      json_t **result, struct keel_error *err)
{
    (void)p;
    (void)err;
    *result = json_pack("{s:o}", "jobs", keel_hsm_jobs_list(call->hsm));
    return 0;
}

int keel_hsm_job_get_status(struct keel_hsm_call *call,
                            const struct keel_api_job_get_status_params *p, json_t **result,
                            struct keel_error *err)
{
    return keel_hsm_jobs_status(call->hsm, p->job, result, err);
}

int keel_hsm_job_cancel(struct keel_hsm_call *call, const struct keel_api_job_cancel_params *p,
                        json_t **result, struct keel_error *err)
{
    if (keel_hsm_jobs_cancel(call->hsm, p->job, err) != 0)
        return -1;
    *result = json_object();
    return 0;
}

int keel_hsm_job_delete(struct keel_hsm_call *call, const struct keel_api_job_delete_params *p,
                        json_t **result, struct keel_error *err)
{
    if (keel_hsm_jobs_delete(call->hsm, p->job, err) != 0)
        return -1;
    *result = json_object();
    return 0;
}

/*
 * The linear backend: segments of other block devices laid end to end
 * (device-mapper's linear target); see linear.h.
 *
 * Invariants:
 *  1. segs[] is sorted by start, without gaps: segs[0].start == 0 and
 *     segs[i + 1].start == segs[i].start + segs[i].len; the device's size
 *     is the end of the last one.  blockdev.c has checked every request
 *     against that size and the block size before lin_submit() sees it.
 *  2. A request accepted by lin_submit() counts in inflight from before
 *     its first part is submitted until after its done() returned, so
 *     that close, which waits for inflight == 0, never frees the backend
 *     under a completion.
 *     BLOCK STATUS is one part, cut at its segment's end: the answer's
 *     run starts at the same offset, so it needs no translation.
 *  3. The parts of a request are submitted in offset order, each request's
 *     parts before the next request's (on one submitting thread): each
 *     device sees the requests in the order they came, which is all the
 *     ordering promise of ioreq.h needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "io/blockdev-priv.h"
#include "io/linear.h"
#include "io/url.h"

/* 2^63: offsets and ends stay far from overflowing uint64_t. */
#define LINEAR_MAX_SIZE (UINT64_C(1) << 63)

struct lin_seg {
    struct keel_blockdev *dev;     /* borrowed */
    uint64_t dev_off;              /* bytes on dev */
    uint64_t start;                /* bytes on the linear device */
    uint64_t len;
};

struct keel_linear {
    size_t nsegs;
    struct lin_seg *segs;
    size_t ndevs;
    struct keel_blockdev **devs;   /* the distinct devices of segs, for FLUSH and fences */
    pthread_mutex_t lock;          /* guards inflight */
    pthread_cond_t idle;           /* inflight dropped to 0 */
    uint64_t inflight;             /* accepted requests not done yet (invariant 2) */
};

/*
 * One request of the caller, cut into parts; the last part to finish
 * completes it.  Atomics, no lock: a part that fails first (the exchange
 * on failed) writes err before its release of remaining, and the last
 * part reads it after its acquire.
 */
struct lin_req {
    struct keel_linear *lin;
    struct keel_ioreq *parent;
    size_t remaining;              /* atomic */
    size_t xfer;                   /* atomic */
    bool failed;                   /* atomic */
    struct keel_error err;         /* of the first part that failed */
    size_t n;
    struct keel_ioreq part[];
};

static void lin_put(struct keel_linear *lin)
{
    pthread_mutex_lock(&lin->lock);
    if (--lin->inflight == 0)
        pthread_cond_broadcast(&lin->idle);
    pthread_mutex_unlock(&lin->lock);
}

static void part_done(struct keel_ioreq *part)
{
    struct lin_req *r = part->opaque;
    struct keel_linear *lin = r->lin;
    struct keel_ioreq *parent;
    bool failed;

    if (part->result != 0 && !__atomic_exchange_n(&r->failed, true, __ATOMIC_ACQ_REL))
        r->err = part->err;
    __atomic_fetch_add(&r->xfer, part->xfer, __ATOMIC_RELAXED);
    if (__atomic_sub_fetch(&r->remaining, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    parent = r->parent;
    failed = __atomic_load_n(&r->failed, __ATOMIC_ACQUIRE);
    parent->result = failed ? -1 : 0;
    parent->xfer = failed ? 0 : __atomic_load_n(&r->xfer, __ATOMIC_RELAXED);
    if (failed)
        parent->err = r->err;
    else
        keel_error_clear(&parent->err);
    free(r);
    parent->done(parent);
    lin_put(lin);
}

/* The segment holding byte `offset` (< the device's size): a binary search. */
static size_t seg_at(const struct keel_linear *lin, uint64_t offset)
{
    size_t lo = 0, hi = lin->nsegs;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (lin->segs[mid].start <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The parts of a data request, from segment `first` on. */
static void fill_parts(const struct keel_linear *lin, const struct keel_ioreq *req, size_t first,
                       struct lin_req *r)
{
    uint64_t at = req->offset, end = req->offset + req->len;

    for (size_t i = 0; i < r->n; i++) {
        const struct lin_seg *s = &lin->segs[first + i];
        uint64_t seg_end = s->start + s->len;
        struct keel_ioreq *p = &r->part[i];

        p->op = req->op;
        p->offset = s->dev_off + (at - s->start);
        p->len = (size_t)(KEEL_MIN(end, seg_end) - at);
        if (req->buf != NULL)
            p->buf = (char *)req->buf + (at - req->offset);
        at += p->len;
    }
}

static int lin_submit(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct keel_linear *lin = be;
    size_t first = 0, n;
    struct lin_req *r;

    if (req->op == KEEL_IO_FLUSH) {
        n = lin->ndevs;
    } else if (req->op == KEEL_IO_BLOCK_STATUS) {
        /* The run at offset ends at its segment's end at the latest: one part. */
        first = seg_at(lin, req->offset);
        n = 1;
    } else {
        uint64_t end = req->offset + req->len;

        first = seg_at(lin, req->offset);
        n = 1;
        while (first + n < lin->nsegs && lin->segs[first + n].start < end)
            n++;
    }
    r = calloc(1, sizeof(*r) + n * sizeof(struct keel_ioreq));
    if (r == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    r->lin = lin;
    r->parent = req;
    r->n = n;
    r->remaining = n;
    if (req->op == KEEL_IO_FLUSH)
        for (size_t i = 0; i < n; i++)
            r->part[i].op = KEEL_IO_FLUSH;
    else
        fill_parts(lin, req, first, r);
    for (size_t i = 0; i < n; i++) {
        r->part[i].done = part_done;
        r->part[i].opaque = r;
    }
    pthread_mutex_lock(&lin->lock);
    lin->inflight++;
    pthread_mutex_unlock(&lin->lock);
    for (size_t i = 0; i < n; i++) {
        struct keel_blockdev *dev = req->op == KEEL_IO_FLUSH ? lin->devs[i]
                                                              : lin->segs[first + i].dev;
        struct keel_ioreq *p = &r->part[i];
        struct keel_error e = KEEL_ERROR_INIT;

        if (keel_blockdev_submit(dev, p, &e) == 0)
            continue;
        if (i == 0) {
            /* Nothing was submitted: the request is refused, done() is not called. */
            keel_error_copy(err, &e);
            free(r);
            lin_put(lin);
            return -1;
        }
        /* Parts before it are on their way: the request is accepted and fails. */
        p->result = -1;
        p->xfer = 0;
        p->err = e;
        part_done(p);
    }
    return 0;
}

static void lin_close(void *be)
{
    struct keel_linear *lin = be;

    if (lin == NULL)
        return;
    pthread_mutex_lock(&lin->lock);
    while (lin->inflight > 0)
        pthread_cond_wait(&lin->idle, &lin->lock);
    pthread_mutex_unlock(&lin->lock);
    pthread_cond_destroy(&lin->idle);
    pthread_mutex_destroy(&lin->lock);
    free(lin->segs);
    free(lin->devs);
    free(lin);
}

static void lin_set_fence(void *be, struct keel_fence *f)
{
    struct keel_linear *lin = be;

    for (size_t i = 0; i < lin->ndevs; i++)
        keel_blockdev_set_fence(lin->devs[i], f);
}

static const struct keel_blockdev_ops lin_ops = {
    .submit = lin_submit,
    .close = lin_close,
    .set_fence = lin_set_fence,
};

/* Check segment i against segment 0's block size and its own device. */
static int check_seg(const char *name, const struct keel_linear_seg *segs, size_t i,
                     struct keel_error *err)
{
    const struct keel_linear_seg *s = &segs[i];
    uint32_t bs, bs0 = keel_blockdev_block_size(segs[0].dev);
    uint64_t dsize;

    if (s->dev == NULL)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: segment %zu has no device", name,
                              i);
    bs = keel_blockdev_block_size(s->dev);
    dsize = keel_blockdev_size(s->dev);
    if (bs != bs0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "%s: segment %zu is on %s, of %" PRIu32 "-byte blocks, "
                              "segment 0 on %s, of %" PRIu32 "-byte blocks",
                              name, i, keel_blockdev_name(s->dev), bs,
                              keel_blockdev_name(segs[0].dev), bs0);
    if (s->len == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: segment %zu is empty", name, i);
    if (s->offset % bs != 0 || s->len % bs != 0)
        return keel_error_set(err, KEEL_E_ALIGN, EINVAL,
                              "%s: segment %zu, %" PRIu64 " bytes at offset %" PRIu64
                              " of %s: not aligned to the %" PRIu32 "-byte block size",
                              name, i, s->len, s->offset, keel_blockdev_name(s->dev), bs);
    if (s->offset > dsize || s->len > dsize - s->offset)
        return keel_error_set(err, KEEL_E_RANGE, EINVAL,
                              "%s: segment %zu, %" PRIu64 " bytes at offset %" PRIu64
                              ": beyond the end of %s (%" PRIu64 " bytes)",
                              name, i, s->len, s->offset, keel_blockdev_name(s->dev), dsize);
    return 0;
}

/* Copy segs into lin, merging a segment into the previous one when it continues it. */
static int build(struct keel_linear *lin, const char *name, const struct keel_linear_seg *segs,
                 size_t nsegs, uint64_t *size, struct keel_error *err)
{
    uint64_t at = 0;

    lin->segs = calloc(nsegs, sizeof(*lin->segs));
    lin->devs = calloc(nsegs, sizeof(*lin->devs));
    if (lin->segs == NULL || lin->devs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < nsegs; i++) {
        const struct keel_linear_seg *s = &segs[i];
        struct lin_seg *prev = lin->nsegs > 0 ? &lin->segs[lin->nsegs - 1] : NULL;
        bool known = false;

        if (check_seg(name, segs, i, err) != 0)
            return -1;
        if (s->len > LINEAR_MAX_SIZE - at)
            return keel_error_set(err, KEEL_E_RANGE, EINVAL, "%s: more than 2^63 bytes", name);
        if (prev != NULL && prev->dev == s->dev && prev->dev_off + prev->len == s->offset) {
            prev->len += s->len;
        } else {
            lin->segs[lin->nsegs++] = (struct lin_seg){ .dev = s->dev, .dev_off = s->offset,
                                                        .start = at, .len = s->len };
        }
        at += s->len;
        for (size_t d = 0; d < lin->ndevs && !known; d++)
            known = lin->devs[d] == s->dev;
        if (!known)
            lin->devs[lin->ndevs++] = s->dev;
    }
    *size = at;
    return 0;
}

int keel_linear_blockdev(const char *name, const struct keel_linear_seg *segs, size_t nsegs,
                         struct keel_blockdev **ret, struct keel_error *err)
{
    char dflt[KEEL_URL_MAX];
    struct keel_blockdev_geom geom = { .native_zeroes = true };
    struct keel_linear *lin;
    uint64_t size = 0;

    if (name == NULL) {
        snprintf(dflt, sizeof(dflt), "linear:%s",
                 nsegs > 0 && segs[0].dev != NULL ? keel_blockdev_name(segs[0].dev) : "");
        name = dflt;
    }
    if (nsegs == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: no segments", name);
    if (segs[0].dev == NULL)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: segment 0 has no device", name);
    lin = calloc(1, sizeof(*lin));
    if (lin == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    pthread_mutex_init(&lin->lock, NULL);
    pthread_cond_init(&lin->idle, NULL);
    if (build(lin, name, segs, nsegs, &size, err) != 0) {
        lin_close(lin);
        return -1;
    }
    geom.size = size;
    geom.block_size = keel_blockdev_block_size(segs[0].dev);
    /*
     * Never split above the segments: each part goes whole to its device,
     * which splits it to what its storage takes and emulates
     * WRITE_ZEROES when it has to.
     */
    geom.max_xfer = (size_t)KEEL_MAX(KEEL_MIN(size, (uint64_t)SIZE_MAX / 2),
                                     (uint64_t)geom.block_size);
    geom.max_zero = geom.max_xfer;
    /* Block status when every segment's device has it (a domain's LUNs alike). */
    geom.block_status = true;
    for (size_t i = 0; i < lin->ndevs; i++)
        geom.block_status = geom.block_status && keel_blockdev_knows_status(lin->devs[i]);
    /* On failure keel_blockdev_new() closes lin. */
    return keel_blockdev_new(name, &lin_ops, lin, &geom, ret, err);
}

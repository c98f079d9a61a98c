/* Keel's copy engine; see copy.h. */
#include "volume/copy.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "volume/qcow2_map.h"

#define DEFAULT_INFLIGHT 16
#define DEFAULT_CHUNK (1u << 20)

/* A resolved range of the guest: data on some device, or zeroes. */
struct seg {
    bool zero;
    struct keel_blockdev *dev;
    uint64_t host, len;
};

struct chain {
    const struct keel_copy_layer *layers;
    size_t n;
    struct keel_qcow2_map *maps[KEEL_COPY_MAX_LAYERS];
    uint64_t vsize[KEEL_COPY_MAX_LAYERS];
};

static void chain_close(struct chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        keel_qcow2_map_close(c->maps[i]);
}

static int chain_open(struct chain *c, const struct keel_copy_layer *layers, size_t n,
                      struct keel_error *err)
{
    memset(c, 0, sizeof(*c));
    if (n == 0 || n > KEEL_COPY_MAX_LAYERS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy: %zu layers (1..%d)", n,
                              KEEL_COPY_MAX_LAYERS);
    c->layers = layers;
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        if (layers[i].qcow2) {
            if (keel_qcow2_map_open(layers[i].dev, layers[i].offset, layers[i].size, &c->maps[i],
                                    err) != 0) {
                chain_close(c);
                return -1;
            }
            c->vsize[i] = keel_qcow2_map_info(c->maps[i])->size;
        } else {
            c->vsize[i] = layers[i].size;
        }
    }
    return 0;
}

/* The range at guest, at most max bytes, from the top layer down. */
static int resolve(struct chain *c, uint64_t guest, uint64_t max, struct seg *s,
                   struct keel_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct keel_copy_layer *l = &c->layers[i];
        struct keel_extent e;

        if (guest >= c->vsize[i])
            break; /* past this layer: zeroes (qemu reads nothing from below either) */
        max = KEEL_MIN(max, c->vsize[i] - guest);
        if (!l->qcow2) {
            *s = (struct seg){ .dev = l->dev, .host = l->offset + guest, .len = max };
            return 0;
        }
        if (keel_qcow2_map_extent(c->maps[i], guest, max, &e, err) != 0)
            return -1;
        if (e.kind == KEEL_EXTENT_DATA) {
            *s = (struct seg){ .dev = l->dev, .host = e.host, .len = e.len };
            return 0;
        }
        if (e.kind == KEEL_EXTENT_ZERO) {
            *s = (struct seg){ .zero = true, .len = e.len };
            return 0;
        }
        max = e.len; /* unallocated here: ask the next layer for this much */
    }
    *s = (struct seg){ .zero = true, .len = max };
    return 0;
}

/* ---- the pipeline ---- */

struct copy;

struct slot {
    struct copy *cp;
    struct keel_ioreq req;
    unsigned char *buf;
    uint64_t guest, len;
    bool busy, reading;
};

struct copy {
    const struct keel_copy_dst *dst;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned active;
    uint64_t done;
    int rc;
    struct keel_error err;
    struct slot *slots;
    unsigned nslots;
};

static void finish_slot(struct slot *sl, int result, const struct keel_error *why)
{
    struct copy *cp = sl->cp;

    pthread_mutex_lock(&cp->lock);
    if (result != 0 && cp->rc == 0) {
        cp->rc = -1;
        cp->err = *why;
    }
    if (result == 0)
        cp->done += sl->len;
    sl->busy = false;
    cp->active--;
    pthread_cond_broadcast(&cp->cond);
    pthread_mutex_unlock(&cp->lock);
}

/* Completion of a read (then write it) or of a write (then the slot is free). */
static void slot_done(struct keel_ioreq *r)
{
    struct slot *sl = r->opaque;
    struct copy *cp = sl->cp;
    struct keel_error e = KEEL_ERROR_INIT;

    if (r->result != 0 || !sl->reading) {
        finish_slot(sl, r->result, &r->err);
        return;
    }
    sl->reading = false;
    memset(&sl->req, 0, sizeof(sl->req));
    sl->req.op = KEEL_IO_WRITE;
    sl->req.offset = cp->dst->offset + sl->guest;
    sl->req.len = (size_t)sl->len;
    sl->req.buf = sl->buf;
    sl->req.done = slot_done;
    sl->req.opaque = sl;
    if (keel_blockdev_submit(cp->dst->dev, &sl->req, &e) != 0)
        finish_slot(sl, -1, &e);
}

static struct slot *free_slot(struct copy *cp)
{
    for (unsigned i = 0; i < cp->nslots; i++)
        if (!cp->slots[i].busy)
            return &cp->slots[i];
    return NULL;
}

static void start(struct copy *cp, struct slot *sl, const struct seg *s)
{
    struct keel_error e = KEEL_ERROR_INIT;
    struct keel_blockdev *dev;

    memset(&sl->req, 0, sizeof(sl->req));
    sl->req.done = slot_done;
    sl->req.opaque = sl;
    sl->req.len = (size_t)s->len;
    if (s->zero) {
        sl->reading = false;
        sl->req.op = KEEL_IO_WRITE_ZEROES;
        sl->req.offset = cp->dst->offset + sl->guest;
        dev = cp->dst->dev;
    } else {
        sl->reading = true;
        sl->req.op = KEEL_IO_READ;
        sl->req.offset = s->host;
        sl->req.buf = sl->buf;
        dev = s->dev;
    }
    if (keel_blockdev_submit(dev, &sl->req, &e) != 0)
        finish_slot(sl, -1, &e);
}

/* Read back the destination and compare it with the source. */
static int verify(struct chain *c, const struct keel_copy_dst *dst, uint64_t size, size_t chunk,
                  struct keel_error *err)
{
    unsigned char *a = keel_aligned_alloc(4096, chunk), *b = keel_aligned_alloc(4096, chunk);
    int rc = 0;

    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (uint64_t pos = 0; pos < size && rc == 0;) {
        struct seg s;

        rc = resolve(c, pos, KEEL_MIN((uint64_t)chunk, size - pos), &s, err);
        if (rc != 0)
            break;
        if (s.zero)
            memset(a, 0, (size_t)s.len);
        else
            rc = keel_blockdev_pread(s.dev, a, (size_t)s.len, s.host, err);
        if (rc == 0)
            rc = keel_blockdev_pread(dst->dev, b, (size_t)s.len, dst->offset + pos, err);
        if (rc == 0 && memcmp(a, b, (size_t)s.len) != 0) {
            size_t i = 0;

            while (a[i] == b[i])
                i++;
            rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "copy verification: the destination "
                                "differs at guest offset %" PRIu64, pos + i);
        }
        pos += s.len;
    }
    free(a);
    free(b);
    return rc;
}

int keel_copy_to_raw(const struct keel_copy_layer *layers, size_t n,
                     const struct keel_copy_dst *dst, const struct keel_copy_opts *opts,
                     struct keel_copy_stats *stats, struct keel_error *err)
{
    struct keel_copy_opts o = opts ? *opts : (struct keel_copy_opts){ 0 };
    struct keel_copy_stats st = { 0 };
    struct copy cp = { .dst = dst };
    struct chain c;
    uint64_t size, pos = 0;
    uint32_t bs = keel_blockdev_block_size(dst->dev);
    int rc = 0;

    if (o.inflight == 0)
        o.inflight = DEFAULT_INFLIGHT;
    if (o.chunk == 0)
        o.chunk = DEFAULT_CHUNK;
    if (chain_open(&c, layers, n, err) != 0)
        return -1;
    size = c.vsize[0];
    st.size = size;
    if (size > dst->size || size % bs != 0 || o.chunk % 4096 != 0) {
        chain_close(&c);
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy: %" PRIu64 " bytes into %" PRIu64
                              " (block size %u, chunk %zu)", size, dst->size, bs, o.chunk);
    }
    pthread_mutex_init(&cp.lock, NULL);
    pthread_cond_init(&cp.cond, NULL);
    cp.nslots = o.inflight;
    cp.slots = calloc(cp.nslots, sizeof(*cp.slots));
    for (unsigned i = 0; cp.slots != NULL && i < cp.nslots; i++) {
        cp.slots[i].cp = &cp;
        cp.slots[i].buf = keel_aligned_alloc(4096, o.chunk);
        if (cp.slots[i].buf == NULL)
            rc = -1;
    }
    if (cp.slots == NULL || rc != 0) {
        rc = keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&cp.lock);
    for (;;) {
        struct slot *sl;
        struct seg s;
        bool cancelled = o.cancel != NULL && __atomic_load_n(o.cancel, __ATOMIC_ACQUIRE);

        if (cp.rc != 0 || cancelled || pos >= size) {
            while (cp.active > 0)
                pthread_cond_wait(&cp.cond, &cp.lock);
            if (cp.rc == 0 && cancelled && pos < size)
                cp.rc = keel_error_set(&cp.err, KEEL_E_CANCELLED, 0, "copy cancelled at %" PRIu64
                                       " of %" PRIu64 " bytes", cp.done, size);
            break;
        }
        while ((sl = free_slot(&cp)) == NULL)
            pthread_cond_wait(&cp.cond, &cp.lock);
        if (o.progress != NULL) {
            uint64_t d = cp.done;

            pthread_mutex_unlock(&cp.lock);
            o.progress(o.opaque, d, size);
            pthread_mutex_lock(&cp.lock);
        }
        if (resolve(&c, pos, KEEL_MIN((uint64_t)o.chunk, size - pos), &s, &cp.err) != 0) {
            cp.rc = -1;
            continue;
        }
        if (s.zero && dst->reads_zero) {
            st.skipped += s.len;
            cp.done += s.len;
            pos += s.len;
            continue;
        }
        if (s.zero)
            st.zeroed += s.len;
        else
            st.data += s.len;
        sl->busy = true;
        sl->guest = pos;
        sl->len = s.len;
        cp.active++;
        pos += s.len;
        pthread_mutex_unlock(&cp.lock);
        start(&cp, sl, &s);
        pthread_mutex_lock(&cp.lock);
    }
    rc = cp.rc;
    if (rc != 0)
        keel_error_copy(err, &cp.err);
    pthread_mutex_unlock(&cp.lock);
    if (rc == 0)
        rc = keel_blockdev_flush(dst->dev, err);
    if (rc == 0 && o.progress != NULL)
        o.progress(o.opaque, size, size);
    if (rc == 0 && o.verify)
        rc = verify(&c, dst, size, o.chunk, err);
out:
    for (unsigned i = 0; cp.slots != NULL && i < cp.nslots; i++)
        free(cp.slots[i].buf);
    free(cp.slots);
    pthread_mutex_destroy(&cp.lock);
    pthread_cond_destroy(&cp.cond);
    chain_close(&c);
    if (stats != NULL)
        *stats = st;
    return rc;
}

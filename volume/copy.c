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
/* A zero range is written (or skipped) in one request of up to this much:
 * one WRITE SAME on a zeroing thin LUN instead of one per chunk. */
#define ZERO_RUN_MAX (UINT64_C(256) << 20)

/*
 * Zero detection in what was read: 4 KiB blocks (aligned in the guest), as
 * qemu-img convert's default -S 4k.  A zero run inside data is written as
 * data unless it is at least ZERO_MIN long: splitting a write into many
 * small ones costs more round trips than the zeroes it saves.
 */
#define ZERO_BLOCK UINT64_C(4096)
#define ZERO_MIN (UINT64_C(64) << 10)

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
    /* A raw layer's last block status: guest [st_from, st_to) is all zeroes or all data. */
    uint64_t st_from[KEEL_COPY_MAX_LAYERS], st_to[KEEL_COPY_MAX_LAYERS];
    bool st_zero[KEEL_COPY_MAX_LAYERS];
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

/*
 * Shorten the raw layer i's range at guest (at most *max bytes) to one run
 * of its storage's block status; *zero: it reads as zeroes, so it need not
 * be read.  Storage that cannot tell leaves it data.
 */
static int raw_status(struct chain *c, size_t i, uint64_t guest, uint64_t *max, bool *zero,
                      struct keel_error *err)
{
    const struct keel_copy_layer *l = &c->layers[i];
    uint32_t bs = keel_blockdev_block_size(l->dev);

    *zero = false;
    if (!keel_blockdev_knows_status(l->dev) || (l->offset + guest) % bs != 0)
        return 0;
    if (guest < c->st_from[i] || guest >= c->st_to[i]) {
        uint64_t len = KEEL_ALIGN_DOWN(c->vsize[i] - guest, bs), run;
        bool z;

        if (len == 0)
            return 0;
        if (keel_blockdev_block_status(l->dev, l->offset + guest, len, &run, &z, err) != 0)
            return -1;
        c->st_from[i] = guest;
        c->st_to[i] = guest + run;
        c->st_zero[i] = z;
    }
    *max = KEEL_MIN(*max, c->st_to[i] - guest);
    *zero = c->st_zero[i];
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
            bool zero;

            if (raw_status(c, i, guest, &max, &zero, err) != 0)
                return -1;
            if (zero)
                *s = (struct seg){ .zero = true, .len = max };
            else
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

/* ---- zero detection ---- */

/* Whether the len bytes at p are all zero: eight words at a time (data differs early). */
static bool all_zero(const unsigned char *p, size_t len)
{
    size_t i = 0;

    for (; i + 64 <= len; i += 64) {
        uint64_t w[8];

        memcpy(w, p + i, sizeof(w));
        if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0)
            return false;
    }
    for (; i < len; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* The end of the detection block holding byte p of a buffer of len bytes read at guest. */
static uint64_t block_end(uint64_t guest, uint64_t p, uint64_t len)
{
    return KEEL_MIN(len, (guest + p) / ZERO_BLOCK * ZERO_BLOCK + ZERO_BLOCK - guest);
}

/* The end of the zero blocks from p on (p itself when the block at p has data). */
static uint64_t zero_end(const unsigned char *buf, uint64_t guest, uint64_t p, uint64_t len)
{
    while (p < len) {
        uint64_t e = block_end(guest, p, len);

        if (!all_zero(buf + p, (size_t)(e - p)))
            break;
        p = e;
    }
    return p;
}

/* ---- the pipeline ---- */

struct copy;

/*
 * A request slot: it reads [guest, guest + len) into buf, then writes it
 * out as runs -- data, or zeroes found in it (skipped or written as zeroes)
 * -- one request at a time from `at`.
 */
struct slot {
    struct copy *cp;
    struct keel_ioreq req;
    unsigned char *buf;
    uint64_t guest, len;
    uint64_t at;               /* writing: buf[at, len) is still to do */
    uint64_t zend;             /* when > at: the zero run at `at` ends here (found already) */
    bool busy, reading;
};

struct copy {
    const struct keel_copy_dst *dst;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned active;
    uint64_t done;
    uint64_t data, zeroed, skipped, read; /* atomics: completions count too */
    int rc;
    struct keel_error err;
    struct slot *slots;
    unsigned nslots;
};

static void count(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

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

/*
 * The run of the slot's buffer at sl->at: zeroes when they are a run worth
 * a request of their own (at least ZERO_MIN, or the whole read), else data
 * up to the next such zero run.  Its end is returned; every block is
 * looked at once.
 */
static uint64_t next_run(struct slot *sl, bool *zero)
{
    uint64_t at = sl->at, len = sl->len, p = at;
    uint64_t e = sl->zend > at ? sl->zend : zero_end(sl->buf, sl->guest, at, len);

    sl->zend = 0;
    *zero = e > at && (e - at >= ZERO_MIN || (at == 0 && e == len));
    if (*zero)
        return e;
    for (;;) {
        if (p > at)
            e = zero_end(sl->buf, sl->guest, p, len);
        if (p > at && e - p >= ZERO_MIN) {
            sl->zend = e; /* the next run */
            return p;
        }
        p = e;        /* a short zero run stays in the data */
        if (p >= len)
            return len;
        p = block_end(sl->guest, p, len); /* the data block at p */
        if (p >= len)
            return len;
    }
}

static void slot_done(struct keel_ioreq *r);

/*
 * Write the slot's next run (data, or zeroes unless the destination reads
 * as zeroes already), or finish the slot when none is left.  Nothing
 * touches the slot after a submit: its completion may already be running.
 */
static void write_next(struct slot *sl)
{
    struct copy *cp = sl->cp;
    struct keel_error e = KEEL_ERROR_INIT;

    for (;;) {
        uint64_t at = sl->at, end;
        bool zero;

        if (at >= sl->len) {
            finish_slot(sl, 0, NULL);
            return;
        }
        end = next_run(sl, &zero);
        sl->at = end;
        if (zero && cp->dst->reads_zero) {
            count(&cp->skipped, end - at);
            continue;
        }
        count(zero ? &cp->zeroed : &cp->data, end - at);
        memset(&sl->req, 0, sizeof(sl->req));
        sl->req.op = zero ? KEEL_IO_WRITE_ZEROES : KEEL_IO_WRITE;
        sl->req.offset = cp->dst->offset + sl->guest + at;
        sl->req.len = (size_t)(end - at);
        sl->req.buf = zero ? NULL : sl->buf + at;
        sl->req.done = slot_done;
        sl->req.opaque = sl;
        if (keel_blockdev_submit(cp->dst->dev, &sl->req, &e) != 0)
            finish_slot(sl, -1, &e);
        return;
    }
}

/* Completion of a read (then write its runs) or of a write (then the next run). */
static void slot_done(struct keel_ioreq *r)
{
    struct slot *sl = r->opaque;

    if (r->result != 0) {
        finish_slot(sl, r->result, &r->err);
        return;
    }
    if (sl->reading) {
        count(&sl->cp->read, r->len);
        sl->reading = false;
        sl->at = 0;
        sl->zend = 0;
    }
    write_next(sl);
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
        sl->at = sl->len; /* one request, no runs after it */
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

/* The guest bytes [pos, pos + len) of chain c into buf; *data (may be NULL): bytes read. */
static int read_guest(struct chain *c, uint64_t pos, uint64_t len, unsigned char *buf,
                      uint64_t *data, struct keel_error *err)
{
    for (uint64_t at = pos; at < pos + len;) {
        struct seg s;

        if (resolve(c, at, pos + len - at, &s, err) != 0)
            return -1;
        if (s.zero)
            memset(buf + (at - pos), 0, (size_t)s.len);
        else if (keel_blockdev_pread(s.dev, buf + (at - pos), (size_t)s.len, s.host, err) != 0)
            return -1;
        else if (data != NULL)
            *data += s.len;
        at += s.len;
    }
    return 0;
}

/* Read the copy back (as the one-layer chain `back`) and compare it with the source. */
static int verify(struct chain *c, struct chain *back, uint64_t size, size_t chunk,
                  struct keel_error *err)
{
    unsigned char *a = keel_aligned_alloc(4096, chunk), *b = keel_aligned_alloc(4096, chunk);
    int rc = 0;

    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (uint64_t pos = 0; pos < size && rc == 0; pos += chunk) {
        uint64_t len = KEEL_MIN((uint64_t)chunk, size - pos);

        rc = read_guest(c, pos, len, a, NULL, err);
        if (rc == 0)
            rc = read_guest(back, pos, len, b, NULL, err);
        if (rc == 0 && memcmp(a, b, (size_t)len) != 0) {
            size_t i = 0;

            while (a[i] == b[i])
                i++;
            rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "copy verification: the destination "
                                "differs at guest offset %" PRIu64, pos + i);
        }
    }
    free(a);
    free(b);
    return rc;
}

/* Verify dst, read as a one-layer chain (raw or qcow2). */
static int verify_dst(struct chain *c, const struct keel_copy_dst *dst, bool qcow2, uint64_t size,
                      size_t chunk, struct keel_error *err)
{
    struct keel_copy_layer l = { .dev = dst->dev, .offset = dst->offset, .size = dst->size,
                                 .qcow2 = qcow2 };
    struct chain back;
    int rc;

    if (chain_open(&back, &l, 1, err) != 0)
        return -1;
    if (!qcow2)
        back.vsize[0] = size;
    rc = verify(c, &back, size, chunk, err);
    chain_close(&back);
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
    if (size > dst->size || size % bs != 0 || o.chunk % 4096 != 0 ||
        dst->offset + dst->size > keel_blockdev_size(dst->dev)) {
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
        {
            /* Not under the lock: resolving may read an L2 table on a device whose I/O
             * thread is waiting for this lock to complete a request of ours. */
            struct keel_error re = KEEL_ERROR_INIT;
            int rr;

            pthread_mutex_unlock(&cp.lock);
            rr = resolve(&c, pos, KEEL_MIN(KEEL_MAX(ZERO_RUN_MAX, (uint64_t)o.chunk), size - pos),
                         &s, &re);
            if (rr == 0 && !s.zero)
                s.len = KEEL_MIN(s.len, (uint64_t)o.chunk); /* data: one buffer's worth */
            pthread_mutex_lock(&cp.lock);
            if (rr != 0) {
                if (cp.rc == 0) {
                    cp.rc = -1;
                    cp.err = re;
                }
                continue;
            }
        }
        if (s.zero && dst->reads_zero) {
            count(&cp.skipped, s.len);
            cp.done += s.len;
            pos += s.len;
            continue;
        }
        if (s.zero)
            count(&cp.zeroed, s.len); /* data is counted as it is written, zeroes found too */
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
    st.data = __atomic_load_n(&cp.data, __ATOMIC_RELAXED);
    st.zeroed = __atomic_load_n(&cp.zeroed, __ATOMIC_RELAXED);
    st.skipped = __atomic_load_n(&cp.skipped, __ATOMIC_RELAXED);
    st.read = __atomic_load_n(&cp.read, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cp.lock);
    if (rc == 0)
        rc = keel_blockdev_flush(dst->dev, err);
    if (rc == 0 && o.progress != NULL)
        o.progress(o.opaque, size, size);
    if (rc == 0 && o.verify)
        rc = verify_dst(&c, dst, false, size, o.chunk, err);
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

/* ---- qcow2 destinations ---- */

#define QCLUSTER (UINT64_C(1) << KEEL_QCOW2_CLUSTER_BITS)
#define L2_ENTRIES (QCLUSTER / 8)
#define RB_ENTRIES (QCLUSTER / 2)   /* 16-bit refcounts per refcount block */
#define OFLAG_COPIED (UINT64_C(1) << 63)

/*
 * The layout of a fresh image holding the chain's data, as qemu-img create
 * starts one and then sequentially: clusters 0 header, 1 refcount table,
 * 2 first refcount block, 3.. L1 table, then (from d0) the L2 tables in
 * use, the data clusters in guest order, and the other refcount blocks.
 * The plan counts every cluster the chain has data in; a data cluster
 * found to hold only zeroes is not written, so the copy ends with fewer
 * data clusters (qplan_settle) and measure is an upper bound.  The L2
 * tables come first because their place must not depend on that count.
 */
struct qplan {
    uint64_t size, nclusters, l1_entries, l1c, d0;
    bool single;               /* one layer as its own image: zero and unallocated kept */
    uint8_t *alloc;            /* bitmap of guest clusters that get data */
    uint8_t *zero;             /* single: clusters that read as zeroes over the backing file */
    uint8_t *l2used;           /* per L1 entry */
    uint64_t ndata, nl2, nrb, total;
};

static uint64_t l2_cluster(const struct qplan *q, uint64_t l2_rank)
{
    return q->d0 + l2_rank;
}

static uint64_t data_cluster(const struct qplan *q, uint64_t rank)
{
    return q->d0 + q->nl2 + rank;
}

static uint64_t rb_cluster(const struct qplan *q, uint64_t r)
{
    return r == 0 ? 2 : q->d0 + q->nl2 + q->ndata + (r - 1);
}

/* nrb and total for ndata data clusters: refcount blocks count themselves too. */
static void qplan_settle(struct qplan *q)
{
    q->nrb = 1;
    for (;;) {
        uint64_t total = q->d0 + q->ndata + q->nl2 + (q->nrb - 1);
        uint64_t need = (total + RB_ENTRIES - 1) / RB_ENTRIES;

        q->total = total;
        if (need <= q->nrb)
            break;
        q->nrb = need;
    }
}

static bool bit(const uint8_t *m, uint64_t i)
{
    return (m[i / 8] >> (i % 8)) & 1;
}

static void set_bit(uint8_t *m, uint64_t i)
{
    m[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void qplan_free(struct qplan *q)
{
    free(q->alloc);
    free(q->zero);
    free(q->l2used);
}

static int qplan_make(struct chain *c, bool single, struct qplan *q, struct keel_error *err)
{
    memset(q, 0, sizeof(*q));
    q->single = single;
    q->size = c->vsize[0];
    if (q->size == 0 || q->size % 512 != 0 || q->size > KEEL_QCOW2_SIZE_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "copy: a virtual size of %" PRIu64
                              " bytes cannot be a qcow2 image", q->size);
    q->nclusters = (q->size + QCLUSTER - 1) / QCLUSTER;
    q->l1_entries = (q->nclusters + L2_ENTRIES - 1) / L2_ENTRIES;
    q->l1c = keel_qcow2_metadata_size(q->size) / QCLUSTER - 3;
    q->d0 = 3 + q->l1c;
    q->alloc = calloc((size_t)(q->nclusters / 8 + 1), 1);
    q->zero = calloc((size_t)(q->nclusters / 8 + 1), 1);
    q->l2used = calloc((size_t)(q->l1_entries / 8 + 1), 1);
    if (q->alloc == NULL || q->zero == NULL || q->l2used == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (single && c->maps[0] != NULL) {
        /* The layer's own clusters, which must be ours: a partial one would hide the backing. */
        if (keel_qcow2_map_info(c->maps[0])->cluster_bits != KEEL_QCOW2_CLUSTER_BITS)
            return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "copy: a layer with %u-byte "
                                  "clusters cannot be copied as its own 64 KiB-cluster image",
                                  1u << keel_qcow2_map_info(c->maps[0])->cluster_bits);
        for (uint64_t pos = 0; pos < q->size;) {
            struct keel_extent e;

            if (keel_qcow2_map_extent(c->maps[0], pos, q->size - pos, &e, err) != 0)
                return -1;
            for (uint64_t k = pos / QCLUSTER; e.kind != KEEL_EXTENT_UNALLOCATED &&
                                              k <= (pos + e.len - 1) / QCLUSTER; k++)
                set_bit(e.kind == KEEL_EXTENT_DATA ? q->alloc : q->zero, k);
            pos += e.len;
        }
    } else {
        for (uint64_t pos = 0; pos < q->size;) {
            struct seg s;

            if (resolve(c, pos, q->size - pos, &s, err) != 0)
                return -1;
            if (!s.zero)
                for (uint64_t k = pos / QCLUSTER; k <= (pos + s.len - 1) / QCLUSTER; k++)
                    set_bit(q->alloc, k);
            pos += s.len;
        }
    }
    for (uint64_t k = 0; k < q->nclusters; k++) {
        if (bit(q->alloc, k))
            q->ndata++;
        if ((bit(q->alloc, k) || bit(q->zero, k)) && !bit(q->l2used, k / L2_ENTRIES)) {
            set_bit(q->l2used, k / L2_ENTRIES);
            q->nl2++;
        }
    }
    qplan_settle(q);
    if (q->nrb > QCLUSTER / 8)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "copy: %" PRIu64 " clusters need more "
                              "than one refcount table cluster", q->total);
    return 0;
}

static int measure(const struct keel_copy_layer *layers, size_t n, bool single, uint64_t *bytes,
                   struct keel_error *err)
{
    struct chain c;
    struct qplan q;
    int rc;

    if (chain_open(&c, layers, n, err) != 0)
        return -1;
    rc = qplan_make(&c, single, &q, err);
    if (rc == 0)
        *bytes = q.total * QCLUSTER;
    qplan_free(&q);
    chain_close(&c);
    return rc;
}

int keel_copy_measure_qcow2(const struct keel_copy_layer *layers, size_t n, uint64_t *bytes,
                            struct keel_error *err)
{
    return measure(layers, n, false, bytes, err);
}

int keel_copy_measure_layer_qcow2(const struct keel_copy_layer *layer, uint64_t *bytes,
                                  struct keel_error *err)
{
    return measure(layer, 1, true, bytes, err);
}

static int put_cluster(const struct keel_copy_dst *dst, uint64_t index, const unsigned char *buf,
                       struct keel_error *err)
{
    return keel_blockdev_pwrite(dst->dev, buf, QCLUSTER, dst->offset + index * QCLUSTER, err);
}

/* The L2 tables as they fill, then the rest of the metadata. */
static int write_l2(const struct keel_copy_dst *dst, const struct qplan *q, uint64_t l2_rank,
                    const unsigned char *l2, struct keel_error *err)
{
    return put_cluster(dst, l2_cluster(q, l2_rank), l2, err);
}

static int write_tail(const struct keel_copy_dst *dst, const struct qplan *q, struct keel_error *err)
{
    unsigned char *b = keel_aligned_alloc(4096, QCLUSTER);
    uint64_t l2_rank = 0;
    int rc = 0;

    if (b == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    /* Refcount blocks: every cluster up to the end is in use once. */
    for (uint64_t r = 0; r < q->nrb && rc == 0; r++) {
        memset(b, 0, QCLUSTER);
        for (uint64_t i = 0; i < RB_ENTRIES && r * RB_ENTRIES + i < q->total; i++)
            put_be16(b + 2 * i, 1);
        rc = put_cluster(dst, rb_cluster(q, r), b, err);
    }
    /* The refcount table. */
    if (rc == 0) {
        memset(b, 0, QCLUSTER);
        for (uint64_t r = 0; r < q->nrb; r++)
            put_be64(b + 8 * r, rb_cluster(q, r) * QCLUSTER);
        rc = put_cluster(dst, 1, b, err);
    }
    /* The L1 table. */
    for (uint64_t c = 0; c < q->l1c && rc == 0; c++) {
        memset(b, 0, QCLUSTER);
        for (uint64_t i = 0; i < L2_ENTRIES && c * L2_ENTRIES + i < q->l1_entries; i++) {
            uint64_t e = c * L2_ENTRIES + i;

            if (bit(q->l2used, e))
                put_be64(b + 8 * i, (l2_cluster(q, l2_rank++) * QCLUSTER) | OFLAG_COPIED);
        }
        rc = put_cluster(dst, 3 + c, b, err);
    }
    free(b);
    return rc;
}

static int copy_qcow2(const struct keel_copy_layer *layers, size_t n, bool single,
                      const char *backing, const char *backing_format,
                      const struct keel_copy_dst *dst, const struct keel_copy_opts *opts,
                      struct keel_copy_stats *stats, struct keel_error *err)
{
    struct keel_copy_opts o = opts ? *opts : (struct keel_copy_opts){ 0 };
    struct keel_copy_stats st = { 0 };
    struct keel_qcow2_opts qo = { 0 };
    unsigned char *buf = NULL, *l2 = NULL;
    bool *zc = NULL;   /* per cluster of the chunk: planned as data, holds only zeroes */
    uint64_t rank = 0, l2_rank = 0, region = UINT64_MAX;
    struct chain c;
    struct qplan q;
    int rc;

    if (o.chunk == 0)
        o.chunk = DEFAULT_CHUNK;
    o.chunk = (size_t)KEEL_ALIGN_UP(o.chunk, QCLUSTER);
    if (chain_open(&c, layers, n, err) != 0)
        return -1;
    rc = qplan_make(&c, single, &q, err);
    if (rc == 0 && dst->offset + dst->size > keel_blockdev_size(dst->dev))
        rc = keel_error_set(err, KEEL_E_INVAL, 0, "copy: the destination range ends past %s",
                            keel_blockdev_name(dst->dev));
    if (rc == 0 && q.total * QCLUSTER > dst->size)
        rc = keel_error_set(err, KEEL_E_NOSPC, 0, "copy: the qcow2 image needs %" PRIu64
                            " bytes, the destination has %" PRIu64, q.total * QCLUSTER,
                            dst->size);
    buf = keel_aligned_alloc(4096, o.chunk);
    l2 = keel_aligned_alloc(4096, QCLUSTER);
    zc = calloc(o.chunk / QCLUSTER, sizeof(*zc));
    if (rc == 0 && (buf == NULL || l2 == NULL || zc == NULL))
        rc = keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    /* No header until the end: an old image's header must not survive a copy cut short. */
    if (rc == 0) {
        memset(l2, 0, QCLUSTER);
        rc = put_cluster(dst, 0, l2, err);
        if (rc == 0)
            rc = keel_blockdev_flush(dst->dev, err);
    }
    st.size = q.size;
    /*
     * The data, in guest order, each allocated cluster to the next host
     * cluster -- but one that holds only zeroes takes none: without a
     * backing file it stays unallocated (reads as zeroes); over one it
     * becomes a zero cluster, which hides the backing file's data there.
     */
    for (uint64_t pos = 0; rc == 0 && pos < q.size; pos += o.chunk) {
        uint64_t len = KEEL_MIN((uint64_t)o.chunk, q.size - pos);
        uint64_t first = pos / QCLUSTER, last = (pos + len - 1) / QCLUSTER;

        if (o.cancel != NULL && __atomic_load_n(o.cancel, __ATOMIC_ACQUIRE)) {
            rc = keel_error_set(err, KEEL_E_CANCELLED, 0, "copy cancelled at %" PRIu64 " of %"
                                PRIu64 " bytes", pos, q.size);
            break;
        }
        if (o.progress != NULL)
            o.progress(o.opaque, pos, q.size);
        memset(buf, 0, o.chunk);
        rc = read_guest(&c, pos, len, buf, &st.read, err);
        for (uint64_t k = first; rc == 0 && k <= last; k++)
            zc[k - first] = bit(q.alloc, k) && all_zero(buf + (k - first) * QCLUSTER, QCLUSTER);
        for (uint64_t k = first; rc == 0 && k <= last; k++) {
            uint64_t r = k / L2_ENTRIES, run = 0;

            if (r != region) {
                if (region != UINT64_MAX && bit(q.l2used, region))
                    rc = write_l2(dst, &q, l2_rank++, l2, err);
                memset(l2, 0, QCLUSTER);
                region = r;
            }
            if (rc == 0 && (bit(q.zero, k) || (zc[k - first] && backing != NULL)))
                put_be64(l2 + 8 * (k % L2_ENTRIES), 1); /* reads as zeroes, backing hidden */
            if (rc != 0 || !bit(q.alloc, k) || zc[k - first])
                continue;
            /* A run of data clusters inside this chunk and this L2 region. */
            while (k + run <= last && bit(q.alloc, k + run) && !zc[k + run - first] &&
                   (k + run) / L2_ENTRIES == r) {
                put_be64(l2 + 8 * ((k + run) % L2_ENTRIES),
                         (data_cluster(&q, rank + run) * QCLUSTER) | OFLAG_COPIED);
                run++;
            }
            rc = keel_blockdev_pwrite(dst->dev, buf + (k - first) * QCLUSTER,
                                      (size_t)(run * QCLUSTER),
                                      dst->offset + data_cluster(&q, rank) * QCLUSTER, err);
            st.data += KEEL_MIN(run * QCLUSTER, q.size - k * QCLUSTER);
            rank += run;
            k += run - 1;
        }
    }
    if (rc == 0 && region != UINT64_MAX && bit(q.l2used, region))
        rc = write_l2(dst, &q, l2_rank++, l2, err);
    /* The data clusters written; fewer than planned when some held only zeroes. */
    q.ndata = rank;
    qplan_settle(&q);
    /* The rest of the metadata, flushed; the header last. */
    if (rc == 0)
        rc = write_tail(dst, &q, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dst->dev, err);
    qo.size = q.size;
    qo.version = 3;
    qo.backing_file = backing;
    qo.backing_format = backing_format;
    if (rc == 0 && (rc = keel_qcow2_header_encode(&qo, l2, err)) == 0)
        rc = put_cluster(dst, 0, l2, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dst->dev, err);
    if (rc == 0 && o.progress != NULL)
        o.progress(o.opaque, q.size, q.size);
    if (rc == 0 && o.verify && !single)
        rc = verify_dst(&c, dst, true, q.size, o.chunk, err);
    st.skipped = q.size - st.data;
    free(buf);
    free(l2);
    free(zc);
    qplan_free(&q);
    chain_close(&c);
    if (stats != NULL)
        *stats = st;
    return rc;
}

int keel_copy_to_qcow2(const struct keel_copy_layer *layers, size_t n,
                       const struct keel_copy_dst *dst, const struct keel_copy_opts *opts,
                       struct keel_copy_stats *stats, struct keel_error *err)
{
    return copy_qcow2(layers, n, false, NULL, NULL, dst, opts, stats, err);
}

int keel_copy_layer_to_qcow2(const struct keel_copy_layer *layer, const char *backing_file,
                             const char *backing_format, const struct keel_copy_dst *dst,
                             const struct keel_copy_opts *opts, struct keel_copy_stats *stats,
                             struct keel_error *err)
{
    return copy_qcow2(layer, 1, true, backing_file, backing_format, dst, opts, stats, err);
}

int keel_copy_compare(const struct keel_copy_layer *a, size_t na, const struct keel_copy_layer *b,
                      size_t nb, uint64_t size, struct keel_error *err)
{
    struct chain ca, cb;
    int rc;

    if (chain_open(&ca, a, na, err) != 0)
        return -1;
    if (chain_open(&cb, b, nb, err) != 0) {
        chain_close(&ca);
        return -1;
    }
    rc = verify(&ca, &cb, size, 1 << 20, err);
    chain_close(&cb);
    chain_close(&ca);
    return rc;
}

/*
 * The faulty backend: its controller (plan, counters, buffered writes, how
 * a crash tears them) and the block device wrapper.  The file-system
 * wrapper is faulty-fs.c.  See faulty.h; the model is SQLite's test6.c.
 *
 * Invariants:
 *  1. Every fault is decided in submit, under ctl->lock, in submission
 *     order (keel_faulty__decide()): the k-th write is the k-th write
 *     submitted since the plan was given, whichever thread completes it.
 *  2. From the crashing write's decision on (crash_write != 0), no request
 *     reaches the inner storage until keel_faulty_arm(); only the crash
 *     itself (keel_faulty__crash(), on the worker) still writes, and a
 *     file's CLOSE still closes.
 *  3. A request failed by an injected fault is not applied, not even in
 *     part; the crashing write is the one exception, torn by plan.tear.
 *  4. Requests the wrapper answers itself (faults, and every request while
 *     the plan buffers writes) run on the one worker thread, in submission
 *     order, and their done() runs there: never inside submit, where a
 *     caller could hold a lock that done() takes.
 *  5. The pending list is touched only on the worker, or after it stopped
 *     (close); without buffer_writes it is always empty, so that a
 *     crashing namespace call may run keel_faulty__crash() on the caller's
 *     thread.  Its writes are applied in list order, so of two overlapping
 *     writes the later one wins, as on real storage (ioreq.h).
 *  6. After a crash, an arm or a close the pending list is empty: its
 *     writes were torn into the inner storage, lost, or applied.
 *
 * States of a controller (crash_write == 0 is ARMED):
 *
 *        keel_faulty_blockdev(), keel_faulty_fs()
 *                       |
 *                       v
 *   +-------------->  ARMED  ---- write number crash_at submitted ---->  CRASHED
 *   |                 |   ^      keel_faulty__decide(); the worker runs      |
 *   |                 +---+      keel_faulty__crash(): the pending writes    |
 *   |     keel_faulty_arm(): pending     and the crashing one, by plan.tear  |
 *   |     writes applied, counters reset                                     |
 *   +------------------------------ keel_faulty_arm() -----------------------+
 *
 * In CRASHED every request fails with KEEL_E_FAULT (KEEL_FA_DEAD).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/blockdev-priv.h"
#include "io/faulty.h"
#include "io/iosync.h"
#include "io/url.h"
#include "io/workers.h"

#define SECTOR 512

struct keel_faulty {
    pthread_mutex_t lock;          /* guards the fields down to rng */
    struct keel_fault_plan plan;
    unsigned writes;               /* writes submitted since the plan was given */
    unsigned eio_seen;             /* requests that matched eio_ops */
    unsigned reads_seen;           /* READs that reached the short-read stage */
    unsigned crash_write;          /* 0 while ARMED, else the crashing write's number */
    uint64_t rng;                  /* splitmix64 state, seeded by plan.seed */

    /* Worker only (invariant 5). */
    struct keel_fault_pending *head, *tail;
    size_t npending;

    struct keel_workers *worker;   /* one thread: submission order */
    void (*run)(void *be, struct keel_ioreq *req);
    const struct keel_fault_backend *ops;
    void *be;
    size_t unit;                   /* bytes of a torn piece */
    char name[KEEL_URL_MAX];
};

_Static_assert(sizeof(struct keel_fault_tag) <= sizeof(((struct keel_ioreq_priv *)0)->be_scratch),
               "be_scratch too small");

/* ---- the controller ---- */

static void set_plan(struct keel_faulty *ctl, const struct keel_fault_plan *plan)
{
    static const struct keel_fault_plan unarmed;

    ctl->plan = plan != NULL ? *plan : unarmed;
    if ((unsigned)ctl->plan.tear > KEEL_TEAR_RANDOM)
        ctl->plan.tear = KEEL_TEAR_DROP;
    ctl->writes = 0;
    ctl->eio_seen = 0;
    ctl->reads_seen = 0;
    ctl->crash_write = 0;
    ctl->rng = ctl->plan.seed;
}

int keel_faulty__check_plan(const char *name, const struct keel_fault_plan *plan,
                            struct keel_error *err)
{
    if (plan != NULL && (unsigned)plan->tear > KEEL_TEAR_RANDOM)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: unknown tear mode %u", name,
                              (unsigned)plan->tear);
    return 0;
}

/*
 * In a crash, an arm or a close errors of the inner storage are not
 * reported: the crash is, and arm and close have no way to.
 */
static void apply_range(struct keel_faulty *ctl, const struct keel_fault_pending *p, size_t from,
                        size_t to)
{
    struct keel_error e = KEEL_ERROR_INIT;

    if (to > from)
        ctl->ops->apply(ctl->be, p, from, to - from, &e);
}

static void apply_whole(struct keel_faulty *ctl, const struct keel_fault_pending *p)
{
    struct keel_error e = KEEL_ERROR_INIT;

    ctl->ops->apply(ctl->be, p, 0, p->len, &e);
}

/* Apply every pending write (errors ignored) and empty the list. */
static void apply_all(struct keel_faulty *ctl)
{
    while (ctl->head != NULL) {
        struct keel_fault_pending *p = ctl->head;

        ctl->head = p->next;
        ctl->npending--;
        apply_whole(ctl, p);
        if (ctl->ops->forget != NULL)
            ctl->ops->forget(ctl->be, p);
        free(p);
    }
    ctl->tail = NULL;
}

/* The worker: the controller's own requests, then the wrapper's. */
static void ctl_run(void *arg, struct keel_ioreq *req)
{
    struct keel_faulty *ctl = arg;

    if (keel_faulty__tag(req)->act != KEEL_FA_APPLY) {
        ctl->run(ctl->be, req);
        return;
    }
    apply_all(ctl);
    keel_faulty__complete(req, 0, 0, NULL);
}

struct keel_faulty *keel_faulty__new(const char *name, const struct keel_fault_backend *ops,
                                     void *be, size_t unit, const struct keel_fault_plan *plan,
                                     void (*run)(void *be, struct keel_ioreq *req))
{
    struct keel_faulty *ctl = calloc(1, sizeof(*ctl));

    if (ctl == NULL)
        return NULL;
    pthread_mutex_init(&ctl->lock, NULL);
    set_plan(ctl, plan);
    ctl->ops = ops;
    ctl->be = be;
    ctl->unit = unit;
    keel_strlcpy(ctl->name, name, sizeof(ctl->name));
    ctl->run = run;
    ctl->worker = keel_workers_new(1, ctl_run, ctl);
    if (ctl->worker == NULL) {
        keel_faulty__free(ctl);
        return NULL;
    }
    return ctl;
}

void keel_faulty__stop(struct keel_faulty *ctl)
{
    if (ctl == NULL)
        return;
    keel_workers_free(ctl->worker);
    ctl->worker = NULL;
    /* A clean close: what was written reaches the storage (invariant 6). */
    apply_all(ctl);
}

void keel_faulty__free(struct keel_faulty *ctl)
{
    if (ctl == NULL)
        return;
    keel_workers_free(ctl->worker);
    pthread_mutex_destroy(&ctl->lock);
    free(ctl);
}

const char *keel_faulty__name(const struct keel_faulty *ctl)
{
    return ctl->name;
}

bool keel_faulty__buffered(struct keel_faulty *ctl)
{
    bool b;

    pthread_mutex_lock(&ctl->lock);
    b = ctl->plan.buffer_writes;
    pthread_mutex_unlock(&ctl->lock);
    return b;
}

void keel_faulty_arm(struct keel_faulty *ctl, const struct keel_fault_plan *plan)
{
    struct keel_ioreq req = { .op = KEEL_IO_FLUSH };
    struct keel_fault_tag t = { .act = KEEL_FA_APPLY };

    /* Through the worker, so that the list is touched there only (invariant 5). */
    keel_faulty__run_on_worker(ctl, &req, &t, NULL);
    pthread_mutex_lock(&ctl->lock);
    set_plan(ctl, plan);
    pthread_mutex_unlock(&ctl->lock);
}

unsigned keel_faulty_writes(const struct keel_faulty *ctl)
{
    struct keel_faulty *c = (struct keel_faulty *)ctl; /* the lock only */
    unsigned n;

    pthread_mutex_lock(&c->lock);
    n = c->writes;
    pthread_mutex_unlock(&c->lock);
    return n;
}

bool keel_faulty_crashed(const struct keel_faulty *ctl)
{
    struct keel_faulty *c = (struct keel_faulty *)ctl;
    bool crashed;

    pthread_mutex_lock(&c->lock);
    crashed = c->crash_write != 0;
    pthread_mutex_unlock(&c->lock);
    return crashed;
}

static bool op_matches(unsigned mask, enum keel_io_op op)
{
    if (mask == 0)
        return true;
    return (unsigned)op < 32 && (mask & (1u << op)) != 0;
}

/* The three stages of faulty.h, in order, after the CRASHED state; ctl->lock held. */
static void decide_locked(struct keel_faulty *ctl, enum keel_io_op op, bool is_write,
                          struct keel_fault_tag *t)
{
    const struct keel_fault_plan *p = &ctl->plan;

    if (ctl->crash_write != 0) {
        t->act = KEEL_FA_DEAD;
        t->write_no = ctl->crash_write;
    } else if (p->eio_at != 0 && op_matches(p->eio_ops, op) && ++ctl->eio_seen == p->eio_at) {
        t->act = KEEL_FA_EIO;
    } else if (op == KEEL_IO_READ && p->short_read_at != 0 &&
               ++ctl->reads_seen == p->short_read_at) {
        t->act = KEEL_FA_SHORT;
    } else if (is_write && ++ctl->writes == p->crash_at) {
        /* ARMED -> CRASHED: every later decision is DEAD (invariant 2). */
        t->act = KEEL_FA_CRASH;
        t->write_no = ctl->writes;
        ctl->crash_write = ctl->writes;
    }
}

void keel_faulty__decide(struct keel_faulty *ctl, enum keel_io_op op, bool is_write,
                         struct keel_fault_tag *t)
{
    *t = (struct keel_fault_tag){ .act = KEEL_FA_PASS };
    pthread_mutex_lock(&ctl->lock);
    t->buffered = ctl->plan.buffer_writes;
    decide_locked(ctl, op, is_write, t);
    pthread_mutex_unlock(&ctl->lock);
}

struct keel_fault_tag *keel_faulty__tag(struct keel_ioreq *req)
{
    return (struct keel_fault_tag *)(void *)req->priv.be_scratch;
}

void keel_faulty__push(struct keel_faulty *ctl, struct keel_ioreq *req,
                       const struct keel_fault_tag *t)
{
    *keel_faulty__tag(req) = *t;
    keel_workers_push(ctl->worker, req);
}

int keel_faulty__run_on_worker(struct keel_faulty *ctl, struct keel_ioreq *req,
                               const struct keel_fault_tag *t, struct keel_error *err)
{
    struct keel_iosync s;

    keel_iosync_init(&s);
    keel_iosync_prepare(&s, req);
    keel_faulty__push(ctl, req, t);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    if (req->result != 0)
        return keel_error_copy(err, &req->err);
    return 0;
}

void keel_faulty__complete(struct keel_ioreq *req, int rc, size_t xfer,
                           const struct keel_error *e)
{
    req->result = rc == 0 ? 0 : -1;
    req->xfer = xfer;
    if (rc == 0)
        keel_error_clear(&req->err);
    else
        req->err = *e;
    /* Last: the request belongs to the caller again. */
    req->done(req);
}

int keel_faulty__fail(struct keel_faulty *ctl, const struct keel_fault_tag *t,
                      struct keel_error *err)
{
    switch (t->act) {
    case KEEL_FA_EIO:
        return keel_error_set(err, KEEL_E_IO, EIO, "%s: injected I/O error", ctl->name);
    case KEEL_FA_CRASH:
        return keel_error_set(err, KEEL_E_FAULT, EIO, "%s: injected crash at write %u",
                              ctl->name, t->write_no);
    case KEEL_FA_DEAD:
        return keel_error_set(err, KEEL_E_FAULT, EIO,
                              "%s: dead after the injected crash at write %u", ctl->name,
                              t->write_no);
    default:
        return keel_error_set(err, KEEL_E_INTERNAL, EINVAL, "%s: no fault to report",
                              ctl->name);
    }
}

/* ---- tearing ---- */

/* splitmix64: small, and the same sequence on every platform for a seed. */
static bool coin(struct keel_faulty *ctl)
{
    uint64_t z;

    pthread_mutex_lock(&ctl->lock);
    z = (ctl->rng += 0x9e3779b97f4a7c15ull);
    pthread_mutex_unlock(&ctl->lock);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (z >> 63) != 0;
}

bool keel_faulty__crash_applies(struct keel_faulty *ctl)
{
    enum keel_tear tear;

    pthread_mutex_lock(&ctl->lock);
    tear = ctl->plan.tear;
    pthread_mutex_unlock(&ctl->lock);
    return tear == KEEL_TEAR_FULL || (tear == KEEL_TEAR_RANDOM && coin(ctl));
}

/*
 * Apply the pieces of p that survive tear.  Runs of surviving pieces go to
 * the storage as one write each, so PREFIX and FULL cost one write.
 */
static void apply_torn(struct keel_faulty *ctl, const struct keel_fault_pending *p,
                       enum keel_tear tear)
{
    size_t n = (p->len + ctl->unit - 1) / ctl->unit;
    size_t start = 0;
    bool in_run = false;

    if (p->op == KEEL_IO_TRUNCATE) {
        /* No pieces: it happens or it does not. */
        if (tear == KEEL_TEAR_FULL || (tear == KEEL_TEAR_RANDOM && coin(ctl)))
            apply_whole(ctl, p);
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        bool keep = false;

        if (i < n) {
            switch (tear) {
            case KEEL_TEAR_DROP: keep = false; break;
            case KEEL_TEAR_FULL: keep = true; break;
            case KEEL_TEAR_PREFIX: keep = i < n / 2; break;
            case KEEL_TEAR_RANDOM: keep = coin(ctl); break;
            }
        }
        if (keep && !in_run) {
            start = i;
            in_run = true;
        } else if (!keep && in_run) {
            apply_range(ctl, p, start * ctl->unit, KEEL_MIN(i * ctl->unit, p->len));
            in_run = false;
        }
    }
}

void keel_faulty__crash(struct keel_faulty *ctl, const struct keel_fault_pending *last,
                        bool buffered)
{
    size_t n = ctl->npending + (last != NULL);
    size_t i = 0;
    enum keel_tear tear;

    pthread_mutex_lock(&ctl->lock);
    tear = ctl->plan.tear;
    pthread_mutex_unlock(&ctl->lock);
    /* The list first, then the crashing write: the order they were written in. */
    for (;;) {
        struct keel_fault_pending *p = ctl->head;
        const struct keel_fault_pending *cur = p != NULL ? p : last;

        if (cur == NULL)
            break;
        if (buffered && tear == KEEL_TEAR_PREFIX) {
            /* Whole writes: the first n/2 made it to the platter. */
            if (i < n / 2)
                apply_whole(ctl, cur);
        } else {
            apply_torn(ctl, cur, tear);
        }
        i++;
        if (p == NULL)
            break;
        ctl->head = p->next;
        ctl->npending--;
        if (ctl->ops->forget != NULL)
            ctl->ops->forget(ctl->be, p);
        free(p);
    }
    ctl->head = ctl->tail = NULL;
}

/* ---- buffered writes ---- */

struct keel_fault_pending *keel_faulty__pending_add(struct keel_faulty *ctl, enum keel_io_op op,
                                                    uint64_t offset, size_t len,
                                                    const void *buf, void *file)
{
    size_t copy = op == KEEL_IO_WRITE ? len : 0;
    struct keel_fault_pending *p = malloc(sizeof(*p) + copy);

    if (p == NULL)
        return NULL;
    p->next = NULL;
    p->op = op;
    p->offset = offset;
    p->len = op == KEEL_IO_TRUNCATE ? 0 : len;
    p->file = file;
    p->buf = copy > 0 ? p->data : NULL;
    if (copy > 0)
        memcpy(p->data, buf, copy);
    if (ctl->tail != NULL)
        ctl->tail->next = p;
    else
        ctl->head = p;
    ctl->tail = p;
    ctl->npending++;
    return p;
}

static bool matches(keel_fault_match_fn *match, const void *arg, const struct keel_fault_pending *p)
{
    return match == NULL || match(p, arg);
}

int keel_faulty__flush(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                       struct keel_error *err)
{
    struct keel_fault_pending **link = &ctl->head, *prev = NULL;

    while (*link != NULL) {
        struct keel_fault_pending *p = *link;

        if (!matches(match, arg, p)) {
            prev = p;
            link = &p->next;
            continue;
        }
        /* A failed write stays, with those after it: a later flush retries. */
        if (ctl->ops->apply(ctl->be, p, 0, p->len, err) != 0)
            return -1;
        *link = p->next;
        if (ctl->tail == p)
            ctl->tail = prev;
        ctl->npending--;
        if (ctl->ops->forget != NULL)
            ctl->ops->forget(ctl->be, p);
        free(p);
    }
    return 0;
}

/* [lo, hi) of the read window [off, off + len) that [a, b) covers, as buffer indexes. */
static bool overlap(uint64_t off, size_t len, uint64_t a, uint64_t b, size_t *lo, size_t *hi)
{
    uint64_t s = KEEL_MAX(off, a), e = KEEL_MIN(off + len, b);

    if (s >= e)
        return false;
    *lo = (size_t)(s - off);
    *hi = (size_t)(e - off);
    return true;
}

size_t keel_faulty__overlay(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                            void *buf, uint64_t offset, size_t len, size_t got)
{
    unsigned char *b = buf;
    /*
     * The size of the file as far as this read can tell: offset + got is
     * exact after a short read, and "at least offset + len" otherwise, which
     * gives the same answer once clipped to the window.
     */
    uint64_t size = offset + got;

    memset(b + got, 0, len - got);
    for (const struct keel_fault_pending *p = ctl->head; p != NULL; p = p->next) {
        size_t lo, hi;

        if (!matches(match, arg, p))
            continue;
        switch (p->op) {
        case KEEL_IO_WRITE:
            if (overlap(offset, len, p->offset, p->offset + p->len, &lo, &hi))
                memcpy(b + lo, p->buf + (offset + lo - p->offset), hi - lo);
            size = KEEL_MAX(size, p->offset + p->len);
            break;
        case KEEL_IO_WRITE_ZEROES:
            if (overlap(offset, len, p->offset, p->offset + p->len, &lo, &hi))
                memset(b + lo, 0, hi - lo);
            size = KEEL_MAX(size, p->offset + p->len);
            break;
        case KEEL_IO_DISCARD:
            /* May read back as anything; the local backends give zeroes. */
            if (overlap(offset, len, p->offset, p->offset + p->len, &lo, &hi))
                memset(b + lo, 0, hi - lo);
            break;
        case KEEL_IO_TRUNCATE:
            if (overlap(offset, len, p->offset, UINT64_MAX, &lo, &hi))
                memset(b + lo, 0, hi - lo);
            size = p->offset;
            break;
        default:
            break;
        }
    }
    return size <= offset ? 0 : (size_t)KEEL_MIN(size - offset, (uint64_t)len);
}

uint64_t keel_faulty__size(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                           uint64_t size)
{
    for (const struct keel_fault_pending *p = ctl->head; p != NULL; p = p->next) {
        if (!matches(match, arg, p))
            continue;
        if (p->op == KEEL_IO_WRITE || p->op == KEEL_IO_WRITE_ZEROES)
            size = KEEL_MAX(size, p->offset + p->len);
        else if (p->op == KEEL_IO_TRUNCATE)
            size = p->offset;
    }
    return size;
}

/* ---- the block device wrapper ---- */

struct faulty_blk {
    struct keel_faulty *ctl;
    struct keel_blockdev *inner;
};

static bool blk_op_writes(enum keel_io_op op)
{
    return op == KEEL_IO_WRITE || op == KEEL_IO_WRITE_ZEROES || op == KEEL_IO_DISCARD;
}

static int fb_apply(void *be, const struct keel_fault_pending *p, uint64_t rel, size_t len,
                    struct keel_error *err)
{
    struct faulty_blk *fb = be;

    switch (p->op) {
    case KEEL_IO_WRITE:
        return keel_blockdev_pwrite(fb->inner, p->buf + rel, len, p->offset + rel, err);
    case KEEL_IO_WRITE_ZEROES:
        return keel_blockdev_write_zeroes(fb->inner, p->offset + rel, len, err);
    case KEEL_IO_DISCARD:
        return keel_blockdev_discard(fb->inner, p->offset + rel, len, err);
    default:
        return keel_error_set(err, KEEL_E_INTERNAL, EINVAL, "%s: cannot apply a %s",
                              keel_faulty__name(fb->ctl), keel_io_op_name(p->op));
    }
}

static const struct keel_fault_backend fb_backend = {
    .apply = fb_apply,
};

/* Read from inner, then lay the buffered writes over it. */
static int fb_read(struct faulty_blk *fb, bool buffered, void *buf, size_t len, uint64_t offset,
                   struct keel_error *err)
{
    if (keel_blockdev_pread(fb->inner, buf, len, offset, err) != 0)
        return -1;
    if (buffered)
        keel_faulty__overlay(fb->ctl, NULL, NULL, buf, offset, len, len);
    return 0;
}

/* A request without a fault while writes are buffered. */
static int fb_run_buffered(struct faulty_blk *fb, struct keel_ioreq *req, size_t *xfer,
                           struct keel_error *err)
{
    switch (req->op) {
    case KEEL_IO_READ:
        if (fb_read(fb, true, req->buf, req->len, req->offset, err) != 0)
            return -1;
        *xfer = req->len;
        return 0;
    case KEEL_IO_WRITE:
    case KEEL_IO_WRITE_ZEROES:
    case KEEL_IO_DISCARD:
        if (keel_faulty__pending_add(fb->ctl, req->op, req->offset, req->len, req->buf,
                                     NULL) == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory",
                                  keel_faulty__name(fb->ctl));
        *xfer = req->op == KEEL_IO_WRITE ? req->len : 0;
        return 0;
    case KEEL_IO_FLUSH:
        if (keel_faulty__flush(fb->ctl, NULL, NULL, err) != 0)
            return -1;
        return keel_blockdev_flush(fb->inner, err);
    default:
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: %s is not a block device operation",
                              keel_faulty__name(fb->ctl), keel_io_op_name(req->op));
    }
}

/* The worker: every request the wrapper answers itself (invariant 4). */
static void fb_run(void *be, struct keel_ioreq *req)
{
    struct faulty_blk *fb = be;
    struct keel_fault_tag t = *keel_faulty__tag(req);
    struct keel_error e = KEEL_ERROR_INIT;
    struct keel_fault_pending last;
    size_t xfer = 0, half;
    int rc = -1;

    switch (t.act) {
    case KEEL_FA_PASS:
        rc = fb_run_buffered(fb, req, &xfer, &e);
        break;
    case KEEL_FA_SHORT:
        /* What a device that stopped half-way gives: the first half, then an error. */
        half = KEEL_ALIGN_DOWN(req->len / 2, keel_blockdev_block_size(fb->inner));
        if (half > 0 && fb_read(fb, t.buffered, req->buf, half, req->offset, &e) != 0)
            break;
        xfer = half;
        keel_error_set(&e, KEEL_E_SHORT, EIO, "%s: injected short read: %zu of %zu bytes",
                       keel_faulty__name(fb->ctl), half, req->len);
        break;
    case KEEL_FA_CRASH:
        last = (struct keel_fault_pending){ .op = req->op, .offset = req->offset,
                                            .len = req->len, .buf = req->buf };
        keel_faulty__crash(fb->ctl, &last, t.buffered);
        keel_faulty__fail(fb->ctl, &t, &e);
        break;
    case KEEL_FA_EIO:
    case KEEL_FA_DEAD:
    case KEEL_FA_APPLY: /* the controller's, never here */
        keel_faulty__fail(fb->ctl, &t, &e);
        break;
    }
    keel_faulty__complete(req, rc, xfer, &e);
}

static int fb_submit(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct faulty_blk *fb = be;
    struct keel_fault_tag t;

    keel_faulty__decide(fb->ctl, req->op, blk_op_writes(req->op), &t);
    if (t.act == KEEL_FA_PASS && !t.buffered)
        return keel_blockdev_submit(fb->inner, req, err);
    keel_faulty__push(fb->ctl, req, &t);
    return 0;
}

static void fb_close(void *be)
{
    struct faulty_blk *fb = be;

    if (fb == NULL)
        return;
    keel_faulty__stop(fb->ctl);
    keel_blockdev_close(fb->inner);
    keel_faulty__free(fb->ctl);
    free(fb);
}

static void fb_set_fence(void *be, struct keel_fence *f)
{
    struct faulty_blk *fb = be;

    keel_blockdev_set_fence(fb->inner, f);
}

static const struct keel_blockdev_ops fb_ops = {
    .submit = fb_submit,
    .close = fb_close,
    .set_fence = fb_set_fence,
};

int keel_faulty_blockdev(struct keel_blockdev *inner, const struct keel_fault_plan *plan,
                         struct keel_blockdev **ret, struct keel_faulty **ctl,
                         struct keel_error *err)
{
    uint64_t size = keel_blockdev_size(inner);
    uint32_t bs = keel_blockdev_block_size(inner);
    /*
     * One request of the caller is one write (faulty.h): never split here.
     * The inner device splits what it cannot take in one command.
     */
    size_t whole = (size_t)KEEL_MAX(KEEL_MIN(size, (uint64_t)SIZE_MAX / 2), (uint64_t)bs);
    struct keel_blockdev_geom geom = { .size = size, .block_size = bs, .max_xfer = whole,
                                       .max_zero = whole, .native_zeroes = true };
    char name[KEEL_URL_MAX];
    struct keel_blockdev *dev;
    struct faulty_blk *fb;

    snprintf(name, sizeof(name), "faulty:%s", keel_blockdev_name(inner));
    if (keel_faulty__check_plan(name, plan, err) != 0) {
        keel_blockdev_close(inner);
        return -1;
    }
    fb = calloc(1, sizeof(*fb));
    if (fb == NULL) {
        keel_blockdev_close(inner);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    fb->inner = inner;
    fb->ctl = keel_faulty__new(name, &fb_backend, fb, KEEL_MAX((size_t)SECTOR, (size_t)bs), plan,
                               fb_run);
    if (fb->ctl == NULL) {
        fb_close(fb);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", name);
    }
    /* On failure keel_blockdev_new() closes fb, and so inner. */
    if (keel_blockdev_new(name, &fb_ops, fb, &geom, &dev, err) != 0)
        return -1;
    if (ctl != NULL)
        *ctl = fb->ctl;
    *ret = dev;
    return 0;
}

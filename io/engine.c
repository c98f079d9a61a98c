/*
 * The request engine; see engine.h for what it promises.
 *
 * Invariants (numbers are referred to in the code):
 *  1. A request is in exactly one list: incoming (submitted, not yet seen by
 *     the I/O thread), pending (waiting to start), inflight (started on the
 *     current session) or finished (done() not yet called); priv.state names
 *     it.  A worker thread that completes a request queues it in
 *     `completed` (linked by priv.cnext) while it stays in inflight.
 *  2. pending is sorted by submission order (priv.seq).
 *  3. A request starts only when no earlier request that is still pending or
 *     inflight conflicts with it (same owner, overlapping range, one of them
 *     writes; a FLUSH conflicts with every earlier write of its owner; a
 *     namespace operation with everything).  Hence, after any number of
 *     reconnects, overlapping writes reach the storage in submission order.
 *  4. An acknowledged request (KEEL_OUT_OK) is never started again.  Only
 *     requests that the session lost (inflight when it broke) go back to
 *     pending, and they keep their seq.
 *  5. done() runs on the I/O thread with no engine lock held, once.
 *  6. Every request leaves the engine by its deadline: done (ok or error) or
 *     failed with KEEL_E_TIMEOUT.  A session that holds an expired request
 *     is dropped first, so no backend callback can touch the request after
 *     it has been failed.  Backends without a session to drop (local files)
 *     finish their requests themselves.
 *  7. With a fence (fence.h): a request that changes data starts only while
 *     keel_fence_check() allows it, checked just before it starts; once the
 *     fence's valid_until passes, a session holding such a request (or a
 *     namespace operation) is dropped before its socket is serviced again,
 *     and the request fails with KEEL_E_FENCED instead of being resent.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "io/engine.h"
#include "io/fence.h"
#include "io/iosync.h"
#include "io/url.h"

#define MOD "io.engine"

/* How far the dispatcher looks into the pending queue per round. */
#define DISPATCH_SCAN_MAX 512
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define POLL_MAX_MS 1000

enum rq_state { RQ_NONE, RQ_INCOMING, RQ_PENDING, RQ_INFLIGHT, RQ_FINISHED };
enum sess_state { ST_DOWN, ST_CONNECTING, ST_UP };

struct reqlist {
    struct keel_ioreq *head, *tail;
    size_t n;
};

struct keel_engine {
    char name[KEEL_URL_MAX];
    const struct keel_engine_ops *ops;
    void *be;
    struct keel_io_opts opts;
    int wakefd;
    struct keel_fence *fence; /* atomic pointer: set by keel_engine_set_fence() */
    pthread_t thread;
    bool thread_started;

    /* Protected by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct reqlist incoming;
    struct keel_ioreq *completed_head, *completed_tail; /* linked by priv.cnext */
    size_t completed_n;
    bool closing;
    uint64_t next_seq;
    bool start_done;
    int start_rc;
    bool thread_done;
    uint64_t fence_gen, fence_seen; /* keel_engine_set_fence() waits for the thread to see it */
    struct keel_error start_err;

    /* I/O thread only. */
    enum sess_state state;
    bool initial;          /* the first connect: its failure fails start */
    bool broken;
    struct keel_error last_err;
    bool have_last_err;
    uint64_t session;
    uint64_t connect_deadline;
    uint64_t next_connect;
    unsigned backoff_ms;
    bool outage;           /* the session was lost and not yet rebuilt */
    uint64_t outage_ns;
    size_t resent;         /* requests put back by the current outage */
    struct reqlist pending, inflight, finished;
};

/* ---- lists ---- */

static void list_push(struct reqlist *l, struct keel_ioreq *r)
{
    r->priv.next = NULL;
    r->priv.prev = l->tail;
    if (l->tail)
        l->tail->priv.next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_remove(struct reqlist *l, struct keel_ioreq *r)
{
    if (r->priv.prev)
        r->priv.prev->priv.next = r->priv.next;
    else
        l->head = r->priv.next;
    if (r->priv.next)
        r->priv.next->priv.prev = r->priv.prev;
    else
        l->tail = r->priv.prev;
    r->priv.next = r->priv.prev = NULL;
    l->n--;
}

/* Insert keeping seq order (invariant 2); retries are usually old: walk back. */
static void list_insert_sorted(struct reqlist *l, struct keel_ioreq *r)
{
    struct keel_ioreq *at = l->tail;

    while (at != NULL && at->priv.seq > r->priv.seq)
        at = at->priv.prev;
    if (at == NULL) {
        r->priv.prev = NULL;
        r->priv.next = l->head;
        if (l->head)
            l->head->priv.prev = r;
        else
            l->tail = r;
        l->head = r;
    } else {
        r->priv.prev = at;
        r->priv.next = at->priv.next;
        if (at->priv.next)
            at->priv.next->priv.prev = r;
        else
            l->tail = r;
        at->priv.next = r;
    }
    l->n++;
}

static void list_splice(struct reqlist *dst, struct reqlist *src)
{
    struct keel_ioreq *r;

    while ((r = src->head) != NULL) {
        list_remove(src, r);
        list_push(dst, r);
    }
}

/* ---- helpers ---- */

void keel_io_opts_init(struct keel_io_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = KEEL_IO_DEFAULT_TIMEOUT_MS;
    o->connect_timeout_ms = KEEL_IO_DEFAULT_CONNECT_TIMEOUT_MS;
    o->max_inflight = KEEL_IO_DEFAULT_MAX_INFLIGHT;
    o->workers = KEEL_IO_DEFAULT_WORKERS;
    o->initiator_iqn = KEEL_IO_DEFAULT_INITIATOR;
}

const char *keel_io_op_name(enum keel_io_op op)
{
    switch (op) {
    case KEEL_IO_READ: return "read";
    case KEEL_IO_WRITE: return "write";
    case KEEL_IO_FLUSH: return "flush";
    case KEEL_IO_DISCARD: return "discard";
    case KEEL_IO_WRITE_ZEROES: return "write-zeroes";
    case KEEL_IO_TRUNCATE: return "truncate";
    case KEEL_IO_BLOCK_STATUS: return "block-status";
    case KEEL_IO__NR_DATA_OPS: break;
    case KEEL_IO_FS_OP: return "file-system operation";
    }
    return "?";
}

bool keel_io_op_writes(enum keel_io_op op)
{
    return op == KEEL_IO_WRITE || op == KEEL_IO_DISCARD || op == KEEL_IO_WRITE_ZEROES ||
           op == KEEL_IO_TRUNCATE;
}

static void describe(struct keel_engine *eng, const struct keel_ioreq *r, char *buf, size_t n)
{
    if (eng->ops->describe != NULL) {
        eng->ops->describe(eng->be, r, buf, n);
        return;
    }
    switch (r->op) {
    case KEEL_IO_FLUSH:
        snprintf(buf, n, "flush");
        break;
    case KEEL_IO_TRUNCATE:
        snprintf(buf, n, "truncate to %" PRIu64, r->offset);
        break;
    case KEEL_IO_FS_OP:
        snprintf(buf, n, "file-system operation");
        break;
    default:
        snprintf(buf, n, "%s of %zu bytes at offset %" PRIu64, keel_io_op_name(r->op), r->len,
                 r->offset);
    }
}

static void wake(struct keel_engine *eng)
{
    uint64_t one = 1;
    ssize_t r;

    do {
        r = write(eng->wakefd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

static void emit(struct keel_engine *eng, enum keel_io_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit(struct keel_engine *eng, enum keel_io_event ev, const char *fmt, ...)
{
    char msg[KEEL_ERR_MSG + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    keel_debug(MOD, "%s: %s", eng->name, msg);
    if (eng->opts.event_cb != NULL)
        eng->opts.event_cb(eng->opts.event_opaque, ev, eng->name, msg);
}

/* ---- completion ---- */

/* Move a request to `finished` with its result (invariant 5: done() later). */
static void finish(struct keel_engine *eng, struct keel_ioreq *r, int result,
                   const struct keel_error *why)
{
    r->result = result;
    if (result == 0) {
        keel_error_clear(&r->err);
    } else {
        char what[160];

        describe(eng, r, what, sizeof(what));
        if (why != NULL)
            r->err = *why;
        else
            keel_error_set(&r->err, KEEL_E_IO, 0, "failed");
        keel_error_prefix(&r->err, "%s: %s", eng->name, what);
    }
    r->priv.state = RQ_FINISHED;
    list_push(&eng->finished, r);
}

/* Put a started request back in pending; `lost` counts it as resent. */
static void take_back(struct keel_engine *eng, struct keel_ioreq *r, bool lost)
{
    r->priv.state = RQ_PENDING;
    r->priv.be_task = NULL;
    list_insert_sorted(&eng->pending, r);
    if (lost)
        eng->resent++;
}

void keel_engine_complete(struct keel_engine *eng, struct keel_ioreq *r, enum keel_outcome outcome,
                          const struct keel_error *why)
{
    if (r->priv.state != RQ_INFLIGHT) {
        keel_debug(MOD, "%s: completion of a request that is not in flight (state %d)",
                   eng->name, r->priv.state);
        return;
    }
    list_remove(&eng->inflight, r);
    switch (outcome) {
    case KEEL_OUT_OK:
        finish(eng, r, 0, NULL);
        break;
    case KEEL_OUT_ERROR:
        finish(eng, r, -1, why);
        break;
    case KEEL_OUT_RETRY_SESSION:
        take_back(eng, r, true);
        if (why != NULL) {
            eng->last_err = *why;
            eng->have_last_err = true;
        }
        break;
    case KEEL_OUT_RETRY_LATER: {
        unsigned shift = r->priv.attempts < 6 ? r->priv.attempts : 6;
        uint64_t delay_ms = KEEL_MIN((uint64_t)10 << shift, (uint64_t)500);

        r->priv.not_before_ns = keel_now_ns() + delay_ms * KEEL_NS_PER_MS;
        take_back(eng, r, false);
        break;
    }
    }
}

void keel_engine_complete_async(struct keel_engine *eng, struct keel_ioreq *r,
                                enum keel_outcome outcome, const struct keel_error *why)
{
    r->priv.outcome = (int)outcome;
    if (why != NULL)
        r->err = *why;
    /* r stays linked in `inflight` (next/prev); the queue uses cnext. */
    r->priv.cnext = NULL;
    pthread_mutex_lock(&eng->lock);
    if (eng->completed_tail)
        eng->completed_tail->priv.cnext = r;
    else
        eng->completed_head = r;
    eng->completed_tail = r;
    eng->completed_n++;
    pthread_mutex_unlock(&eng->lock);
    wake(eng);
}

/* ---- session ---- */

void keel_engine_session_up(struct keel_engine *eng)
{
    eng->state = ST_UP;
    eng->session++;
    eng->backoff_ms = 0;
    eng->have_last_err = false;
    if (eng->initial) {
        eng->initial = false;
        pthread_mutex_lock(&eng->lock);
        eng->start_done = true;
        eng->start_rc = 0;
        pthread_cond_broadcast(&eng->cond);
        pthread_mutex_unlock(&eng->lock);
    } else if (eng->outage) {
        uint64_t ms = (keel_now_ns() - eng->outage_ns) / KEEL_NS_PER_MS;

        emit(eng, KEEL_IO_EV_RECONNECTED,
             "reconnected after %" PRIu64 " ms (session %" PRIu64 "); %zu requests resent", ms,
             eng->session, eng->resent);
    }
    eng->outage = false;
    eng->resent = 0;
}

void keel_engine_session_failed(struct keel_engine *eng, const struct keel_error *why)
{
    /* The first reason is the cause; later ones are its consequences. */
    if (eng->broken)
        return;
    eng->broken = true;
    if (why != NULL) {
        eng->last_err = *why;
        eng->have_last_err = true;
    }
}

/* Drop the session; the requests it held wait for the next one (invariant 4). */
static void drop_session(struct keel_engine *eng)
{
    enum sess_state was = eng->state;
    struct keel_ioreq *r;
    uint64_t now;

    if (eng->ops->drop != NULL)
        eng->ops->drop(eng->be);
    while ((r = eng->inflight.head) != NULL) {
        list_remove(&eng->inflight, r);
        take_back(eng, r, true);
    }
    eng->state = ST_DOWN;
    eng->broken = false;
    now = keel_now_ns();
    if (eng->initial) {
        pthread_mutex_lock(&eng->lock);
        eng->start_done = true;
        eng->start_rc = -1;
        if (eng->have_last_err)
            eng->start_err = eng->last_err;
        else
            keel_error_set(&eng->start_err, KEEL_E_CONNECT, 0, "cannot connect");
        keel_error_prefix(&eng->start_err, "%s", eng->name);
        pthread_cond_broadcast(&eng->cond);
        pthread_mutex_unlock(&eng->lock);
        return;
    }
    if (was == ST_UP) {
        eng->outage = true;
        eng->outage_ns = now;
        eng->backoff_ms = 0;
        emit(eng, KEEL_IO_EV_LOST, "session %" PRIu64 " lost: %s; %zu requests wait for a new one",
             eng->session, eng->have_last_err ? eng->last_err.msg : "no reason given",
             eng->resent);
    } else {
        eng->backoff_ms = eng->backoff_ms == 0 ? BACKOFF_FIRST_MS
                                               : KEEL_MIN(eng->backoff_ms * 2, BACKOFF_MAX_MS);
        emit(eng, KEEL_IO_EV_RETRY, "connect attempt failed: %s; next in %u ms",
             eng->have_last_err ? eng->last_err.msg : "no reason given", eng->backoff_ms);
    }
    eng->next_connect = now + (uint64_t)eng->backoff_ms * KEEL_NS_PER_MS;
}

static void try_connect(struct keel_engine *eng, uint64_t now)
{
    struct keel_error e = KEEL_ERROR_INIT;

    eng->state = ST_CONNECTING;
    eng->connect_deadline = now + (uint64_t)eng->opts.connect_timeout_ms * KEEL_NS_PER_MS;
    if (eng->ops->connect(eng->be, &e) != 0)
        keel_engine_session_failed(eng, &e);
}

/* ---- dispatch ---- */

static bool conflicts(const struct keel_ioreq *a, const struct keel_ioreq *b)
{
    bool aw, bw;

    if (a->op == KEEL_IO_FS_OP || b->op == KEEL_IO_FS_OP)
        return true;
    if (a->priv.owner != b->priv.owner)
        return false;
    aw = keel_io_op_writes(a->op);
    bw = keel_io_op_writes(b->op);
    /* b is the later one. A flush waits for earlier writes; nothing waits for it. */
    if (b->op == KEEL_IO_FLUSH)
        return aw;
    if (a->op == KEEL_IO_FLUSH)
        return false;
    if (!aw && !bw)
        return false;
    if (a->op == KEEL_IO_TRUNCATE || b->op == KEEL_IO_TRUNCATE)
        return true;
    return a->offset < b->offset + b->len && b->offset < a->offset + a->len;
}

static bool blocked(struct keel_engine *eng, const struct keel_ioreq *r)
{
    for (struct keel_ioreq *x = eng->inflight.head; x; x = x->priv.next)
        if (x->priv.seq < r->priv.seq && conflicts(x, r))
            return true;
    for (struct keel_ioreq *x = eng->pending.head; x && x != r; x = x->priv.next)
        if (conflicts(x, r))
            return true;
    return false;
}

static struct keel_fence *fence_of(struct keel_engine *eng)
{
    return __atomic_load_n(&eng->fence, __ATOMIC_ACQUIRE);
}

/* Requests a fence covers: data changes, and namespace operations. */
static bool fenced_op(const struct keel_ioreq *r)
{
    return keel_io_op_writes(r->op) || r->op == KEEL_IO_FS_OP;
}

/*
 * May r start (or stay queued) now?  A data change needs the fence's
 * permission; a namespace operation (fs.c checks those that change
 * anything before it calls) only fails once the fence has expired.
 */
static bool fence_refuses(struct keel_engine *eng, struct keel_ioreq *r, struct keel_error *e)
{
    struct keel_fence *f = fence_of(eng);

    if (f == NULL || !fenced_op(r))
        return false;
    if (keel_io_op_writes(r->op))
        return keel_fence_check(f, e) != 0;
    if (keel_fence_valid_until(f) != 0)
        return false;
    keel_fence_check(f, e);
    return true;
}

/* The fence expired while a request it covers is started: tear the session down. */
static bool fence_cuts_session(struct keel_engine *eng)
{
    struct keel_fence *f = fence_of(eng);

    if (f == NULL || eng->ops->drop == NULL || eng->state != ST_UP ||
        keel_fence_valid_until(f) != 0)
        return false;
    for (struct keel_ioreq *r = eng->inflight.head; r; r = r->priv.next) {
        if (fenced_op(r)) {
            struct keel_error e = KEEL_ERROR_INIT;

            keel_fence_check(f, &e);
            keel_engine_session_failed(eng, &e);
            return true;
        }
    }
    return false;
}

static void dispatch(struct keel_engine *eng, uint64_t now)
{
    struct keel_ioreq *r = eng->pending.head, *next;
    unsigned scanned = 0;

    for (; r != NULL && !eng->broken; r = next) {
        struct keel_error e = KEEL_ERROR_INIT;
        int rc;

        next = r->priv.next;
        if (eng->inflight.n >= eng->opts.max_inflight || ++scanned > DISPATCH_SCAN_MAX)
            break;
        if (r->priv.not_before_ns > now || blocked(eng, r))
            continue;
        list_remove(&eng->pending, r);
        if (fence_refuses(eng, r, &e)) {   /* invariant 7 */
            finish(eng, r, -1, &e);
            continue;
        }
        r->priv.state = RQ_INFLIGHT;
        r->priv.session = eng->session;
        r->priv.attempts++;
        list_push(&eng->inflight, r);
        rc = eng->ops->start(eng->be, r, &e);
        if (rc == KEEL_START_BROKEN) {
            if (r->priv.state == RQ_INFLIGHT) {
                list_remove(&eng->inflight, r);
                take_back(eng, r, false);
            }
            keel_engine_session_failed(eng, &e);
            break;
        }
        if (rc != 0 && r->priv.state == RQ_INFLIGHT) {
            list_remove(&eng->inflight, r);
            finish(eng, r, -1, &e);
        }
        /* A backend may have completed r at once; then next is still valid
         * because completions only append to lists other than pending or
         * insert retried requests, which the next round sees. */
        next = eng->pending.head;
        while (next != NULL && next->priv.seq <= r->priv.seq)
            next = next->priv.next;
    }
}

/* ---- timeouts ---- */

static void fail_timed_out(struct keel_engine *eng, struct keel_ioreq *r, uint64_t now)
{
    struct keel_error e;
    double secs = (double)(now - r->priv.submit_ns) / 1e9;

    if (eng->have_last_err && eng->state != ST_UP)
        keel_error_set(&e, KEEL_E_TIMEOUT, ETIMEDOUT, "timed out after %.1f s; last error: %s",
                       secs, eng->last_err.msg);
    else
        keel_error_set(&e, KEEL_E_TIMEOUT, ETIMEDOUT, "timed out after %.1f s", secs);
    list_remove(&eng->pending, r);
    finish(eng, r, -1, &e);
}

static void check_deadlines(struct keel_engine *eng, uint64_t now)
{
    struct keel_ioreq *r, *next;

    /* A started request past its deadline: the session is stuck (invariant 6). */
    if (eng->ops->drop != NULL && eng->state == ST_UP) {
        for (r = eng->inflight.head; r; r = r->priv.next) {
            if (now >= r->priv.deadline_ns) {
                struct keel_error e;

                keel_error_set(&e, KEEL_E_TIMEOUT, ETIMEDOUT,
                               "no answer within %u ms", eng->opts.timeout_ms);
                keel_engine_session_failed(eng, &e);
                break;
            }
        }
    }
    fence_cuts_session(eng);
    if (eng->broken)
        drop_session(eng);
    for (r = eng->pending.head; r; r = next) {
        struct keel_error e = KEEL_ERROR_INIT;

        next = r->priv.next;
        if (fence_refuses(eng, r, &e)) {
            list_remove(&eng->pending, r);
            finish(eng, r, -1, &e);
        } else if (now >= r->priv.deadline_ns) {
            fail_timed_out(eng, r, now);
        }
    }
}

static int poll_timeout_ms(struct keel_engine *eng, uint64_t now)
{
    uint64_t until = now + (uint64_t)POLL_MAX_MS * KEEL_NS_PER_MS;

    for (struct keel_ioreq *r = eng->pending.head; r; r = r->priv.next) {
        until = KEEL_MIN(until, r->priv.deadline_ns);
        if (eng->state == ST_UP && r->priv.not_before_ns > now)
            until = KEEL_MIN(until, r->priv.not_before_ns);
    }
    for (struct keel_ioreq *r = eng->inflight.head; r; r = r->priv.next)
        until = KEEL_MIN(until, r->priv.deadline_ns);
    if (eng->state == ST_DOWN && eng->pending.n > 0)
        until = KEEL_MIN(until, eng->next_connect);
    if (eng->state == ST_CONNECTING)
        until = KEEL_MIN(until, eng->connect_deadline);
    if (fence_of(eng) != NULL && (eng->pending.n > 0 || eng->inflight.n > 0)) {
        /* Wake at an open fence's deadline (another clock: convert the distance).  A
         * shut fence has nothing left to wait for: check_deadlines() failed its requests. */
        uint64_t valid = keel_fence_valid_until(fence_of(eng)), boot = keel_lease_clock_ns();

        if (valid != 0)
            until = KEEL_MIN(until, valid > boot ? now + (valid - boot) : now);
    }
    if (until <= now)
        return 0;
    return (int)((until - now + KEEL_NS_PER_MS - 1) / KEEL_NS_PER_MS);
}

/* ---- the I/O thread ---- */

static void drain_queues(struct keel_engine *eng)
{
    struct reqlist in = { 0 };
    struct keel_ioreq *r, *done;

    pthread_mutex_lock(&eng->lock);
    if (eng->fence_seen != eng->fence_gen) {
        /* Nothing of this thread holds the old fence any more. */
        eng->fence_seen = eng->fence_gen;
        pthread_cond_broadcast(&eng->cond);
    }
    list_splice(&in, &eng->incoming);
    done = eng->completed_head;
    eng->completed_head = eng->completed_tail = NULL;
    eng->completed_n = 0;
    pthread_mutex_unlock(&eng->lock);

    while ((r = in.head) != NULL) {
        list_remove(&in, r);
        r->priv.state = RQ_PENDING;
        list_insert_sorted(&eng->pending, r);
    }
    while ((r = done) != NULL) {
        struct keel_error why = r->err;

        done = r->priv.cnext;
        keel_engine_complete(eng, r, (enum keel_outcome)r->priv.outcome, &why);
    }
}

static void run_finished(struct keel_engine *eng)
{
    struct keel_ioreq *r;

    while ((r = eng->finished.head) != NULL) {
        list_remove(&eng->finished, r);
        r->priv.state = RQ_NONE;
        r->done(r);
    }
}

static bool idle_and_closing(struct keel_engine *eng)
{
    bool quit;

    pthread_mutex_lock(&eng->lock);
    quit = eng->closing && eng->incoming.n == 0 && eng->completed_n == 0 &&
           eng->pending.n == 0 && eng->inflight.n == 0 && eng->finished.n == 0;
    pthread_mutex_unlock(&eng->lock);
    return quit;
}

static void *engine_thread(void *arg)
{
    struct keel_engine *eng = arg;

    eng->state = ST_DOWN;
    eng->initial = true;
    try_connect(eng, keel_now_ns());

    for (;;) {
        struct pollfd pfd[2];
        int nfds = 1, fd = -1, timeout;
        uint64_t now;

        drain_queues(eng);
        now = keel_now_ns();
        if (eng->state == ST_CONNECTING && now >= eng->connect_deadline && !eng->broken) {
            struct keel_error e;

            keel_error_set(&e, KEEL_E_TIMEOUT, ETIMEDOUT, "connect timed out after %u ms",
                           eng->opts.connect_timeout_ms);
            keel_engine_session_failed(eng, &e);
        }
        check_deadlines(eng, now);
        if (eng->initial && eng->state == ST_DOWN)
            break; /* the first connect failed; start() reports it */
        if (eng->state == ST_DOWN && eng->pending.n > 0 && now >= eng->next_connect)
            try_connect(eng, now);
        if (eng->broken) {
            drop_session(eng);
            if (eng->initial)
                break;
        }
        if (eng->state == ST_UP)
            dispatch(eng, now);
        if (eng->broken)
            continue;
        run_finished(eng);
        if (idle_and_closing(eng))
            break;

        pfd[0].fd = eng->wakefd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        if (eng->state != ST_DOWN && eng->ops->poll_fd != NULL)
            fd = eng->ops->poll_fd(eng->be);
        if (fd >= 0) {
            pfd[1].fd = fd;
            pfd[1].events = eng->ops->poll_events(eng->be);
            pfd[1].revents = 0;
            nfds = 2;
        }
        timeout = poll_timeout_ms(eng, keel_now_ns());
        if (poll(pfd, (nfds_t)nfds, timeout) < 0) {
            if (errno != EINTR)
                keel_debug(MOD, "%s: poll: %s", eng->name, strerror(errno));
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            uint64_t v;

            if (read(eng->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                keel_debug(MOD, "%s: eventfd read: %s", eng->name, strerror(errno));
        }
        /* A process stopped in poll() must not send a fenced write on waking (invariant 7). */
        if (fence_cuts_session(eng))
            continue;
        if (nfds == 2 && pfd[1].revents != 0) {
            struct keel_error e = KEEL_ERROR_INIT;

            if (eng->ops->service(eng->be, pfd[1].revents, &e) != 0)
                keel_engine_session_failed(eng, &e);
        }
    }
    if (eng->state != ST_DOWN && eng->ops->drop != NULL)
        eng->ops->drop(eng->be);
    eng->state = ST_DOWN;
    run_finished(eng);
    pthread_mutex_lock(&eng->lock);
    eng->thread_done = true;
    pthread_cond_broadcast(&eng->cond);
    pthread_mutex_unlock(&eng->lock);
    return NULL;
}

/* ---- public ---- */

struct keel_engine *keel_engine_new(const char *name, const struct keel_engine_ops *ops,
                                    void *be, const struct keel_io_opts *opts)
{
    struct keel_engine *eng = calloc(1, sizeof(*eng));

    if (eng == NULL)
        return NULL;
    keel_strlcpy(eng->name, name, sizeof(eng->name));
    eng->ops = ops;
    eng->be = be;
    if (opts != NULL)
        eng->opts = *opts;
    else
        keel_io_opts_init(&eng->opts);
    if (eng->opts.timeout_ms == 0)
        eng->opts.timeout_ms = KEEL_IO_DEFAULT_TIMEOUT_MS;
    if (eng->opts.connect_timeout_ms == 0)
        eng->opts.connect_timeout_ms = KEEL_IO_DEFAULT_CONNECT_TIMEOUT_MS;
    if (eng->opts.max_inflight == 0)
        eng->opts.max_inflight = KEEL_IO_DEFAULT_MAX_INFLIGHT;
    if (eng->opts.workers == 0)
        eng->opts.workers = KEEL_IO_DEFAULT_WORKERS;
    if (eng->opts.initiator_iqn == NULL)
        eng->opts.initiator_iqn = KEEL_IO_DEFAULT_INITIATOR;
    eng->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eng->wakefd < 0) {
        free(eng);
        return NULL;
    }
    pthread_mutex_init(&eng->lock, NULL);
    pthread_cond_init(&eng->cond, NULL);
    return eng;
}

int keel_engine_start(struct keel_engine *eng, struct keel_error *err)
{
    int rc;

    if (pthread_create(&eng->thread, NULL, engine_thread, eng) != 0)
        return keel_error_errno(err, KEEL_E_NOMEM, errno, "%s: cannot start I/O thread",
                                eng->name);
    eng->thread_started = true;
    pthread_mutex_lock(&eng->lock);
    while (!eng->start_done)
        pthread_cond_wait(&eng->cond, &eng->lock);
    rc = eng->start_rc;
    if (rc != 0)
        keel_error_copy(err, &eng->start_err);
    pthread_mutex_unlock(&eng->lock);
    if (rc != 0) {
        pthread_join(eng->thread, NULL);
        eng->thread_started = false;
    }
    return rc;
}

void keel_engine_free(struct keel_engine *eng)
{
    if (eng == NULL)
        return;
    if (eng->thread_started) {
        pthread_mutex_lock(&eng->lock);
        eng->closing = true;
        pthread_mutex_unlock(&eng->lock);
        wake(eng);
        pthread_join(eng->thread, NULL);
    }
    close(eng->wakefd);
    pthread_mutex_destroy(&eng->lock);
    pthread_cond_destroy(&eng->cond);
    free(eng);
}

int keel_engine_submit(struct keel_engine *eng, struct keel_ioreq *req, void *owner,
                       struct keel_error *err)
{
    uint64_t now = keel_now_ns();

    const void *fsarg = req->priv.fsarg; /* the only field io/ sets before submit */

    memset(&req->priv, 0, sizeof(req->priv));
    req->priv.fsarg = fsarg;
    req->priv.owner = owner;
    req->priv.submit_ns = now;
    req->priv.deadline_ns = now + (uint64_t)eng->opts.timeout_ms * KEEL_NS_PER_MS;
    req->result = 0;
    req->xfer = 0;
    keel_error_clear(&req->err);

    pthread_mutex_lock(&eng->lock);
    if (eng->closing || !eng->thread_started) {
        pthread_mutex_unlock(&eng->lock);
        return keel_error_set(err, KEEL_E_CLOSED, 0, "%s: closed", eng->name);
    }
    req->priv.seq = ++eng->next_seq;
    req->priv.state = RQ_INCOMING;
    list_push(&eng->incoming, req);
    pthread_mutex_unlock(&eng->lock);
    wake(eng);
    return 0;
}

int keel_engine_call(struct keel_engine *eng, struct keel_ioreq *req, void *owner,
                     struct keel_error *err)
{
    struct keel_iosync s;

    keel_iosync_init(&s);
    keel_iosync_prepare(&s, req);
    if (keel_engine_submit(eng, req, owner, err) != 0) {
        keel_iosync_release(&s);
        return -1;
    }
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    if (req->result != 0)
        keel_error_copy(err, &req->err);
    return req->result;
}

const char *keel_engine_name(const struct keel_engine *eng)
{
    return eng->name;
}

const struct keel_io_opts *keel_engine_opts(const struct keel_engine *eng)
{
    return &eng->opts;
}

uint64_t keel_engine_session(const struct keel_engine *eng)
{
    return eng->session;
}

void keel_engine_set_fence(struct keel_engine *eng, struct keel_fence *f)
{
    uint64_t gen;

    __atomic_store_n(&eng->fence, f, __ATOMIC_RELEASE);
    if (!eng->thread_started || pthread_equal(pthread_self(), eng->thread))
        return;
    pthread_mutex_lock(&eng->lock);
    gen = ++eng->fence_gen;
    pthread_mutex_unlock(&eng->lock);
    wake(eng);
    pthread_mutex_lock(&eng->lock);
    while (eng->fence_seen < gen && !eng->thread_done)
        pthread_cond_wait(&eng->cond, &eng->lock);
    pthread_mutex_unlock(&eng->lock);
}

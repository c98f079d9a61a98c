/*
 * Unit tests of io/engine.c, the request engine every backend shares.
 *
 * The backend here is a scripted session in memory: it applies writes to a
 * 64 KiB array, can hold started requests in flight, fail connects and
 * break the session on command.  Commands from the test thread reach the
 * engine's I/O thread through a pipe, which is the session's poll fd, so
 * every backend call happens on the I/O thread as with a real server.
 * What is tested is the engine's scheduling: ordering of overlapping
 * writes across reconnects, flush barriers, retries, deadlines, events,
 * and the lease fence (writes refused, a write in flight cut off).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/monotime.h"
#include "io/engine.h"
#include "io/fence.h"
#include "io/iosync.h"

#define DISK 65536
#define MAXLOG 256
#define WAIT_MS 5000

enum cmd { CMD_RELEASE_ALL, CMD_RELEASE_FIRST, CMD_BREAK };

struct mock {
    struct keel_engine *eng;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pipefd[2];
    bool up;
    int connect_failures;     /* connects still to refuse; -1 = all */
    bool hold;
    struct keel_ioreq *held[64];
    int nheld;
    char log[MAXLOG][40];
    int nlog;
    int drops, connects;
    int retry_later_left;
    enum cmd cmds[16];
    int ncmds;
    char events[16][160];
    int nevents;
    unsigned char disk[DISK];
};

static void mlog(struct mock *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mlog(struct mock *m, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&m->lock);
    if (m->nlog < MAXLOG) {
        va_start(ap, fmt);
        vsnprintf(m->log[m->nlog++], sizeof(m->log[0]), fmt, ap);
        va_end(ap);
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void apply_and_complete(struct mock *m, struct keel_ioreq *r)
{
    if (r->op == KEEL_IO_WRITE)
        memcpy(m->disk + r->offset, r->buf, r->len);
    else if (r->op == KEEL_IO_READ)
        memcpy(r->buf, m->disk + r->offset, r->len);
    r->xfer = r->len;
    mlog(m, "done %s@%llu", keel_io_op_name(r->op), (unsigned long long)r->offset);
    keel_engine_complete(m->eng, r, KEEL_OUT_OK, NULL);
}

static int m_connect(void *be, struct keel_error *err)
{
    struct mock *m = be;
    bool refuse;

    pthread_mutex_lock(&m->lock);
    m->connects++;
    refuse = m->connect_failures != 0;
    if (m->connect_failures > 0)
        m->connect_failures--;
    pthread_mutex_unlock(&m->lock);
    if (refuse)
        return keel_error_set(err, KEEL_E_CONNECT, ECONNREFUSED, "mock: connection refused");
    m->up = true;
    mlog(m, "up");
    keel_engine_session_up(m->eng);
    return 0;
}

static int m_poll_fd(void *be)
{
    return ((struct mock *)be)->pipefd[0];
}

static short m_poll_events(void *be)
{
    (void)be;
    return POLLIN;
}

static int m_service(void *be, short revents, struct keel_error *err)
{
    struct mock *m = be;
    char c;

    (void)revents, (void)err;
    if (read(m->pipefd[0], &c, 1) != 1)
        return 0;
    pthread_mutex_lock(&m->lock);
    while (m->ncmds > 0) {
        enum cmd cmd = m->cmds[0];

        memmove(m->cmds, m->cmds + 1, (size_t)(m->ncmds - 1) * sizeof(m->cmds[0]));
        m->ncmds--;
        if (cmd == CMD_BREAK) {
            struct keel_error e;

            pthread_mutex_unlock(&m->lock);
            keel_error_set(&e, KEEL_E_CONNECT, ECONNRESET, "mock: connection reset");
            keel_engine_session_failed(m->eng, &e);
            pthread_mutex_lock(&m->lock);
            continue;
        }
        while (m->nheld > 0) {
            struct keel_ioreq *r = m->held[0];

            memmove(m->held, m->held + 1, (size_t)(m->nheld - 1) * sizeof(m->held[0]));
            m->nheld--;
            pthread_mutex_unlock(&m->lock);
            apply_and_complete(m, r);
            pthread_mutex_lock(&m->lock);
            if (cmd == CMD_RELEASE_FIRST)
                break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int m_start(void *be, struct keel_ioreq *r, struct keel_error *err)
{
    struct mock *m = be;
    bool hold, later;

    (void)err;
    mlog(m, "start %s@%llu", keel_io_op_name(r->op), (unsigned long long)r->offset);
    pthread_mutex_lock(&m->lock);
    later = m->retry_later_left > 0;
    if (later)
        m->retry_later_left--;
    hold = m->hold && !later;
    if (hold)
        m->held[m->nheld++] = r;
    pthread_mutex_unlock(&m->lock);
    if (later)
        keel_engine_complete(m->eng, r, KEEL_OUT_RETRY_LATER, NULL);
    else if (!hold)
        apply_and_complete(m, r);
    return 0;
}

static void m_drop(void *be)
{
    struct mock *m = be;

    pthread_mutex_lock(&m->lock);
    m->drops++;
    m->up = false;
    m->nheld = 0; /* the engine takes the held requests back */
    pthread_mutex_unlock(&m->lock);
    mlog(m, "drop");
}

static const struct keel_engine_ops mock_ops = {
    .connect = m_connect,
    .poll_fd = m_poll_fd,
    .poll_events = m_poll_events,
    .service = m_service,
    .start = m_start,
    .drop = m_drop,
};

static void on_event(void *opaque, enum keel_io_event ev, const char *name, const char *msg)
{
    struct mock *m = opaque;

    pthread_mutex_lock(&m->lock);
    if (m->nevents < 16)
        snprintf(m->events[m->nevents++], sizeof(m->events[0]), "%d %s: %s", (int)ev, name, msg);
    pthread_mutex_unlock(&m->lock);
}

static struct mock *mock_new(unsigned timeout_ms)
{
    struct mock *m = calloc(1, sizeof(*m));
    struct keel_io_opts o;

    ck_assert_ptr_nonnull(m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    ck_assert_int_eq(pipe(m->pipefd), 0);
    keel_io_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 1000;
    o.event_cb = on_event;
    o.event_opaque = m;
    m->eng = keel_engine_new("mock://disk", &mock_ops, m, &o);
    ck_assert_ptr_nonnull(m->eng);
    return m;
}

static void mock_free(struct mock *m)
{
    keel_engine_free(m->eng);
    close(m->pipefd[0]);
    close(m->pipefd[1]);
    free(m);
}

static void command(struct mock *m, enum cmd c)
{
    pthread_mutex_lock(&m->lock);
    m->cmds[m->ncmds++] = c;
    pthread_mutex_unlock(&m->lock);
    ck_assert_int_eq(write(m->pipefd[1], "x", 1), 1);
}

static bool logged(struct mock *m, const char *what, int from)
{
    for (int i = from; i < m->nlog; i++)
        if (strcmp(m->log[i], what) == 0)
            return true;
    return false;
}

/* Wait (bounded) until `what` appears in the log at index >= from. */
static void wait_log(struct mock *m, const char *what, int from)
{
    uint64_t end = keel_now_ns() + (uint64_t)WAIT_MS * KEEL_NS_PER_MS;

    pthread_mutex_lock(&m->lock);
    while (!logged(m, what, from) && keel_now_ns() < end) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    ck_assert_msg(logged(m, what, from), "'%s' never happened (log has %d entries, last '%s')",
                  what, m->nlog, m->nlog ? m->log[m->nlog - 1] : "");
}

static int log_index(struct mock *m, const char *what, int from)
{
    int idx = -1;

    pthread_mutex_lock(&m->lock);
    for (int i = from; i < m->nlog && idx < 0; i++)
        if (strcmp(m->log[i], what) == 0)
            idx = i;
    pthread_mutex_unlock(&m->lock);
    return idx;
}

static void submit(struct mock *m, struct keel_iosync *s, struct keel_ioreq *r,
                   enum keel_io_op op, uint64_t off, size_t len, void *buf)
{
    struct keel_error err = KEEL_ERROR_INIT;

    memset(r, 0, sizeof(*r));
    r->op = op;
    r->offset = off;
    r->len = len;
    r->buf = buf;
    keel_iosync_prepare(s, r);
    ck_assert_msg(keel_engine_submit(m->eng, r, m, &err) == 0, "%s", err.msg);
}

START_TEST(first_connect_failure_fails_start)
{
    struct mock *m = mock_new(1000);
    struct keel_error err = KEEL_ERROR_INIT;

    m->connect_failures = -1;
    ck_assert_int_eq(keel_engine_start(m->eng, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CONNECT);
    ck_assert_str_eq(err.msg, "mock://disk: mock: connection refused");
    mock_free(m);
}
END_TEST

/*
 * Two overlapping writes and one beside them: the second overlapping write
 * waits for the first, also when the session breaks with both outstanding,
 * so the disk ends with the later one.
 */
START_TEST(overlapping_writes_keep_order_across_reconnect)
{
    struct mock *m = mock_new(10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq w1, w2, w3;
    unsigned char a[4096], b[4096], c[4096];
    struct keel_iosync s;
    int mark;

    memset(a, 'A', sizeof(a));
    memset(b, 'B', sizeof(b));
    memset(c, 'C', sizeof(c));
    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    m->hold = true;
    keel_iosync_init(&s);
    submit(m, &s, &w1, KEEL_IO_WRITE, 0, 4096, a);
    submit(m, &s, &w2, KEEL_IO_WRITE, 2048, 4096, b);
    submit(m, &s, &w3, KEEL_IO_WRITE, 8192, 4096, c);
    wait_log(m, "start write@0", 0);
    wait_log(m, "start write@8192", 0);
    ck_assert_msg(!logged(m, "start write@2048", 0), "overlapping write started early");

    mark = m->nlog;
    command(m, CMD_BREAK);
    wait_log(m, "drop", mark);
    wait_log(m, "up", mark);
    wait_log(m, "start write@0", mark);
    wait_log(m, "start write@8192", mark);
    ck_assert(!logged(m, "start write@2048", mark));

    m->hold = false;
    command(m, CMD_RELEASE_ALL);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(w1.result, 0);
    ck_assert_int_eq(w2.result, 0);
    ck_assert_int_eq(w3.result, 0);
    ck_assert_int_lt(log_index(m, "done write@0", mark), log_index(m, "start write@2048", mark));
    ck_assert_int_eq(m->disk[0], 'A');
    ck_assert_int_eq(m->disk[2047], 'A');
    ck_assert_int_eq(m->disk[2048], 'B');
    ck_assert_int_eq(m->disk[6143], 'B');
    ck_assert_int_eq(m->disk[8192], 'C');
    ck_assert_int_eq(m->drops, 1);
    ck_assert_uint_eq(keel_engine_session(m->eng), 2);
    /* The outage is reported: lost, then reconnected with 2 requests resent. */
    ck_assert_int_ge(m->nevents, 2);
    ck_assert_msg(strstr(m->events[0], "session 1 lost: mock: connection reset") != NULL, "%s",
                  m->events[0]);
    ck_assert_msg(strstr(m->events[m->nevents - 1], "2 requests resent") != NULL, "%s",
                  m->events[m->nevents - 1]);
    mock_free(m);
}
END_TEST

START_TEST(flush_waits_for_earlier_writes_only)
{
    struct mock *m = mock_new(10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq w1, f, w2;
    unsigned char a[512], b[512];
    struct keel_iosync s;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    m->hold = true;
    keel_iosync_init(&s);
    submit(m, &s, &w1, KEEL_IO_WRITE, 0, 512, a);
    submit(m, &s, &f, KEEL_IO_FLUSH, 0, 0, NULL);
    submit(m, &s, &w2, KEEL_IO_WRITE, 4096, 512, b);
    wait_log(m, "start write@0", 0);
    wait_log(m, "start write@4096", 0); /* a later write passes the flush */
    ck_assert(!logged(m, "start flush@0", 0));
    command(m, CMD_RELEASE_FIRST); /* w1 done: now the flush may start */
    wait_log(m, "start flush@0", 0);
    m->hold = false;
    command(m, CMD_RELEASE_ALL);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(f.result, 0);
    mock_free(m);
}
END_TEST

START_TEST(busy_storage_is_retried)
{
    struct mock *m = mock_new(10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq r;
    unsigned char a[512];
    struct keel_iosync s;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    m->retry_later_left = 3;
    memset(a, 'x', sizeof(a));
    keel_iosync_init(&s);
    submit(m, &s, &r, KEEL_IO_WRITE, 512, 512, a);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(r.result, 0);
    ck_assert_uint_eq(r.priv.attempts, 4);
    ck_assert_int_eq(m->disk[512], 'x');
    mock_free(m);
}
END_TEST

/* Storage that stays away: the request fails at its deadline, with the reason. */
START_TEST(timeout_during_outage_names_the_last_error)
{
    struct mock *m = mock_new(600);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq r;
    unsigned char a[512];
    struct keel_iosync s;
    uint64_t t0;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    m->connect_failures = -1;
    command(m, CMD_BREAK);
    wait_log(m, "drop", 0);
    keel_iosync_init(&s);
    t0 = keel_now_ns();
    submit(m, &s, &r, KEEL_IO_READ, 0, 512, a);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(r.result, -1);
    ck_assert_int_eq(r.err.code, KEEL_E_TIMEOUT);
    ck_assert_msg(strncmp(r.err.msg, "mock://disk: read of 512 bytes at offset 0: timed out after ",
                          60) == 0, "%s", r.err.msg);
    ck_assert_msg(strstr(r.err.msg, "; last error: mock: connection refused") != NULL, "%s",
                  r.err.msg);
    /* It did not hang: it ended near its deadline (generous bound). */
    ck_assert_uint_lt(keel_now_ns() - t0, 5 * KEEL_NS_PER_S);
    ck_assert_int_gt(m->connects, 1);
    mock_free(m);
}
END_TEST

/* A session that never answers a started request is dropped; the others are resent. */
START_TEST(stuck_request_drops_the_session)
{
    struct mock *m = mock_new(500);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq r;
    unsigned char a[512];
    struct keel_iosync s;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    m->hold = true;
    keel_iosync_init(&s);
    submit(m, &s, &r, KEEL_IO_WRITE, 0, 512, a);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(r.result, -1);
    ck_assert_int_eq(r.err.code, KEEL_E_TIMEOUT);
    ck_assert_int_ge(m->drops, 1);
    mock_free(m);
}
END_TEST

/* Closing waits for what was accepted. */
START_TEST(close_waits_for_requests)
{
    struct mock *m = mock_new(10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_ioreq r[8];
    unsigned char a[512];
    struct keel_iosync s;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    memset(a, 'z', sizeof(a));
    keel_iosync_init(&s);
    for (int i = 0; i < 8; i++)
        submit(m, &s, &r[i], KEEL_IO_WRITE, (uint64_t)i * 512, 512, a);
    keel_engine_free(m->eng);
    m->eng = NULL;
    ck_assert_uint_eq(s.outstanding, 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(r[i].result, 0);
    ck_assert_int_eq(m->disk[7 * 512], 'z');
    keel_iosync_release(&s);
    close(m->pipefd[0]);
    close(m->pipefd[1]);
    free(m);
}
END_TEST

/* A fenced engine: writes only while the fence allows; reads and flushes always. */
START_TEST(fence_gates_writes)
{
    struct mock *m = mock_new(5000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *f = keel_fence_new("lease LS:SDM");
    struct keel_ioreq r;
    unsigned char a[512], b[512];
    uint64_t now;

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    keel_engine_set_fence(m->eng, f);
    memset(a, 'w', sizeof(a));
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_WRITE, r.len = 512, r.buf = a;
    ck_assert_int_eq(keel_engine_call(m->eng, &r, m, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FENCED);
    ck_assert_str_eq(err.msg, "mock://disk: write of 512 bytes at offset 0: lease LS:SDM: write "
                              "refused: lease not held");
    ck_assert_int_eq(m->disk[0], 0);
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_READ, r.len = 512, r.buf = b;
    ck_assert_msg(keel_engine_call(m->eng, &r, m, &err) == 0, "%s", err.msg);
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_FLUSH;
    ck_assert_msg(keel_engine_call(m->eng, &r, m, &err) == 0, "%s", err.msg);

    /* Armed: writes pass. */
    now = keel_boottime_ns();
    keel_fence_arm(f, now + 10 * KEEL_NS_PER_S, now + 11 * KEEL_NS_PER_S);
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_WRITE, r.len = 512, r.buf = a;
    ck_assert_msg(keel_engine_call(m->eng, &r, m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->disk[0], 'w');

    /* Less than an io timeout left: refused, though the lease still holds. */
    keel_fence_arm(f, now, now + 10 * KEEL_NS_PER_S);
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_WRITE_ZEROES, r.len = 512;
    ck_assert_int_eq(keel_engine_call(m->eng, &r, m, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FENCED);
    ck_assert_msg(strstr(err.msg, "less than one io timeout") != NULL, "%s", err.msg);
    ck_assert_int_eq(m->disk[0], 'w');
    ck_assert_uint_eq(keel_fence_refused(f), 2);

    keel_engine_set_fence(m->eng, NULL);
    keel_fence_free(f);
    memset(&r, 0, sizeof(r));
    r.op = KEEL_IO_WRITE_ZEROES, r.len = 512;
    ck_assert_msg(keel_engine_call(m->eng, &r, m, &err) == 0, "%s", err.msg);
    mock_free(m);
}
END_TEST

/* A write in flight when the fence's deadline passes is cut off with its session. */
START_TEST(fence_cuts_write_in_flight)
{
    struct mock *m = mock_new(10000);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_fence *f = keel_fence_new("lease LS:SDM");
    struct keel_ioreq r, r2;
    unsigned char a[512];
    struct keel_iosync s;
    uint64_t t0 = keel_now_ns(), now = keel_boottime_ns();

    ck_assert_msg(keel_engine_start(m->eng, &err) == 0, "%s", err.msg);
    keel_fence_arm(f, now + 200 * KEEL_NS_PER_MS, now + 400 * KEEL_NS_PER_MS);
    keel_engine_set_fence(m->eng, f);
    m->hold = true;
    memset(a, 'x', sizeof(a));
    keel_iosync_init(&s);
    submit(m, &s, &r, KEEL_IO_WRITE, 0, 512, a);
    wait_log(m, "start write@0", 0);
    keel_iosync_wait(&s);
    ck_assert_int_eq(r.result, -1);
    ck_assert_int_eq(r.err.code, KEEL_E_FENCED);
    ck_assert_msg(strstr(r.err.msg, "lease deadline passed") != NULL, "%s", r.err.msg);
    ck_assert_int_ge(m->drops, 1);
    ck_assert_int_eq(m->disk[0], 0);
    /* Cut at the deadline (0.4 s), not at the io timeout (10 s). */
    ck_assert_uint_lt(keel_now_ns() - t0, 5 * KEEL_NS_PER_S);
    /* The fence stays shut: a renewal cannot reopen it. */
    ck_assert(!keel_fence_extend(f, keel_boottime_ns() + KEEL_NS_PER_S,
                                 keel_boottime_ns() + 2 * KEEL_NS_PER_S));
    submit(m, &s, &r2, KEEL_IO_WRITE, 512, 512, a);
    keel_iosync_wait(&s);
    keel_iosync_release(&s);
    ck_assert_int_eq(r2.err.code, KEEL_E_FENCED);
    keel_engine_set_fence(m->eng, NULL);
    keel_fence_free(f);
    mock_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, first_connect_failure_fails_start);
    tcase_add_test(tc, overlapping_writes_keep_order_across_reconnect);
    tcase_add_test(tc, flush_waits_for_earlier_writes_only);
    tcase_add_test(tc, busy_storage_is_retried);
    tcase_add_test(tc, timeout_during_outage_names_the_last_error);
    tcase_add_test(tc, stuck_request_drops_the_session);
    tcase_add_test(tc, close_waits_for_requests);
    tcase_add_test(tc, fence_gates_writes);
    tcase_add_test(tc, fence_cuts_write_in_flight);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

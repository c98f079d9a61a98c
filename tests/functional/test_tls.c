/*
 * keeld's API streams (hsm/tls.h) against a real peer: an echo server
 * thread on 127.0.0.1 that accepts with keel_stream_accept(), and a test
 * PKI made by the openssl tool (tests/harness/certs.h), so the certificates
 * are what an administrator would make rather than what tls.c expects.
 *
 * SIGPIPE keeps its default action here on purpose: keeld ignores it, but
 * the library must not depend on that, and a stray write to a closed
 * socket then kills the test instead of going unnoticed.
 *
 * No assertion depends on timing: every wait is bounded and fails only when
 * the event never comes.  Short sleeps only give a thread the chance to
 * block before the step that must wake it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "hsm/tls.h"
#include "tests/harness/certs.h"
#include "tests/harness/lab.h"

/* Waits that should end long before this; it only bounds a broken run. */
#define WAIT_MS 30000
/* The server's handshake timeout in the idle-peer test. */
#define IDLE_MS 300
#define MAX_RESULTS 8

/* ---- the echo server ---- */

struct accept_result {
    int rc;
    struct keel_error err;
    char peer[256];
    char addr[64];
    uint64_t elapsed_ms;
};

struct server {
    int lfd;
    unsigned port;
    struct keel_tls_ctx *ctx;   /* borrowed; NULL: clear text */
    int accept_timeout_ms;
    bool close_at_once;         /* close each stream right after its handshake */
    int stop_fd;
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t lock;       /* protects results, nresults */
    pthread_cond_t cond;
    struct accept_result results[MAX_RESULTS];
    size_t nresults;
};

static void echo(struct server *srv, struct keel_stream *st)
{
    char buf[16384];

    /* Short reads, so that a stop is seen even with a client still connected. */
    while (!atomic_load(&srv->stop)) {
        struct keel_error err = KEEL_ERROR_INIT;
        ssize_t n = keel_stream_read(st, buf, sizeof(buf), 100, &err);

        if (n == -1 && err.code == KEEL_E_TIMEOUT)
            continue;
        if (n <= 0 || keel_stream_write(st, buf, (size_t)n, WAIT_MS, &err) == -1)
            return;
    }
}

static void *server_main(void *opaque)
{
    struct server *srv = opaque;

    for (;;) {
        struct pollfd p[2] = {
            { .fd = srv->lfd, .events = POLLIN },
            { .fd = srv->stop_fd, .events = POLLIN },
        };
        struct accept_result res = { .err = KEEL_ERROR_INIT };
        struct keel_stream *st = NULL;
        uint64_t start;
        int fd;

        if (poll(p, 2, -1) == -1 && errno != EINTR)
            break;
        if (p[1].revents != 0)
            break;
        if (p[0].revents == 0)
            continue;
        fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -1)
            continue;
        start = keel_now_ns();
        res.rc = keel_stream_accept(srv->ctx, fd, srv->accept_timeout_ms, &st, &res.err);
        res.elapsed_ms = (keel_now_ns() - start) / KEEL_NS_PER_MS;
        if (res.rc == 0) {
            keel_strlcpy(res.peer, keel_stream_peer(st), sizeof(res.peer));
            keel_strlcpy(res.addr, keel_stream_addr(st), sizeof(res.addr));
        }
        pthread_mutex_lock(&srv->lock);
        if (srv->nresults < MAX_RESULTS)
            srv->results[srv->nresults++] = res;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->lock);
        if (st != NULL && !srv->close_at_once)
            echo(srv, st);
        keel_stream_close(st);
    }
    return NULL;
}

static void server_start(struct server *srv, struct keel_tls_ctx *ctx, int accept_timeout_ms,
                         bool close_at_once)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
    socklen_t len = sizeof(sin);

    memset(srv, 0, sizeof(*srv));
    srv->ctx = ctx;
    srv->accept_timeout_ms = accept_timeout_ms;
    srv->close_at_once = close_at_once;
    atomic_init(&srv->stop, false);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(srv->lfd, 0);
    ck_assert_msg(bind(srv->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind: %s",
                  strerror(errno));
    ck_assert_int_eq(listen(srv->lfd, 16), 0);
    ck_assert_int_eq(getsockname(srv->lfd, (struct sockaddr *)&sin, &len), 0);
    srv->port = ntohs(sin.sin_port);
    srv->stop_fd = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_ge(srv->stop_fd, 0);
    ck_assert_int_eq(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void server_stop(struct server *srv)
{
    uint64_t one = 1;

    atomic_store(&srv->stop, true);
    ck_assert_int_eq(write(srv->stop_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
    pthread_join(srv->thread, NULL);
    close(srv->lfd);
    close(srv->stop_fd);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->lock);
}

/* The outcome of the server's i-th accept (0, 1, ...), waiting for it. */
static struct accept_result server_result(struct server *srv, size_t i)
{
    struct accept_result res;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&srv->lock);
    while (srv->nresults <= i) {
        if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == ETIMEDOUT)
            break;
    }
    ck_assert_msg(srv->nresults > i, "no accept #%zu within %d ms", i, WAIT_MS);
    res = srv->results[i];
    pthread_mutex_unlock(&srv->lock);
    return res;
}

/* ---- the lab: a PKI and a server context ---- */

struct lab {
    char *dir;
    struct keel_lab_certs certs;
    struct keel_tls_ctx *server_ctx;
};

static void lab_init(struct lab *lab)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_config c;

    lab->dir = keel_lab_tmpdir("tls", &err);
    ck_assert_msg(lab->dir != NULL, "%s", err.msg);
    ck_assert_msg(keel_lab_certs_make(lab->dir, &lab->certs, &err) == 0, "%s", err.msg);
    c = (struct keel_tls_config){
        .cert = lab->certs.server_cert,
        .key = lab->certs.server_key,
        .ca = lab->certs.ca,
    };
    ck_assert_msg(keel_tls_server_new(&c, &lab->server_ctx, &err) == 0, "%s", err.msg);
}

static void lab_release(struct lab *lab)
{
    keel_tls_ctx_free(lab->server_ctx);
    keel_lab_tmpdir_remove(lab->dir);
    free(lab->dir);
}

/* A client context; cert and key may be NULL. */
static struct keel_tls_ctx *client_ctx(const char *cert, const char *key, const char *ca)
{
    struct keel_tls_config c = { .cert = cert, .key = key, .ca = ca };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_ctx *ctx = NULL;

    ck_assert_msg(keel_tls_client_new(&c, &ctx, &err) == 0, "%s", err.msg);
    return ctx;
}

static struct keel_stream *connect_ok(struct keel_tls_ctx *ctx, unsigned port,
                                      const char *verify_name)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_stream *s = NULL;

    ck_assert_msg(keel_stream_connect(ctx, "127.0.0.1", port, verify_name, WAIT_MS, &s, &err)
                  == 0, "%s", err.msg);
    return s;
}

/* Write line and read back exactly as many bytes, which must be the same. */
static void round_trip(struct keel_stream *s, const char *line)
{
    struct keel_error err = KEEL_ERROR_INIT;
    size_t len = strlen(line);
    char buf[256];
    size_t got = 0;

    ck_assert_uint_lt(len, sizeof(buf));
    ck_assert_msg(keel_stream_write(s, line, len, WAIT_MS, &err) == 0, "%s", err.msg);
    while (got < len) {
        ssize_t n = keel_stream_read(s, buf + got, len - got, WAIT_MS, &err);

        ck_assert_msg(n > 0, "read: %zd %s", n, err.msg);
        got += (size_t)n;
    }
    ck_assert_mem_eq(buf, line, len);
}

/*
 * The server refused the client: a TLS 1.3 client has finished its
 * handshake before the server checks its certificate, so the refusal shows
 * up at connect or at the first exchange.
 */
static void assert_client_refused(struct keel_tls_ctx *ctx, unsigned port)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_stream *s = NULL;
    char buf[16];
    ssize_t n;

    if (keel_stream_connect(ctx, "127.0.0.1", port, NULL, WAIT_MS, &s, &err) == -1) {
        ck_assert_msg(err.code == KEEL_E_AUTH || err.code == KEEL_E_IO, "%s", err.msg);
        return;
    }
    /* The write may still land in the socket buffer before the alert arrives. */
    if (keel_stream_write(s, "hello\n", 6, WAIT_MS, &err) == 0) {
        n = keel_stream_read(s, buf, sizeof(buf), WAIT_MS, &err);
        ck_assert_msg(n == -1, "read %zd bytes from a server that refused us", n);
    }
    ck_assert_msg(err.code == KEEL_E_AUTH || err.code == KEEL_E_IO, "%d %s", err.code, err.msg);
    keel_stream_close(s);
}

/* A plain TCP socket connected to the server. */
static int raw_connect(unsigned port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

/* Read fd until end of file or an error: the server has dropped us. */
static void assert_dropped(int fd)
{
    uint64_t deadline = keel_now_ns() + WAIT_MS * KEEL_NS_PER_MS;
    char buf[4096];

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        ck_assert_msg(keel_now_ns() < deadline, "the server kept the connection");
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return;
    }
}

/* ---- tests ---- */

START_TEST(mutual_tls_round_trip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct accept_result res;
    struct keel_tls_ctx *ctx;
    struct keel_stream *s;
    struct server srv;
    struct lab lab;
    char expect[64];
    char buf[16];

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);
    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.ca);

    /* By IP address: matched against the IP SAN. */
    s = connect_ok(ctx, srv.port, "127.0.0.1");
    ck_assert_str_eq(keel_stream_peer(s), "CN=keeld");
    snprintf(expect, sizeof(expect), "127.0.0.1:%u", srv.port);
    ck_assert_str_eq(keel_stream_addr(s), expect);
    round_trip(s, "hello over tls\n");
    res = server_result(&srv, 0);
    ck_assert_msg(res.rc == 0, "%s", res.err.msg);
    ck_assert_str_eq(res.peer, "CN=keel-engine");
    ck_assert_msg(keel_str_has_prefix(res.addr, "127.0.0.1:"), "%s", res.addr);

    /* Nothing to read: the read times out and the stream still works after. */
    ck_assert_int_eq(keel_stream_read(s, buf, sizeof(buf), 50, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_TIMEOUT);
    ck_assert_msg(strstr(err.msg, expect) != NULL, "%s", err.msg);
    round_trip(s, "still here\n");

    /* One record read a byte at a time: the rest waits inside OpenSSL, not on the socket. */
    ck_assert_msg(keel_stream_write(s, "bytewise\n", 9, WAIT_MS, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < 9; i++) {
        ck_assert_msg(keel_stream_read(s, buf + i, 1, WAIT_MS, &err) == 1, "byte %zu: %s", i,
                      err.msg);
    }
    ck_assert_mem_eq(buf, "bytewise\n", 9);
    keel_stream_close(s);

    /* By DNS name (SNI and the DNS SAN), and with the chain alone. */
    s = connect_ok(ctx, srv.port, "localhost");
    round_trip(s, "by name\n");
    keel_stream_close(s);
    s = connect_ok(ctx, srv.port, NULL);
    round_trip(s, "chain only\n");
    keel_stream_close(s);
    ck_assert_int_eq(server_result(&srv, 2).rc, 0);

    keel_tls_ctx_free(ctx);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(client_without_certificate_refused)
{
    struct accept_result res;
    struct keel_tls_ctx *ctx;
    struct server srv;
    struct lab lab;

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);
    ctx = client_ctx(NULL, NULL, lab.certs.ca);
    assert_client_refused(ctx, srv.port);
    res = server_result(&srv, 0);
    ck_assert_int_eq(res.rc, -1);
    ck_assert_int_eq(res.err.code, KEEL_E_AUTH);
    ck_assert_msg(strstr(res.err.msg, "tls handshake with 127.0.0.1:") != NULL
                  && strstr(res.err.msg, "did not return a certificate") != NULL,
                  "%s", res.err.msg);
    keel_tls_ctx_free(ctx);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(client_of_other_ca_refused)
{
    struct accept_result res;
    struct keel_tls_ctx *ctx;
    struct server srv;
    struct lab lab;

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);
    /* Same CN as the good client, and it trusts the right CA: only its chain is wrong. */
    ctx = client_ctx(lab.certs.other_client_cert, lab.certs.other_client_key, lab.certs.ca);
    assert_client_refused(ctx, srv.port);
    res = server_result(&srv, 0);
    ck_assert_int_eq(res.rc, -1);
    ck_assert_int_eq(res.err.code, KEEL_E_AUTH);
    ck_assert_msg(strstr(res.err.msg, "certificate verify failed") != NULL, "%s", res.err.msg);
    keel_tls_ctx_free(ctx);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(client_refuses_server)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_stream *s = NULL;
    struct keel_tls_ctx *ctx;
    struct server srv;
    struct lab lab;

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);

    /* A client that trusts another CA. */
    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.other_ca);
    ck_assert_int_eq(keel_stream_connect(ctx, "127.0.0.1", srv.port, NULL, WAIT_MS, &s, &err),
                     -1);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(err.code, KEEL_E_AUTH);
    ck_assert_msg(strstr(err.msg, "certificate verify failed") != NULL, "%s", err.msg);
    ck_assert_int_eq(server_result(&srv, 0).rc, -1);
    keel_tls_ctx_free(ctx);

    /* The right CA, but a name the certificate does not carry. */
    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.ca);
    keel_error_clear(&err);
    ck_assert_int_eq(keel_stream_connect(ctx, "127.0.0.1", srv.port, "keeld.example.org",
                                         WAIT_MS, &s, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_AUTH);
    ck_assert_msg(strstr(err.msg, "hostname mismatch") != NULL, "%s", err.msg);
    keel_error_clear(&err);
    ck_assert_int_eq(keel_stream_connect(ctx, "127.0.0.1", srv.port, "127.0.0.2", WAIT_MS, &s,
                                         &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_AUTH);
    ck_assert_msg(strstr(err.msg, "IP address mismatch") != NULL, "%s", err.msg);
    ck_assert_int_eq(server_result(&srv, 2).rc, -1);
    keel_tls_ctx_free(ctx);

    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(idle_peer_times_out)
{
    struct accept_result res;
    struct server srv;
    struct lab lab;
    int fd;

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, IDLE_MS, false);
    fd = raw_connect(srv.port);
    /* fd stays open and silent: only the server's own timeout can end the accept. */
    res = server_result(&srv, 0);
    ck_assert_int_eq(res.rc, -1);
    ck_assert_int_eq(res.err.code, KEEL_E_TIMEOUT);
    ck_assert_msg(strstr(res.err.msg, "tls handshake with 127.0.0.1:") != NULL, "%s",
                  res.err.msg);
    ck_assert_uint_ge(res.elapsed_ms, IDLE_MS);
    assert_dropped(fd);
    close(fd);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(garbage_refused_server_keeps_working)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: keeld\r\n\r\n";
    unsigned char junk[1024];
    struct accept_result res;
    struct keel_tls_ctx *ctx;
    struct keel_stream *s;
    struct server srv;
    struct lab lab;
    int fd;

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);

    fd = raw_connect(srv.port);
    ck_assert_int_eq(send(fd, http, sizeof(http) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(http) - 1);
    res = server_result(&srv, 0);
    ck_assert_int_eq(res.rc, -1);
    ck_assert_int_eq(res.err.code, KEEL_E_AUTH);
    assert_dropped(fd);
    close(fd);

    /* A TLS handshake record header with a bogus body, then the peer hangs up. */
    junk[0] = 0x16;
    junk[1] = 0x03;
    junk[2] = 0x01;
    for (size_t i = 3; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    fd = raw_connect(srv.port);
    ck_assert_int_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
    shutdown(fd, SHUT_WR);
    res = server_result(&srv, 1);
    ck_assert_int_eq(res.rc, -1);
    ck_assert_int_eq(res.err.code, KEEL_E_AUTH);
    close(fd);

    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.ca);
    s = connect_ok(ctx, srv.port, "localhost");
    round_trip(s, "after the garbage\n");
    ck_assert_int_eq(server_result(&srv, 2).rc, 0);
    keel_stream_close(s);
    keel_tls_ctx_free(ctx);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

/* A thread reading until it has want bytes, or a read fails or ends. */
struct reader {
    struct keel_stream *s;
    size_t want;
    unsigned char *buf;
    size_t got;
    ssize_t last;
    struct keel_error err;
    atomic_bool started;
    pthread_t thread;
};

static void *reader_main(void *opaque)
{
    struct reader *r = opaque;

    atomic_store(&r->started, true);
    while (r->got < r->want) {
        r->last = keel_stream_read(r->s, r->buf + r->got, r->want - r->got, -1, &r->err);
        if (r->last <= 0)
            break;
        r->got += (size_t)r->last;
    }
    return NULL;
}

static void reader_start(struct reader *r, struct keel_stream *s, size_t want)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->want = want;
    r->buf = malloc(want);
    r->err = (struct keel_error)KEEL_ERROR_INIT;
    ck_assert_ptr_nonnull(r->buf);
    atomic_init(&r->started, false);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, reader_main, r), 0);
    while (!atomic_load(&r->started))
        keel_sleep_ms(1);
    /* Let it get into its poll(); nothing below relies on it having done so. */
    keel_sleep_ms(100);
}

static void reader_join(struct reader *r)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    ck_assert_msg(pthread_timedjoin_np(r->thread, NULL, &ts) == 0,
                  "reader still blocked after %d ms", WAIT_MS);
}

START_TEST(read_and_write_from_two_threads)
{
    enum { BULK = 256 * 1024, CHUNK = 4096 };
    struct keel_error err = KEEL_ERROR_INIT;
    _cleanup_free_ unsigned char *data = malloc(BULK);
    struct keel_tls_ctx *ctx;
    struct keel_stream *s;
    struct reader r;
    struct server srv;
    struct lab lab;
    char buf[8];

    ck_assert_ptr_nonnull(data);
    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, false);
    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.ca);
    s = connect_ok(ctx, srv.port, "localhost");

    /* The reader waits on the socket without the lock, so this write goes through. */
    reader_start(&r, s, 5);
    ck_assert_msg(keel_stream_write(s, "ping\n", 5, WAIT_MS, &err) == 0, "%s", err.msg);
    reader_join(&r);
    ck_assert_uint_eq(r.got, 5);
    ck_assert_mem_eq(r.buf, "ping\n", 5);
    free(r.buf);

    /* Many records each way at once, and every byte back in order. */
    for (size_t i = 0; i < BULK; i++)
        data[i] = (unsigned char)(i * 7 + i / 251);
    reader_start(&r, s, BULK);
    for (size_t off = 0; off < BULK; off += CHUNK)
        ck_assert_msg(keel_stream_write(s, data + off, CHUNK, WAIT_MS, &err) == 0, "%s",
                      err.msg);
    reader_join(&r);
    ck_assert_msg(r.got == BULK, "got %zu of %d: %s", r.got, BULK, r.err.msg);
    ck_assert_mem_eq(r.buf, data, BULK);
    free(r.buf);

    /* Shutdown wakes a reader that waits for ever. */
    reader_start(&r, s, 1);
    keel_stream_shutdown(s);
    reader_join(&r);
    ck_assert_int_eq(r.last, -1);
    ck_assert_int_eq(r.err.code, KEEL_E_CLOSED);
    free(r.buf);
    ck_assert_int_eq(keel_stream_write(s, "x", 1, WAIT_MS, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CLOSED);
    keel_error_clear(&err);
    ck_assert_int_eq(keel_stream_read(s, buf, sizeof(buf), WAIT_MS, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CLOSED);

    keel_stream_close(s);
    keel_tls_ctx_free(ctx);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

START_TEST(clear_text_round_trip)
{
    struct accept_result res;
    struct keel_stream *s;
    struct server srv;
    struct reader r;

    server_start(&srv, NULL, WAIT_MS, false);
    s = connect_ok(NULL, srv.port, NULL);
    ck_assert_str_eq(keel_stream_peer(s), "insecure");
    round_trip(s, "hello in clear\n");
    res = server_result(&srv, 0);
    ck_assert_msg(res.rc == 0, "%s", res.err.msg);
    ck_assert_str_eq(res.peer, "insecure");

    /* The same locking contract as TLS. */
    reader_start(&r, s, 5);
    keel_stream_shutdown(s);
    reader_join(&r);
    ck_assert_int_eq(r.err.code, KEEL_E_CLOSED);
    free(r.buf);

    keel_stream_close(s);
    server_stop(&srv);
}
END_TEST

START_TEST(bad_configurations_refused)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_ctx *ctx = NULL;
    struct keel_tls_config c;
    struct lab lab;
    _cleanup_free_ char *missing = NULL;
    _cleanup_free_ char *garbage = NULL;
    FILE *f;

    lab_init(&lab);

    /* A key that is not the certificate's. */
    c = (struct keel_tls_config){
        .cert = lab.certs.server_cert, .key = lab.certs.client_key, .ca = lab.certs.ca,
    };
    ck_assert_int_eq(keel_tls_server_new(&c, &ctx, &err), -1);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_msg(strstr(err.msg, lab.certs.client_key) != NULL
                  && strstr(err.msg, "does not match certificate") != NULL
                  && strstr(err.msg, lab.certs.server_cert) != NULL, "%s", err.msg);

    /* A certificate file that does not exist. */
    missing = keel_strdup_printf("%s/nowhere.pem", lab.dir);
    c = (struct keel_tls_config){
        .cert = missing, .key = lab.certs.server_key, .ca = lab.certs.ca,
    };
    keel_error_clear(&err);
    ck_assert_int_eq(keel_tls_server_new(&c, &ctx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_msg(strstr(err.msg, missing) != NULL
                  && strstr(err.msg, "No such file or directory") != NULL, "%s", err.msg);

    /* A CA file that is not PEM. */
    garbage = keel_strdup_printf("%s/garbage.pem", lab.dir);
    f = fopen(garbage, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a certificate\n", f);
    fclose(f);
    c = (struct keel_tls_config){
        .cert = lab.certs.client_cert, .key = lab.certs.client_key, .ca = garbage,
    };
    keel_error_clear(&err);
    ck_assert_int_eq(keel_tls_client_new(&c, &ctx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_msg(strstr(err.msg, "tls ca ") != NULL && strstr(err.msg, garbage) != NULL, "%s",
                  err.msg);

    /* Incomplete configurations. */
    c = (struct keel_tls_config){ .cert = lab.certs.client_cert, .ca = lab.certs.ca };
    keel_error_clear(&err);
    ck_assert_int_eq(keel_tls_client_new(&c, &ctx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    c = (struct keel_tls_config){ .cert = lab.certs.server_cert, .key = lab.certs.server_key };
    keel_error_clear(&err);
    ck_assert_int_eq(keel_tls_server_new(&c, &ctx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_ptr_null(ctx);

    lab_release(&lab);
}
END_TEST

/* Writing to a peer that has gone fails, again and again; it must not raise SIGPIPE. */
static void write_until_error(struct keel_stream *s)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char buf[4096] = { 0 };
    int i;

    for (i = 0; i < 200; i++) {
        if (keel_stream_write(s, buf, sizeof(buf), WAIT_MS, &err) == -1)
            break;
        keel_sleep_ms(10);
    }
    ck_assert_msg(i < 200, "writes to a closed peer kept succeeding");
    ck_assert_msg(err.code == KEEL_E_IO, "%d %s", err.code, err.msg);
    /*
     * The first error is often ECONNRESET, which raises no signal; the
     * writes after it get EPIPE, which would.
     */
    for (i = 0; i < 3; i++) {
        keel_error_clear(&err);
        ck_assert_int_eq(keel_stream_write(s, buf, sizeof(buf), WAIT_MS, &err), -1);
        ck_assert_msg(err.code == KEEL_E_IO, "%d %s", err.code, err.msg);
    }
}

START_TEST(peer_gone_no_sigpipe)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_ctx *ctx;
    struct keel_stream *s;
    struct server srv;
    struct lab lab;
    char buf[16];

    lab_init(&lab);
    server_start(&srv, lab.server_ctx, WAIT_MS, true);
    ctx = client_ctx(lab.certs.client_cert, lab.certs.client_key, lab.certs.ca);
    s = connect_ok(ctx, srv.port, "127.0.0.1");
    /* The server's close_notify is a clean end of stream. */
    ck_assert_int_eq(keel_stream_read(s, buf, sizeof(buf), WAIT_MS, &err), 0);
    write_until_error(s);
    keel_stream_close(s);
    keel_tls_ctx_free(ctx);
    server_stop(&srv);

    server_start(&srv, NULL, WAIT_MS, true);
    s = connect_ok(NULL, srv.port, NULL);
    ck_assert_int_eq(keel_stream_read(s, buf, sizeof(buf), WAIT_MS, &err), 0);
    write_until_error(s);
    keel_stream_close(s);
    server_stop(&srv);
    lab_release(&lab);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("tls");
    TCase *tc = tcase_create("tls");
    SRunner *sr;
    int failed;

    keel_lab_require("openssl");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mutual_tls_round_trip);
    tcase_add_test(tc, client_without_certificate_refused);
    tcase_add_test(tc, client_of_other_ca_refused);
    tcase_add_test(tc, client_refuses_server);
    tcase_add_test(tc, idle_peer_times_out);
    tcase_add_test(tc, garbage_refused_server_keeps_working);
    tcase_add_test(tc, read_and_write_from_two_threads);
    tcase_add_test(tc, clear_text_round_trip);
    tcase_add_test(tc, bad_configurations_refused);
    tcase_add_test(tc, peer_gone_no_sigpipe);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

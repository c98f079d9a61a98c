/*
 * keeld's server: the listener, one thread per connection, the dispatch of
 * JSON-RPC requests to the generated method table, events, and the log
 * ring.
 *
 * A connection's thread reads lines (rpc.c's reader), answers each
 * request in order, and ends when the peer closes, sends a line that
 * cannot be a request stream (never: bad lines get error responses), or
 * keeld stops.  Events are written by other threads on the same stream
 * (tls.h serialises writes); a slow client gets its writes timed out and
 * is dropped rather than holding up the job that sends the event.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/rpc.h"
#include "hsm/jobs.h"
#include "hsm/pool.h"
#include "hsm/storage.h"
#include "hsm/tls.h"

#define MOD "hsm.server"
#define HANDSHAKE_MS 10000
#define WRITE_MS 10000
#define LOG_RING 2048

struct keel_hsm_conn {
    struct keel_hsm *hsm;
    struct keel_stream *s;
    pthread_t thread;
    bool subscribed;      /* hsm->lock */
    bool finished;        /* hsm->lock: the thread is done, join it */
    unsigned busy;        /* hsm->lock: emitters writing to it (not freed meanwhile) */
    struct keel_hsm_conn *next;
};

struct keel_hsm {
    struct keel_hsm_config cfg;
    struct keel_io_opts io;
    int lfd;
    int stop_pipe[2];
    unsigned port;
    pthread_mutex_t lock;           /* conns, subscriptions */
    struct keel_hsm_conn *conns;
    struct keel_hsm_storage *storage;
    struct keel_hsm_pool *pool;
    struct keel_hsm_jobs *jobs;
    /* the log ring */
    pthread_mutex_t log_lock;
    char *ring[LOG_RING];
    size_t ring_next, ring_n;
};

/* The log sink: stderr as usual, and the ring. */
static void sink(void *opaque, enum keel_log_level level, const char *module, const char *msg)
{
    struct keel_hsm *h = opaque;
    char *line = NULL;

    fprintf(stderr, "keeld[%u]: %s: %s: %s\n", h->cfg.host_id, keel_log_level_name(level),
            module, msg);
    if (asprintf(&line, "%s: %s: %s", keel_log_level_name(level), module, msg) < 0)
        return;
    pthread_mutex_lock(&h->log_lock);
    free(h->ring[h->ring_next]);
    h->ring[h->ring_next] = line;
    h->ring_next = (h->ring_next + 1) % LOG_RING;
    if (h->ring_n < LOG_RING)
        h->ring_n++;
    pthread_mutex_unlock(&h->log_lock);
}

json_t *keel_hsm_log_lines(struct keel_hsm *h, size_t n)
{
    json_t *a = json_array();

    if (a == NULL)
        return NULL;
    pthread_mutex_lock(&h->log_lock);
    if (n > h->ring_n)
        n = h->ring_n;
    for (size_t i = 0; i < n; i++) {
        size_t k = (h->ring_next + LOG_RING - n + i) % LOG_RING;
        json_array_append_new(a, json_string(h->ring[k]));
    }
    pthread_mutex_unlock(&h->log_lock);
    return a;
}

const struct keel_hsm_config *keel_hsm_cfg(const struct keel_hsm *h)
{
    return &h->cfg;
}

const struct keel_io_opts *keel_hsm_io_opts(const struct keel_hsm *h)
{
    return &h->io;
}

struct keel_hsm_jobs *keel_hsm_jobs(struct keel_hsm *h)
{
    return h->jobs;
}

struct keel_hsm_pool *keel_hsm_pool(struct keel_hsm *h)
{
    return h->pool;
}

struct keel_hsm_storage *keel_hsm_storage(struct keel_hsm *h)
{
    return h->storage;
}

unsigned keel_hsm_port(const struct keel_hsm *h)
{
    return h->port;
}

void keel_hsm_conn_subscribe(struct keel_hsm_conn *conn)
{
    pthread_mutex_lock(&conn->hsm->lock);
    conn->subscribed = true;
    pthread_mutex_unlock(&conn->hsm->lock);
}

static int send_msg(struct keel_hsm_conn *c, json_t *msg, struct keel_error *err)
{
    size_t len;
    _cleanup_free_ char *text = keel_rpc_dump(msg, &len);

    if (text == NULL)
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "cannot encode a message");
    return keel_stream_write(c->s, text, len, WRITE_MS, err);
}

void keel_hsm_emit(struct keel_hsm *h, const char *method, json_t *params)
{
    json_t *msg = keel_rpc_request_new(NULL, method, params);
    struct keel_hsm_conn **to = NULL;
    _cleanup_free_ char *text = NULL;
    size_t len = 0, n = 0, cap = 0;

    json_decref(params);
    if (msg != NULL)
        text = keel_rpc_dump(msg, &len);
    json_decref(msg);
    if (text == NULL)
        return;
    /*
     * The subscribers are taken under the lock, written to without it: a
     * client slow to read its events holds up only its own (WRITE_MS at
     * most), not every emitter and every new connection.
     */
    pthread_mutex_lock(&h->lock);
    for (struct keel_hsm_conn *c = h->conns; c != NULL; c = c->next)
        cap++;
    to = calloc(cap + 1, sizeof(*to));
    for (struct keel_hsm_conn *c = h->conns; to != NULL && c != NULL; c = c->next)
        if (c->subscribed && !c->finished) {
            c->busy++;
            to[n++] = c;
        }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        struct keel_error err = KEEL_ERROR_INIT;

        if (keel_stream_write(to[i]->s, text, len, WRITE_MS, &err) != 0) {
            /* A client that does not read its events is dropped, not waited for. */
            keel_log(KEEL_LOG_WARN, MOD, "%s: event %s not delivered, closing: %s",
                     keel_stream_addr(to[i]->s), method, err.msg);
            pthread_mutex_lock(&h->lock);
            to[i]->subscribed = false;
            pthread_mutex_unlock(&h->lock);
            keel_stream_shutdown(to[i]->s);
        }
    }
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++)
        to[i]->busy--;
    pthread_mutex_unlock(&h->lock);
    free(to);
}

/* Answer one request (NULL for a notification, which gets no answer). */
static json_t *handle_one(struct keel_hsm_conn *c, json_t *msg)
{
    struct keel_rpc_request req;
    struct keel_rpc_fault f;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_hsm_call call = { .hsm = c->hsm, .conn = c, .peer = keel_stream_peer(c->s) };
    const struct keel_api_method *m;
    json_t *id = NULL, *result = NULL;
    bool bad_params = false;

    if (keel_rpc_request_check(msg, &req, &id, &f) != 0)
        return keel_rpc_error_new(id, f.code, f.message, NULL);
    m = keel_api_find(req.method);
    if (m == NULL) {
        char text[128];

        snprintf(text, sizeof(text), "method not found: %.64s", req.method);
        return req.id ? keel_rpc_error_new(req.id, KEEL_RPC_METHOD_NOT_FOUND, text, NULL) : NULL;
    }
    if (m->invoke(&call, req.params, &result, &bad_params, &err) != 0) {
        keel_log(KEEL_LOG_WARN, MOD, "%s %s: %s", keel_stream_addr(c->s), req.method, err.msg);
        if (req.id == NULL)
            return NULL;
        if (bad_params)
            return keel_rpc_error_new(req.id, KEEL_RPC_INVALID_PARAMS, err.msg, NULL);
        return keel_rpc_error_from(req.id, &err);
    }
    keel_debug(MOD, "%s %s: ok", keel_stream_addr(c->s), req.method);
    if (req.id == NULL) {
        json_decref(result);
        return NULL;
    }
    {
        json_t *reply = keel_rpc_result_new(req.id, result);

        json_decref(result);
        return reply;
    }
}

/* Answer one line: a request, or a batch of them. */
static json_t *handle_line(struct keel_hsm_conn *c, const char *line, size_t len)
{
    struct keel_rpc_fault f;
    json_t *msg = NULL, *out;

    if (keel_rpc_parse(line, len, &msg, &f) != 0)
        return keel_rpc_error_new(NULL, f.code, f.message, NULL);
    if (!json_is_array(msg)) {
        out = handle_one(c, msg);
        json_decref(msg);
        return out;
    }
    if (json_array_size(msg) == 0 || json_array_size(msg) > KEEL_RPC_MAX_BATCH) {
        json_decref(msg);
        return keel_rpc_error_new(NULL, KEEL_RPC_INVALID_REQUEST,
                                  "invalid request: a batch holds 1 to 64 requests", NULL);
    }
    out = json_array();
    for (size_t i = 0; out != NULL && i < json_array_size(msg); i++) {
        json_t *r = handle_one(c, json_array_get(msg, i));

        if (r != NULL)
            json_array_append_new(out, r);
    }
    json_decref(msg);
    if (out != NULL && json_array_size(out) == 0) {  /* notifications only */
        json_decref(out);
        return NULL;
    }
    return out;
}

static void *conn_main(void *opaque)
{
    struct keel_hsm_conn *c = opaque;
    struct keel_rpc_reader *rd = keel_rpc_reader_new();
    struct keel_error err = KEEL_ERROR_INIT;
    char buf[65536];

    keel_log(KEEL_LOG_INFO, MOD, "%s: connected (%s)", keel_stream_addr(c->s),
             keel_stream_peer(c->s));
    while (rd != NULL) {
        ssize_t n = keel_stream_read(c->s, buf, sizeof(buf), -1, &err);
        const char *line;
        size_t len;
        int r;

        if (n <= 0)
            break;
        if (keel_rpc_reader_feed(rd, buf, (size_t)n, &err) != 0)
            break;
        while ((r = keel_rpc_reader_next(rd, &line, &len)) != 0) {
            json_t *reply;

            if (r == 2)
                reply = keel_rpc_error_new(NULL, KEEL_RPC_PARSE_ERROR,
                                           "parse error: line longer than 4 MiB", NULL);
            else if (len == 0)
                continue;  /* an empty line is a keep-alive */
            else
                reply = handle_line(c, line, len);
            if (reply != NULL) {
                int rc = send_msg(c, reply, &err);

                json_decref(reply);
                if (rc != 0)
                    goto out;
            }
        }
    }
out:
    keel_log(KEEL_LOG_INFO, MOD, "%s: closed%s%s", keel_stream_addr(c->s),
             err.code ? ": " : "", err.code ? err.msg : "");
    keel_rpc_reader_free(rd);
    pthread_mutex_lock(&c->hsm->lock);
    c->finished = true;
    c->subscribed = false;
    pthread_mutex_unlock(&c->hsm->lock);
    return NULL;
}

/* Join and free connections whose thread ended (all of them when all). */
static void reap(struct keel_hsm *h, bool all)
{
    struct keel_hsm_conn **pp, *done = NULL;

    pthread_mutex_lock(&h->lock);
    /* At the end, emitters still writing are let through (their writes fail on shut streams). */
    while (all) {
        bool busy = false;

        for (struct keel_hsm_conn *c = h->conns; c != NULL; c = c->next) {
            keel_stream_shutdown(c->s);
            busy = busy || c->busy > 0;
        }
        if (!busy)
            break;
        pthread_mutex_unlock(&h->lock);
        usleep(1000);
        pthread_mutex_lock(&h->lock);
    }
    for (pp = &h->conns; *pp != NULL;) {
        struct keel_hsm_conn *c = *pp;

        if ((c->finished && c->busy == 0) || all) {
            *pp = c->next;
            c->next = done;
            done = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&h->lock);
    while (done != NULL) {
        struct keel_hsm_conn *c = done;

        done = c->next;
        pthread_join(c->thread, NULL);
        keel_stream_close(c->s);
        free(c);
    }
}

static int listen_on(struct keel_hsm *h, struct keel_error *err)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->cfg.port) };
    socklen_t alen = sizeof(a);
    int one = 1;

    if (inet_pton(AF_INET, h->cfg.listen, &a.sin_addr) != 1)
        return keel_error_set(err, KEEL_E_INVAL, 0, "listen address %s: not an IPv4 address",
                              h->cfg.listen);
    if (h->cfg.tls == NULL && a.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        return keel_error_set(err, KEEL_E_PERM, 0, "listen address %s: clear text (insecure "
                              "loopback) is allowed only on 127.0.0.1", h->cfg.listen);
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->lfd < 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "socket");
    setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(h->lfd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return keel_error_errno(err, KEEL_E_BUSY, errno, "bind %s:%u", h->cfg.listen,
                                h->cfg.port);
    if (listen(h->lfd, 64) != 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "listen");
    if (getsockname(h->lfd, (struct sockaddr *)&a, &alen) != 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "getsockname");
    h->port = ntohs(a.sin_port);
    return 0;
}

int keel_hsm_new(const struct keel_hsm_config *c, struct keel_hsm **ret, struct keel_error *err)
{
    struct keel_hsm *h;

    if (c->host_id < 1 || c->host_id > 2000)
        return keel_error_set(err, KEEL_E_INVAL, 0, "host id %u: must be 1 to 2000",
                              c->host_id);
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    h->cfg = *c;
    if (h->cfg.listen == NULL)
        h->cfg.listen = "127.0.0.1";
    if (h->cfg.monitor_interval_ms == 0)
        h->cfg.monitor_interval_ms = 10000;
    h->lfd = -1;
    h->stop_pipe[0] = h->stop_pipe[1] = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->log_lock, NULL);
    keel_log_set_sink(sink, h);
    keel_io_opts_init(&h->io);
    if (c->io_timeout_ms != 0)
        h->io.timeout_ms = c->io_timeout_ms;
    if (pipe2(h->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        keel_error_errno(err, KEEL_E_IO, errno, "pipe");
        goto fail;
    }
    if (listen_on(h, err) != 0 || keel_hsm_storage_new(h, &h->storage, err) != 0 ||
        keel_hsm_pool_new(h, &h->pool, err) != 0 || keel_hsm_jobs_new(h, &h->jobs, err) != 0)
        goto fail;
    keel_log(KEEL_LOG_INFO, MOD, "host %u listening on %s:%u (%s)", c->host_id, h->cfg.listen,
             h->port, c->tls ? "tls" : "insecure loopback");
    *ret = h;
    return 0;
fail:
    keel_hsm_free(h);
    return -1;
}

int keel_hsm_run(struct keel_hsm *h, struct keel_error *err)
{
    for (;;) {
        struct pollfd p[2] = { { .fd = h->lfd, .events = POLLIN },
                               { .fd = h->stop_pipe[0], .events = POLLIN } };
        struct keel_hsm_conn *c;
        struct keel_stream *s = NULL;
        struct keel_error e = KEEL_ERROR_INIT;
        int fd;

        if (poll(p, 2, 1000) < 0 && errno != EINTR)
            return keel_error_errno(err, KEEL_E_IO, errno, "poll");
        reap(h, false);
        if (p[1].revents)
            return 0;
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        /*
         * The handshake runs here, one at a time, bounded: a peer that
         * stalls it holds up others for HANDSHAKE_MS at most.
         */
        if (keel_stream_accept(h->cfg.tls, fd, HANDSHAKE_MS, &s, &e) != 0) {
            keel_log(KEEL_LOG_WARN, MOD, "refused a connection: %s", e.msg);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            keel_stream_close(s);
            continue;
        }
        c->hsm = h;
        c->s = s;
        pthread_mutex_lock(&h->lock);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            pthread_mutex_unlock(&h->lock);
            keel_stream_close(s);
            free(c);
            continue;
        }
        c->next = h->conns;
        h->conns = c;
        pthread_mutex_unlock(&h->lock);
    }
}

void keel_hsm_stop(struct keel_hsm *h)
{
    char b = 1;

    if (write(h->stop_pipe[1], &b, 1) < 0) {
        /* full pipe: a stop is already pending */
    }
}

void keel_hsm_free(struct keel_hsm *h)
{
    if (h == NULL)
        return;
    reap(h, true);
    /*
     * Jobs cancelled and ended first (they pin the pool's lockspaces), then
     * the SPM lease released and the lockspaces left before their
     * connections go.
     */
    keel_hsm_jobs_free(h->jobs);
    keel_hsm_pool_free(h->pool);
    keel_hsm_storage_free(h->storage);
    if (h->lfd >= 0)
        close(h->lfd);
    if (h->stop_pipe[0] >= 0) {
        close(h->stop_pipe[0]);
        close(h->stop_pipe[1]);
    }
    keel_log_set_sink(NULL, NULL);
    for (size_t i = 0; i < LOG_RING; i++)
        free(h->ring[i]);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->log_lock);
    free(h);
}

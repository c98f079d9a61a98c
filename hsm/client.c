/*
 * keeld's API client (client.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/monotime.h"
#include "hsm/client.h"
#include "hsm/rpc.h"
#include "hsm/tls.h"

struct keel_client {
    struct keel_stream *s;
    struct keel_rpc_reader *rd;
    keel_client_event_fn *event_fn;
    void *event_opaque;
    int timeout_ms;
    json_int_t next_id;
    int last_code;
};

int keel_client_connect(const char *host, unsigned port, struct keel_tls_ctx *ctx,
                        int timeout_ms, struct keel_client **ret, struct keel_error *err)
{
    struct keel_client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    c->timeout_ms = 600000;
    c->next_id = 1;
    c->rd = keel_rpc_reader_new();
    if (c->rd == NULL) {
        free(c);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    if (keel_stream_connect(ctx, host, port, ctx ? host : NULL, timeout_ms, &c->s, err) != 0) {
        keel_rpc_reader_free(c->rd);
        free(c);
        return keel_error_prefix(err, "keeld %s:%u", host, port);
    }
    *ret = c;
    return 0;
}

void keel_client_close(struct keel_client *c)
{
    if (c == NULL)
        return;
    keel_stream_close(c->s);
    keel_rpc_reader_free(c->rd);
    free(c);
}

void keel_client_set_events(struct keel_client *c, keel_client_event_fn *fn, void *opaque)
{
    c->event_fn = fn;
    c->event_opaque = opaque;
}

void keel_client_set_timeout(struct keel_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

int keel_client_last_code(const struct keel_client *c)
{
    return c->last_code;
}

int keel_client_send_raw(struct keel_client *c, const void *buf, size_t n,
                         struct keel_error *err)
{
    return keel_stream_write(c->s, buf, n, c->timeout_ms, err);
}

int keel_client_read(struct keel_client *c, int timeout_ms, json_t **msg, struct keel_error *err)
{
    /* -1: no limit, as in tls.h */
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : keel_now_ns() + (uint64_t)timeout_ms * KEEL_NS_PER_MS;
    char buf[65536];

    for (;;) {
        const char *line;
        size_t len;
        int r;

        while ((r = keel_rpc_reader_next(c->rd, &line, &len)) != 0) {
            struct keel_rpc_fault f;
            struct keel_rpc_reply rep;
            json_t *m;

            if (r == 2)
                return keel_error_set(err, KEEL_E_FORMAT, 0, "keeld sent a line over 4 MiB");
            if (keel_rpc_parse(line, len, &m, &f) != 0)
                return keel_error_set(err, KEEL_E_FORMAT, 0, "keeld sent: %s", f.message);
            if (json_is_object(m) && keel_rpc_reply_check(m, &rep, &f) == 0 && rep.is_event) {
                if (c->event_fn)
                    c->event_fn(c->event_opaque, rep.method, rep.params);
                json_decref(m);
                continue;
            }
            *msg = m;
            return 0;
        }
        {
            uint64_t now = keel_now_ns();
            int left = timeout_ms < 0 ? -1
                       : now >= deadline ? 0 : (int)((deadline - now) / KEEL_NS_PER_MS);
            ssize_t n;

            if (left == 0)
                return keel_error_set(err, KEEL_E_TIMEOUT, 0, "no answer from keeld in %d ms",
                                      timeout_ms);
            n = keel_stream_read(c->s, buf, sizeof(buf), left, err);
            if (n < 0)
                return -1;
            if (n == 0)
                return keel_error_set(err, KEEL_E_CLOSED, 0, "keeld closed the connection");
            if (keel_rpc_reader_feed(c->rd, buf, (size_t)n, err) != 0)
                return -1;
        }
    }
}

static enum keel_errc code_of(int rpc_code)
{
    if (rpc_code >= 100 && rpc_code < 1000)
        return (enum keel_errc)rpc_code;
    if (rpc_code == KEEL_RPC_METHOD_NOT_FOUND)
        return KEEL_E_UNSUPPORTED;
    if (rpc_code == KEEL_RPC_INTERNAL_ERROR)
        return KEEL_E_INTERNAL;
    return KEEL_E_INVAL;
}

int keel_client_call(struct keel_client *c, const char *method, json_t *params,
                     json_t **result, struct keel_error *err)
{
    json_t *id = json_integer(c->next_id++);
    json_t *req = keel_rpc_request_new(id, method, params);
    char *text;
    size_t len;
    int rc;

    c->last_code = 0;
    text = req ? keel_rpc_dump(req, &len) : NULL;
    json_decref(req);
    if (text == NULL) {
        json_decref(id);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "cannot encode the request");
    }
    rc = keel_stream_write(c->s, text, len, c->timeout_ms, err);
    free(text);
    for (; rc == 0;) {
        struct keel_rpc_reply rep;
        struct keel_rpc_fault f;
        json_t *m = NULL;

        if (keel_client_read(c, c->timeout_ms, &m, err) != 0) {
            rc = -1;
            break;
        }
        if (!json_is_object(m) || keel_rpc_reply_check(m, &rep, &f) != 0) {
            json_decref(m);
            rc = keel_error_set(err, KEEL_E_FORMAT, 0, "%s: keeld's answer: %s", method,
                                json_is_object(m) ? f.message : "not an object");
            break;
        }
        if (!json_equal(rep.id, id) && !json_is_null(rep.id)) {
            json_decref(m);  /* an answer to an earlier, timed-out call */
            continue;
        }
        if (rep.result != NULL) {
            *result = json_incref(rep.result);
        } else {
            c->last_code = rep.error_code;
            keel_error_set(err, code_of(rep.error_code), 0, "%s", rep.error_message);
            rc = -1;
        }
        json_decref(m);
        break;
    }
    json_decref(id);
    return rc;
}

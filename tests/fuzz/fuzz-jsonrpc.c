/*
 * libFuzzer target: keeld's JSON-RPC input (hsm/rpc.c), from the byte
 * stream to checked messages, as the server and a client take them.  The
 * input is fed in pieces whose sizes come from its first byte, so line
 * boundaries fall inside feeds as they do on a socket.  Checks besides "no
 * crash, no leak": every fault can be answered (the error response builds
 * and dumps to one line that parses back), and a request or reply that
 * passes its check survives a dump and a parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The error response to f must always be sendable. */
static void answer(json_t *id, const struct keel_rpc_fault *f)
{
    json_t *e = keel_rpc_error_new(id, f->code, f->message, NULL);
    struct keel_rpc_fault f2;
    json_t *back = NULL;
    size_t len;
    char *s;

    if (e == NULL)
        abort();
    s = keel_rpc_dump(e, &len);
    if (s == NULL || len == 0 || s[len - 1] != '\n' || memchr(s, '\n', len - 1) != NULL)
        abort();
    if (keel_rpc_parse(s, len - 1, &back, &f2) != 0 || !json_equal(back, e))
        abort();
    json_decref(back);
    free(s);
    json_decref(e);
}

/* A checked message dumps to a line that parses back to an equal value. */
static void redump(const json_t *msg)
{
    struct keel_rpc_fault f;
    json_t *back = NULL;
    size_t len;
    char *s = keel_rpc_dump(msg, &len);

    if (s == NULL)
        abort();
    if (keel_rpc_parse(s, len - 1, &back, &f) != 0 || !json_equal(back, msg))
        abort();
    json_decref(back);
    free(s);
}

static void one_message(json_t *msg)
{
    struct keel_rpc_request req;
    struct keel_rpc_reply rep;
    struct keel_rpc_fault f;
    json_t *id = NULL;

    if (keel_rpc_request_check(msg, &req, &id, &f) == 0) {
        if (req.method == NULL || strlen(req.method) == 0 ||
            strlen(req.method) > KEEL_RPC_METHOD_MAX || id != req.id)
            abort();
        redump(msg);
        /* What keeld sends back for an unknown method. */
        if (req.id != NULL) {
            f.code = KEEL_RPC_METHOD_NOT_FOUND;
            memcpy(f.message, "method not found", sizeof("method not found"));
            answer(req.id, &f);
        }
    } else {
        answer(id, &f);
    }
    if (keel_rpc_reply_check(msg, &rep, &f) == 0) {
        if (rep.is_event ? rep.method == NULL
                         : (rep.result == NULL) == (rep.error_code == 0))
            abort();
        redump(msg);
    }
}

static void one_line(const char *line, size_t len)
{
    struct keel_rpc_fault f;
    json_t *v = NULL;

    if (keel_rpc_parse(line, len, &v, &f) != 0) {
        if (f.code != KEEL_RPC_PARSE_ERROR || v != NULL)
            abort();
        answer(NULL, &f);
        return;
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);

        for (size_t i = 0; i < n && i < KEEL_RPC_MAX_BATCH; i++)
            one_message(json_array_get(v, i));
    } else {
        one_message(v);
    }
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_rpc_reader *r;
    size_t piece, off = 0;

    if (size == 0)
        return 0;
    piece = (size_t)data[0] + 1;
    data++, size--;
    r = keel_rpc_reader_new();
    if (r == NULL)
        return 0;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        struct keel_error err = KEEL_ERROR_INIT;
        const char *line;
        size_t len;
        int rc;

        if (keel_rpc_reader_feed(r, data + off, n, &err) != 0)
            abort();
        off += n;
        while ((rc = keel_rpc_reader_next(r, &line, &len)) != 0) {
            if (rc == 1) {
                if (len > KEEL_RPC_MAX_LINE || memchr(line, '\n', len) != NULL)
                    abort();
                one_line(line, len);
            } else if (rc != 2) {
                abort();
            }
        }
    }
    keel_rpc_reader_free(r);
    return 0;
}

/*
 * JSON-RPC 2.0 messages; see rpc.h.
 *
 * Every line comes from the network, so the checks here are written against
 * a hostile peer:
 *
 *  - jansson bounds its own recursion (JSON_PARSER_MAX_DEPTH, 2048), which
 *    keeps parsing safe; the tighter KEEL_RPC_MAX_DEPTH is enforced by a
 *    walk of the parsed value whose recursion stops at that depth, so no
 *    later consumer (dispatch, dump, the generated argument checks) has to
 *    worry about deep values.
 *  - A fault's message may end up in an error response, and json_string()
 *    refuses invalid UTF-8, so every fault message is reduced to printable
 *    ASCII: building the error response can then only fail for lack of
 *    memory.  For the same reason messages given to keel_rpc_error_new()
 *    are repaired rather than refused (a keel_error's message is cut at
 *    KEEL_ERR_MSG bytes, possibly inside a multi-byte sequence).
 *  - The line reader never buffers more than KEEL_RPC_MAX_LINE + 1 bytes of
 *    an unfinished line, whatever the caller does between feeds, and scans
 *    every byte it receives once.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/utf8.h"
#include "hsm/rpc.h"

/* ------------------------------------------------------------------ */
/* Faults */

static int fault_set(struct keel_rpc_fault *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fault_set(struct keel_rpc_fault *f, int code, const char *fmt, ...)
{
    va_list ap;

    if (f == NULL)
        return -1;
    f->code = code;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    /* Peer bytes (member names, jansson's "near '...'") may be in there. */
    for (char *p = f->message; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Parsing */

/*
 * Is v no deeper than KEEL_RPC_MAX_DEPTH, v itself at level depth + 1?
 * The recursion is at most KEEL_RPC_MAX_DEPTH + 1 frames deep.
 */
static bool depth_ok(json_t *v, int depth)
{
    const char *key;
    json_t *child;
    size_t i;

    if (!json_is_object(v) && !json_is_array(v))
        return true;
    if (depth >= KEEL_RPC_MAX_DEPTH)
        return false;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child) {
            if (!depth_ok(child, depth + 1))
                return false;
        }
    } else {
        json_array_foreach(v, i, child) {
            if (!depth_ok(child, depth + 1))
                return false;
        }
    }
    return true;
}

int keel_rpc_parse(const char *line, size_t len, json_t **ret, struct keel_rpc_fault *f)
{
    json_error_t jerr;
    const char *nul;
    json_t *v;

    if (len > KEEL_RPC_MAX_LINE)
        return fault_set(f, KEEL_RPC_PARSE_ERROR, "parse error: line of %zu bytes (limit %u)",
                         len, KEEL_RPC_MAX_LINE);
    /*
     * jansson would stop at a raw NUL with a vague "invalid token"; the
     * escaped form \u0000 is refused by jansson without JSON_ALLOW_NUL, so
     * strings handed out are always C strings.
     */
    nul = memchr(line, '\0', len);
    if (nul != NULL)
        return fault_set(f, KEEL_RPC_PARSE_ERROR, "parse error: NUL byte at offset %zu",
                         (size_t)(nul - line));
    /*
     * JSON_DECODE_ANY: a scalar is valid JSON, and JSON-RPC answers it with
     * "invalid request", not "parse error"; the request check says so.
     */
    v = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return fault_set(f, KEEL_RPC_PARSE_ERROR, "parse error: line %d column %d: %s",
                         jerr.line, jerr.column, jerr.text);
    if (!depth_ok(v, 0)) {
        json_decref(v);
        return fault_set(f, KEEL_RPC_PARSE_ERROR, "parse error: nested deeper than %d",
                         KEEL_RPC_MAX_DEPTH);
    }
    *ret = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Checks shared by requests, responses and events */

static bool id_valid(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id) || json_is_null(id);
}

static int check_version(json_t *msg, const char *what, struct keel_rpc_fault *f)
{
    json_t *v = json_object_get(msg, "jsonrpc");

    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0 ||
        json_string_length(v) != 3)
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid %s: \"jsonrpc\" must be \"2.0\"",
                         what);
    return 0;
}

static int check_method(json_t *msg, const char *what, const char **ret,
                        struct keel_rpc_fault *f)
{
    json_t *m = json_object_get(msg, "method");
    const char *s;
    size_t n;

    if (m == NULL)
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid %s: \"method\" missing", what);
    if (!json_is_string(m))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid %s: \"method\" must be a string",
                         what);
    s = json_string_value(m);
    n = json_string_length(m);
    if (n == 0 || n > KEEL_RPC_METHOD_MAX)
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid %s: \"method\" must be 1 to %d bytes", what,
                         KEEL_RPC_METHOD_MAX);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                             "invalid %s: \"method\" must be printable ascii", what);
    }
    *ret = s;
    return 0;
}

static int check_params(json_t *msg, const char *what, json_t **ret, struct keel_rpc_fault *f)
{
    json_t *p = json_object_get(msg, "params");

    if (p != NULL && !json_is_object(p) && !json_is_array(p))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid %s: \"params\" must be an object or an array", what);
    *ret = p;
    return 0;
}

/* Refuse any member of obj not in the NULL-terminated list allowed. */
static int check_members(json_t *obj, const char *what, const char *const *allowed,
                         struct keel_rpc_fault *f)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v) {
        const char *const *a;

        for (a = allowed; *a != NULL; a++) {
            if (strcmp(key, *a) == 0)
                break;
        }
        if (*a == NULL)
            return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid %s: unexpected member \"%.32s\"",
                             what, key);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Requests */

int keel_rpc_request_check(json_t *msg, struct keel_rpc_request *req, json_t **id_out,
                           struct keel_rpc_fault *f)
{
    static const char *const allowed[] = { "jsonrpc", "id", "method", "params", NULL };
    struct keel_rpc_request r = { 0 };

    if (id_out != NULL)
        *id_out = NULL;
    if (!json_is_object(msg))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid request: not an object");
    /* The id first, so that the error response to a bad request can carry it. */
    r.id = json_object_get(msg, "id");
    if (r.id != NULL && !id_valid(r.id))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid request: \"id\" must be a string, an integer or null");
    if (id_out != NULL)
        *id_out = r.id;
    if (check_version(msg, "request", f) < 0 || check_method(msg, "request", &r.method, f) < 0 ||
        check_params(msg, "request", &r.params, f) < 0 ||
        check_members(msg, "request", allowed, f) < 0)
        return -1;
    if (req != NULL)
        *req = r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Responses and events */

static int check_error_object(json_t *e, struct keel_rpc_reply *r, struct keel_rpc_fault *f)
{
    static const char *const allowed[] = { "code", "message", "data", NULL };
    json_t *code, *message;
    json_int_t c;

    if (!json_is_object(e))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid reply: \"error\" must be an object");
    code = json_object_get(e, "code");
    if (!json_is_integer(code))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid reply: \"error.code\" must be an integer");
    c = json_integer_value(code);
    /* 0 would read as success in struct keel_rpc_reply. */
    if (c == 0 || c < INT_MIN || c > INT_MAX)
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid reply: \"error.code\" out of range");
    message = json_object_get(e, "message");
    if (!json_is_string(message))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                         "invalid reply: \"error.message\" must be a string");
    if (check_members(e, "reply", allowed, f) < 0)
        return -1;
    r->error_code = (int)c;
    r->error_message = json_string_value(message);
    r->error_data = json_object_get(e, "data");
    return 0;
}

int keel_rpc_reply_check(json_t *msg, struct keel_rpc_reply *r, struct keel_rpc_fault *f)
{
    static const char *const response_members[] = { "jsonrpc", "id", "result", "error", NULL };
    static const char *const event_members[] = { "jsonrpc", "method", "params", NULL };
    struct keel_rpc_reply out = { 0 };
    json_t *error;

    if (!json_is_object(msg))
        return fault_set(f, KEEL_RPC_INVALID_REQUEST, "invalid reply: not an object");
    if (check_version(msg, "reply", f) < 0)
        return -1;
    out.id = json_object_get(msg, "id");
    if (out.id == NULL) {
        if (json_object_get(msg, "method") == NULL)
            return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                             "invalid reply: neither \"id\" nor \"method\"");
        out.is_event = true;
        if (check_method(msg, "reply", &out.method, f) < 0 ||
            check_params(msg, "reply", &out.params, f) < 0 ||
            check_members(msg, "reply", event_members, f) < 0)
            return -1;
    } else {
        if (!id_valid(out.id))
            return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                             "invalid reply: \"id\" must be a string, an integer or null");
        out.result = json_object_get(msg, "result");
        error = json_object_get(msg, "error");
        if ((out.result == NULL) == (error == NULL))
            return fault_set(f, KEEL_RPC_INVALID_REQUEST,
                             "invalid reply: needs exactly one of \"result\" and \"error\"");
        if (check_members(msg, "reply", response_members, f) < 0)
            return -1;
        if (error != NULL && check_error_object(error, &out, f) < 0)
            return -1;
    }
    if (r != NULL)
        *r = out;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Constructors */

/* Set key to v, increfed; NULL v fails.  Frees nothing on failure. */
static bool set_ref(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set(obj, key, v) == 0;
}

/* Set key to the new reference v (stolen, also on failure). */
static bool set_new(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static json_t *envelope(void)
{
    json_t *o = json_object();

    if (o != NULL && !set_new(o, "jsonrpc", json_string("2.0"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *keel_rpc_string(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;
    struct keel_strbuf sb;
    json_t *v;

    if (keel_utf8_valid(s, len))
        return json_stringn_nocheck(s, len);
    keel_strbuf_init(&sb, len + 16);
    while (i < len) {
        uint32_t cp;
        size_t n = keel_utf8_next(p + i, len - i, &cp);

        if (n == 0) {
            keel_strbuf_add(&sb, "\xef\xbf\xbd", 3);
            i++;
        } else {
            keel_strbuf_add(&sb, p + i, n);
            i += n;
        }
    }
    v = sb.failed ? NULL : json_stringn_nocheck(sb.buf, sb.len);
    keel_strbuf_release(&sb);
    return v;
}

json_t *keel_rpc_request_new(json_t *id, const char *method, json_t *params)
{
    json_t *o;

    if (method == NULL)
        return NULL;
    o = envelope();
    if (o == NULL)
        return NULL;
    if ((id != NULL && !set_ref(o, "id", id)) || !set_new(o, "method", json_string(method)) ||
        (params != NULL && !set_ref(o, "params", params))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A NULL id becomes null: a response always has one (JSON-RPC 2.0 section 5). */
json_t *keel_rpc_result_new(json_t *id, json_t *result)
{
    json_t *o = envelope();

    if (o == NULL)
        return NULL;
    if (!set_new(o, "id", id != NULL ? json_incref(id) : json_null()) ||
        !set_new(o, "result", result != NULL ? json_incref(result) : json_null())) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *keel_rpc_error_new(json_t *id, int code, const char *message, json_t *data)
{
    json_t *o = envelope(), *e = json_object();

    if (o == NULL || e == NULL || message == NULL)
        goto fail;
    if (!set_new(e, "code", json_integer(code)) ||
        !set_new(e, "message", keel_rpc_string(message)) ||
        (data != NULL && !set_ref(e, "data", data)))
        goto fail;
    if (!set_new(o, "id", id != NULL ? json_incref(id) : json_null()))
        goto fail;
    if (!set_new(o, "error", e)) {
        json_decref(o);     /* e went with the failed set_new */
        return NULL;
    }
    return o;

fail:
    json_decref(e);
    json_decref(o);
    return NULL;
}

json_t *keel_rpc_error_from(json_t *id, const struct keel_error *err)
{
    char msg[KEEL_ERR_MSG];
    json_t *data, *o;

    if (err == NULL)
        return NULL;
    /* err is a plain value from anywhere: do not trust its terminator. */
    memcpy(msg, err->msg, sizeof(msg));
    msg[sizeof(msg) - 1] = '\0';
    data = json_object();
    if (data == NULL || !set_new(data, "name", json_string(keel_errc_name(err->code)))) {
        json_decref(data);
        return NULL;
    }
    o = keel_rpc_error_new(id, (int)err->code, msg, data);
    json_decref(data);
    return o;
}

/* ------------------------------------------------------------------ */
/* Serialisation */

static int dump_to_strbuf(const char *buf, size_t size, void *data)
{
    struct keel_strbuf *sb = data;

    keel_strbuf_add(sb, buf, size);
    return sb->failed ? -1 : 0;
}

char *keel_rpc_dump(const json_t *msg, size_t *len)
{
    struct keel_strbuf sb;

    if (msg == NULL)
        return NULL;
    /*
     * Our own buffer rather than json_dumps(): its result comes from
     * jansson's allocator, which need not be the free() the header promises.
     * JSON_COMPACT never emits a raw newline, so "\n" is the only one.
     */
    keel_strbuf_init(&sb, 256);
    if (json_dump_callback(msg, dump_to_strbuf, &sb, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0) {
        keel_strbuf_release(&sb);
        return NULL;
    }
    keel_strbuf_add(&sb, "\n", 1);
    if (sb.failed) {
        keel_strbuf_release(&sb);
        return NULL;
    }
    return keel_strbuf_detach(&sb, len);
}

/* ------------------------------------------------------------------ */
/* Line reader */

/*
 * buf[0..len) holds, from pos, lines already complete (up to complete, the
 * offset just past the last '\n' buffered) followed by the unfinished tail
 * buf[complete..len).  feed() scans each incoming byte once for '\n', so
 * next() searches only within complete lines and a line arriving in many
 * pieces costs linear time.
 *
 * An over-long line never enters buf: its bytes are dropped as they come
 * and a mark is queued at the offset where it would have been, so next()
 * reports it in stream order.  The tail may hold KEEL_RPC_MAX_LINE + 1
 * bytes, for a line of exactly KEEL_RPC_MAX_LINE bytes ending in "\r\n".
 */
struct keel_rpc_reader {
    char *buf;
    size_t len, cap;
    size_t pos;
    size_t complete;
    bool dropping;       /* inside an over-long line: discard up to '\n' */
    size_t *marks;       /* offsets of dropped lines, ascending, from marks_head */
    size_t marks_head, marks_len, marks_cap;
};

#define TAIL_MAX ((size_t)KEEL_RPC_MAX_LINE + 1)

struct keel_rpc_reader *keel_rpc_reader_new(void)
{
    return calloc(1, sizeof(struct keel_rpc_reader));
}

void keel_rpc_reader_free(struct keel_rpc_reader *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r->marks);
    free(r);
}

/* Drop what next() has handed out, so buf does not grow with the stream. */
static void compact(struct keel_rpc_reader *r)
{
    if (r->pos == 0)
        return;
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->complete -= r->pos;
    for (size_t i = r->marks_head; i < r->marks_len; i++)
        r->marks[i] -= r->pos;
    r->pos = 0;
    if (r->marks_head == r->marks_len)
        r->marks_head = r->marks_len = 0;
}

static int reserve(struct keel_rpc_reader *r, size_t extra, struct keel_error *err)
{
    size_t want;
    char *b;

    if (r->cap - r->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - r->len)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "rpc reader: buffer too large");
    want = r->cap ? r->cap : 4096;
    while (want - r->len < extra)
        want *= 2;
    b = realloc(r->buf, want);
    if (b == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "rpc reader: out of memory");
    r->buf = b;
    r->cap = want;
    return 0;
}

static int mark_dropped(struct keel_rpc_reader *r, struct keel_error *err)
{
    if (r->marks_len == r->marks_cap) {
        size_t want = r->marks_cap ? r->marks_cap * 2 : 4;
        size_t *m = realloc(r->marks, want * sizeof(*m));

        if (m == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "rpc reader: out of memory");
        r->marks = m;
        r->marks_cap = want;
    }
    r->marks[r->marks_len++] = r->complete;
    return 0;
}

/*
 * On -1 some of the bytes may have been taken and others not: the stream
 * has lost its framing and the connection should be closed.
 */
int keel_rpc_reader_feed(struct keel_rpc_reader *r, const void *buf, size_t n,
                         struct keel_error *err)
{
    const char *p = buf;

    compact(r);
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - p) : n;  /* bytes before the newline */
        size_t take = nl != NULL ? seg + 1 : n;

        if (r->dropping) {
            r->dropping = nl == NULL;
        } else if (r->len - r->complete + seg > TAIL_MAX) {
            if (mark_dropped(r, err) < 0)
                return -1;
            r->len = r->complete;
            r->dropping = nl == NULL;
        } else {
            if (reserve(r, take, err) < 0)
                return -1;
            memcpy(r->buf + r->len, p, take);
            r->len += take;
            if (nl != NULL)
                r->complete = r->len;
        }
        p += take;
        n -= take;
    }
    return 0;
}

/* The line is also NUL-terminated in place (its '\n' or '\r' overwritten). */
int keel_rpc_reader_next(struct keel_rpc_reader *r, const char **line, size_t *len)
{
    char *start, *nl;
    size_t n;

    if (r->marks_head < r->marks_len && r->marks[r->marks_head] == r->pos) {
        r->marks_head++;
        return 2;
    }
    if (r->pos == r->complete)
        return 0;
    start = r->buf + r->pos;
    nl = memchr(start, '\n', r->complete - r->pos);  /* always found: complete ends in one */
    n = (size_t)(nl - start);
    r->pos += n + 1;
    if (n > 0 && start[n - 1] == '\r')
        n--;
    if (n > KEEL_RPC_MAX_LINE)
        return 2;
    start[n] = '\0';
    *line = start;
    *len = n;
    return 1;
}

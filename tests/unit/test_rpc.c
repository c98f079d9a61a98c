/*
 * Unit tests of hsm/rpc.c: JSON-RPC 2.0 lines as keeld reads and writes
 * them.  Every refusal is checked by code and message, since both reach the
 * peer in the error response.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "hsm/rpc.h"

/* s parsed (whole C string), asserting success. */
static json_t *parse_ok(const char *s)
{
    struct keel_rpc_fault f = { 0 };
    json_t *v = NULL;

    ck_assert_msg(keel_rpc_parse(s, strlen(s), &v, &f) == 0, "%s: %s", s, f.message);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* The parse of s[0..len) fails with a parse error; its message. */
static struct keel_rpc_fault parse_fails(const char *s, size_t len)
{
    struct keel_rpc_fault f = { 0 };
    json_t *v = NULL;

    ck_assert_int_eq(keel_rpc_parse(s, len, &v, &f), -1);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(f.code, KEEL_RPC_PARSE_ERROR);
    return f;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* ------------------------------------------------------------------ */

START_TEST(request_valid)
{
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_request req;
    json_t *v, *id;

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"Volume.getInfo\","
                 "\"params\":{\"volume\":\"v1\"}}");
    ck_assert_int_eq(keel_rpc_request_check(v, &req, &id, &f), 0);
    ck_assert_str_eq(req.method, "Volume.getInfo");
    ck_assert(json_is_object(req.params));
    ck_assert_str_eq(json_string_value(json_object_get(req.params, "volume")), "v1");
    ck_assert(json_is_integer(req.id));
    ck_assert_int_eq(json_integer_value(req.id), 7);
    ck_assert_ptr_eq(id, req.id);
    json_decref(v);

    v = parse_ok("{\"method\":\"Host.ping\",\"params\":[1,2],\"jsonrpc\":\"2.0\",\"id\":\"a-1\"}");
    ck_assert_int_eq(keel_rpc_request_check(v, &req, &id, &f), 0);
    ck_assert_str_eq(req.method, "Host.ping");
    ck_assert(json_is_array(req.params));
    ck_assert_uint_eq(json_array_size(req.params), 2);
    ck_assert_str_eq(json_string_value(req.id), "a-1");
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"Host.ping\"}");
    ck_assert_int_eq(keel_rpc_request_check(v, &req, &id, &f), 0);
    ck_assert(json_is_null(req.id));
    ck_assert_ptr_null(req.params);
    json_decref(v);

    /* A notification: no id member at all, unlike "id": null above. */
    v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"Job.cancel\",\"params\":{}}");
    id = v; /* must be overwritten */
    ck_assert_int_eq(keel_rpc_request_check(v, &req, &id, &f), 0);
    ck_assert_ptr_null(req.id);
    ck_assert_ptr_null(id);
    ck_assert_str_eq(req.method, "Job.cancel");
    json_decref(v);

    /* The longest method name and every printable byte. */
    v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":"
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}");
    ck_assert_int_eq(keel_rpc_request_check(v, &req, NULL, &f), 0);
    ck_assert_uint_eq(strlen(req.method), KEEL_RPC_METHOD_MAX);
    json_decref(v);
    v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\" ~!\\\"#\"}");
    ck_assert_int_eq(keel_rpc_request_check(v, &req, NULL, &f), 0);
    ck_assert_str_eq(req.method, " ~!\"#");
    json_decref(v);
}
END_TEST

static const struct {
    const char *json;
    const char *message;
    bool has_id;   /* id_out is the message's id */
} refusals[] = {
    { "[]", "invalid request: not an object", false },
    { "\"Host.ping\"", "invalid request: not an object", false },
    { "{\"id\":1,\"method\":\"a\"}", "invalid request: \"jsonrpc\" must be \"2.0\"", true },
    { "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"a\"}",
      "invalid request: \"jsonrpc\" must be \"2.0\"", true },
    { "{\"jsonrpc\":2.0,\"id\":\"x\",\"method\":\"a\"}",
      "invalid request: \"jsonrpc\" must be \"2.0\"", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1}", "invalid request: \"method\" missing", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
      "invalid request: \"method\" must be a string", true },
    { "{\"jsonrpc\":\"2.0\",\"method\":null}",
      "invalid request: \"method\" must be a string", false },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}",
      "invalid request: \"method\" must be 1 to 64 bytes", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
      "invalid request: \"method\" must be 1 to 64 bytes", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\tb\"}",
      "invalid request: \"method\" must be printable ascii", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u007f\"}",
      "invalid request: \"method\" must be printable ascii", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"caf\\u00e9\"}",
      "invalid request: \"method\" must be printable ascii", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":\"x\"}",
      "invalid request: \"params\" must be an object or an array", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":null}",
      "invalid request: \"params\" must be an object or an array", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"a\"}",
      "invalid request: \"id\" must be a string, an integer or null", false },
    { "{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"a\"}",
      "invalid request: \"id\" must be a string, an integer or null", false },
    { "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"a\"}",
      "invalid request: \"id\" must be a string, an integer or null", false },
    { "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"a\"}",
      "invalid request: \"id\" must be a string, an integer or null", false },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"extra\":1}",
      "invalid request: unexpected member \"extra\"", true },
    { "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"result\":1}",
      "invalid request: unexpected member \"result\"", true },
    /* A peer's bytes in the message are reduced to printable ASCII. */
    { "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"\\u00e9\\n\":1}",
      "invalid request: unexpected member \"???\"", false },
};

START_TEST(request_refused)
{
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_request req = { .method = "untouched" };
    json_t *v = parse_ok(refusals[_i].json), *id = v;

    ck_assert_int_eq(keel_rpc_request_check(v, &req, &id, &f), -1);
    ck_assert_int_eq(f.code, KEEL_RPC_INVALID_REQUEST);
    ck_assert_str_eq(f.message, refusals[_i].message);
    if (refusals[_i].has_id)
        ck_assert_ptr_eq(id, json_object_get(v, "id"));
    else
        ck_assert_ptr_null(id);
    ck_assert_str_eq(req.method, "untouched");
    /* The fault is good for an error response as it is. */
    {
        json_t *e = keel_rpc_error_new(id, f.code, f.message, NULL);

        ck_assert_ptr_nonnull(e);
        json_decref(e);
    }
    json_decref(v);
}
END_TEST

/* ------------------------------------------------------------------ */

/* n nested arrays, "[[...]]", in a new string. */
static char *nested(int n, char open, char close)
{
    char *s = malloc(2 * (size_t)n + 1);

    for (int i = 0; i < n; i++) {
        s[i] = open;
        s[2 * n - 1 - i] = close;
    }
    s[2 * n] = '\0';
    return s;
}

START_TEST(parse_errors)
{
    struct keel_rpc_fault f;
    json_t *v;

    f = parse_fails("{\"jsonrpc\":", 11);
    ck_assert_msg(has_prefix(f.message, "parse error: line 1 column "), "%s", f.message);
    f = parse_fails("", 0);
    ck_assert_msg(has_prefix(f.message, "parse error: line 1 column "), "%s", f.message);
    f = parse_fails("{'a':1}", 7);
    ck_assert_msg(has_prefix(f.message, "parse error: "), "%s", f.message);
    /* Trailing bytes, a second value included. */
    f = parse_fails("{} x", 4);
    ck_assert_msg(has_prefix(f.message, "parse error: line 1 column "), "%s", f.message);
    parse_fails("{}{}", 4);
    parse_fails("[1],", 4);
    v = parse_ok("{} \t");
    json_decref(v);

    /* A NUL, raw or escaped; and the length, not the NUL, ends the line. */
    f = parse_fails("{\"a\0\":1}", 8);
    ck_assert_str_eq(f.message, "parse error: NUL byte at offset 3");
    parse_fails("{}\0", 3);
    parse_fails("{\"a\":\"\\u0000\"}", 14);

    f = parse_fails("{\"a\":1,\"a\":2}", 13);
    ck_assert_msg(strstr(f.message, "duplicate") != NULL, "%s", f.message);
    parse_fails("{\"p\":{\"x\":1,\"x\":1}}", 19);

    /* Invalid UTF-8: stray continuation, overlong, surrogate, past U+10FFFF, cut. */
    parse_fails("{\"a\":\"\x80\"}", 9);
    parse_fails("{\"a\":\"\xc0\xaf\"}", 10);
    parse_fails("{\"a\":\"\xed\xa0\x80\"}", 11);
    parse_fails("{\"a\":\"\xf4\x90\x80\x80\"}", 12);
    parse_fails("{\"a\":\"\xe2\x82\"}", 10);
    parse_fails("{\"\xff\":1}", 7);
    parse_fails("{\"a\":\"\\ud800\"}", 14);
    v = parse_ok("{\"a\":\"\xe2\x82\xac \\ud83d\\ude00\"}");
    json_decref(v);

    /* An integer jansson cannot hold is refused, not wrapped. */
    parse_fails("{\"id\":99999999999999999999}", 27);

    /* A scalar is JSON: it parses, and the request check refuses it. */
    v = parse_ok("42");
    ck_assert(json_is_integer(v));
    json_decref(v);
}
END_TEST

START_TEST(parse_depth)
{
    struct keel_rpc_fault f;
    json_t *v;
    char *s;

    s = nested(KEEL_RPC_MAX_DEPTH, '[', ']');
    v = parse_ok(s);
    json_decref(v);
    free(s);
    s = nested(KEEL_RPC_MAX_DEPTH + 1, '[', ']');
    f = parse_fails(s, strlen(s));
    ck_assert_str_eq(f.message, "parse error: nested deeper than 32");
    free(s);
    /* Far deeper than jansson's own limit: still a clean refusal. */
    s = nested(100000, '[', ']');
    parse_fails(s, strlen(s));
    free(s);

    /* Objects count too: the top object and 31 nested are 32 levels. */
    s = malloc(1024);
    for (int wide = 0; wide < 2; wide++) {
        size_t n = 0;

        /* wide: the same inside an array, after siblings: 33 levels. */
        if (wide)
            n += (size_t)snprintf(s + n, 1024 - n, "[1,[2],{},");
        for (int i = 0; i < KEEL_RPC_MAX_DEPTH; i++)
            n += (size_t)snprintf(s + n, 1024 - n, "{\"k\":");
        s[n++] = '1';
        for (int i = 0; i < KEEL_RPC_MAX_DEPTH; i++)
            s[n++] = '}';
        if (wide)
            s[n++] = ']';
        s[n] = '\0';
        if (!wide) {
            v = parse_ok(s);
            json_decref(v);
        } else {
            f = parse_fails(s, n);
            ck_assert_str_eq(f.message, "parse error: nested deeper than 32");
        }
    }
    free(s);
}
END_TEST

START_TEST(parse_too_long)
{
    size_t n = KEEL_RPC_MAX_LINE + 1;
    char *s = malloc(n);
    struct keel_rpc_fault f;

    /* Valid JSON all the same: the length alone refuses it. */
    memset(s, ' ', n);
    s[0] = '[';
    s[n - 1] = ']';
    f = parse_fails(s, n);
    ck_assert_str_eq(f.message, "parse error: line of 4194305 bytes (limit 4194304)");
    {
        json_t *v = NULL;

        s[n - 2] = ']';
        ck_assert_int_eq(keel_rpc_parse(s, n - 1, &v, &f), 0);
        ck_assert(json_is_array(v));
        json_decref(v);
    }
    free(s);
}
END_TEST

/* ------------------------------------------------------------------ */

static int reply_fails(const char *s, const char *message)
{
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_reply r = { .method = "untouched" };
    json_t *v = parse_ok(s);
    int rc = keel_rpc_reply_check(v, &r, &f);

    ck_assert_msg(rc == -1, "%s accepted", s);
    ck_assert_int_eq(f.code, KEEL_RPC_INVALID_REQUEST);
    if (message != NULL)
        ck_assert_str_eq(f.message, message);
    ck_assert_str_eq(r.method, "untouched");
    json_decref(v);
    return rc;
}

START_TEST(reply_valid)
{
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_reply r;
    json_t *v;

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"size\":1024}}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert(!r.is_event);
    ck_assert_int_eq(json_integer_value(r.id), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(r.result, "size")), 1024);
    ck_assert_int_eq(r.error_code, 0);
    ck_assert_ptr_null(r.error_message);
    ck_assert_ptr_null(r.method);
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":null}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert(json_is_null(r.result));
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":102,"
                 "\"message\":\"volume v1: not found\",\"data\":{\"name\":\"not-found\"}}}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert(!r.is_event);
    ck_assert(json_is_null(r.id));
    ck_assert_ptr_null(r.result);
    ck_assert_int_eq(r.error_code, 102);
    ck_assert_str_eq(r.error_message, "volume v1: not found");
    ck_assert_str_eq(json_string_value(json_object_get(r.error_data, "name")), "not-found");
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,\"message\":\"x\"}}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert_int_eq(r.error_code, KEEL_RPC_METHOD_NOT_FOUND);
    ck_assert_ptr_null(r.error_data);
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"Job.progress\",\"params\":{\"done\":50}}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert(r.is_event);
    ck_assert_str_eq(r.method, "Job.progress");
    ck_assert_int_eq(json_integer_value(json_object_get(r.params, "done")), 50);
    ck_assert_ptr_null(r.id);
    json_decref(v);

    v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"Host.shutdown\"}");
    ck_assert_int_eq(keel_rpc_reply_check(v, &r, &f), 0);
    ck_assert(r.is_event);
    ck_assert_ptr_null(r.params);
    json_decref(v);
}
END_TEST

START_TEST(reply_refused)
{
    reply_fails("[]", "invalid reply: not an object");
    reply_fails("{\"id\":1,\"result\":1}", "invalid reply: \"jsonrpc\" must be \"2.0\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,"
                "\"error\":{\"code\":1,\"message\":\"m\"}}",
                "invalid reply: needs exactly one of \"result\" and \"error\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1}",
                "invalid reply: needs exactly one of \"result\" and \"error\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\"}}",
                "invalid reply: \"error.code\" must be an integer");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}",
                "invalid reply: \"error.code\" must be an integer");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":0,\"message\":\"m\"}}",
                "invalid reply: \"error.code\" out of range");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":4294967298,\"message\":\"m\"}}",
                "invalid reply: \"error.code\" out of range");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",
                "invalid reply: \"error.message\" must be a string");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}",
                "invalid reply: \"error\" must be an object");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"m\",\"x\":1}}",
                "invalid reply: unexpected member \"x\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"result\":1}",
                "invalid reply: neither \"id\" nor \"method\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}",
                "invalid reply: \"id\" must be a string, an integer or null");
    reply_fails("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"method\":\"a\"}",
                "invalid reply: unexpected member \"method\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"result\":1}",
                "invalid reply: unexpected member \"result\"");
    reply_fails("{\"jsonrpc\":\"2.0\",\"method\":\"\"}",
                "invalid reply: \"method\" must be 1 to 64 bytes");
    reply_fails("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":1}",
                "invalid reply: \"params\" must be an object or an array");
}
END_TEST

/* ------------------------------------------------------------------ */

/* msg dumped, checked to be one line, and parsed back. */
static json_t *round_trip(json_t *msg, const char *want)
{
    struct keel_rpc_fault f = { 0 };
    size_t len = 0;
    char *s;
    json_t *back = NULL;

    ck_assert_ptr_nonnull(msg);
    s = keel_rpc_dump(msg, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, strlen(s));
    if (want != NULL)
        ck_assert_str_eq(s, want);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(s[len - 1], '\n');
    ck_assert_ptr_null(memchr(s, '\n', len - 1));
    ck_assert_msg(keel_rpc_parse(s, len - 1, &back, &f) == 0, "%s", f.message);
    ck_assert(json_equal(back, msg));
    free(s);
    return back;
}

START_TEST(constructors)
{
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_request req;
    struct keel_rpc_reply r;
    json_t *id = json_integer(7), *params = json_pack("{s:s,s:[i,i]}", "volume", "v\n1", "x", 1, 2);
    json_t *m, *back;

    m = keel_rpc_request_new(id, "Volume.getInfo", params);
    back = round_trip(m, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"Volume.getInfo\","
                         "\"params\":{\"volume\":\"v\\n1\",\"x\":[1,2]}}\n");
    ck_assert_int_eq(keel_rpc_request_check(back, &req, NULL, &f), 0);
    ck_assert_str_eq(req.method, "Volume.getInfo");
    ck_assert(json_equal(req.params, params));
    ck_assert(json_equal(req.id, id));
    json_decref(back);
    json_decref(m);

    /* Without an id: a notification, which a client sees as an event. */
    m = keel_rpc_request_new(NULL, "Job.progress", params);
    back = round_trip(m, NULL);
    ck_assert_int_eq(keel_rpc_reply_check(back, &r, &f), 0);
    ck_assert(r.is_event);
    ck_assert_str_eq(r.method, "Job.progress");
    json_decref(back);
    json_decref(m);
    ck_assert_ptr_null(keel_rpc_request_new(id, NULL, NULL));

    m = keel_rpc_result_new(id, params);
    back = round_trip(m, NULL);
    ck_assert_int_eq(keel_rpc_reply_check(back, &r, &f), 0);
    ck_assert(!r.is_event);
    ck_assert(json_equal(r.result, params));
    ck_assert_int_eq(json_integer_value(r.id), 7);
    json_decref(back);
    json_decref(m);

    m = keel_rpc_result_new(NULL, NULL);
    back = round_trip(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":null}\n");
    json_decref(back);
    json_decref(m);

    m = keel_rpc_error_new(id, KEEL_RPC_INVALID_PARAMS, "invalid params: \"size\" missing",
                           params);
    back = round_trip(m, NULL);
    ck_assert_int_eq(keel_rpc_reply_check(back, &r, &f), 0);
    ck_assert_int_eq(r.error_code, KEEL_RPC_INVALID_PARAMS);
    ck_assert_str_eq(r.error_message, "invalid params: \"size\" missing");
    ck_assert(json_equal(r.error_data, params));
    json_decref(back);
    json_decref(m);

    m = keel_rpc_error_new(NULL, KEEL_RPC_PARSE_ERROR, "parse error", NULL);
    back = round_trip(m, "{\"jsonrpc\":\"2.0\",\"id\":null,"
                         "\"error\":{\"code\":-32700,\"message\":\"parse error\"}}\n");
    json_decref(back);
    json_decref(m);

    /* A message that is not UTF-8 is repaired, not refused. */
    m = keel_rpc_error_new(id, 1, "bad \xff byte", NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "error"), "message")),
                     "bad \xef\xbf\xbd byte");
    json_decref(m);

    /* The constructors took references of their own. */
    ck_assert_int_eq(id->refcount, 1);
    ck_assert_int_eq(params->refcount, 1);
    ck_assert_ptr_null(keel_rpc_dump(NULL, NULL));
    json_decref(id);
    json_decref(params);
}
END_TEST

/* Text from storage becomes a JSON string even when it is not UTF-8. */
START_TEST(string_repaired)
{
    json_t *ok = keel_rpc_string("dc-\xc3\xa9t\xc3\xa9"), *bad = keel_rpc_string("a\xff" "b\xc3");

    ck_assert_ptr_nonnull(ok);
    ck_assert_str_eq(json_string_value(ok), "dc-\xc3\xa9t\xc3\xa9");
    ck_assert_ptr_nonnull(bad);
    ck_assert_str_eq(json_string_value(bad), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    json_decref(ok);
    json_decref(bad);
}
END_TEST

START_TEST(error_from)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_rpc_fault f = { 0 };
    struct keel_rpc_reply r;
    json_t *id = json_string("req-9"), *m, *back;
    char want[256];

    keel_error_set(&err, KEEL_E_NOENT, 0, "volume %s: no such volume", "v1");
    m = keel_rpc_error_from(id, &err);
    snprintf(want, sizeof(want), "{\"jsonrpc\":\"2.0\",\"id\":\"req-9\",\"error\":{\"code\":102,"
             "\"message\":\"volume v1: no such volume\",\"data\":{\"name\":\"%s\"}}}\n",
             keel_errc_name(KEEL_E_NOENT));
    back = round_trip(m, want);
    ck_assert_int_eq(keel_rpc_reply_check(back, &r, &f), 0);
    ck_assert_int_eq(r.error_code, KEEL_E_NOENT);
    ck_assert_str_eq(r.error_message, "volume v1: no such volume");
    ck_assert_str_eq(json_string_value(json_object_get(r.error_data, "name")),
                     keel_errc_name(KEEL_E_NOENT));
    json_decref(back);
    json_decref(m);

    keel_error_set(&err, KEEL_E_TIMEOUT, 0, "x");
    m = keel_rpc_error_from(NULL, &err);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m, "error"), "code")),
                     201);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(m, "error"), "data"), "name")),
                     "io.timeout");
    ck_assert(json_is_null(json_object_get(m, "id")));
    json_decref(m);

    /* A message cut inside a UTF-8 sequence, and one without its NUL. */
    memset(err.msg, 'a', sizeof(err.msg));
    err.msg[sizeof(err.msg) - 2] = '\xc3';
    m = keel_rpc_error_from(id, &err);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(json_string_value(
                          json_object_get(json_object_get(m, "error"), "message"))),
                      sizeof(err.msg) - 2 + 3);
    json_decref(m);

    ck_assert_ptr_null(keel_rpc_error_from(id, NULL));
    json_decref(id);
}
END_TEST

/* ------------------------------------------------------------------ */

static void feed(struct keel_rpc_reader *r, const char *s, size_t n)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_msg(keel_rpc_reader_feed(r, s, n, &err) == 0, "%s", err.msg);
}

static void feeds(struct keel_rpc_reader *r, const char *s)
{
    feed(r, s, strlen(s));
}

static void next_is(struct keel_rpc_reader *r, const char *want)
{
    const char *line = NULL;
    size_t len = 0;

    ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(line, want, len), 0);
}

static int next_rc(struct keel_rpc_reader *r)
{
    const char *line;
    size_t len;

    return keel_rpc_reader_next(r, &line, &len);
}

START_TEST(reader_lines)
{
    struct keel_rpc_reader *r = keel_rpc_reader_new();

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(next_rc(r), 0);

    /* One line across three feeds. */
    feeds(r, "{\"jsonrpc\":");
    ck_assert_int_eq(next_rc(r), 0);
    feeds(r, "\"2.0\",");
    ck_assert_int_eq(next_rc(r), 0);
    feeds(r, "\"method\":\"a\"}\n{\"b\"");
    next_is(r, "{\"jsonrpc\":\"2.0\",\"method\":\"a\"}");
    ck_assert_int_eq(next_rc(r), 0);

    /* Several lines in one feed, the first ending the earlier tail; CRLF. */
    feeds(r, ":1}\r\n[1]\n\n[2]\r\n[3");
    next_is(r, "{\"b\":1}");
    next_is(r, "[1]");
    next_is(r, "");
    next_is(r, "[2]");
    ck_assert_int_eq(next_rc(r), 0);
    feeds(r, "]\n");
    next_is(r, "[3]");
    ck_assert_int_eq(next_rc(r), 0);

    /* Only a trailing CR goes; a lone CR inside stays. */
    feeds(r, "a\rb\r\r\n");
    next_is(r, "a\rb\r");

    /* The line is usable as a C string. */
    {
        const char *line;
        size_t len;

        feeds(r, "xyz\r\nq\n");
        ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
        ck_assert_str_eq(line, "xyz");
        ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
        ck_assert_str_eq(line, "q");
    }
    ck_assert_int_eq(next_rc(r), 0);
    keel_rpc_reader_free(r);
    keel_rpc_reader_free(NULL);
}
END_TEST

START_TEST(reader_long_lines)
{
    struct keel_rpc_reader *r = keel_rpc_reader_new();
    size_t max = KEEL_RPC_MAX_LINE;
    char *big = malloc(max + 2);
    const char *line;
    size_t len;

    memset(big, 'x', max + 2);

    /* Exactly the limit, in small pieces: accepted whole. */
    for (size_t off = 0; off < max; off += 4093)
        feed(r, big + off, KEEL_MIN(4093, max - off));
    ck_assert_int_eq(next_rc(r), 0);
    feeds(r, "\n");
    ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
    ck_assert_uint_eq(len, max);
    ck_assert_int_eq(line[0], 'x');
    ck_assert_int_eq(line[max - 1], 'x');
    ck_assert_int_eq(next_rc(r), 0);

    /* The limit plus a CRLF is still the limit. */
    feed(r, big, max);
    feeds(r, "\r\n");
    ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
    ck_assert_uint_eq(len, max);

    /* One byte over: dropped when its newline comes. */
    feed(r, big, max + 1);
    feeds(r, "\n");
    ck_assert_int_eq(next_rc(r), 2);
    ck_assert_int_eq(next_rc(r), 0);

    /* One byte over, in pieces, and more after it: reported once. */
    feeds(r, "[0]\n");
    for (size_t off = 0; off < max + 1; off += 65536)
        feed(r, big + off, KEEL_MIN(65536, max + 1 - off));
    for (int i = 0; i < 100; i++)
        feed(r, big, 1000);
    feeds(r, "\n[1]\n");
    next_is(r, "[0]");
    ck_assert_int_eq(next_rc(r), 2);
    next_is(r, "[1]");
    ck_assert_int_eq(next_rc(r), 0);

    /* One byte over with a CR (not a CRLF) is too long too. */
    big[max] = '\r';
    feed(r, big, max + 1);
    feeds(r, "\r\n[2]\n");
    ck_assert_int_eq(next_rc(r), 2);
    next_is(r, "[2]");
    ck_assert_int_eq(next_rc(r), 0);
    big[max] = 'x';

    /* Two in a row, all in one feed, between good lines: order is kept. */
    {
        size_t n = 2 * (max + 2) + 8;
        char *s = malloc(n);

        memcpy(s, "[3]\n", 4);
        memcpy(s + 4, big, max + 2);
        s[4 + max + 1] = '\n';
        memcpy(s + 4 + max + 2, big, max + 2);
        s[4 + 2 * (max + 2) - 1] = '\n';
        memcpy(s + n - 4, "[4]\n", 4);
        feed(r, s, n);
        free(s);
    }
    next_is(r, "[3]");
    ck_assert_int_eq(next_rc(r), 2);
    ck_assert_int_eq(next_rc(r), 2);
    next_is(r, "[4]");
    ck_assert_int_eq(next_rc(r), 0);

    /* A too-long line cut off by the stream's end is never reported as a line. */
    feed(r, big, max + 2);
    ck_assert_int_eq(next_rc(r), 2);
    ck_assert_int_eq(next_rc(r), 0);
    feed(r, big, 10);
    ck_assert_int_eq(next_rc(r), 0);
    feeds(r, "\n[5]\n");
    next_is(r, "[5]");
    ck_assert_int_eq(next_rc(r), 0);

    free(big);
    keel_rpc_reader_free(r);
}
END_TEST

/*
 * A line in one-byte feeds: linear, or this test runs into its timeout.
 * Few ck_asserts inside the loops: check records each one in a file.
 */
START_TEST(reader_byte_by_byte)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_rpc_reader *r = keel_rpc_reader_new();
    size_t n = KEEL_RPC_MAX_LINE, failed = 0;
    const char *line;
    size_t len;

    for (size_t i = 0; i < n; i++)
        failed += keel_rpc_reader_feed(r, i == 0 ? "[" : i == n - 1 ? "]" : " ", 1, &err) != 0;
    ck_assert_uint_eq(failed, 0);
    ck_assert_int_eq(next_rc(r), 0);
    feed(r, "\n", 1);
    ck_assert_int_eq(keel_rpc_reader_next(r, &line, &len), 1);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(line[0], '[');
    ck_assert_int_eq(line[n - 1], ']');
    for (size_t i = 0; i < n + 10; i++)
        failed += keel_rpc_reader_feed(r, "y", 1, &err) != 0;
    ck_assert_uint_eq(failed, 0);
    feed(r, "\n", 1);
    ck_assert_int_eq(next_rc(r), 2);
    ck_assert_int_eq(next_rc(r), 0);
    keel_rpc_reader_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rpc");
    TCase *tc = tcase_create("rpc");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, request_valid);
    tcase_add_loop_test(tc, request_refused, 0, (int)(sizeof(refusals) / sizeof(refusals[0])));
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, parse_depth);
    tcase_add_test(tc, parse_too_long);
    tcase_add_test(tc, reply_valid);
    tcase_add_test(tc, reply_refused);
    tcase_add_test(tc, constructors);
    tcase_add_test(tc, error_from);
    tcase_add_test(tc, string_repaired);
    tcase_add_test(tc, reader_lines);
    tcase_add_test(tc, reader_long_lines);
    tcase_add_test(tc, reader_byte_by_byte);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * JSON-RPC 2.0 messages as keeld speaks them: one JSON text per line
 * (newline-delimited framing, docs/api.md), UTF-8, at most
 * KEEL_RPC_MAX_LINE bytes per line.
 *
 *   client -> keeld   {"jsonrpc":"2.0","id":7,"method":"Volume.getInfo","params":{...}}
 *   keeld -> client   {"jsonrpc":"2.0","id":7,"result":{...}}
 *                     {"jsonrpc":"2.0","id":7,"error":{"code":102,"message":"...",
 *                                                     "data":{"name":"not-found"}}}
 *   keeld -> client   {"jsonrpc":"2.0","method":"Job.progress","params":{...}}  (event)
 *
 * A batch (a JSON array of requests on one line) is answered by one array
 * of the responses, as JSON-RPC 2.0 says; notifications get no response.
 *
 * Error codes: the protocol's own (-32700 parse error, -32600 invalid
 * request, -32601 method not found, -32602 invalid params, -32603 internal
 * error) and Keel's (common/errc.h, 100-399) with data.name the stable
 * dotted name ("io.timeout").
 *
 * Everything here is a parser of network input: it never trusts a length,
 * a type or a nesting depth it has not checked (tests/fuzz/fuzz-jsonrpc.c).
 */
#ifndef KEEL_HSM_RPC_H
#define KEEL_HSM_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define KEEL_RPC_MAX_LINE (4u << 20)     /* bytes, newline excluded */
#define KEEL_RPC_MAX_BATCH 64            /* requests in one batch */
#define KEEL_RPC_MAX_DEPTH 32            /* nesting of arrays and objects */
#define KEEL_RPC_METHOD_MAX 64           /* bytes of a method name */

enum {
    KEEL_RPC_PARSE_ERROR = -32700,
    KEEL_RPC_INVALID_REQUEST = -32600,
    KEEL_RPC_METHOD_NOT_FOUND = -32601,
    KEEL_RPC_INVALID_PARAMS = -32602,
    KEEL_RPC_INTERNAL_ERROR = -32603,
};

/* A protocol-level failure: a JSON-RPC error code and its message. */
struct keel_rpc_fault {
    int code;
    char message[256];
};

/*
 * Parse one line (without its newline) into a JSON value: *ret is a new
 * reference.  Refused with KEEL_RPC_PARSE_ERROR: invalid JSON or UTF-8, a
 * NUL byte, trailing bytes, duplicate object keys, nesting deeper than
 * KEEL_RPC_MAX_DEPTH, len > KEEL_RPC_MAX_LINE.
 */
int keel_rpc_parse(const char *line, size_t len, json_t **ret, struct keel_rpc_fault *f);

/*
 * One request or notification, checked against JSON-RPC 2.0: "jsonrpc"
 * is "2.0"; "method" a non-empty string of at most KEEL_RPC_METHOD_MAX
 * bytes of printable ASCII; "params", when present, an object or array;
 * "id", when present, a string, an integer or null; no other member.  The
 * fields borrow from msg.
 */
struct keel_rpc_request {
    const char *method;
    json_t *params;     /* object or array; NULL when absent */
    json_t *id;         /* NULL for a notification (no "id" member) */
};

/*
 * Check msg as a request (KEEL_RPC_INVALID_REQUEST when it is not; *id_out,
 * when id_out is not NULL, is set to the message's id when it has a valid
 * one, else NULL, so that the error response can carry it).
 */
int keel_rpc_request_check(json_t *msg, struct keel_rpc_request *req, json_t **id_out,
                           struct keel_rpc_fault *f);

/*
 * A response or an event received by a client, checked: a response has
 * "id" and exactly one of "result" / "error" (an error object with an
 * integer "code" and a string "message"); an event is a request without
 * an id.  Fields borrow from msg.
 */
struct keel_rpc_reply {
    bool is_event;
    json_t *id;           /* response */
    json_t *result;       /* response, success */
    int error_code;       /* response, error: code (0 on success) */
    const char *error_message;
    json_t *error_data;   /* may be NULL */
    const char *method;   /* event */
    json_t *params;       /* event, may be NULL */
};
int keel_rpc_reply_check(json_t *msg, struct keel_rpc_reply *r, struct keel_rpc_fault *f);

/*
 * New messages (new references; id and result/params/data are borrowed and
 * increfed).  A NULL id makes a notification of a request, and "id": null
 * in a response (an answer to a line whose id could not be read).
 */
json_t *keel_rpc_request_new(json_t *id, const char *method, json_t *params);
json_t *keel_rpc_result_new(json_t *id, json_t *result);
json_t *keel_rpc_error_new(json_t *id, int code, const char *message, json_t *data);
/* An error response for a Keel error: code err->code, data {"name": ...}. */
json_t *keel_rpc_error_from(json_t *id, const struct keel_error *err);

/*
 * Serialise msg compactly followed by "\n" into a new string (free());
 * *len gets its length.  NULL when it cannot be encoded.
 */
char *keel_rpc_dump(const json_t *msg, size_t *len);

/*
 * Turns a byte stream into lines.  Feed what arrived; take complete lines
 * one by one.  A line longer than KEEL_RPC_MAX_LINE is reported once as
 * too long (and its bytes dropped up to the next newline); the reader
 * then goes on with the next line.  A trailing "\r" is removed.
 */
struct keel_rpc_reader;
struct keel_rpc_reader *keel_rpc_reader_new(void);
void keel_rpc_reader_free(struct keel_rpc_reader *r);
/* Append n bytes.  -1 (KEEL_E_NOMEM) only when memory runs out. */
int keel_rpc_reader_feed(struct keel_rpc_reader *r, const void *buf, size_t n,
                         struct keel_error *err);
/*
 * The next line: 1 with *line (borrowed until the next call) and *len set;
 * 0 when no complete line is buffered; 2 when a line was too long (dropped).
 */
int keel_rpc_reader_next(struct keel_rpc_reader *r, const char **line, size_t *len);

/*
 * s as a JSON string (a new reference), each invalid UTF-8 byte replaced
 * by U+FFFD: for text read from storage or the network, which jansson
 * would refuse (and a json_pack with it would fail as a whole).
 */
json_t *keel_rpc_string(const char *s);

#endif /* KEEL_HSM_RPC_H */

/*
 * struct keel_client: a connection to keeld's API (the engine's side, and
 * tests' and keel-rpc's).  Calls are synchronous: send a request, read
 * until its response; events that arrive meanwhile go to the event
 * callback.  Not thread-safe: one caller at a time.
 *
 * The typed stubs keel_client_<method>() are generated from api.json
 * (hsm/api_gen.h); keel_client_call() is what they call.
 */
#ifndef KEEL_HSM_CLIENT_H
#define KEEL_HSM_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

struct keel_tls_ctx;
struct keel_client;

/* Called for each event (a notification from keeld); params borrowed. */
typedef void keel_client_event_fn(void *opaque, const char *method, json_t *params);

/*
 * Connect to keeld at host:port: TLS with ctx (hsm/tls.h; the server's
 * certificate must name `host` when it is a name), clear text with NULL.
 */
int keel_client_connect(const char *host, unsigned port, struct keel_tls_ctx *ctx,
                        int timeout_ms, struct keel_client **ret, struct keel_error *err);
void keel_client_close(struct keel_client *c);

void keel_client_set_events(struct keel_client *c, keel_client_event_fn *fn, void *opaque);
/* How long a call waits for its response (default 600 s). */
void keel_client_set_timeout(struct keel_client *c, int timeout_ms);

/*
 * Call method with params (borrowed; NULL: none).  *result is a new
 * reference.  A JSON-RPC error becomes err: Keel's code and message for
 * Keel's errors (100-399); KEEL_E_INVAL for invalid params / request /
 * parse errors, KEEL_E_UNSUPPORTED for an unknown method.
 * keel_client_last_code() gives the JSON-RPC code of the last error.
 */
int keel_client_call(struct keel_client *c, const char *method, json_t *params,
                     json_t **result, struct keel_error *err);
int keel_client_last_code(const struct keel_client *c);

/* Send raw bytes (tests: malformed input); no newline is added. */
int keel_client_send_raw(struct keel_client *c, const void *buf, size_t n,
                         struct keel_error *err);
/*
 * Read the next message that is not an event (events go to the callback),
 * parsed, within timeout_ms.  KEEL_E_CLOSED when keeld closed.
 */
int keel_client_read(struct keel_client *c, int timeout_ms, json_t **msg, struct keel_error *err);

#endif /* KEEL_HSM_CLIENT_H */

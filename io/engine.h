/*
 * The request engine: what every io/ backend shares.  Internal to io/.
 *
 * An engine owns one I/O thread and at most one session with the storage
 * (an iSCSI login, an NFS mount, or nothing for local files).  Callers
 * submit requests from any thread; the I/O thread
 *   - starts them on the session, keeping the ordering promise of ioreq.h
 *     (overlapping requests with a write start in submission order, FLUSH
 *     waits for earlier writes) and at most max_inflight at once;
 *   - fails each request that is not done by its deadline (timeout_ms after
 *     submission) with KEEL_E_TIMEOUT, and treats a session that leaves a
 *     started request unanswered that long as broken;
 *   - when the session breaks, drops it, connects a new one with a short
 *     backoff and starts the requests that were outstanding again, in their
 *     original order.  A write is resent only if it was not acknowledged; an
 *     acknowledged write is never sent again.
 *
 * State of the session (field `state`):
 *
 *        keel_engine_start()
 *               |
 *               v        ops->connect()          keel_engine_session_up()
 *   +------> DOWN ----------------------> CONNECTING ------------------> UP
 *   |          ^   (a request is waiting)      |                          |
 *   |          |   connect failed / timed out  |                          |
 *   |          +-------------------------------+                          |
 *   |     ops->drop(); outstanding requests go back to the queue          |
 *   +--------------- session broken (keel_engine_session_failed(), ------+
 *                    service() < 0, or a request past its deadline)
 *
 * The backend's functions below are called on the I/O thread only.
 */
#ifndef KEEL_IO_ENGINE_H
#define KEEL_IO_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "io/ioreq.h"
#include "io/opts.h"

struct keel_engine;

enum keel_outcome {
    KEEL_OUT_OK,            /* done; req->xfer set by the backend */
    KEEL_OUT_ERROR,         /* failed for good; error given */
    KEEL_OUT_RETRY_SESSION, /* lost with the session: start again on the next */
    KEEL_OUT_RETRY_LATER,   /* the storage is busy: start again after a pause */
};

/* Return values of ops->start() besides 0 (started) and -1 (failed for good). */
#define KEEL_START_BROKEN 1 /* the session is unusable; the request waits */

struct keel_engine_ops {
    /*
     * Start building a session.  Return 0 when the attempt runs (it ends
     * with keel_engine_session_up() or keel_engine_session_failed()), -1
     * with err when it failed at once.
     */
    int (*connect)(void *be, struct keel_error *err);
    /* The session's socket and the poll events it waits for; -1 for none. */
    int (*poll_fd)(void *be);
    short (*poll_events)(void *be);
    /* Handle socket events.  -1 (with err) when the session broke. */
    int (*service)(void *be, short revents, struct keel_error *err);
    /*
     * Start req on the session: 0 started (it ends with
     * keel_engine_complete*()), -1 failed for good (err filled), or
     * KEEL_START_BROKEN.
     */
    int (*start)(void *be, struct keel_ioreq *req, struct keel_error *err);
    /*
     * Tear the session down.  Requests it still holds may be completed with
     * KEEL_OUT_RETRY_SESSION during the call; the engine takes back those it
     * is not told about.  Afterwards no callback of the old session runs.
     */
    void (*drop)(void *be);
    /*
     * Describe req for error messages: "READ(16) at LBA 2048".  Optional;
     * without it the engine prints "read of 4096 bytes at offset 1048576".
     */
    void (*describe)(void *be, const struct keel_ioreq *req, char *buf, size_t n);
};

/*
 * Make an engine.  name (copied) prefixes every error message: the redacted
 * URL.  opts may be NULL for defaults.  Returns NULL on allocation failure.
 */
struct keel_engine *keel_engine_new(const char *name, const struct keel_engine_ops *ops,
                                    void *be, const struct keel_io_opts *opts);

/*
 * Start the I/O thread and build the first session.  Fails with the
 * connect error when the first session cannot be built: storage that is
 * not there is reported at open, not at the first request.
 */
int keel_engine_start(struct keel_engine *eng, struct keel_error *err);

/*
 * Wait until every accepted request is done (or has failed by its
 * deadline), drop the session, stop the thread and free the engine.
 * NULL is accepted.
 */
void keel_engine_free(struct keel_engine *eng);

/*
 * Queue req (see ioreq.h); owner is the device or file it belongs to, the
 * unit of the ordering rules.  Fails only when the engine is closing.
 */
int keel_engine_submit(struct keel_engine *eng, struct keel_ioreq *req, void *owner,
                       struct keel_error *err);

/* Submit req and wait for it; returns req->result and copies req->err. */
int keel_engine_call(struct keel_engine *eng, struct keel_ioreq *req, void *owner,
                     struct keel_error *err);

const char *keel_engine_name(const struct keel_engine *eng);
const struct keel_io_opts *keel_engine_opts(const struct keel_engine *eng);

/* Generation of the current session: 1 for the first, +1 per reconnect. */
uint64_t keel_engine_session(const struct keel_engine *eng);

/*
 * Gate the engine's data changes with f (fence.h; NULL removes it): see
 * invariant 7 of engine.c.  Returns once the I/O thread no longer uses the
 * fence it had, so that may be freed then.
 */
struct keel_fence;
void keel_engine_set_fence(struct keel_engine *eng, struct keel_fence *f);

/* --- for backends, on the I/O thread --- */
void keel_engine_session_up(struct keel_engine *eng);
/* The session is broken or the connect attempt failed; why is copied. */
void keel_engine_session_failed(struct keel_engine *eng, const struct keel_error *why);
void keel_engine_complete(struct keel_engine *eng, struct keel_ioreq *req,
                          enum keel_outcome outcome, const struct keel_error *why);

/* --- for backends, on any thread (worker pools) --- */
void keel_engine_complete_async(struct keel_engine *eng, struct keel_ioreq *req,
                                enum keel_outcome outcome, const struct keel_error *why);

/* True for ops that change the data (write, zero, discard, truncate). */
bool keel_io_op_writes(enum keel_io_op op);

#endif /* KEEL_IO_ENGINE_H */

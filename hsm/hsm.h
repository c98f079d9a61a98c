/*
 * struct keel_hsm: keeld, the host agent -- one per host, several side by
 * side on one machine (different host ids, ports and state directories).
 *
 *   listener (server.c) --accept--> one thread per connection: read a line,
 *       parse (rpc.c), dispatch (api_dispatch.c, generated from api.json),
 *       answer on the same connection; events go to subscribed connections
 *   storage (storage.c, storage.h): the connected storage servers (iSCSI targets, NFS
 *       exports, POSIX directories) and the domains found on them, each
 *       behind its own lock; a monitor thread reads every domain's metadata
 *       on an interval (Host.getStats)
 *   verbs_*.c: the method handlers
 *
 * Threads and locks: the verbs of one connection run one after another on
 * its thread; connections and the monitor run in parallel.  A domain
 * (struct keel_hsm_dom) is used only with its lock held, taken through
 * keel_hsm_dom_get() / keel_hsm_dom_put(); the storage registry has one
 * lock of its own, never held while waiting for storage, and a scan lock
 * (one scan of the connections at a time).  Lock order: the scan lock,
 * then the registry; a domain, then the registry; keel_hsm's own lock
 * (connections, events) before a stream's.
 *
 * Every method handler keel_hsm_<verb>() (declared in the generated
 * api_gen.h) gets a struct keel_hsm_call and fills *result (a new
 * reference) or err.  keeld logs each failure once, at the boundary.
 */
#ifndef KEEL_HSM_HSM_H
#define KEEL_HSM_HSM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"
#include "io/opts.h"

struct keel_tls_ctx;
struct keel_hsm;
struct keel_hsm_conn;

#define KEEL_HSM_DEFAULT_PORT 54321

struct keel_hsm_config {
    unsigned host_id;               /* 1..2000: this host's id in every lockspace */
    const char *state_dir;          /* connections.json, the log */
    const char *listen;             /* address to bind; insecure: must be 127.0.0.1 */
    unsigned port;                  /* 0: any free port (keel_hsm_port() tells) */
    struct keel_tls_ctx *tls;       /* NULL: clear text (only on 127.0.0.1) */
    unsigned monitor_interval_ms;   /* 0: 10000 */
    unsigned io_timeout_ms;         /* storage requests; 0: KEEL_IO_DEFAULT_TIMEOUT_MS */
    unsigned lease_io_timeout;      /* N of the leases (spm/delta.h), seconds; 0: 10 */
};

/* Start keeld: bind, restore connections, start the monitor.  Serving starts in _run. */
int keel_hsm_new(const struct keel_hsm_config *c, struct keel_hsm **ret, struct keel_error *err);
/* The port it listens on. */
unsigned keel_hsm_port(const struct keel_hsm *h);
/* Serve until keel_hsm_stop() (from a signal handler's thread or another). */
int keel_hsm_run(struct keel_hsm *h, struct keel_error *err);
/* Async-signal-safe: make keel_hsm_run return. */
void keel_hsm_stop(struct keel_hsm *h);
/* Close the API connections and the storage connections, free. */
void keel_hsm_free(struct keel_hsm *h);

/* ---- inside keeld (the files of hsm/) ---- */

struct keel_hsm_call {
    struct keel_hsm *hsm;
    struct keel_hsm_conn *conn;     /* the calling connection */
    const char *peer;               /* "CN=..." or "insecure" */
};

const struct keel_hsm_config *keel_hsm_cfg(const struct keel_hsm *h);
const struct keel_io_opts *keel_hsm_io_opts(const struct keel_hsm *h);

/* Send event `method` with params (reference stolen) to every subscribed connection. */
void keel_hsm_emit(struct keel_hsm *h, const char *method, json_t *params);
/* Subscribe conn to events. */
void keel_hsm_conn_subscribe(struct keel_hsm_conn *conn);

/* The in-memory log ring (Host.dumpLog): the newest n lines, oldest first. */
json_t *keel_hsm_log_lines(struct keel_hsm *h, size_t n);

#endif /* KEEL_HSM_HSM_H */

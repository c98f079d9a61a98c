/*
 * Options shared by every storage backend of io/.
 */
#ifndef KEEL_IO_OPTS_H
#define KEEL_IO_OPTS_H

enum keel_io_event {
    KEEL_IO_EV_LOST,        /* the session broke; requests wait for a new one */
    KEEL_IO_EV_RECONNECTED, /* a new session is up; waiting requests are retried */
    KEEL_IO_EV_RETRY,       /* a connect attempt failed; another follows */
};

/*
 * Called on an io/ thread when a session of a device or file system changes.
 * `name` is the redacted URL, `msg` a human-readable line.  Must not block.
 * This is how daemons and tests log reconnects: io/ itself does not log.
 */
typedef void keel_io_event_fn(void *opaque, enum keel_io_event ev, const char *name,
                              const char *msg);

#define KEEL_IO_DEFAULT_TIMEOUT_MS 30000
#define KEEL_IO_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define KEEL_IO_DEFAULT_MAX_INFLIGHT 64
#define KEEL_IO_DEFAULT_WORKERS 8
#define KEEL_IO_DEFAULT_INITIATOR "iqn.2026-11.org.keel:initiator"

struct keel_io_opts {
    /*
     * A request fails with KEEL_E_TIMEOUT when it is not done this long after
     * submission, reconnects included.  A request that had been sent gets no
     * answer: the session is dropped and rebuilt, and the other requests
     * of the session are retried on the new one.
     */
    unsigned timeout_ms;
    unsigned connect_timeout_ms; /* one connect + login (+ mount) attempt */
    unsigned max_inflight;       /* requests outstanding on one session */
    unsigned workers;            /* threads of the POSIX backends */
    const char *initiator_iqn;   /* iSCSI initiator name */
    keel_io_event_fn *event_cb;
    void *event_opaque;
};

/* Fill o with the defaults above. */
void keel_io_opts_init(struct keel_io_opts *o);

#endif /* KEEL_IO_OPTS_H */

/*
 * Keel's error codes: one list for every layer.
 *
 * The numbers are stable: keeld's JSON-RPC errors and the engine's REST
 * faults expose them, so a number never changes meaning once released.
 * They are grouped by hundreds; add new codes at the end of their group.
 * keel_errc_name() gives each a stable dotted name ("io.timeout").
 */
#ifndef KEEL_COMMON_ERRC_H
#define KEEL_COMMON_ERRC_H

enum keel_errc {
    KEEL_OK = 0,

    /* 100-199: general */
    KEEL_E_INVAL = 100,        /* bad argument or request */
    KEEL_E_NOMEM = 101,
    KEEL_E_NOENT = 102,        /* no such object */
    KEEL_E_EXIST = 103,        /* object exists already */
    KEEL_E_BUSY = 104,         /* in use, try later */
    KEEL_E_NOSPC = 105,        /* out of space */
    KEEL_E_UNSUPPORTED = 106,  /* valid, but Keel does not do it */
    KEEL_E_INTERNAL = 107,     /* a bug in Keel */
    KEEL_E_CANCELLED = 108,
    KEEL_E_PERM = 109,         /* not allowed */
    KEEL_E_RANGE = 110,        /* outside the object's bounds */

    /* 200-299: storage access (io/) */
    KEEL_E_IO = 200,           /* the storage reported an I/O error */
    KEEL_E_TIMEOUT = 201,      /* no answer within the configured time */
    KEEL_E_CONNECT = 202,      /* cannot reach or log in to the server */
    KEEL_E_URL = 203,          /* malformed or refused storage URL */
    KEEL_E_AUTH = 204,         /* authentication refused */
    KEEL_E_SHORT = 205,        /* short read or write */
    KEEL_E_CLOSED = 206,       /* the device or file is being closed */
    KEEL_E_ALIGN = 207,        /* offset or length not block aligned */
    KEEL_E_FAULT = 208,        /* injected by the faulty backend */
    KEEL_E_FENCED = 209,       /* a lease holder's write refused or aborted: lease lost or expiring */

    /* 300-399: on-disk formats (metadata/) */
    KEEL_E_CORRUPT = 300,      /* structure is inconsistent */
    KEEL_E_CHECKSUM = 301,     /* checksum mismatch */
    KEEL_E_MAGIC = 302,        /* wrong magic number or label */
    KEEL_E_FORMAT = 303,       /* text does not parse */
    KEEL_E_VERSION = 304,      /* unknown format version */
};

/* Stable dotted name of a code ("io.timeout"); "unknown" for others. */
const char *keel_errc_name(enum keel_errc code);

#endif /* KEEL_COMMON_ERRC_H */

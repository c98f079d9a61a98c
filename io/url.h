/*
 * Storage URLs: the one way Keel names storage.
 *
 *   iscsi://[user%secret@]host[:port]/<target iqn>/<lun>   a LUN (libiscsi)
 *   nfs://host[:port]/<export path>[/<dir>][?nfsport=N&mountport=M]
 *                                                           NFSv3 (libnfs)
 *   file:///<absolute path>                                 POSIX file, block
 *                                                           device or directory
 *
 * The iSCSI form is libiscsi's: the CHAP user and secret are separated by '%'.
 * The NFS query keys are libnfs's; with them a client reaches a server that
 * runs on other ports than rpcbind announces (the test harness runs several).
 * Paths must be absolute and may not contain "." or ".." components or empty
 * components ("//"): a URL cannot step out of the tree it names.
 *
 * Secrets never leave this module in clear text except through
 * keel_url_secret(): every printable form is redacted ("user%***@").
 */
#ifndef KEEL_IO_URL_H
#define KEEL_IO_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum keel_url_scheme {
    KEEL_URL_ISCSI,
    KEEL_URL_NFS,
    KEEL_URL_FILE,
};

#define KEEL_URL_HOST_MAX 256
#define KEEL_URL_USER_MAX 256
#define KEEL_URL_IQN_MAX 224   /* RFC 3720: at most 223 bytes */
#define KEEL_URL_PATH_MAX 1024
#define KEEL_URL_MAX 2048

#define KEEL_ISCSI_DEFAULT_PORT 3260

struct keel_url {
    enum keel_url_scheme scheme;
    char host[KEEL_URL_HOST_MAX];    /* iscsi, nfs; "[::1]" keeps brackets */
    unsigned port;                   /* 0 when not given */
    char user[KEEL_URL_USER_MAX];    /* iscsi CHAP user, "" if none */
    char secret[KEEL_URL_USER_MAX];  /* iscsi CHAP secret, "" if none */
    char iqn[KEEL_URL_IQN_MAX];      /* iscsi */
    int lun;                         /* iscsi, 0..16383; -1 for a portal or target */
    char path[KEEL_URL_PATH_MAX];    /* nfs: path on the server; file: local path */
    unsigned nfsport;                /* nfs query, 0 when not given */
    unsigned mountport;              /* nfs query, 0 when not given */
};

/*
 * Parse a URL.  On failure err says what is wrong, with the URL redacted:
 *   "iscsi://127.0.0.1/iqn.x: missing LUN number"
 * *ret is written only on success.
 */
int keel_url_parse(const char *s, struct keel_url *ret, struct keel_error *err);

/*
 * Parse an iSCSI portal or target URL, for discovery:
 *   iscsi://[user%secret@]host[:port][/<target iqn>]
 * lun is -1 and iqn may be empty.
 */
int keel_url_parse_portal(const char *s, struct keel_url *ret, struct keel_error *err);

/*
 * Print the URL into buf (size n), with the secret replaced by "***" when
 * redact is true.  Returns buf.  Output is cut at n - 1 bytes.
 */
const char *keel_url_format(const struct keel_url *url, bool redact, char *buf, size_t n);

/* Redact an unparsed URL string (used when parsing fails). Returns buf. */
const char *keel_url_redact_str(const char *s, char *buf, size_t n);

/* "iscsi", "nfs", "file" */
const char *keel_url_scheme_name(enum keel_url_scheme scheme);

/*
 * The iSCSI portal "host:port" (port defaulted to 3260) into buf.  Returns buf.
 */
const char *keel_url_portal(const struct keel_url *url, char *buf, size_t n);

/*
 * A file system URL as oVirt names the storage in a file domain's
 * REMOTE_PATH: "host:/export/path" for NFS, the path for file URLs; ""
 * for iSCSI.  Returns buf.
 */
const char *keel_url_remote_path(const struct keel_url *url, char *buf, size_t n);

/*
 * Check a path relative to a file-system root (the keel_fs interface):
 * not empty, not absolute, no "." / ".." / empty components, no NUL, at most
 * KEEL_URL_PATH_MAX bytes.  err names the path and the reason.
 */
int keel_path_check(const char *rel, struct keel_error *err);

#endif /* KEEL_IO_URL_H */

/*
 * struct keel_sd_md: the metadata of a storage domain, in oVirt's form
 * (../shared/specs/ovirt-storage-format.md section 2).
 *
 * The metadata is a map of KEY=VALUE strings, the same on every kind of
 * domain; only where it is kept differs:
 *
 *   file domain   dom_md/metadata, one "KEY=VALUE\n" line per key, sorted,
 *                 the seal "_SHA_CKSUM=<sha1 hex>" last      (_parse/_format)
 *   block domain  VG tags "MDT_" + escape(KEY=VALUE), seal included
 *                                                     (_from_tags/_to_tags)
 *
 * Seal (section 2.1).  SHA-1 over the sorted "KEY=VALUE" strings,
 * concatenated with no separator, every non-ASCII character replaced by its
 * XML reference "&#<decimal>;" for the hash only (the text itself is UTF-8).
 * Reading: no seal means "trusted as it is" (as VDSM does); a seal that does
 * not match is KEEL_E_CHECKSUM: "metadata checksum mismatch".
 *
 * Invariants of a struct keel_sd_md:
 *   1. keys are unique and kept in byte order (the order of the file and of
 *      the seal);
 *   2. no key is "_SHA_CKSUM": the seal is computed when written, checked
 *      when read, and never stored in the map;
 *   3. no key or value holds a newline or NUL; keys hold no '=' and no
 *      leading or trailing blanks, values no leading or trailing blanks
 *      (VDSM strips values when it writes them, so they could not round
 *      trip);
 *   4. keys Keel does not know are kept verbatim and written back.
 *
 * The typed view (keel_sd_md_info) decodes the keys Keel uses and checks
 * them; it borrows its strings from the map.
 *
 * Ownership: the map owns copies of every key and value; keel_sd_md_release
 * frees them.  Not thread-safe: one owner at a time.
 */
#ifndef KEEL_METADATA_SD_MD_H
#define KEEL_METADATA_SD_MD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "common/uuid.h"

#define KEEL_SD_MD_SEAL_KEY "_SHA_CKSUM"
#define KEEL_SD_MD_TAG_PREFIX "MDT_"
/* The VG tag that makes a VG an oVirt storage domain, and its "in making" form. */
#define KEEL_SD_VG_TAG "RHAT_storage_domain"
#define KEEL_SD_VG_TAG_UNREADY "RHAT_storage_domain_UNREADY"

/* Keys (section 2.2). */
#define KEEL_SDK_VERSION "VERSION"
#define KEEL_SDK_SDUUID "SDUUID"
#define KEEL_SDK_TYPE "TYPE"
#define KEEL_SDK_CLASS "CLASS"
#define KEEL_SDK_ROLE "ROLE"
#define KEEL_SDK_DESCRIPTION "DESCRIPTION"
#define KEEL_SDK_POOL_UUID "POOL_UUID"
#define KEEL_SDK_LOCKPOLICY "LOCKPOLICY"
#define KEEL_SDK_LOCKRENEWAL "LOCKRENEWALINTERVALSEC"
#define KEEL_SDK_LEASETIME "LEASETIMESEC"
#define KEEL_SDK_IOOPTIMEOUT "IOOPTIMEOUTSEC"
#define KEEL_SDK_LEASERETRIES "LEASERETRIES"
#define KEEL_SDK_BLOCK_SIZE "BLOCK_SIZE"
#define KEEL_SDK_ALIGNMENT "ALIGNMENT"
#define KEEL_SDK_REMOTE_PATH "REMOTE_PATH"
#define KEEL_SDK_VGUUID "VGUUID"
#define KEEL_SDK_LOGBLKSIZE "LOGBLKSIZE"
#define KEEL_SDK_PHYBLKSIZE "PHYBLKSIZE"
#define KEEL_SDK_MASTER_VERSION "MASTER_VERSION"
#define KEEL_SDK_POOL_DESCRIPTION "POOL_DESCRIPTION"
#define KEEL_SDK_POOL_DOMAINS "POOL_DOMAINS"
#define KEEL_SDK_POOL_SPM_ID "POOL_SPM_ID"
#define KEEL_SDK_POOL_SPM_LVER "POOL_SPM_LVER"

/* Longest DESCRIPTION a block domain accepts (VDSM's limit). */
#define KEEL_SD_DESCRIPTION_MAX 50

struct keel_sd_md_kv {
    char *key;
    char *value;
};

struct keel_sd_md {
    struct keel_sd_md_kv *kv; /* sorted by key (invariant 1) */
    size_t n, alloc;
};

void keel_sd_md_init(struct keel_sd_md *md);
void keel_sd_md_release(struct keel_sd_md *md);
/* Deep copy of src into dst (initialised or released); -1 on no memory. */
int keel_sd_md_copy(struct keel_sd_md *dst, const struct keel_sd_md *src, struct keel_error *err);
bool keel_sd_md_equal(const struct keel_sd_md *a, const struct keel_sd_md *b);

/* The value of key, borrowed from md, or NULL. */
const char *keel_sd_md_get(const struct keel_sd_md *md, const char *key);

/*
 * Set key to value (copies both).  KEEL_E_INVAL when the pair breaks
 * invariant 2 or 3; value is stored stripped of blanks at its ends.
 */
int keel_sd_md_set(struct keel_sd_md *md, const char *key, const char *value,
                   struct keel_error *err);
int keel_sd_md_set_u64(struct keel_sd_md *md, const char *key, uint64_t value,
                       struct keel_error *err);
/* Remove key; true when it was there. */
bool keel_sd_md_del(struct keel_sd_md *md, const char *key);

/* The seal of md: 40 lower-case hex digits into hex[41]. */
void keel_sd_md_seal(const struct keel_sd_md *md, char hex[41]);

/*
 * Parse the text of dom_md/metadata (len bytes; trailing NULs, which
 * direct I/O padding leaves, are ignored).  Lines: split at the first '=',
 * key and value stripped; a line without '=' is skipped.  On success md
 * (released first) holds the keys, *sealed tells whether a seal was there
 * and matched.  KEEL_E_CHECKSUM when it does not match, KEEL_E_FORMAT for
 * text that is not UTF-8 or holds a NUL inside.
 */
int keel_sd_md_parse(const char *text, size_t len, struct keel_sd_md *md, bool *sealed,
                     struct keel_error *err);

/* Append the file form (sorted lines, seal line last, '\n' after each) to out. */
void keel_sd_md_format(const struct keel_sd_md *md, struct keel_strbuf *out);

/*
 * Escaping of one "KEY=VALUE" line into an LVM tag body (section 4.3):
 * every character outside [a-zA-Z0-9_+.-/=!:#] becomes "&<decimal code
 * point>&" (a UTF-8 sequence is one code point).
 */
void keel_sd_md_tag_escape(const char *line, struct keel_strbuf *out);
/* The inverse; KEEL_E_FORMAT on a broken escape. */
int keel_sd_md_tag_unescape(const char *tag, struct keel_strbuf *out, struct keel_error *err);

/*
 * Read the metadata from a VG's tags: every tag starting with "MDT_" is
 * unescaped and parsed as a line; other tags are ignored.  Same seal rules
 * as keel_sd_md_parse.
 */
int keel_sd_md_from_tags(const char *const *tags, size_t ntags, struct keel_sd_md *md,
                         bool *sealed, struct keel_error *err);

/*
 * The "MDT_..." tags of md, the seal tag included, in key order.  *tags is
 * an array of *ntags malloc'd strings; free with keel_sd_md_tags_free.
 */
int keel_sd_md_to_tags(const struct keel_sd_md *md, char ***tags, size_t *ntags,
                       struct keel_error *err);
void keel_sd_md_tags_free(char **tags, size_t ntags);

/* ---- typed view ---- */

enum keel_sd_type {
    KEEL_SD_TYPE_UNKNOWN = 0,
    KEEL_SD_TYPE_NFS = 1,
    KEEL_SD_TYPE_FCP = 2,
    KEEL_SD_TYPE_ISCSI = 3,
    KEEL_SD_TYPE_LOCALFS = 4,
    KEEL_SD_TYPE_CIFS = 5,
    KEEL_SD_TYPE_POSIXFS = 6,
    KEEL_SD_TYPE_GLUSTERFS = 7,
};

enum keel_sd_class {
    KEEL_SD_CLASS_DATA,
    KEEL_SD_CLASS_ISO,
    KEEL_SD_CLASS_BACKUP, /* an export domain */
};

/* "NFS", "ISCSI"...; NULL for an unknown value. */
const char *keel_sd_type_name(enum keel_sd_type t);
int keel_sd_type_parse(const char *s, enum keel_sd_type *ret);
bool keel_sd_type_is_block(enum keel_sd_type t);
const char *keel_sd_class_name(enum keel_sd_class c);
int keel_sd_class_parse(const char *s, enum keel_sd_class *ret);

struct keel_sd_info {
    unsigned version;             /* 3, 4 or 5 */
    char uuid[KEEL_UUID_LEN + 1];
    enum keel_sd_type type;
    enum keel_sd_class klass;
    bool master;                  /* ROLE=Master */
    const char *description;      /* borrowed from the map */
    const char *pool_uuids;       /* comma separated; "" when unattached */
    unsigned block_size;          /* 512 or 4096; 512 before V5 */
    uint64_t alignment;           /* bytes; 1 MiB before V5 */
    unsigned lease_retries, lease_time_sec, io_timeout_sec, renewal_sec;
    const char *remote_path;      /* file domains; NULL otherwise */
    const char *vg_uuid;          /* block domains; NULL otherwise */
};

/*
 * Decode and check the keys every domain has (section 10.1 step 2):
 * SDUUID a UUID, VERSION 3..5, TYPE and CLASS known, BLOCK_SIZE and
 * ALIGNMENT present and valid in V5 and absent (512 / 1 MiB) before;
 * lease parameters fall back to their defaults when unparsable, as VDSM's.
 * Errors name the key and the value.
 */
int keel_sd_md_info(const struct keel_sd_md *md, struct keel_sd_info *info,
                    struct keel_error *err);

/* What a new domain gets (section 2.2, "initial metadata"). */
struct keel_sd_md_new {
    const char *uuid;
    const char *description;
    enum keel_sd_type type;
    enum keel_sd_class klass;
    unsigned block_size;          /* 0: 512 */
    uint64_t alignment;           /* 0: 1 MiB */
    const char *remote_path;      /* file domains */
    const char *vg_uuid;          /* block domains; PV<n> keys are the caller's */
};

/* Fill md (released first) with the V5 metadata of a new, unattached domain. */
int keel_sd_md_new_domain(struct keel_sd_md *md, const struct keel_sd_md_new *nd,
                          struct keel_error *err);

#endif /* KEEL_METADATA_SD_MD_H */

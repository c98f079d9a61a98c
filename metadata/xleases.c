/*
 * VDSM's external lease index; see xleases.h for the layout, the
 * invariants and the record states.  Written from
 * ../shared/specs/ovirt-storage-format.md 7.3.
 */
#include "metadata/xleases.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "metadata/sanlock_fmt.h"

#define MOD "metadata.xleases"

/* Byte offsets in the metadata block and in a record. */
#define META_VERSION 5
#define META_LOCKSPACE 10
#define META_MTIME 59
#define META_FLAG 70
#define REC_OFFSET 49
#define REC_FLAG 61

/* ---- encoding ---- */

void keel_xleases_meta_encode(const char *lockspace, uint64_t mtime, bool updating,
                              unsigned char *b)
{
    char digits[24];

    memset(b, 0, KEEL_XLEASES_META_SIZE);
    /* The only binary field, big-endian so that every host writes the same. */
    b[0] = (unsigned char)(KEEL_XLEASES_MAGIC >> 24);
    b[1] = (unsigned char)(KEEL_XLEASES_MAGIC >> 16);
    b[2] = (unsigned char)(KEEL_XLEASES_MAGIC >> 8);
    b[3] = (unsigned char)KEEL_XLEASES_MAGIC;
    memcpy(b + META_VERSION, KEEL_XLEASES_VERSION, 4);
    memcpy(b + META_LOCKSPACE, lockspace, strnlen(lockspace, KEEL_XLEASES_ID_LEN));
    snprintf(digits, sizeof(digits), "%010" PRIu64, mtime % UINT64_C(10000000000));
    memcpy(b + META_MTIME, digits, 10);
    b[META_FLAG] = updating ? 'u' : '-';
    b[KEEL_XLEASES_META_SIZE - 1] = '\n';
}

void keel_xleases_record_encode(const struct keel_xleases_record *r, unsigned char *b)
{
    char digits[24];

    memset(b, 0, KEEL_XLEASES_RECORD_SIZE);
    memcpy(b, r->id, strnlen(r->id, KEEL_XLEASES_ID_LEN));
    snprintf(digits, sizeof(digits), "%011" PRIu64, r->offset % UINT64_C(100000000000));
    memcpy(b + REC_OFFSET, digits, 11);
    b[REC_FLAG] = r->updating ? 'u' : '-';
    b[REC_FLAG + 1] = '-';
    b[REC_FLAG + 2] = '\n';
}

/* ---- parsing ---- */

/* A field for an error message: printable ASCII, the rest as '?'. */
static const char *shown(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[n] = '\0';
    return out;
}

static bool all_digits(const unsigned char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    *v = x;
    return true;
}

/* A NUL-padded ASCII name of 48 bytes: no NUL inside, then only NULs. */
static bool padded_name(const unsigned char *p, char *out)
{
    size_t n = strnlen((const char *)p, KEEL_XLEASES_ID_LEN);

    for (size_t i = 0; i < KEEL_XLEASES_ID_LEN; i++)
        if (i < n ? p[i] >= 0x80 : p[i] != 0)
            return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static int bad_meta(struct keel_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad_meta(struct keel_error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    keel_error_setv(err, KEEL_E_FORMAT, 0, fmt, ap);
    va_end(ap);
    return keel_error_prefix(err, "xleases index metadata");
}

/* The metadata block; lockspace, mtime and updating are written even on failure. */
static int parse_meta(const unsigned char *b, char *lockspace, uint64_t *mtime, bool *updating,
                      struct keel_error *err)
{
    static const size_t seps[] = { 4, 9, 58, 69 };
    uint32_t magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    char s[16], name[KEEL_XLEASES_ID_LEN + 1];

    if (magic != KEEL_XLEASES_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "xleases index: bad magic 0x%08" PRIx32,
                              magic);
    if (memcmp(b + META_VERSION, KEEL_XLEASES_VERSION, 4) != 0)
        return keel_error_set(err, KEEL_E_VERSION, 0, "xleases index: unsupported version "
                              "\"%s\"", shown(b + META_VERSION, 4, s));
    for (size_t i = 0; i < KEEL_ARRAY_SIZE(seps); i++)
        if (b[seps[i]] != 0)
            return bad_meta(err, "byte %zu is 0x%02x, not a NUL separator", seps[i], b[seps[i]]);
    if (!padded_name(b + META_LOCKSPACE, lockspace))
        return bad_meta(err, "bad lockspace \"%s\"", shown(b + META_LOCKSPACE, 48, name));
    if (!all_digits(b + META_MTIME, 10, mtime))
        return bad_meta(err, "bad mtime \"%s\"", shown(b + META_MTIME, 10, s));
    if (b[META_FLAG] != '-' && b[META_FLAG] != 'u')
        return bad_meta(err, "bad updating flag 0x%02x", b[META_FLAG]);
    for (size_t i = META_FLAG + 1; i < KEEL_XLEASES_META_SIZE - 1; i++)
        if (b[i] != 0)
            return bad_meta(err, "padding byte %zu is 0x%02x", i, b[i]);
    if (b[KEEL_XLEASES_META_SIZE - 1] != '\n')
        return bad_meta(err, "no newline at byte %d", KEEL_XLEASES_META_SIZE - 1);
    *updating = b[META_FLAG] == 'u';
    return 0;
}

static int parse_record(const unsigned char *p, size_t r, struct keel_xleases_record *rec,
                        struct keel_error *err)
{
    const char *why = NULL;
    char s[16];

    if (!padded_name(p, rec->id))
        why = "bad lease id";
    else if (p[REC_OFFSET - 1] != 0 || p[REC_FLAG - 1] != 0)
        why = "no NUL separator";
    else if (!all_digits(p + REC_OFFSET, 11, &rec->offset))
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index record %zu: bad offset "
                              "\"%s\"", r, shown(p + REC_OFFSET, 11, s));
    else if (p[REC_FLAG] != '-' && p[REC_FLAG] != 'u')
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index record %zu: bad updating "
                              "flag 0x%02x", r, p[REC_FLAG]);
    else if (p[REC_FLAG + 1] != '-')
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index record %zu: bad reserved "
                              "flag 0x%02x", r, p[REC_FLAG + 1]);
    else if (p[REC_FLAG + 2] != '\n')
        why = "no newline";
    if (why != NULL)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index record %zu: %s", r, why);
    rec->updating = p[REC_FLAG] == 'u';
    return 0;
}

int keel_xleases_parse(const unsigned char *b, size_t len, struct keel_xleases_index *idx,
                       struct keel_error *err)
{
    char lockspace[KEEL_XLEASES_ID_LEN + 1];
    struct keel_xleases_record rec;
    uint64_t mtime = 0;
    bool updating = false;

    if (len < KEEL_XLEASES_INDEX_SIZE)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index: %zu bytes, want %d", len,
                              KEEL_XLEASES_INDEX_SIZE);
    /* Check everything first: *idx is written only on success. */
    if (parse_meta(b, lockspace, &mtime, &updating, err) != 0)
        return -1;
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++)
        if (parse_record(b + KEEL_XLEASES_META_SIZE + r * KEEL_XLEASES_RECORD_SIZE, r, &rec,
                         err) != 0)
            return -1;
    memcpy(idx->lockspace, lockspace, sizeof(idx->lockspace));
    idx->mtime = mtime;
    idx->updating = updating;
    idx->nused = 0;
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++) {
        parse_record(b + KEEL_XLEASES_META_SIZE + r * KEEL_XLEASES_RECORD_SIZE, r,
                     &idx->records[r], NULL);
        if (idx->records[r].id[0] != '\0')
            idx->nused++;
    }
    return 0;
}

uint64_t keel_xleases_lease_offset(uint64_t alignment, size_t recnum)
{
    return (KEEL_XLEASES_RESERVED_SLOTS + (uint64_t)recnum) * alignment;
}

int keel_xleases_find(const struct keel_xleases_index *idx, const char *lease_id)
{
    if (lease_id[0] == '\0')
        return -1;
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++)
        if (strcmp(idx->records[r].id, lease_id) == 0)
            return (int)r;
    return -1;
}

/* A free record, byte for byte what VDSM's EMPTY_RECORD is. */
static bool is_free(const struct keel_xleases_record *r)
{
    return r->id[0] == '\0' && r->offset == 0 && !r->updating;
}

/* ---- on a block device ---- */

static int check_alignment(uint64_t alignment, struct keel_error *err)
{
    if (keel_sanlock_align_flag(alignment) == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "xleases: alignment %" PRIu64 " is not 1, "
                              "2, 4 or 8 MiB", alignment);
    return 0;
}

/* Bytes of one index write: the device block, at least 512 and the sector. */
static size_t block_len(struct keel_blockdev *dev, unsigned sector_size)
{
    size_t bs = KEEL_MAX((size_t)keel_blockdev_block_size(dev), (size_t)KEEL_XLEASES_META_SIZE);

    return KEEL_MAX(bs, (size_t)sector_size);
}

int keel_xleases_format(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                        uint64_t alignment, time_t now, struct keel_error *err)
{
    _cleanup_free_ unsigned char *buf = NULL;
    struct keel_xleases_record empty = { .id = "" };
    uint64_t at = offset + alignment;
    size_t first = block_len(dev, 0);
    int rc;

    if (check_alignment(alignment, err) != 0)
        return -1;
    if (strlen(lockspace) > KEEL_XLEASES_ID_LEN)
        return keel_error_set(err, KEEL_E_INVAL, 0, "xleases: lockspace name \"%.64s\" is "
                              "longer than %d bytes", lockspace, KEEL_XLEASES_ID_LEN);
    if (first > KEEL_XLEASES_INDEX_SIZE)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "xleases: %zu-byte blocks", first);
    buf = keel_aligned_alloc(4096, KEEL_XLEASES_INDEX_SIZE);
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    keel_xleases_meta_encode(lockspace, (uint64_t)now, true, buf);
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++)
        keel_xleases_record_encode(&empty, buf + KEEL_XLEASES_META_SIZE +
                                               r * KEEL_XLEASES_RECORD_SIZE);
    rc = keel_blockdev_pwrite(dev, buf, KEEL_XLEASES_INDEX_SIZE, at, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    if (rc == 0) {
        /* Invariant 1: the index becomes usable in this last write. */
        keel_xleases_meta_encode(lockspace, (uint64_t)now, false, buf);
        rc = keel_blockdev_pwrite(dev, buf, first, at, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    return rc == 0 ? 0 : keel_error_prefix(err, "xleases");
}

/* Read the raw index into buf (KEEL_XLEASES_INDEX_SIZE) and parse it. */
static int load(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                unsigned char *buf, struct keel_xleases_index *idx, struct keel_error *err)
{
    if (check_alignment(alignment, err) != 0 ||
        keel_blockdev_pread(dev, buf, KEEL_XLEASES_INDEX_SIZE, offset + alignment, err) != 0 ||
        keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, err) != 0)
        return -1;
    return 0;
}

int keel_xleases_read(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                      struct keel_xleases_index *idx, struct keel_error *err)
{
    _cleanup_free_ unsigned char *buf = keel_aligned_alloc(4096, KEEL_XLEASES_INDEX_SIZE);

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    return load(dev, offset, alignment, buf, idx, err);
}

/* An index for an operation: loaded and not being updated. */
struct op {
    unsigned char *buf;
    struct keel_xleases_index *idx;
};

static void op_release(struct op *o)
{
    free(o->buf);
    free(o->idx);
}

static int op_load(struct op *o, struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                   struct keel_error *err)
{
    o->buf = keel_aligned_alloc(4096, KEEL_XLEASES_INDEX_SIZE);
    o->idx = calloc(1, sizeof(*o->idx));
    if (o->buf == NULL || o->idx == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (load(dev, offset, alignment, o->buf, o->idx, err) != 0)
        return -1;
    if (o->idx->updating)
        return keel_error_set(err, KEEL_E_BUSY, 0, "xleases index of %s is being updated or "
                              "an update was interrupted: format or rebuild it",
                              o->idx->lockspace);
    return 0;
}

static int check_id(const char *lease_id, struct keel_error *err)
{
    size_t n = strlen(lease_id);

    if (n == 0 || n > KEEL_XLEASES_ID_LEN)
        return keel_error_set(err, KEEL_E_INVAL, 0, "xleases: lease id \"%.64s\" is not 1..%d "
                              "bytes", lease_id, KEEL_XLEASES_ID_LEN);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)lease_id[i] >= 0x80)
            return keel_error_set(err, KEEL_E_INVAL, 0, "xleases: lease id \"%.64s\" is not "
                                  "ASCII", lease_id);
    return 0;
}

/* Invariant 4: write record r by rewriting the block that holds it. */
static int write_record(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                        unsigned sector_size, struct op *o, size_t r,
                        const struct keel_xleases_record *rec, struct keel_error *err)
{
    size_t pos = KEEL_XLEASES_META_SIZE + r * KEEL_XLEASES_RECORD_SIZE;
    size_t bs = block_len(dev, sector_size), start = pos / bs * bs;

    keel_xleases_record_encode(rec, o->buf + pos);
    if (keel_blockdev_pwrite(dev, o->buf + start, bs, offset + alignment + start, err) != 0 ||
        keel_blockdev_flush(dev, err) != 0)
        return -1;
    o->idx->records[r] = *rec;
    return 0;
}

int keel_xleases_lookup(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                        const char *lease_id, uint64_t *lease_offset, struct keel_error *err)
{
    struct op o = { 0 };
    int r, rc = -1;

    if (check_id(lease_id, err) != 0 || op_load(&o, dev, offset, alignment, err) != 0)
        goto out;
    r = keel_xleases_find(o.idx, lease_id);
    /* A record left updating by an older VDSM is a lease that never was. */
    if (r < 0 || o.idx->records[r].updating) {
        keel_error_set(err, KEEL_E_NOENT, 0, "xleases: no lease %s in lockspace %s", lease_id,
                       o.idx->lockspace);
        goto out;
    }
    *lease_offset = keel_xleases_lease_offset(alignment, (size_t)r);
    rc = 0;
out:
    op_release(&o);
    return rc;
}

int keel_xleases_add(struct keel_blockdev *dev, uint64_t offset, uint64_t size,
                     unsigned sector_size, uint64_t alignment, const char *lease_id,
                     uint64_t *lease_offset, struct keel_error *err)
{
    struct op o = { 0 };
    struct keel_xleases_record rec = { .updating = false };
    uint64_t at;
    int r, rc = -1;

    if (check_id(lease_id, err) != 0 ||
        keel_sanlock_check_geometry(sector_size, alignment, err) != 0 ||
        op_load(&o, dev, offset, alignment, err) != 0)
        goto out;
    r = keel_xleases_find(o.idx, lease_id);
    if (r >= 0 && !o.idx->records[r].updating) {
        keel_error_set(err, KEEL_E_EXIST, 0, "xleases: lease %s exists (record %d)", lease_id,
                       r);
        goto out;
    }
    for (size_t i = 0; r < 0 && i < KEEL_XLEASES_MAX_RECORDS; i++)
        if (is_free(&o.idx->records[i]))
            r = (int)i;
    if (r < 0) {
        keel_error_set(err, KEEL_E_NOSPC, 0, "xleases: no free record for lease %s (%d in use)",
                       lease_id, KEEL_XLEASES_MAX_RECORDS);
        goto out;
    }
    at = keel_xleases_lease_offset(alignment, (size_t)r);
    if (at + alignment > size) {
        keel_error_set(err, KEEL_E_NOSPC, 0, "xleases: lease %s needs slot %d: the area must "
                       "be %" PRIu64 " bytes, it is %" PRIu64, lease_id,
                       KEEL_XLEASES_RESERVED_SLOTS + r, at + alignment, size);
        goto out;
    }
    /* Invariant 2: the resource is durable before a record names it. */
    if (keel_sanlock_write_resource(dev, offset + at, o.idx->lockspace, lease_id, sector_size,
                                    alignment, err) != 0 ||
        keel_blockdev_flush(dev, err) != 0)
        goto out;
    keel_strlcpy(rec.id, lease_id, sizeof(rec.id));
    rec.offset = at;
    if (write_record(dev, offset, alignment, sector_size, &o, (size_t)r, &rec, err) != 0)
        goto out;
    if (lease_offset != NULL)
        *lease_offset = at;
    rc = 0;
out:
    op_release(&o);
    return rc == 0 ? 0 : keel_error_prefix(err, "adding lease %s", lease_id);
}

int keel_xleases_remove(struct keel_blockdev *dev, uint64_t offset, unsigned sector_size,
                        uint64_t alignment, const char *lease_id, struct keel_error *err)
{
    struct op o = { 0 };
    struct keel_xleases_record empty = { .id = "" };
    struct keel_error clear = KEEL_ERROR_INIT;
    uint64_t at;
    int r, rc = -1;

    if (check_id(lease_id, err) != 0 || op_load(&o, dev, offset, alignment, err) != 0)
        goto out;
    r = keel_xleases_find(o.idx, lease_id);
    if (r < 0) {
        keel_error_set(err, KEEL_E_NOENT, 0, "xleases: no lease %s in lockspace %s", lease_id,
                       o.idx->lockspace);
        goto out;
    }
    /* Invariant 3: out of the index first; from here the lease is gone. */
    if (write_record(dev, offset, alignment, sector_size, &o, (size_t)r, &empty, err) != 0)
        goto out;
    rc = 0;
    at = keel_xleases_lease_offset(alignment, (size_t)r);
    if (keel_sanlock_write_resource(dev, offset + at, "", "", sector_size, alignment,
                                    &clear) != 0 ||
        keel_blockdev_flush(dev, &clear) != 0)
        keel_debug(MOD, "lease %s removed, its resource at %" PRIu64 " left: %s", lease_id,
                   offset + at, clear.msg);
out:
    op_release(&o);
    return rc == 0 ? 0 : keel_error_prefix(err, "removing lease %s", lease_id);
}

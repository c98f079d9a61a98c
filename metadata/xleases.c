/* VDSM's external lease index; see xleases.h. */
#include "metadata/xleases.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

void keel_xleases_meta_encode(const char *lockspace, uint64_t mtime, bool updating,
                              unsigned char *b)
{
    char digits[16];

    memset(b, 0, KEEL_XLEASES_META_SIZE);
    b[0] = (unsigned char)(KEEL_XLEASES_MAGIC >> 24);
    b[1] = (unsigned char)(KEEL_XLEASES_MAGIC >> 16);
    b[2] = (unsigned char)(KEEL_XLEASES_MAGIC >> 8);
    b[3] = (unsigned char)KEEL_XLEASES_MAGIC;
    memcpy(b + 5, "0001", 4);
    memcpy(b + 10, lockspace, strnlen(lockspace, 48));
    snprintf(digits, sizeof(digits), "%010" PRIu64, mtime % UINT64_C(10000000000));
    memcpy(b + 59, digits, 10);
    b[70] = updating ? 'u' : '-';
    b[511] = '\n';
}

void keel_xleases_record_encode(const struct keel_xleases_record *r, unsigned char *b)
{
    char digits[16];

    memset(b, 0, KEEL_XLEASES_RECORD_SIZE);
    memcpy(b, r->id, strnlen(r->id, 48));
    snprintf(digits, sizeof(digits), "%011" PRIu64, r->offset % UINT64_C(100000000000));
    memcpy(b + 49, digits, 11);
    b[61] = r->updating ? 'u' : '-';
    b[62] = '-';
    b[63] = '\n';
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

/* A NUL-padded name of 48 bytes: no NUL inside, then only NULs. */
static bool padded_name(const unsigned char *p, char *out)
{
    size_t n = strnlen((const char *)p, 48);

    for (size_t i = n; i < 48; i++)
        if (p[i] != 0)
            return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

int keel_xleases_parse(const unsigned char *b, size_t len, struct keel_xleases_index *idx,
                       struct keel_error *err)
{
    uint32_t magic;

    if (len < KEEL_XLEASES_INDEX_SIZE)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index: %zu bytes, want %d", len,
                              KEEL_XLEASES_INDEX_SIZE);
    magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (magic != KEEL_XLEASES_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "xleases index: bad magic 0x%08x", magic);
    if (b[4] != 0 || memcmp(b + 5, "0001", 4) != 0 || b[9] != 0)
        return keel_error_set(err, KEEL_E_VERSION, 0, "xleases index: unknown version");
    if (!padded_name(b + 10, idx->lockspace) || b[58] != 0 ||
        !all_digits(b + 59, 10, &idx->mtime) || b[69] != 0 || (b[70] != '-' && b[70] != 'u') ||
        b[511] != '\n')
        return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index: bad metadata block");
    for (size_t i = 71; i < 511; i++)
        if (b[i] != 0)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index: bad metadata block");
    idx->updating = b[70] == 'u';
    idx->nused = 0;
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++) {
        const unsigned char *p = b + KEEL_XLEASES_META_SIZE + r * KEEL_XLEASES_RECORD_SIZE;
        struct keel_xleases_record *rec = &idx->records[r];

        if (!padded_name(p, rec->id) || p[48] != 0 || !all_digits(p + 49, 11, &rec->offset) ||
            p[60] != 0 || (p[61] != '-' && p[61] != 'u') || p[62] != '-' || p[63] != '\n')
            return keel_error_set(err, KEEL_E_FORMAT, 0, "xleases index: bad record %zu", r);
        rec->updating = p[61] == 'u';
        if (rec->id[0] != '\0')
            idx->nused++;
    }
    return 0;
}

int keel_xleases_format(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                        uint64_t alignment, time_t now, struct keel_error *err)
{
    unsigned char *buf = keel_aligned_alloc(4096, KEEL_XLEASES_INDEX_SIZE);
    struct keel_xleases_record empty = { .id = "" };
    uint64_t at = offset + alignment;
    int rc;

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (strlen(lockspace) > 48) {
        free(buf);
        return keel_error_set(err, KEEL_E_INVAL, 0, "xleases: lockspace name too long");
    }
    keel_xleases_meta_encode(lockspace, (uint64_t)now, true, buf);
    for (size_t r = 0; r < KEEL_XLEASES_MAX_RECORDS; r++)
        keel_xleases_record_encode(&empty, buf + KEEL_XLEASES_META_SIZE +
                                               r * KEEL_XLEASES_RECORD_SIZE);
    rc = keel_blockdev_pwrite(dev, buf, KEEL_XLEASES_INDEX_SIZE, at, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    if (rc == 0) {
        keel_xleases_meta_encode(lockspace, (uint64_t)now, false, buf);
        rc = keel_blockdev_pwrite(dev, buf, KEEL_XLEASES_META_SIZE, at, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(buf);
    return rc == 0 ? 0 : keel_error_prefix(err, "xleases");
}

int keel_xleases_read(struct keel_blockdev *dev, uint64_t offset, uint64_t alignment,
                      struct keel_xleases_index *idx, struct keel_error *err)
{
    unsigned char *buf = keel_aligned_alloc(4096, KEEL_XLEASES_INDEX_SIZE);
    int rc;

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(dev, buf, KEEL_XLEASES_INDEX_SIZE, offset + alignment, err);
    if (rc == 0)
        rc = keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, err);
    free(buf);
    return rc;
}

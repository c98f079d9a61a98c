/* Where a qcow2 image's guest bytes are; see qcow2_map.h. */
#include "volume/qcow2_map.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"

#define INCOMPAT_DATA_FILE 0x4u
#define INCOMPAT_EXTL2 0x10u
#define ENTRY_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2_COMPRESSED (UINT64_C(1) << 62)
#define L2_ZERO UINT64_C(1)

struct keel_qcow2_map {
    struct keel_blockdev *dev;
    uint64_t offset, area;
    struct keel_qcow2_info info;
    uint64_t cluster;          /* bytes */
    uint64_t l2_entries;       /* entries per L2 table */
    uint64_t *l1;              /* host order */
    uint64_t *l2;              /* the cached table, host order */
    int64_t l2_index;          /* which L1 entry it is; -1: none */
    char who[320];
};

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int read_table(struct keel_qcow2_map *m, uint64_t at, uint64_t n, uint64_t *out,
                      const char *what, struct keel_error *err)
{
    size_t bytes = (size_t)(n * 8), rounded = (size_t)KEEL_ALIGN_UP(bytes, 4096);
    uint32_t bs = keel_blockdev_block_size(m->dev);
    unsigned char *buf;
    int rc;

    /* Written so that nothing wraps: at and n come from the image. */
    if (at % m->cluster != 0 || at > m->area || bytes > m->area - at)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: %s at %" PRIu64 " outside the image "
                              "(%" PRIu64 " bytes) or not cluster aligned", m->who, what, at,
                              m->area);
    /* Whole device blocks, inside the area. */
    if (rounded > m->area - at)
        rounded = (size_t)KEEL_ALIGN_UP(bytes, bs);
    if (rounded > m->area - at)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: %s at %" PRIu64 " ends past the "
                              "image (%" PRIu64 " bytes)", m->who, what, at, m->area);
    buf = keel_aligned_alloc(4096, KEEL_ALIGN_UP(rounded, 4096));
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(m->dev, buf, rounded, m->offset + at, err);
    if (rc == 0)
        for (uint64_t i = 0; i < n; i++)
            out[i] = be64(buf + i * 8);
    else
        keel_error_prefix(err, "%s: %s", m->who, what);
    free(buf);
    return rc;
}

int keel_qcow2_map_open(struct keel_blockdev *dev, uint64_t offset, uint64_t area,
                        struct keel_qcow2_map **ret, struct keel_error *err)
{
    struct keel_qcow2_map *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    m->dev = dev;
    m->offset = offset;
    m->area = area;
    m->l2_index = -1;
    if (offset == 0)
        snprintf(m->who, sizeof(m->who), "qcow2 at %s", keel_blockdev_name(dev));
    else
        snprintf(m->who, sizeof(m->who), "qcow2 at %s offset %" PRIu64, keel_blockdev_name(dev),
                 offset);
    if (keel_qcow2_read_header(dev, offset, &m->info, err) != 0)
        goto fail;
    if (m->info.incompatible & INCOMPAT_EXTL2) {
        keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: extended L2 entries", m->who);
        goto fail;
    }
    if (m->info.incompatible & INCOMPAT_DATA_FILE) {
        keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: an external data file", m->who);
        goto fail;
    }
    m->cluster = UINT64_C(1) << m->info.cluster_bits;
    m->l2_entries = m->cluster / 8;
    m->l1 = calloc(m->info.l1_size ? m->info.l1_size : 1, sizeof(*m->l1));
    m->l2 = calloc(m->l2_entries, sizeof(*m->l2));
    if (m->l1 == NULL || m->l2 == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto fail;
    }
    if (m->info.l1_size > 0 &&
        read_table(m, m->info.l1_offset, m->info.l1_size, m->l1, "L1 table", err) != 0)
        goto fail;
    *ret = m;
    return 0;
fail:
    keel_qcow2_map_close(m);
    return -1;
}

const struct keel_qcow2_info *keel_qcow2_map_info(const struct keel_qcow2_map *m)
{
    return &m->info;
}

/* Kind and host offset of L2 entry e (guest cluster index gc, for messages). */
static int classify(struct keel_qcow2_map *m, uint64_t e, uint64_t gc, enum keel_extent_kind *k,
                    uint64_t *host, struct keel_error *err)
{
    uint64_t off = e & ENTRY_OFFSET_MASK;

    if (e & L2_COMPRESSED)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: guest cluster %" PRIu64 " is "
                              "compressed", m->who, gc);
    if (m->info.version >= 3 && (e & L2_ZERO)) {
        *k = KEEL_EXTENT_ZERO;
        return 0;
    }
    if (off == 0) {
        *k = KEEL_EXTENT_UNALLOCATED;
        return 0;
    }
    if (off % m->cluster != 0 || off > m->area || m->cluster > m->area - off)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: guest cluster %" PRIu64 " maps to "
                              "%" PRIu64 ", outside the image (%" PRIu64 " bytes) or not "
                              "cluster aligned", m->who, gc, off, m->area);
    *k = KEEL_EXTENT_DATA;
    *host = off;
    return 0;
}

int keel_qcow2_map_extent(struct keel_qcow2_map *m, uint64_t guest, uint64_t max_len,
                          struct keel_extent *ext, struct keel_error *err)
{
    uint64_t gc = guest / m->cluster, l1i = gc / m->l2_entries, l2i = gc % m->l2_entries;
    uint64_t in = guest % m->cluster, end, len, host = 0, l1e;
    enum keel_extent_kind kind = KEEL_EXTENT_UNALLOCATED;

    if (guest >= m->info.size || max_len == 0)
        return keel_error_set(err, KEEL_E_RANGE, 0, "%s: guest offset %" PRIu64 " past the "
                              "virtual size %" PRIu64, m->who, guest, m->info.size);
    /* Never past the size, the L2 table, or max_len. */
    end = KEEL_MIN(m->info.size, (l1i + 1) * m->l2_entries * m->cluster);
    end = KEEL_MIN(end, guest + max_len);
    l1e = l1i < m->info.l1_size ? m->l1[l1i] & ENTRY_OFFSET_MASK : 0;
    if (l1e == 0) {
        *ext = (struct keel_extent){ .kind = KEEL_EXTENT_UNALLOCATED, .guest = guest,
                                     .len = end - guest };
        return 0;
    }
    if (m->l2_index != (int64_t)l1i) {
        char what[64];

        snprintf(what, sizeof(what), "L2 table %" PRIu64, l1i);
        m->l2_index = -1;
        if (read_table(m, l1e, m->l2_entries, m->l2, what, err) != 0)
            return -1;
        m->l2_index = (int64_t)l1i;
    }
    if (classify(m, m->l2[l2i], gc, &kind, &host, err) != 0)
        return -1;
    len = m->cluster - in;
    while (guest + len < end) {
        uint64_t next = (guest + len) / m->cluster, h2 = 0;
        enum keel_extent_kind k2 = KEEL_EXTENT_UNALLOCATED;

        if (classify(m, m->l2[next % m->l2_entries], next, &k2, &h2, err) != 0)
            return -1;
        if (k2 != kind || (kind == KEEL_EXTENT_DATA && h2 != host + (next - gc) * m->cluster))
            break;
        len += m->cluster;
    }
    len = KEEL_MIN(len, end - guest);
    *ext = (struct keel_extent){ .kind = kind, .guest = guest, .len = len,
                                 .host = kind == KEEL_EXTENT_DATA ? m->offset + host + in : 0 };
    return 0;
}

void keel_qcow2_map_close(struct keel_qcow2_map *m)
{
    if (m == NULL)
        return;
    free(m->l1);
    free(m->l2);
    free(m);
}

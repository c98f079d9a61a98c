/* qcow2 images written and read by Keel; see qcow2.h. */
#include "volume/qcow2.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

#define CLUSTER (UINT64_C(1) << KEEL_QCOW2_CLUSTER_BITS)
#define V2_HEADER 72
#define V3_HEADER 112
#define L2_ENTRIES (CLUSTER / 8)

static void put16(unsigned char *b, uint16_t v) { b[0] = (unsigned char)(v >> 8); b[1] = (unsigned char)v; }

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get64(const unsigned char *b)
{
    return (uint64_t)get32(b) << 32 | get32(b + 4);
}

/* L1 entries for a virtual size with 64 KiB clusters (one L2 maps 512 MiB). */
static uint64_t l1_entries(uint64_t size, unsigned cluster_bits)
{
    uint64_t per_l1 = UINT64_C(1) << (2 * cluster_bits - 3);

    return (size + per_l1 - 1) / per_l1;
}

static uint64_t l1_clusters(uint64_t entries)
{
    uint64_t c = (entries * 8 + CLUSTER - 1) / CLUSTER;

    return c == 0 ? 1 : c;
}

uint64_t keel_qcow2_metadata_size(uint64_t size)
{
    return (3 + l1_clusters(l1_entries(size, KEEL_QCOW2_CLUSTER_BITS))) * CLUSTER;
}

/* qemu 7.2's feature name table, in its order. */
static const struct { unsigned char type, bit; const char *name; } features[] = {
    { 0, 0, "dirty bit" },          { 0, 1, "corrupt bit" },  { 0, 2, "external data file" },
    { 0, 3, "compression type" },   { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },     { 2, 0, "bitmaps" },      { 2, 1, "raw external data" },
};

static int check_opts(const struct keel_qcow2_opts *o, struct keel_error *err)
{
    if (o->size == 0 || o->size % 512 != 0 || o->size > (UINT64_C(1) << 55))
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: bad virtual size %" PRIu64, o->size);
    if (o->version != 0 && o->version != 2 && o->version != 3)
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: no version %u", o->version);
    if (o->backing_file != NULL) {
        size_t n = strlen(o->backing_file);

        if (n == 0 || n > KEEL_QCOW2_BACKING_MAX)
            return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: bad backing file name");
        if (o->backing_format == NULL || strlen(o->backing_format) == 0 ||
            strlen(o->backing_format) > 16)
            return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: a backing file needs its format");
    }
    return 0;
}

int keel_qcow2_header_encode(const struct keel_qcow2_opts *o, unsigned char *b,
                             struct keel_error *err)
{
    unsigned version = o->version == 2 ? 2 : 3;
    uint64_t l1 = l1_entries(o->size, KEEL_QCOW2_CLUSTER_BITS);
    size_t at;

    if (check_opts(o, err) != 0)
        return -1;
    memset(b, 0, CLUSTER);
    put32(b, KEEL_QCOW2_MAGIC);
    put32(b + 4, version);
    put32(b + 20, KEEL_QCOW2_CLUSTER_BITS);
    put64(b + 24, o->size);
    put32(b + 36, (uint32_t)l1);
    put64(b + 40, 3 * CLUSTER);       /* L1 table */
    put64(b + 48, CLUSTER);           /* refcount table */
    put32(b + 56, 1);
    if (version == 3) {
        put32(b + 96, 4);             /* refcount_order: 16-bit refcounts */
        put32(b + 100, V3_HEADER);
    }
    at = version == 3 ? V3_HEADER : V2_HEADER;
    if (o->backing_file != NULL) {
        size_t n = strlen(o->backing_format);

        put32(b + at, KEEL_QCOW2_EXT_BACKING_FORMAT);
        put32(b + at + 4, (uint32_t)n);
        memcpy(b + at + 8, o->backing_format, n);
        at += 8 + ((n + 7) & ~(size_t)7);
    }
    if (version == 3) {
        size_t n = sizeof(features) / sizeof(features[0]) * 48;

        put32(b + at, KEEL_QCOW2_EXT_FEATURE_TABLE);
        put32(b + at + 4, (uint32_t)n);
        for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
            unsigned char *e = b + at + 8 + i * 48;

            e[0] = features[i].type;
            e[1] = features[i].bit;
            memcpy(e + 2, features[i].name, strlen(features[i].name));
        }
        at += 8 + n;
    }
    at += 8; /* the end extension: type 0, length 0 */
    if (o->backing_file != NULL) {
        put64(b + 8, at);
        put32(b + 16, (uint32_t)strlen(o->backing_file));
        memcpy(b + at, o->backing_file, strlen(o->backing_file));
    }
    return 0;
}

int keel_qcow2_header_decode(const unsigned char *b, size_t len, struct keel_qcow2_info *out,
                             struct keel_error *err)
{
    struct keel_qcow2_info in = { 0 };
    uint64_t cluster, boff, ext_end;
    uint32_t hlen, bsize;
    size_t at;

    if (len < V2_HEADER)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: header cut short");
    if (get32(b) != KEEL_QCOW2_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "qcow2: bad magic");
    in.version = get32(b + 4);
    if (in.version != 2 && in.version != 3)
        return keel_error_set(err, KEEL_E_VERSION, 0, "qcow2: unsupported version %u",
                              in.version);
    in.cluster_bits = get32(b + 20);
    if (in.cluster_bits < 9 || in.cluster_bits > 21)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: bad cluster bits %u",
                              in.cluster_bits);
    cluster = UINT64_C(1) << in.cluster_bits;
    in.size = get64(b + 24);
    if (get32(b + 32) != 0)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "qcow2: encrypted images are not "
                              "supported");
    in.l1_size = get32(b + 36);
    in.l1_offset = get64(b + 40);
    in.refcount_table_offset = get64(b + 48);
    in.refcount_table_clusters = get32(b + 56);
    if (in.size > (UINT64_C(1) << 56) || in.l1_size < l1_entries(in.size, in.cluster_bits))
        return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: L1 table of %u entries is too "
                              "small for %" PRIu64 " bytes", in.l1_size, in.size);
    if (in.l1_offset % cluster != 0 || in.refcount_table_offset % cluster != 0 ||
        in.l1_offset == 0 || in.refcount_table_offset == 0)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: unaligned L1 or refcount table");
    hlen = V2_HEADER;
    in.refcount_order = 4;
    if (in.version == 3) {
        if (len < 104)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: header cut short");
        in.incompatible = get64(b + 72);
        in.compatible = get64(b + 80);
        in.autoclear = get64(b + 88);
        in.refcount_order = get32(b + 96);
        hlen = get32(b + 100);
        if (in.refcount_order > 6 || hlen < 104 || hlen % 8 != 0 || hlen > len ||
            hlen > cluster)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: bad refcount order or header "
                                  "length");
        /* Known: dirty, corrupt, external data, compression type, extended L2. */
        if (in.incompatible & ~UINT64_C(0x1f))
            return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "qcow2: unknown incompatible "
                                  "features 0x%" PRIx64, in.incompatible);
        if (in.incompatible & 0x2)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: the image is marked corrupt");
    }
    /* Header extensions, up to the end marker, inside the first cluster. */
    ext_end = len < cluster ? len : cluster;
    at = hlen;
    for (;;) {
        uint32_t type, elen;

        if (at + 8 > ext_end)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: header extensions run past "
                                  "the first cluster");
        type = get32(b + at);
        elen = get32(b + at + 4);
        if (type == 0)
            break;
        if (elen > ext_end - at - 8)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: header extension 0x%08x too "
                                  "long", type);
        if (type == KEEL_QCOW2_EXT_BACKING_FORMAT) {
            if (elen >= sizeof(in.backing_format) || memchr(b + at + 8, 0, elen) != NULL)
                return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: bad backing format");
            memcpy(in.backing_format, b + at + 8, elen);
            in.backing_format[elen] = '\0';
        }
        at += 8 + (((size_t)elen + 7) & ~(size_t)7);
    }
    boff = get64(b + 8);
    bsize = get32(b + 16);
    if (boff != 0) {
        if (bsize == 0 || bsize > KEEL_QCOW2_BACKING_MAX || boff > ext_end ||
            bsize > ext_end - boff || boff < hlen)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: backing file name outside the "
                                  "header cluster");
        if (memchr(b + boff, 0, bsize) != NULL)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: NUL in the backing file name");
        memcpy(in.backing_file, b + boff, bsize);
        in.backing_file[bsize] = '\0';
    }
    *out = in;
    return 0;
}

int keel_qcow2_create(struct keel_blockdev *dev, uint64_t offset, const struct keel_qcow2_opts *o,
                      struct keel_error *err)
{
    uint64_t l1c = l1_clusters(l1_entries(o->size, KEEL_QCOW2_CLUSTER_BITS));
    unsigned char *c = keel_aligned_alloc(4096, CLUSTER);
    int rc;

    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_qcow2_header_encode(o, c, err) != 0) {
        free(c);
        return -1;
    }
    if (offset + keel_qcow2_metadata_size(o->size) > keel_blockdev_size(dev)) {
        free(c);
        return keel_error_set(err, KEEL_E_NOSPC, 0, "qcow2 at %s: %" PRIu64 " bytes of "
                              "metadata do not fit", keel_blockdev_name(dev),
                              keel_qcow2_metadata_size(o->size));
    }
    /* Metadata clusters before the header: a torn create is never a valid image. */
    {
        unsigned char *z = keel_aligned_alloc(4096, CLUSTER);

        if (z == NULL) {
            free(c);
            return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        }
        memset(z, 0, CLUSTER);
        put64(z, 2 * CLUSTER);                        /* refcount table -> block at 2 */
        rc = keel_blockdev_pwrite(dev, z, CLUSTER, offset + CLUSTER, err);
        memset(z, 0, CLUSTER);
        for (uint64_t i = 0; i < 3 + l1c && rc == 0; i++)
            put16(z + 2 * i, 1);                      /* clusters 0..3+L1 in use */
        if (rc == 0)
            rc = keel_blockdev_pwrite(dev, z, CLUSTER, offset + 2 * CLUSTER, err);
        memset(z, 0, CLUSTER);
        for (uint64_t i = 0; i < l1c && rc == 0; i++)
            rc = keel_blockdev_pwrite(dev, z, CLUSTER, offset + (3 + i) * CLUSTER, err);
        if (rc == 0)
            rc = keel_blockdev_flush(dev, err);
        free(z);
    }
    if (rc == 0)
        rc = keel_blockdev_pwrite(dev, c, CLUSTER, offset, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(c);
    return rc;
}

int keel_qcow2_read_header(struct keel_blockdev *dev, uint64_t offset,
                           struct keel_qcow2_info *info, struct keel_error *err)
{
    unsigned char *c = keel_aligned_alloc(4096, CLUSTER);
    uint64_t n = CLUSTER;
    int rc;

    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (offset + n > keel_blockdev_size(dev))
        n = keel_blockdev_size(dev) > offset ? (keel_blockdev_size(dev) - offset) & ~UINT64_C(511)
                                             : 0;
    rc = n == 0 ? keel_error_set(err, KEEL_E_FORMAT, 0, "qcow2: no header (empty)")
                : keel_blockdev_pread(dev, c, (size_t)n, offset, err);
    if (rc == 0)
        rc = keel_qcow2_header_decode(c, (size_t)n, info, err);
    free(c);
    if (rc != 0)
        keel_error_prefix(err, "%s at %" PRIu64, keel_blockdev_name(dev), offset);
    return rc;
}

int keel_qcow2_resize(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                      struct keel_error *err)
{
    struct keel_qcow2_info in;
    unsigned char *c;
    uint64_t entries, have;
    int rc;

    if (keel_qcow2_read_header(dev, offset, &in, err) != 0)
        return -1;
    if (new_size < in.size || new_size % 512 != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2 at %s: cannot resize %" PRIu64
                              " to %" PRIu64 " bytes (grow only, by sectors)",
                              keel_blockdev_name(dev), in.size, new_size);
    entries = l1_entries(new_size, in.cluster_bits);
    have = l1_clusters(in.l1_size) * (CLUSTER / 8);
    if (in.cluster_bits != KEEL_QCOW2_CLUSTER_BITS || entries > have)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "qcow2 at %s: growing to %" PRIu64
                              " bytes needs a larger L1 table (not supported yet)",
                              keel_blockdev_name(dev), new_size);
    c = keel_aligned_alloc(4096, 512);
    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(dev, c, 512, offset, err);
    if (rc == 0) {
        /* The L1 entries past the old size are zero already (clusters written whole). */
        put64(c + 24, new_size);
        if (entries > in.l1_size)
            put32(c + 36, (uint32_t)entries);
        rc = keel_blockdev_pwrite(dev, c, 512, offset, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(c);
    return rc;
}

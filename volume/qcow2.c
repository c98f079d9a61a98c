/* qcow2 images written and read by Keel; see qcow2.h. */
#include "volume/qcow2.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

#define CLUSTER (UINT64_C(1) << KEEL_QCOW2_CLUSTER_BITS)
#define V2_HEADER 72
#define V3_HEADER 112

static void put16(unsigned char *b, uint16_t v)
{
    b[0] = (unsigned char)(v >> 8);
    b[1] = (unsigned char)v;
}

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

/* Incompatible feature bits (qcow2.txt, "incompatible_features"). */
#define INCOMPAT_DIRTY 0x1u
#define INCOMPAT_CORRUPT 0x2u
#define INCOMPAT_DATA_FILE 0x4u
#define INCOMPAT_EXTL2 0x10u
/* qemu opens no image whose active L1 table is over 32 MiB (4 Mi entries). */
#define L1_MAX_ENTRIES (UINT64_C(32) << 20 >> 3)
/* ... nor one whose refcount table is over 8 MiB. */
#define REFTABLE_MAX (UINT64_C(8) << 20)

/*
 * L1 entries for a virtual size: one L2 table of 2^cluster_bits bytes maps
 * its entries' clusters; an entry is 8 bytes, 16 with extended L2 entries.
 * With 64 KiB clusters one L2 maps 512 MiB (256 MiB extended).
 */
static uint64_t l1_entries_for(uint64_t size, unsigned cluster_bits, bool extended_l2)
{
    unsigned shift = 2 * cluster_bits - (extended_l2 ? 4 : 3);

    return (size >> shift) + ((size & ((UINT64_C(1) << shift) - 1)) != 0);
}

static uint64_t l1_entries(uint64_t size, unsigned cluster_bits)
{
    return l1_entries_for(size, cluster_bits, false);
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
    /* Up to KEEL_QCOW2_SIZE_MAX (2 PiB): qemu refuses a larger L1 table. */
    if (o->size == 0 || o->size % 512 != 0 || o->size > KEEL_QCOW2_SIZE_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: bad virtual size %" PRIu64, o->size);
    if (o->version != 0 && o->version != 2 && o->version != 3)
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: no version %u", o->version);
    if (o->backing_file != NULL) {
        size_t n = strlen(o->backing_file);

        if (n == 0 || n > KEEL_QCOW2_BACKING_MAX)
            return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2: bad backing file name");
        /* qemu refuses a backing format extension of 16 bytes or more. */
        if (o->backing_format == NULL || strlen(o->backing_format) == 0 ||
            strlen(o->backing_format) > 15)
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

/*
 * The checks qemu makes before it opens an image, and Keel's own: `who`
 * names the image in messages ("qcow2", "qcow2 at <device>").
 */
static int decode(const unsigned char *b, size_t len, struct keel_qcow2_info *out,
                  const char *who, struct keel_error *err)
{
    struct keel_qcow2_info in = { 0 };
    uint64_t cluster, boff, ext_end;
    uint32_t hlen, bsize;
    size_t at;

    if (len < V2_HEADER)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: header cut short", who);
    if (get32(b) != KEEL_QCOW2_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: bad magic", who);
    in.version = get32(b + 4);
    if (in.version != 2 && in.version != 3)
        return keel_error_set(err, KEEL_E_VERSION, 0, "%s: unsupported version %u", who,
                              in.version);
    in.cluster_bits = get32(b + 20);
    if (in.cluster_bits < 9 || in.cluster_bits > 21)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: bad cluster bits %u", who,
                              in.cluster_bits);
    cluster = UINT64_C(1) << in.cluster_bits;
    in.size = get64(b + 24);
    if (get32(b + 32) != 0)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: encrypted images are not "
                              "supported", who);
    in.l1_size = get32(b + 36);
    in.l1_offset = get64(b + 40);
    in.refcount_table_offset = get64(b + 48);
    in.refcount_table_clusters = get32(b + 56);
    hlen = V2_HEADER;
    in.refcount_order = 4;
    if (in.version == 3) {
        if (len < 104)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: header cut short", who);
        in.incompatible = get64(b + 72);
        in.compatible = get64(b + 80);
        in.autoclear = get64(b + 88);
        in.refcount_order = get32(b + 96);
        hlen = get32(b + 100);
        if (in.refcount_order > 6 || hlen < 104 || hlen % 8 != 0 || hlen > len ||
            hlen > cluster)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: bad refcount order or header "
                                  "length", who);
        /* Known: dirty, corrupt, external data, compression type, extended L2. */
        if (in.incompatible & ~UINT64_C(0x1f))
            return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: unknown incompatible "
                                  "features 0x%" PRIx64, who, in.incompatible);
        if (in.incompatible & INCOMPAT_CORRUPT)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: the image is marked corrupt", who);
        /* 32 subclusters of 512 bytes at least. */
        if ((in.incompatible & INCOMPAT_EXTL2) && in.cluster_bits < 14)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: extended L2 entries need "
                                  "clusters of 16 KiB or more", who);
    }
    if (in.size > (UINT64_C(1) << 56) ||
        in.l1_size < l1_entries_for(in.size, in.cluster_bits, in.incompatible & INCOMPAT_EXTL2))
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: L1 table of %u entries is too "
                              "small for %" PRIu64 " bytes", who, in.l1_size, in.size);
    if (in.l1_size > L1_MAX_ENTRIES)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: L1 table of %u entries is over "
                              "32 MiB", who, in.l1_size);
    /* An empty image (size 0) may have no L1 table at all, offset 0. */
    if (in.l1_offset % cluster != 0 || in.refcount_table_offset % cluster != 0 ||
        (in.l1_offset == 0 && in.l1_size != 0) || in.refcount_table_offset == 0)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: unaligned L1 or refcount table", who);
    if (in.refcount_table_clusters == 0 ||
        in.refcount_table_clusters > REFTABLE_MAX >> in.cluster_bits)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: refcount table of %u clusters", who,
                              in.refcount_table_clusters);
    /* Header extensions, up to the end marker, inside the first cluster. */
    ext_end = len < cluster ? len : cluster;
    at = hlen;
    for (;;) {
        uint32_t type, elen;

        if (at + 8 > ext_end)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: header extensions run past "
                                  "the first cluster", who);
        type = get32(b + at);
        elen = get32(b + at + 4);
        if (type == 0)
            break;
        if (elen > ext_end - at - 8)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: header extension 0x%08x too "
                                  "long", who, type);
        if (type == KEEL_QCOW2_EXT_BACKING_FORMAT) {
            /* qemu keeps the format in 16 bytes with its NUL. */
            if (elen > 15 || memchr(b + at + 8, 0, elen) != NULL)
                return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: bad backing format", who);
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
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: backing file name outside the "
                                  "header cluster", who);
        if (memchr(b + boff, 0, bsize) != NULL)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "%s: NUL in the backing file name",
                                  who);
        memcpy(in.backing_file, b + boff, bsize);
        in.backing_file[bsize] = '\0';
    }
    *out = in;
    return 0;
}

int keel_qcow2_header_decode(const unsigned char *b, size_t len, struct keel_qcow2_info *out,
                             struct keel_error *err)
{
    return decode(b, len, out, "qcow2", err);
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
    /* Metadata clusters first, the header last (in submission order; the caller
     * flushes: the volume's metadata, not the image, says when it is whole). */
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
        free(z);
    }
    if (rc == 0)
        rc = keel_blockdev_pwrite(dev, c, CLUSTER, offset, err);
    free(c);
    return rc;
}

/* The subject of messages: "qcow2 at <device>" (", offset N" inside a LUN). */
static void who_of(char *who, size_t n, struct keel_blockdev *dev, uint64_t offset)
{
    if (offset == 0)
        snprintf(who, n, "qcow2 at %s", keel_blockdev_name(dev));
    else
        snprintf(who, n, "qcow2 at %s offset %" PRIu64, keel_blockdev_name(dev), offset);
}

int keel_qcow2_read_header(struct keel_blockdev *dev, uint64_t offset,
                           struct keel_qcow2_info *info, struct keel_error *err)
{
    unsigned char *c = keel_aligned_alloc(4096, CLUSTER);
    uint64_t n = CLUSTER;
    char who[320];
    int rc;

    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    who_of(who, sizeof(who), dev, offset);
    /* A header with a cluster of 64 KiB or less, or the start of a bigger one. */
    if (offset + n > keel_blockdev_size(dev))
        n = keel_blockdev_size(dev) > offset ? (keel_blockdev_size(dev) - offset) & ~UINT64_C(511)
                                             : 0;
    if (n == 0) {
        rc = keel_error_set(err, KEEL_E_FORMAT, 0, "%s: no header (the device ends there)", who);
    } else {
        rc = keel_blockdev_pread(dev, c, (size_t)n, offset, err);
        if (rc != 0)
            keel_error_prefix(err, "%s", who);
    }
    if (rc == 0)
        rc = decode(c, (size_t)n, info, who, err);
    free(c);
    return rc;
}

/*
 * Growing the virtual size.  The L1 table must map the new size; the header
 * records both.  Two ways:
 *
 *   in place   the L1 table's last cluster has room: zero the new entries,
 *              then write the header (size, l1_size).  Nothing is allocated.
 *   relocate   as qemu does: a new L1 table (the old entries, then zeros) in
 *              free clusters after the last cluster in use, refcount blocks
 *              for them where none exist yet, then the header switches to
 *              it, then the old table's clusters are freed.
 *
 * Invariants (each step is flushed before the next one starts):
 *   1. The header is written last but one: before it, the image is the old
 *      image plus clusters whose refcount is 1 that nothing uses (a leak
 *      that `qemu-img check -r leaks` repairs), never a reference to
 *      something not yet written.
 *   2. The old L1 clusters are freed only after the header no longer names
 *      them; a crash in between leaks them, it never frees a table in use.
 *   3. Refcounts are changed only on images that are not dirty (lazy
 *      refcounts may lag behind the L2 tables there).
 */
struct grow {
    struct keel_qcow2_info in;
    const char *who;
    uint64_t base;                 /* the image's first byte on dev */
    uint64_t room;                 /* bytes of dev from base on: what may be read */
    uint64_t area;                 /* bytes from base that are the image's (0: unknown) */
    uint64_t cluster;
    uint64_t new_size;
    uint64_t entries;              /* L1 entries the header will record */
    bool in_place;
    /* Relocation only. */
    unsigned char *table;          /* the refcount table as on disk */
    uint64_t table_len;            /* its entries */
    uint64_t rbe;                  /* refcounts per refcount block */
    uint64_t end;                  /* the first cluster after the last in use */
    uint64_t l1c;                  /* clusters of the new L1 table, from end */
    uint64_t nblocks;              /* new refcount blocks, after the L1 table */
    uint64_t need;                 /* bytes the image needs from base */
};

static uint64_t clusters_of(uint64_t bytes, uint64_t cluster)
{
    return bytes / cluster + (bytes % cluster != 0);
}

/* Refcount i of a block: 2^order bits, big endian; below a byte, LSB first. */
static uint64_t rc_get(const unsigned char *blk, unsigned order, uint64_t i)
{
    unsigned bits = 1u << order;
    uint64_t v = 0;

    if (bits < 8)
        return (uint64_t)(blk[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    for (unsigned k = 0; k < bits / 8; k++)
        v = v << 8 | blk[i * (bits / 8) + k];
    return v;
}

static void rc_set(unsigned char *blk, unsigned order, uint64_t i, uint64_t v)
{
    unsigned bits = 1u << order;

    if (bits < 8) {
        unsigned shift = (unsigned)(i * bits % 8), mask = ((1u << bits) - 1) << shift;
        unsigned char *p = blk + i * bits / 8;

        *p = (unsigned char)((*p & ~mask) | (((unsigned)v << shift) & mask));
        return;
    }
    for (unsigned k = bits / 8; k-- > 0; v >>= 8)
        blk[i * (bits / 8) + k] = (unsigned char)v;
}

/* Where refcount block bi is (0: none), checked against the device. */
static int block_at(const struct grow *g, uint64_t bi, uint64_t *off, struct keel_error *err)
{
    uint64_t e = bi < g->table_len ? get64(g->table + bi * 8) : 0;

    if (e % g->cluster != 0 || e > g->room || g->room - e < g->cluster)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: refcount block %" PRIu64 " at %"
                              PRIu64 " is misplaced", g->who, bi, e);
    *off = e;
    return 0;
}

/*
 * Take (refcount 0 -> 1) or release (n -> n-1) clusters [first, first+count)
 * in the refcount blocks that exist; with check_only, just verify.
 */
static int rc_mark(struct keel_blockdev *dev, const struct grow *g, uint64_t first,
                   uint64_t count, bool take, bool check_only, struct keel_error *err)
{
    unsigned char *blk = keel_aligned_alloc(4096, g->cluster);
    uint64_t c = first;
    int rc = 0;

    if (blk == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    while (c < first + count && rc == 0) {
        uint64_t bi = c / g->rbe, stop = (bi + 1) * g->rbe, off = 0;

        if (stop > first + count)
            stop = first + count;
        rc = block_at(g, bi, &off, err);
        if (rc == 0 && off == 0) {
            if (!take)
                rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: cluster %" PRIu64 " in use "
                                    "has no refcount block", g->who, c);
            c = stop;   /* a new block will count them */
            continue;
        }
        if (rc == 0)
            rc = keel_blockdev_pread(dev, blk, g->cluster, g->base + off, err);
        for (; c < stop && rc == 0; c++) {
            uint64_t v = rc_get(blk, g->in.refcount_order, c % g->rbe);

            if (take ? v != 0 : v == 0)
                rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: cluster %" PRIu64 " has "
                                    "refcount %" PRIu64 ", expected %s", g->who, c, v,
                                    take ? "0" : "1 or more");
            else
                rc_set(blk, g->in.refcount_order, c % g->rbe, take ? 1 : v - 1);
        }
        if (rc == 0 && !check_only)
            rc = keel_blockdev_pwrite(dev, blk, g->cluster, g->base + off, err);
    }
    free(blk);
    return rc;
}

/* The first cluster after the last one with a refcount. */
static int find_end(struct keel_blockdev *dev, struct grow *g, struct keel_error *err)
{
    unsigned char *blk = keel_aligned_alloc(4096, g->cluster);
    int rc = 0;

    if (blk == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    g->end = 0;
    for (uint64_t bi = g->table_len; bi-- > 0 && g->end == 0 && rc == 0;) {
        uint64_t off = 0;

        rc = block_at(g, bi, &off, err);
        if (rc != 0 || off == 0)
            continue;
        rc = keel_blockdev_pread(dev, blk, g->cluster, g->base + off, err);
        for (uint64_t i = g->rbe; i-- > 0 && rc == 0;) {
            if (rc_get(blk, g->in.refcount_order, i) != 0) {
                g->end = bi * g->rbe + i + 1;
                break;
            }
        }
    }
    free(blk);
    if (rc == 0 && g->end == 0)
        rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: no cluster has a refcount", g->who);
    return rc;
}

/* Everything about a resize that reading can tell; g->table is the caller's to free. */
static int plan(struct keel_blockdev *dev, uint64_t offset, uint64_t area, uint64_t new_size,
                struct grow *g, struct keel_error *err)
{
    uint64_t have, last;

    g->base = offset;
    g->new_size = new_size;
    if (keel_qcow2_read_header(dev, offset, &g->in, err) != 0)
        return -1;
    g->room = keel_blockdev_size(dev) - offset;
    g->area = area < g->room ? area : g->room;
    g->cluster = UINT64_C(1) << g->in.cluster_bits;
    if (new_size < g->in.size || new_size % 512 != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "%s: cannot resize %" PRIu64 " to %" PRIu64
                              " bytes (grow only, by sectors)", g->who, g->in.size, new_size);
    if (new_size == g->in.size) {
        g->entries = g->in.l1_size;
        g->in_place = true;
        return 0;
    }
    /* Bitmaps would have to grow with the size; an external data file too. */
    if (g->in.incompatible & INCOMPAT_DATA_FILE)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: cannot resize an image with an "
                              "external data file", g->who);
    if (g->in.autoclear & 1)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: cannot resize an image with "
                              "persistent bitmaps (they would have to grow too)", g->who);
    g->entries = l1_entries_for(new_size, g->in.cluster_bits,
                                g->in.incompatible & INCOMPAT_EXTL2);
    if (g->entries > L1_MAX_ENTRIES || new_size > (UINT64_C(1) << 56))
        return keel_error_set(err, KEEL_E_INVAL, 0, "%s: %" PRIu64 " bytes is over qcow2's "
                              "limit with %" PRIu64 "-byte clusters", g->who, new_size,
                              g->cluster);
    if (g->entries < g->in.l1_size)
        g->entries = g->in.l1_size;
    /* The L1 table owns its clusters whole: entries up to their end are its. */
    have = g->in.l1_size == 0 ? 0 : clusters_of(g->in.l1_size * UINT64_C(8), g->cluster) *
                                        (g->cluster / 8);
    g->in_place = g->entries <= have;
    if (g->in_place)
        return 0;
    if (g->in.incompatible & INCOMPAT_DIRTY)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: growing to %" PRIu64 " bytes "
                              "moves the L1 table, but the image is dirty (refcounts not up to "
                              "date: qemu-img check -r all repairs it)", g->who, new_size);
    /* The refcount table, its extent, the new clusters and their blocks. */
    g->rbe = (g->cluster * 8) >> g->in.refcount_order;
    g->table_len = g->in.refcount_table_clusters * g->cluster / 8;
    if (g->in.refcount_table_offset > g->room ||
        g->room - g->in.refcount_table_offset < g->table_len * 8)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: the refcount table is past the end "
                              "of the device", g->who);
    g->table = keel_aligned_alloc(4096, g->table_len * 8);
    if (g->table == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_blockdev_pread(dev, g->table, g->table_len * 8,
                            offset + g->in.refcount_table_offset, err) != 0)
        return keel_error_prefix(err, "%s", g->who);
    if (find_end(dev, g, err) != 0)
        return -1;
    g->l1c = clusters_of(g->entries * 8, g->cluster);
    /* New refcount blocks go after the L1 table and may count themselves. */
    g->nblocks = 0;
    for (;;) {
        uint64_t missing = 0;

        last = g->end + g->l1c + g->nblocks - 1;
        for (uint64_t bi = g->end / g->rbe; bi <= last / g->rbe; bi++) {
            if (bi >= g->table_len)
                return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: growing to %" PRIu64
                                      " bytes needs a larger refcount table (not supported)",
                                      g->who, new_size);
            missing += get64(g->table + bi * 8) == 0;
        }
        if (missing == g->nblocks)
            break;
        g->nblocks = missing;
    }
    g->need = (g->end + g->l1c + g->nblocks) * g->cluster;
    /* The old table's clusters are its own: refcount 1 or more, freed at the end. */
    if (g->in.l1_size != 0 &&
        rc_mark(dev, g, g->in.l1_offset / g->cluster,
                clusters_of(g->in.l1_size * UINT64_C(8), g->cluster), false, true, err) != 0)
        return -1;
    return 0;
}

/* The header's size, L1 size and offset, in its first sector; flushed. */
static int write_header(struct keel_blockdev *dev, const struct grow *g, uint64_t l1_offset,
                        struct keel_error *err)
{
    unsigned char *s = keel_aligned_alloc(4096, 512);
    int rc;

    if (s == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(dev, s, 512, g->base, err);
    if (rc == 0) {
        put64(s + 24, g->new_size);
        put32(s + 36, (uint32_t)g->entries);
        put64(s + 40, l1_offset);
        /* Auto-clear features Keel does not keep up are cleared (qcow2.txt). */
        if (g->in.version == 3)
            put64(s + 88, 0);
        rc = keel_blockdev_pwrite(dev, s, 512, g->base, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(s);
    return rc;
}

/* Zero L1 entries [l1_size, entries) in the table's own clusters, then the header. */
static int grow_in_place(struct keel_blockdev *dev, const struct grow *g, struct keel_error *err)
{
    uint64_t from = g->in.l1_offset + g->in.l1_size * UINT64_C(8);
    uint64_t to = g->in.l1_offset + g->entries * 8;
    uint64_t start, stop;
    unsigned char *b;
    int rc = 0;

    /* A file may end inside the table's last cluster (qemu writes only the
     * entries): past its end the entries read as zero already. */
    if (to > g->room)
        to = g->room;
    start = from & ~UINT64_C(511);
    stop = (to + 511) & ~UINT64_C(511);
    if (to > from) {
        b = keel_aligned_alloc(4096, stop - start);
        if (b == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        rc = keel_blockdev_pread(dev, b, stop - start, g->base + start, err);
        if (rc == 0) {
            memset(b + (from - start), 0, to - from);
            rc = keel_blockdev_pwrite(dev, b, stop - start, g->base + start, err);
        }
        if (rc == 0)
            rc = keel_blockdev_flush(dev, err);
        free(b);
    }
    if (rc == 0)
        rc = write_header(dev, g, g->in.l1_offset, err);
    return rc;
}

static int relocate(struct keel_blockdev *dev, struct grow *g, struct keel_error *err)
{
    uint64_t first = g->end, count = g->l1c + g->nblocks, old = g->in.l1_size * UINT64_C(8);
    uint64_t sz = g->l1c * g->cluster > g->cluster ? g->l1c * g->cluster : g->cluster;
    unsigned char *b = keel_aligned_alloc(4096, sz);
    uint64_t next = g->end + g->l1c;
    int rc = 0;

    if (b == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    /* 1. The new L1 table: the old entries (sectors whole), then zeros. */
    memset(b, 0, sz);
    if (old != 0)
        rc = keel_blockdev_pread(dev, b, (old + 511) & ~UINT64_C(511),
                                 g->base + g->in.l1_offset, err);
    if (rc == 0) {
        memset(b + old, 0, g->l1c * g->cluster - old);
        rc = keel_blockdev_pwrite(dev, b, g->l1c * g->cluster, g->base + first * g->cluster,
                                  err);
    }
    /* 2. Refcounts of the new clusters in the blocks there are... */
    if (rc == 0)
        rc = rc_mark(dev, g, first, count, true, false, err);
    /* 3. ...and in new blocks, each where the table will point. */
    for (uint64_t bi = first / g->rbe; bi <= (first + count - 1) / g->rbe && rc == 0; bi++) {
        if (get64(g->table + bi * 8) != 0)
            continue;
        memset(b, 0, g->cluster);
        for (uint64_t c = first; c < first + count; c++)
            if (c / g->rbe == bi)
                rc_set(b, g->in.refcount_order, c % g->rbe, 1);
        rc = keel_blockdev_pwrite(dev, b, g->cluster, g->base + next * g->cluster, err);
        put64(g->table + bi * 8, next * g->cluster);
        next++;
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    /* 4. The table points to the new blocks (the sectors that changed). */
    for (uint64_t bi = first / g->rbe; bi <= (first + count - 1) / g->rbe && rc == 0; bi++) {
        uint64_t s = bi * 8 & ~UINT64_C(511);

        if (g->nblocks != 0)
            rc = keel_blockdev_pwrite(dev, g->table + s, 512,
                                      g->base + g->in.refcount_table_offset + s, err);
    }
    if (rc == 0 && g->nblocks != 0)
        rc = keel_blockdev_flush(dev, err);
    /* 5. The switch (invariant 1), 6. the old table freed (invariant 2). */
    if (rc == 0)
        rc = write_header(dev, g, first * g->cluster, err);
    if (rc == 0 && old != 0)
        rc = rc_mark(dev, g, g->in.l1_offset / g->cluster, clusters_of(old, g->cluster), false,
                     false, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(b);
    return rc;
}

int keel_qcow2_resize_space(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                            uint64_t *need, struct keel_error *err)
{
    char who[320];
    struct grow g = { .who = who };
    int rc;

    who_of(who, sizeof(who), dev, offset);
    rc = plan(dev, offset, 0, new_size, &g, err);
    if (rc == 0)
        *need = g.in_place ? 0 : g.need;
    free(g.table);
    return rc;
}

/* area 0: the image's extent is unknown, so nothing may be allocated. */
static int resize(struct keel_blockdev *dev, uint64_t offset, uint64_t area, uint64_t new_size,
                  struct keel_error *err)
{
    char who[320];
    struct grow g = { .who = who };
    int rc;

    who_of(who, sizeof(who), dev, offset);
    rc = plan(dev, offset, area, new_size, &g, err);
    if (rc == 0 && new_size == g.in.size)
        ;   /* nothing to do */
    else if (rc == 0 && g.in_place)
        rc = grow_in_place(dev, &g, err);
    else if (rc == 0 && area == 0)
        rc = keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: growing to %" PRIu64 " bytes "
                            "moves the L1 table, and the size of the volume was not given",
                            who, new_size);
    else if (rc == 0 && g.need > g.area)
        rc = keel_error_set(err, KEEL_E_NOSPC, 0, "%s: growing to %" PRIu64 " bytes moves the "
                            "L1 table: the image needs %" PRIu64 " bytes, it has %" PRIu64, who,
                            new_size, g.need, g.area);
    else if (rc == 0)
        rc = relocate(dev, &g, err);
    free(g.table);
    /* I/O errors get the image's name too. */
    if (rc != 0 && err != NULL && strncmp(err->msg, who, strlen(who)) != 0)
        keel_error_prefix(err, "%s", who);
    return rc;
}

int keel_qcow2_resize(struct keel_blockdev *dev, uint64_t offset, uint64_t new_size,
                      struct keel_error *err)
{
    return resize(dev, offset, 0, new_size, err);
}

int keel_qcow2_resize_in(struct keel_blockdev *dev, uint64_t offset, uint64_t area,
                         uint64_t new_size, struct keel_error *err)
{
    if (area == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "qcow2 at %s: no room given",
                              keel_blockdev_name(dev));
    return resize(dev, offset, area, new_size, err);
}

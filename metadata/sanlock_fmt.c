/*
 * sanlock's on-disk records; see sanlock_fmt.h for the layout, the
 * invariants and the error grammar.  Every field is read and written with
 * explicit little-endian helpers (STYLE.md rule 8); nothing is cast from a
 * buffer.  Written from ../shared/specs/sanlock-leases.md section 5 and
 * checked against sanlock 3.8.5's own output.
 */
#include "metadata/sanlock_fmt.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"

#define MIB (UINT64_C(1) << 20)
/* Sector 0 of any geometry, and a multiple of any device block size we take. */
#define HEAD_LEN 4096
#define WHAT_LEN 192

/* ---- CRC-32C, reflected polynomial 0x82F63B78 ---- */

/* Filled once, read-only afterwards (no state changes between calls). */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t keel_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;

    pthread_once(&crc_once, crc_init);
    while (len-- > 0)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

uint32_t keel_sanlock_crc(const void *data, size_t len)
{
    /* sanlock seeds with ~1 and applies no final inversion. */
    return keel_crc32c(~UINT32_C(1), data, len);
}

/* ---- little-endian fields ---- */

static void put16(unsigned char *b, uint16_t v)
{
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const unsigned char *b)
{
    return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(const unsigned char *b)
{
    return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

/* A 48-byte name field: NUL-padded, no terminator when 48 long. */
static void put_name(unsigned char *b, const char *name)
{
    memset(b, 0, KEEL_SANLOCK_NAME_LEN);
    memcpy(b, name, strnlen(name, KEEL_SANLOCK_NAME_LEN));
}

static void get_name(const unsigned char *b, char out[KEEL_SANLOCK_NAME_LEN + 1])
{
    size_t n = strnlen((const char *)b, KEEL_SANLOCK_NAME_LEN);

    memcpy(out, b, n);
    memset(out + n, 0, KEEL_SANLOCK_NAME_LEN + 1 - n);
}

/* ---- geometry (spec 5.4) ---- */

uint32_t keel_sanlock_align_flag(uint64_t align)
{
    switch (align) {
    case MIB: return KEEL_SANLOCK_LFL_ALIGN_1M;
    case 2 * MIB: return KEEL_SANLOCK_LFL_ALIGN_2M;
    case 4 * MIB: return KEEL_SANLOCK_LFL_ALIGN_4M;
    case 8 * MIB: return KEEL_SANLOCK_LFL_ALIGN_8M;
    default: return 0;
    }
}

uint64_t keel_sanlock_align_from_flags(uint32_t flags)
{
    /* The smallest flag set wins, as in sanlock. */
    if (flags & KEEL_SANLOCK_LFL_ALIGN_1M)
        return MIB;
    if (flags & KEEL_SANLOCK_LFL_ALIGN_2M)
        return 2 * MIB;
    if (flags & KEEL_SANLOCK_LFL_ALIGN_4M)
        return 4 * MIB;
    if (flags & KEEL_SANLOCK_LFL_ALIGN_8M)
        return 8 * MIB;
    return 0;
}

uint64_t keel_sanlock_max_hosts(unsigned sector_size, uint64_t align)
{
    if (sector_size == 512)
        return align == MIB ? 2000 : 0;
    if (sector_size != 4096)
        return 0;
    switch (align) {
    case MIB: return 250;
    case 2 * MIB: return 500;
    case 4 * MIB: return 1000;
    case 8 * MIB: return 2000;
    default: return 0;
    }
}

int keel_sanlock_check_geometry(unsigned sector_size, uint64_t align, struct keel_error *err)
{
    if (keel_sanlock_max_hosts(sector_size, align) == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "sanlock geometry %u-byte sectors, %" PRIu64 "-byte alignment "
                              "is invalid", sector_size, align);
    return 0;
}

int keel_sanlock_leader_geometry(const struct keel_sanlock_leader *l, const char *what,
                                 unsigned *sector_size, uint64_t *align,
                                 struct keel_error *err)
{
    uint64_t a = keel_sanlock_align_from_flags(l->flags);

    /* Before sanlock 3.7 there was no alignment flag: it followed the sector. */
    if (a == 0)
        a = l->sector_size == 4096 ? 8 * MIB : MIB;
    if (keel_sanlock_max_hosts(l->sector_size, a) == 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: invalid geometry: sector size %" PRIu32
                              ", flags 0x%" PRIx32, what, l->sector_size, l->flags);
    *sector_size = l->sector_size;
    *align = a;
    return 0;
}

/* ---- the leader record (spec 5.1) ---- */

void keel_sanlock_leader_encode(const struct keel_sanlock_leader *l, unsigned char *b)
{
    memset(b, 0, KEEL_SANLOCK_LEADER_SIZE);
    put32(b + 0, l->magic);
    put32(b + 4, l->version);
    put32(b + 8, l->flags);
    put32(b + 12, l->sector_size);
    put64(b + 16, l->num_hosts);
    put64(b + 24, l->max_hosts);
    put64(b + 32, l->owner_id);
    put64(b + 40, l->owner_generation);
    put64(b + 48, l->lver);
    put_name(b + 56, l->space_name);
    put_name(b + 104, l->resource_name);
    put64(b + 152, l->timestamp);
    put64(b + 160, l->unused1);
    /* The checksum covers the little-endian bytes as they go to disk. */
    put32(b + KEEL_SANLOCK_CHECKSUM_OFFSET, keel_sanlock_crc(b, KEEL_SANLOCK_CHECKSUM_OFFSET));
    put16(b + 172, l->unused2);
    put16(b + 174, l->io_timeout);
    put64(b + 176, l->write_id);
    put64(b + 184, l->write_generation);
    put64(b + 192, l->write_timestamp);
}

static const char *kind(uint32_t magic)
{
    return magic == KEEL_SANLOCK_DELTA_MAGIC   ? "delta lease"
           : magic == KEEL_SANLOCK_PAXOS_MAGIC ? "paxos leader"
                                               : "lease";
}

int keel_sanlock_leader_decode(const unsigned char *b, uint32_t magic, const char *what,
                               struct keel_sanlock_leader *l, struct keel_error *err)
{
    struct keel_sanlock_leader r;
    uint32_t major, sum;

    memset(&r, 0, sizeof(r));
    r.magic = get32(b);
    if (magic == 0 && (r.magic == KEEL_SANLOCK_DELTA_MAGIC || r.magic == KEEL_SANLOCK_PAXOS_MAGIC))
        magic = r.magic;
    if (r.magic == KEEL_SANLOCK_PAXOS_CLEAR_MAGIC && magic != KEEL_SANLOCK_DELTA_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: resource cleared (magic 0x%08" PRIx32
                              ")", what, r.magic);
    if (magic == 0 || r.magic != magic)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: bad magic 0x%08" PRIx32 ", not a "
                              "sanlock %s", what, r.magic, kind(magic));
    r.version = get32(b + 4);
    major = magic == KEEL_SANLOCK_DELTA_MAGIC ? KEEL_SANLOCK_DELTA_VERSION
                                              : KEEL_SANLOCK_PAXOS_VERSION;
    if ((r.version & 0xffff0000u) != (major & 0xffff0000u))
        return keel_error_set(err, KEEL_E_VERSION, 0, "%s: unsupported version 0x%08" PRIx32
                              " of a sanlock %s", what, r.version, kind(magic));
    r.checksum = get32(b + KEEL_SANLOCK_CHECKSUM_OFFSET);
    sum = keel_sanlock_crc(b, KEEL_SANLOCK_CHECKSUM_OFFSET);
    if (r.checksum != sum)
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "%s: bad checksum (stored 0x%08" PRIx32
                              ", computed 0x%08" PRIx32 ")", what, r.checksum, sum);
    r.flags = get32(b + 8);
    r.sector_size = get32(b + 12);
    r.num_hosts = get64(b + 16);
    r.max_hosts = get64(b + 24);
    r.owner_id = get64(b + 32);
    r.owner_generation = get64(b + 40);
    r.lver = get64(b + 48);
    get_name(b + 56, r.space_name);
    get_name(b + 104, r.resource_name);
    r.timestamp = get64(b + 152);
    r.unused1 = get64(b + 160);
    r.unused2 = get16(b + 172);
    r.io_timeout = get16(b + 174);
    r.write_id = get64(b + 176);
    r.write_generation = get64(b + 184);
    r.write_timestamp = get64(b + 192);
    *l = r;
    return 0;
}

/* ---- request record, dblock, mode block (spec 5.3) ---- */

void keel_sanlock_request_encode(const struct keel_sanlock_request *r, unsigned char *b)
{
    memset(b, 0, KEEL_SANLOCK_REQUEST_SIZE);
    put32(b + 0, r->magic);
    put32(b + 4, r->version);
    put64(b + 8, r->lver);
    put32(b + 16, r->force_mode);
    /* 20..23: padding of sanlock's struct, zero */
}

int keel_sanlock_request_decode(const unsigned char *b, const char *what,
                                struct keel_sanlock_request *r, struct keel_error *err)
{
    struct keel_sanlock_request q;

    q.magic = get32(b);
    q.version = get32(b + 4);
    q.lver = get64(b + 8);
    q.force_mode = get32(b + 16);
    if (q.magic != KEEL_SANLOCK_REQUEST_MAGIC)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: bad magic 0x%08" PRIx32 ", not a "
                              "sanlock request record", what, q.magic);
    if ((q.version & 0xffff0000u) != (KEEL_SANLOCK_REQUEST_VERSION & 0xffff0000u))
        return keel_error_set(err, KEEL_E_VERSION, 0, "%s: unsupported version 0x%08" PRIx32
                              " of a sanlock request record", what, q.version);
    *r = q;
    return 0;
}

void keel_sanlock_dblock_encode(const struct keel_sanlock_dblock *d, unsigned char *b)
{
    put64(b + 0, d->mbal);
    put64(b + 8, d->bal);
    put64(b + 16, d->inp);
    put64(b + 24, d->inp2);
    put64(b + 32, d->inp3);
    put64(b + 40, d->lver);
    put32(b + KEEL_SANLOCK_DBLOCK_CHECKSUM_OFFSET,
          keel_sanlock_crc(b, KEEL_SANLOCK_DBLOCK_CHECKSUM_OFFSET));
    put32(b + 52, d->flags);
}

int keel_sanlock_dblock_decode(const unsigned char *b, const char *what,
                               struct keel_sanlock_dblock *d, bool *empty,
                               struct keel_error *err)
{
    struct keel_sanlock_dblock r;
    bool none;

    r.mbal = get64(b + 0);
    r.bal = get64(b + 8);
    r.inp = get64(b + 16);
    r.inp2 = get64(b + 24);
    r.inp3 = get64(b + 32);
    r.lver = get64(b + 40);
    r.checksum = get32(b + KEEL_SANLOCK_DBLOCK_CHECKSUM_OFFSET);
    r.flags = get32(b + 52);
    /* What `direct init` leaves (zeros) is valid without a checksum; sanlock
     * looks at these five fields only (paxos_lease.c verify_dblock). */
    none = r.checksum == 0 && r.mbal == 0 && r.bal == 0 && r.inp == 0 && r.lver == 0;
    if (!none) {
        uint32_t sum = keel_sanlock_crc(b, KEEL_SANLOCK_DBLOCK_CHECKSUM_OFFSET);

        if (r.checksum != sum)
            return keel_error_set(err, KEEL_E_CHECKSUM, 0, "%s: bad dblock checksum (stored "
                                  "0x%08" PRIx32 ", computed 0x%08" PRIx32 ")", what,
                                  r.checksum, sum);
    }
    *d = r;
    if (empty != NULL)
        *empty = none;
    return 0;
}

void keel_sanlock_mode_block_encode(const struct keel_sanlock_mode_block *m, unsigned char *b)
{
    memset(b, 0, KEEL_SANLOCK_MODE_BLOCK_SIZE);
    put32(b + 0, m->flags);
    /* 4..7: padding before the 8-byte aligned generation */
    put64(b + 8, m->generation);
}

void keel_sanlock_mode_block_decode(const unsigned char *b, struct keel_sanlock_mode_block *m)
{
    m->flags = get32(b);
    m->generation = get64(b + 8);
}

/* ---- area images ---- */

static int check_name(const char *name, const char *what, struct keel_error *err)
{
    if (strlen(name) > KEEL_SANLOCK_NAME_LEN)
        return keel_error_set(err, KEEL_E_INVAL, 0, "sanlock %s \"%.64s\" is longer than %d "
                              "bytes", what, name, KEEL_SANLOCK_NAME_LEN);
    return 0;
}

/* A free delta lease of lockspace name (spec 5.2, "Init"). */
static void free_delta(struct keel_sanlock_leader *l, const char *name, unsigned io_timeout,
                       unsigned sector_size, uint64_t align)
{
    memset(l, 0, sizeof(*l));
    l->magic = KEEL_SANLOCK_DELTA_MAGIC;
    l->version = KEEL_SANLOCK_DELTA_VERSION;
    l->flags = keel_sanlock_align_flag(align);
    l->sector_size = sector_size;
    l->max_hosts = 1;
    l->io_timeout = (uint16_t)io_timeout;
    keel_strlcpy(l->space_name, name, sizeof(l->space_name));
}

static int lockspace_args(const char *name, unsigned *io_timeout, unsigned sector_size,
                          uint64_t align, struct keel_error *err)
{
    if (keel_sanlock_check_geometry(sector_size, align, err) != 0 ||
        check_name(name, "lockspace name", err) != 0)
        return -1;
    if (*io_timeout == 0)
        *io_timeout = KEEL_SANLOCK_IO_TIMEOUT;   /* sanlock's own default */
    if (*io_timeout > UINT16_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "sanlock io_timeout %u is above %u",
                              *io_timeout, UINT16_MAX);
    return 0;
}

int keel_sanlock_lockspace_image(unsigned char *area, const char *name, unsigned io_timeout,
                                 unsigned sector_size, uint64_t align, struct keel_error *err)
{
    struct keel_sanlock_leader l;
    uint64_t hosts;

    if (lockspace_args(name, &io_timeout, sector_size, align, err) != 0)
        return -1;
    hosts = keel_sanlock_max_hosts(sector_size, align);
    memset(area, 0, (size_t)align);
    free_delta(&l, name, io_timeout, sector_size, align);
    for (uint64_t h = 0; h < hosts; h++)
        keel_sanlock_leader_encode(&l, area + h * sector_size);
    return 0;
}

int keel_sanlock_resource_image(unsigned char *area, const char *name, const char *resource,
                                unsigned sector_size, uint64_t align, uint64_t num_hosts,
                                struct keel_error *err)
{
    struct keel_sanlock_leader l;
    struct keel_sanlock_request r = { .magic = KEEL_SANLOCK_REQUEST_MAGIC,
                                      .version = KEEL_SANLOCK_REQUEST_VERSION };

    if (keel_sanlock_check_geometry(sector_size, align, err) != 0 ||
        check_name(name, "lockspace name", err) != 0 ||
        check_name(resource, "resource name", err) != 0)
        return -1;
    memset(area, 0, (size_t)align);
    memset(&l, 0, sizeof(l));
    l.magic = KEEL_SANLOCK_PAXOS_MAGIC;
    l.version = KEEL_SANLOCK_PAXOS_VERSION;
    l.flags = keel_sanlock_align_flag(align);
    l.sector_size = sector_size;
    l.max_hosts = keel_sanlock_max_hosts(sector_size, align);
    l.num_hosts = num_hosts == 0 || num_hosts > l.max_hosts ? l.max_hosts : num_hosts;
    keel_strlcpy(l.space_name, name, sizeof(l.space_name));
    keel_strlcpy(l.resource_name, resource, sizeof(l.resource_name));
    keel_sanlock_leader_encode(&l, area);
    keel_sanlock_request_encode(&r, area + sector_size);
    return 0;
}

/* ---- areas on a block device ---- */

int keel_sanlock_write_lockspace(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                 unsigned io_timeout, unsigned sector_size, uint64_t align,
                                 struct keel_error *err)
{
    struct keel_sanlock_leader l;
    _cleanup_free_ unsigned char *area = NULL;
    size_t first;
    int rc;

    if (lockspace_args(name, &io_timeout, sector_size, align, err) != 0)
        return -1;
    area = keel_aligned_alloc(HEAD_LEN, (size_t)align);
    if (area == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_sanlock_lockspace_image(area, name, io_timeout, sector_size, align, err) != 0)
        return -1;
    /* Invariant 1: record 1 is uncommitted (magic 0, checksum over that) in
     * the big write, and committed by the second one. */
    free_delta(&l, name, io_timeout, sector_size, align);
    l.magic = 0;
    keel_sanlock_leader_encode(&l, area);
    rc = keel_blockdev_pwrite(dev, area, (size_t)align, offset, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    if (rc == 0) {
        l.magic = KEEL_SANLOCK_DELTA_MAGIC;
        keel_sanlock_leader_encode(&l, area);
        /* sector 0, or the device block that holds it (the rest is the image) */
        first = KEEL_MAX((size_t)sector_size, (size_t)keel_blockdev_block_size(dev));
        rc = keel_blockdev_pwrite(dev, area, KEEL_MIN(first, (size_t)align), offset, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    return rc == 0 ? 0 : keel_error_prefix(err, "lockspace %s", name);
}

int keel_sanlock_write_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                const char *resource, unsigned sector_size, uint64_t align,
                                struct keel_error *err)
{
    _cleanup_free_ unsigned char *area = NULL;

    if (keel_sanlock_check_geometry(sector_size, align, err) != 0)
        return -1;
    area = keel_aligned_alloc(HEAD_LEN, (size_t)align);
    if (area == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_sanlock_resource_image(area, name, resource, sector_size, align, 0, err) != 0)
        return -1;
    /* Invariant 2: not flushed; the caller's next flush makes it durable. */
    if (keel_blockdev_pwrite(dev, area, (size_t)align, offset, err) != 0)
        return keel_error_prefix(err, "resource %s:%s", name, resource);
    return 0;
}

/* ---- readers ---- */

/* "LS", "LS:RES", or the device and offset as sanlock writes them. */
static void area_name(char *out, size_t n, struct keel_blockdev *dev, uint64_t offset,
                      const char *name, const char *resource, bool is_resource)
{
    if (name != NULL && is_resource && resource != NULL)
        snprintf(out, n, "%.48s:%.48s", name, resource);
    else if (name != NULL && !is_resource)
        snprintf(out, n, "%.48s", name);
    else
        snprintf(out, n, "%s:%" PRIu64, keel_blockdev_name(dev), offset);
}

static void sector_what(char *out, size_t n, const char *area, uint64_t sector)
{
    snprintf(out, n, "lease area %s sector %" PRIu64, area, sector);
}

/* Read the device block(s) holding [at, at + len) into buf (HEAD_LEN). */
static int read_small(struct keel_blockdev *dev, uint64_t at, size_t len, unsigned char *buf,
                      const unsigned char **rec, struct keel_error *err)
{
    uint64_t bs = keel_blockdev_block_size(dev) != 0 ? keel_blockdev_block_size(dev) : 512;
    uint64_t start = at / bs * bs;
    uint64_t span = KEEL_ALIGN_UP(at + len, bs) - start;

    if (span > HEAD_LEN)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "%s: %" PRIu64 "-byte blocks are too "
                              "large for sanlock records", keel_blockdev_name(dev), bs);
    if (keel_blockdev_pread(dev, buf, (size_t)span, start, err) != 0)
        return -1;
    *rec = buf + (at - start);
    return 0;
}

static int check_names(const struct keel_sanlock_leader *l, const char *what, const char *name,
                       const char *resource, struct keel_error *err)
{
    if (name != NULL && strcmp(l->space_name, name) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: lockspace is \"%s\", expected \"%s\"",
                              what, l->space_name, name);
    if (resource != NULL && strcmp(l->resource_name, resource) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: resource is \"%s\", expected \"%s\"",
                              what, l->resource_name, resource);
    return 0;
}

/*
 * The geometry of the area whose first leader is l: the leader's, checked
 * against what the caller expects (0: anything).  An old leader without an
 * alignment flag takes the expected alignment.
 */
static int area_geometry(const struct keel_sanlock_leader *l, const char *what,
                         unsigned want_sector, uint64_t want_align, unsigned *sector,
                         uint64_t *align, struct keel_error *err)
{
    struct keel_sanlock_leader g = *l;

    if (keel_sanlock_align_from_flags(g.flags) == 0 && want_align != 0)
        g.flags |= keel_sanlock_align_flag(want_align);
    if (keel_sanlock_leader_geometry(&g, what, sector, align, err) != 0)
        return -1;
    if (want_sector != 0 && *sector != want_sector)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: sector size %u, expected %u", what,
                              *sector, want_sector);
    if (want_align != 0 && *align != want_align)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: alignment %" PRIu64 ", expected %"
                              PRIu64, what, *align, want_align);
    return 0;
}

/* Decode the first leader of an area and take the area's geometry from it. */
static int read_head(struct keel_blockdev *dev, uint64_t offset, uint32_t magic,
                     const char *area, unsigned want_sector, uint64_t want_align,
                     unsigned *sector, uint64_t *align, struct keel_sanlock_leader *l,
                     struct keel_error *err)
{
    _cleanup_free_ unsigned char *buf = keel_aligned_alloc(HEAD_LEN, HEAD_LEN);
    const unsigned char *rec;
    char what[WHAT_LEN];

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    sector_what(what, sizeof(what), area, 0);
    if (read_small(dev, offset, KEEL_SANLOCK_LEADER_SIZE, buf, &rec, err) != 0 ||
        keel_sanlock_leader_decode(rec, magic, what, l, err) != 0)
        return -1;
    return area_geometry(l, what, want_sector, want_align, sector, align, err);
}

static unsigned char *read_area(struct keel_blockdev *dev, uint64_t offset, uint64_t align,
                                struct keel_error *err)
{
    unsigned char *area = keel_aligned_alloc(HEAD_LEN, (size_t)align);

    if (area == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    if (keel_blockdev_pread(dev, area, (size_t)align, offset, err) != 0) {
        free(area);
        return NULL;
    }
    return area;
}

int keel_sanlock_read_lockspace(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                unsigned sector_size, uint64_t align,
                                struct keel_sanlock_lockspace *ls, struct keel_error *err)
{
    struct keel_sanlock_lockspace r;
    struct keel_sanlock_leader first;
    _cleanup_free_ unsigned char *area = NULL;
    _cleanup_free_ struct keel_sanlock_leader *hosts = NULL;
    char an[WHAT_LEN], what[WHAT_LEN];

    memset(&r, 0, sizeof(r));
    area_name(an, sizeof(an), dev, offset, name, NULL, false);
    if (read_head(dev, offset, KEEL_SANLOCK_DELTA_MAGIC, an, sector_size, align, &r.sector_size,
                  &r.align, &first, err) != 0)
        return -1;
    keel_strlcpy(r.name, name != NULL ? name : first.space_name, sizeof(r.name));
    r.max_hosts = keel_sanlock_max_hosts(r.sector_size, r.align);
    /* One read of the whole area, as a renewal does: every record below is
     * from the same moment. */
    area = read_area(dev, offset, r.align, err);
    hosts = calloc((size_t)r.max_hosts, sizeof(*hosts));
    if (area == NULL)
        return -1;
    if (hosts == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (uint64_t i = 0; i < r.max_hosts; i++) {
        struct keel_sanlock_leader *h = &hosts[i];

        sector_what(what, sizeof(what), an, i);
        if (keel_sanlock_leader_decode(area + i * r.sector_size, KEEL_SANLOCK_DELTA_MAGIC, what,
                                       h, err) != 0 ||
            check_names(h, what, r.name, NULL, err) != 0)
            return -1;
        if (h->sector_size != r.sector_size)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: sector size %" PRIu32
                                  ", expected %u", what, h->sector_size, r.sector_size);
    }
    r.hosts = TAKE_PTR(hosts);
    *ls = r;
    return 0;
}

void keel_sanlock_lockspace_release(struct keel_sanlock_lockspace *ls)
{
    if (ls == NULL)
        return;
    free(ls->hosts);
    ls->hosts = NULL;
}

int keel_sanlock_read_delta(struct keel_blockdev *dev, uint64_t offset, const char *name,
                            uint64_t host_id, unsigned sector_size,
                            struct keel_sanlock_leader *l, struct keel_error *err)
{
    _cleanup_free_ unsigned char *buf = NULL;
    struct keel_sanlock_leader r;
    const unsigned char *rec;
    char an[WHAT_LEN], what[WHAT_LEN];

    area_name(an, sizeof(an), dev, offset, name, NULL, false);
    if (host_id < 1 || host_id > KEEL_SANLOCK_MAX_HOSTS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "lease area %s: host id %" PRIu64
                              " is not in 1..%d", an, host_id, KEEL_SANLOCK_MAX_HOSTS);
    if (sector_size == 0) {
        uint64_t align;

        if (read_head(dev, offset, KEEL_SANLOCK_DELTA_MAGIC, an, 0, 0, &sector_size, &align,
                      &r, err) != 0)
            return -1;
        if (host_id > keel_sanlock_max_hosts(sector_size, align))
            return keel_error_set(err, KEEL_E_INVAL, 0, "lease area %s: host id %" PRIu64
                                  " is above the lockspace's %" PRIu64 " hosts", an, host_id,
                                  keel_sanlock_max_hosts(sector_size, align));
    } else if (sector_size != 512 && sector_size != 4096) {
        return keel_error_set(err, KEEL_E_INVAL, 0, "sanlock sector size %u is invalid",
                              sector_size);
    }
    buf = keel_aligned_alloc(HEAD_LEN, HEAD_LEN);
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    sector_what(what, sizeof(what), an, host_id - 1);
    if (read_small(dev, offset + (host_id - 1) * sector_size, KEEL_SANLOCK_LEADER_SIZE, buf,
                   &rec, err) != 0 ||
        keel_sanlock_leader_decode(rec, KEEL_SANLOCK_DELTA_MAGIC, what, &r, err) != 0 ||
        check_names(&r, what, name, NULL, err) != 0)
        return -1;
    *l = r;
    return 0;
}

int keel_sanlock_read_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                               const char *resource, unsigned sector_size,
                               struct keel_sanlock_leader *l, struct keel_error *err)
{
    struct keel_sanlock_leader r;
    unsigned sec;
    uint64_t align;
    char an[WHAT_LEN], what[WHAT_LEN];

    area_name(an, sizeof(an), dev, offset, name, resource, true);
    sector_what(what, sizeof(what), an, 0);
    if (read_head(dev, offset, KEEL_SANLOCK_PAXOS_MAGIC, an, sector_size, 0, &sec, &align, &r,
                  err) != 0 ||
        check_names(&r, what, name, resource, err) != 0)
        return -1;
    *l = r;
    return 0;
}

int keel_sanlock_read_resource_area(struct keel_blockdev *dev, uint64_t offset,
                                    const char *name, const char *resource,
                                    unsigned sector_size, uint64_t align,
                                    struct keel_sanlock_resource *res, struct keel_error *err)
{
    struct keel_sanlock_resource r;
    struct keel_sanlock_leader head;
    _cleanup_free_ unsigned char *area = NULL;
    _cleanup_free_ struct keel_sanlock_dblock *dblocks = NULL;
    _cleanup_free_ struct keel_sanlock_mode_block *modes = NULL;
    char an[WHAT_LEN], what[WHAT_LEN];
    uint64_t max;

    memset(&r, 0, sizeof(r));
    area_name(an, sizeof(an), dev, offset, name, resource, true);
    if (read_head(dev, offset, KEEL_SANLOCK_PAXOS_MAGIC, an, sector_size, align, &r.sector_size,
                  &r.align, &head, err) != 0)
        return -1;
    area = read_area(dev, offset, r.align, err);
    if (area == NULL)
        return -1;
    /* The leader again, from the same read as the dblocks. */
    sector_what(what, sizeof(what), an, 0);
    if (keel_sanlock_leader_decode(area, KEEL_SANLOCK_PAXOS_MAGIC, what, &r.leader, err) != 0 ||
        check_names(&r.leader, what, name, resource, err) != 0)
        return -1;
    max = keel_sanlock_max_hosts(r.sector_size, r.align);
    if (r.leader.sector_size != r.sector_size || r.leader.num_hosts > max)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: %" PRIu64 " hosts of %" PRIu32
                              "-byte sectors do not fit the %" PRIu64 "-host area", what,
                              r.leader.num_hosts, r.leader.sector_size, max);
    sector_what(what, sizeof(what), an, 1);
    if (keel_sanlock_request_decode(area + r.sector_size, what, &r.request, err) != 0)
        return -1;
    r.ndblocks = r.leader.num_hosts;
    dblocks = calloc((size_t)r.ndblocks + 1, sizeof(*dblocks));
    modes = calloc((size_t)r.ndblocks + 1, sizeof(*modes));
    if (dblocks == NULL || modes == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (uint64_t i = 0; i < r.ndblocks; i++) {
        const unsigned char *s = area + (2 + i) * r.sector_size;

        sector_what(what, sizeof(what), an, 2 + i);
        if (keel_sanlock_dblock_decode(s, what, &dblocks[i], NULL, err) != 0)
            return -1;
        keel_sanlock_mode_block_decode(s + KEEL_SANLOCK_MODE_BLOCK_OFFSET, &modes[i]);
    }
    r.dblocks = TAKE_PTR(dblocks);
    r.modes = TAKE_PTR(modes);
    *res = r;
    return 0;
}

void keel_sanlock_resource_release(struct keel_sanlock_resource *res)
{
    if (res == NULL)
        return;
    free(res->dblocks);
    free(res->modes);
    res->dblocks = NULL;
    res->modes = NULL;
}

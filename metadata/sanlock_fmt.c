/* sanlock's on-disk records; see sanlock_fmt.h. */
#include "metadata/sanlock_fmt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

#define MIB (UINT64_C(1) << 20)

/* ---- CRC-32C, reflected polynomial 0x82F63B78 ---- */

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

uint32_t keel_sanlock_crc(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = ~UINT32_C(1);

    pthread_once(&crc_once, crc_init);
    while (len-- > 0)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c; /* sanlock applies no final xor */
}

/* ---- little-endian fields ---- */

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *b)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static uint64_t get64(const unsigned char *b)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* ---- geometry ---- */

uint32_t keel_sanlock_align_flag(uint64_t align)
{
    switch (align) {
    case MIB: return 0x10;
    case 2 * MIB: return 0x20;
    case 4 * MIB: return 0x40;
    case 8 * MIB: return 0x80;
    default: return 0;
    }
}

uint64_t keel_sanlock_max_hosts(unsigned sector_size, uint64_t align)
{
    uint64_t n;

    if (sector_size == 512)
        return 2000;
    n = align / sector_size - 2; /* room for the leader and request of a resource */
    return n > 2000 ? 2000 : (n / 250) * 250;
}

static int check_geometry(unsigned sector_size, uint64_t align, struct keel_error *err)
{
    if ((sector_size != 512 && sector_size != 4096) || keel_sanlock_align_flag(align) == 0 ||
        keel_sanlock_max_hosts(sector_size, align) == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "sanlock geometry %u-byte sectors, %llu-byte alignment is invalid",
                              sector_size, (unsigned long long)align);
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
    memcpy(b + 56, l->space_name, strnlen(l->space_name, KEEL_SANLOCK_NAME_LEN));
    memcpy(b + 104, l->resource_name, strnlen(l->resource_name, KEEL_SANLOCK_NAME_LEN));
    put64(b + 152, l->timestamp);
    /* 160: unused1 */
    put32(b + KEEL_SANLOCK_CHECKSUM_OFFSET, keel_sanlock_crc(b, KEEL_SANLOCK_CHECKSUM_OFFSET));
    /* 172: unused2 */
    b[174] = (unsigned char)(l->io_timeout & 0xff);
    b[175] = (unsigned char)(l->io_timeout >> 8);
    put64(b + 176, l->write_id);
    put64(b + 184, l->write_generation);
    put64(b + 192, l->write_timestamp);
}

int keel_sanlock_leader_decode(const unsigned char *b, uint32_t magic, const char *what,
                               struct keel_sanlock_leader *l, struct keel_error *err)
{
    struct keel_sanlock_leader r = { 0 };
    uint32_t want = magic == KEEL_SANLOCK_DELTA_MAGIC ? KEEL_SANLOCK_DELTA_VERSION
                                                      : KEEL_SANLOCK_PAXOS_VERSION;

    r.magic = get32(b);
    r.version = get32(b + 4);
    if (r.magic != magic)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: no sanlock %s lease (magic 0x%08x)",
                              what, magic == KEEL_SANLOCK_DELTA_MAGIC ? "delta" : "paxos",
                              r.magic);
    if ((r.version >> 16) != (want >> 16))
        return keel_error_set(err, KEEL_E_VERSION, 0, "%s: sanlock lease version 0x%08x", what,
                              r.version);
    r.checksum = get32(b + KEEL_SANLOCK_CHECKSUM_OFFSET);
    if (r.checksum != keel_sanlock_crc(b, KEEL_SANLOCK_CHECKSUM_OFFSET))
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "%s: sanlock lease checksum mismatch",
                              what);
    r.flags = get32(b + 8);
    r.sector_size = get32(b + 12);
    r.num_hosts = get64(b + 16);
    r.max_hosts = get64(b + 24);
    r.owner_id = get64(b + 32);
    r.owner_generation = get64(b + 40);
    r.lver = get64(b + 48);
    memcpy(r.space_name, b + 56, KEEL_SANLOCK_NAME_LEN);
    memcpy(r.resource_name, b + 104, KEEL_SANLOCK_NAME_LEN);
    r.timestamp = get64(b + 152);
    r.io_timeout = (uint16_t)(b[174] | (b[175] << 8));
    r.write_id = get64(b + 176);
    r.write_generation = get64(b + 184);
    r.write_timestamp = get64(b + 192);
    *l = r;
    return 0;
}

/* ---- areas ---- */

static int set_name(char *dst, const char *src, const char *what, struct keel_error *err)
{
    if (strlen(src) > KEEL_SANLOCK_NAME_LEN)
        return keel_error_set(err, KEEL_E_INVAL, 0, "sanlock %s \"%.64s\" is longer than %d bytes",
                              what, src, KEEL_SANLOCK_NAME_LEN);
    keel_strlcpy(dst, src, KEEL_SANLOCK_NAME_LEN + 1);
    return 0;
}

int keel_sanlock_write_lockspace(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                 unsigned io_timeout, unsigned sector_size, uint64_t align,
                                 struct keel_error *err)
{
    struct keel_sanlock_leader l = { 0 };
    uint64_t hosts;
    unsigned char *area;
    int rc;

    if (check_geometry(sector_size, align, err) != 0 ||
        set_name(l.space_name, name, "lockspace name", err) != 0)
        return -1;
    area = keel_aligned_alloc(4096, (size_t)align);
    if (area == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    memset(area, 0, (size_t)align);
    hosts = keel_sanlock_max_hosts(sector_size, align);
    l.magic = KEEL_SANLOCK_DELTA_MAGIC;
    l.version = KEEL_SANLOCK_DELTA_VERSION;
    l.flags = keel_sanlock_align_flag(align);
    l.sector_size = sector_size;
    l.max_hosts = 1;
    l.io_timeout = (uint16_t)io_timeout;
    for (uint64_t h = 0; h < hosts; h++)
        keel_sanlock_leader_encode(&l, area + h * sector_size);
    /* Record 1 uncommitted in the big write; committed by the second one. */
    l.magic = 0;
    keel_sanlock_leader_encode(&l, area);
    rc = keel_blockdev_pwrite(dev, area, (size_t)align, offset, err);
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    if (rc == 0) {
        l.magic = KEEL_SANLOCK_DELTA_MAGIC;
        keel_sanlock_leader_encode(&l, area);
        rc = keel_blockdev_pwrite(dev, area, sector_size, offset, err);
    }
    if (rc == 0)
        rc = keel_blockdev_flush(dev, err);
    free(area);
    return rc == 0 ? 0 : keel_error_prefix(err, "lockspace %s", name);
}

int keel_sanlock_write_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                                const char *resource, unsigned sector_size, uint64_t align,
                                struct keel_error *err)
{
    struct keel_sanlock_leader l = { 0 };
    unsigned char *area;
    int rc;

    if (check_geometry(sector_size, align, err) != 0 ||
        set_name(l.space_name, name, "lockspace name", err) != 0 ||
        set_name(l.resource_name, resource, "resource name", err) != 0)
        return -1;
    area = keel_aligned_alloc(4096, (size_t)align);
    if (area == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    memset(area, 0, (size_t)align);
    l.magic = KEEL_SANLOCK_PAXOS_MAGIC;
    l.version = KEEL_SANLOCK_PAXOS_VERSION;
    l.flags = keel_sanlock_align_flag(align);
    l.sector_size = sector_size;
    l.max_hosts = keel_sanlock_max_hosts(sector_size, align);
    l.num_hosts = l.max_hosts;
    keel_sanlock_leader_encode(&l, area);
    put32(area + sector_size, KEEL_SANLOCK_REQUEST_MAGIC);
    put32(area + sector_size + 4, KEEL_SANLOCK_REQUEST_VERSION);
    /* Not flushed: a resource is one write, made durable by the caller's next flush. */
    rc = keel_blockdev_pwrite(dev, area, (size_t)align, offset, err);
    free(area);
    return rc == 0 ? 0 : keel_error_prefix(err, "resource %s:%s", name, resource);
}

static int read_leader(struct keel_blockdev *dev, uint64_t at, unsigned sector_size,
                       uint32_t magic, const char *what, struct keel_sanlock_leader *l,
                       struct keel_error *err)
{
    unsigned char *buf = keel_aligned_alloc(4096, sector_size);
    int rc;

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = keel_blockdev_pread(dev, buf, sector_size, at, err);
    if (rc == 0)
        rc = keel_sanlock_leader_decode(buf, magic, what, l, err);
    free(buf);
    return rc;
}

int keel_sanlock_read_delta(struct keel_blockdev *dev, uint64_t offset, const char *name,
                            uint64_t host_id, unsigned sector_size,
                            struct keel_sanlock_leader *l, struct keel_error *err)
{
    char what[96];

    if (host_id < 1 || host_id > 2000)
        return keel_error_set(err, KEEL_E_INVAL, 0, "host id %llu is not in 1..2000",
                              (unsigned long long)host_id);
    snprintf(what, sizeof(what), "lockspace %.48s host %llu", name,
             (unsigned long long)host_id);
    if (read_leader(dev, offset + (host_id - 1) * sector_size, sector_size,
                    KEEL_SANLOCK_DELTA_MAGIC, what, l, err) != 0)
        return -1;
    if (strcmp(l->space_name, name) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: the record names lockspace %s", what,
                              l->space_name);
    return 0;
}

int keel_sanlock_read_resource(struct keel_blockdev *dev, uint64_t offset, const char *name,
                               const char *resource, unsigned sector_size,
                               struct keel_sanlock_leader *l, struct keel_error *err)
{
    char what[128];

    snprintf(what, sizeof(what), "resource %.48s:%.48s", name, resource);
    if (read_leader(dev, offset, sector_size, KEEL_SANLOCK_PAXOS_MAGIC, what, l, err) != 0)
        return -1;
    if (strcmp(l->space_name, name) != 0 || strcmp(l->resource_name, resource) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: the leader names %s:%s", what,
                              l->space_name, l->resource_name);
    return 0;
}

/*
 * Unit tests of metadata/sanlock_fmt: the CRC-32C, the geometry, every
 * record (leader, request, dblock, mode block), the area images and the
 * readers on local files through file:// URLs.
 *
 * Golden values come from sanlock 3.8.5 (Debian 12) on this kind of
 * machine: the checksums of the spec (sanlock-leases.md 5.1, 5.3), the
 * observed first bytes of a VDSM ids file (ovirt-storage-format.md 7), and
 * the CRC-32C of each whole area `sanlock direct init` wrote for lockspace
 * LS (io_timeout 10) and resource LS:SDM, computed by an independent
 * bit-by-bit CRC in Python.  tests/functional/test_sanlock_fmt.c compares
 * with a live sanlock byte for byte.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/faulty.h"
#include "metadata/sanlock_fmt.h"

#define LS "3f1c2c5e-8a1b-4c2d-9e3f-0123456789ab"
#define MIB (UINT64_C(1) << 20)
#define NAME48 "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL"

/* sanlock 3.8.5's own images: CRC-32C (seed ~1, no final xor) of the area. */
static const struct golden {
    unsigned sector;
    uint64_t align;
    uint32_t delta_sum;    /* checksum field of each delta record */
    uint32_t paxos_sum;    /* checksum field of the SDM leader */
    uint32_t ids_crc;      /* whole lockspace area */
    uint32_t leases_crc;   /* whole resource area */
} goldens[] = {
    { 512, MIB, 0xf515d05du, 0xc56bad3bu, 0x9cd888abu, 0x93bbbcf5u },
    { 4096, MIB, 0x953c2082u, 0x7f1029fcu, 0x0f90c1ddu, 0xaf106437u },
    { 4096, 2 * MIB, 0x4a8ddad0u, 0x3cb6471bu, 0xcf15ec86u, 0xea1e9c0au },
    { 4096, 4 * MIB, 0xf0025885u, 0xbbfa9ad5u, 0xa6edf70cu, 0x28f79d3du },
    { 4096, 8 * MIB, 0x80f12adeu, 0xb08f57b8u, 0x17091c0cu, 0x7c130dedu },
};

struct tmpdev {
    char path[64];
    char *url;
    struct keel_blockdev *dev;
};

static void tmpdev_open(struct tmpdev *t, uint64_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    int fd;

    keel_strlcpy(t->path, "/tmp/keel-sanlock-XXXXXX", sizeof(t->path));
    fd = mkstemp(t->path);
    ck_assert(fd >= 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    close(fd);
    t->url = keel_strdup_printf("file://%s", t->path);
    ck_assert_msg(keel_blockdev_open(t->url, NULL, &t->dev, &err) == 0, "%s", err.msg);
}

static void tmpdev_close(struct tmpdev *t)
{
    keel_blockdev_close(t->dev);
    unlink(t->path);
    free(t->url);
}

/* Write len bytes at off of the file behind the device, as damage would. */
static void poke(const struct tmpdev *t, uint64_t off, const void *buf, size_t len)
{
    int fd = open(t->path, O_WRONLY);

    ck_assert(fd >= 0);
    ck_assert_int_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void peek(const struct tmpdev *t, uint64_t off, void *buf, size_t len)
{
    int fd = open(t->path, O_RDONLY);

    ck_assert(fd >= 0);
    ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void flip(const struct tmpdev *t, uint64_t off)
{
    unsigned char c;

    peek(t, off, &c, 1);
    c ^= 0x01;
    poke(t, off, &c, 1);
}

static struct keel_sanlock_leader free_delta(unsigned sector, uint64_t align)
{
    struct keel_sanlock_leader l;

    memset(&l, 0, sizeof(l));
    l.magic = KEEL_SANLOCK_DELTA_MAGIC;
    l.version = KEEL_SANLOCK_DELTA_VERSION;
    l.flags = keel_sanlock_align_flag(align);
    l.sector_size = sector;
    l.max_hosts = 1;
    l.io_timeout = 10;
    keel_strlcpy(l.space_name, LS, sizeof(l.space_name));
    return l;
}

START_TEST(crc_vectors)
{
    unsigned char zero[168] = { 0 };

    /* The CRC-32C check value, and sanlock's seed with no final xor. */
    ck_assert_uint_eq(~keel_crc32c(~0u, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(keel_sanlock_crc("", 0), 0xFFFFFFFEu);
    ck_assert_uint_eq(keel_sanlock_crc("123456789", 9),
                      keel_crc32c(keel_crc32c(0xFFFFFFFEu, "1234", 4), "56789", 5));
    ck_assert_uint_ne(keel_sanlock_crc(zero, sizeof(zero)), keel_sanlock_crc(zero, 167));
}
END_TEST

START_TEST(geometry)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_leader l;
    unsigned sector = 0;
    uint64_t align = 0;

    ck_assert_uint_eq(keel_sanlock_max_hosts(512, MIB), 2000);
    ck_assert_uint_eq(keel_sanlock_max_hosts(4096, MIB), 250);
    ck_assert_uint_eq(keel_sanlock_max_hosts(4096, 2 * MIB), 500);
    ck_assert_uint_eq(keel_sanlock_max_hosts(4096, 4 * MIB), 1000);
    ck_assert_uint_eq(keel_sanlock_max_hosts(4096, 8 * MIB), 2000);
    ck_assert_uint_eq(keel_sanlock_max_hosts(512, 2 * MIB), 0);    /* sanlock refuses it */
    ck_assert_uint_eq(keel_sanlock_max_hosts(1024, MIB), 0);
    ck_assert_uint_eq(keel_sanlock_max_hosts(4096, 3 * MIB), 0);
    ck_assert_uint_eq(keel_sanlock_align_flag(MIB), 0x10);
    ck_assert_uint_eq(keel_sanlock_align_flag(8 * MIB), 0x80);
    ck_assert_uint_eq(keel_sanlock_align_flag(16 * MIB), 0);
    ck_assert_uint_eq(keel_sanlock_align_from_flags(0x41), 4 * MIB);
    ck_assert_uint_eq(keel_sanlock_align_from_flags(0x1), 0);
    ck_assert_int_eq(keel_sanlock_check_geometry(512, 2 * MIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "sanlock geometry 512-byte sectors, 2097152-byte alignment is "
                              "invalid");
    /* Records older than sanlock 3.7 carry no alignment flag. */
    l = free_delta(4096, 8 * MIB);
    l.flags = 0;
    ck_assert_int_eq(keel_sanlock_leader_geometry(&l, "x", &sector, &align, &err), 0);
    ck_assert_uint_eq(sector, 4096);
    ck_assert_uint_eq(align, 8 * MIB);
    l.sector_size = 512;
    ck_assert_int_eq(keel_sanlock_leader_geometry(&l, "x", &sector, &align, &err), 0);
    ck_assert_uint_eq(align, MIB);
    l.sector_size = 1000;
    ck_assert_int_eq(keel_sanlock_leader_geometry(&l, "lease area x sector 0", &sector, &align,
                                                  &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_str_eq(err.msg, "lease area x sector 0: invalid geometry: sector size 1000, "
                              "flags 0x0");
}
END_TEST

START_TEST(leader_golden)
{
    /* The observed first bytes of dom_md/ids (ovirt-storage-format.md 7). */
    static const unsigned char head[16] = { 0x10, 0x20, 0x21, 0x12, 0x04, 0x00, 0x03, 0x00,
                                            0x10, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00 };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_leader l, back;
    unsigned char b[512];

    for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
        const struct golden *gd = &goldens[g];

        memset(b, 0xee, sizeof(b));
        l = free_delta(gd->sector, gd->align);
        keel_sanlock_leader_encode(&l, b);
        ck_assert_uint_eq(keel_sanlock_crc(b, 168), gd->delta_sum);
        ck_assert_uint_eq(b[168] | b[169] << 8 | b[170] << 16 | (uint32_t)b[171] << 24,
                          gd->delta_sum);
        ck_assert_uint_eq(b[174], 10);
        ck_assert_uint_eq(b[200], 0xee);   /* the rest of the sector is the caller's */
        ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_DELTA_MAGIC, "ids", &back,
                                                    &err), 0);
        ck_assert_str_eq(back.space_name, LS);
        ck_assert_str_eq(back.resource_name, "");
        ck_assert_uint_eq(back.io_timeout, 10);
        ck_assert_uint_eq(back.checksum, gd->delta_sum);
        ck_assert_uint_eq(back.sector_size, gd->sector);
        if (g == 0)
            ck_assert(memcmp(b, head, 16) == 0);

        memset(&l, 0, sizeof(l));
        l.magic = KEEL_SANLOCK_PAXOS_MAGIC;
        l.version = KEEL_SANLOCK_PAXOS_VERSION;
        l.flags = keel_sanlock_align_flag(gd->align);
        l.sector_size = gd->sector;
        l.num_hosts = l.max_hosts = keel_sanlock_max_hosts(gd->sector, gd->align);
        keel_strlcpy(l.space_name, LS, sizeof(l.space_name));
        keel_strlcpy(l.resource_name, "SDM", sizeof(l.resource_name));
        keel_sanlock_leader_encode(&l, b);
        ck_assert_uint_eq(keel_sanlock_crc(b, 168), gd->paxos_sum);
    }
}
END_TEST

START_TEST(leader_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_leader l, back;
    unsigned char b[200], again[200];

    memset(&l, 0, sizeof(l));
    l.magic = KEEL_SANLOCK_PAXOS_MAGIC;
    l.version = 0x00060009;          /* another minor version is accepted */
    l.flags = 0x81;
    l.sector_size = 4096;
    l.num_hosts = 3;
    l.max_hosts = 2000;
    l.owner_id = 0x0102030405060708u;
    l.owner_generation = 7;
    l.lver = 42;
    keel_strlcpy(l.space_name, NAME48, sizeof(l.space_name));   /* 48 bytes, no NUL */
    keel_strlcpy(l.resource_name, "SDM", sizeof(l.resource_name));
    l.timestamp = 5431;
    l.unused1 = 9;
    l.unused2 = 0xabcd;
    l.io_timeout = 0xfffe;
    l.write_id = 2;
    l.write_generation = 1;
    l.write_timestamp = 5431;
    keel_sanlock_leader_encode(&l, b);
    ck_assert(memcmp(b + 56, NAME48, 48) == 0);
    ck_assert_uint_eq(b[32], 0x08);
    ck_assert_uint_eq(b[39], 0x01);
    ck_assert_int_eq(keel_sanlock_leader_decode(b, 0, "x", &back, &err), 0);
    l.checksum = back.checksum;
    ck_assert(memcmp(&l, &back, sizeof(l)) == 0);
    keel_sanlock_leader_encode(&back, again);
    ck_assert(memcmp(b, again, sizeof(b)) == 0);
    /* Bytes 172..199 are outside the checksum, as in sanlock. */
    b[199] ^= 0xff;
    ck_assert_int_eq(keel_sanlock_leader_decode(b, 0, "x", &back, &err), 0);
}
END_TEST

START_TEST(leader_errors)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_leader l = free_delta(512, MIB), back;
    unsigned char b[200];
    char want[160];
    uint32_t sum;

    keel_sanlock_leader_encode(&l, b);
    memset(&back, 0x5a, sizeof(back));
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_PAXOS_MAGIC, "lease area s "
                                                "sector 0", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "lease area s sector 0: bad magic 0x12212010, not a sanlock "
                              "paxos leader");
    ck_assert_uint_eq(back.magic, 0x5a5a5a5au);   /* outputs only on success */

    b[60] ^= 1;
    sum = keel_sanlock_crc(b, 168);
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_DELTA_MAGIC, "lease area "
                                                LS " sector 3", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    snprintf(want, sizeof(want), "lease area " LS " sector 3: bad checksum (stored "
             "0xf515d05d, computed 0x%08x)", sum);
    ck_assert_str_eq(err.msg, want);

    l.version = 0x00040004;
    keel_sanlock_leader_encode(&l, b);
    ck_assert_int_eq(keel_sanlock_leader_decode(b, 0, "y", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_VERSION);
    ck_assert_str_eq(err.msg, "y: unsupported version 0x00040004 of a sanlock delta lease");

    l.magic = KEEL_SANLOCK_PAXOS_CLEAR_MAGIC;
    keel_sanlock_leader_encode(&l, b);
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_PAXOS_MAGIC, "z", &back, &err),
                     -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "z: resource cleared (magic 0x11282016)");

    memset(b, 0, sizeof(b));
    ck_assert_int_eq(keel_sanlock_leader_decode(b, 0, "w", &back, &err), -1);
    ck_assert_str_eq(err.msg, "w: bad magic 0x00000000, not a sanlock lease");
}
END_TEST

START_TEST(request_record)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sanlock_request r = { .magic = KEEL_SANLOCK_REQUEST_MAGIC,
                                      .version = KEEL_SANLOCK_REQUEST_VERSION, .lver = 5,
                                      .force_mode = 2 }, back;
    static const unsigned char want[24] = { 0x11, 0x20, 0x29, 0x08, 0x01, 0x00, 0x01, 0x00,
                                            5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0 };
    unsigned char b[24];

    memset(b, 0xee, sizeof(b));
    keel_sanlock_request_encode(&r, b);
    ck_assert(memcmp(b, want, sizeof(want)) == 0);
    ck_assert_int_eq(keel_sanlock_request_decode(b, "q", &back, &err), 0);
    ck_assert_uint_eq(back.lver, 5);
    ck_assert_uint_eq(back.force_mode, 2);
    b[6] = 2;
    ck_assert_int_eq(keel_sanlock_request_decode(b, "q", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_VERSION);
    ck_assert_str_eq(err.msg, "q: unsupported version 0x00020001 of a sanlock request record");
    b[0] = 0;
    ck_assert_int_eq(keel_sanlock_request_decode(b, "q", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "q: bad magic 0x08292000, not a sanlock request record");
}
END_TEST

START_TEST(dblock_and_mode_block)
{
    struct keel_error err = KEEL_ERROR_INIT;
    /* Host 1 after acquiring, as sanlock wrote it (sanlock-leases.md 5.3). */
    struct keel_sanlock_dblock d = { .mbal = 1, .bal = 1, .inp = 1, .inp2 = 1, .inp3 = 5271,
                                     .lver = 1, .flags = 0 }, back;
    struct keel_sanlock_mode_block m = { .flags = KEEL_SANLOCK_MODE_SHARED, .generation = 3 };
    struct keel_sanlock_mode_block mb;
    unsigned char b[512] = { 0 };
    bool empty = true;

    keel_sanlock_dblock_encode(&d, b);
    ck_assert_uint_eq(b[48] | b[49] << 8 | b[50] << 16 | (uint32_t)b[51] << 24, 0x49dc7a93u);
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "d", &back, &empty, &err), 0);
    ck_assert(!empty);
    ck_assert_uint_eq(back.inp3, 5271);
    ck_assert_uint_eq(back.checksum, 0x49dc7a93u);
    /* RELEASED lies after the checksum: setting it keeps the block valid. */
    d.flags = KEEL_SANLOCK_DBLOCK_RELEASED;
    keel_sanlock_dblock_encode(&d, b);
    ck_assert_uint_eq(b[52], 1);
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "d", &back, NULL, &err), 0);
    ck_assert_uint_eq(back.flags, KEEL_SANLOCK_DBLOCK_RELEASED);
    b[40] = 2;
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "lease area x sector 2", &back, NULL, &err),
                     -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_msg(keel_str_has_prefix(err.msg, "lease area x sector 2: bad dblock checksum "
                                  "(stored 0x49dc7a93, computed 0x"), "%s", err.msg);
    /* Zeros are valid without a checksum; only mbal, bal, inp, lver count. */
    memset(b, 0, 56);
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "d", &back, &empty, &err), 0);
    ck_assert(empty);
    b[24] = 1;   /* inp2 */
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "d", &back, &empty, &err), 0);
    b[16] = 1;   /* inp */
    ck_assert_int_eq(keel_sanlock_dblock_decode(b, "d", &back, &empty, &err), -1);

    keel_sanlock_mode_block_encode(&m, b + KEEL_SANLOCK_MODE_BLOCK_OFFSET);
    ck_assert_uint_eq(b[128], 1);
    ck_assert_uint_eq(b[136], 3);
    keel_sanlock_mode_block_decode(b + KEEL_SANLOCK_MODE_BLOCK_OFFSET, &mb);
    ck_assert_uint_eq(mb.flags, KEEL_SANLOCK_MODE_SHARED);
    ck_assert_uint_eq(mb.generation, 3);
}
END_TEST

START_TEST(images_golden)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *area = malloc(8 * MIB);

    ck_assert(area != NULL);
    for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
        const struct golden *gd = &goldens[g];
        uint64_t hosts = keel_sanlock_max_hosts(gd->sector, gd->align);

        ck_assert_int_eq(keel_sanlock_lockspace_image(area, LS, 0, gd->sector, gd->align, &err),
                         0);
        ck_assert_msg(keel_sanlock_crc(area, gd->align) == gd->ids_crc,
                      "lockspace %u/%llu differs from sanlock's", gd->sector,
                      (unsigned long long)gd->align);
        /* one record per host, zeros after */
        ck_assert_uint_eq(area[(hosts - 1) * gd->sector], 0x10);
        ck_assert_uint_eq(area[hosts * gd->sector], 0);
        ck_assert_int_eq(keel_sanlock_resource_image(area, LS, "SDM", gd->sector, gd->align, 0,
                                                     &err), 0);
        ck_assert_msg(keel_sanlock_crc(area, gd->align) == gd->leases_crc,
                      "resource %u/%llu differs from sanlock's", gd->sector,
                      (unsigned long long)gd->align);
    }
    /* num_hosts below the geometry's is kept; names are bounded. */
    ck_assert_int_eq(keel_sanlock_resource_image(area, LS, "r", 512, MIB, 250, &err), 0);
    ck_assert_uint_eq(area[16], 250);
    ck_assert_int_eq(keel_sanlock_resource_image(area, LS, NAME48 "x", 512, MIB, 0, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "sanlock resource name \"" NAME48 "x\" is longer than 48 bytes");
    ck_assert_int_eq(keel_sanlock_lockspace_image(area, LS, 70000, 512, MIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    free(area);
}
END_TEST

START_TEST(areas_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpdev t;
    struct keel_sanlock_lockspace ls = { 0 };
    struct keel_sanlock_resource res = { 0 };
    struct keel_sanlock_leader l;
    unsigned char sec[512];

    tmpdev_open(&t, 4 * MIB);
    ck_assert_msg(keel_sanlock_write_lockspace(t.dev, 0, LS, 10, 512, MIB, &err) == 0, "%s",
                  err.msg);
    /* oVirt's leases: slot 0 zero, SDM in slot 1. */
    ck_assert_msg(keel_sanlock_write_resource(t.dev, 2 * MIB, LS, "SDM", 512, MIB, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_flush(t.dev, &err), 0);

    ck_assert_msg(keel_sanlock_read_lockspace(t.dev, 0, NULL, 0, 0, &ls, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(ls.name, LS);
    ck_assert_uint_eq(ls.sector_size, 512);
    ck_assert_uint_eq(ls.align, MIB);
    ck_assert_uint_eq(ls.max_hosts, 2000);
    for (uint64_t h = 0; h < ls.max_hosts; h++) {
        ck_assert_uint_eq(ls.hosts[h].owner_id, 0);
        ck_assert_uint_eq(ls.hosts[h].owner_generation, 0);
        ck_assert_uint_eq(ls.hosts[h].timestamp, 0);
        ck_assert_str_eq(ls.hosts[h].resource_name, "");
        ck_assert_uint_eq(ls.hosts[h].io_timeout, 10);
    }
    keel_sanlock_lockspace_release(&ls);
    keel_sanlock_lockspace_release(&ls);   /* twice is harmless */
    for (uint64_t h = 1; h <= 2000; h += 1999) {
        ck_assert_msg(keel_sanlock_read_delta(t.dev, 0, LS, h, 0, &l, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(l.owner_id, 0);
    }
    ck_assert_int_eq(keel_sanlock_read_delta(t.dev, 0, LS, 2001, 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "lease area " LS ": host id 2001 is not in 1..2000");

    ck_assert_msg(keel_sanlock_read_resource_area(t.dev, 2 * MIB, LS, "SDM", 512, MIB, &res,
                                                  &err) == 0, "%s", err.msg);
    ck_assert_str_eq(res.leader.resource_name, "SDM");
    ck_assert_uint_eq(res.leader.num_hosts, 2000);
    ck_assert_uint_eq(res.leader.lver, 0);
    ck_assert_uint_eq(res.request.magic, KEEL_SANLOCK_REQUEST_MAGIC);
    ck_assert_uint_eq(res.ndblocks, 2000);
    ck_assert_uint_eq(res.dblocks[1999].mbal, 0);
    keel_sanlock_resource_release(&res);
    ck_assert_msg(keel_sanlock_read_resource(t.dev, 2 * MIB, NULL, NULL, 0, &l, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(l.space_name, LS);

    /* Names, sector sizes and kinds that do not match are named. */
    ck_assert_int_eq(keel_sanlock_read_resource(t.dev, 2 * MIB, LS, "XYZ", 512, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_str_eq(err.msg, "lease area " LS ":XYZ sector 0: resource is \"SDM\", expected "
                              "\"XYZ\"");
    ck_assert_int_eq(keel_sanlock_read_lockspace(t.dev, 0, "other", 0, 0, &ls, &err), -1);
    ck_assert_str_eq(err.msg, "lease area other sector 0: lockspace is \"" LS "\", expected "
                              "\"other\"");
    ck_assert_int_eq(keel_sanlock_read_lockspace(t.dev, 0, LS, 4096, 0, &ls, &err), -1);
    ck_assert_str_eq(err.msg, "lease area " LS " sector 0: sector size 512, expected 4096");
    ck_assert_int_eq(keel_sanlock_read_delta(t.dev, MIB, LS, 1, 512, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "lease area " LS " sector 0: bad magic 0x00000000, not a sanlock "
                              "delta lease");
    ck_assert_int_eq(keel_sanlock_read_resource(t.dev, 0, NULL, NULL, 0, &l, &err), -1);
    {
        char want[256];

        snprintf(want, sizeof(want), "lease area %s:0 sector 0: bad magic 0x12212010, not a "
                 "sanlock paxos leader", keel_blockdev_name(t.dev));
        ck_assert_str_eq(err.msg, want);
    }

    /* Geometry and names are checked before anything is written. */
    memset(sec, 0, sizeof(sec));
    poke(&t, 3 * MIB, "\x01", 1);
    ck_assert_int_eq(keel_sanlock_write_lockspace(t.dev, 3 * MIB, LS, 10, 1024, MIB, &err), -1);
    ck_assert_str_eq(err.msg, "sanlock geometry 1024-byte sectors, 1048576-byte alignment is "
                              "invalid");
    ck_assert_int_eq(keel_sanlock_write_resource(t.dev, 3 * MIB, LS, LS LS, 512, MIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    peek(&t, 3 * MIB, sec, 1);
    ck_assert_uint_eq(sec[0], 1);
    tmpdev_close(&t);
}
END_TEST

START_TEST(areas_4k)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpdev t;
    struct keel_sanlock_lockspace ls = { 0 };
    struct keel_sanlock_resource res = { 0 };

    tmpdev_open(&t, 16 * MIB);
    ck_assert_msg(keel_sanlock_write_lockspace(t.dev, 0, LS, 1, 4096, 8 * MIB, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_sanlock_write_resource(t.dev, 8 * MIB, LS, "SDM", 4096, 8 * MIB, &err) ==
                  0, "%s", err.msg);
    ck_assert_msg(keel_sanlock_read_lockspace(t.dev, 0, LS, 4096, 8 * MIB, &ls, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(ls.max_hosts, 2000);
    ck_assert_uint_eq(ls.hosts[1999].io_timeout, 1);
    ck_assert_uint_eq(ls.hosts[1999].flags, 0x80);
    keel_sanlock_lockspace_release(&ls);
    ck_assert_msg(keel_sanlock_read_resource_area(t.dev, 8 * MIB, LS, "SDM", 0, 0, &res, &err) ==
                  0, "%s", err.msg);
    ck_assert_uint_eq(res.sector_size, 4096);
    ck_assert_uint_eq(res.align, 8 * MIB);
    ck_assert_uint_eq(res.ndblocks, 2000);
    keel_sanlock_resource_release(&res);
    ck_assert_int_eq(keel_sanlock_read_resource_area(t.dev, 8 * MIB, LS, "SDM", 4096, MIB, &res,
                                                     &err), -1);
    ck_assert_str_eq(err.msg, "lease area " LS ":SDM sector 0: alignment 8388608, expected "
                              "1048576");
    tmpdev_close(&t);
}
END_TEST

START_TEST(damage_is_named)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpdev t;
    struct keel_sanlock_lockspace ls = { 0 };
    struct keel_sanlock_resource res = { 0 };
    struct keel_sanlock_leader l;
    struct keel_sanlock_dblock d = { .mbal = 2002, .bal = 2002, .inp = 2, .inp2 = 1,
                                     .inp3 = 5431, .lver = 2 };
    struct keel_sanlock_mode_block m = { .flags = KEEL_SANLOCK_MODE_SHARED, .generation = 1 };
    unsigned char sec[512] = { 0 };

    tmpdev_open(&t, 2 * MIB);
    ck_assert_int_eq(keel_sanlock_write_lockspace(t.dev, 0, LS, 10, 512, MIB, &err), 0);
    ck_assert_int_eq(keel_sanlock_write_resource(t.dev, MIB, LS, "SDM", 512, MIB, &err), 0);

    /* Host 5's delta lease: sector 4. */
    flip(&t, 4 * 512 + 40);
    ck_assert_int_eq(keel_sanlock_read_lockspace(t.dev, 0, LS, 0, 0, &ls, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_msg(keel_str_has_prefix(err.msg, "lease area " LS " sector 4: bad checksum "
                                  "(stored 0xf515d05d, computed 0x"), "%s", err.msg);
    ck_assert_int_eq(keel_sanlock_read_delta(t.dev, 0, LS, 5, 512, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_int_eq(keel_sanlock_read_delta(t.dev, 0, LS, 6, 512, &l, &err), 0);
    flip(&t, 4 * 512 + 40);

    /* A torn init: record 1 not committed. */
    poke(&t, 0, "\0\0\0\0", 4);
    ck_assert_int_eq(keel_sanlock_read_lockspace(t.dev, 0, LS, 0, 0, &ls, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "lease area " LS " sector 0: bad magic 0x00000000, not a sanlock "
                              "delta lease");

    /* Host 2's ballot, host 3 shared: what a paxos acquire would leave. */
    keel_sanlock_dblock_encode(&d, sec);
    keel_sanlock_mode_block_encode(&m, sec + KEEL_SANLOCK_MODE_BLOCK_OFFSET);
    poke(&t, MIB + 3 * 512, sec, 512);
    memset(sec, 0, sizeof(sec));
    keel_sanlock_mode_block_encode(&m, sec + KEEL_SANLOCK_MODE_BLOCK_OFFSET);
    poke(&t, MIB + 4 * 512, sec, 512);
    ck_assert_msg(keel_sanlock_read_resource_area(t.dev, MIB, LS, "SDM", 0, 0, &res, &err) == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(res.dblocks[1].mbal, 2002);
    ck_assert_uint_eq(res.dblocks[1].inp3, 5431);
    ck_assert_uint_eq(res.dblocks[0].mbal, 0);
    ck_assert_uint_eq(res.modes[2].flags, KEEL_SANLOCK_MODE_SHARED);
    ck_assert_uint_eq(res.modes[2].generation, 1);
    keel_sanlock_resource_release(&res);
    /* Junk in host 5's dblock fails the read, as sanlock's acquire (-214). */
    poke(&t, MIB + 6 * 512 + 8, "junk", 4);
    ck_assert_int_eq(keel_sanlock_read_resource_area(t.dev, MIB, LS, "SDM", 0, 0, &res, &err),
                     -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_msg(keel_str_has_prefix(err.msg, "lease area " LS ":SDM sector 6: bad dblock "
                                  "checksum (stored 0x00000000, computed 0x"), "%s", err.msg);
    /* The request record's magic. */
    poke(&t, MIB + 512, "\0", 1);
    ck_assert_int_eq(keel_sanlock_read_resource_area(t.dev, MIB, LS, "SDM", 0, 0, &res, &err),
                     -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "lease area " LS ":SDM sector 1: bad magic 0x08292000, not a "
                              "sanlock request record");
    /* The leader's lver: -229 in sanlock. */
    flip(&t, MIB + 48);
    ck_assert_int_eq(keel_sanlock_read_resource(t.dev, MIB, LS, "SDM", 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    tmpdev_close(&t);
}
END_TEST

/* A crash at any write of an init: the old lockspace, the new one, or none. */
START_TEST(lockspace_crash_points)
{
    static const enum keel_tear tears[] = { KEEL_TEAR_DROP, KEEL_TEAR_FULL, KEEL_TEAR_PREFIX,
                                            KEEL_TEAR_RANDOM };
    struct keel_error err = KEEL_ERROR_INIT;
    struct tmpdev t;
    const char *old = _i == 0 ? NULL : "old-lockspace";

    tmpdev_open(&t, MIB);
    keel_blockdev_close(t.dev);
    for (unsigned k = 1; k <= 2; k++)
        for (size_t m = 0; m < sizeof(tears) / sizeof(tears[0]); m++) {
            struct keel_fault_plan plan = { .crash_at = k, .tear = tears[m],
                                            .buffer_writes = true, .seed = 11 * k + m };
            struct keel_sanlock_lockspace ls = { 0 };
            struct keel_blockdev *dev = NULL, *inner = NULL;
            unsigned char *zero = calloc(1, MIB);

            ck_assert_int_eq(keel_blockdev_open(t.url, NULL, &inner, &err), 0);
            ck_assert_int_eq(keel_blockdev_pwrite(inner, zero, MIB, 0, &err), 0);
            if (old != NULL)
                ck_assert_int_eq(keel_sanlock_write_lockspace(inner, 0, old, 10, 512, MIB, &err),
                                 0);
            free(zero);
            ck_assert_int_eq(keel_faulty_blockdev(inner, &plan, &dev, NULL, &err), 0);
            ck_assert_int_eq(keel_sanlock_write_lockspace(dev, 0, LS, 10, 512, MIB, &err), -1);
            ck_assert_int_eq(err.code, KEEL_E_FAULT);
            keel_blockdev_close(dev);

            ck_assert_int_eq(keel_blockdev_open(t.url, NULL, &t.dev, &err), 0);
            if (keel_sanlock_read_lockspace(t.dev, 0, NULL, 0, 0, &ls, &err) == 0) {
                /* whole: every record free and of one name */
                ck_assert(strcmp(ls.name, LS) == 0 || (old != NULL && strcmp(ls.name, old) == 0));
                for (uint64_t h = 0; h < ls.max_hosts; h++)
                    ck_assert_str_eq(ls.hosts[h].space_name, ls.name);
                keel_sanlock_lockspace_release(&ls);
            } else {
                ck_assert_msg(err.code == KEEL_E_MAGIC || err.code == KEEL_E_CORRUPT, "%s",
                              err.msg);
            }
            keel_blockdev_close(t.dev);
        }
    t.dev = NULL;
    tmpdev_close(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sanlock_fmt");
    TCase *tc = tcase_create("sanlock_fmt");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, crc_vectors);
    tcase_add_test(tc, geometry);
    tcase_add_test(tc, leader_golden);
    tcase_add_test(tc, leader_roundtrip);
    tcase_add_test(tc, leader_errors);
    tcase_add_test(tc, request_record);
    tcase_add_test(tc, dblock_and_mode_block);
    tcase_add_test(tc, images_golden);
    tcase_add_test(tc, areas_roundtrip);
    tcase_add_test(tc, areas_4k);
    tcase_add_test(tc, damage_is_named);
    tcase_add_loop_test(tc, lockspace_crash_points, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

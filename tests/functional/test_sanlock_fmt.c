/*
 * sanlock's records as Keel writes and reads them (metadata/sanlock_fmt,
 * metadata/xleases), judged by the real sanlock 3.8.5 tool in its direct
 * mode (no daemon), on sparse files in a private directory:
 *
 *   - for every geometry (512/1M, 4096/1M, 2M, 4M, 8M): Keel writes an ids
 *     area (lockspace = a domain UUID) and a leases area as oVirt has it
 *     (slot 0 zero, SDM in slot 1); `sanlock direct dump` and
 *     `read_leader` show the lockspace and the SDM resource with the
 *     expected fields; `sanlock direct init` writes the same areas into
 *     other files, which are byte for byte Keel's, and which Keel reads;
 *   - a joined host's delta lease, dblocks, a mode block and a request
 *     written by Keel's encoders are what `dump -f 2` prints;
 *   - damage: read_leader and Keel's readers fail on the same records
 *     (-229 bad checksum, -226 wrong lockspace, -227 wrong resource);
 *   - an xleases area Keel formats and adds two leases to: `dump` lists
 *     both lease slots with their names; a removed lease is no resource of
 *     the lockspace for read_leader either.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"
#include "metadata/xleases.h"
#include "tests/functional/sanlock_judge.h"
#include "tests/harness/lab.h"

#define MiB (UINT64_C(1) << 20)
#define LS "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define HOST7 "8ab68217-3c1e-4e2f-9a0b-1c2d3e4f5a6b.host7"
#define LEASE_A "0b9a6f43-1e8c-4c1e-9d0e-4a2b5f6c7d8e"
#define LEASE_B "7c2d1e0f-3a4b-4c5d-8e6f-9a0b1c2d3e4f"

static const struct geom {
    unsigned sector;
    unsigned mib;
} geoms[] = { { 512, 1 }, { 4096, 1 }, { 4096, 2 }, { 4096, 4 }, { 4096, 8 } };

/* One row of `sanlock direct dump`. */
struct row {
    unsigned long long offset, timestamp, own, gen, lver;
    char lockspace[64], resource[64];
    int fields;       /* 6: a delta lease, 7: a resource, 8: with "/req/mode" */
    char tail[64];    /* after the lver with -f 1: "/request lver/force mode" */
};

/* A right-aligned column of width w at p, without its padding. */
static void column(const char *p, int w, char *out, size_t n)
{
    while (w > 0 && *p == ' ') {
        p++;
        w--;
    }
    snprintf(out, n, "%.*s", w, p);
}

/*
 * The rows of a dump, by the columns of sanlock's format ("%08llu %36s
 * %48s %010llu %04llu %04llu %llu"), so that empty names parse too; the
 * header, dblock and shared-mode lines are skipped.  Returns how many.
 */
static size_t parse_dump(const char *out, struct row *rows, size_t max)
{
    const char *p = strchr(out, '\n');
    size_t n = 0;

    while (p != NULL && p[1] != '\0' && n < max) {
        struct row *r = &rows[n];
        char line[512];
        const char *e = strchr(p + 1, '\n');
        size_t len = e != NULL ? (size_t)(e - p - 1) : strlen(p + 1);
        int k;

        snprintf(line, sizeof(line), "%.*s", (int)len, p + 1);
        p = e;
        if (strlen(line) < 94 || line[0] == ' ' || strncmp(line, "dblock[", 7) == 0)
            continue;
        memset(r, 0, sizeof(*r));
        if (sscanf(line, "%8llu", &r->offset) != 1)
            continue;
        column(line + 9, 36, r->lockspace, sizeof(r->lockspace));
        column(line + 46, 48, r->resource, sizeof(r->resource));
        k = sscanf(line + 94, "%llu %llu %llu %llu%63s", &r->timestamp, &r->own, &r->gen,
                   &r->lver, r->tail);
        r->fields = 3 + (k > 0 ? k : 0);
        n++;
    }
    return n;
}

static void read_leader_ok(const char *kind, const char *spec, const char *const *want)
{
    const char *argv[] = { "sanlock", "direct", "read_leader", kind, spec, NULL };
    char *out = sanlock_judge_run(argv), val[128];

    ck_assert_msg(strstr(out, "read_leader done 0") != NULL, "%s", out);
    for (size_t i = 0; want[i] != NULL; i += 2)
        ck_assert_msg(strcmp(sanlock_judge_field(out, want[i], val, sizeof(val)), want[i + 1]) == 0,
                      "read_leader %s %s: %s is %s, want %s", kind, spec, want[i], val,
                      want[i + 1]);
    free(out);
}

/* read_leader must fail (exit 1) with sanlock's error code rv. */
static void read_leader_fails(const char *kind, const char *spec, int rv)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *argv[] = { "sanlock", "direct", "read_leader", kind, spec, NULL };
    char *out = NULL, *errout = NULL, want[64];
    int status = 0;

    ck_assert_int_eq(keel_lab_run(argv, NULL, &out, &errout, &status, &err), 0);
    snprintf(want, sizeof(want), "read_leader done %d", rv);
    ck_assert_msg(status == 1 && strstr(out, want) != NULL, "read_leader %s %s: status %d, "
                  "want %s:\n%s%s", kind, spec, status, want, out, errout);
    free(out);
    free(errout);
}

static struct keel_blockdev *open_file(const char *path)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev *dev = NULL;
    char *url = keel_strdup_printf("file://%s", path);

    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    free(url);
    return dev;
}

static unsigned char *slurp(const char *path, uint64_t size)
{
    unsigned char *buf = malloc(size);
    int fd = open(path, O_RDONLY);

    ck_assert(buf != NULL && fd >= 0);
    ck_assert_int_eq(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    return buf;
}

static void same_bytes(const char *keel, const char *peer, uint64_t size)
{
    unsigned char *a = slurp(keel, size), *b = slurp(peer, size);

    if (memcmp(a, b, size) != 0) {
        uint64_t i = 0;

        while (a[i] == b[i])
            i++;
        ck_abort_msg("%s differs from sanlock's %s at byte %llu: 0x%02x, sanlock 0x%02x", keel,
                     peer, (unsigned long long)i, a[i], b[i]);
    }
    free(a);
    free(b);
}

static void flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;

    ck_assert(fd >= 0);
    ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

/*
 * Keel and sanlock write the areas of one geometry; each judges the other.
 */
START_TEST(areas)
{
    const struct geom *g = &geoms[_i];
    const uint64_t align = g->mib * MiB;
    const uint64_t hosts = keel_sanlock_max_hosts(g->sector, align);
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sanlock-fmt", &err);
    char *ids, *leases, *pids, *pleases, *spec, *amib, *zs, *o, hs[32];
    struct keel_blockdev *dev;
    struct keel_sanlock_lockspace ls = { 0 };
    struct keel_sanlock_resource res = { 0 };
    struct keel_sanlock_leader l;
    struct row rows[8];
    size_t n;

    ck_assert_msg(dir != NULL, "%s", err.msg);
    ids = keel_strdup_printf("%s/ids", dir);
    leases = keel_strdup_printf("%s/leases", dir);
    pids = keel_strdup_printf("%s/sanlock-ids", dir);
    pleases = keel_strdup_printf("%s/sanlock-leases", dir);
    amib = keel_strdup_printf("%uM", g->mib);
    zs = keel_strdup_printf("%u", g->sector);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(keel_lab_sparse_file((const char *[]){ ids, leases, pids, pleases }[i],
                                           i % 2 == 0 ? align : 2 * align, &err) == 0, "%s",
                      err.msg);

    /* Keel writes: the lockspace over ids, SDM in slot 1 of leases. */
    dev = open_file(ids);
    ck_assert_msg(keel_sanlock_write_lockspace(dev, 0, LS, KEEL_SANLOCK_IO_TIMEOUT, g->sector,
                                               align, &err) == 0, "%s", err.msg);
    keel_blockdev_close(dev);
    dev = open_file(leases);
    ck_assert_msg(keel_sanlock_write_resource(dev, align, LS, "SDM", g->sector, align, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(keel_blockdev_flush(dev, &err), 0);
    keel_blockdev_close(dev);

    /* sanlock writes the same into its own files. */
    {
        char *s1 = keel_strdup_printf("%s:0:%s:0", LS, pids);
        char *s2 = keel_strdup_printf("%s:SDM:%s:%llu", LS, pleases, (unsigned long long)align);
        const char *init1[] = { "sanlock", "direct", "init", "-s", s1, "-Z", zs, "-A", amib,
                                "-o", "10", NULL };
        const char *init2[] = { "sanlock", "direct", "init", "-r", s2, "-Z", zs, "-A", amib,
                                NULL };

        free(sanlock_judge_run(init1));
        free(sanlock_judge_run(init2));
        free(s1);
        free(s2);
    }
    /* Byte for byte, slot 0 of leases included (zero in both). */
    same_bytes(ids, pids, align);
    same_bytes(leases, pleases, 2 * align);

    /* sanlock reads Keel's leases: one resource, SDM of LS, free, at slot 1. */
    spec = keel_strdup_printf("%s:0:%llu", leases, (unsigned long long)(2 * align));
    {
        const char *dump[] = { "sanlock", "direct", "dump", spec, "-f", "1", NULL };

        o = sanlock_judge_run(dump);
        n = parse_dump(o, rows, 8);
        ck_assert_msg(n == 1 && rows[0].fields == 8, "dump of leases:\n%s", o);
        ck_assert_uint_eq(rows[0].offset, align);
        ck_assert_str_eq(rows[0].lockspace, LS);
        ck_assert_str_eq(rows[0].resource, "SDM");
        ck_assert_uint_eq(rows[0].timestamp, 0);
        ck_assert_uint_eq(rows[0].own, 0);
        ck_assert_uint_eq(rows[0].gen, 0);
        ck_assert_uint_eq(rows[0].lver, 0);
        ck_assert_str_eq(rows[0].tail, "/0/0");   /* request record: lver 0, force_mode 0 */
        free(o);
    }
    free(spec);
    spec = keel_strdup_printf("%s:SDM:%s:%llu", LS, leases, (unsigned long long)align);
    snprintf(hs, sizeof(hs), "%llu", (unsigned long long)hosts);
    {
        const char *want[] = { "space_name", LS, "resource_name", "SDM", "owner_id", "0",
                               "lver", "0", "timestamp", "0", "num_hosts", hs, "max_hosts", hs,
                               "sector_size", zs, NULL };

        read_leader_ok("-r", spec, want);
    }
    free(spec);
    /* ... and Keel's ids: hosts 1 and the last are valid free delta leases,
     * and none was ever acquired, so dump lists none. */
    for (uint64_t h = 1; h <= hosts; h += hosts - 1) {
        const char *want[] = { "space_name", LS, "owner_id", "0", "owner_generation", "0",
                               "timestamp", "0", "io_timeout", "10", "sector_size", zs, NULL };

        spec = keel_strdup_printf("%s:%llu:%s:0", LS, (unsigned long long)h, ids);
        read_leader_ok("-s", spec, want);
        free(spec);
    }
    {
        const char *dump[] = { "sanlock", "direct", "dump", ids, NULL };

        o = sanlock_judge_run(dump);
        ck_assert_msg(parse_dump(o, rows, 8) == 0, "dump of fresh ids:\n%s", o);
        free(o);
    }
    /* A joined host 7, written with Keel's encoder: dump shows it. */
    {
        unsigned char *sec = keel_aligned_alloc(4096, g->sector);
        const char *dump[] = { "sanlock", "direct", "dump", ids, NULL };

        memset(&l, 0, sizeof(l));
        memset(sec, 0, g->sector);
        l.magic = KEEL_SANLOCK_DELTA_MAGIC;
        l.version = KEEL_SANLOCK_DELTA_VERSION;
        l.flags = keel_sanlock_align_flag(align);
        l.sector_size = g->sector;
        l.max_hosts = 1;
        l.owner_id = 7;
        l.owner_generation = 1;
        l.timestamp = 1234;
        l.io_timeout = 10;
        keel_strlcpy(l.space_name, LS, sizeof(l.space_name));
        keel_strlcpy(l.resource_name, HOST7, sizeof(l.resource_name));
        keel_sanlock_leader_encode(&l, sec);
        dev = open_file(ids);
        ck_assert_int_eq(keel_blockdev_pwrite(dev, sec, g->sector, 6 * g->sector, &err), 0);
        keel_blockdev_close(dev);
        free(sec);
        o = sanlock_judge_run(dump);
        n = parse_dump(o, rows, 8);
        ck_assert_msg(n == 1 && rows[0].fields == 6, "dump of ids:\n%s", o);
        ck_assert_uint_eq(rows[0].offset, 6 * g->sector);
        ck_assert_str_eq(rows[0].lockspace, LS);
        ck_assert_str_eq(rows[0].resource, HOST7);
        ck_assert_uint_eq(rows[0].timestamp, 1234);
        ck_assert_uint_eq(rows[0].own, 7);
        ck_assert_uint_eq(rows[0].gen, 1);
        free(o);
    }

    /* Keel reads sanlock's areas. */
    dev = open_file(pids);
    ck_assert_msg(keel_sanlock_read_lockspace(dev, 0, NULL, 0, 0, &ls, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(ls.name, LS);
    ck_assert_uint_eq(ls.sector_size, g->sector);
    ck_assert_uint_eq(ls.align, align);
    ck_assert_uint_eq(ls.max_hosts, hosts);
    for (uint64_t h = 0; h < hosts; h++) {
        ck_assert_uint_eq(ls.hosts[h].owner_id, 0);
        ck_assert_uint_eq(ls.hosts[h].owner_generation, 0);
        ck_assert_uint_eq(ls.hosts[h].timestamp, 0);
        ck_assert_str_eq(ls.hosts[h].resource_name, "");
        ck_assert_uint_eq(ls.hosts[h].io_timeout, 10);
    }
    keel_sanlock_lockspace_release(&ls);
    keel_blockdev_close(dev);
    dev = open_file(pleases);
    ck_assert_msg(keel_sanlock_read_resource_area(dev, align, LS, "SDM", g->sector, align, &res,
                                                  &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(res.leader.owner_id, 0);
    ck_assert_uint_eq(res.leader.lver, 0);
    ck_assert_uint_eq(res.leader.num_hosts, hosts);
    ck_assert_uint_eq(res.request.lver, 0);
    ck_assert_uint_eq(res.ndblocks, hosts);
    for (uint64_t h = 0; h < hosts; h++)
        ck_assert(res.dblocks[h].mbal == 0 && res.modes[h].flags == 0);
    keel_sanlock_resource_release(&res);
    ck_assert_int_eq(keel_sanlock_read_resource(dev, 0, NULL, NULL, 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);   /* slot 0 is zero */
    keel_blockdev_close(dev);

    free(ids);
    free(leases);
    free(pids);
    free(pleases);
    free(amib);
    free(zs);
    keel_lab_tmpdir_remove(dir);
    free(dir);
}
END_TEST

/* Dblocks, a mode block and a request as Keel encodes them: dump -f 2. */
START_TEST(ballot_records)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sanlock-fmt", &err);
    char *leases = keel_strdup_printf("%s/leases", dir), *spec, *o;
    struct keel_sanlock_dblock d1 = { .mbal = 1, .bal = 1, .inp = 1, .inp2 = 1, .inp3 = 5271,
                                      .lver = 1 };
    struct keel_sanlock_dblock d2 = { .mbal = 2002, .bal = 2002, .inp = 2, .inp2 = 1,
                                      .inp3 = 5431, .lver = 2,
                                      .flags = KEEL_SANLOCK_DBLOCK_RELEASED };
    struct keel_sanlock_mode_block m = { .flags = KEEL_SANLOCK_MODE_SHARED, .generation = 1 };
    struct keel_sanlock_request r = { .magic = KEEL_SANLOCK_REQUEST_MAGIC,
                                      .version = KEEL_SANLOCK_REQUEST_VERSION, .lver = 5,
                                      .force_mode = 1 };
    struct keel_sanlock_resource res = { 0 };
    unsigned char *sec = keel_aligned_alloc(4096, 4 * 512);
    struct keel_blockdev *dev;
    struct row rows[4];

    ck_assert_int_eq(keel_lab_sparse_file(leases, 2 * MiB, &err), 0);
    dev = open_file(leases);
    ck_assert_int_eq(keel_sanlock_write_resource(dev, MiB, LS, "SDM", 512, MiB, &err), 0);
    /* sectors 1..4: request, host 1, host 2, host 3 */
    memset(sec, 0, 4 * 512);
    keel_sanlock_request_encode(&r, sec);
    keel_sanlock_dblock_encode(&d1, sec + 512);
    keel_sanlock_dblock_encode(&d2, sec + 1024);
    keel_sanlock_mode_block_encode(&m, sec + 1024 + KEEL_SANLOCK_MODE_BLOCK_OFFSET);
    keel_sanlock_mode_block_encode(&m, sec + 1536 + KEEL_SANLOCK_MODE_BLOCK_OFFSET);
    ck_assert_int_eq(keel_blockdev_pwrite(dev, sec, 4 * 512, MiB + 512, &err), 0);
    ck_assert_int_eq(keel_blockdev_flush(dev, &err), 0);
    ck_assert_msg(keel_sanlock_read_resource_area(dev, MiB, LS, "SDM", 0, 0, &res, &err) == 0,
                  "%s", err.msg);
    ck_assert_uint_eq(res.request.lver, 5);
    ck_assert_uint_eq(res.dblocks[1].flags, KEEL_SANLOCK_DBLOCK_RELEASED);
    ck_assert_uint_eq(res.modes[2].generation, 1);
    keel_sanlock_resource_release(&res);
    keel_blockdev_close(dev);
    free(sec);

    spec = keel_strdup_printf("%s:1M:1M", leases);
    {
        const char *dump[] = { "sanlock", "direct", "dump", spec, "-f", "2", NULL };

        o = sanlock_judge_run(dump);
        ck_assert_msg(parse_dump(o, rows, 4) == 1 && strcmp(rows[0].tail, "/5/1") == 0,
                      "dump -f 2:\n%s", o);
        ck_assert_msg(strstr(o, "dblock[0000] mbal 1 bal 1 inp 1 inp2 1 inp3 5271 lver 1 sum "
                             "49dc7a93\n") != NULL, "dump -f 2:\n%s", o);
        ck_assert_msg(strstr(o, "dblock[0001] mbal 2002 bal 2002 inp 2 inp2 1 inp3 5431 lver 2 "
                             "sum ") != NULL, "dump -f 2:\n%s", o);
        ck_assert_msg(strstr(o, " 0002 0001 SH\n") != NULL && strstr(o, " 0003 0001 SH\n") != NULL,
                      "dump -f 2:\n%s", o);
        ck_assert_msg(strstr(o, "dblock[0002]") == NULL, "dump -f 2:\n%s", o);
        free(o);
    }
    free(spec);
    free(leases);
    keel_lab_tmpdir_remove(dir);
    free(dir);
}
END_TEST

/* The same damage fails sanlock's read_leader and Keel's readers. */
START_TEST(judges_agree_on_damage)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sanlock-fmt", &err);
    char *ids = keel_strdup_printf("%s/ids", dir), *leases = keel_strdup_printf("%s/leases", dir);
    char *spec;
    struct keel_blockdev *dev;
    struct keel_sanlock_leader l;

    ck_assert_int_eq(keel_lab_sparse_file(ids, MiB, &err), 0);
    ck_assert_int_eq(keel_lab_sparse_file(leases, 2 * MiB, &err), 0);
    dev = open_file(ids);
    ck_assert_int_eq(keel_sanlock_write_lockspace(dev, 0, LS, 10, 512, MiB, &err), 0);
    keel_blockdev_close(dev);
    dev = open_file(leases);
    ck_assert_int_eq(keel_sanlock_write_resource(dev, MiB, LS, "SDM", 512, MiB, &err), 0);
    ck_assert_int_eq(keel_blockdev_flush(dev, &err), 0);
    keel_blockdev_close(dev);

    /* Host 5's delta lease: one bit of its generation. */
    flip(ids, 4 * 512 + 40);
    spec = keel_strdup_printf("%s:5:%s:0", LS, ids);
    read_leader_fails("-s", spec, -229);
    free(spec);
    dev = open_file(ids);
    ck_assert_int_eq(keel_sanlock_read_delta(dev, 0, LS, 5, 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_int_eq(keel_sanlock_read_delta(dev, 0, LS, 6, 0, &l, &err), 0);
    keel_blockdev_close(dev);
    spec = keel_strdup_printf("%s:6:%s:0", LS, ids);
    read_leader_ok("-s", spec, (const char *[]){ "owner_id", "0", NULL });
    free(spec);
    /* Another lockspace's name. */
    spec = keel_strdup_printf("other:6:%s:0", ids);
    read_leader_fails("-s", spec, -226);
    free(spec);
    dev = open_file(ids);
    ck_assert_int_eq(keel_sanlock_read_delta(dev, 0, "other", 6, 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    keel_blockdev_close(dev);

    /* The SDM leader: another resource name, then a flipped lver. */
    spec = keel_strdup_printf("%s:XYZ:%s:1048576", LS, leases);
    read_leader_fails("-r", spec, -227);
    free(spec);
    dev = open_file(leases);
    ck_assert_int_eq(keel_sanlock_read_resource(dev, MiB, LS, "XYZ", 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    keel_blockdev_close(dev);
    flip(leases, MiB + 48);
    spec = keel_strdup_printf("%s:SDM:%s:1048576", LS, leases);
    read_leader_fails("-r", spec, -229);
    free(spec);
    dev = open_file(leases);
    ck_assert_int_eq(keel_sanlock_read_resource(dev, MiB, LS, "SDM", 0, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    keel_blockdev_close(dev);

    free(ids);
    free(leases);
    keel_lab_tmpdir_remove(dir);
    free(dir);
}
END_TEST

/* An xleases area with two leases: sanlock finds them in their slots. */
START_TEST(xleases_slots)
{
    const struct geom *g = &geoms[_i == 0 ? 0 : 1];   /* 512/1M, 4096/1M */
    const uint64_t align = g->mib * MiB, size = 5 * align;
    struct keel_error err = KEEL_ERROR_INIT;
    char *dir = keel_lab_tmpdir("sanlock-fmt", &err);
    char *xl = keel_strdup_printf("%s/xleases", dir), *spec, *o;
    struct keel_blockdev *dev;
    struct row rows[8];
    uint64_t a = 0, b = 0;
    size_t n;

    ck_assert_int_eq(keel_lab_sparse_file(xl, size, &err), 0);
    dev = open_file(xl);
    ck_assert_msg(keel_xleases_format(dev, 0, LS, align, 1700000000, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_xleases_add(dev, 0, size, g->sector, align, LEASE_A, &a, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(keel_xleases_add(dev, 0, size, g->sector, align, LEASE_B, &b, &err) == 0, "%s",
                  err.msg);
    keel_blockdev_close(dev);
    ck_assert_uint_eq(a, 3 * align);
    ck_assert_uint_eq(b, 4 * align);

    /* The whole area: slot 0 zero, the index (no sanlock magic), slot 2
     * zero, then the two leases. */
    spec = keel_strdup_printf("%s:0:%llu", xl, (unsigned long long)size);
    {
        const char *dump[] = { "sanlock", "direct", "dump", spec, NULL };

        o = sanlock_judge_run(dump);
        n = parse_dump(o, rows, 8);
        ck_assert_msg(n == 2 && rows[0].fields == 7 && rows[1].fields == 7, "dump:\n%s", o);
        ck_assert_uint_eq(rows[0].offset, a);
        ck_assert_str_eq(rows[0].lockspace, LS);
        ck_assert_str_eq(rows[0].resource, LEASE_A);
        ck_assert_uint_eq(rows[1].offset, b);
        ck_assert_str_eq(rows[1].lockspace, LS);
        ck_assert_str_eq(rows[1].resource, LEASE_B);
        ck_assert(rows[0].own == 0 && rows[0].lver == 0 && rows[1].own == 0);
        free(o);
    }
    free(spec);
    spec = keel_strdup_printf("%s:%s:%s:%llu", LS, LEASE_B, xl, (unsigned long long)b);
    read_leader_ok("-r", spec, (const char *[]){ "resource_name", LEASE_B, NULL });
    free(spec);

    /* Removed: the slot holds a resource of no lockspace. */
    dev = open_file(xl);
    ck_assert_msg(keel_xleases_remove(dev, 0, g->sector, align, LEASE_A, &err) == 0, "%s",
                  err.msg);
    keel_blockdev_close(dev);
    spec = keel_strdup_printf("%s:%s:%s:%llu", LS, LEASE_A, xl, (unsigned long long)a);
    read_leader_fails("-r", spec, -226);
    free(spec);
    spec = keel_strdup_printf("%s:%llu:%llu", xl, (unsigned long long)a,
                              (unsigned long long)(2 * align));
    {
        const char *dump[] = { "sanlock", "direct", "dump", spec, NULL };

        o = sanlock_judge_run(dump);
        n = parse_dump(o, rows, 8);
        ck_assert_msg(n == 2 && rows[0].fields == 7 && rows[0].offset == a &&
                      strcmp(rows[0].lockspace, "") == 0 && strcmp(rows[0].resource, "") == 0 &&
                      rows[1].fields == 7 && strcmp(rows[1].resource, LEASE_B) == 0,
                      "dump after remove:\n%s", o);
        free(o);
    }
    free(spec);
    free(xl);
    keel_lab_tmpdir_remove(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sanlock_fmt");
    TCase *tc = tcase_create("sanlock_fmt");
    SRunner *sr;
    int failed;

    keel_lab_require("sanlock");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, areas, 0, (int)(sizeof(geoms) / sizeof(geoms[0])));
    tcase_add_test(tc, ballot_records);
    tcase_add_test(tc, judges_agree_on_damage);
    tcase_add_loop_test(tc, xleases_slots, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

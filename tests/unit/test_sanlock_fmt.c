/*
 * Unit tests of metadata/sanlock_fmt: the CRC-32C, the leader record and
 * the area initialisers, with the vectors the spec took from sanlock's own
 * output (sanlock-leases.md 5.1).  Byte-for-byte comparison with
 * `sanlock direct init` is in tests/functional/test_sd.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/sanlock_fmt.h"

#define LS "3f1c2c5e-8a1b-4c2d-9e3f-0123456789ab"
#define MIB (UINT64_C(1) << 20)

START_TEST(crc_vectors)
{
    /* CRC-32C check value, adjusted for sanlock's seed ~1 and no final xor:
     * standard crc32c("123456789") = 0xE3069283 uses seed ~0 and a final xor. */
    unsigned char zero[168] = { 0 };

    ck_assert_uint_ne(keel_sanlock_crc("123456789", 9), 0);
    ck_assert_uint_eq(keel_sanlock_crc("", 0), 0xFFFFFFFEu);
    ck_assert_uint_ne(keel_sanlock_crc(zero, sizeof(zero)), keel_sanlock_crc(zero, 167));
}
END_TEST

START_TEST(leader_vectors)
{
    struct keel_sanlock_leader l = { 0 }, back;
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char b[512] = { 0 };

    /* An initialised 512/1M delta record, io_timeout 10 (spec 5.1). */
    l.magic = KEEL_SANLOCK_DELTA_MAGIC;
    l.version = KEEL_SANLOCK_DELTA_VERSION;
    l.flags = 0x10;
    l.sector_size = 512;
    l.max_hosts = 1;
    l.io_timeout = 10;
    keel_strlcpy(l.space_name, LS, sizeof(l.space_name));
    keel_sanlock_leader_encode(&l, b);
    ck_assert_uint_eq(keel_sanlock_crc(b, 168), 0xf515d05du);
    /* The observed first bytes of dom_md/ids (ovirt-storage-format.md 7). */
    {
        static const unsigned char head[16] = { 0x10, 0x20, 0x21, 0x12, 0x04, 0x00, 0x03, 0x00,
                                                0x10, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00 };

        ck_assert(memcmp(b, head, 16) == 0);
    }
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_DELTA_MAGIC, "ids", &back, &err),
                     0);
    ck_assert_str_eq(back.space_name, LS);
    ck_assert_uint_eq(back.io_timeout, 10);
    ck_assert_uint_eq(back.checksum, 0xf515d05du);

    /* The matching SDM paxos leader. */
    memset(&l, 0, sizeof(l));
    l.magic = KEEL_SANLOCK_PAXOS_MAGIC;
    l.version = KEEL_SANLOCK_PAXOS_VERSION;
    l.flags = 0x10;
    l.sector_size = 512;
    l.num_hosts = l.max_hosts = 2000;
    keel_strlcpy(l.space_name, LS, sizeof(l.space_name));
    keel_strlcpy(l.resource_name, "SDM", sizeof(l.resource_name));
    keel_sanlock_leader_encode(&l, b);
    ck_assert_uint_eq(keel_sanlock_crc(b, 168), 0xc56bad3bu);

    /* Damage: a named error each. */
    b[60] ^= 1;
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_PAXOS_MAGIC, "leases slot 1",
                                                &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_str_eq(err.msg, "leases slot 1: sanlock lease checksum mismatch");
    ck_assert_int_eq(keel_sanlock_leader_decode(b, KEEL_SANLOCK_DELTA_MAGIC, "ids sector 1",
                                                &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "ids sector 1: no sanlock delta lease (magic 0x06152010)");
}
END_TEST

START_TEST(areas_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char path[] = "/tmp/keel-sanlock-XXXXXX", *url;
    struct keel_blockdev *dev = NULL;
    struct keel_sanlock_leader l;
    int fd = mkstemp(path);

    ck_assert(fd >= 0);
    ck_assert_int_eq(ftruncate(fd, 4 * MIB), 0);
    close(fd);
    url = keel_strdup_printf("file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_sanlock_write_lockspace(dev, 0, LS, 10, 512, MIB, &err), 0);
    ck_assert_int_eq(keel_sanlock_write_resource(dev, 2 * MIB, LS, "SDM", 512, MIB, &err), 0);
    for (uint64_t h = 1; h <= 2000; h += 1999) {
        ck_assert_msg(keel_sanlock_read_delta(dev, 0, LS, h, 512, &l, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(l.owner_id, 0);
        ck_assert_uint_eq(l.timestamp, 0);
        ck_assert_str_eq(l.resource_name, "");
    }
    ck_assert_msg(keel_sanlock_read_resource(dev, 2 * MIB, LS, "SDM", 512, &l, &err) == 0, "%s",
                  err.msg);
    ck_assert_uint_eq(l.num_hosts, 2000);
    ck_assert_int_eq(keel_sanlock_read_resource(dev, 2 * MIB, LS, "XYZ", 512, &l, &err), -1);
    ck_assert_str_eq(err.msg, "resource " LS ":XYZ: the leader names " LS ":SDM");
    ck_assert_int_eq(keel_sanlock_read_delta(dev, MIB, LS, 1, 512, &l, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    /* Geometry and names are checked. */
    ck_assert_int_eq(keel_sanlock_write_lockspace(dev, 0, LS, 10, 1024, MIB, &err), -1);
    ck_assert_str_eq(err.msg, "sanlock geometry 1024-byte sectors, 1048576-byte alignment is "
                              "invalid");
    ck_assert_int_eq(keel_sanlock_write_resource(dev, 0, LS, LS LS, 512, MIB, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    keel_blockdev_close(dev);
    unlink(path);
    free(url);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sanlock_fmt");
    TCase *tc = tcase_create("sanlock_fmt");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, crc_vectors);
    tcase_add_test(tc, leader_vectors);
    tcase_add_test(tc, areas_roundtrip);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

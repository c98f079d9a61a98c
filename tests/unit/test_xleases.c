/*
 * Unit tests of metadata/xleases: VDSM's external lease index, formatted
 * and parsed (ovirt-storage-format.md 7.3).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "metadata/xleases.h"

#define LS "3f1c2c5e-8a1b-4c2d-9e3f-0123456789ab"
#define MIB (UINT64_C(1) << 20)

START_TEST(encodings)
{
    unsigned char m[512], r[64];
    struct keel_xleases_record rec = { .id = "vm-lease-1", .offset = 4194304 };

    keel_xleases_meta_encode(LS, 1700000000, false, m);
    ck_assert(memcmp(m, "\x12\x15\x20\x16\0" "0001\0" LS, 10 + 36) == 0);
    ck_assert(memcmp(m + 58, "\0" "1700000000\0-", 13) == 0);
    ck_assert_int_eq(m[511], '\n');
    for (int i = 71; i < 511; i++)
        ck_assert_int_eq(m[i], 0);
    keel_xleases_record_encode(&rec, r);
    ck_assert(memcmp(r, "vm-lease-1", 10) == 0);
    ck_assert(memcmp(r + 48, "\0" "00004194304\0--\n", 16) == 0);
}
END_TEST

START_TEST(format_and_parse)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char path[] = "/tmp/keel-xleases-XXXXXX", *url;
    struct keel_blockdev *dev = NULL;
    struct keel_xleases_index *idx = calloc(1, sizeof(*idx));
    unsigned char *buf = calloc(1, KEEL_XLEASES_INDEX_SIZE);
    int fd = mkstemp(path);
    FILE *f;

    ck_assert(fd >= 0);
    ck_assert_int_eq(ftruncate(fd, MIB + KEEL_XLEASES_INDEX_SIZE), 0);
    close(fd);
    url = keel_strdup_printf("file://%s", path);
    ck_assert_msg(keel_blockdev_open(url, NULL, &dev, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(KEEL_XLEASES_MAX_RECORDS, 3960);
    ck_assert_msg(keel_xleases_format(dev, 0, LS, MIB, 1700000000, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_xleases_read(dev, 0, MIB, idx, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(idx->lockspace, LS);
    ck_assert_uint_eq(idx->mtime, 1700000000);
    ck_assert(!idx->updating);
    ck_assert_uint_eq(idx->nused, 0);
    keel_blockdev_close(dev);

    /* Damage is named. */
    f = fopen(path, "rb");
    ck_assert_int_eq(fseek(f, (long)MIB, SEEK_SET), 0);
    ck_assert_uint_eq(fread(buf, 1, KEEL_XLEASES_INDEX_SIZE, f), KEEL_XLEASES_INDEX_SIZE);
    fclose(f);
    buf[512 + 64 * 7 + 50] = 'x';
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    ck_assert_str_eq(err.msg, "xleases index: bad record 7");
    buf[0] = 0;
    ck_assert_int_eq(keel_xleases_parse(buf, KEEL_XLEASES_INDEX_SIZE, idx, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    ck_assert_str_eq(err.msg, "xleases index: bad magic 0x00152016");
    ck_assert_int_eq(keel_xleases_parse(buf, 100, idx, &err), -1);
    unlink(path);
    free(url);
    free(idx);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xleases");
    TCase *tc = tcase_create("xleases");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, encodings);
    tcase_add_test(tc, format_and_parse);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Unit tests of common/: the error type, log switches, number parsing. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/strutil.h"

START_TEST(set_and_prefix)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_int_eq(keel_error_set(&err, KEEL_E_CHECKSUM, 0, "metadata checksum mismatch"), -1);
    ck_assert_int_eq(keel_error_prefix(&err, "storage domain %s", "5e1c"), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_str_eq(err.msg, "storage domain 5e1c: metadata checksum mismatch");
    ck_assert_str_eq(keel_errc_name(err.code), "format.checksum");
    keel_error_errno(&err, KEEL_E_IO, ENOENT, "open '%s'", "x");
    ck_assert_str_eq(err.msg, "open 'x': No such file or directory");
    ck_assert_int_eq(err.sys_errno, ENOENT);
    keel_error_clear(&err);
    ck_assert_int_eq(err.code, KEEL_OK);
    ck_assert_str_eq(err.msg, "");
    /* NULL is accepted everywhere. */
    ck_assert_int_eq(keel_error_set(NULL, KEEL_E_IO, 0, "x"), -1);
    ck_assert_int_eq(keel_error_prefix(NULL, "x"), -1);
}
END_TEST

START_TEST(long_messages_are_cut)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char big[2 * KEEL_ERR_MSG];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    keel_error_set(&err, KEEL_E_IO, 0, "%s", big);
    ck_assert_uint_eq(strlen(err.msg), KEEL_ERR_MSG - 1);
    keel_error_prefix(&err, "ctx");
    ck_assert_uint_eq(strlen(err.msg), KEEL_ERR_MSG - 1);
    ck_assert(strncmp(err.msg, "ctx: xxx", 8) == 0);
}
END_TEST

START_TEST(errno_mapping)
{
    ck_assert_int_eq(keel_errc_from_errno(ENOENT), KEEL_E_NOENT);
    ck_assert_int_eq(keel_errc_from_errno(EEXIST), KEEL_E_EXIST);
    ck_assert_int_eq(keel_errc_from_errno(ETIMEDOUT), KEEL_E_TIMEOUT);
    ck_assert_int_eq(keel_errc_from_errno(ECONNREFUSED), KEEL_E_CONNECT);
    ck_assert_int_eq(keel_errc_from_errno(EIO), KEEL_E_IO);
    ck_assert_str_eq(keel_errc_name((enum keel_errc)9999), "unknown");
}
END_TEST

START_TEST(debug_switches)
{
    ck_assert(!keel_debug_enabled("io.iscsi"));
    ck_assert_int_eq(keel_log_enable_debug("io=1"), 0);
    ck_assert(keel_debug_enabled("io.iscsi"));
    ck_assert(keel_debug_enabled("io"));
    ck_assert(!keel_debug_enabled("iox"));
    ck_assert(!keel_debug_enabled("metadata.lvm"));
    ck_assert_int_eq(keel_log_enable_debug("io=0"), 0);
    ck_assert(!keel_debug_enabled("io.iscsi"));
    ck_assert_int_eq(keel_log_enable_debug("io=2"), -1);
    ck_assert_int_eq(keel_log_enable_debug("all"), 0);
    ck_assert(keel_debug_enabled("anything.at.all"));
}
END_TEST

START_TEST(numbers)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint64_t v = 7;

    ck_assert_int_eq(keel_parse_u64("18446744073709551615", &v), 0);
    ck_assert(v == UINT64_MAX);
    ck_assert_int_eq(keel_parse_u64("18446744073709551616", &v), -1);
    ck_assert_int_eq(keel_parse_u64("-1", &v), -1);
    ck_assert_int_eq(keel_parse_u64("12x", &v), -1);
    ck_assert_int_eq(keel_parse_u64("", &v), -1);
    ck_assert_int_eq(keel_parse_size("128M", &v, &err), 0);
    ck_assert(v == 128u << 20);
    ck_assert_int_eq(keel_parse_size("1GiB", &v, &err), 0);
    ck_assert(v == 1u << 30);
    ck_assert_int_eq(keel_parse_size("2t", &v, &err), 0);
    ck_assert(v == UINT64_C(2) << 40);
    ck_assert_int_eq(keel_parse_size("4q", &v, &err), -1);
    ck_assert_str_eq(err.msg, "size '4q': unknown suffix");
    ck_assert_int_eq(keel_parse_size("99999999999999T", &v, &err), -1);
    ck_assert_str_eq(err.msg, "size '99999999999999T': too large");
}
END_TEST

START_TEST(strlcpy_cuts)
{
    char b[4];

    ck_assert_uint_eq(keel_strlcpy(b, "abcdef", sizeof(b)), 6);
    ck_assert_str_eq(b, "abc");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("common");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, set_and_prefix);
    tcase_add_test(tc, long_messages_are_cut);
    tcase_add_test(tc, errno_mapping);
    tcase_add_test(tc, debug_switches);
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, strlcpy_cuts);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* Unit tests of common/utf8: Python's strict decoder, and encoding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

START_TEST(decoding)
{
    uint32_t cp = 0;

    ck_assert(keel_utf8_valid("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", 14));
    ck_assert_uint_eq(keel_utf8_next((const unsigned char *)"\xe2\x9c\x93", 3, &cp), 3);
    ck_assert_uint_eq(cp, 0x2713);
    ck_assert_uint_eq(keel_utf8_next((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x10ffff);
    ck_assert(keel_utf8_valid("a\0b", 3));                    /* NUL is a code point */
    ck_assert(!keel_utf8_valid("\xc0\xaf", 2));               /* overlong '/' */
    ck_assert(!keel_utf8_valid("\xe0\x80\xaf", 3));           /* overlong, 3 bytes */
    ck_assert(!keel_utf8_valid("\xed\xa0\x80", 3));           /* surrogate U+D800 */
    ck_assert(!keel_utf8_valid("\xf4\x90\x80\x80", 4));       /* past U+10FFFF */
    ck_assert(!keel_utf8_valid("\xf5\x80\x80\x80", 4));
    ck_assert(!keel_utf8_valid("\xe2\x9c", 2));               /* cut short */
    ck_assert(!keel_utf8_valid("\xe2\x28\x93", 3));           /* bad continuation */
    ck_assert(!keel_utf8_valid("\x80", 1));                   /* lone continuation */
}
END_TEST

START_TEST(encoding)
{
    static const uint32_t cps[] = { 0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff };

    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        char b[4];
        uint32_t back = 0;
        size_t n = keel_utf8_encode(cps[i], b);

        ck_assert_uint_eq(keel_utf8_next((const unsigned char *)b, n, &back), n);
        ck_assert_uint_eq(back, cps[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, decoding);
    tcase_add_test(tc, encoding);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

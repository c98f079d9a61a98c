/*
 * Unit tests of metadata/journal_fmt.c, the SPM journal's records: the
 * byte layout (fields read back at their documented offsets), round trips,
 * and every kind of damage the decoder must name.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "metadata/journal_fmt.h"
#include "metadata/sanlock_fmt.h"

static struct keel_jrec sample(void)
{
    struct keel_jrec r = { .seq = 0x0102030405060708ull, .lver = 7, .host_id = 2,
                           .state = KEEL_JREC_OPEN, .step = 3 };
    struct keel_error err = KEEL_ERROR_INIT;

    keel_strlcpy(r.op, "volume.create", sizeof(r.op));
    ck_assert_int_eq(keel_jrec_add_arg(&r, "volume", "aaaaaaaa-0000-4000-8000-00000000000a",
                                       &err), 0);
    ck_assert_int_eq(keel_jrec_add_arg(&r, "slot", "12", &err), 0);
    return r;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Recompute the checksum after tampering with a field, so the field check is what fails. */
static void reseal(unsigned char *b)
{
    uint32_t c = ~keel_crc32c(~0u, b + 12, KEEL_JREC_SIZE - 12);

    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(c >> (8 * i));
}

START_TEST(layout_and_round_trip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_jrec r = sample(), back;
    unsigned char *b = calloc(1, KEEL_JREC_SIZE);
    char v[64];

    ck_assert_int_eq(keel_jrec_encode(&r, b, &err), 0);
    ck_assert_int_eq(memcmp(b, "KEELJRN1", 8), 0);
    ck_assert_uint_eq(le32(b + 8), ~keel_crc32c(~0u, b + 12, KEEL_JREC_SIZE - 12));
    ck_assert_uint_eq(le32(b + 12), 1);
    ck_assert_uint_eq(le64(b + 16), 0x0102030405060708ull);
    ck_assert_uint_eq(le64(b + 24), 7);
    ck_assert_uint_eq(le64(b + 32), 2);
    ck_assert_uint_eq(le32(b + 40), 1);
    ck_assert_uint_eq(le32(b + 44), 3);
    ck_assert_str_eq((const char *)b + 48, "volume.create");
    ck_assert_uint_eq(le32(b + 80), strlen(r.args));
    ck_assert_int_eq(memcmp(b + 84, "volume=aaaaaaaa-0000-4000-8000-00000000000a\nslot=12\n",
                            strlen(r.args)), 0);
    ck_assert_int_eq(b[84 + strlen(r.args)], 0);

    ck_assert_msg(keel_jrec_decode(b, "slot 0", &back, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(back.seq, r.seq);
    ck_assert_uint_eq(back.lver, 7);
    ck_assert_uint_eq(back.host_id, 2);
    ck_assert_int_eq(back.state, KEEL_JREC_OPEN);
    ck_assert_uint_eq(back.step, 3);
    ck_assert_str_eq(back.op, "volume.create");
    ck_assert_str_eq(back.args, r.args);
    ck_assert_str_eq(keel_jrec_arg(&back, "slot", v, sizeof(v)), "12");
    ck_assert_str_eq(keel_jrec_arg(&back, "volume", v, sizeof(v)),
                     "aaaaaaaa-0000-4000-8000-00000000000a");
    ck_assert_ptr_null(keel_jrec_arg(&back, "vol", v, sizeof(v)));
    ck_assert_ptr_null(keel_jrec_arg(&back, "image", v, sizeof(v)));
    free(b);
}
END_TEST

START_TEST(blank_is_free)
{
    struct keel_error err = KEEL_ERROR_INIT;
    unsigned char *b = calloc(1, KEEL_JREC_SIZE);
    struct keel_jrec r;

    ck_assert_int_eq(keel_jrec_decode(b, "slot 0", &r, &err), 0);
    ck_assert_int_eq(r.state, KEEL_JREC_FREE);
    ck_assert_uint_eq(r.seq, 0);
    free(b);
}
END_TEST

START_TEST(damage_is_named)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_jrec r = sample(), back;
    unsigned char *b = calloc(1, KEEL_JREC_SIZE), *c = calloc(1, KEEL_JREC_SIZE);

    ck_assert_int_eq(keel_jrec_encode(&r, b, &err), 0);

    memcpy(c, b, KEEL_JREC_SIZE);
    c[4000] ^= 1; /* a bit flipped anywhere after the checksum */
    ck_assert_int_eq(keel_jrec_decode(c, "journal slot 3 copy 1", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_str_eq(err.msg, "journal slot 3 copy 1: checksum mismatch");

    memcpy(c, b, KEEL_JREC_SIZE);
    c[0] = 'X';
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);

    memcpy(c, b, KEEL_JREC_SIZE);
    c[12] = 2;
    reseal(c);
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_VERSION);
    ck_assert_str_eq(err.msg, "s: version 2 (know 1)");

    memcpy(c, b, KEEL_JREC_SIZE);
    c[40] = 9;
    reseal(c);
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);

    memcpy(c, b, KEEL_JREC_SIZE);
    c[80] = 0xff, c[81] = 0xff; /* arguments longer than the record */
    reseal(c);
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_str_eq(err.msg, "s: bad arguments");

    memcpy(c, b, KEEL_JREC_SIZE);
    c[90] = 0x01; /* a control byte in the arguments */
    reseal(c);
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_str_eq(err.msg, "s: bad arguments");

    memcpy(c, b, KEEL_JREC_SIZE);
    memset(c + 48, 'a', 32); /* a name without its NUL */
    reseal(c);
    ck_assert_int_eq(keel_jrec_decode(c, "s", &back, &err), -1);
    ck_assert_str_eq(err.msg, "s: bad operation name");
    free(b);
    free(c);
}
END_TEST

START_TEST(encode_refuses_bad_text)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_jrec r = sample();
    unsigned char *b = calloc(1, KEEL_JREC_SIZE);
    char big[KEEL_JREC_ARGS_MAX];

    ck_assert_int_eq(keel_jrec_add_arg(&r, "a=b", "x", &err), -1);
    ck_assert_int_eq(keel_jrec_add_arg(&r, "k", "line\nbreak", &err), -1);
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(keel_jrec_add_arg(&r, "k", big, &err), -1);
    ck_assert_str_eq(err.msg, "journal record: arguments too long");
    r.op[0] = '\0';
    ck_assert_int_eq(keel_jrec_encode(&r, b, &err), -1);
    keel_strlcpy(r.op, "volume\tcreate", sizeof(r.op));
    ck_assert_int_eq(keel_jrec_encode(&r, b, &err), -1);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal_fmt");
    TCase *tc = tcase_create("journal_fmt");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, layout_and_round_trip);
    tcase_add_test(tc, blank_is_free);
    tcase_add_test(tc, damage_is_named);
    tcase_add_test(tc, encode_refuses_bad_text);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

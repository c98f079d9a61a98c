/*
 * Unit tests of metadata/vol_md: oVirt volume metadata, V4 and V5, file
 * and block slot forms.  Golden data in tests/data/volmd/ (see its README).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/vol_md.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/volmd/%s", getenv("KEEL_TEST_DATA"), name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

START_TEST(v5_observed_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    size_t len, n;
    char *text = slurp("v5_observed.meta", &len), out[513];

    ck_assert_msg(keel_vol_md_parse(text, len, &md, &err) == 0, "%s", err.msg);
    ck_assert(!md.cleared);
    ck_assert_uint_eq(md.capacity, 1073741824);
    ck_assert_uint_eq(md.ctime, 1700000000);
    ck_assert_str_eq(md.description, "{\"DiskAlias\":\"vm1_Disk1\",\"DiskDescription\":\"\"}");
    ck_assert_str_eq(md.disktype, "DATA");
    ck_assert_str_eq(md.domain, "5f2d0c9e-3b6e-4c43-9c1a-1f6f0f0a0d01");
    ck_assert_int_eq(md.format, KEEL_VOL_COW);
    ck_assert_str_eq(md.image, "22222222-aaaa-4aaa-8aaa-000000000002");
    ck_assert_int_eq(md.legality, KEEL_VOL_LEGAL);
    ck_assert_str_eq(md.parent, "11111111-bbbb-4bbb-8bbb-000000000001");
    ck_assert_int_eq(md.type, KEEL_VOL_SPARSE);
    ck_assert_int_eq(md.role, KEEL_VOL_INTERNAL);
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    ck_assert_uint_eq(n, len);
    ck_assert_str_eq(out, text);
    free(text);
}
END_TEST

START_TEST(v5_slot)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    unsigned char slot[512];
    size_t len;
    char *bin = slurp("v5_slot.bin", &len);

    ck_assert_uint_eq(len, 512);
    ck_assert_msg(keel_vol_md_parse(bin, len, &md, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 5, slot, &err), 0);
    ck_assert(memcmp(slot, bin, 512) == 0);
    ck_assert_uint_eq(keel_vol_md_slot_offset(5, 1), 1048576 + 8192);
    ck_assert_uint_eq(keel_vol_md_slot_offset(4, 4), 2048);
    ck_assert_uint_eq(keel_vol_md_first_slot(5), 1);
    ck_assert_uint_eq(keel_vol_md_first_slot(4), 4);
    /* An empty slot is not metadata. */
    memset(slot, 0, sizeof(slot));
    ck_assert_int_eq(keel_vol_md_parse((char *)slot, 512, &md, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    free(bin);
}
END_TEST

START_TEST(v4_read_and_convert)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    size_t len, n;
    char *text = slurp("v4_raw.meta", &len), out[513];

    ck_assert_msg(keel_vol_md_parse(text, len, &md, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(md.capacity, 2097152ull * 512);
    ck_assert_uint_eq(md.gen, 3);
    ck_assert_uint_eq(md.seq, 0);
    ck_assert_str_eq(md.disktype, "2");
    ck_assert_str_eq(md.parent, KEEL_BLANK_UUID);
    ck_assert_int_eq(md.type, KEEL_VOL_PREALLOCATED);
    /* V4 written back is VDSM's V4 text (POOL_UUID is not kept). */
    ck_assert_int_eq(keel_vol_md_format(&md, 4, out, sizeof(out), &n, &err), 0);
    ck_assert(strstr(out, "MTIME=0\nPUUID=") != NULL);
    ck_assert(strstr(out, "SIZE=2097152\n") != NULL);
    ck_assert(strstr(out, "POOL_UUID") == NULL);
    /* And as V5: CAP in bytes, SEQ, no SIZE/MTIME. */
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    ck_assert(keel_vol_md_parse(out, n, &md, &err) == 0);
    ck_assert(strncmp(out, "CAP=1073741824\n", 15) == 0);
    ck_assert(strstr(out, "SIZE=") == NULL && strstr(out, "MTIME") == NULL);
    ck_assert(strstr(out, "\nSEQ=0\n") != NULL);
    /* CAP wins over SIZE when both are there (a half-converted domain). */
    {
        char both[600];

        snprintf(both, sizeof(both), "CAP=4096\n%s", text);
        ck_assert_int_eq(keel_vol_md_parse(both, strlen(both), &md, &err), 0);
        ck_assert_uint_eq(md.capacity, 4096);
    }
    free(text);
}
END_TEST

START_TEST(cleared_form)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    size_t len;
    char *bin = slurp("none_cleared.bin", &len);

    ck_assert_int_eq(keel_vol_md_parse(bin, len, &md, &err), 0);
    ck_assert(md.cleared);
    ck_assert_int_eq(keel_vol_md_format(&md, 5, bin, len, NULL, &err), -1);
    free(bin);
}
END_TEST

/* Parse the golden V5 text with one line replaced (or removed: with == NULL). */
static int parse_with(const char *key, const char *with, struct keel_error *err)
{
    struct keel_vol_md md;
    size_t len;
    char *text = slurp("v5_observed.meta", &len), out[1200] = "";
    char *save = NULL;
    size_t o = 0;
    int rc;

    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, key, strlen(key)) == 0 && l[strlen(key)] == '=') {
            if (with != NULL)
                o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", with);
            continue;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", l);
    }
    rc = keel_vol_md_parse(out, strlen(out), &md, err);
    free(text);
    return rc;
}

START_TEST(refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    char buf[600];

    ck_assert_int_eq(parse_with("EOF", NULL, &err), 0); /* EOF is not KEY=: kept */
    {
        size_t len;
        char *text = slurp("v5_observed.meta", &len);

        text[len - 4] = '\0'; /* cut "EOF\n" */
        ck_assert_int_eq(keel_vol_md_parse(text, len - 4, &md, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_FORMAT);
        ck_assert_str_eq(err.msg, "volume metadata: missing EOF");
        free(text);
    }
    ck_assert_int_eq(parse_with("FORMAT", "FORMAT=QCOW", &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: FORMAT=\"QCOW\" is not RAW or COW");
    ck_assert_int_eq(parse_with("IMAGE", NULL, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: IMAGE is missing");
    ck_assert_int_eq(parse_with("PUUID", "PUUID=not-a-uuid", &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: PUUID=\"not-a-uuid\" is not a UUID");
    ck_assert_int_eq(parse_with("CAP", "CAP=0", &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: CAP=\"0\" is not valid");
    ck_assert_int_eq(parse_with("CAP", NULL, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: CAP is missing");
    ck_assert_int_eq(parse_with("GEN", "GEN=1000", &err), -1);
    ck_assert_int_eq(parse_with("GEN", NULL, &err), 0); /* GEN and SEQ may be absent */
    ck_assert_int_eq(parse_with("SEQ", NULL, &err), 0);
    /* Overflow: a description that does not fit 512 bytes with the rest. */
    ck_assert_int_eq(parse_with("GEN", NULL, &err), 0);
    {
        size_t len;
        char *text = slurp("v5_observed.meta", &len);

        ck_assert_int_eq(keel_vol_md_parse(text, len, &md, &err), 0);
        memset(md.description, 'x', KEEL_VOL_MD_DESCRIPTION_MAX);
        md.description[KEEL_VOL_MD_DESCRIPTION_MAX] = '\0';
        ck_assert_int_eq(keel_vol_md_format(&md, 5, buf, sizeof(buf), NULL, &err), 0);
        memcpy(md.disktype, "DATADATADATADAT", 16);
        ck_assert_int_eq(keel_vol_md_format(&md, 5, buf, sizeof(buf), NULL, &err), 0);
        md.capacity = UINT64_MAX - 1;
        md.ctime = UINT64_MAX - 1;
        md.seq = UINT32_MAX;
        ck_assert_int_eq(keel_vol_md_format(&md, 5, buf, sizeof(buf), NULL, &err), 0);
        md.gen = 999;
        ck_assert_int_eq(keel_vol_md_format(&md, 5, buf, sizeof(buf), NULL, &err), 0);
        md.legality = KEEL_VOL_ILLEGAL; /* 514 bytes: over */
        ck_assert_int_eq(keel_vol_md_format(&md, 5, buf, sizeof(buf), NULL, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_RANGE);
        ck_assert(strncmp(err.msg, "volume metadata overflow", 24) == 0);
        free(text);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vol_md");
    TCase *tc = tcase_create("vol_md");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, v5_observed_roundtrip);
    tcase_add_test(tc, v5_slot);
    tcase_add_test(tc, v4_read_and_convert);
    tcase_add_test(tc, cleared_form);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

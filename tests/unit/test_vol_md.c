/*
 * Unit tests of metadata/vol_md: oVirt volume metadata, V4 and V5, file
 * and block slot forms (../shared/specs/ovirt-storage-format.md sections
 * 4.4, 5.1, 5.2).  Golden data in tests/data/volmd/ (see its README).
 * KEEL_TEST_REGENERATE=1 rewrites the expected formatter output
 * (the *.v4.meta and *.v5.meta files); the inputs are never rewritten.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/vol_md.h"
#include "tests/unit/testdata.h"

static char *slurp(const char *name, size_t *len)
{
    return keel_test_data("volmd", name, len);
}

/* Compare formatter output with golden file name, or rewrite it when regenerating. */
static void expect_golden(const char *name, const char *out, size_t len)
{
    const char *regen = getenv("KEEL_TEST_REGENERATE");
    size_t glen;
    char *golden;

    if (regen != NULL && strcmp(regen, "1") == 0) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/volmd/%s", getenv("KEEL_TEST_DATA"), name);
        f = fopen(path, "wb");
        ck_assert_msg(f != NULL, "cannot write %s", path);
        ck_assert_uint_eq(fwrite(out, 1, len, f), len);
        fclose(f);
        return;
    }
    golden = slurp(name, &glen);
    ck_assert_msg(glen == len && memcmp(golden, out, len) == 0,
                  "%s differs (KEEL_TEST_REGENERATE=1 rewrites it); got:\n%.*s", name, (int)len,
                  out);
    free(golden);
}

/* Set a string field of a struct keel_vol_md. */
#define SET(field, value) snprintf((field), sizeof(field), "%s", (value))

/* Parse NUL-terminated text; on failure keep the error in *err. */
static int parse_str(const char *text, struct keel_vol_md *md, struct keel_error *err)
{
    return keel_vol_md_parse(text, strlen(text), md, err);
}

/* The parse must fail with this code and exactly this message. */
#define assert_refused(text, ecode, emsg)                                                     \
    do {                                                                                      \
        struct keel_error e_ = KEEL_ERROR_INIT;                                               \
        struct keel_vol_md m_;                                                                \
        ck_assert_int_eq(parse_str((text), &m_, &e_), -1);                                    \
        ck_assert_int_eq(e_.code, (ecode));                                                   \
        ck_assert_str_eq(e_.msg, (emsg));                                                     \
    } while (0)

/*
 * The golden V5 text with the line of key replaced by with (with == NULL:
 * removed), or the whole text when key is NULL.  Caller frees.
 */
static char *v5_with(const char *key, const char *with)
{
    size_t len, o = 0;
    char *text = slurp("v5_observed.meta", &len), *out = malloc(2048);
    const char *l = text;

    out[0] = '\0';
    while (*l != '\0') {
        const char *nl = strchr(l, '\n');
        size_t n = (size_t)(nl - l);

        if (key != NULL && strncmp(l, key, strlen(key)) == 0 &&
            (l[strlen(key)] == '=' || l[strlen(key)] == '\n')) {
            if (with != NULL)
                o += (size_t)snprintf(out + o, 2048 - o, "%s\n", with);
        } else {
            o += (size_t)snprintf(out + o, 2048 - o, "%.*s\n", (int)n, l);
        }
        l = nl + 1;
    }
    free(text);
    return out;
}

/* Section 5.2 [observed]: parse, then format gives the same bytes. */
START_TEST(v5_observed_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md, md2;
    size_t len, n;
    char *text = slurp("v5_observed.meta", &len), out[KEEL_VOL_MD_SIZE + 1];

    ck_assert_msg(keel_vol_md_parse(text, len, &md, &err) == 0, "%s", err.msg);
    ck_assert(!md.cleared);
    ck_assert_uint_eq(md.capacity, 1073741824);
    ck_assert_uint_eq(md.ctime, 1700000000);
    ck_assert_str_eq(md.description, "{\"DiskAlias\":\"vm1_Disk1\",\"DiskDescription\":\"\"}");
    ck_assert_str_eq(md.disktype, "DATA");
    ck_assert_str_eq(md.domain, "5f2d0c9e-3b6e-4c43-9c1a-1f6f0f0a0d01");
    ck_assert_int_eq(md.format, KEEL_VOL_COW);
    ck_assert_uint_eq(md.gen, 0);
    ck_assert_str_eq(md.image, "22222222-aaaa-4aaa-8aaa-000000000002");
    ck_assert_int_eq(md.legality, KEEL_VOL_LEGAL);
    ck_assert_str_eq(md.parent, "11111111-bbbb-4bbb-8bbb-000000000001");
    ck_assert_uint_eq(md.seq, 0);
    ck_assert_int_eq(md.type, KEEL_VOL_SPARSE);
    ck_assert_int_eq(md.role, KEEL_VOL_INTERNAL);
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    ck_assert_uint_eq(n, len);
    ck_assert(memcmp(out, text, len) == 0);
    ck_assert_uint_eq(out[n], '\0');
    /* And the text reads back as the same struct. */
    ck_assert_int_eq(keel_vol_md_parse(out, n, &md2, &err), 0);
    ck_assert(keel_vol_md_equal(&md, &md2));
    md2.seq = 1;
    ck_assert(!keel_vol_md_equal(&md, &md2));
    /* len may be NULL. */
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), NULL, &err), 0);
    ck_assert_str_eq(out, text);
    free(text);
}
END_TEST

/* Section 4.4: the block form, NUL-padded to 512 bytes, both ways. */
START_TEST(v5_slot)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md, md2;
    unsigned char slot[KEEL_VOL_MD_SIZE];
    size_t len, tlen;
    char *bin = slurp("v5_slot.bin", &len), *text = slurp("v5_observed.meta", &tlen);

    ck_assert_uint_eq(len, KEEL_VOL_MD_SIZE);
    ck_assert_msg(keel_vol_md_parse(bin, len, &md, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_vol_md_parse(text, tlen, &md2, &err), 0);
    ck_assert(keel_vol_md_equal(&md, &md2));
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 5, slot, &err), 0);
    ck_assert(memcmp(slot, bin, KEEL_VOL_MD_SIZE) == 0);
    /* The slot is overwritten whole (no stale tail). */
    memset(slot, 'x', sizeof(slot));
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 5, slot, &err), 0);
    ck_assert(memcmp(slot, bin, KEEL_VOL_MD_SIZE) == 0);
    /* V4 slot: the V4 text, padded the same way. */
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 4, slot, &err), 0);
    ck_assert(memcmp(slot, "CTIME=1700000000\n", 17) == 0);
    ck_assert_uint_eq(slot[KEEL_VOL_MD_SIZE - 1], 0);
    ck_assert_int_eq(keel_vol_md_parse((const char *)slot, sizeof(slot), &md2, &err), 0);
    ck_assert(keel_vol_md_equal(&md, &md2));
    /* An all-NUL slot was never written: not metadata, and not a format error. */
    memset(slot, 0, sizeof(slot));
    ck_assert_int_eq(keel_vol_md_parse((const char *)slot, sizeof(slot), &md, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOENT);
    ck_assert_str_eq(err.msg, "volume metadata: empty");
    free(bin);
    free(text);
}
END_TEST

START_TEST(slot_offsets)
{
    ck_assert_uint_eq(KEEL_VOL_MD_SIZE, 512);
    ck_assert_uint_eq(keel_vol_md_slot_offset(5, 0), 1048576);
    ck_assert_uint_eq(keel_vol_md_slot_offset(5, 1), 1048576 + 8192);
    ck_assert_uint_eq(keel_vol_md_slot_offset(5, 1947), 1048576 + 1947ull * 8192);
    ck_assert_uint_eq(keel_vol_md_slot_offset(4, 4), 2048);
    ck_assert_uint_eq(keel_vol_md_slot_offset(4, 1947), 1947ull * 512);
    ck_assert_uint_eq(keel_vol_md_slot_offset(3, 5), 2560);
    ck_assert_uint_eq(keel_vol_md_first_slot(5), 1);
    ck_assert_uint_eq(keel_vol_md_first_slot(4), 4);
    ck_assert_uint_eq(keel_vol_md_first_slot(3), 4);
    /* The last V4 slot ends before the V5 area begins. */
    ck_assert_uint_le(keel_vol_md_slot_offset(4, 2047) + KEEL_VOL_MD_SIZE, KEEL_VOL_MD_V5_AREA);
}
END_TEST

/* A V4 volume (SIZE in sectors, MTIME, POOL_UUID, DISKTYPE 2), written as V4 and as V5. */
START_TEST(v4_read_and_convert)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md, md2;
    size_t len, n;
    char *text = slurp("v4_raw.meta", &len), out[KEEL_VOL_MD_SIZE + 1];

    ck_assert_msg(keel_vol_md_parse(text, len, &md, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(md.capacity, 2097152ull * 512);
    ck_assert_uint_eq(md.ctime, 1500000000);
    ck_assert_str_eq(md.description, "old disk");
    ck_assert_uint_eq(md.gen, 3);
    ck_assert_uint_eq(md.seq, 0);
    ck_assert_str_eq(md.disktype, "2");
    ck_assert_int_eq(md.format, KEEL_VOL_RAW);
    ck_assert_str_eq(md.parent, KEEL_BLANK_UUID);
    ck_assert_int_eq(md.type, KEEL_VOL_PREALLOCATED);
    ck_assert_int_eq(md.role, KEEL_VOL_LEAF);

    /* V4 as VDSM >= 4.3 writes it: no POOL_UUID; MTIME=0 and SIZE in place. */
    ck_assert_int_eq(keel_vol_md_format(&md, 4, out, sizeof(out), &n, &err), 0);
    expect_golden("v4_raw.v4.meta", out, n);
    ck_assert(strstr(out, "\nLEGALITY=LEGAL\nMTIME=0\nPUUID=") != NULL);
    ck_assert(strstr(out, "\nSIZE=2097152\nTYPE=") != NULL);
    ck_assert(strstr(out, "POOL_UUID") == NULL && strstr(out, "CAP=") == NULL);
    ck_assert(strstr(out, "SEQ=") == NULL);
    ck_assert_int_eq(keel_vol_md_parse(out, n, &md2, &err), 0);
    ck_assert(keel_vol_md_equal(&md, &md2));

    /* Converted to V5: CAP in bytes and SEQ; no SIZE, no MTIME. */
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    expect_golden("v4_raw.v5.meta", out, n);
    ck_assert(strncmp(out, "CAP=1073741824\nCTIME=", 21) == 0);
    ck_assert(strstr(out, "SIZE=") == NULL && strstr(out, "MTIME") == NULL);
    ck_assert(strstr(out, "\nPUUID=" KEEL_BLANK_UUID "\nSEQ=0\nTYPE=") != NULL);
    ck_assert_int_eq(keel_vol_md_parse(out, n, &md2, &err), 0);
    ck_assert(keel_vol_md_equal(&md, &md2));

    /* CAP wins over SIZE when both are there (a half-converted domain). */
    {
        char both[KEEL_VOL_MD_SIZE + 64];

        snprintf(both, sizeof(both), "CAP=4096\n%s", text);
        ck_assert_int_eq(parse_str(both, &md2, &err), 0);
        ck_assert_uint_eq(md2.capacity, 4096);
    }
    /* ... and SIZE is then not even looked at. */
    {
        char *t = v5_with("SEQ", "SEQ=0\nSIZE=junk");

        ck_assert_int_eq(parse_str(t, &md2, &err), 0);
        ck_assert_uint_eq(md2.capacity, 1073741824);
        free(t);
    }
    /* SIZE alone in V5-looking text still counts (CAP missing, SIZE there). */
    {
        char *t = v5_with("CAP", "SIZE=8");

        ck_assert_int_eq(parse_str(t, &md2, &err), 0);
        ck_assert_uint_eq(md2.capacity, 4096);
        free(t);
    }
    /* V4 cannot hold a capacity that is not whole sectors. */
    md.capacity = 1000;
    ck_assert_int_eq(keel_vol_md_format(&md, 4, out, sizeof(out), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "volume metadata: capacity 1000 is not a multiple of 512 (V4)");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    free(text);
}
END_TEST

/* Section 5.1: "NONE=" + 502 '#' + "\nEOF\n", VDSM < 4.2.5's deleted volume. */
START_TEST(cleared_form)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md;
    size_t len;
    char *bin = slurp("none_cleared.bin", &len), out[KEEL_VOL_MD_SIZE + 1];
    unsigned char slot[KEEL_VOL_MD_SIZE];

    ck_assert_uint_eq(len, 512);
    ck_assert_int_eq(keel_vol_md_parse(bin, len, &md, &err), 0);
    ck_assert(md.cleared);
    ck_assert_int_eq(md.legality, KEEL_VOL_ILLEGAL); /* safe for callers that do not look */
    ck_assert_uint_eq(md.capacity, 0);
    ck_assert_str_eq(md.image, "");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "volume metadata: cleared metadata cannot be written");
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 4, slot, &err), -1);
    /* A NONE key anywhere before EOF marks the form, whatever else is there. */
    {
        char *t = v5_with("GEN", "NONE=####");

        ck_assert_int_eq(parse_str(t, &md, &err), 0);
        ck_assert(md.cleared);
        free(t);
        t = v5_with("FORMAT", "NONE=#");    /* and invalid values do not matter */
        ck_assert_int_eq(parse_str(t, &md, &err), 0);
        ck_assert(md.cleared);
        free(t);
    }
    /* It still needs its EOF: cut, it is a torn write. */
    ck_assert_int_eq(keel_vol_md_parse(bin, len - 4, &md, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: missing EOF");
    free(bin);
}
END_TEST

/* What VDSM's reader accepts, Keel accepts the same way. */
START_TEST(lenient_reading)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md, ref;
    char *t, buf[1024], desc[KEEL_VOL_MD_SIZE];

    t = v5_with(NULL, NULL);
    ck_assert_int_eq(parse_str(t, &ref, &err), 0);
    free(t);

    /* White space around keys and values, CRLF lines, unknown keys, lines without '='. */
    t = v5_with("FORMAT", "  FORMAT \t=  COW \r\nPOOL_UUID=\nMTIME=0\nFUTURE_KEY=1\njunk line");
    ck_assert_msg(parse_str(t, &md, &err) == 0, "%s", err.msg);
    ck_assert(keel_vol_md_equal(&md, &ref));
    free(t);
    /* Python's strip() also removes non-ASCII white space (U+00A0, U+3000). */
    t = v5_with("DISKTYPE", "DISKTYPE=\xc2\xa0" "DATA\xe3\x80\x80");
    ck_assert_msg(parse_str(t, &md, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(md.disktype, "DATA");
    free(t);
    /* A repeated key keeps its last value; only that one is checked. */
    t = v5_with("FORMAT", "FORMAT=QCOW\nFORMAT=RAW");
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    ck_assert_int_eq(md.format, KEEL_VOL_RAW);
    free(t);
    /* GEN and SEQ may be absent: 0. */
    t = v5_with("GEN", NULL);
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    ck_assert_uint_eq(md.gen, 0);
    free(t);
    t = v5_with("SEQ", NULL);
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    ck_assert_uint_eq(md.seq, 0);
    free(t);
    /* Any line starting with EOF ends the text; what follows is never read. */
    t = v5_with("EOF", "EOF-and-more\nFORMAT=QCOW\n\xff\xfe");
    ck_assert_msg(parse_str(t, &md, &err) == 0, "%s", err.msg);
    ck_assert(keel_vol_md_equal(&md, &ref));
    free(t);
    /* No final newline after EOF. */
    t = v5_with(NULL, NULL);
    t[strlen(t) - 1] = '\0';
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    free(t);
    /* Numbers at their limits. */
    t = v5_with("SEQ", "SEQ=4294967295\nGEN=999");
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    ck_assert_uint_eq(md.seq, 4294967295u);
    ck_assert_uint_eq(md.gen, 999);
    free(t);
    /* An over-long DESCRIPTION is cut to 210 characters, as VDSM does. */
    memset(desc, 'd', 240);
    desc[240] = '\0';
    snprintf(buf, sizeof(buf), "DESCRIPTION=%s", desc);
    t = v5_with("DESCRIPTION", buf);
    ck_assert_msg(parse_str(t, &md, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(strlen(md.description), KEEL_VOL_MD_DESCRIPTION_MAX);
    free(t);
    /* Characters, not bytes: 120 two-byte characters (240 bytes) are kept whole. */
    for (int i = 0; i < 120; i++)
        memcpy(desc + 2 * i, "\xc3\xa9", 2);
    desc[240] = '\0';
    snprintf(buf, sizeof(buf), "DESCRIPTION=%s", desc);
    t = v5_with("DESCRIPTION", buf);
    ck_assert_msg(parse_str(t, &md, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(md.description, desc);
    free(t);
    /* Cut at 210 characters, then stripped: the cut never ends in white space. */
    memset(desc, 'd', 209);
    memset(desc + 209, ' ', 5);
    memcpy(desc + 214, "tail", 5);
    snprintf(buf, sizeof(buf), "DESCRIPTION=%s", desc);
    t = v5_with("DESCRIPTION", buf);
    ck_assert_int_eq(parse_str(t, &md, &err), 0);
    ck_assert_uint_eq(strlen(md.description), 209);
    free(t);
}
END_TEST

/* Errors: code and message text. */
START_TEST(refusals)
{
    char *t, big[700];

    /* EOF: missing, cut, or not at the start of its line. */
    t = v5_with("EOF", NULL);
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing EOF");
    free(t);
    t = v5_with("EOF", " EOF");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing EOF");
    free(t);
    t = v5_with("EOF", "EO");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing EOF");
    free(t);
    t = v5_with("EOF", "EOF\xff");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid UTF-8 in line 14");
    free(t);
    assert_refused("\n\n", KEEL_E_FORMAT, "volume metadata: missing EOF");
    assert_refused("", KEEL_E_NOENT, "volume metadata: empty");

    /* Values. */
    t = v5_with("FORMAT", "FORMAT=QCOW");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: unknown FORMAT \"QCOW\"");
    free(t);
    t = v5_with("FORMAT", "FORMAT=cow");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: unknown FORMAT \"cow\"");
    free(t);
    t = v5_with("TYPE", "TYPE=THIN");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: unknown TYPE \"THIN\"");
    free(t);
    t = v5_with("VOLTYPE", "VOLTYPE=ROOT");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: unknown VOLTYPE \"ROOT\"");
    free(t);
    t = v5_with("LEGALITY", "LEGALITY=");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: unknown LEGALITY \"\"");
    free(t);
    t = v5_with("PUUID", "PUUID=not-a-uuid");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid PUUID \"not-a-uuid\"");
    free(t);
    t = v5_with("IMAGE", "IMAGE=22222222-AAAA-4AAA-8AAA-000000000002"); /* upper case */
    assert_refused(t, KEEL_E_FORMAT,
                   "volume metadata: invalid IMAGE \"22222222-AAAA-4AAA-8AAA-000000000002\"");
    free(t);
    t = v5_with("DOMAIN", "DOMAIN=5f2d0c9e-3b6e-4c43-9c1a-1f6f0f0a0d01-and-a-long-tail-");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid DOMAIN "
                                     "\"5f2d0c9e-3b6e-4c43-9c1a-1f6f0f0a0d01-and...\"");
    free(t);
    t = v5_with("CAP", "CAP=0");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid CAP \"0\"");
    free(t);
    t = v5_with("CAP", "CAP=-1");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid CAP \"-1\"");
    free(t);
    t = v5_with("CAP", "CAP=18446744073709551616");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid CAP \"18446744073709551616\"");
    free(t);
    t = v5_with("CAP", "SIZE=0");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid SIZE \"0\"");
    free(t);
    t = v5_with("GEN", "GEN=1000");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid GEN \"1000\"");
    free(t);
    t = v5_with("SEQ", "SEQ=4294967296");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid SEQ \"4294967296\"");
    free(t);
    t = v5_with("CTIME", "CTIME=yesterday");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid CTIME \"yesterday\"");
    free(t);
    t = v5_with("DISKTYPE", "DISKTYPE=");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid DISKTYPE \"\"");
    free(t);
    t = v5_with("DISKTYPE", "DISKTYPE=DATA DISK");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid DISKTYPE \"DATA DISK\"");
    free(t);

    /* Missing keys, named; CAP may not be replaced by nothing. */
    t = v5_with("IMAGE", NULL);
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing IMAGE");
    free(t);
    t = v5_with("CAP", NULL);
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing CAP");
    free(t);
    t = v5_with("DESCRIPTION", NULL);
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing DESCRIPTION");
    free(t);
    t = v5_with("VOLTYPE", NULL);
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: missing VOLTYPE");
    free(t);
    /* The first error in key order, whatever the line order. */
    t = v5_with("VOLTYPE", "VOLTYPE=X\nCAP=0");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid CAP \"0\"");
    free(t);

    /* Bytes: UTF-8 (the key is named when known), NUL, size. */
    t = v5_with("DESCRIPTION", "DESCRIPTION=caf\xe9");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid UTF-8 in DESCRIPTION");
    free(t);
    t = v5_with("DESCRIPTION", "DESCRIPTION=\xed\xa0\x80"); /* a surrogate */
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid UTF-8 in DESCRIPTION");
    free(t);
    t = v5_with("DESCRIPTION", "DESCRIPTION=\xc0\xaf"); /* overlong '/' */
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid UTF-8 in DESCRIPTION");
    free(t);
    t = v5_with("GEN", "X\xff=1");
    assert_refused(t, KEEL_E_FORMAT, "volume metadata: invalid UTF-8 in line 7");
    free(t);
    {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_vol_md md;
        size_t n;

        t = v5_with(NULL, NULL);
        n = strlen(t);
        t[20] = '\0'; /* inside line 2 */
        ck_assert_int_eq(keel_vol_md_parse(t, n, &md, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_FORMAT);
        ck_assert_str_eq(err.msg, "volume metadata: NUL byte in line 2");
        free(t);
    }
    memset(big, '#', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_refused(big, KEEL_E_FORMAT, "volume metadata: 699 bytes, more than 512");
}
END_TEST

/* What keel_vol_md_format refuses. */
START_TEST(format_refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md ref, md;
    char out[KEEL_VOL_MD_SIZE + 1], small[100], *t;
    size_t n = 12345;

    t = v5_with(NULL, NULL);
    ck_assert_int_eq(parse_str(t, &ref, &err), 0);
    free(t);

    /* Overflow: a description of 130 two-byte characters (260 bytes) is valid but too long. */
    md = ref;
    for (int i = 0; i < 130; i++)
        memcpy(md.description + 2 * i, "\xc3\xa9", 2);
    md.description[260] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    ck_assert_str_eq(err.msg, "volume metadata overflow: 520 bytes, at most 512");
    ck_assert_uint_eq(n, 12345); /* untouched on failure */
    ck_assert_int_eq(keel_vol_md_format_slot(&md, 5, (unsigned char *)out, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    /* 127 of them are 514 bytes, 126 exactly 512: the limit is inclusive. */
    md.description[254] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata overflow: 514 bytes, at most 512");
    md.description[252] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    ck_assert_uint_eq(n, 512);
    /* 210 ASCII characters fit with every number at its widest. */
    md = ref;
    memset(md.description, 'x', KEEL_VOL_MD_DESCRIPTION_MAX);
    md.description[KEEL_VOL_MD_DESCRIPTION_MAX] = '\0';
    md.capacity = UINT64_MAX - 1;
    md.ctime = UINT64_MAX - 1;
    md.seq = UINT32_MAX;
    md.gen = 999;
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);
    ck_assert_uint_eq(n, 306 + 10 + 10 + (210 - 46) + 9 + 2);
    /* 211 do not: the limit is in characters. */
    md = ref;
    memset(md.description, 'x', KEEL_VOL_MD_DESCRIPTION_MAX + 1);
    md.description[KEEL_VOL_MD_DESCRIPTION_MAX + 1] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION longer than 210 characters");

    /* Values that would not read back. */
    md = ref;
    SET(md.description, "two\nlines");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION holds a line break");
    SET(md.description, "cr\rinside");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION holds a line break");
    SET(md.description, " leading");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION starts or ends with white space");
    SET(md.description, "trailing\xc2\xa0");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION starts or ends with white space");
    SET(md.description, "caf\xe9");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: DESCRIPTION is not valid UTF-8");
    SET(md.description, "in\tside is fine");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), 0);

    md = ref;
    SET(md.parent, "11111111-BBBB-4bbb-8bbb-000000000001");
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg,
                     "volume metadata: invalid PUUID \"11111111-BBBB-4bbb-8bbb-000000000001\"");
    md = ref;
    md.image[0] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: invalid IMAGE \"\"");
    md = ref;
    md.disktype[0] = '\0';
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: invalid DISKTYPE \"\"");
    md = ref;
    md.capacity = 0;
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: invalid capacity 0");
    md = ref;
    md.gen = 1000;
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: invalid GEN 1000");
    md = ref;
    md.format = (enum keel_vol_format)7;
    ck_assert_int_eq(keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err), -1);
    ck_assert_str_eq(err.msg, "volume metadata: FORMAT, TYPE, VOLTYPE or LEGALITY out of range");
    ck_assert_ptr_null(keel_vol_format_name(md.format));
    ck_assert_ptr_null(keel_vol_legality_name((enum keel_vol_legality)-1));
    ck_assert_str_eq(keel_vol_type_name(KEEL_VOL_TYPE_UNKNOWN), "UNKNOWN");
    ck_assert_str_eq(keel_vol_role_name(KEEL_VOL_SHARED), "SHARED");

    /* Versions and buffers. */
    ck_assert_int_eq(keel_vol_md_format(&ref, 3, out, sizeof(out), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert_str_eq(err.msg, "volume metadata: no version 3 form");
    ck_assert_int_eq(keel_vol_md_format(&ref, 5, small, sizeof(small), &n, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_RANGE);
    ck_assert_str_eq(err.msg, "volume metadata: buffer of 100 bytes is too small");
    ck_assert_int_eq(keel_vol_md_format(&ref, 5, out, 306, &n, &err), -1); /* no room for NUL */
    ck_assert_int_eq(keel_vol_md_format(&ref, 5, out, 307, &n, &err), 0);
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
    tcase_add_test(tc, slot_offsets);
    tcase_add_test(tc, v4_read_and_convert);
    tcase_add_test(tc, cleared_form);
    tcase_add_test(tc, lenient_reading);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, format_refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

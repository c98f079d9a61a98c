/*
 * Unit tests of metadata/sd_md: oVirt's domain metadata, its seal, the
 * file and VG tag forms and the typed view.  Golden data in
 * tests/data/sdmd/ (see its README for where each file comes from).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/sd_md.h"
#include "tests/unit/testdata.h"

static char *slurp(const char *name, size_t *len)
{
    return keel_test_data("sdmd", name, len);
}

/* Parse a golden file, check its seal, format it again: identical bytes. */
static void roundtrip(const char *name, struct keel_sd_md *md)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_strbuf out;
    size_t len;
    char *text = slurp(name, &len);
    bool sealed = false;

    ck_assert_msg(keel_sd_md_parse(text, len, md, &sealed, &err) == 0, "%s: %s", name, err.msg);
    ck_assert(sealed);
    keel_strbuf_init(&out, 0);
    keel_sd_md_format(md, &out);
    ck_assert_str_eq(out.buf, text);
    keel_strbuf_release(&out);
    free(text);
}

START_TEST(seal_vector)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    char hex[41];

    keel_sd_md_init(&md);
    ck_assert_int_eq(keel_sd_md_set(&md, "key 2", "value 2", &err), 0);
    ck_assert_int_eq(keel_sd_md_set(&md, "key 1", "value 1", &err), 0);
    keel_sd_md_seal(&md, hex);
    /* VDSM's tests/storage/persistent_test.py */
    ck_assert_str_eq(hex, "ad4e8ffdd89dde809bf1ed700838b590b08a3826");
    keel_sd_md_release(&md);
}
END_TEST

START_TEST(vdsm_examples)
{
    static const char *const names[] = { "vdsm_localfs_512_1048576.txt",
                                         "vdsm_localfs_4096_1048576.txt",
                                         "vdsm_localfs_4096_2097152.txt" };
    static const unsigned bs[] = { 512, 4096, 4096 };
    static const uint64_t al[] = { 1048576, 1048576, 2097152 };
    struct keel_error err = KEEL_ERROR_INIT;

    for (size_t i = 0; i < 3; i++) {
        struct keel_sd_md md;
        struct keel_sd_info info;

        keel_sd_md_init(&md);
        roundtrip(names[i], &md);
        ck_assert_msg(keel_sd_md_info(&md, &info, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(info.version, 5);
        ck_assert_str_eq(info.uuid, "275766cb-c7d8-43d6-a663-4e52160de620");
        ck_assert_int_eq(info.type, KEEL_SD_TYPE_LOCALFS);
        ck_assert_int_eq(info.klass, KEEL_SD_CLASS_DATA);
        ck_assert(!info.master);
        ck_assert_str_eq(info.description, "storage domain");
        ck_assert_str_eq(info.pool_uuids, "");
        ck_assert_uint_eq(info.block_size, bs[i]);
        ck_assert_uint_eq(info.alignment, al[i]);
        ck_assert_str_eq(info.remote_path, "server:/path");
        ck_assert_uint_eq(info.io_timeout_sec, 10);
        ck_assert_uint_eq(info.lease_time_sec, 60);
        keel_sd_md_release(&md);
    }
}
END_TEST

START_TEST(new_domain_is_vdsms)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    struct keel_strbuf out;
    struct keel_sd_md_new nd = {
        .uuid = "275766cb-c7d8-43d6-a663-4e52160de620",
        .description = "storage domain",
        .type = KEEL_SD_TYPE_LOCALFS,
        .klass = KEEL_SD_CLASS_DATA,
        .remote_path = "server:/path",
    };
    char *golden = slurp("vdsm_localfs_512_1048576.txt", NULL);

    keel_sd_md_init(&md);
    ck_assert_msg(keel_sd_md_new_domain(&md, &nd, &err) == 0, "%s", err.msg);
    keel_strbuf_init(&out, 0);
    keel_sd_md_format(&md, &out);
    ck_assert_str_eq(out.buf, golden);
    keel_strbuf_release(&out);
    keel_sd_md_release(&md);
    free(golden);
}
END_TEST

START_TEST(utf8_master)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    struct keel_sd_info info;

    keel_sd_md_init(&md);
    roundtrip("nfs_master_utf8.txt", &md);
    ck_assert_msg(keel_sd_md_info(&md, &info, &err) == 0, "%s", err.msg);
    ck_assert(info.master);
    ck_assert_int_eq(info.type, KEEL_SD_TYPE_NFS);
    ck_assert_str_eq(info.description, "donn\xc3\xa9" "es \xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
    ck_assert_str_eq(info.pool_uuids, "6c1b7c52-2f0b-4a55-9c2d-3f3f52e5a0b1");
    ck_assert_str_eq(keel_sd_md_get(&md, KEEL_SDK_POOL_SPM_ID), "-1");
    keel_sd_md_release(&md);
}
END_TEST

/* The golden tag file as an array (one tag per line). */
static char **load_tags(size_t *n)
{
    char *text = slurp("iscsi_v4_tags.txt", NULL), *save = NULL;
    char **tags = calloc(64, sizeof(*tags));

    *n = 0;
    for (char *t = strtok_r(text, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save))
        tags[(*n)++] = strdup(t);
    free(text);
    return tags;
}

START_TEST(vg_tags_v4)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    struct keel_sd_info info;
    size_t n, nout;
    char **tags = load_tags(&n), **out = NULL;
    bool sealed = false;

    keel_sd_md_init(&md);
    ck_assert_msg(keel_sd_md_from_tags((const char *const *)tags, n, &md, &sealed, &err) == 0,
                  "%s", err.msg);
    ck_assert(sealed);
    ck_assert_str_eq(keel_sd_md_get(&md, KEEL_SDK_DESCRIPTION), "block, v4 & co");
    ck_assert_str_eq(keel_sd_md_get(&md, "PV0"),
                     "pv:360014050000000000000000000000a01,uuid:CyI1OP-abcd-efgh-ijkl-mnop-"
                     "qrst-uvwxyz,pestart:0,pecount:93,mapoffset:0");
    ck_assert_msg(keel_sd_md_info(&md, &info, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(info.version, 4);
    ck_assert_int_eq(info.type, KEEL_SD_TYPE_ISCSI);
    ck_assert_uint_eq(info.block_size, 512);
    ck_assert_uint_eq(info.alignment, 1048576);
    ck_assert_str_eq(info.vg_uuid, "AbCdEf-1234-5678-9abc-defg-hijk-lmnopq");
    /* Written back: the same MDT_ tags (the file lists them in key order). */
    ck_assert_int_eq(keel_sd_md_to_tags(&md, &out, &nout, &err), 0);
    ck_assert_uint_eq(nout, n - 1); /* all but RHAT_storage_domain */
    for (size_t i = 0; i < nout; i++)
        ck_assert_str_eq(out[i], tags[i]);
    keel_sd_md_tags_free(out, nout);
    keel_sd_md_tags_free(tags, n);
    keel_sd_md_release(&md);
}
END_TEST

START_TEST(tag_escape)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_strbuf sb;
    const char *line = "DESCRIPTION=a,b c&d\xc3\xa9\xe2\x9c\x93/x=y!:#+.-_";

    keel_strbuf_init(&sb, 0);
    keel_sd_md_tag_escape(line, &sb);
    ck_assert_str_eq(sb.buf, "DESCRIPTION=a&44&b&32&c&38&d&233&&10003&/x=y!:#+.-_");
    {
        struct keel_strbuf back;

        keel_strbuf_init(&back, 0);
        ck_assert_int_eq(keel_sd_md_tag_unescape(sb.buf, &back, &err), 0);
        ck_assert_str_eq(back.buf, line);
        keel_strbuf_release(&back);
    }
    /* A plain '&' that is not an escape stays; a bad code point is refused. */
    sb.len = 0;
    ck_assert_int_eq(keel_sd_md_tag_unescape("a&b&&12x", &sb, &err), 0);
    ck_assert_str_eq(sb.buf, "a&b&&12x");
    sb.len = 0;
    ck_assert_int_eq(keel_sd_md_tag_unescape("X=&55296&", &sb, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    ck_assert_str_eq(err.msg, "domain metadata tag \"X=&55296&\": bad escape &55296&");
    keel_strbuf_release(&sb);
}
END_TEST

START_TEST(bad_seal_refused)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    size_t len;
    char *text = slurp("vdsm_localfs_512_1048576.txt", &len);
    char *p = strstr(text, "storage domain");

    keel_sd_md_init(&md);
    ck_assert_int_eq(keel_sd_md_set(&md, "KEEP", "me", &err), 0);
    p[0] = 'S';
    ck_assert_int_eq(keel_sd_md_parse(text, len, &md, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_str_eq(err.msg, "metadata checksum mismatch: sealed "
                              "9336f77705ff9e3d5faf65c4d0dc818a29de458d, computed "
                              "35b56e911fc82e73b1520cd2d47cc561d75fca95");
    /* Nothing was replaced on failure. */
    ck_assert_uint_eq(md.n, 1);
    keel_sd_md_release(&md);
    free(text);
}
END_TEST

START_TEST(unsealed_and_odd_lines)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_md md;
    const char text[] = "  B = two  \nno equal sign\nA=one=1\n\n\0\0\0";
    bool sealed = true;

    keel_sd_md_init(&md);
    ck_assert_int_eq(keel_sd_md_parse(text, sizeof(text) - 1, &md, &sealed, &err), 0);
    ck_assert(!sealed);
    ck_assert_uint_eq(md.n, 2);
    ck_assert_str_eq(md.kv[0].key, "A");
    ck_assert_str_eq(md.kv[0].value, "one=1");
    ck_assert_str_eq(keel_sd_md_get(&md, "B"), "two");
    /* NUL inside the text, bad UTF-8 */
    ck_assert_int_eq(keel_sd_md_parse("A=1\0B=2\n", 8, &md, NULL, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_FORMAT);
    ck_assert_int_eq(keel_sd_md_parse("A=\xff\n", 4, &md, NULL, &err), -1);
    ck_assert_str_eq(err.msg, "domain metadata: line \"A...\" is not UTF-8");
    /* Set refuses what could not round trip. */
    ck_assert_int_eq(keel_sd_md_set(&md, "_SHA_CKSUM", "x", &err), -1);
    ck_assert_str_eq(err.msg, "domain metadata: _SHA_CKSUM is not a key");
    ck_assert_int_eq(keel_sd_md_set(&md, "A=B", "x", &err), -1);
    ck_assert_int_eq(keel_sd_md_set(&md, "A", "x\ny", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_INVAL);
    ck_assert(keel_sd_md_del(&md, "A"));
    ck_assert(!keel_sd_md_del(&md, "A"));
    keel_sd_md_release(&md);
}
END_TEST

/* keel_sd_md_info on a map edited from the golden one. */
static int info_with(const char *key, const char *value, struct keel_error *err)
{
    struct keel_sd_md md;
    struct keel_sd_info info;
    int rc;

    keel_sd_md_init(&md);
    roundtrip("vdsm_localfs_512_1048576.txt", &md);
    if (value == NULL)
        keel_sd_md_del(&md, key);
    else
        ck_assert_int_eq(keel_sd_md_set(&md, key, value, err), 0);
    rc = keel_sd_md_info(&md, &info, err);
    keel_sd_md_release(&md);
    return rc;
}

START_TEST(info_refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_int_eq(info_with("SDUUID", NULL, &err), -1);
    ck_assert_str_eq(err.msg, "domain metadata: SDUUID is missing");
    ck_assert_int_eq(info_with("SDUUID", "5E1C", &err), -1);
    ck_assert_str_eq(err.msg, "domain metadata: SDUUID=\"5E1C\" is not a UUID");
    ck_assert_int_eq(info_with("VERSION", "2", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_VERSION);
    ck_assert_str_eq(err.msg, "storage domain 275766cb-c7d8-43d6-a663-4e52160de620: "
                              "unsupported domain version 2 (Keel reads versions 3 to 5)");
    ck_assert_int_eq(info_with("TYPE", "TAPE", &err), -1);
    ck_assert_str_eq(err.msg, "storage domain 275766cb-c7d8-43d6-a663-4e52160de620: "
                              "unknown domain TYPE \"TAPE\"");
    ck_assert_int_eq(info_with("BLOCK_SIZE", NULL, &err), -1);
    ck_assert_str_eq(err.msg, "storage domain 275766cb-c7d8-43d6-a663-4e52160de620: "
                              "domain metadata: BLOCK_SIZE is missing");
    ck_assert_int_eq(info_with("ALIGNMENT", "3145728", &err), -1);
    ck_assert_str_eq(err.msg, "storage domain 275766cb-c7d8-43d6-a663-4e52160de620: "
                              "bad ALIGNMENT 3145728");
    /* V4 with 512 / 1 MiB spelled out is fine; other values did not exist before V5. */
    ck_assert_int_eq(info_with("VERSION", "4", &err), 0);
    {
        struct keel_sd_md md;
        struct keel_sd_info info;

        keel_sd_md_init(&md);
        roundtrip("vdsm_localfs_4096_1048576.txt", &md);
        ck_assert_int_eq(keel_sd_md_set(&md, "VERSION", "4", &err), 0);
        ck_assert_int_eq(keel_sd_md_info(&md, &info, &err), -1);
        ck_assert_str_eq(err.msg, "storage domain 275766cb-c7d8-43d6-a663-4e52160de620: "
                                  "version 4 domain with BLOCK_SIZE or ALIGNMENT other than "
                                  "512 / 1 MiB");
        keel_sd_md_release(&md);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sd_md");
    TCase *tc = tcase_create("sd_md");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, seal_vector);
    tcase_add_test(tc, vdsm_examples);
    tcase_add_test(tc, new_domain_is_vdsms);
    tcase_add_test(tc, utf8_master);
    tcase_add_test(tc, vg_tags_v4);
    tcase_add_test(tc, tag_escape);
    tcase_add_test(tc, bad_seal_refused);
    tcase_add_test(tc, unsealed_and_odd_lines);
    tcase_add_test(tc, info_refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

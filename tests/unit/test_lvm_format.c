/*
 * Unit tests of the LVM2 format code in metadata/: CRC, ids and names,
 * label and mda header records, the circular buffer arithmetic, the text
 * parser and the VG model.  Golden data come from
 * ../shared/specs/lvm2-format.md, whose examples were checked byte by
 * byte against lvm2 2.03.16 ([verified]): tests/data/lvm/.
 * KEEL_TEST_REGENERATE=1 rewrites the expected formatter output.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/lvm_cfg.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_id.h"
#include "metadata/lvm_label.h"
#include "metadata/lvm_vg.h"
#include "tests/unit/testdata.h"

static char *slurp(const char *name, size_t *len)
{
    return keel_test_data("lvm", name, len);
}

START_TEST(crc_vectors)
{
    unsigned char zeros[492] = { 0 };

    ck_assert_uint_eq(keel_lvm_crc(KEEL_LVM_CRC_SEED, "", 0), 0xF597A6CFu);
    ck_assert_uint_eq(keel_lvm_crc(KEEL_LVM_CRC_SEED, "123456789", 9), 0x4991CF02u);
    ck_assert_uint_eq(keel_lvm_crc(KEEL_LVM_CRC_SEED, zeros, sizeof(zeros)), 0x02C81F10u);
    /* It chains. */
    ck_assert_uint_eq(keel_lvm_crc(keel_lvm_crc(KEEL_LVM_CRC_SEED, "1234", 4), "56789", 5),
                      0x4991CF02u);
}
END_TEST

START_TEST(ids_and_names)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char raw[33], raw2[33], dashed[39];

    ck_assert_int_eq(keel_lvm_id_new(raw, &err), 0);
    ck_assert(keel_lvm_id_valid_raw(raw));
    keel_lvm_id_dash(raw, dashed);
    ck_assert_uint_eq(strlen(dashed), 38);
    ck_assert_int_eq(dashed[6], '-');
    ck_assert_int_eq(dashed[31], '-');
    ck_assert_int_eq(keel_lvm_id_parse(dashed, strlen(dashed), raw2), 0);
    ck_assert_str_eq(raw, raw2);
    ck_assert_int_eq(keel_lvm_id_parse("3qUxmp-5bwi-FnxK-WtfJ-3CUa-1EoG-TQdLC8", 38, raw2), 0);
    ck_assert_str_eq(raw2, "3qUxmp5bwiFnxKWtfJ3CUa1EoGTQdLC8");
    ck_assert_int_eq(keel_lvm_id_parse("3qUxmp-5bwi-FnxK-WtfJ-3CUa-1EoG-TQdLC", 37, raw2), -1);
    ck_assert_int_eq(keel_lvm_id_parse("3qUxmp-5bwi-FnxK-WtfJ-3CUa-1EoG-TQdLC$", 38, raw2), -1);

    ck_assert_int_eq(keel_lvm_check_vg_name("5e1c0a6f-59c1-4b0a-9e5b-1f2b3c4d5e6f", &err), 0);
    ck_assert_int_eq(keel_lvm_check_vg_name("-bad", &err), -1);
    ck_assert_str_eq(err.msg, "VG name '-bad': starts with '-'");
    ck_assert_int_eq(keel_lvm_check_vg_name("a/b", &err), -1);
    ck_assert_str_eq(err.msg, "VG name 'a/b': character '/' is not allowed");
    ck_assert_int_eq(keel_lvm_check_lv_name("vg", "metadata", &err), 0);
    ck_assert_int_eq(keel_lvm_check_lv_name("vg", "snapshot1", &err), -1);
    ck_assert_int_eq(keel_lvm_check_lv_name("vg", "x_tmeta", &err), -1);
    ck_assert_str_eq(err.msg, "LV name 'x_tmeta': contains the reserved '_tmeta'");
    ck_assert_int_eq(keel_lvm_check_lv_name("vg", "pv12", &err), -1);
    ck_assert_int_eq(keel_lvm_check_lv_name("vg", "pv12a", &err), 0);
    ck_assert_int_eq(keel_lvm_check_tag("MDT_POOL_UUID=abc", &err), 0);
    ck_assert_int_eq(keel_lvm_check_tag("IU_40e76ac2-4502-4341-b4fb-054345543bad", &err), 0);
    ck_assert_int_eq(keel_lvm_check_tag("a@b", &err), -1);
    ck_assert_str_eq(err.msg, "tag 'a@b': character '@' is not allowed");
}
END_TEST

/* The label sector of the spec's worked example (§9), byte for byte. */
START_TEST(label_golden)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t *sec = (uint8_t *)slurp("label_sector.bin", NULL);
    uint8_t out[512];
    struct keel_lvm_pvh h;

    ck_assert_msg(keel_lvm_pvh_decode(sec, 1, &h, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(h.pv_id, "3qUxmp5bwiFnxKWtfJ3CUa1EoGTQdLC8");
    ck_assert_uint_eq(h.device_size, 1ull << 30);
    ck_assert_uint_eq(h.nda, 1);
    ck_assert_uint_eq(h.da[0].offset, 1 << 20);
    ck_assert_uint_eq(h.da[0].size, 0);
    ck_assert_uint_eq(h.nmda, 1);
    ck_assert_uint_eq(h.mda[0].offset, 4096);
    ck_assert_uint_eq(h.mda[0].size, 0xff000);
    ck_assert_uint_eq(h.ext_version, 2);
    ck_assert_uint_eq(h.ext_flags, KEEL_LVM_PV_EXT_USED);
    ck_assert_int_eq(keel_lvm_pvh_encode(&h, out, &err), 0);
    ck_assert(memcmp(out, sec, 512) == 0);
    /* Found in another sector than it names: refused. */
    ck_assert_int_eq(keel_lvm_pvh_decode(sec, 2, &h, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    /* One flipped bit: checksum. */
    sec[100] ^= 1;
    ck_assert_int_eq(keel_lvm_pvh_decode(sec, 1, &h, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    ck_assert_str_eq(err.msg, "label checksum mismatch");
    sec[0] = 'X';
    ck_assert_int_eq(keel_lvm_pvh_decode(sec, 1, &h, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    free(sec);
}
END_TEST

START_TEST(mda_header_golden)
{
    struct keel_error err = KEEL_ERROR_INIT;
    uint8_t *sec = (uint8_t *)slurp("mda_header.bin", NULL);
    uint8_t out[512];
    struct keel_lvm_mdah h;

    ck_assert_msg(keel_lvm_mdah_decode(sec, 4096, &h, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(h.size, 0xff000);
    ck_assert_uint_eq(h.slot[0].offset, 0x2c00);
    ck_assert_uint_eq(h.slot[0].size, 1654);
    ck_assert_uint_eq(h.slot[0].checksum, 0xca47c056u);
    ck_assert_uint_eq(h.slot[1].size, 0);
    keel_lvm_mdah_encode(&h, out);
    ck_assert(memcmp(out, sec, 512) == 0);
    ck_assert_int_eq(keel_lvm_mdah_decode(sec, 8192, &h, &err), -1);
    ck_assert_str_eq(err.msg, "metadata area header: start 4096, the PV header says 8192");
    sec[5] = 'X';
    ck_assert_int_eq(keel_lvm_mdah_decode(sec, 4096, &h, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CHECKSUM);
    keel_lvm_mdah_encode(&h, out); /* valid checksum, wrong magic */
    out[5] = 'X';
    {
        uint32_t c = keel_lvm_crc(KEEL_LVM_CRC_SEED, out + 4, 508);

        out[0] = (uint8_t)c;
        out[1] = (uint8_t)(c >> 8);
        out[2] = (uint8_t)(c >> 16);
        out[3] = (uint8_t)(c >> 24);
    }
    ck_assert_int_eq(keel_lvm_mdah_decode(out, 4096, &h, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_MAGIC);
    free(sec);
}
END_TEST

/* The spec's worked history (§5.2) and its wrap example. */
START_TEST(circular_buffer)
{
    static const uint64_t offsets[] = { 512, 1536, 3072, 5120, 7168, 9216, 11264 };
    static const uint64_t sizes[] = { 981, 1295, 1571, 1654, 1679, 1945, 1654 };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_mdah h = { .start = 4096, .size = 1044480 };
    struct keel_lvm_area p[2];
    uint64_t next;

    for (size_t i = 0; i < 7; i++) {
        ck_assert_int_eq(keel_lvm_mda_next_offset(&h, sizes[i], &next, &err), 0);
        ck_assert_uint_eq(next, offsets[i]);
        h.slot[0].offset = next;
        h.slot[0].size = sizes[i];
    }
    ck_assert_uint_eq(keel_lvm_mda_max_text(1044480), 521472);
    ck_assert_uint_eq(keel_lvm_mda_max_text(135262208), 67630336);
    ck_assert_uint_eq(keel_lvm_mda_max_text(134217728), 67108096);
    h.size = 32768;
    h.slot[0].offset = 28160;
    h.slot[0].size = 5955;
    ck_assert_int_eq(keel_lvm_mda_pieces(h.size, 28160, 5955, p), 2);
    ck_assert_uint_eq(p[0].size, 4608);
    ck_assert_uint_eq(p[1].offset, 512);
    ck_assert_uint_eq(p[1].size, 1347);
    ck_assert_int_eq(keel_lvm_mda_next_offset(&h, 1000, &next, &err), 0);
    ck_assert_uint_eq(next, 2048);
    ck_assert_int_eq(keel_lvm_mda_next_offset(&h, 15756, &next, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_NOSPC);
    ck_assert_int_eq(keel_lvm_mda_next_offset(&h, 15616, &next, &err), 0);
    /* Ignored mda: the first copy goes to 512. */
    h.slot[0] = (struct keel_lvm_rlocn){ .flags = KEEL_LVM_RAW_LOCN_IGNORED };
    ck_assert_int_eq(keel_lvm_mda_next_offset(&h, 100, &next, &err), 0);
    ck_assert_uint_eq(next, 512);
}
END_TEST

START_TEST(cfg_parser)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_cfg *cfg = NULL;
    const struct keel_cfg_node *n;
    const char *t = "# comment\nvg { a = 0177 b = [\"x\", 'y' , 3] c = \"q\\\"uote\" s { } }\n";

    ck_assert_msg(keel_lvm_cfg_parse(t, strlen(t), &cfg, &err) == 0, "%s", err.msg);
    n = keel_cfg_find(cfg, NULL, "vg");
    ck_assert_ptr_nonnull(n);
    ck_assert(n->is_section);
    ck_assert_int_eq(keel_cfg_find(cfg, n, "a")->values->i, 127); /* octal, as lvm reads it */
    ck_assert_str_eq(keel_cfg_find(cfg, n, "b")->values->s, "x");
    ck_assert_str_eq(keel_cfg_find(cfg, n, "b")->values->next->s, "y");
    ck_assert_int_eq(keel_cfg_find(cfg, n, "b")->values->next->next->i, 3);
    ck_assert_str_eq(keel_cfg_find(cfg, n, "c")->values->s, "q\"uote");
    keel_lvm_cfg_free(cfg);
    t = "vg {\npe_count = 0x7f\n}\n";
    ck_assert_int_eq(keel_lvm_cfg_parse(t, strlen(t), &cfg, &err), -1);
    /* "0" then "x7f" where a key should be: lvm 2.03.16 fails the same way. */
    ck_assert_str_eq(err.msg, "parse error at byte 22 (line 3): unexpected token");
    t = "vg { a = ";
    ck_assert_int_eq(keel_lvm_cfg_parse(t, strlen(t), &cfg, &err), -1);
    t = "vg { a = [1, 2 }";
    ck_assert_int_eq(keel_lvm_cfg_parse(t, strlen(t), &cfg, &err), -1);
}
END_TEST

/* lvm's text (§9): parsed exactly, and formatted back to the same VG section. */
START_TEST(vg_golden_roundtrip)
{
    struct keel_error err = KEEL_ERROR_INIT;
    size_t len, olen;
    char *text = slurp("vg_ex.txt", &len), *out = NULL;
    struct keel_lvm_vg *vg = NULL, *vg2 = NULL;
    struct keel_lvm_lv *lv1, *lv2;
    const char *end;

    ck_assert_msg(keel_lvm_vg_parse(text, len, &vg, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(vg->name, "vg_ex");
    ck_assert_uint_eq(vg->seqno, 7);
    ck_assert_uint_eq(vg->extent_size, 8192);
    ck_assert_uint_eq(vg->tags.n, 2);
    ck_assert_str_eq(vg->tags.v[1], "RHAT_storage_domain");
    ck_assert_uint_eq(vg->npvs, 1);
    ck_assert_uint_eq(vg->pvs[0].pe_count, 255);
    ck_assert_uint_eq(vg->pvs[0].pe_start, 2048);
    ck_assert_str_eq(vg->pvs[0].id, "3qUxmp5bwiFnxKWtfJ3CUa1EoGTQdLC8");
    ck_assert_uint_eq(vg->nlvs, 2);
    lv1 = keel_lvm_vg_find_lv(vg, "lv1");
    lv2 = keel_lvm_vg_find_lv(vg, "lv2");
    ck_assert_uint_eq(lv1->nsegs, 2);
    ck_assert_uint_eq(lv1->segs[1].start_extent, 2);
    ck_assert_uint_eq(lv1->segs[1].stripes[0].pe, 5);
    ck_assert_uint_eq(keel_lvm_lv_extents(lv1), 4);
    ck_assert_uint_eq(lv2->segs[0].stripes[0].pe, 2);
    ck_assert_str_eq(lv2->tags.v[0], "newtag");
    ck_assert_uint_eq(lv1->creation_time, 1795505551);
    ck_assert_uint_eq(keel_lvm_vg_free_extents(vg), 255 - 7);

    ck_assert_int_eq(keel_lvm_vg_format(vg, "test", "vm", 1795505551, &out, &olen, &err), 0);
    ck_assert_uint_eq(out[olen - 1], '\0');
    ck_assert_uint_eq(out[olen - 2], '\n');
    ck_assert_uint_eq(out[olen - 3], '\n');
    /* The VG section (up to the trailer) is byte for byte lvm's. */
    end = strstr(text, "}\n# Generated");
    ck_assert_ptr_nonnull(end);
    ck_assert_msg(strncmp(out, text, (size_t)(end - text) + 2) == 0, "formatted:\n%s", out);
    /* And it parses to the same VG. */
    ck_assert_msg(keel_lvm_vg_parse(out, olen, &vg2, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(vg2->nlvs, 2);
    keel_lvm_vg_free(vg2);
    vg2 = keel_lvm_vg_dup(vg);
    ck_assert_ptr_nonnull(vg2);
    ck_assert_str_eq(keel_lvm_vg_find_lv(vg2, "lv1")->id, lv1->id);
    keel_lvm_vg_free(vg2);
    free(out);
    keel_lvm_vg_free(vg);
    free(text);
}
END_TEST

static int parse_modified(const char *from, const char *to, struct keel_error *err)
{
    size_t len;
    char *text = slurp("vg_ex.txt", &len);
    char *p = strstr(text, from);
    struct keel_lvm_vg *vg = NULL;
    char *mod;
    int rc;

    ck_assert_msg(p != NULL, "'%s' not in the example", from);
    mod = malloc(len + strlen(to) + 1);
    memcpy(mod, text, (size_t)(p - text));
    memcpy(mod + (p - text), to, strlen(to));
    memcpy(mod + (p - text) + strlen(to), p + strlen(from), len - (size_t)(p - text) - strlen(from));
    len = len - strlen(from) + strlen(to);
    rc = keel_lvm_vg_parse(mod, len, &vg, err);
    keel_lvm_vg_free(vg);
    free(mod);
    free(text);
    return rc;
}

START_TEST(vg_parse_refusals)
{
    struct keel_error err = KEEL_ERROR_INIT;

    /* Two LVs with one name (validate sorts the names to find them). */
    {
        size_t len;
        char *text = slurp("vg_ex.txt", &len);
        struct keel_lvm_vg *vg = NULL;

        ck_assert_int_eq(keel_lvm_vg_parse(text, len, &vg, &err), 0);
        ck_assert_uint_ge(vg->nlvs, 2);
        free(vg->lvs[1].name);
        vg->lvs[1].name = strdup(vg->lvs[0].name);
        ck_assert_int_eq(keel_lvm_vg_validate(vg, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
        ck_assert_str_eq(err.msg, "VG vg_ex: two LVs named lv1");
        keel_lvm_vg_free(vg);
        free(text);
    }

    /* lv2 moved onto lv1's extents. */
    ck_assert_int_eq(parse_modified("\"pv0\", 2\n", "\"pv0\", 1\n", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_CORRUPT);
    ck_assert_str_eq(err.msg, "VG vg_ex: LV lv2: extent 1 of pv0 is used twice");
    ck_assert_int_eq(parse_modified("\"pv0\", 2\n", "\"pv0\", 254\n", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg_ex: LV lv2: extents 254-256 of pv0 are beyond its 255 "
                              "extents");
    ck_assert_int_eq(parse_modified("start_extent = 2\n", "start_extent = 3\n", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg_ex: LV lv1: segments leave a gap or overlap at extent 2");
    ck_assert_int_eq(parse_modified("segment_count = 2", "segment_count = 3", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg_ex: LV lv1: segment_count is 3 but there are 2 segments");
    ck_assert_int_eq(parse_modified("type = \"striped\"", "type = \"thin\"", &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_UNSUPPORTED);
    ck_assert_int_eq(parse_modified("\"pv0\", 5", "\"pv1\", 5", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg_ex: LV lv1: segment2: stripe on unknown PV \"pv1\"");
    ck_assert_int_eq(parse_modified("seqno = 7", "seqno = x", &err), -1);
    ck_assert_int_eq(parse_modified("contents = \"Text Format Volume Group\"", "", &err), -1);
    ck_assert_str_eq(err.msg, "VG metadata: missing contents");
    ck_assert_int_eq(parse_modified("\"RESIZEABLE\"", "\"BOGUS\"", &err), -1);
    ck_assert_str_eq(err.msg, "VG vg_ex: unknown status \"BOGUS\"");
    /* Two segments that are contiguous on the PV are merged, as lvm does. */
    ck_assert_int_eq(parse_modified("\"pv0\", 5\n", "\"pv0\", 2\n", &err), -1); /* overlaps lv2 */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lvm_format");
    TCase *tc = tcase_create("lvm_format");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, crc_vectors);
    tcase_add_test(tc, ids_and_names);
    tcase_add_test(tc, label_golden);
    tcase_add_test(tc, mda_header_golden);
    tcase_add_test(tc, circular_buffer);
    tcase_add_test(tc, cfg_parser);
    tcase_add_test(tc, vg_golden_roundtrip);
    tcase_add_test(tc, vg_parse_refusals);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

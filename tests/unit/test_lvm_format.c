/*
 * Unit tests of the LVM2 format code in metadata/: CRC, ids and names,
 * label and mda header records, the circular buffer arithmetic, the text
 * parser and the VG model, and the incremental formatter (lvm_text.c)
 * against the full one.  Golden data come from
 * ../shared/specs/lvm2-format.md, whose examples were checked byte by
 * byte against lvm2 2.03.16 ([verified]): tests/data/lvm/.
 * KEEL_TEST_REGENERATE=1 rewrites the expected formatter output.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/lvm_cfg.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_edit.h"
#include "metadata/lvm_id.h"
#include "metadata/lvm_label.h"
#include "metadata/lvm_text.h"
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

/* keel_lvm_crc_zeros() is the CRC of that many zero bytes, and joins pieces. */
START_TEST(crc_zeros_joins_pieces)
{
    static const size_t lens[] = { 0, 1, 7, 8, 9, 511, 512, 4096, 100003 };
    unsigned char *buf = malloc(200006), *zeros = calloc(1, 100003);
    uint64_t x = 88172645463325252u;

    for (size_t i = 0; i < 200006; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i];
        uint32_t a = keel_lvm_crc(KEEL_LVM_CRC_SEED, buf, 1000);

        ck_assert_uint_eq(keel_lvm_crc_zeros(a, n), keel_lvm_crc(a, zeros, n));
        /* crc(seed, A || B) from crc(seed, A) and crc(0, B) */
        ck_assert_uint_eq(keel_lvm_crc_zeros(a, n) ^ keel_lvm_crc(0, buf + 1000, n),
                          keel_lvm_crc(KEEL_LVM_CRC_SEED, buf, 1000 + n));
    }
    ck_assert_uint_eq(keel_lvm_crc_zeros(0, 12345), 0);
    free(buf);
    free(zeros);
}
END_TEST

/* ---- the incremental formatter (lvm_text.c) against the full one ---- */

#define DESC "Write from keel: test"

/*
 * Bump the seqno, format vg with t and in full: the same bytes and CRC,
 * and t formatted `want_new` LV texts anew (-1: any number).
 */
static void same_text_as(struct keel_lvm_text *t, struct keel_lvm_vg *vg, const size_t *changed,
                         long want_new, const char *step)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *full = NULL;
    const char *inc;
    size_t flen = 0, ilen = 0, reused, fresh;
    uint32_t icrc = 0;

    vg->seqno++;
    ck_assert_msg(keel_lvm_vg_validate(vg, &err) == 0, "%s: %s", step, err.msg);
    ck_assert_msg(keel_lvm_vg_format(vg, DESC, "host", 1795505551, &full, &flen, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg((changed ? keel_lvm_text_format_changed(t, vg, *changed, DESC, "host",
                                                          1795505551, &err)
                           : keel_lvm_text_format(t, vg, DESC, "host", 1795505551, &err)) == 0,
                  "%s: %s", step, err.msg);
    inc = keel_lvm_text_get(t, &ilen, &icrc);
    if (ilen != flen || memcmp(inc, full, flen) != 0) {
        size_t at = 0;

        while (at < ilen && at < flen && inc[at] == full[at])
            at++;
        at = at > 60 ? at - 60 : 0;
        ck_abort_msg("%s: the incremental text (%zu B) differs from the full one (%zu B) at "
                     "byte %zu:\n%.200s\n----\n%.200s", step, ilen, flen, at, inc + at,
                     full + at);
    }
    ck_assert_uint_eq(icrc, keel_lvm_crc(KEEL_LVM_CRC_SEED, full, flen));
    /* Zeroes after the NUL up to the 4 KiB boundary (the writes pad with them). */
    for (size_t i = ilen; i % 4096 != 0; i++)
        ck_assert_msg(inc[i] == 0, "%s: byte %zu after the text is not zero", step, i);
    keel_lvm_text_stats(t, &reused, &fresh);
    ck_assert_uint_eq(reused + fresh, vg->nlvs);
    if (want_new >= 0)
        ck_assert_msg(fresh == (size_t)want_new, "%s: %zu LV texts formatted, not %ld", step,
                      fresh, want_new);
    free(full);
}

static void same_text(struct keel_lvm_text *t, struct keel_lvm_vg *vg, long want_new,
                      const char *step)
{
    same_text_as(t, vg, NULL, want_new, step);
}

/* A VG of two 200-extent PVs with one VG tag. */
static struct keel_lvm_vg *text_vg(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *flags[] = { "NOAUTOACTIVATE" }, *tags[] = { "RHAT_storage_domain" };
    struct keel_lvm_vg *vg = NULL;
    char id[KEEL_LVM_ID_LEN + 1];

    ck_assert_int_eq(keel_lvm_vg_new("vg1", 8192, flags, 1, tags, 1, &vg, &err), 0);
    for (int p = 0; p < 2; p++) {
        ck_assert_int_eq(keel_lvm_id_new(id, &err), 0);
        ck_assert_int_eq(keel_lvm_vg_add_pv(vg, id, 2000000, 2048, 200, &err), 0);
    }
    return vg;
}

static void lv_new(struct keel_lvm_vg *vg, const char *name, uint64_t extents, unsigned md)
{
    struct keel_error err = KEEL_ERROR_INIT;
    char iu[64], mdt[32];
    const char *tags[] = { iu, "PU_00000000-0000-0000-0000-000000000000", mdt };

    snprintf(iu, sizeof(iu), "IU_%s-image", name);
    snprintf(mdt, sizeof(mdt), "MD_%u", md);
    ck_assert_msg(keel_lvm_lv_create(vg, name, extents, tags, 3, "host", 1795505551 + md,
                                     &err) == 0, "%s", err.msg);
}

/*
 * Creates, extends, reduces, renames, tag changes, removes, VG tags, a
 * hidden LV, changes made on a copy, and edits behind the formatter's back
 * (in place, pointers unchanged): after each, the incremental text is the
 * full one, and only the LVs that changed were formatted again.
 */
START_TEST(incremental_text_equals_full_format)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_text *t = keel_lvm_text_new();
    struct keel_lvm_vg *vg = text_vg(), *copy;
    const char *add[] = { "IU__remove_me_x" }, *del[] = { "MD_9" }, *vtag[] = { "MDT_X=1" };
    char name[32];

    ck_assert_ptr_nonnull(t);
    same_text(t, vg, 0, "empty VG");
    for (unsigned i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "lv%u", i);
        lv_new(vg, name, 1 + i % 3, i);
        same_text(t, vg, 1, name);
    }
    same_text(t, vg, 0, "nothing changed");
    ck_assert_int_eq(keel_lvm_lv_extend(vg, "lv3", 9, &err), 0);
    same_text(t, vg, 1, "extend lv3");
    ck_assert_int_eq(keel_lvm_lv_extend(vg, "lv19", 300, &err), 0); /* spans both PVs */
    same_text(t, vg, 1, "extend lv19 across PVs");
    ck_assert_int_eq(keel_lvm_lv_reduce(vg, "lv3", 2, &err), 0);
    same_text(t, vg, 1, "reduce lv3");
    ck_assert_int_eq(keel_lvm_lv_rename(vg, "lv7", "lv7-renamed", &err), 0);
    same_text(t, vg, 1, "rename lv7");
    ck_assert_int_eq(keel_lvm_lv_change_tags(vg, "lv9", add, 1, del, 1, &err), 0);
    same_text(t, vg, 1, "tags of lv9");
    ck_assert_int_eq(keel_lvm_lv_remove(vg, "lv10", &err), 0);
    same_text(t, vg, 0, "remove lv10 (middle)");
    ck_assert_int_eq(keel_lvm_lv_remove(vg, "lv0", &err), 0);
    same_text(t, vg, 0, "remove lv0 (first)");
    ck_assert_int_eq(keel_lvm_lv_remove(vg, "lv19", &err), 0);
    same_text(t, vg, 0, "remove lv19 (last)");
    ck_assert_int_eq(keel_lvm_vg_change_tags(vg, vtag, 1, NULL, 0, &err), 0);
    same_text(t, vg, 0, "VG tags");
    /* A hidden LV goes after the visible ones. */
    ck_assert(keel_lvm_strlist_remove(&keel_lvm_vg_find_lv(vg, "lv2")->status, "VISIBLE"));
    same_text(t, vg, 1, "lv2 hidden");
    lv_new(vg, "lv20", 1, 20);
    same_text(t, vg, 1, "create after a hidden LV");

    /* Changes on a copy of the VG (keel_lvm_store_commit()'s callers), then the original. */
    copy = keel_lvm_vg_dup(vg);
    ck_assert_ptr_nonnull(copy);
    lv_new(copy, "lv21", 2, 21);
    same_text(t, copy, 1, "create in a copy");
    copy->seqno = vg->seqno;
    same_text(t, vg, 0, "back to the original (its commit failed)");
    keel_lvm_vg_free(copy);

    /* Told which LV changed: the others are not compared, yet the text is the same. */
    {
        size_t none = SIZE_MAX, i3 = (size_t)(keel_lvm_vg_find_lv(vg, "lv3") - vg->lvs);

        same_text_as(t, vg, &none, 0, "told: nothing changed");
        lv_new(vg, "lv22", 1, 22);
        same_text_as(t, vg, &none, 1, "told: one LV appended");
        ck_assert_int_eq(keel_lvm_lv_extend(vg, "lv3", 4, &err), 0);
        same_text_as(t, vg, &i3, 1, "told: lv3 extended");
        ck_assert_int_eq(keel_lvm_lv_remove(vg, "lv22", &err), 0);
        same_text_as(t, vg, &none, 0, "told: one LV removed");
        /* Not told, but the name pointer moved: compared, and formatted again. */
        ck_assert_int_eq(keel_lvm_lv_rename(vg, "lv4", "lv4-x", &err), 0);
        same_text_as(t, vg, &none, 1, "not told of a rename");
        /* Another VG object than the last one: everything compared. */
        copy = keel_lvm_vg_dup(vg);
        ck_assert_ptr_nonnull(copy);
        copy->lvs[0].creation_time++;
        same_text_as(t, copy, &none, 1, "told, but of another VG");
        keel_lvm_vg_free(copy);
        same_text(t, vg, 1, "the original again");
    }

    /* Behind the formatter's back: same pointers, other contents. */
    keel_lvm_vg_find_lv(vg, "lv4-x")->tags.v[0][1] = 'X';
    same_text(t, vg, 1, "a tag's bytes changed in place");
    keel_lvm_vg_find_lv(vg, "lv5")->creation_time++;
    same_text(t, vg, 1, "creation_time changed in place");
    keel_lvm_vg_find_lv(vg, "lv6")->segs[0].stripes[0].pe = 150;
    same_text(t, vg, 1, "a stripe moved in place");
    keel_lvm_vg_find_lv(vg, "lv8")->name[0] = 'L';
    same_text(t, vg, 1, "a name's bytes changed in place");
    ck_assert_int_eq(keel_lvm_strlist_add(&keel_lvm_vg_find_lv(vg, "lv11")->extra, "x = 1"), 0);
    same_text(t, vg, 1, "an unknown key added");
    memcpy(keel_lvm_vg_find_lv(vg, "lv12")->id, "abcdefghijklmnopqrstuvwxyz012345", 32);
    same_text(t, vg, 1, "an id changed in place");

    /* Many changes at once (names checked by sorting). */
    for (size_t i = 0; i < vg->nlvs; i++)
        vg->lvs[i].creation_time += 7;
    same_text(t, vg, (long)vg->nlvs, "every LV changed");

    /* A refused VG gives keel_lvm_vg_validate()'s error, and the cache is kept. */
    {
        struct keel_lvm_lv *a = keel_lvm_vg_find_lv(vg, "lv13");
        struct keel_lvm_lv *b = keel_lvm_vg_find_lv(vg, "lv14");
        char *saved = a->name;
        uint32_t pe = b->segs[0].stripes[0].pe;
        struct keel_error full = KEEL_ERROR_INIT;

        a->name = strdup("lv14");
        ck_assert_int_eq(keel_lvm_vg_validate(vg, &full), -1);
        ck_assert_int_eq(keel_lvm_text_format(t, vg, DESC, "host", 1, &err), -1);
        ck_assert_str_eq(err.msg, full.msg);
        ck_assert_str_eq(err.msg, "VG vg1: two LVs named lv14");
        free(a->name);
        a->name = saved;
        b->segs[0].stripes[0].pe = keel_lvm_vg_find_lv(vg, "lv15")->segs[0].stripes[0].pe;
        ck_assert_int_eq(keel_lvm_vg_validate(vg, &full), -1);
        ck_assert_int_eq(keel_lvm_text_format(t, vg, DESC, "host", 1, &err), -1);
        ck_assert_str_eq(err.msg, full.msg);
        b->segs[0].stripes[0].pe = pe;
        ck_assert_int_eq(keel_lvm_lv_rename(vg, "lv15", "bad/name", &err), -1);
        a = keel_lvm_vg_find_lv(vg, "lv15");
        saved = a->name;
        a->name = strdup("bad/name");
        ck_assert_int_eq(keel_lvm_vg_validate(vg, &full), -1);
        ck_assert_int_eq(keel_lvm_text_format(t, vg, DESC, "host", 1, &err), -1);
        ck_assert_str_eq(err.msg, full.msg);
        ck_assert_str_eq(err.msg, "VG vg1: LV name 'bad/name': character '/' is not allowed");
        free(a->name);
        a->name = saved;
        same_text(t, vg, 0, "after the refusals");
        /* An LV twice (one cached text must not serve both). */
        ck_assert_ptr_nonnull(vg->lvs = realloc(vg->lvs, (vg->nlvs + 1) * sizeof(*vg->lvs)));
        ck_assert_int_eq(keel_lvm_lv_copy(&vg->lvs[vg->nlvs], &vg->lvs[0]), 0);
        vg->nlvs++;
        ck_assert_int_eq(keel_lvm_vg_validate(vg, &full), -1);
        ck_assert_int_eq(keel_lvm_text_format(t, vg, DESC, "host", 1, &err), -1);
        ck_assert_str_eq(err.msg, full.msg);
        keel_lvm_lv_release(&vg->lvs[--vg->nlvs]);
        same_text(t, vg, 0, "after the duplicate");
    }
    keel_lvm_vg_free(vg);
    keel_lvm_text_free(t);
}
END_TEST

/* Random changes, in place or on copies, each checked against the full format. */
START_TEST(incremental_text_random_changes)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_text *t = keel_lvm_text_new();
    struct keel_lvm_vg *vg = text_vg();
    uint64_t x = 0x9E3779B97F4A7C15u;
    unsigned next = 0;

    for (int step = 0; step < 600; step++) {
        struct keel_lvm_vg *target = vg;
        struct keel_lvm_lv *lv;
        char name[32], tag[32], what[64];
        const char *tv[] = { tag };
        unsigned op;
        size_t changed;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        op = (unsigned)(x % 9);
        if ((x >> 8) % 3 == 0) {
            target = keel_lvm_vg_dup(vg);
            ck_assert_ptr_nonnull(target);
        }
        lv = target->nlvs ? &target->lvs[(x >> 16) % target->nlvs] : NULL;
        changed = SIZE_MAX;
        snprintf(tag, sizeof(tag), "t%u", (unsigned)((x >> 24) % 5));
        snprintf(what, sizeof(what), "step %d op %u", step, op);
        if (op <= 2 || lv == NULL) {
            snprintf(name, sizeof(name), "r%u", next++);
            if (target->nlvs < 60)
                lv_new(target, name, 1 + (x >> 32) % 4, next);
        } else if (op == 3) {
            keel_lvm_lv_extend(target, lv->name, keel_lvm_lv_extents(lv) + 1 + (x >> 32) % 5,
                               &err);
            changed = (size_t)(lv - target->lvs);
        } else if (op == 4 && keel_lvm_lv_extents(lv) > 1) {
            keel_lvm_lv_reduce(target, lv->name, keel_lvm_lv_extents(lv) - 1, &err);
            changed = (size_t)(lv - target->lvs);
        } else if (op == 5) {
            snprintf(name, sizeof(name), "r%u", next++);
            keel_lvm_lv_rename(target, lv->name, name, &err);
            changed = (size_t)(lv - target->lvs);
        } else if (op == 6) {
            keel_lvm_lv_change_tags(target, lv->name, tv, (x >> 40) & 1, tv, !((x >> 40) & 1),
                                    &err);
            changed = (size_t)(lv - target->lvs);
        } else if (op == 7) {
            keel_lvm_lv_remove(target, lv->name, &err);
        } else if (keel_lvm_strlist_has(&lv->status, "VISIBLE")) {
            keel_lvm_strlist_remove(&lv->status, "VISIBLE");
            changed = (size_t)(lv - target->lvs);
        } else {
            keel_lvm_vg_change_tags(target, tv, 1, NULL, 0, &err);
        }
        /* In place, the formatter is told which LV changed (as lvm_store.c does). */
        same_text_as(t, target, target == vg && (x >> 44) % 4 != 0 ? &changed : NULL, -1, what);
        if (target != vg) {
            keel_lvm_vg_free(vg);
            vg = target;
        }
    }
    keel_lvm_vg_free(vg);
    keel_lvm_text_free(t);
}
END_TEST

/* A VG lvm2 wrote (unknown keys, two segments), read again as a new object: texts reused. */
START_TEST(incremental_text_of_a_parsed_vg)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_lvm_text *t = keel_lvm_text_new();
    size_t len, olen;
    char *text = slurp("vg_ex.txt", &len), *out = NULL;
    struct keel_lvm_vg *vg = NULL, *again = NULL;

    ck_assert_msg(keel_lvm_vg_parse(text, len, &vg, &err) == 0, "%s", err.msg);
    same_text(t, vg, (long)vg->nlvs, "lvm2's VG");
    ck_assert_int_eq(keel_lvm_vg_format(vg, DESC, "host", 1795505551, &out, &olen, &err), 0);
    ck_assert_msg(keel_lvm_vg_parse(out, olen, &again, &err) == 0, "%s", err.msg);
    same_text(t, again, 0, "the same VG parsed again");
    ck_assert_int_eq(keel_lvm_lv_extend(again, "lv1", 6, &err), 0);
    same_text(t, again, 1, "extend lv1");
    /* Another VG name: LV names are checked with it, so nothing is reused. */
    free(again->name);
    again->name = strdup("vg_other");
    same_text(t, again, (long)again->nlvs, "renamed VG");
    keel_lvm_vg_free(vg);
    keel_lvm_vg_free(again);
    keel_lvm_text_free(t);
    free(out);
    free(text);
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
    tcase_add_test(tc, crc_zeros_joins_pieces);
    tcase_add_test(tc, ids_and_names);
    tcase_add_test(tc, label_golden);
    tcase_add_test(tc, mda_header_golden);
    tcase_add_test(tc, circular_buffer);
    tcase_add_test(tc, cfg_parser);
    tcase_add_test(tc, vg_golden_roundtrip);
    tcase_add_test(tc, vg_parse_refusals);
    tcase_add_test(tc, incremental_text_equals_full_format);
    tcase_add_test(tc, incremental_text_random_changes);
    tcase_add_test(tc, incremental_text_of_a_parsed_vg);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/*
 * A VG's metadata text, formatted incrementally; see lvm_text.h.
 *
 * Invariants:
 *  1. An entry is immutable once made: the deep copy `lv` of the LV it
 *     formatted, that LV's text, and `visible`.  It was validated
 *     (keel_lvm_lv_validate()) against VG name t->vg_name.
 *  2. t->ent holds the entries of the last VG that formatted successfully,
 *     in that VG's LV order; their names are pairwise distinct (that VG
 *     validated).  A failed call leaves t->ent as it was.
 *  3. An LV reuses an entry only when it equals the entry's copy in every
 *     field and t->vg_name is its VG's name; an entry serves one LV per
 *     call (stamp).  So the reused texts are what formatting would give,
 *     and their names need no check against each other (2).
 *  4. t->cum[k] is the CRC (seed 0) of the texts of t->order[0..k-1].  An
 *     entry pointer names one text for its whole life and old entries are
 *     freed only after the new order is built, so a prefix of equal
 *     pointers is a prefix of equal bytes.
 *  5. Without comparing it (keel_lvm_text_format_changed() only), an LV
 *     reuses an entry when: t->last is that very VG, the caller names
 *     every LV it changed in place, this LV is not that one, and the LV
 *     still has the name, tag array and segment array pointers it had
 *     when the entry last served it (a moved or replaced LV -- put back
 *     from a copy, say -- is compared in full).
 *
 *   keel_lvm_text_format(vg):
 *     validate head --> match or make an entry per LV (validate the new
 *     ones) --> names of new entries unique --> extents --> order, CRCs
 *     --> buffer --> drop the entries no LV used (commit of the cache)
 *   Any failure before the last step frees the new entries only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strbuf.h"
#include "common/strutil.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_text.h"

#define ALIGN 4096
/* Up to this many new LVs, check their names against every LV; more: sort them all. */
#define PAIRWISE_MAX 8

struct entry {
    struct keel_lvm_lv lv;   /* deep copy of the LV as formatted */
    char *text;
    size_t len;
    bool visible;
    unsigned stamp;          /* the call that used it last */
    /* The served LV's pointers at that call (compared, never followed: inv. 5). */
    const char *src_name;
    char *const *src_tags;
    const struct keel_lvm_seg *src_segs;
};

struct keel_lvm_text {
    char *vg_name;           /* the entries were validated in this VG */
    size_t n;
    struct entry **ent;      /* in the last VG's LV order */
    struct entry **order;    /* the same entries, in text order */
    uint32_t *cum;           /* n + 1 running CRCs over order[] (inv. 4) */
    unsigned stamp;
    const struct keel_lvm_vg *last;  /* the VG of the last successful call, or NULL */
    char *buf;               /* the last text, ALIGN-aligned */
    size_t len, cap;
    uint32_t crc;
    size_t reused, formatted;
};

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    keel_lvm_lv_release(&e->lv);
    free(e->text);
    free(e);
}

struct keel_lvm_text *keel_lvm_text_new(void)
{
    return calloc(1, sizeof(struct keel_lvm_text));
}

static void drop_entries(struct keel_lvm_text *t)
{
    for (size_t i = 0; i < t->n; i++)
        entry_free(t->ent[i]);
    free(t->ent);
    free(t->order);
    free(t->cum);
    t->ent = t->order = NULL;
    t->cum = NULL;
    t->n = 0;
}

void keel_lvm_text_free(struct keel_lvm_text *t)
{
    if (t == NULL)
        return;
    drop_entries(t);
    free(t->vg_name);
    free(t->buf);
    free(t);
}

const char *keel_lvm_text_get(const struct keel_lvm_text *t, size_t *len, uint32_t *crc)
{
    if (len)
        *len = t->len;
    if (crc)
        *crc = t->crc;
    return t->buf;
}

void keel_lvm_text_stats(const struct keel_lvm_text *t, size_t *reused, size_t *formatted)
{
    *reused = t->reused;
    *formatted = t->formatted;
}

/* A validated, formatted entry for lv (inv. 1); NULL with err set. */
static struct entry *entry_new(const char *vg_name, const struct keel_lvm_lv *lv,
                               struct keel_error *err)
{
    struct entry *e;
    struct keel_strbuf sb;

    if (keel_lvm_lv_validate(vg_name, lv, err) != 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL || keel_lvm_lv_copy(&e->lv, lv) != 0) {
        free(e);
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    keel_strbuf_init(&sb, 512);
    keel_lvm_lv_format(&sb, lv);
    if (sb.failed) {
        keel_strbuf_release(&sb);
        entry_free(e);
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    e->text = keel_strbuf_detach(&sb, &e->len);
    e->visible = keel_lvm_lv_visible(lv);
    return e;
}

/* The unused entry of the last VG that has lv's id, near index j + *delta. */
static struct entry *match(struct keel_lvm_text *t, const struct keel_lvm_lv *lv, size_t j,
                           ptrdiff_t *delta)
{
    /* Same place, one LV removed before it, one added before it. */
    static const ptrdiff_t tries[] = { 0, 1, -1 };

    for (size_t k = 0; k < sizeof(tries) / sizeof(tries[0]); k++) {
        ptrdiff_t at = (ptrdiff_t)j + *delta + tries[k];
        struct entry *e;

        if (at < 0 || (size_t)at >= t->n)
            continue;
        e = t->ent[at];
        if (e->stamp != t->stamp && memcmp(e->lv.id, lv->id, sizeof(lv->id)) == 0) {
            *delta = at - (ptrdiff_t)j;
            return e;
        }
    }
    return NULL;
}

/* The names of the LVs at fresh[] are unique in vg (inv. 2 covers the others). */
static int fresh_names_unique(const struct keel_lvm_vg *vg, const size_t *fresh, size_t nfresh,
                              struct keel_error *err)
{
    if (nfresh > PAIRWISE_MAX)
        return keel_lvm_vg_check_unique_names(vg, err);
    for (size_t f = 0; f < nfresh; f++) {
        const char *name = vg->lvs[fresh[f]].name;

        for (size_t l = 0; l < vg->nlvs; l++)
            if (l != fresh[f] && strcmp(vg->lvs[l].name, name) == 0)
                return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: two LVs named %s",
                                      vg->name, name);
    }
    return 0;
}

/* Make room for len bytes + zeroes up to the next ALIGN. */
static int reserve(struct keel_lvm_text *t, size_t len)
{
    size_t want = KEEL_ALIGN_UP(len, ALIGN);
    char *b;

    if (want <= t->cap)
        return 0;
    want = KEEL_ALIGN_UP(want + want / 4, ALIGN);
    b = keel_aligned_alloc(ALIGN, want);
    if (b == NULL)
        return -1;
    free(t->buf);
    t->buf = b;
    t->cap = want;
    return 0;
}

/* The LV still has the pointers it had when e served it (inv. 5). */
static bool same_pointers(const struct entry *e, const struct keel_lvm_lv *lv)
{
    return e->src_name == lv->name && e->src_tags == lv->tags.v && e->src_segs == lv->segs;
}

static int format(struct keel_lvm_text *t, const struct keel_lvm_vg *vg, bool trusted,
                  size_t changed, const char *description, const char *host, uint64_t now,
                  struct keel_error *err)
{
    struct entry **ent = NULL, **order = NULL;
    uint32_t *cum = NULL;
    size_t *fresh = NULL, nfresh = 0, n = vg->nlvs, k0, total, off, lvlen = 0;
    struct keel_strbuf head, tail;
    ptrdiff_t delta = 0;
    uint32_t crc;
    int rc = -1;

    keel_strbuf_init(&head, 0);
    keel_strbuf_init(&tail, 0);
    t->len = 0;
    t->reused = t->formatted = 0;
    trusted = trusted && t->last == vg;
    t->last = NULL;
    if (keel_lvm_vg_validate_head(vg, err) != 0)
        goto invalid;
    if (t->vg_name == NULL || strcmp(t->vg_name, vg->name) != 0) {
        /* LV names were validated with the VG's name (inv. 1). */
        char *name = strdup(vg->name);

        if (name == NULL)
            goto nomem;
        drop_entries(t);
        free(t->vg_name);
        t->vg_name = name;
    }
    t->stamp++;
    ent = calloc(n ? n : 1, sizeof(*ent));
    order = calloc(n ? n : 1, sizeof(*order));
    cum = calloc(n + 1, sizeof(*cum));
    fresh = calloc(n ? n : 1, sizeof(*fresh));
    if (ent == NULL || order == NULL || cum == NULL || fresh == NULL)
        goto nomem;
    for (size_t j = 0; j < n; j++) {
        const struct keel_lvm_lv *lv = &vg->lvs[j];
        struct entry *e = match(t, lv, j, &delta);

        if (e != NULL && ((trusted && j != changed && same_pointers(e, lv)) ||
                          keel_lvm_lv_equal(&e->lv, lv))) {
            e->stamp = t->stamp;
            ent[j] = e;
            t->reused++;
            continue;
        }
        /* New or changed: a new entry (the old one stays until the end, inv. 4). */
        if ((ent[j] = entry_new(vg->name, lv, err)) == NULL) {
            if (err->code == KEEL_E_NOMEM)
                goto out;
            goto invalid;
        }
        ent[j]->stamp = t->stamp;
        fresh[nfresh++] = j;
        t->formatted++;
    }
    if (fresh_names_unique(vg, fresh, nfresh, err) != 0 ||
        keel_lvm_vg_validate_extents(vg, err) != 0) {
        if (err->code == KEEL_E_NOMEM)
            goto out;
        goto invalid;
    }

    /* Text order: visible LVs first, as lvm writes them; CRCs past the common prefix. */
    k0 = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < n; j++)
            if (ent[j]->visible == (pass == 0))
                order[k0++] = ent[j];
    for (k0 = 0; k0 < n && k0 < t->n && order[k0] == t->order[k0]; k0++)
        cum[k0] = t->cum[k0];
    cum[k0] = k0 <= t->n && t->cum ? t->cum[k0] : 0;
    for (size_t k = k0; k < n; k++)
        cum[k + 1] = keel_lvm_crc(cum[k], order[k]->text, order[k]->len);
    for (size_t k = 0; k < n; k++)
        lvlen += order[k]->len;

    keel_lvm_vg_format_head(&head, vg);
    keel_lvm_vg_format_tail(&tail, vg, description, host, now);
    if (head.failed || tail.failed)
        goto nomem;
    total = head.len + lvlen + tail.len + 1; /* the NUL is part of the text */
    if (reserve(t, total) != 0)
        goto nomem;
    memcpy(t->buf, head.buf, head.len);
    off = head.len;
    for (size_t k = 0; k < n; k++) {
        memcpy(t->buf + off, order[k]->text, order[k]->len);
        off += order[k]->len;
    }
    memcpy(t->buf + off, tail.buf, tail.len);
    off += tail.len;
    memset(t->buf + off, 0, KEEL_ALIGN_UP(total, ALIGN) - off);
    crc = keel_lvm_crc(KEEL_LVM_CRC_SEED, head.buf, head.len);
    crc = keel_lvm_crc_zeros(crc, lvlen) ^ cum[n];
    t->crc = keel_lvm_crc(crc, t->buf + head.len + lvlen, tail.len + 1);
    t->len = total;

    /* Commit of the cache: entries no LV used go (inv. 2). */
    for (size_t i = 0; i < t->n; i++)
        if (t->ent[i]->stamp != t->stamp)
            entry_free(t->ent[i]);
    free(t->ent);
    free(t->order);
    free(t->cum);
    t->ent = TAKE_PTR(ent);
    t->order = TAKE_PTR(order);
    t->cum = TAKE_PTR(cum);
    t->n = n;
    for (size_t j = 0; j < n; j++) {
        t->ent[j]->src_name = vg->lvs[j].name;
        t->ent[j]->src_tags = vg->lvs[j].tags.v;
        t->ent[j]->src_segs = vg->lvs[j].segs;
    }
    t->last = vg;
    nfresh = 0;
    rc = 0;
    goto out;

invalid:
    /* The same error as keel_lvm_vg_validate(), whatever the order of the checks. */
    {
        struct keel_error full = KEEL_ERROR_INIT;

        if (keel_lvm_vg_validate(vg, &full) != 0)
            keel_error_copy(err, &full);
    }
    goto out;
nomem:
    keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "VG %s: out of memory", vg->name);
out:
    for (size_t f = 0; f < nfresh; f++)
        entry_free(ent[fresh[f]]);
    free(ent);
    free(order);
    free(cum);
    free(fresh);
    keel_strbuf_release(&head);
    keel_strbuf_release(&tail);
    return rc;
}

int keel_lvm_text_format(struct keel_lvm_text *t, const struct keel_lvm_vg *vg,
                         const char *description, const char *host, uint64_t now,
                         struct keel_error *err)
{
    return format(t, vg, false, SIZE_MAX, description, host, now, err);
}

int keel_lvm_text_format_changed(struct keel_lvm_text *t, const struct keel_lvm_vg *vg,
                                 size_t changed, const char *description, const char *host,
                                 uint64_t now, struct keel_error *err)
{
    return format(t, vg, true, changed, description, host, now, err);
}

/*
 * LVM2 VG text metadata: parse, validate, format; see lvm_vg.h.
 *
 * The formatter writes exactly lvm2 2.03's raw on-disk layout
 * (lib/format_text/export.c: no indentation, blank lines where lvm puts
 * them, the trailer after the VG), so that Keel's text and lvm's differ
 * only where the values differ.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/strbuf.h"
#include "common/strutil.h"
#include "metadata/lvm_cfg.h"
#include "metadata/lvm_vg.h"

#define CONTENTS "Text Format Volume Group"

/* ---- string lists ---- */

int keel_lvm_strlist_add(struct keel_lvm_strlist *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (v == NULL)
        return -1;
    l->v = v;
    if ((l->v[l->n] = strdup(s)) == NULL)
        return -1;
    l->n++;
    return 0;
}

bool keel_lvm_strlist_remove(struct keel_lvm_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], s) == 0) {
            free(l->v[i]);
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(l->v[0]));
            l->n--;
            return true;
        }
    }
    return false;
}

bool keel_lvm_strlist_has(const struct keel_lvm_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

void keel_lvm_strlist_release(struct keel_lvm_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int strlist_copy(struct keel_lvm_strlist *dst, const struct keel_lvm_strlist *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->n; i++)
        if (keel_lvm_strlist_add(dst, src->v[i]) != 0)
            return -1;
    return 0;
}

/* ---- freeing and copying ---- */

static void seg_release(struct keel_lvm_seg *s)
{
    keel_lvm_strlist_release(&s->tags);
    free(s->stripes);
    s->stripes = NULL;
}

void keel_lvm_lv_release(struct keel_lvm_lv *lv)
{
    free(lv->name);
    keel_lvm_strlist_release(&lv->status);
    keel_lvm_strlist_release(&lv->flags);
    keel_lvm_strlist_release(&lv->tags);
    free(lv->creation_host);
    for (size_t i = 0; i < lv->nsegs; i++)
        seg_release(&lv->segs[i]);
    free(lv->segs);
    keel_lvm_strlist_release(&lv->extra);
    memset(lv, 0, sizeof(*lv));
}

static void pv_release(struct keel_lvm_pv *pv)
{
    free(pv->device);
    keel_lvm_strlist_release(&pv->status);
    keel_lvm_strlist_release(&pv->flags);
    keel_lvm_strlist_release(&pv->tags);
    keel_lvm_strlist_release(&pv->extra);
}

void keel_lvm_vg_free(struct keel_lvm_vg *vg)
{
    if (vg == NULL)
        return;
    free(vg->name);
    free(vg->format);
    keel_lvm_strlist_release(&vg->status);
    keel_lvm_strlist_release(&vg->flags);
    keel_lvm_strlist_release(&vg->tags);
    keel_lvm_strlist_release(&vg->extra);
    for (size_t i = 0; i < vg->npvs; i++)
        pv_release(&vg->pvs[i]);
    free(vg->pvs);
    for (size_t i = 0; i < vg->nlvs; i++)
        keel_lvm_lv_release(&vg->lvs[i]);
    free(vg->lvs);
    free(vg);
}

static int lv_copy(struct keel_lvm_lv *d, const struct keel_lvm_lv *s)
{
    *d = *s;
    d->name = NULL;
    d->creation_host = NULL;
    d->segs = NULL;
    d->nsegs = 0;
    memset(&d->status, 0, sizeof(d->status));
    memset(&d->flags, 0, sizeof(d->flags));
    memset(&d->tags, 0, sizeof(d->tags));
    memset(&d->extra, 0, sizeof(d->extra));
    if ((d->name = strdup(s->name)) == NULL || (s->creation_host && !(d->creation_host =
                                                                      strdup(s->creation_host))))
        return -1;
    if (strlist_copy(&d->status, &s->status) || strlist_copy(&d->flags, &s->flags) ||
        strlist_copy(&d->tags, &s->tags) || strlist_copy(&d->extra, &s->extra))
        return -1;
    d->segs = calloc(s->nsegs ? s->nsegs : 1, sizeof(*d->segs));
    if (d->segs == NULL)
        return -1;
    for (size_t i = 0; i < s->nsegs; i++) {
        struct keel_lvm_seg *ds = &d->segs[i];
        const struct keel_lvm_seg *ss = &s->segs[i];

        *ds = *ss;
        ds->stripes = NULL;
        memset(&ds->tags, 0, sizeof(ds->tags));
        d->nsegs++;
        ds->stripes = malloc(ss->stripe_count * sizeof(*ds->stripes));
        if (ds->stripes == NULL || strlist_copy(&ds->tags, &ss->tags) != 0)
            return -1;
        memcpy(ds->stripes, ss->stripes, ss->stripe_count * sizeof(*ds->stripes));
    }
    return 0;
}

int keel_lvm_lv_copy(struct keel_lvm_lv *dst, const struct keel_lvm_lv *src)
{
    if (lv_copy(dst, src) != 0) {
        keel_lvm_lv_release(dst);
        return -1;
    }
    return 0;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool strlist_eq(const struct keel_lvm_strlist *a, const struct keel_lvm_strlist *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* Every field, printed or not: lvm_text.c reuses a text only for an equal LV. */
bool keel_lvm_lv_equal(const struct keel_lvm_lv *a, const struct keel_lvm_lv *b)
{
    if (memcmp(a->id, b->id, sizeof(a->id)) != 0 || !str_eq(a->name, b->name) ||
        a->has_ctime != b->has_ctime || a->creation_time != b->creation_time ||
        !str_eq(a->creation_host, b->creation_host) || a->nsegs != b->nsegs ||
        !strlist_eq(&a->status, &b->status) || !strlist_eq(&a->flags, &b->flags) ||
        !strlist_eq(&a->tags, &b->tags) || !strlist_eq(&a->extra, &b->extra))
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        const struct keel_lvm_seg *x = &a->segs[i], *y = &b->segs[i];

        if (x->start_extent != y->start_extent || x->extent_count != y->extent_count ||
            x->stripe_count != y->stripe_count || x->stripe_size != y->stripe_size ||
            !strlist_eq(&x->tags, &y->tags))
            return false;
        for (uint32_t k = 0; k < x->stripe_count; k++)
            if (x->stripes[k].pv != y->stripes[k].pv || x->stripes[k].pe != y->stripes[k].pe)
                return false;
    }
    return true;
}

struct keel_lvm_vg *keel_lvm_vg_dup(const struct keel_lvm_vg *vg)
{
    struct keel_lvm_vg *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *vg;
    d->name = d->format = NULL;
    d->pvs = NULL;
    d->lvs = NULL;
    d->npvs = d->nlvs = 0;
    memset(&d->status, 0, sizeof(d->status));
    memset(&d->flags, 0, sizeof(d->flags));
    memset(&d->tags, 0, sizeof(d->tags));
    memset(&d->extra, 0, sizeof(d->extra));
    if ((d->name = strdup(vg->name)) == NULL || (vg->format && !(d->format = strdup(vg->format))))
        goto fail;
    if (strlist_copy(&d->status, &vg->status) || strlist_copy(&d->flags, &vg->flags) ||
        strlist_copy(&d->tags, &vg->tags) || strlist_copy(&d->extra, &vg->extra))
        goto fail;
    d->pvs = calloc(vg->npvs ? vg->npvs : 1, sizeof(*d->pvs));
    d->lvs = calloc(vg->nlvs ? vg->nlvs : 1, sizeof(*d->lvs));
    if (d->pvs == NULL || d->lvs == NULL)
        goto fail;
    for (size_t i = 0; i < vg->npvs; i++) {
        struct keel_lvm_pv *dp = &d->pvs[i];
        const struct keel_lvm_pv *sp = &vg->pvs[i];

        *dp = *sp;
        dp->device = NULL;
        memset(&dp->status, 0, sizeof(dp->status));
        memset(&dp->flags, 0, sizeof(dp->flags));
        memset(&dp->tags, 0, sizeof(dp->tags));
        memset(&dp->extra, 0, sizeof(dp->extra));
        d->npvs++;
        if ((sp->device && !(dp->device = strdup(sp->device))) ||
            strlist_copy(&dp->status, &sp->status) || strlist_copy(&dp->flags, &sp->flags) ||
            strlist_copy(&dp->tags, &sp->tags) || strlist_copy(&dp->extra, &sp->extra))
            goto fail;
    }
    for (size_t i = 0; i < vg->nlvs; i++) {
        d->nlvs++;
        if (lv_copy(&d->lvs[i], &vg->lvs[i]) != 0)
            goto fail;
    }
    return d;
fail:
    keel_lvm_vg_free(d);
    return NULL;
}

/* ---- lookups ---- */

struct keel_lvm_lv *keel_lvm_vg_find_lv(const struct keel_lvm_vg *vg, const char *name)
{
    for (size_t i = 0; i < vg->nlvs; i++)
        if (strcmp(vg->lvs[i].name, name) == 0)
            return &vg->lvs[i];
    return NULL;
}

int keel_lvm_vg_find_pv(const struct keel_lvm_vg *vg, const char *pv_id)
{
    for (size_t i = 0; i < vg->npvs; i++)
        if (strcmp(vg->pvs[i].id, pv_id) == 0)
            return (int)i;
    return -1;
}

uint64_t keel_lvm_lv_extents(const struct keel_lvm_lv *lv)
{
    uint64_t n = 0;

    for (size_t i = 0; i < lv->nsegs; i++)
        n += lv->segs[i].extent_count;
    return n;
}

uint64_t keel_lvm_vg_total_extents(const struct keel_lvm_vg *vg)
{
    uint64_t n = 0;

    for (size_t i = 0; i < vg->npvs; i++)
        n += vg->pvs[i].pe_count;
    return n;
}

uint64_t keel_lvm_vg_free_extents(const struct keel_lvm_vg *vg)
{
    uint64_t used = 0;

    for (size_t i = 0; i < vg->nlvs; i++)
        used += keel_lvm_lv_extents(&vg->lvs[i]);
    return keel_lvm_vg_total_extents(vg) - used;
}

/* ---- parsing ---- */

struct pctx {
    const struct keel_cfg *cfg;
    struct keel_error *err;
    const char *vg;
    char where[200];   /* "VG x: LV y: segment2" */
};

static int perr(struct pctx *c, enum keel_errc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct pctx *c, enum keel_errc code, const char *fmt, ...)
{
    char msg[KEEL_ERR_MSG];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return keel_error_set(c->err, code, 0, "%s: %s", c->where, msg);
}

static const struct keel_cfg_node *child(const struct keel_cfg_node *sec, const char *key)
{
    for (const struct keel_cfg_node *n = sec->child; n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

static int get_int(struct pctx *c, const struct keel_cfg_node *sec, const char *key, bool required,
                   int64_t min, int64_t max, int64_t *ret, bool *present)
{
    const struct keel_cfg_node *n = child(sec, key);

    if (present)
        *present = n != NULL;
    if (n == NULL) {
        if (required)
            return perr(c, KEEL_E_FORMAT, "missing %s", key);
        return 0;
    }
    if (n->is_section || n->is_array || n->values == NULL || n->values->type != KEEL_CFG_INT)
        return perr(c, KEEL_E_FORMAT, "%s is not an integer", key);
    if (n->values->i < min || n->values->i > max)
        return perr(c, KEEL_E_FORMAT, "%s = %" PRId64 " out of range", key, n->values->i);
    *ret = n->values->i;
    return 0;
}

static int get_str(struct pctx *c, const struct keel_cfg_node *sec, const char *key, bool required,
                   const char **ret)
{
    const struct keel_cfg_node *n = child(sec, key);

    *ret = NULL;
    if (n == NULL)
        return required ? perr(c, KEEL_E_FORMAT, "missing %s", key) : 0;
    if (n->is_section || n->is_array || n->values == NULL || n->values->type != KEEL_CFG_STRING)
        return perr(c, KEEL_E_FORMAT, "%s is not a string", key);
    *ret = n->values->s;
    return 0;
}

static int get_strlist(struct pctx *c, const struct keel_cfg_node *sec, const char *key,
                       bool required, struct keel_lvm_strlist *ret)
{
    const struct keel_cfg_node *n = child(sec, key);

    if (n == NULL)
        return required ? perr(c, KEEL_E_FORMAT, "missing %s", key) : 0;
    if (n->is_section || !n->is_array)
        return perr(c, KEEL_E_FORMAT, "%s is not a list", key);
    for (const struct keel_cfg_value *v = n->values; v; v = v->next) {
        if (v->type != KEEL_CFG_STRING)
            return perr(c, KEEL_E_FORMAT, "%s holds a value that is not a string", key);
        if (keel_lvm_strlist_add(ret, v->s) != 0)
            return perr(c, KEEL_E_NOMEM, "out of memory");
    }
    return 0;
}

static int get_id(struct pctx *c, const struct keel_cfg_node *sec, char out[KEEL_LVM_ID_LEN + 1])
{
    const char *s;

    if (get_str(c, sec, "id", true, &s) != 0)
        return -1;
    if (keel_lvm_id_parse(s, strlen(s), out) != 0)
        return perr(c, KEEL_E_FORMAT, "invalid id \"%s\"", s);
    return 0;
}

static void render_value(struct keel_strbuf *sb, const struct keel_cfg_value *v)
{
    switch (v->type) {
    case KEEL_CFG_INT:
        keel_strbuf_addf(sb, "%" PRId64, v->i);
        break;
    case KEEL_CFG_FLOAT:
        keel_strbuf_addf(sb, "%.17g", v->f);
        break;
    case KEEL_CFG_STRING:
        keel_strbuf_adds(sb, "\"");
        for (const char *p = v->s; *p; p++) {
            if (*p == '"' || *p == '\\')
                keel_strbuf_adds(sb, "\\");
            keel_strbuf_add(sb, p, 1);
        }
        keel_strbuf_adds(sb, "\"");
        break;
    }
}

/* Keep an assignment Keel does not interpret as a "key = value" line. */
static int keep_extra(struct pctx *c, struct keel_lvm_strlist *extra,
                      const struct keel_cfg_node *n)
{
    struct keel_strbuf sb;
    int rc;

    if (n->is_section)
        return perr(c, KEEL_E_UNSUPPORTED, "section %s is not supported", n->key);
    keel_strbuf_init(&sb, 64);
    /* A key read from a quoted string may hold anything: quote it back then. */
    {
        bool plain = n->key[0] != '\0';

        for (const char *k = n->key; *k; k++)
            if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
                  (*k >= '0' && *k <= '9') || *k == '_'))
                plain = false;
        if (plain) {
            keel_strbuf_adds(&sb, n->key);
        } else {
            struct keel_cfg_value k = { .type = KEEL_CFG_STRING, .s = n->key };

            render_value(&sb, &k);
        }
        keel_strbuf_adds(&sb, " = ");
    }
    if (n->is_array) {
        keel_strbuf_adds(&sb, "[");
        for (const struct keel_cfg_value *v = n->values; v; v = v->next) {
            render_value(&sb, v);
            if (v->next)
                keel_strbuf_adds(&sb, ", ");
        }
        keel_strbuf_adds(&sb, "]");
    } else {
        render_value(&sb, n->values);
    }
    rc = sb.failed ? -1 : keel_lvm_strlist_add(extra, sb.buf);
    keel_strbuf_release(&sb);
    return rc != 0 ? perr(c, KEEL_E_NOMEM, "out of memory") : 0;
}

static bool is_one_of(const char *key, const char *const *keys)
{
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0)
            return true;
    return false;
}

static int parse_pv(struct pctx *c, const struct keel_cfg_node *sec, struct keel_lvm_pv *pv)
{
    static const char *const known[] = { "id", "device", "status", "flags", "tags", "dev_size",
                                         "pe_start", "pe_count", "ba_start", "ba_size", NULL };
    const char *dev;
    int64_t v;

    if (get_id(c, sec, pv->id) || get_str(c, sec, "device", false, &dev) ||
        get_strlist(c, sec, "status", true, &pv->status) ||
        get_strlist(c, sec, "flags", false, &pv->flags) ||
        get_strlist(c, sec, "tags", false, &pv->tags))
        return -1;
    if (dev && (pv->device = strdup(dev)) == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    if (get_int(c, sec, "dev_size", false, 0, INT64_MAX, &v, &pv->has_dev_size) != 0)
        return -1;
    if (pv->has_dev_size)
        pv->dev_size = (uint64_t)v;
    if (get_int(c, sec, "pe_start", true, 0, INT64_MAX, &v, NULL) != 0)
        return -1;
    pv->pe_start = (uint64_t)v;
    if (get_int(c, sec, "pe_count", true, 0, UINT32_MAX, &v, NULL) != 0)
        return -1;
    pv->pe_count = (uint32_t)v;
    v = 0;
    if (get_int(c, sec, "ba_start", false, 0, INT64_MAX, &v, NULL) != 0)
        return -1;
    pv->ba_start = (uint64_t)v;
    v = 0;
    if (get_int(c, sec, "ba_size", false, 0, INT64_MAX, &v, NULL) != 0)
        return -1;
    pv->ba_size = (uint64_t)v;
    for (const struct keel_cfg_node *n = sec->child; n; n = n->next)
        if (!is_one_of(n->key, known) && keep_extra(c, &pv->extra, n) != 0)
            return -1;
    return 0;
}

/* "pv3" -> 3 when that PV exists. */
static int pv_ref(const struct keel_lvm_vg *vg, const char *s, uint32_t *ret)
{
    uint64_t i;

    if (strncmp(s, "pv", 2) != 0 || keel_parse_u64(s + 2, &i) != 0 || i >= vg->npvs)
        return -1;
    *ret = (uint32_t)i;
    return 0;
}

static int parse_seg(struct pctx *c, const struct keel_lvm_vg *vg, const struct keel_cfg_node *sec,
                     struct keel_lvm_seg *s)
{
    static const char *const known[] = { "start_extent", "extent_count", "type", "stripe_count",
                                         "stripe_size", "stripes", "tags", NULL };
    const struct keel_cfg_node *stripes;
    const struct keel_cfg_value *v;
    const char *type;
    int64_t i;

    for (const struct keel_cfg_node *n = sec->child; n; n = n->next)
        if (!is_one_of(n->key, known))
            return perr(c, KEEL_E_UNSUPPORTED, "segment key %s is not supported", n->key);
    if (get_int(c, sec, "start_extent", true, 0, UINT32_MAX, &i, NULL) != 0)
        return -1;
    s->start_extent = (uint32_t)i;
    if (get_int(c, sec, "extent_count", true, 1, UINT32_MAX, &i, NULL) != 0)
        return -1;
    s->extent_count = (uint32_t)i;
    if (get_str(c, sec, "type", true, &type) != 0)
        return -1;
    if (strcmp(type, "striped") != 0)
        return perr(c, KEEL_E_UNSUPPORTED, "segment type \"%s\" is not supported (only linear "
                                           "and striped)", type);
    if (get_int(c, sec, "stripe_count", true, 1, 1024, &i, NULL) != 0)
        return -1;
    s->stripe_count = (uint32_t)i;
    i = 0;
    if (get_int(c, sec, "stripe_size", s->stripe_count > 1, 0, UINT32_MAX, &i, NULL) != 0)
        return -1;
    s->stripe_size = (uint32_t)i;
    if (get_strlist(c, sec, "tags", false, &s->tags) != 0)
        return -1;
    stripes = child(sec, "stripes");
    if (stripes == NULL || !stripes->is_array)
        return perr(c, KEEL_E_FORMAT, "missing stripes");
    s->stripes = calloc(s->stripe_count, sizeof(*s->stripes));
    if (s->stripes == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    v = stripes->values;
    for (uint32_t k = 0; k < s->stripe_count; k++) {
        if (v == NULL || v->type != KEEL_CFG_STRING || v->next == NULL ||
            v->next->type != KEEL_CFG_INT)
            return perr(c, KEEL_E_FORMAT, "stripes must be %u pairs of \"pvN\", extent",
                        s->stripe_count);
        if (pv_ref(vg, v->s, &s->stripes[k].pv) != 0)
            return perr(c, KEEL_E_CORRUPT, "stripe on unknown PV \"%s\"", v->s);
        if (v->next->i < 0 || v->next->i > UINT32_MAX)
            return perr(c, KEEL_E_FORMAT, "stripe extent out of range");
        s->stripes[k].pe = (uint32_t)v->next->i;
        v = v->next->next;
    }
    if (v != NULL)
        return perr(c, KEEL_E_FORMAT, "stripes has more than %u pairs", s->stripe_count);
    if (s->extent_count % s->stripe_count != 0)
        return perr(c, KEEL_E_CORRUPT, "extent_count %u is not a multiple of stripe_count %u",
                    s->extent_count, s->stripe_count);
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct keel_lvm_seg *x = a, *y = b;

    return x->start_extent < y->start_extent ? -1 : x->start_extent > y->start_extent;
}

/* Merge contiguous linear segments, as lvm does when it reads them. */
static void merge_segs(struct keel_lvm_lv *lv)
{
    size_t o = 0;

    for (size_t i = 0; i < lv->nsegs; i++) {
        struct keel_lvm_seg *prev = o ? &lv->segs[o - 1] : NULL;
        struct keel_lvm_seg *s = &lv->segs[i];

        if (prev && prev->stripe_count == 1 && s->stripe_count == 1 && prev->tags.n == 0 &&
            s->tags.n == 0 && prev->stripes[0].pv == s->stripes[0].pv &&
            (uint64_t)prev->stripes[0].pe + prev->extent_count == s->stripes[0].pe &&
            prev->start_extent + prev->extent_count == s->start_extent) {
            prev->extent_count += s->extent_count;
            seg_release(s);
            continue;
        }
        if (o != i)
            lv->segs[o] = *s;
        o++;
    }
    lv->nsegs = o;
}

static int parse_lv(struct pctx *c, const struct keel_lvm_vg *vg, const struct keel_cfg_node *sec,
                    struct keel_lvm_lv *lv)
{
    static const char *const known[] = { "id", "status", "flags", "tags", "creation_time",
                                         "creation_host", "segment_count", NULL };
    const char *host;
    int64_t v, count;
    bool has_time;
    size_t nsec = 0;
    char base[200];

    if ((lv->name = strdup(sec->key)) == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    if (get_id(c, sec, lv->id) || get_strlist(c, sec, "status", true, &lv->status) ||
        get_strlist(c, sec, "flags", false, &lv->flags) ||
        get_strlist(c, sec, "tags", false, &lv->tags))
        return -1;
    if (get_int(c, sec, "creation_time", false, 0, INT64_MAX, &v, &has_time) != 0 ||
        get_str(c, sec, "creation_host", false, &host) != 0)
        return -1;
    if (has_time != (host != NULL))
        return perr(c, KEEL_E_FORMAT, "creation_time and creation_host go together");
    if (has_time) {
        lv->has_ctime = true;
        lv->creation_time = (uint64_t)v;
        if ((lv->creation_host = strdup(host)) == NULL)
            return perr(c, KEEL_E_NOMEM, "out of memory");
    }
    if (get_int(c, sec, "segment_count", true, 1, UINT32_MAX, &count, NULL) != 0)
        return -1;
    for (const struct keel_cfg_node *n = sec->child; n; n = n->next) {
        if (n->is_section)
            nsec++;
        else if (!is_one_of(n->key, known) && keep_extra(c, &lv->extra, n) != 0)
            return -1;
    }
    if ((int64_t)nsec != count)
        return perr(c, KEEL_E_CORRUPT, "segment_count is %" PRId64 " but there are %zu segments",
                    count, nsec);
    lv->segs = calloc(nsec, sizeof(*lv->segs));
    if (lv->segs == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    keel_strlcpy(base, c->where, sizeof(base));
    for (const struct keel_cfg_node *n = sec->child; n; n = n->next) {
        if (!n->is_section)
            continue;
        snprintf(c->where, sizeof(c->where), "%s: %s", base, n->key);
        lv->nsegs++;
        if (parse_seg(c, vg, n, &lv->segs[lv->nsegs - 1]) != 0)
            return -1;
    }
    keel_strlcpy(c->where, base, sizeof(c->where));
    qsort(lv->segs, lv->nsegs, sizeof(*lv->segs), cmp_seg);
    merge_segs(lv);
    return 0;
}

static int parse_vg(struct pctx *c, const struct keel_cfg_node *vgsec, struct keel_lvm_vg *vg)
{
    const struct keel_cfg_node *sec = vgsec;
    static const char *const known[] = { "id", "seqno", "format", "status", "flags", "tags",
                                         "extent_size", "max_lv", "max_pv", "metadata_copies",
                                         "physical_volumes", "logical_volumes", NULL };
    static const char *const statuses[] = { "RESIZEABLE", "READ", "WRITE", "EXPORTED", "PVMOVE",
                                            "CLUSTERED", "SHARED", NULL };
    const struct keel_cfg_node *pvs, *lvs;
    const char *fmt;
    int64_t v;
    size_t n;

    if ((vg->name = strdup(sec->key)) == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    if (get_id(c, sec, vg->id) != 0 || get_int(c, sec, "seqno", true, 0, UINT32_MAX, &v, NULL))
        return -1;
    vg->seqno = (uint32_t)v;
    if (get_str(c, sec, "format", false, &fmt) != 0)
        return -1;
    if (fmt && (vg->format = strdup(fmt)) == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    if (get_strlist(c, sec, "status", true, &vg->status) ||
        get_strlist(c, sec, "flags", false, &vg->flags) ||
        get_strlist(c, sec, "tags", false, &vg->tags))
        return -1;
    for (size_t i = 0; i < vg->status.n; i++)
        if (!is_one_of(vg->status.v[i], statuses))
            return perr(c, KEEL_E_FORMAT, "unknown status \"%s\"", vg->status.v[i]);
    if (get_int(c, sec, "extent_size", true, 1, UINT32_MAX, &v, NULL) != 0)
        return -1;
    vg->extent_size = (uint32_t)v;
    if (get_int(c, sec, "max_lv", true, 0, UINT32_MAX, &v, NULL) != 0)
        return -1;
    vg->max_lv = (uint32_t)v;
    if (get_int(c, sec, "max_pv", true, 0, UINT32_MAX, &v, NULL) != 0)
        return -1;
    vg->max_pv = (uint32_t)v;
    if (get_int(c, sec, "metadata_copies", false, 0, UINT32_MAX, &v, &vg->has_metadata_copies))
        return -1;
    if (vg->has_metadata_copies)
        vg->metadata_copies = (uint32_t)v;
    for (const struct keel_cfg_node *k = sec->child; k; k = k->next)
        if (!is_one_of(k->key, known) && keep_extra(c, &vg->extra, k) != 0)
            return -1;

    pvs = child(sec, "physical_volumes");
    if (pvs == NULL || !pvs->is_section)
        return perr(c, KEEL_E_FORMAT, "missing physical_volumes");
    for (n = 0, sec = pvs->child; sec; sec = sec->next)
        n++;
    vg->pvs = calloc(n ? n : 1, sizeof(*vg->pvs));
    if (vg->pvs == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    /* PVs are referred to as "pvN" by name: keep their index = N order. */
    for (size_t idx = 0; idx < n; idx++) {
        char name[32];
        const struct keel_cfg_node *p;

        snprintf(name, sizeof(name), "pv%zu", idx);
        p = child(pvs, name);
        if (p == NULL || !p->is_section)
            return perr(c, KEEL_E_FORMAT, "physical_volumes: missing %s", name);
        snprintf(c->where, sizeof(c->where), "VG %s: %s", vg->name, name);
        vg->npvs++;
        if (parse_pv(c, p, &vg->pvs[idx]) != 0)
            return -1;
    }
    lvs = child(vgsec, "logical_volumes");
    if (lvs == NULL)
        return 0;
    if (!lvs->is_section)
        return perr(c, KEEL_E_FORMAT, "logical_volumes is not a section");
    for (n = 0, sec = lvs->child; sec; sec = sec->next)
        n++;
    vg->lvs = calloc(n ? n : 1, sizeof(*vg->lvs));
    if (vg->lvs == NULL)
        return perr(c, KEEL_E_NOMEM, "out of memory");
    for (sec = lvs->child; sec; sec = sec->next) {
        if (!sec->is_section)
            return perr(c, KEEL_E_FORMAT, "logical_volumes: %s is not a section", sec->key);
        snprintf(c->where, sizeof(c->where), "VG %s: LV %s", vg->name, sec->key);
        vg->nlvs++;
        if (parse_lv(c, vg, sec, &vg->lvs[vg->nlvs - 1]) != 0)
            return -1;
    }
    return 0;
}

int keel_lvm_vg_parse(const char *text, size_t len, struct keel_lvm_vg **ret,
                      struct keel_error *err)
{
    struct keel_cfg *cfg = NULL;
    struct keel_lvm_vg *vg = NULL;
    const struct keel_cfg_node *vgsec = NULL, *n;
    struct pctx c = { .err = err };
    int64_t version;
    const char *contents;

    if (keel_lvm_cfg_parse(text, len, &cfg, err) != 0)
        return keel_error_prefix(err, "VG metadata");
    c.cfg = cfg;
    snprintf(c.where, sizeof(c.where), "VG metadata");
    for (n = cfg->first; n; n = n->next)
        if (n->is_section) {
            vgsec = n;
            break;
        }
    if (vgsec == NULL) {
        perr(&c, KEEL_E_FORMAT, "no volume group section");
        goto fail;
    }
    {
        struct keel_cfg_node top = { .key = "<top>", .is_section = true,
                                     .child = (struct keel_cfg_node *)cfg->first };

        if (get_str(&c, &top, "contents", true, &contents) != 0)
            goto fail;
        if (strcmp(contents, CONTENTS) != 0) {
            perr(&c, KEEL_E_FORMAT, "contents is \"%s\", not \"" CONTENTS "\"", contents);
            goto fail;
        }
        if (get_int(&c, &top, "version", true, 1, 1, &version, NULL) != 0)
            goto fail;
    }
    if (keel_lvm_check_vg_name(vgsec->key, err) != 0) {
        keel_error_prefix(err, "VG metadata");
        goto fail;
    }
    vg = calloc(1, sizeof(*vg));
    if (vg == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(c.where, sizeof(c.where), "VG %s", vgsec->key);
    if (parse_vg(&c, vgsec, vg) != 0)
        goto fail;
    keel_lvm_cfg_free(cfg);
    cfg = NULL;
    if (keel_lvm_vg_validate(vg, err) != 0)
        goto fail;
    *ret = vg;
    return 0;
fail:
    keel_lvm_cfg_free(cfg);
    keel_lvm_vg_free(vg);
    return -1;
}

/* ---- validation ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Two LVs with one name, found by sorting (a VG may hold thousands of LVs). */
int keel_lvm_vg_check_unique_names(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    const char **names;
    int rc = 0;

    if (vg->nlvs < 2)
        return 0;
    names = malloc(vg->nlvs * sizeof(*names));
    if (names == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    for (size_t l = 0; l < vg->nlvs; l++)
        names[l] = vg->lvs[l].name;
    qsort(names, vg->nlvs, sizeof(*names), cmp_name);
    for (size_t l = 1; l < vg->nlvs && rc == 0; l++)
        if (strcmp(names[l - 1], names[l]) == 0)
            rc = keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: two LVs named %s", vg->name,
                                names[l]);
    free(names);
    return rc;
}

/* The VG's own name, id, extent size and tags. */
static int validate_vg_fields(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    if (keel_lvm_check_vg_name(vg->name, err) != 0)
        return keel_error_prefix(err, "VG metadata");
    if (!keel_lvm_id_valid_raw(vg->id))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: invalid id", vg->name);
    if (vg->extent_size == 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: extent_size is 0", vg->name);
    for (size_t i = 0; i < vg->tags.n; i++)
        if (keel_lvm_check_tag(vg->tags.v[i], err) != 0)
            return keel_error_prefix(err, "VG %s", vg->name);
    return 0;
}

/* PV ids valid and distinct. */
static int validate_pvs(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    for (size_t p = 0; p < vg->npvs; p++) {
        if (!keel_lvm_id_valid_raw(vg->pvs[p].id))
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: pv%zu: invalid id", vg->name,
                                  p);
        for (size_t q = 0; q < p; q++)
            if (strcmp(vg->pvs[p].id, vg->pvs[q].id) == 0)
                return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                      "VG %s: pv%zu and pv%zu have the same id", vg->name, q, p);
    }
    return 0;
}

int keel_lvm_lv_validate(const char *vg_name, const struct keel_lvm_lv *lv,
                         struct keel_error *err)
{
    if (keel_lvm_check_lv_name(vg_name, lv->name, err) != 0)
        return keel_error_prefix(err, "VG %s", vg_name);
    if (!keel_lvm_id_valid_raw(lv->id))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: LV %s: invalid id", vg_name,
                              lv->name);
    for (size_t t = 0; t < lv->tags.n; t++)
        if (keel_lvm_check_tag(lv->tags.v[t], err) != 0)
            return keel_error_prefix(err, "VG %s: LV %s", vg_name, lv->name);
    return 0;
}

/* One bitmap of used extents per PV, for lv_extents_ok(). */
static uint8_t **used_new(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    uint8_t **used = calloc(vg->npvs ? vg->npvs : 1, sizeof(*used));

    if (used == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t p = 0; p < vg->npvs; p++) {
        used[p] = calloc((size_t)vg->pvs[p].pe_count / 8 + 1, 1);
        if (used[p] == NULL) {
            for (size_t q = 0; q < p; q++)
                free(used[q]);
            free(used);
            keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
            return NULL;
        }
    }
    return used;
}

static void used_free(const struct keel_lvm_vg *vg, uint8_t **used)
{
    for (size_t p = 0; used && p < vg->npvs; p++)
        free(used[p]);
    free(used);
}

/* Segments cover lv without gaps, every PE inside its PV and not in `used` yet (marked). */
static int lv_extents_ok(const struct keel_lvm_vg *vg, const struct keel_lvm_lv *lv,
                         uint8_t **used, struct keel_error *err)
{
    uint64_t le = 0;

    if (lv->nsegs == 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: LV %s has no segments", vg->name,
                              lv->name);
    for (size_t s = 0; s < lv->nsegs; s++) {
        const struct keel_lvm_seg *sg = &lv->segs[s];
        uint32_t per = sg->extent_count / sg->stripe_count;

        if (sg->start_extent != le)
            return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                  "VG %s: LV %s: segments leave a gap or overlap at extent %"
                                  PRIu64, vg->name, lv->name, le);
        le += sg->extent_count;
        for (uint32_t k = 0; k < sg->stripe_count; k++) {
            const struct keel_lvm_stripe *st = &sg->stripes[k];
            const struct keel_lvm_pv *pv;

            if (st->pv >= vg->npvs)
                return keel_error_set(err, KEEL_E_CORRUPT, 0, "VG %s: LV %s: unknown PV",
                                      vg->name, lv->name);
            pv = &vg->pvs[st->pv];
            if ((uint64_t)st->pe + per > pv->pe_count)
                return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                      "VG %s: LV %s: extents %u-%" PRIu64 " of pv%u are beyond "
                                      "its %u extents", vg->name, lv->name, st->pe,
                                      (uint64_t)st->pe + per - 1, st->pv, pv->pe_count);
            for (uint64_t pe = st->pe; pe < (uint64_t)st->pe + per; pe++) {
                uint8_t bit = (uint8_t)(1u << (pe % 8));

                if (used[st->pv][pe / 8] & bit)
                    return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                          "VG %s: LV %s: extent %" PRIu64 " of pv%u is used "
                                          "twice", vg->name, lv->name, pe, st->pv);
                used[st->pv][pe / 8] |= bit;
            }
        }
    }
    return 0;
}

int keel_lvm_vg_validate_head(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    if (validate_vg_fields(vg, err) != 0 || validate_pvs(vg, err) != 0)
        return -1;
    return 0;
}

int keel_lvm_vg_validate_extents(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    uint8_t **used = used_new(vg, err);
    int rc = 0;

    if (used == NULL)
        return -1;
    for (size_t l = 0; l < vg->nlvs && rc == 0; l++)
        rc = lv_extents_ok(vg, &vg->lvs[l], used, err);
    used_free(vg, used);
    return rc;
}

int keel_lvm_vg_validate(const struct keel_lvm_vg *vg, struct keel_error *err)
{
    uint8_t **used;
    int rc = 0;

    if (validate_vg_fields(vg, err) != 0 || keel_lvm_vg_check_unique_names(vg, err) != 0 ||
        validate_pvs(vg, err) != 0)
        return -1;
    if ((used = used_new(vg, err)) == NULL)
        return -1;
    for (size_t l = 0; l < vg->nlvs && rc == 0; l++)
        if (keel_lvm_lv_validate(vg->name, &vg->lvs[l], err) != 0 ||
            lv_extents_ok(vg, &vg->lvs[l], used, err) != 0)
            rc = -1;
    used_free(vg, used);
    return rc;
}

/* ---- formatting ---- */

static void out_strlist(struct keel_strbuf *sb, const char *key, const struct keel_lvm_strlist *l,
                        bool always)
{
    if (l->n == 0 && !always)
        return;
    keel_strbuf_addf(sb, "%s = [", key);
    for (size_t i = 0; i < l->n; i++) {
        struct keel_cfg_value v = { .type = KEEL_CFG_STRING, .s = l->v[i] };

        if (i > 0)
            keel_strbuf_adds(sb, ", ");
        render_value(sb, &v);
    }
    keel_strbuf_adds(sb, "]\n");
}

static void out_extra(struct keel_strbuf *sb, const struct keel_lvm_strlist *extra)
{
    for (size_t i = 0; i < extra->n; i++)
        keel_strbuf_addf(sb, "%s\n", extra->v[i]);
}

static void out_id(struct keel_strbuf *sb, const char *raw)
{
    char dashed[KEEL_LVM_ID_DASHED_LEN + 1];

    keel_lvm_id_dash(raw, dashed);
    keel_strbuf_addf(sb, "id = \"%s\"\n", dashed);
}

void keel_lvm_lv_format(struct keel_strbuf *sb, const struct keel_lvm_lv *lv)
{
    keel_strbuf_addf(sb, "\n%s {\n", lv->name);
    out_id(sb, lv->id);
    out_strlist(sb, "status", &lv->status, true);
    out_strlist(sb, "flags", &lv->flags, true);
    out_strlist(sb, "tags", &lv->tags, false);
    if (lv->has_ctime) {
        struct keel_cfg_value host = { .type = KEEL_CFG_STRING, .s = lv->creation_host };

        keel_strbuf_addf(sb, "creation_time = %" PRIu64 "\ncreation_host = ", lv->creation_time);
        render_value(sb, &host);
        keel_strbuf_adds(sb, "\n");
    }
    out_extra(sb, &lv->extra);
    keel_strbuf_addf(sb, "segment_count = %zu\n\n", lv->nsegs);
    for (size_t s = 0; s < lv->nsegs; s++) {
        const struct keel_lvm_seg *sg = &lv->segs[s];

        keel_strbuf_addf(sb, "segment%zu {\nstart_extent = %u\nextent_count = %u\n\n"
                             "type = \"striped\"\n", s + 1, sg->start_extent, sg->extent_count);
        out_strlist(sb, "tags", &sg->tags, false);
        keel_strbuf_addf(sb, "stripe_count = %u\n", sg->stripe_count);
        if (sg->stripe_count > 1)
            keel_strbuf_addf(sb, "stripe_size = %u\n", sg->stripe_size);
        keel_strbuf_adds(sb, "\nstripes = [\n");
        for (uint32_t k = 0; k < sg->stripe_count; k++)
            keel_strbuf_addf(sb, "\"pv%u\", %u%s\n", sg->stripes[k].pv, sg->stripes[k].pe,
                             k + 1 < sg->stripe_count ? "," : "");
        keel_strbuf_adds(sb, "]\n}\n");
    }
    keel_strbuf_adds(sb, "}\n");
}

bool keel_lvm_lv_visible(const struct keel_lvm_lv *lv)
{
    return keel_lvm_strlist_has(&lv->status, "VISIBLE");
}

void keel_lvm_vg_format_head(struct keel_strbuf *sb, const struct keel_lvm_vg *vg)
{
    struct keel_cfg_value v = { .type = KEEL_CFG_STRING };

    keel_strbuf_addf(sb, "%s {\n", vg->name);
    out_id(sb, vg->id);
    keel_strbuf_addf(sb, "seqno = %u\n", vg->seqno);
    if (vg->format) {
        v.s = vg->format;
        keel_strbuf_adds(sb, "format = ");
        render_value(sb, &v);
        keel_strbuf_adds(sb, "\n");
    }
    out_strlist(sb, "status", &vg->status, true);
    out_strlist(sb, "flags", &vg->flags, true);
    out_strlist(sb, "tags", &vg->tags, false);
    keel_strbuf_addf(sb, "extent_size = %u\nmax_lv = %u\nmax_pv = %u\n", vg->extent_size,
                     vg->max_lv, vg->max_pv);
    out_extra(sb, &vg->extra);
    if (vg->has_metadata_copies)
        keel_strbuf_addf(sb, "metadata_copies = %u\n", vg->metadata_copies);
    keel_strbuf_adds(sb, "\nphysical_volumes {\n");
    for (size_t p = 0; p < vg->npvs; p++) {
        const struct keel_lvm_pv *pv = &vg->pvs[p];

        keel_strbuf_addf(sb, "\npv%zu {\n", p);
        out_id(sb, pv->id);
        if (pv->device) {
            v.s = pv->device;
            keel_strbuf_adds(sb, "device = ");
            render_value(sb, &v);
            keel_strbuf_adds(sb, "\n");
        }
        keel_strbuf_adds(sb, "\n");
        out_strlist(sb, "status", &pv->status, true);
        out_strlist(sb, "flags", &pv->flags, true);
        out_strlist(sb, "tags", &pv->tags, false);
        if (pv->has_dev_size)
            keel_strbuf_addf(sb, "dev_size = %" PRIu64 "\n", pv->dev_size);
        keel_strbuf_addf(sb, "pe_start = %" PRIu64 "\npe_count = %u\n", pv->pe_start,
                         pv->pe_count);
        if (pv->ba_start && pv->ba_size)
            keel_strbuf_addf(sb, "ba_start = %" PRIu64 "\nba_size = %" PRIu64 "\n", pv->ba_start,
                             pv->ba_size);
        out_extra(sb, &pv->extra);
        keel_strbuf_adds(sb, "}\n");
    }
    keel_strbuf_adds(sb, "}\n\n");
    if (vg->nlvs > 0)
        keel_strbuf_adds(sb, "logical_volumes {\n");
}

void keel_lvm_vg_format_tail(struct keel_strbuf *sb, const struct keel_lvm_vg *vg,
                             const char *description, const char *host, uint64_t now)
{
    struct keel_cfg_value v = { .type = KEEL_CFG_STRING };
    char tbuf[64];
    time_t t = (time_t)now;
    struct tm tm;

    if (vg->nlvs > 0)
        keel_strbuf_adds(sb, "}\n");
    keel_strbuf_adds(sb, "\n}\n");
    gmtime_r(&t, &tm);
    strftime(tbuf, sizeof(tbuf), "%a %b %e %H:%M:%S %Y", &tm);
    keel_strbuf_addf(sb, "# Generated by Keel: %s\n\n", tbuf);
    keel_strbuf_adds(sb, "contents = \"" CONTENTS "\"\nversion = 1\n\ndescription = ");
    v.s = description ? description : "";
    render_value(sb, &v);
    keel_strbuf_adds(sb, "\n\ncreation_host = ");
    v.s = host ? host : "";
    render_value(sb, &v);
    keel_strbuf_addf(sb, "\t# Keel\ncreation_time = %" PRIu64 "\t# %s\n\n", now, tbuf);
}

int keel_lvm_vg_format(const struct keel_lvm_vg *vg, const char *description, const char *host,
                       uint64_t now, char **ret, size_t *len, struct keel_error *err)
{
    struct keel_strbuf sb;

    keel_strbuf_init(&sb, 1024 + vg->nlvs * 480);
    keel_lvm_vg_format_head(&sb, vg);
    /* Visible LVs first, as lvm writes them. */
    for (size_t l = 0; l < vg->nlvs; l++)
        if (keel_lvm_lv_visible(&vg->lvs[l]))
            keel_lvm_lv_format(&sb, &vg->lvs[l]);
    for (size_t l = 0; l < vg->nlvs; l++)
        if (!keel_lvm_lv_visible(&vg->lvs[l]))
            keel_lvm_lv_format(&sb, &vg->lvs[l]);
    keel_lvm_vg_format_tail(&sb, vg, description, host, now);
    if (sb.failed) {
        keel_strbuf_release(&sb);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "VG %s: out of memory", vg->name);
    }
    /* The NUL is part of the metadata: size and checksum include it. */
    *len = sb.len + 1;
    *ret = keel_strbuf_detach(&sb, NULL);
    return 0;
}

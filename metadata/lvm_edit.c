/*
 * Changes to an LVM2 VG model and the extent allocator; see lvm_edit.h.
 *
 * Every function checks and computes everything first and changes the
 * model only when nothing can fail any more (except allocation failures,
 * after which the model is restored), so a refused change leaves the VG
 * untouched.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "metadata/lvm_edit.h"

struct run {
    uint32_t pv;
    uint32_t pe;
    uint32_t len;
};

struct runs {
    size_t n;
    struct run *v;
};

/* ---- free space ---- */

/* Free runs of ALLOCATABLE PVs, by PV and extent. */
static int free_runs(const struct keel_lvm_vg *vg, struct runs *ret, struct keel_error *err)
{
    struct runs r = { 0 };
    size_t cap = 0;

    for (size_t p = 0; p < vg->npvs; p++) {
        const struct keel_lvm_pv *pv = &vg->pvs[p];
        _cleanup_free_ uint8_t *used = NULL;
        uint32_t pe = 0;

        if (!keel_lvm_strlist_has(&pv->status, "ALLOCATABLE") || pv->pe_count == 0)
            continue;
        used = calloc(pv->pe_count, 1);
        if (used == NULL)
            goto nomem;
        for (size_t l = 0; l < vg->nlvs; l++)
            for (size_t s = 0; s < vg->lvs[l].nsegs; s++) {
                const struct keel_lvm_seg *sg = &vg->lvs[l].segs[s];
                uint32_t per = sg->extent_count / sg->stripe_count;

                for (uint32_t k = 0; k < sg->stripe_count; k++)
                    if (sg->stripes[k].pv == p)
                        for (uint64_t e = sg->stripes[k].pe;
                             e < (uint64_t)sg->stripes[k].pe + per && e < pv->pe_count; e++)
                            used[e] = 1;
            }
        while (pe < pv->pe_count) {
            uint32_t start;

            while (pe < pv->pe_count && used[pe])
                pe++;
            if (pe == pv->pe_count)
                break;
            start = pe;
            while (pe < pv->pe_count && !used[pe])
                pe++;
            if (r.n == cap) {
                struct run *v = realloc(r.v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

                if (v == NULL)
                    goto nomem;
                r.v = v;
            }
            r.v[r.n++] = (struct run){ .pv = (uint32_t)p, .pe = start, .len = pe - start };
        }
    }
    *ret = r;
    return 0;
nomem:
    free(r.v);
    return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
}

static int cmp_len_desc(const void *a, const void *b)
{
    const struct run *x = a, *y = b;

    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    if (x->pv != y->pv)
        return x->pv < y->pv ? -1 : 1;
    return x->pe < y->pe ? -1 : x->pe > y->pe;
}

/*
 * Choose pieces for `need` extents (see lvm_edit.h): one run that holds
 * them all, else the largest runs first.  *pieces is malloc'ed.
 */
static int allocate(const struct keel_lvm_vg *vg, const char *lv, uint64_t need,
                    struct runs *pieces, struct keel_error *err)
{
    struct runs fr;
    uint64_t total = 0;

    if (free_runs(vg, &fr, err) != 0)
        return -1;
    for (size_t i = 0; i < fr.n; i++)
        total += fr.v[i].len;
    if (total < need) {
        free(fr.v);
        return keel_error_set(err, KEEL_E_NOSPC, ENOSPC,
                              "VG %s: cannot allocate %" PRIu64 " extents for LV %s: %" PRIu64
                              " free", vg->name, need, lv, total);
    }
    pieces->n = 0;
    pieces->v = calloc(fr.n ? fr.n : 1, sizeof(*pieces->v));
    if (pieces->v == NULL) {
        free(fr.v);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < fr.n; i++) {
        if (fr.v[i].len >= need) {
            pieces->v[0] = fr.v[i];
            pieces->v[0].len = (uint32_t)need;
            pieces->n = 1;
            free(fr.v);
            return 0;
        }
    }
    qsort(fr.v, fr.n, sizeof(*fr.v), cmp_len_desc);
    for (size_t i = 0; i < fr.n && need > 0; i++) {
        struct run p = fr.v[i];

        if (p.len > need)
            p.len = (uint32_t)need;
        need -= p.len;
        pieces->v[pieces->n++] = p;
    }
    free(fr.v);
    return 0;
}

/* Append pieces to lv as linear segments, merging with the last one when adjacent. */
static int append_pieces(struct keel_lvm_lv *lv, const struct runs *pieces,
                         struct keel_error *err)
{
    uint32_t le = (uint32_t)keel_lvm_lv_extents(lv); /* before realloc() frees lv->segs */
    struct keel_lvm_seg *segs = realloc(lv->segs, (lv->nsegs + pieces->n) * sizeof(*segs));

    if (segs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    lv->segs = segs;
    for (size_t i = 0; i < pieces->n; i++) {
        const struct run *p = &pieces->v[i];
        struct keel_lvm_seg *last = lv->nsegs ? &lv->segs[lv->nsegs - 1] : NULL;
        struct keel_lvm_seg *s;

        if (last && last->stripe_count == 1 && last->tags.n == 0 && last->stripes[0].pv == p->pv &&
            (uint64_t)last->stripes[0].pe + last->extent_count == p->pe) {
            last->extent_count += p->len;
            le += p->len;
            continue;
        }
        s = &lv->segs[lv->nsegs];
        memset(s, 0, sizeof(*s));
        s->stripes = calloc(1, sizeof(*s->stripes));
        if (s->stripes == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        s->start_extent = le;
        s->extent_count = p->len;
        s->stripe_count = 1;
        s->stripes[0].pv = p->pv;
        s->stripes[0].pe = p->pe;
        lv->nsegs++;
        le += p->len;
    }
    return 0;
}

/* ---- the VG ---- */

static int add_all(struct keel_lvm_strlist *l, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!keel_lvm_strlist_has(l, v[i]) && keel_lvm_strlist_add(l, v[i]) != 0)
            return -1;
    return 0;
}

int keel_lvm_vg_new(const char *name, uint32_t extent_size, const char *const *flags,
                    size_t nflags, const char *const *tags, size_t ntags, struct keel_lvm_vg **ret,
                    struct keel_error *err)
{
    static const char *const status[] = { "RESIZEABLE", "READ", "WRITE" };
    struct keel_lvm_vg *vg;

    if (keel_lvm_check_vg_name(name, err) != 0)
        return -1;
    for (size_t i = 0; i < ntags; i++)
        if (keel_lvm_check_tag(tags[i], err) != 0)
            return keel_error_prefix(err, "VG %s", name);
    if (extent_size == 0 || (extent_size & (extent_size - 1)) != 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "VG %s: extent size of %u sectors is not a power of two", name,
                              extent_size);
    vg = calloc(1, sizeof(*vg));
    if (vg == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    if ((vg->name = strdup(name)) == NULL || (vg->format = strdup("lvm2")) == NULL ||
        add_all(&vg->status, status, 3) || add_all(&vg->flags, flags, nflags) ||
        add_all(&vg->tags, tags, ntags) || keel_lvm_id_new(vg->id, err) != 0) {
        keel_lvm_vg_free(vg);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    }
    vg->extent_size = extent_size;
    vg->has_metadata_copies = true;
    *ret = vg;
    return 0;
}

int keel_lvm_vg_add_pv(struct keel_lvm_vg *vg, const char *pv_id, uint64_t dev_size,
                       uint64_t pe_start, uint32_t pe_count, struct keel_error *err)
{
    struct keel_lvm_pv *pvs, *pv;

    if (!keel_lvm_id_valid_raw(pv_id))
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "VG %s: invalid PV id", vg->name);
    if (keel_lvm_vg_find_pv(vg, pv_id) >= 0)
        return keel_error_set(err, KEEL_E_EXIST, EEXIST, "VG %s: the PV is already in it",
                              vg->name);
    pvs = realloc(vg->pvs, (vg->npvs + 1) * sizeof(*pvs));
    if (pvs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    vg->pvs = pvs;
    pv = &vg->pvs[vg->npvs];
    memset(pv, 0, sizeof(*pv));
    memcpy(pv->id, pv_id, sizeof(pv->id));
    pv->has_dev_size = true;
    pv->dev_size = dev_size;
    pv->pe_start = pe_start;
    pv->pe_count = pe_count;
    if (keel_lvm_strlist_add(&pv->status, "ALLOCATABLE") != 0) {
        keel_lvm_strlist_release(&pv->status);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    }
    vg->npvs++;
    return 0;
}

/* ---- LVs ---- */

static struct keel_lvm_lv *find(struct keel_lvm_vg *vg, const char *name, struct keel_error *err)
{
    struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(vg, name);

    if (lv == NULL)
        keel_error_set(err, KEEL_E_NOENT, ENOENT, "VG %s: no LV named %s", vg->name, name);
    return lv;
}

int keel_lvm_lv_create(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       const char *const *tags, size_t ntags, const char *host, uint64_t now,
                       struct keel_error *err)
{
    struct keel_lvm_lv *lvs, *lv;
    struct runs pieces = { 0 };
    static const char *const status[] = { "READ", "WRITE", "VISIBLE" };

    if (keel_lvm_check_lv_name(vg->name, name, err) != 0)
        return keel_error_prefix(err, "VG %s", vg->name);
    for (size_t i = 0; i < ntags; i++)
        if (keel_lvm_check_tag(tags[i], err) != 0)
            return keel_error_prefix(err, "VG %s: LV %s", vg->name, name);
    if (keel_lvm_vg_find_lv(vg, name) != NULL)
        return keel_error_set(err, KEEL_E_EXIST, EEXIST, "VG %s: LV %s exists already", vg->name,
                              name);
    if (extents == 0 || extents > UINT32_MAX)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "VG %s: LV %s: %" PRIu64 " extents",
                              vg->name, name, extents);
    if (vg->max_lv != 0 && vg->nlvs >= vg->max_lv)
        return keel_error_set(err, KEEL_E_NOSPC, ENOSPC, "VG %s: has its maximum of %u LVs",
                              vg->name, vg->max_lv);
    if (allocate(vg, name, extents, &pieces, err) != 0)
        return -1;
    lvs = realloc(vg->lvs, (vg->nlvs + 1) * sizeof(*lvs));
    if (lvs == NULL) {
        free(pieces.v);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    }
    vg->lvs = lvs;
    lv = &vg->lvs[vg->nlvs];
    memset(lv, 0, sizeof(*lv));
    if ((lv->name = strdup(name)) == NULL || add_all(&lv->status, status, 3) != 0 ||
        add_all(&lv->tags, tags, ntags) != 0 ||
        (lv->creation_host = strdup(host ? host : "keel")) == NULL ||
        keel_lvm_id_new(lv->id, err) != 0 || append_pieces(lv, &pieces, err) != 0) {
        keel_lvm_lv_release(lv);
        free(pieces.v);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    }
    lv->has_ctime = true;
    lv->creation_time = now;
    vg->nlvs++;
    free(pieces.v);
    return 0;
}

int keel_lvm_lv_extend(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       struct keel_error *err)
{
    struct keel_lvm_lv *lv = find(vg, name, err);
    struct keel_lvm_seg *last;
    struct runs fr = { 0 }, pieces = { 0 };
    uint64_t have, need, grow = 0;
    size_t last_i;
    int rc = -1;

    if (lv == NULL)
        return -1;
    have = keel_lvm_lv_extents(lv);
    if (extents <= have || extents > UINT32_MAX)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "VG %s: LV %s has %" PRIu64 " extents: cannot extend to %" PRIu64,
                              vg->name, name, have, extents);
    need = extents - have;
    last_i = lv->nsegs - 1;
    last = &lv->segs[last_i];
    /* First the free extents right after the last segment, as lvextend does. */
    if (last->stripe_count == 1 && last->tags.n == 0) {
        uint64_t end = (uint64_t)last->stripes[0].pe + last->extent_count;

        if (free_runs(vg, &fr, err) != 0)
            return -1;
        for (size_t i = 0; i < fr.n; i++)
            if (fr.v[i].pv == last->stripes[0].pv && fr.v[i].pe == end) {
                grow = KEEL_MIN((uint64_t)fr.v[i].len, need);
                break;
            }
        free(fr.v);
    }
    last->extent_count += (uint32_t)grow;
    if (need > grow) {
        if (allocate(vg, name, need - grow, &pieces, err) != 0)
            goto out;
        if (append_pieces(lv, &pieces, err) != 0)
            goto out;
    }
    rc = 0;
out:
    /* By index: append_pieces may have moved lv->segs before failing. */
    if (rc != 0 && grow > 0)
        lv->segs[last_i].extent_count -= (uint32_t)grow;
    free(pieces.v);
    return rc;
}

int keel_lvm_lv_reduce(struct keel_lvm_vg *vg, const char *name, uint64_t extents,
                       struct keel_error *err)
{
    struct keel_lvm_lv *lv = find(vg, name, err);
    uint64_t have;

    if (lv == NULL)
        return -1;
    have = keel_lvm_lv_extents(lv);
    if (extents == 0 || extents >= have)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "VG %s: LV %s has %" PRIu64 " extents: cannot reduce to %" PRIu64,
                              vg->name, name, have, extents);
    while (lv->nsegs > 0) {
        struct keel_lvm_seg *s = &lv->segs[lv->nsegs - 1];

        if (s->start_extent >= extents) {
            keel_lvm_strlist_release(&s->tags);
            free(s->stripes);
            lv->nsegs--;
            continue;
        }
        if (s->start_extent + s->extent_count > extents) {
            uint32_t keep = (uint32_t)(extents - s->start_extent);

            if (keep % s->stripe_count != 0)
                return keel_error_set(err, KEEL_E_UNSUPPORTED, EINVAL,
                                      "VG %s: LV %s: cannot cut a striped segment there",
                                      vg->name, name);
            s->extent_count = keep;
        }
        break;
    }
    return 0;
}

int keel_lvm_lv_remove(struct keel_lvm_vg *vg, const char *name, struct keel_error *err)
{
    struct keel_lvm_lv *lv = find(vg, name, err);
    size_t i;

    if (lv == NULL)
        return -1;
    i = (size_t)(lv - vg->lvs);
    keel_lvm_lv_release(lv);
    memmove(&vg->lvs[i], &vg->lvs[i + 1], (vg->nlvs - i - 1) * sizeof(vg->lvs[0]));
    vg->nlvs--;
    return 0;
}

int keel_lvm_lv_rename(struct keel_lvm_vg *vg, const char *name, const char *new_name,
                       struct keel_error *err)
{
    struct keel_lvm_lv *lv = find(vg, name, err);
    char *n;

    if (lv == NULL)
        return -1;
    if (keel_lvm_check_lv_name(vg->name, new_name, err) != 0)
        return keel_error_prefix(err, "VG %s", vg->name);
    if (keel_lvm_vg_find_lv(vg, new_name) != NULL)
        return keel_error_set(err, KEEL_E_EXIST, EEXIST, "VG %s: LV %s exists already", vg->name,
                              new_name);
    if ((n = strdup(new_name)) == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    free(lv->name);
    lv->name = n;
    return 0;
}

static int change_tags(struct keel_lvm_strlist *l, const char *what, const char *const *add,
                       size_t nadd, const char *const *del, size_t ndel, struct keel_error *err)
{
    struct keel_lvm_strlist copy = { 0 };

    for (size_t i = 0; i < nadd; i++)
        if (keel_lvm_check_tag(add[i], err) != 0)
            return keel_error_prefix(err, "%s", what);
    for (size_t i = 0; i < l->n; i++)
        if (keel_lvm_strlist_add(&copy, l->v[i]) != 0)
            goto nomem;
    for (size_t i = 0; i < ndel; i++)
        keel_lvm_strlist_remove(&copy, del[i]);
    if (add_all(&copy, add, nadd) != 0)
        goto nomem;
    keel_lvm_strlist_release(l);
    *l = copy;
    return 0;
nomem:
    keel_lvm_strlist_release(&copy);
    return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
}

int keel_lvm_lv_change_tags(struct keel_lvm_vg *vg, const char *name, const char *const *add,
                            size_t nadd, const char *const *del, size_t ndel,
                            struct keel_error *err)
{
    struct keel_lvm_lv *lv = find(vg, name, err);
    char what[300];

    if (lv == NULL)
        return -1;
    snprintf(what, sizeof(what), "VG %s: LV %s", vg->name, name);
    return change_tags(&lv->tags, what, add, nadd, del, ndel, err);
}

int keel_lvm_vg_change_tags(struct keel_lvm_vg *vg, const char *const *add, size_t nadd,
                            const char *const *del, size_t ndel, struct keel_error *err)
{
    char what[300];

    snprintf(what, sizeof(what), "VG %s", vg->name);
    return change_tags(&vg->tags, what, add, nadd, del, ndel, err);
}

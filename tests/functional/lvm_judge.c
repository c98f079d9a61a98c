/* lvm2 as a judge; see lvm_judge.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/strbuf.h"
#include "common/strutil.h"
#include "tests/functional/lvm_judge.h"
#include "tests/harness/lab.h"

int lvm_judge_attach(struct lvm_judge *j, const char *const *files, size_t n,
                     struct keel_error *err)
{
    memset(j, 0, sizeof(*j));
    for (size_t i = 0; i < n && i < LVM_JUDGE_MAX; i++) {
        if (keel_lab_loop_attach(files[i], 0, 0, &j->loops[i], err) != 0) {
            lvm_judge_detach(j);
            return -1;
        }
        j->files[i] = strdup(files[i]);
        j->n++;
    }
    return 0;
}

void lvm_judge_detach(struct lvm_judge *j)
{
    for (size_t i = 0; i < j->n; i++) {
        if (j->loops[i])
            keel_lab_loop_detach(j->loops[i]);
        free(j->loops[i]);
        free(j->files[i]);
    }
    memset(j, 0, sizeof(*j));
}

int lvm_judge_run(struct lvm_judge *j, const char *const argv[], char **out,
                  struct keel_error *err)
{
    return keel_lab_lvm((const char *const *)j->loops, j->n, argv, out, err);
}

/* The rows of an lvm JSON report ("vg", "pv", "lv"). */
static json_t *report(struct lvm_judge *j, const char *const argv[], const char *kind,
                      struct keel_error *err)
{
    _cleanup_free_ char *out = NULL;
    json_error_t je;
    json_t *root, *rows;

    if (lvm_judge_run(j, argv, &out, err) != 0)
        return NULL;
    root = json_loads(out, 0, &je);
    if (root == NULL) {
        keel_error_set(err, KEEL_E_FORMAT, 0, "%s: bad JSON from lvm: %s", argv[0], je.text);
        return NULL;
    }
    rows = json_object_get(json_array_get(json_object_get(root, "report"), 0), kind);
    if (!json_is_array(rows)) {
        json_decref(root);
        keel_error_set(err, KEEL_E_FORMAT, 0, "%s: no '%s' rows in lvm's report", argv[0], kind);
        return NULL;
    }
    json_incref(rows);
    json_decref(root);
    return rows;
}

static const char *field(json_t *row, const char *name)
{
    const char *v = json_string_value(json_object_get(row, name));

    return v ? v : "";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tags as lvm prints them: sorted, comma-separated. */
static char *tag_string(const struct keel_lvm_strlist *l)
{
    char **v = calloc(l->n + 1, sizeof(*v));
    struct keel_strbuf sb;

    memcpy(v, l->v, l->n * sizeof(*v));
    qsort(v, l->n, sizeof(*v), cmp_str);
    keel_strbuf_init(&sb, 64);
    for (size_t i = 0; i < l->n; i++)
        keel_strbuf_addf(&sb, "%s%s", i ? "," : "", v[i]);
    free(v);
    return keel_strbuf_detach(&sb, NULL);
}

/* The loop device of a PV of vg, found by its id in lvm's pvs report. */
static const char *pv_device(json_t *pvs, const struct keel_lvm_pv *pv)
{
    char dashed[KEEL_LVM_ID_DASHED_LEN + 1];
    size_t i;
    json_t *row;

    keel_lvm_id_dash(pv->id, dashed);
    json_array_foreach(pvs, i, row)
        if (strcmp(field(row, "pv_uuid"), dashed) == 0)
            return field(row, "pv_name");
    return NULL;
}

static int sorted_rows_equal(char **a, char **b, size_t n, const char *what, struct keel_error *err)
{
    qsort(a, n, sizeof(*a), cmp_str);
    qsort(b, n, sizeof(*b), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i], b[i]) != 0)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: lvm2 says '%s', Keel says '%s'",
                                  what, a[i], b[i]);
    return 0;
}

static int check_clean(struct lvm_judge *j, const struct keel_lvm_vg *vg, json_t *pvs,
                       struct keel_error *err)
{
    const char *vgck[] = { "vgck", vg->name, NULL };
    _cleanup_free_ char *out = NULL, *errout = NULL;
    int status = -1;
    char *line;

    if (keel_lab_lvm_run((const char *const *)j->loops, j->n, vgck, &out, &errout, &status,
                         err) != 0)
        return -1;
    if (status != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "vgck %s: status %d: %s", vg->name, status,
                              errout);
    for (line = errout; line && *line;) {
        char *nl = strchr(line, '\n');

        if (nl)
            *nl = '\0';
        if (strstr(line, "WARNING") && !strstr(line, "Activation disabled"))
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "vgck %s: %s", vg->name, line);
        line = nl ? nl + 1 : NULL;
    }
    /* Every PV of the VG (other devices given to the judge may be no PV yet). */
    for (uint32_t p = 0; p < vg->npvs; p++) {
        const char *dev = pv_device(pvs, &vg->pvs[p]);
        const char *pvck[] = { "pvck", "--dump", "headers", dev, NULL };
        _cleanup_free_ char *o2 = NULL, *e2 = NULL;

        if (dev == NULL)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "pvs does not list pv%u", p);
        if (keel_lab_lvm_run((const char *const *)j->loops, j->n, pvck, &o2, &e2, &status,
                             err) != 0)
            return -1;
        if (status != 0 || (o2 && strstr(o2, "CHECK:")) || (e2 && strstr(e2, "CHECK:")))
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "pvck %s: status %d:\n%s%s", dev,
                                  status, o2 ? o2 : "", e2 ? e2 : "");
    }
    return 0;
}

int lvm_judge_agrees(struct lvm_judge *j, const struct keel_lvm_vg *vg, struct keel_error *err)
{
    const char *vgs[] = { "vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                          "vg_name,vg_seqno,vg_tags,vg_extent_size,vg_extent_count,vg_free_count,"
                          "lv_count", vg->name, NULL };
    const char *pvs[] = { "pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                          "pv_name,pv_uuid,vg_name,pe_start,pv_pe_count,pv_ext_vsn,pv_in_use",
                          NULL };
    const char *lvs[] = { "lvs", "-a", "--reportformat", "json", "--units", "b", "--nosuffix",
                          "-o", "lv_name,lv_size,seg_start_pe,seg_pe_ranges,lv_tags", vg->name,
                          NULL };
    json_t *vrows = NULL, *prows = NULL, *lrows = NULL, *row;
    uint64_t ext = (uint64_t)vg->extent_size * 512;
    char **lvm_rows = NULL, **keel_rows = NULL;
    size_t nrows = 0, i;
    _cleanup_free_ char *vtags = tag_string(&vg->tags);
    _cleanup_free_ char *vwant = NULL, *vgot = NULL;
    char want[256];
    int rc = -1;

    if ((vrows = report(j, vgs, "vg", err)) == NULL || (prows = report(j, pvs, "pv", err)) == NULL
        || (lrows = report(j, lvs, "lv", err)) == NULL)
        goto out;
    if (json_array_size(vrows) != 1) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "vgs lists %zu VGs named %s",
                       json_array_size(vrows), vg->name);
        goto out;
    }
    row = json_array_get(vrows, 0);
    /* Whole strings: an oVirt domain's VG tags run to kilobytes. */
    vwant = keel_strdup_printf("%u %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %zu", vg->seqno, vtags,
                               ext, keel_lvm_vg_total_extents(vg), keel_lvm_vg_free_extents(vg),
                               vg->nlvs);
    vgot = keel_strdup_printf("%s %s %s %s %s %s", field(row, "vg_seqno"), field(row, "vg_tags"),
                              field(row, "vg_extent_size"), field(row, "vg_extent_count"),
                              field(row, "vg_free_count"), field(row, "lv_count"));
    if (vwant == NULL || vgot == NULL || strcmp(vgot, vwant) != 0) {
        keel_error_set(err, KEEL_E_CORRUPT, 0,
                       "vgs (seqno tags extent_size extents free lvs): lvm2 says '%s', Keel "
                       "says '%s'", vgot ? vgot : "?", vwant ? vwant : "?");
        goto out;
    }
    for (uint32_t p = 0; p < vg->npvs; p++) {
        const struct keel_lvm_pv *pv = &vg->pvs[p];
        const char *dev = pv_device(prows, pv);
        json_t *r = NULL;
        char got[512];

        if (dev == NULL) {
            keel_error_set(err, KEEL_E_CORRUPT, 0, "pvs does not list pv%u", p);
            goto out;
        }
        json_array_foreach(prows, i, row)
            if (strcmp(field(row, "pv_name"), dev) == 0)
                r = row;
        snprintf(got, sizeof(got), "%s %s %s %s %s", field(r, "vg_name"), field(r, "pe_start"),
                 field(r, "pv_pe_count"), field(r, "pv_ext_vsn"), field(r, "pv_in_use"));
        snprintf(want, sizeof(want), "%s %" PRIu64 " %u 2 used", vg->name, pv->pe_start * 512,
                 pv->pe_count);
        if (strcmp(got, want) != 0) {
            keel_error_set(err, KEEL_E_CORRUPT, 0, "pvs pv%u (%s): lvm2 says '%s', Keel says '%s'",
                           p, dev, got, want);
            goto out;
        }
    }
    for (size_t l = 0; l < vg->nlvs; l++)
        nrows += vg->lvs[l].nsegs;
    if (json_array_size(lrows) != nrows) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "lvs lists %zu segments, Keel has %zu",
                       json_array_size(lrows), nrows);
        goto out;
    }
    lvm_rows = calloc(nrows + 1, sizeof(char *));
    keel_rows = calloc(nrows + 1, sizeof(char *));
    nrows = 0;
    json_array_foreach(lrows, i, row)
        lvm_rows[i] = keel_strdup_printf("%s %s %s %s %s", field(row, "lv_name"),
                                         field(row, "lv_size"), field(row, "seg_start_pe"),
                                         field(row, "seg_pe_ranges"), field(row, "lv_tags"));
    for (size_t l = 0; l < vg->nlvs; l++) {
        const struct keel_lvm_lv *lv = &vg->lvs[l];
        _cleanup_free_ char *tags = tag_string(&lv->tags);

        for (size_t s = 0; s < lv->nsegs; s++) {
            const struct keel_lvm_seg *sg = &lv->segs[s];
            const char *dev = pv_device(prows, &vg->pvs[sg->stripes[0].pv]);

            keel_rows[nrows++] = keel_strdup_printf(
                "%s %" PRIu64 " %u %s:%u-%u %s", lv->name, keel_lvm_lv_extents(lv) * ext,
                sg->start_extent, dev ? dev : "?", sg->stripes[0].pe,
                sg->stripes[0].pe + sg->extent_count - 1, tags);
        }
    }
    if (sorted_rows_equal(lvm_rows, keel_rows, nrows, "lvs", err) != 0)
        goto out;
    rc = check_clean(j, vg, prows, err);
out:
    for (size_t k = 0; lvm_rows && lvm_rows[k]; k++)
        free(lvm_rows[k]);
    for (size_t k = 0; keel_rows && keel_rows[k]; k++)
        free(keel_rows[k]);
    free(lvm_rows);
    free(keel_rows);
    json_decref(vrows);
    json_decref(prows);
    json_decref(lrows);
    return rc;
}

int lvm_judge_seqno(struct lvm_judge *j, const char *vg_name, unsigned *seqno,
                    struct keel_error *err)
{
    const char *vgs[] = { "vgs", "--reportformat", "json", "-o", "vg_name,vg_seqno", vg_name,
                          NULL };
    const char *vgck[] = { "vgck", vg_name, NULL };
    _cleanup_free_ char *out = NULL, *errout = NULL;
    json_t *rows;
    uint64_t v;
    int status;

    if (keel_lab_lvm_run((const char *const *)j->loops, j->n, vgck, &out, &errout, &status,
                         err) != 0)
        return -1;
    if (status != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "vgck %s: status %d: %s", vg_name, status,
                              errout);
    /* Stale areas are allowed (an interrupted commit), damaged ones are not. */
    for (char *line = errout; line && *line;) {
        char *nl = strchr(line, '\n');

        if (nl)
            *nl = '\0';
        if (line[strspn(line, " ")] != '\0' && !strstr(line, "Activation disabled") &&
            !strstr(line, "ignoring metadata seqno") && !strstr(line, "Inconsistent metadata") &&
            !strstr(line, "vgck --updatemetadata"))
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "vgck %s: %s", vg_name, line);
        line = nl ? nl + 1 : NULL;
    }
    if ((rows = report(j, vgs, "vg", err)) == NULL)
        return -1;
    if (json_array_size(rows) != 1 ||
        keel_parse_u64(field(json_array_get(rows, 0), "vg_seqno"), &v) != 0) {
        json_decref(rows);
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "vgs: no seqno for %s", vg_name);
    }
    json_decref(rows);
    *seqno = (unsigned)v;
    return 0;
}

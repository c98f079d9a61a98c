/*
 * keel-storage lvm: the PV / VG / LV view of LUNs, read by Keel itself
 * (no lvm2 commands, no kernel), as text or JSON.
 *
 *   keel-storage lvm show [--json] [--vg NAME] URL...
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/storage.h"
#include "io/blockdev.h"
#include "metadata/lvm_store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: keel-storage lvm show [--json] [--vg NAME] URL...\n"
               "\n"
               "Show the LVM2 physical volumes, volume group and logical volumes on the\n"
               "LUNs (iscsi://..., file:///...). One URL holding the VG metadata is enough\n"
               "to read it; give all of the VG's LUNs to see where every extent lives.\n");
}

static json_t *strlist_json(const struct keel_lvm_strlist *l)
{
    json_t *a = json_array();

    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

static const char *pv_name(const struct keel_lvm_store *s, uint32_t pv)
{
    struct keel_blockdev *dev = keel_lvm_store_pv_dev(s, pv);

    return dev ? keel_blockdev_name(dev) : "(device not given)";
}

static json_t *vg_json(const struct keel_lvm_store *s)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(s);
    uint64_t ext = (uint64_t)vg->extent_size * 512;
    char dashed[KEEL_LVM_ID_DASHED_LEN + 1];
    json_t *o = json_object(), *pvs = json_array(), *lvs = json_array();

    keel_lvm_id_dash(vg->id, dashed);
    json_object_set_new(o, "name", json_string(vg->name));
    json_object_set_new(o, "id", json_string(dashed));
    json_object_set_new(o, "seqno", json_integer(vg->seqno));
    json_object_set_new(o, "extent_size", json_integer((json_int_t)ext));
    json_object_set_new(o, "extent_count", json_integer((json_int_t)keel_lvm_vg_total_extents(vg)));
    json_object_set_new(o, "free_count", json_integer((json_int_t)keel_lvm_vg_free_extents(vg)));
    json_object_set_new(o, "tags", strlist_json(&vg->tags));
    json_object_set_new(o, "flags", strlist_json(&vg->flags));
    json_object_set_new(o, "metadata_size", json_integer((json_int_t)keel_lvm_store_text_size(s)));
    json_object_set_new(o, "metadata_max", json_integer((json_int_t)keel_lvm_store_text_max(s)));
    for (uint32_t p = 0; p < vg->npvs; p++) {
        const struct keel_lvm_pv *pv = &vg->pvs[p];
        json_t *j = json_object();

        keel_lvm_id_dash(pv->id, dashed);
        json_object_set_new(j, "name", json_sprintf("pv%u", p));
        json_object_set_new(j, "id", json_string(dashed));
        json_object_set_new(j, "device", json_string(pv_name(s, p)));
        json_object_set_new(j, "dev_size", json_integer((json_int_t)(pv->dev_size * 512)));
        json_object_set_new(j, "pe_start", json_integer((json_int_t)(pv->pe_start * 512)));
        json_object_set_new(j, "pe_count", json_integer(pv->pe_count));
        json_array_append_new(pvs, j);
    }
    for (size_t l = 0; l < vg->nlvs; l++) {
        const struct keel_lvm_lv *lv = &vg->lvs[l];
        json_t *j = json_object(), *segs = json_array();

        keel_lvm_id_dash(lv->id, dashed);
        json_object_set_new(j, "name", json_string(lv->name));
        json_object_set_new(j, "id", json_string(dashed));
        json_object_set_new(j, "size", json_integer((json_int_t)(keel_lvm_lv_extents(lv) * ext)));
        json_object_set_new(j, "tags", strlist_json(&lv->tags));
        json_object_set_new(j, "status", strlist_json(&lv->status));
        for (size_t k = 0; k < lv->nsegs; k++) {
            const struct keel_lvm_seg *sg = &lv->segs[k];
            json_t *sj = json_object(), *st = json_array();

            json_object_set_new(sj, "start_extent", json_integer(sg->start_extent));
            json_object_set_new(sj, "extent_count", json_integer(sg->extent_count));
            for (uint32_t t = 0; t < sg->stripe_count; t++) {
                json_t *x = json_object();
                uint32_t per = sg->extent_count / sg->stripe_count;

                json_object_set_new(x, "pv", json_sprintf("pv%u", sg->stripes[t].pv));
                json_object_set_new(x, "device", json_string(pv_name(s, sg->stripes[t].pv)));
                json_object_set_new(x, "pe_first", json_integer(sg->stripes[t].pe));
                json_object_set_new(x, "pe_last", json_integer(sg->stripes[t].pe + per - 1));
                json_array_append_new(st, x);
            }
            json_object_set_new(sj, "stripes", st);
            json_array_append_new(segs, sj);
        }
        json_object_set_new(j, "segments", segs);
        json_array_append_new(lvs, j);
    }
    json_object_set_new(o, "pvs", pvs);
    json_object_set_new(o, "lvs", lvs);
    json_object_set_new(o, "warnings", strlist_json(keel_lvm_store_warnings(s)));
    return o;
}

static void join(const struct keel_lvm_strlist *l, char *buf, size_t n)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < l->n && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", l->v[i]);
}

static void print_text(const struct keel_lvm_store *s)
{
    const struct keel_lvm_vg *vg = keel_lvm_store_vg(s);
    uint64_t ext = (uint64_t)vg->extent_size * 512;
    char dashed[KEEL_LVM_ID_DASHED_LEN + 1], tags[4096];

    keel_lvm_id_dash(vg->id, dashed);
    join(&vg->tags, tags, sizeof(tags));
    printf("VG %s  id %s  seqno %u\n", vg->name, dashed, vg->seqno);
    printf("   extent size %" PRIu64 " MiB, %" PRIu64 " extents, %" PRIu64 " free, %zu LVs\n",
           ext >> 20, keel_lvm_vg_total_extents(vg), keel_lvm_vg_free_extents(vg), vg->nlvs);
    printf("   metadata %zu bytes of at most %" PRIu64 "\n", keel_lvm_store_text_size(s),
           keel_lvm_store_text_max(s));
    printf("   tags %s\n", tags[0] ? tags : "-");
    for (uint32_t p = 0; p < vg->npvs; p++) {
        const struct keel_lvm_pv *pv = &vg->pvs[p];

        keel_lvm_id_dash(pv->id, dashed);
        printf("PV pv%u  %s\n   id %s  size %" PRIu64 " MiB  data from %" PRIu64
               " MiB  %u extents\n", p, pv_name(s, p), dashed, (pv->dev_size * 512) >> 20,
               (pv->pe_start * 512) >> 20, pv->pe_count);
    }
    for (size_t l = 0; l < vg->nlvs; l++) {
        const struct keel_lvm_lv *lv = &vg->lvs[l];

        keel_lvm_id_dash(lv->id, dashed);
        join(&lv->tags, tags, sizeof(tags));
        printf("LV %s  id %s  size %" PRIu64 " MiB\n   tags %s\n", lv->name, dashed,
               (keel_lvm_lv_extents(lv) * ext) >> 20, tags[0] ? tags : "-");
        for (size_t k = 0; k < lv->nsegs; k++) {
            const struct keel_lvm_seg *sg = &lv->segs[k];

            for (uint32_t t = 0; t < sg->stripe_count; t++)
                printf("   extents %u-%u on pv%u extents %u-%u\n", sg->start_extent,
                       sg->start_extent + sg->extent_count - 1, sg->stripes[t].pv,
                       sg->stripes[t].pe,
                       sg->stripes[t].pe + sg->extent_count / sg->stripe_count - 1);
        }
    }
    for (size_t i = 0; i < keel_lvm_store_warnings(s)->n; i++)
        printf("warning: %s\n", keel_lvm_store_warnings(s)->v[i]);
}

static int lvm_show(int argc, char **argv, const struct keel_storage_ctx *ctx)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "vg", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *vg_name = NULL;
    bool json = false;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_blockdev **devs;
    struct keel_lvm_store *s = NULL;
    int c, n, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'v': vg_name = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    n = argc - optind;
    if (n < 1) {
        usage(stderr);
        return 2;
    }
    devs = calloc((size_t)n, sizeof(*devs));
    for (int i = 0; i < n; i++) {
        if (keel_blockdev_open(argv[optind + i], &ctx->io, &devs[i], &err) != 0) {
            fprintf(stderr, "keel-storage: %s\n", err.msg);
            n = i;
            goto out;
        }
    }
    if (keel_lvm_store_open(devs, (size_t)n, vg_name, NULL, &s, &err) != 0) {
        fprintf(stderr, "keel-storage: %s\n", err.msg);
        goto out;
    }
    if (json) {
        json_t *o = vg_json(s);

        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(o);
    } else {
        print_text(s);
    }
    rc = 0;
out:
    keel_lvm_store_close(s);
    for (int i = 0; i < n; i++)
        keel_blockdev_close(devs[i]);
    free(devs);
    return rc;
}

int keel_storage_lvm(int argc, char **argv, const struct keel_storage_ctx *ctx)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "show") == 0)
        return lvm_show(argc - 1, argv + 1, ctx);
    fprintf(stderr, "keel-storage lvm: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

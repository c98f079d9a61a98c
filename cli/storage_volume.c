/*
 * keel-storage volume / image: volumes and image chains of a storage
 * domain, directly on its storage (no daemon).
 *
 *   keel-storage volume create --image IMG [--uuid VOL] --format raw|cow --size SIZE
 *                              [--parent VOL] [--preallocated] [--initial-size SIZE]
 *                              [--description TEXT] [--template] [--domain SD] URL...
 *   keel-storage volume info [--json] [--domain SD] --volume VOL URL...
 *   keel-storage volume list [--json] [--domain SD] URL...
 *   keel-storage volume delete [--force] [--domain SD] --volume VOL URL...
 *   keel-storage volume extend [--size SIZE] [--lv-size SIZE] [--domain SD] --volume VOL URL...
 *   keel-storage image chain [--json] [--domain SD] [--image IMG] URL...
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/storage.h"
#include "common/strutil.h"
#include "volume/image.h"
#include "volume/vol.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: keel-storage volume create --image IMG [--uuid VOL] --format raw|cow\n"
            "              --size SIZE [--parent VOL] [--preallocated] [--initial-size SIZE]\n"
            "              [--description TEXT] [--template] [--domain SD] URL...\n"
            "       keel-storage volume info [--json] [--domain SD] --volume VOL URL...\n"
            "       keel-storage volume list [--json] [--domain SD] URL...\n"
            "       keel-storage volume delete [--force] [--domain SD] --volume VOL URL...\n"
            "       keel-storage volume extend [--size SIZE] [--lv-size SIZE] [--domain SD]\n"
            "              --volume VOL URL...\n"
            "       keel-storage image chain [--json] [--domain SD] [--image IMG] URL...\n"
            "\n"
            "SIZE: bytes, or with a suffix K, M, G, T (powers of 1024).  A volume with a\n"
            "parent is a snapshot layer (cow); a parent in another image must be a\n"
            "template (created with --template).  'volume list' shows leftovers of\n"
            "interrupted operations (status LEFTOVER, ILLEGAL): remove them with\n"
            "'volume delete'.  --size grows the capacity the guest sees, --lv-size the LV\n"
            "of a thin block volume.  keel-storage takes no lease: do not use it on a domain a\n"
            "running data center uses.\n");
}

static const char *status_name(enum keel_vol_status s)
{
    switch (s) {
    case KEEL_VOL_OK: return "OK";
    case KEEL_VOL_STATUS_ILLEGAL: return "ILLEGAL";
    case KEEL_VOL_LEFTOVER: return "LEFTOVER";
    case KEEL_VOL_REMOVED: return "REMOVED";
    default: return "BAD";
    }
}

static json_t *entry_json(const struct keel_vol_entry *e)
{
    json_t *o = json_object();

    json_object_set_new(o, "uuid", json_string(e->uuid));
    json_object_set_new(o, "image", json_string(e->image));
    json_object_set_new(o, "status", json_string(status_name(e->status)));
    if (e->problem[0])
        json_object_set_new(o, "problem", json_string(e->problem));
    json_object_set_new(o, "size", json_integer((json_int_t)e->size));
    json_object_set_new(o, "allocated", json_integer((json_int_t)e->allocated));
    if (e->slot >= 0)
        json_object_set_new(o, "slot", json_integer(e->slot));
    if (e->has_md) {
        json_object_set_new(o, "parent", json_string(e->md.parent));
        json_object_set_new(o, "format", json_string(keel_vol_format_name(e->md.format)));
        json_object_set_new(o, "type", json_string(keel_vol_type_name(e->md.type)));
        json_object_set_new(o, "voltype", json_string(keel_vol_role_name(e->md.role)));
        json_object_set_new(o, "legality", json_string(keel_vol_legality_name(e->md.legality)));
        json_object_set_new(o, "capacity", json_integer((json_int_t)e->md.capacity));
        json_object_set_new(o, "description", json_string(e->md.description));
        json_object_set_new(o, "disktype", json_string(e->md.disktype));
        json_object_set_new(o, "ctime", json_integer((json_int_t)e->md.ctime));
        json_object_set_new(o, "generation", json_integer(e->md.gen));
    }
    return o;
}

static void print_entry_line(const struct keel_vol_entry *e)
{
    if (e->has_md)
        printf("%s %s %-8s %s %-4s %-12s %-8s %-7s %" PRIu64 "%s%s\n", e->image, e->uuid,
               status_name(e->status), e->md.parent, keel_vol_format_name(e->md.format),
               keel_vol_type_name(e->md.type), keel_vol_role_name(e->md.role),
               keel_vol_legality_name(e->md.legality), e->md.capacity, e->problem[0] ? "  " : "",
               e->problem);
    else
        printf("%s %s %-8s %s\n", e->image[0] ? e->image : "-", e->uuid, status_name(e->status),
               e->problem);
}

struct opts {
    bool json, prealloc, force, shared;
    const char *domain, *image, *uuid, *format, *parent, *volume, *description;
    uint64_t size, initial;
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },         { "domain", required_argument, NULL, 'd' },
        { "image", required_argument, NULL, 'i' },  { "uuid", required_argument, NULL, 'u' },
        { "format", required_argument, NULL, 'f' }, { "size", required_argument, NULL, 's' },
        { "parent", required_argument, NULL, 'p' }, { "preallocated", no_argument, NULL, 'P' },
        { "initial-size", required_argument, NULL, 'I' },
        { "lv-size", required_argument, NULL, 'I' },
        { "description", required_argument, NULL, 'D' },
        { "volume", required_argument, NULL, 'v' }, { "force", no_argument, NULL, 'F' },
        { "template", no_argument, NULL, 'T' },     { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keel_error err = KEEL_ERROR_INIT;
    int opt;

    optind = 2;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': o->json = true; break;
        case 'd': o->domain = optarg; break;
        case 'i': o->image = optarg; break;
        case 'u': o->uuid = optarg; break;
        case 'f': o->format = optarg; break;
        case 'p': o->parent = optarg; break;
        case 'P': o->prealloc = true; break;
        case 'D': o->description = optarg; break;
        case 'v': o->volume = optarg; break;
        case 'F': o->force = true; break;
        case 'T': o->shared = true; break;
        case 's':
        case 'I':
            if (keel_parse_size(optarg, opt == 's' ? &o->size : &o->initial, &err) != 0) {
                fprintf(stderr, "keel-storage: %s\n", err.msg);
                return -1;
            }
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    return 0;
}

static int run_volume(const char *verb, struct opts *o, struct keel_sd *sd)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (strcmp(verb, "create") == 0) {
        struct keel_vol_create c = { .image = o->image, .uuid = o->uuid, .capacity = o->size,
                                     .parent = o->parent, .description = o->description,
                                     .initial_size = o->initial, .shared = o->shared };
        char uuid[KEEL_UUID_LEN + 1];

        if (o->image == NULL || o->format == NULL || o->size == 0 ||
            (strcmp(o->format, "raw") != 0 && strcmp(o->format, "cow") != 0)) {
            fprintf(stderr, "keel-storage volume create: --image, --format raw|cow and --size "
                            "are required\n");
            return 2;
        }
        c.format = strcmp(o->format, "cow") == 0 ? KEEL_VOL_COW : KEEL_VOL_RAW;
        c.type = o->prealloc ? KEEL_VOL_PREALLOCATED : KEEL_VOL_SPARSE;
        if (keel_vol_create(sd, &c, uuid, &err) != 0) {
            fprintf(stderr, "keel-storage volume create: %s\n", err.msg);
            return 1;
        }
        printf("%s\n", uuid);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        struct keel_vol_list l;

        if (keel_vol_list(sd, &l, &err) != 0) {
            fprintf(stderr, "keel-storage volume list: %s\n", err.msg);
            return 1;
        }
        if (o->json) {
            json_t *a = json_array();

            for (size_t i = 0; i < l.n; i++)
                json_array_append_new(a, entry_json(&l.v[i]));
            keel_storage_print_json(a);
        } else {
            for (size_t i = 0; i < l.n; i++)
                print_entry_line(&l.v[i]);
        }
        keel_vol_list_release(&l);
        return 0;
    }
    if (o->volume == NULL) {
        fprintf(stderr, "keel-storage volume %s: --volume VOL is required\n", verb);
        return 2;
    }
    if (strcmp(verb, "info") == 0) {
        struct keel_vol_entry e;

        if (keel_vol_info(sd, o->volume, &e, &err) != 0) {
            fprintf(stderr, "keel-storage volume info: %s\n", err.msg);
            return 1;
        }
        if (o->json)
            keel_storage_print_json(entry_json(&e));
        else
            print_entry_line(&e);
        return 0;
    }
    if (strcmp(verb, "delete") == 0) {
        if (keel_vol_delete(sd, o->volume, o->force, &err) != 0) {
            fprintf(stderr, "keel-storage volume delete: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (strcmp(verb, "extend") == 0) {
        if (o->size == 0 && o->initial == 0) {
            fprintf(stderr, "keel-storage volume extend: --size or --lv-size is required\n");
            return 2;
        }
        if (o->initial != 0 && keel_vol_extend_lv(sd, o->volume, o->initial, &err) != 0) {
            fprintf(stderr, "keel-storage volume extend: %s\n", err.msg);
            return 1;
        }
        if (o->size != 0 && keel_vol_extend(sd, o->volume, o->size, &err) != 0) {
            fprintf(stderr, "keel-storage volume extend: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "keel-storage volume: unknown verb '%s'\n", verb);
    return 2;
}

static int with_domain(int argc, char **argv, const struct keel_storage_ctx *ctx, bool image)
{
    struct keel_storage_target t;
    struct keel_sd *sd = NULL;
    struct opts o = { 0 };
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (parse(argc, argv, &o) != 0)
        return 2;
    if (image && strcmp(argv[1], "chain") != 0) {
        fprintf(stderr, "keel-storage image: unknown verb '%s'\n", argv[1]);
        return 2;
    }
    if (keel_storage_target_open(argv + optind, argc - optind, &ctx->io, &t) != 0)
        return 1;
    if (keel_storage_open_domain(&t, o.domain, &sd) != 0) {
        keel_storage_target_close(&t);
        return 1;
    }
    if (!image) {
        rc = run_volume(argv[1], &o, sd);
    } else {
        struct keel_error err = KEEL_ERROR_INIT;
        char **imgs = NULL, *one[1] = { (char *)o.image };
        size_t n = 0;
        json_t *a = json_array();

        rc = 0;
        if (o.image == NULL && keel_image_list(sd, &imgs, &n, &err) != 0) {
            fprintf(stderr, "keel-storage image chain: %s\n", err.msg);
            rc = 1;
        }
        if (o.image != NULL)
            n = 1;
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct keel_chain c;
            const char *img = imgs ? imgs[i] : one[0];

            if (keel_image_chain(sd, img, &c, &err) != 0) {
                fprintf(stderr, "keel-storage image chain: %s\n", err.msg);
                rc = 1;
                break;
            }
            if (o.json) {
                json_t *j = json_object(), *vols = json_array();

                json_object_set_new(j, "image", json_string(img));
                for (size_t k = 0; k < c.n; k++)
                    json_array_append_new(vols, entry_json(&c.vols[k]));
                json_object_set_new(j, "volumes", vols);
                json_array_append_new(a, j);
            } else {
                struct keel_strbuf sb;

                keel_strbuf_init(&sb, 1024);
                keel_chain_format(&c, &sb);
                fputs(sb.buf, stdout);
                keel_strbuf_release(&sb);
            }
            keel_chain_release(&c);
        }
        if (o.json && rc == 0)
            keel_storage_print_json(a);
        else
            json_decref(a);
        if (imgs != NULL)
            keel_image_list_free(imgs, n);
    }
    keel_sd_close(sd);
    keel_storage_target_close(&t);
    return rc;
}

int keel_storage_volume(int argc, char **argv, const struct keel_storage_ctx *ctx)
{
    return with_domain(argc, argv, ctx, false);
}

int keel_storage_image(int argc, char **argv, const struct keel_storage_ctx *ctx)
{
    return with_domain(argc, argv, ctx, true);
}

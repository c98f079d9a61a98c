/*
 * keel-storage domain: create, read, list, extend and remove storage
 * domains directly on storage URLs (no daemon).
 *
 *   keel-storage domain create --type nfs|posix|block --name NAME [--uuid UUID]
 *                              [--class data|iso|export] URL...
 *   keel-storage domain info [--json] [--domain SD] URL...
 *   keel-storage domain list [--json] URL...
 *   keel-storage domain extend [--domain SD] --lun URL URL...
 *   keel-storage domain remove [--domain SD] URL...
 *
 * A URL names the storage that holds domains: an NFS export or a POSIX
 * directory (the domain lives in <sdUUID>/ under it), or the LUNs of a
 * block domain (iscsi://... or file:///path to an image or block device).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/storage.h"
#include "common/strutil.h"
#include "io/iscsi_inventory.h"
#include "io/url.h"
#include "volume/sd.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: keel-storage domain create --type nfs|posix|block --name NAME\n"
            "                                  [--uuid UUID] [--class data|iso|export] URL...\n"
            "       keel-storage domain info [--json] [--domain SD] URL...\n"
            "       keel-storage domain list [--json] URL...\n"
            "       keel-storage domain extend [--domain SD] --lun URL URL...\n"
            "       keel-storage domain remove [--domain SD] URL...\n"
            "\n"
            "URL: an NFS export or POSIX directory that holds domains (nfs://host/export,\n"
            "file:///srv/data), or the LUNs of a block domain (iscsi://host/IQN/LUN, or\n"
            "file:///path to a LUN image or block device).  Reading a block domain needs\n"
            "the LUN holding the VG metadata; changes need every LUN of the domain.\n"
            "\n"
            "Domains are written in oVirt's V5 format.  keel-storage takes no lease: it\n"
            "must not change a domain that a running data center uses (SPM leases are\n"
            "not checked yet).\n");
}

static bool is_dir_url(const struct keel_url *u)
{
    struct stat st;

    return u->scheme == KEEL_URL_FILE && stat(u->path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The device id of a LUN, as the PVn keys name it (multipath's WWID form). */
static char *lun_guid(const char *url, const struct keel_url *u, const struct keel_io_opts *io)
{
    if (u->scheme == KEEL_URL_ISCSI) {
        struct keel_iscsi_target t;
        struct keel_error err = KEEL_ERROR_INIT;
        char *turl = strdup(url), *slash = turl ? strrchr(turl, '/') : NULL;
        char *guid = NULL;

        if (slash != NULL)
            *slash = '\0';
        if (turl != NULL && keel_iscsi_target_luns(turl, io, &t, &err) == 0) {
            for (size_t i = 0; i < t.nluns; i++)
                if (t.luns[i].lun == u->lun && t.luns[i].devid[0] != '\0')
                    guid = strdup(t.luns[i].devid);
            keel_iscsi_target_release(&t);
        }
        free(turl);
        if (guid != NULL)
            return guid;
    }
    {
        const char *b = strrchr(u->path, '/');

        return strdup(b && b[1] ? b + 1 : url);
    }
}

void keel_storage_target_close(struct keel_storage_target *t)
{
    for (size_t i = 0; i < t->ndevs; i++) {
        keel_blockdev_close(t->devs[i]);
        free(t->guids[i]);
    }
    free(t->devs);
    free(t->guids);
    keel_fs_close(t->fs);
    memset(t, 0, sizeof(*t));
}

int keel_storage_target_open(char **urls, int n, const struct keel_io_opts *io,
                             struct keel_storage_target *t)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u;

    memset(t, 0, sizeof(*t));
    if (n < 1) {
        fprintf(stderr, "keel-storage: no storage URL given\n");
        return -1;
    }
    if (keel_url_parse(urls[0], &u, &err) != 0)
        goto fail;
    if (u.scheme == KEEL_URL_NFS || is_dir_url(&u)) {
        if (n != 1) {
            fprintf(stderr, "keel-storage domain: a file domain's storage is one URL\n");
            return -1;
        }
        if (keel_fs_open(urls[0], io, &t->fs, &err) != 0)
            goto fail;
        keel_url_remote_path(&u, t->remote_path, sizeof(t->remote_path));
        return 0;
    }
    t->block = true;
    t->devs = calloc((size_t)n, sizeof(*t->devs));
    t->guids = calloc((size_t)n, sizeof(*t->guids));
    for (int i = 0; i < n; i++) {
        if (keel_url_parse(urls[i], &u, &err) != 0 ||
            keel_blockdev_open(urls[i], io, &t->devs[i], &err) != 0)
            goto fail;
        t->guids[i] = lun_guid(urls[i], &u, io);
        t->ndevs++;
    }
    return 0;
fail:
    fprintf(stderr, "keel-storage domain: %s\n", err.msg);
    keel_storage_target_close(t);
    return -1;
}

int keel_storage_open_domain(struct keel_storage_target *t, const char *sd_uuid,
                             struct keel_sd **sd)
{
    struct keel_error err = KEEL_ERROR_INIT;
    int rc = t->block ? keel_sd_open_block(t->devs, t->ndevs, sd_uuid, sd, &err)
                      : keel_sd_open_file(t->fs, sd_uuid, sd, &err);

    if (rc != 0)
        fprintf(stderr, "keel-storage: %s\n", err.msg);
    return rc;
}

static json_t *info_json(struct keel_sd *sd)
{
    const struct keel_sd_info *in = keel_sd_info(sd);
    const struct keel_sd_md *md = keel_sd_md(sd);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_space sp = { 0 };
    json_t *o = json_object(), *m = json_object();

    json_object_set_new(o, "uuid", json_string(in->uuid));
    json_object_set_new(o, "name", json_string(in->description));
    json_object_set_new(o, "type", json_string(keel_sd_type_name(in->type)));
    json_object_set_new(o, "class", json_string(keel_sd_class_name(in->klass)));
    json_object_set_new(o, "version", json_integer(in->version));
    json_object_set_new(o, "role", json_string(in->master ? "Master" : "Regular"));
    json_object_set_new(o, "pool", json_string(in->pool_uuids));
    json_object_set_new(o, "block_size", json_integer(in->block_size));
    json_object_set_new(o, "alignment", json_integer((json_int_t)in->alignment));
    if (keel_sd_space(sd, &sp, &err) == 0) {
        json_object_set_new(o, "capacity", json_integer((json_int_t)sp.capacity));
        json_object_set_new(o, "free", json_integer((json_int_t)sp.free));
    }
    if (in->vg_uuid != NULL)
        json_object_set_new(o, "vg_uuid", json_string(in->vg_uuid));
    if (in->remote_path != NULL)
        json_object_set_new(o, "remote_path", json_string(in->remote_path));
    for (size_t i = 0; i < md->n; i++)
        json_object_set_new(m, md->kv[i].key, json_string(md->kv[i].value));
    json_object_set_new(o, "metadata", m);
    return o;
}

static void print_info(struct keel_sd *sd)
{
    const struct keel_sd_info *in = keel_sd_info(sd);
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_space sp = { 0 };

    printf("uuid:        %s\n", in->uuid);
    printf("name:        %s\n", in->description);
    printf("type:        %s\n", keel_sd_type_name(in->type));
    printf("class:       %s\n", keel_sd_class_name(in->klass));
    printf("version:     %u\n", in->version);
    printf("role:        %s\n", in->master ? "Master" : "Regular");
    printf("pool:        %s\n", in->pool_uuids[0] ? in->pool_uuids : "(none)");
    printf("block size:  %u\n", in->block_size);
    printf("alignment:   %" PRIu64 "\n", in->alignment);
    if (keel_sd_space(sd, &sp, &err) == 0) {
        printf("capacity:    %" PRIu64 "\n", sp.capacity);
        printf("free:        %" PRIu64 "\n", sp.free);
    }
    if (in->vg_uuid != NULL)
        printf("vg uuid:     %s\n", in->vg_uuid);
    if (in->remote_path != NULL)
        printf("remote path: %s\n", in->remote_path);
}

static int parse_type(const char *s, enum keel_sd_type *t)
{
    if (strcmp(s, "nfs") == 0)
        *t = KEEL_SD_TYPE_NFS;
    else if (strcmp(s, "posix") == 0)
        *t = KEEL_SD_TYPE_POSIXFS;
    else if (strcmp(s, "localfs") == 0)
        *t = KEEL_SD_TYPE_LOCALFS;
    else if (strcmp(s, "block") == 0 || strcmp(s, "iscsi") == 0)
        *t = KEEL_SD_TYPE_ISCSI;
    else if (strcmp(s, "fcp") == 0)
        *t = KEEL_SD_TYPE_FCP;
    else
        return -1;
    return 0;
}

static int parse_class(const char *s, enum keel_sd_class *c)
{
    if (strcmp(s, "data") == 0)
        *c = KEEL_SD_CLASS_DATA;
    else if (strcmp(s, "iso") == 0)
        *c = KEEL_SD_CLASS_ISO;
    else if (strcmp(s, "export") == 0 || strcmp(s, "backup") == 0)
        *c = KEEL_SD_CLASS_BACKUP;
    else
        return -1;
    return 0;
}

void keel_storage_print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("\n");
    json_decref(o);
}

int keel_storage_domain(int argc, char **argv, const struct keel_storage_ctx *ctx)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },     { "domain", required_argument, NULL, 'd' },
        { "type", required_argument, NULL, 't' }, { "name", required_argument, NULL, 'n' },
        { "uuid", required_argument, NULL, 'u' }, { "class", required_argument, NULL, 'c' },
        { "lun", required_argument, NULL, 'l' },  { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_sd_create cr = { .klass = KEEL_SD_CLASS_DATA };
    const char *verb, *sd_uuid = NULL, *type = NULL, *lun = NULL;
    bool json = false;
    struct keel_storage_target t;
    struct keel_sd *sd = NULL;
    int opt, rc = 1;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = true; break;
        case 'd': sd_uuid = optarg; break;
        case 't': type = optarg; break;
        case 'n': cr.name = optarg; break;
        case 'u': cr.uuid = optarg; break;
        case 'l': lun = optarg; break;
        case 'c':
            if (parse_class(optarg, &cr.klass) != 0) {
                fprintf(stderr, "keel-storage domain: unknown class '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (strcmp(verb, "create") == 0) {
        if (type == NULL || cr.name == NULL || parse_type(type, &cr.type) != 0) {
            fprintf(stderr, "keel-storage domain create: --type nfs|posix|block and --name "
                            "are required\n");
            return 2;
        }
        if (cr.uuid != NULL && !keel_uuid_valid(cr.uuid)) {
            fprintf(stderr, "keel-storage domain create: '%s' is not a UUID\n", cr.uuid);
            return 2;
        }
    } else if (strcmp(verb, "info") != 0 && strcmp(verb, "list") != 0 &&
               strcmp(verb, "extend") != 0 && strcmp(verb, "remove") != 0) {
        fprintf(stderr, "keel-storage domain: unknown verb '%s'\n", verb);
        usage(stderr);
        return 2;
    }
    if (keel_storage_target_open(argv + optind, argc - optind, &ctx->io, &t) != 0)
        return 1;

    if (strcmp(verb, "create") == 0) {
        if (t.block != keel_sd_type_is_block(cr.type)) {
            fprintf(stderr, "keel-storage domain create: type %s needs %s\n", type,
                    t.block ? "a directory or NFS export URL" : "LUN URLs");
            goto out;
        }
        cr.remote_path = t.remote_path;
        cr.pv_guids = (const char *const *)t.guids;
        if ((t.block ? keel_sd_create_block(t.devs, t.ndevs, &cr, &sd, &err)
                     : keel_sd_create_file(t.fs, &cr, &sd, &err)) != 0) {
            fprintf(stderr, "keel-storage domain create: %s\n", err.msg);
            goto out;
        }
        if (json) {
            keel_storage_print_json(info_json(sd));
        } else {
            printf("%s\n", keel_sd_info(sd)->uuid);
        }
        rc = 0;
    } else if (strcmp(verb, "list") == 0) {
        json_t *a = json_array();

        if (t.block) {
            if (keel_sd_open_block(t.devs, t.ndevs, NULL, &sd, &err) == 0)
                json_array_append_new(a, json_string(keel_sd_info(sd)->uuid));
            else if (err.code != KEEL_E_NOENT && err.code != KEEL_E_MAGIC)
                fprintf(stderr, "keel-storage domain list: %s\n", err.msg);
        } else {
            char **l = NULL;
            size_t n = 0;

            if (keel_sd_list_file(t.fs, &l, &n, &err) != 0) {
                fprintf(stderr, "keel-storage domain list: %s\n", err.msg);
                json_decref(a);
                goto out;
            }
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(a, json_string(l[i]));
                free(l[i]);
            }
            free(l);
        }
        if (json) {
            json_dumpf(a, stdout, JSON_INDENT(2));
            printf("\n");
        } else {
            for (size_t i = 0; i < json_array_size(a); i++)
                printf("%s\n", json_string_value(json_array_get(a, i)));
        }
        json_decref(a);
        rc = 0;
    } else {
        if (keel_storage_open_domain(&t, sd_uuid, &sd) != 0)
            goto out;
        if (strcmp(verb, "info") == 0) {
            if (json) {
                keel_storage_print_json(info_json(sd));
            } else {
                print_info(sd);
            }
            rc = 0;
        } else if (strcmp(verb, "extend") == 0) {
            struct keel_blockdev *dev = NULL;
            struct keel_url u;
            char *guid;

            if (lun == NULL) {
                fprintf(stderr, "keel-storage domain extend: --lun URL is required\n");
                goto out;
            }
            if (keel_url_parse(lun, &u, &err) != 0 ||
                keel_blockdev_open(lun, &ctx->io, &dev, &err) != 0) {
                fprintf(stderr, "keel-storage domain extend: %s\n", err.msg);
                goto out;
            }
            guid = lun_guid(lun, &u, &ctx->io);
            rc = keel_sd_extend(sd, dev, guid, &err) == 0 ? 0 : 1;
            free(guid);
            if (rc != 0)
                fprintf(stderr, "keel-storage domain extend: %s\n", err.msg);
            keel_sd_close(sd); /* before dev: the domain borrows it */
            sd = NULL;
            keel_blockdev_close(dev);
        } else { /* remove */
            rc = keel_sd_format(sd, &err) == 0 ? 0 : 1;
            sd = NULL;
            if (rc != 0)
                fprintf(stderr, "keel-storage domain remove: %s\n", err.msg);
        }
    }
out:
    keel_sd_close(sd);
    keel_storage_target_close(&t);
    return rc;
}

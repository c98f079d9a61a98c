/*
 * File storage domains (NFS, POSIX): the <sdUUID>/ tree; see sd.h and
 * ovirt-storage-format.md section 3.  Creation order (invariant 1 of sd.h):
 *
 *   1. refuse when the root already holds a domain (a "<x>/dom_md");
 *   2. <sd>/dom_md (0775), the special files (0660): ids, leases,
 *      xleases, keel_journal empty, inbox and outbox sparse 16 MiB;
 *   3. format xleases;
 *   4. dom_md/metadata, written as metadata.new then renamed;
 *   5. <sd>/images;
 *   6. the sanlock lockspace in ids and the SDM resource in leases.
 *
 * A crash before 4 leaves a tree without metadata: not a domain, and
 * keel_sd_open_file says so; a crash in 5-6 leaves a domain whose leases
 * are not initialised: open reads it, and creating it again is refused.
 */
#include "volume/sd-priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/strutil.h"

#define MD_MAX (64 * 1024)

static int fs_path(char *buf, size_t cap, const char *sd, const char *sub)
{
    int n = snprintf(buf, cap, "%s/%s", sd, sub);

    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Does root hold any "<x>/dom_md"?  The name of the first one into found. */
static int find_any_domain(struct keel_fs *fs, char *found, size_t cap, struct keel_error *err)
{
    struct keel_dirlist l = { 0 };
    int rc = 0;

    found[0] = '\0';
    if (keel_fs_readdir(fs, ".", &l, err) != 0)
        return -1;
    for (size_t i = 0; i < l.n && found[0] == '\0'; i++) {
        char p[512];
        bool there = false;

        if (strcmp(l.names[i], ".") == 0 || strcmp(l.names[i], "..") == 0)
            continue;
        if (fs_path(p, sizeof(p), l.names[i], "dom_md") != 0)
            continue;
        if (keel_fs_exists(fs, p, &there, err) != 0) {
            rc = -1;
            break;
        }
        if (there)
            keel_strlcpy(found, l.names[i], cap);
    }
    keel_dirlist_release(&l);
    return rc;
}

int keel_sd_list_file(struct keel_fs *fs, char ***uuids, size_t *n, struct keel_error *err)
{
    struct keel_dirlist l = { 0 };
    char **out;
    size_t k = 0;

    if (keel_fs_readdir(fs, ".", &l, err) != 0)
        return -1;
    out = calloc(l.n + 1, sizeof(*out));
    if (out == NULL) {
        keel_dirlist_release(&l);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < l.n; i++) {
        char p[512];
        bool there = false;

        if (!keel_uuid_valid(l.names[i]))
            continue;
        if (fs_path(p, sizeof(p), l.names[i], "dom_md/metadata") != 0)
            continue;
        if (keel_fs_exists(fs, p, &there, err) != 0) {
            for (size_t j = 0; j < k; j++)
                free(out[j]);
            free(out);
            keel_dirlist_release(&l);
            return -1;
        }
        if (there)
            out[k++] = strdup(l.names[i]);
    }
    keel_dirlist_release(&l);
    *uuids = out;
    *n = k;
    return 0;
}

/* Create an empty file (or one of `size` bytes, sparse) with mode 0660. */
static int make_file(struct keel_fs *fs, const char *sd, const char *name, uint64_t size,
                     struct keel_error *err)
{
    struct keel_file *f = NULL;
    char p[512];
    int rc;

    fs_path(p, sizeof(p), sd, name);
    if (keel_file_open(fs, p, KEEL_O_RDWR | KEEL_O_CREAT | KEEL_O_EXCL, 0660, &f, err) != 0)
        return -1;
    rc = size > 0 ? keel_file_truncate(f, size, err) : 0;
    if (rc == 0)
        rc = keel_file_fsync(f, err);
    if (keel_file_close(f, rc == 0 ? err : NULL) != 0)
        rc = -1;
    return rc;
}

int keel_sd_view_open(struct keel_fs *fs, const char *path, unsigned flags, uint64_t size,
                      struct keel_sd_file_view *v, struct keel_error *err)
{
    memset(v, 0, sizeof(*v));
    if (keel_file_open(fs, path, flags, 0660, &v->file, err) != 0)
        return -1;
    if ((size > 0 && keel_file_truncate(v->file, size, err) != 0) ||
        keel_blockdev_open_file(v->file, 512, &v->area.dev, err) != 0) {
        keel_file_close(v->file, NULL);
        v->file = NULL;
        return -1;
    }
    v->area.size = keel_blockdev_size(v->area.dev);
    return 0;
}

int keel_sd_view_close(struct keel_sd_file_view *v, struct keel_error *err)
{
    int rc = 0;

    if (v->area.dev != NULL && keel_blockdev_flush(v->area.dev, err) != 0)
        rc = -1;
    keel_blockdev_close(v->area.dev);
    if (v->file != NULL && keel_file_fsync(v->file, rc == 0 ? err : NULL) != 0)
        rc = -1;
    if (v->file != NULL && keel_file_close(v->file, rc == 0 ? err : NULL) != 0)
        rc = -1;
    memset(v, 0, sizeof(*v));
    return rc;
}

/* One of the domain's special files as an area, grown to `size` first. */
static int area_open(struct keel_fs *fs, const char *sd, const char *name, uint64_t size,
                     struct keel_sd_file_view *v, struct keel_error *err)
{
    char p[512];

    fs_path(p, sizeof(p), sd, name);
    return keel_sd_view_open(fs, p, KEEL_O_RDWR | KEEL_O_SYNC, size, v, err);
}

static int write_md(struct keel_fs *fs, const char *sd, const struct keel_sd_md *md,
                    struct keel_error *err)
{
    struct keel_strbuf sb;
    char p[512];
    int rc;

    keel_strbuf_init(&sb, 1024);
    keel_sd_md_format(md, &sb);
    if (sb.failed) {
        keel_strbuf_release(&sb);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    fs_path(p, sizeof(p), sd, "dom_md/metadata");
    rc = keel_fs_write_file_atomic(fs, p, sb.buf, sb.len, 0660, err);
    keel_strbuf_release(&sb);
    return rc;
}

int keel_sd_create_file(struct keel_fs *fs, const struct keel_sd_create *c,
                        struct keel_sd **ret, struct keel_error *err)
{
    static const char *const empty[] = { "dom_md/ids", "dom_md/leases", "dom_md/xleases",
                                         "dom_md/keel_journal" };
    struct keel_sd_md md;
    struct keel_sd_md_new nd = { 0 };
    struct keel_sd_file_view ids, leases, xleases;
    char uuid[KEEL_UUID_LEN + 1], other[256], p[512];
    struct keel_sd *sd = NULL;
    const uint64_t align = UINT64_C(1) << 20;
    int rc;

    if (c->uuid != NULL)
        keel_strlcpy(uuid, c->uuid, sizeof(uuid));
    else
        keel_uuid_new(uuid);
    if (c->type != KEEL_SD_TYPE_NFS && c->type != KEEL_SD_TYPE_POSIXFS &&
        c->type != KEEL_SD_TYPE_LOCALFS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: type %s is not a file "
                              "domain type", uuid, keel_sd_type_name(c->type) ?: "?");
    nd.uuid = uuid;
    nd.description = c->name;
    nd.type = c->type;
    nd.klass = c->klass;
    nd.remote_path = c->remote_path;
    keel_sd_md_init(&md);
    if (keel_sd_md_new_domain(&md, &nd, err) != 0)
        return -1;

    /* 1. one domain per root, as VDSM requires */
    if (find_any_domain(fs, other, sizeof(other), err) != 0)
        goto fail;
    if (other[0] != '\0') {
        keel_error_set(err, KEEL_E_EXIST, 0, "storage domain %s: the storage already holds "
                       "domain %s", uuid, other);
        goto fail;
    }
    /* 2. the tree and the special files */
    if (keel_fs_mkdir(fs, uuid, 0755, err) != 0)
        goto fail_ctx;
    fs_path(p, sizeof(p), uuid, "dom_md");
    if (keel_fs_mkdir(fs, p, 0775, err) != 0)
        goto fail_ctx;
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
        if (make_file(fs, uuid, empty[i], 0, err) != 0)
            goto fail_ctx;
    if (make_file(fs, uuid, "dom_md/inbox", KEEL_SD_MAILBOX_SIZE, err) != 0 ||
        make_file(fs, uuid, "dom_md/outbox", KEEL_SD_MAILBOX_SIZE, err) != 0)
        goto fail_ctx;
    /* 3. */
    if (area_open(fs, uuid, "dom_md/xleases", keel_sd_xleases_initial_size(align),
                  &xleases, err) != 0)
        goto fail_ctx;
    rc = keel_sd_format_xleases(&xleases.area, uuid, align, err);
    if (keel_sd_view_close(&xleases, rc == 0 ? err : NULL) != 0 || rc != 0)
        goto fail_ctx;
    /* 4., 5. */
    if (write_md(fs, uuid, &md, err) != 0)
        goto fail_ctx;
    fs_path(p, sizeof(p), uuid, "images");
    if (keel_fs_mkdir(fs, p, 0755, err) != 0)
        goto fail_ctx;
    /* 6. */
    if (area_open(fs, uuid, "dom_md/ids", align, &ids, err) != 0)
        goto fail_ctx;
    if (area_open(fs, uuid, "dom_md/leases", 2 * align, &leases, err) != 0) {
        keel_sd_view_close(&ids, NULL);
        goto fail_ctx;
    }
    rc = keel_sd_init_leases(&ids.area, &leases.area, uuid, 512, align, err);
    if (keel_sd_view_close(&ids, rc == 0 ? err : NULL) != 0)
        rc = -1;
    if (keel_sd_view_close(&leases, rc == 0 ? err : NULL) != 0)
        rc = -1;
    if (rc != 0)
        goto fail_ctx;
    if (keel_sd_new_from_md(&md, &sd, err) != 0)
        goto fail;
    sd->fs = fs;
    keel_strlcpy(sd->root, uuid, sizeof(sd->root));
    *ret = sd;
    return 0;
fail_ctx:
    keel_error_prefix(err, "storage domain %s", uuid);
fail:
    keel_sd_md_release(&md);
    return -1;
}

int keel_sd_open_file(struct keel_fs *fs, const char *sd_uuid, struct keel_sd **ret,
                      struct keel_error *err)
{
    struct keel_sd_md md;
    struct keel_sd *sd = NULL;
    char uuid[KEEL_UUID_LEN + 1], p[512];
    char *text = NULL;
    size_t len = 0;

    if (sd_uuid == NULL) {
        char **list = NULL;
        size_t n = 0;

        if (keel_sd_list_file(fs, &list, &n, err) != 0)
            return -1;
        if (n == 1)
            keel_strlcpy(uuid, list[0], sizeof(uuid));
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        if (n != 1)
            return keel_error_set(err, n == 0 ? KEEL_E_NOENT : KEEL_E_INVAL, 0,
                                  n == 0 ? "no storage domain here"
                                         : "%zu storage domains here: name one", n);
    } else {
        if (!keel_uuid_valid(sd_uuid))
            return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not a domain UUID", sd_uuid);
        keel_strlcpy(uuid, sd_uuid, sizeof(uuid));
    }
    fs_path(p, sizeof(p), uuid, "dom_md/metadata");
    if (keel_fs_read_file(fs, p, MD_MAX, &text, &len, err) != 0) {
        bool tree = false;
        char d[512];

        fs_path(d, sizeof(d), uuid, "dom_md");
        if (err->code == KEEL_E_NOENT && keel_fs_exists(fs, d, &tree, NULL) == 0 && tree)
            keel_error_set(err, KEEL_E_CORRUPT, 0, "dom_md has no metadata: the leftover of "
                           "an interrupted creation (remove the %s directory)", uuid);
        return keel_error_prefix(err, "storage domain %s", uuid);
    }
    keel_sd_md_init(&md);
    if (keel_sd_md_parse(text, len, &md, NULL, err) != 0) {
        free(text);
        return keel_error_prefix(err, "storage domain %s", uuid);
    }
    free(text);
    if (keel_sd_new_from_md(&md, &sd, err) != 0)
        return -1;
    if (strcmp(sd->info.uuid, uuid) != 0) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "storage domain %s: metadata names domain %s",
                       uuid, sd->info.uuid);
        keel_sd_close(sd);
        return -1;
    }
    if (keel_sd_type_is_block(sd->info.type)) {
        keel_error_set(err, KEEL_E_CORRUPT, 0, "storage domain %s: file domain of type %s",
                       uuid, keel_sd_type_name(sd->info.type));
        keel_sd_close(sd);
        return -1;
    }
    sd->fs = fs;
    keel_strlcpy(sd->root, uuid, sizeof(sd->root));
    *ret = sd;
    return 0;
}

int keel_sd_write_md_file(struct keel_sd *sd, const struct keel_sd_md *md,
                          struct keel_error *err)
{
    return write_md(sd->fs, sd->root, md, err);
}

/* Remove path and everything below it. */
static int remove_tree(struct keel_fs *fs, const char *path, struct keel_error *err)
{
    struct keel_stat st;
    struct keel_dirlist l = { 0 };

    if (keel_fs_stat(fs, path, &st, err) != 0)
        return err->code == KEEL_E_NOENT ? 0 : -1;
    if (!st.is_dir)
        return keel_fs_unlink(fs, path, err);
    if (keel_fs_readdir(fs, path, &l, err) != 0)
        return -1;
    for (size_t i = 0; i < l.n; i++) {
        char *sub;
        int rc;

        if (strcmp(l.names[i], ".") == 0 || strcmp(l.names[i], "..") == 0)
            continue;
        sub = keel_strdup_printf("%s/%s", path, l.names[i]);
        if (sub == NULL) {
            keel_dirlist_release(&l);
            return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        }
        rc = remove_tree(fs, sub, err);
        free(sub);
        if (rc != 0) {
            keel_dirlist_release(&l);
            return -1;
        }
    }
    keel_dirlist_release(&l);
    return keel_fs_rmdir(fs, path, err);
}

int keel_sd_format_file(struct keel_sd *sd, struct keel_error *err)
{
    char md[512];

    /* The metadata goes first: a crash half way leaves a leftover, not a domain. */
    fs_path(md, sizeof(md), sd->root, "dom_md/metadata");
    if (keel_fs_unlink(sd->fs, md, err) != 0 && err->code != KEEL_E_NOENT)
        return keel_error_prefix(err, "storage domain %s", sd->root);
    if (remove_tree(sd->fs, sd->root, err) != 0)
        return keel_error_prefix(err, "storage domain %s", sd->root);
    return 0;
}

/*
 * keeld's storage: the storage server connections, the domains found on
 * them, and the domain monitor.
 *
 *   StorageServer.connect --> struct sconn: an NFS export or POSIX dir (one
 *       keel_fs), or an iSCSI target (one keel_blockdev per disk LUN)
 *   keel_hsm_dom_get(uuid) --> cached struct keel_hsm_dom, else a scan:
 *       file connections list their <sdUUID>/dom_md/metadata; the LUNs
 *       of iSCSI connections are grouped by the VG their LVM label names
 *   monitor thread --> every cached domain re-read on an interval
 *
 * Invariants:
 *   1. A domain's keel_sd borrows its connection's fs or LUNs: a
 *      connection is closed only after every domain found on it was
 *      dropped from the cache, and a domain in use (refs > 0) keeps its
 *      connection (disconnect is refused with general.busy); so does a
 *      verb that uses its fs or a LUN directly (pins > 0: create, extend).
 *   2. What a domain says is re-read on every keel_hsm_dom_get: its
 *      metadata file (file domains), its VG when the seqno moved (block),
 *      so that a change another host made is seen.
 *   3. connections.json in the state directory holds what is connected
 *      (CHAP secrets included: the file is 0600), written whole and
 *      renamed into place; keeld connects them again when it starts.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "hsm/hsm.h"
#include "hsm/rpc.h"
#include "hsm/storage.h"
#include "io/iscsi_inventory.h"
#include "io/url.h"
#include "metadata/lvm_store.h"

#define MOD "hsm.storage"

struct sconn {
    char id[72];
    char type[8];                 /* iscsi, nfs, posix */
    char url[KEEL_URL_MAX];       /* as given (iscsi: the target) */
    char user[256], password[256];
    char shown[KEEL_URL_MAX];     /* redacted */
    struct keel_fs *fs;           /* nfs, posix */
    struct keel_iscsi_target target; /* iscsi */
    size_t ndevs;
    struct keel_blockdev **devs;  /* iscsi: one per disk LUN, in target.luns order */
    const struct keel_iscsi_lun **dev_lun; /* what the target said of devs[i] (in target) */
    unsigned pins;                /* verbs using its fs or LUNs directly (registry lock) */
    struct sconn *next;
};

struct dom_entry {
    struct keel_hsm_dom d;
    struct keel_blockdev **devs;  /* block: the LUNs it was opened on */
    size_t ndevs;
    struct dom_entry *next;
};

struct keel_hsm_storage {
    struct keel_hsm *h;
    pthread_mutex_t lock;         /* conns, doms, refs, monitor fields */
    pthread_mutex_t scan_lock;    /* one scan at a time; taken before lock */
    struct sconn *conns;
    struct dom_entry *doms;
    pthread_t monitor;
    bool monitor_started, stopping;
    pthread_cond_t cond;
};

/* ---- connections ---- */

static void sconn_free(struct sconn *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ndevs; i++)
        keel_blockdev_close(c->devs[i]);
    free(c->devs);
    free(c->dev_lun);
    keel_iscsi_target_release(&c->target);
    keel_fs_close(c->fs);
    /* the secret does not linger in freed memory */
    explicit_bzero(c->password, sizeof(c->password));
    free(c);
}

static bool id_ok(const char *id)
{
    if (id[0] == '\0')
        return false;
    for (const char *p = id; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* The URL with the credentials in it, for io/ (never logged). */
static int iscsi_url(const struct sconn *c, int lun, char *buf, size_t n, struct keel_error *err)
{
    struct keel_url u;

    if (keel_url_parse_portal(c->url, &u, err) != 0)
        return -1;
    if (u.iqn[0] == '\0')
        return keel_error_set(err, KEEL_E_URL, 0, "%s: no target IQN (iscsi://host/IQN)", c->url);
    if (c->user[0] != '\0') {
        keel_strlcpy(u.user, c->user, sizeof(u.user));
        keel_strlcpy(u.secret, c->password, sizeof(u.secret));
    }
    u.lun = lun;
    keel_url_format(&u, false, buf, n);
    return 0;
}

static int sconn_open(struct keel_hsm *h, struct sconn *c, struct keel_error *err)
{
    const struct keel_io_opts *io = keel_hsm_io_opts(h);
    char url[KEEL_URL_MAX];
    struct keel_url u;

    if (strcmp(c->type, "iscsi") != 0) {
        if (keel_url_parse(c->url, &u, err) != 0)
            return -1;
        if ((strcmp(c->type, "nfs") == 0) != (u.scheme == KEEL_URL_NFS) ||
            (strcmp(c->type, "posix") == 0) != (u.scheme == KEEL_URL_FILE))
            return keel_error_set(err, KEEL_E_URL, 0, "%s: not a %s URL", c->shown, c->type);
        return keel_fs_open(c->url, io, &c->fs, err);
    }
    if (iscsi_url(c, -1, url, sizeof(url), err) != 0 ||
        keel_iscsi_target_luns(url, io, &c->target, err) != 0)
        return -1;
    c->devs = calloc(c->target.nluns + 1, sizeof(*c->devs));
    c->dev_lun = calloc(c->target.nluns + 1, sizeof(*c->dev_lun));
    if (c->devs == NULL || c->dev_lun == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < c->target.nluns; i++) {
        const struct keel_iscsi_lun *l = &c->target.luns[i];

        if (l->device_type != KEEL_SCSI_TYPE_DISK || l->size == 0)
            continue;
        if (iscsi_url(c, l->lun, url, sizeof(url), err) != 0 ||
            keel_blockdev_open(url, io, &c->devs[c->ndevs], err) != 0)
            return -1;
        c->dev_lun[c->ndevs++] = l;
    }
    return 0;
}

static struct sconn *find_conn(struct keel_hsm_storage *s, const char *id)
{
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

/* A LUN's id for the PV map and for callers: its device id, else its URL. */
static const char *lun_id(const struct keel_iscsi_lun *l)
{
    return l->devid[0] ? l->devid : l->url;
}

/* Every LUN of every connection, with its connection (scan lock held). */
struct lunlist {
    size_t n;
    struct keel_blockdev **dev;
    struct sconn **conn;
};

static void lunlist_release(struct lunlist *l)
{
    free(l->dev);
    free(l->conn);
}

static int all_luns(struct keel_hsm_storage *s, struct lunlist *l, struct keel_error *err)
{
    size_t n = 0;

    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        n += c->ndevs;
    l->n = 0;
    l->dev = calloc(n + 1, sizeof(*l->dev));
    l->conn = calloc(n + 1, sizeof(*l->conn));
    if (l->dev == NULL || l->conn == NULL) {
        lunlist_release(l);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        for (size_t i = 0; i < c->ndevs; i++) {
            l->dev[l->n] = c->devs[i];
            l->conn[l->n++] = c;
        }
    return 0;
}

/*
 * Which of the LUNs in l are PVs of VG vg: in[i] set for each.  The VG is
 * read from the LUNs that carry its metadata; the others (a PV made
 * without a metadata area, as an extend may add) are known by their PV
 * UUID in it.  Returns how many; 0 when no LUN holds the VG.
 */
static size_t vg_members(const struct lunlist *l, const char *vg, bool *in)
{
    struct keel_lvm_store *st = NULL;
    struct keel_error err = KEEL_ERROR_INIT;
    size_t k = 0;

    if (l->n == 0 || keel_lvm_store_open(l->dev, l->n, vg, "keeld", &st, &err) != 0)
        return 0;
    for (uint32_t p = 0; p < keel_lvm_store_vg(st)->npvs; p++) {
        struct keel_blockdev *d = keel_lvm_store_pv_dev(st, p);

        for (size_t i = 0; d != NULL && i < l->n; i++)
            if (l->dev[i] == d && !in[i]) {
                in[i] = true;
                k++;
            }
    }
    keel_lvm_store_close(st);
    return k;
}


/* Write connections.json (registry lock held). */
static int save_conns(struct keel_hsm_storage *s, struct keel_error *err)
{
    const char *dir = keel_hsm_cfg(s->h)->state_dir;
    _cleanup_free_ char *path = NULL, *tmp = NULL, *text = NULL;
    json_t *a = json_array();
    int fd;
    size_t len;

    if (a == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", c->id, "type",
                                           c->type, "url", c->url, "user", c->user,
                                           "password", c->password));
    text = json_dumps(a, JSON_INDENT(1));
    json_decref(a);
    path = keel_strdup_printf("%s/connections.json", dir);
    tmp = keel_strdup_printf("%s/connections.json.new", dir);
    if (text == NULL || path == NULL || tmp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    len = strlen(text);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "%s", tmp);
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;

        close(fd);
        return keel_error_errno(err, KEEL_E_IO, e, "%s", tmp);
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "%s", path);
    return 0;
}

/*
 * Connect one server (registry lock NOT held: logging in takes time).
 * 0, or -1 with err naming the connection.
 */
static int connect_one(struct keel_hsm_storage *s, const char *id, const char *type,
                       const char *url, const char *user, const char *password, bool save,
                       struct keel_error *err)
{
    struct sconn *c, *old;
    struct keel_url u;

    if (!id_ok(id))
        return keel_error_set(err, KEEL_E_INVAL, 0, "connection \"%s\": an id is letters, "
                              "digits, '-', '_' and '.'", id);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    keel_strlcpy(c->id, id, sizeof(c->id));
    keel_strlcpy(c->type, type, sizeof(c->type));
    keel_strlcpy(c->url, url, sizeof(c->url));
    /*
     * io/ takes CHAP credentials inside the URL's authority: a '/', '@',
     * '%', '?' or '#' in them would end it early, fail to parse, and put
     * the secret into an error message.  Refuse them before anything is
     * built or logged.
     */
    if ((user && strpbrk(user, "/@%?#")) || (password && strpbrk(password, "/@%?#"))) {
        free(c);
        return keel_error_set(err, KEEL_E_INVAL, 0, "connection %s: CHAP user and secret may "
                              "not contain '/', '@', '%%', '?' or '#'", id);
    }
    keel_strlcpy(c->user, user ? user : "", sizeof(c->user));
    keel_strlcpy(c->password, password ? password : "", sizeof(c->password));
    if (strcmp(type, "iscsi") == 0 ? keel_url_parse_portal(url, &u, err) != 0
                                   : keel_url_parse(url, &u, err) != 0) {
        sconn_free(c);
        return keel_error_prefix(err, "connection %s", id);
    }
    keel_url_format(&u, true, c->shown, sizeof(c->shown));
    pthread_mutex_lock(&s->lock);
    old = find_conn(s, id);
    if (old != NULL) {
        bool same = strcmp(old->url, url) == 0 && strcmp(old->type, type) == 0;

        pthread_mutex_unlock(&s->lock);
        sconn_free(c);
        if (same)
            return 0;
        return keel_error_set(err, KEEL_E_EXIST, 0, "connection %s: connected already to %s",
                              id, old->shown);
    }
    pthread_mutex_unlock(&s->lock);
    if (sconn_open(s->h, c, err) != 0) {
        keel_error_prefix(err, "connection %s", id);
        sconn_free(c);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    if (find_conn(s, id) != NULL) {   /* raced with another connect of the same id */
        pthread_mutex_unlock(&s->lock);
        sconn_free(c);
        return keel_error_set(err, KEEL_E_BUSY, 0, "connection %s: being connected", id);
    }
    c->next = s->conns;
    s->conns = c;
    /* Restoring does not save: a server down at start stays in the file. */
    if (save && save_conns(s, err) != 0)
        keel_log(KEEL_LOG_WARN, MOD, "connection %s: not saved: %s", id, err->msg);
    pthread_mutex_unlock(&s->lock);
    keel_log(KEEL_LOG_INFO, MOD, "connected %s (%s %s, %zu LUNs)", id, type, c->shown, c->ndevs);
    return 0;
}

/* Drop cached domains that may use connection c (registry lock held); -1 when one is in use. */
static int drop_doms_of(struct keel_hsm_storage *s, const struct sconn *c)
{
    struct dom_entry **pp;

    for (struct dom_entry *e = s->doms; e != NULL; e = e->next)
        if ((strcmp(e->d.conn_id, c->id) == 0 || e->ndevs > 0) && e->d.refs > 0)
            return -1;
    for (pp = &s->doms; *pp != NULL;) {
        struct dom_entry *e = *pp;

        if (strcmp(e->d.conn_id, c->id) == 0 || e->ndevs > 0) {
            *pp = e->next;
            keel_sd_close(e->d.sd);
            pthread_mutex_destroy(&e->d.lock);
            free(e->devs);
            free(e);
        } else {
            pp = &e->next;
        }
    }
    return 0;
}

static int disconnect_one(struct keel_hsm_storage *s, const char *id, struct keel_error *err)
{
    struct sconn **pp, *c = NULL;

    pthread_mutex_lock(&s->lock);
    for (pp = &s->conns; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            c = *pp;
            break;
        }
    if (c == NULL) {
        pthread_mutex_unlock(&s->lock);
        return keel_error_set(err, KEEL_E_NOENT, 0, "connection %s: not connected", id);
    }
    if (c->pins > 0 || drop_doms_of(s, c) != 0) {
        pthread_mutex_unlock(&s->lock);
        return keel_error_set(err, KEEL_E_BUSY, 0, "connection %s: a domain on it is in use",
                              id);
    }
    *pp = c->next;
    if (save_conns(s, err) != 0)
        keel_log(KEEL_LOG_WARN, MOD, "connections not saved: %s", err->msg);
    pthread_mutex_unlock(&s->lock);
    keel_log(KEEL_LOG_INFO, MOD, "disconnected %s", id);
    sconn_free(c);
    return 0;
}

static void restore_conns(struct keel_hsm_storage *s)
{
    _cleanup_free_ char *path = keel_strdup_printf("%s/connections.json",
                                                   keel_hsm_cfg(s->h)->state_dir);
    json_error_t je;
    json_t *a = path ? json_load_file(path, 0, &je) : NULL;
    size_t i;
    json_t *v;

    if (a == NULL)
        return;
    json_array_foreach(a, i, v) {
        struct keel_error err = KEEL_ERROR_INIT;
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *url = json_string_value(json_object_get(v, "url"));

        if (id == NULL || type == NULL || url == NULL)
            continue;
        if (connect_one(s, id, type, url, json_string_value(json_object_get(v, "user")),
                        json_string_value(json_object_get(v, "password")), false, &err) != 0)
            keel_log(KEEL_LOG_WARN, MOD, "restoring connections: %s", err.msg);
    }
    json_decref(a);
}

/* ---- domains ---- */

/*
 * Every connected LUN that is a PV of VG vg (scan lock held): *devs
 * (malloc'ed, borrowed LUNs) and *n, 0 when no LUN holds it; conn_id gets
 * the connection of the first.
 */
static int vg_luns(struct keel_hsm_storage *s, const char *vg, struct keel_blockdev ***devs,
                   size_t *n, char *conn_id, size_t conn_cap, struct keel_error *err)
{
    struct lunlist l;
    bool *in;
    size_t k = 0;

    if (all_luns(s, &l, err) != 0)
        return -1;
    in = calloc(l.n + 1, sizeof(*in));
    *devs = calloc(l.n + 1, sizeof(**devs));
    if (in == NULL || *devs == NULL) {
        free(in);
        free(*devs);
        lunlist_release(&l);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    vg_members(&l, vg, in);
    for (size_t i = 0; i < l.n; i++) {
        if (!in[i])
            continue;
        if (k == 0)
            keel_strlcpy(conn_id, l.conn[i]->id, conn_cap);
        (*devs)[k++] = l.dev[i];
    }
    *n = k;
    free(in);
    lunlist_release(&l);
    return 0;
}

/* Open domain uuid on what is connected (scan lock held, registry lock not). */
static int scan_for(struct keel_hsm_storage *s, const char *uuid, struct dom_entry **ret,
                    struct keel_error *err)
{
    struct dom_entry *e = calloc(1, sizeof(*e));
    struct keel_error e2 = KEEL_ERROR_INIT, why = KEEL_ERROR_INIT;

    if (e == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    /*
     * The connection list does not change under us: connect and disconnect
     * take the registry lock, and a connection is freed only by disconnect,
     * which also takes the scan lock first.
     */
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        if (c->fs == NULL)
            continue;
        if (keel_sd_open_file(c->fs, uuid, &e->d.sd, &e2) == 0) {
            keel_strlcpy(e->d.conn_id, c->id, sizeof(e->d.conn_id));
            goto found;
        }
        /* A domain that is there but does not read is named with its reason. */
        if (e2.code != KEEL_E_NOENT && why.code == KEEL_OK)
            why = e2;
    }
    if (vg_luns(s, uuid, &e->devs, &e->ndevs, e->d.conn_id, sizeof(e->d.conn_id), err) != 0) {
        free(e);
        return -1;
    }
    if (e->ndevs > 0) {
        if (keel_sd_open_block(e->devs, e->ndevs, uuid, &e->d.sd, err) != 0) {
            free(e->devs);
            free(e);
            return -1;
        }
        goto found;
    }
    free(e);
    if (why.code != KEEL_OK)
        return keel_error_copy(err, &why);
    return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s: not found on any connected "
                          "storage server", uuid);
found:
    keel_strlcpy(e->d.uuid, uuid, sizeof(e->d.uuid));
    pthread_mutex_init(&e->d.lock, NULL);
    e->d.valid = true;
    *ret = e;
    return 0;
}

static struct dom_entry *find_dom(struct keel_hsm_storage *s, const char *uuid)
{
    for (struct dom_entry *e = s->doms; e != NULL; e = e->next)
        if (strcmp(e->d.uuid, uuid) == 0)
            return e;
    return NULL;
}

/* Re-read what another host may have changed (invariant 2); d locked. */
static int refresh(struct keel_hsm_storage *s, struct dom_entry *e, struct keel_error *err)
{
    struct keel_sd *sd = NULL;
    bool changed = true;
    int rc;

    if (e->d.sd == NULL)  /* formatted while we waited for it */
        return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s: removed", e->d.uuid);
    if (keel_sd_is_block(e->d.sd)) {
        if (keel_lvm_store_refresh(keel_sd_vg(e->d.sd), &changed, err) != 0)
            return keel_error_prefix(err, "storage domain %s", e->d.uuid);
        if (!changed)
            return 0;
        /*
         * Another host may have added a LUN (StorageDomain.extend): when the
         * VG has more PVs than we hold, find its LUNs again, or a change of
         * ours would miss the new one.  Lock order: a domain, then the scan
         * lock (nothing takes a domain with the scan lock held).
         */
        if (keel_lvm_store_vg(keel_sd_vg(e->d.sd))->npvs != e->ndevs) {
            struct keel_blockdev **devs = NULL;
            size_t n = 0;
            char conn_id[sizeof(e->d.conn_id)];

            pthread_mutex_lock(&s->scan_lock);
            rc = vg_luns(s, e->d.uuid, &devs, &n, conn_id, sizeof(conn_id), err);
            pthread_mutex_unlock(&s->scan_lock);
            if (rc != 0)
                return -1;
            if (n == 0) {
                free(devs);
                return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s: its LUNs are "
                                      "gone", e->d.uuid);
            }
            free(e->devs);
            e->devs = devs;
            e->ndevs = n;
        }
        if (keel_sd_open_block(e->devs, e->ndevs, e->d.uuid, &sd, err) != 0)
            return -1;
    } else {
        struct sconn *c;

        pthread_mutex_lock(&s->lock);
        c = find_conn(s, e->d.conn_id);
        pthread_mutex_unlock(&s->lock);
        if (c == NULL || c->fs == NULL)
            return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s: its connection %s "
                                  "is gone", e->d.uuid, e->d.conn_id);
        if (keel_sd_open_file(c->fs, e->d.uuid, &sd, err) != 0)
            return -1;
    }
    keel_sd_close(e->d.sd);
    e->d.sd = sd;
    return 0;
}

int keel_hsm_dom_get(struct keel_hsm *h, const char *sd_uuid, struct keel_hsm_dom **ret,
                     struct keel_error *err)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    struct dom_entry *e;

    if (!keel_uuid_valid(sd_uuid))
        return keel_error_set(err, KEEL_E_INVAL, 0, "\"%s\" is not a domain UUID", sd_uuid);
    pthread_mutex_lock(&s->scan_lock);
    /* Found and referenced in one critical section: forget frees only at refs 0. */
    pthread_mutex_lock(&s->lock);
    e = find_dom(s, sd_uuid);
    if (e != NULL)
        e->d.refs++;
    pthread_mutex_unlock(&s->lock);
    if (e == NULL) {
        if (scan_for(s, sd_uuid, &e, err) != 0) {
            pthread_mutex_unlock(&s->scan_lock);
            return -1;
        }
        e->d.refs = 1;
        pthread_mutex_lock(&s->lock);
        e->next = s->doms;
        s->doms = e;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&s->scan_lock);
    pthread_mutex_lock(&e->d.lock);
    if (refresh(s, e, err) != 0) {
        keel_hsm_dom_put(h, &e->d);
        return -1;
    }
    *ret = &e->d;
    return 0;
}

void keel_hsm_dom_put(struct keel_hsm *h, struct keel_hsm_dom *d)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);

    pthread_mutex_unlock(&d->lock);
    pthread_mutex_lock(&s->lock);
    d->refs--;
    pthread_mutex_unlock(&s->lock);
}

void keel_hsm_dom_forget(struct keel_hsm *h, struct keel_hsm_dom *d)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    struct dom_entry *e = (struct dom_entry *)d, **pp;

    /* Others waiting for its lock still hold refs: let them through first. */
    keel_sd_close(d->sd);
    d->sd = NULL;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        if (d->refs == 1)
            break;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_unlock(&d->lock);
        usleep(1000);
        pthread_mutex_lock(&d->lock);
    }
    for (pp = &s->doms; *pp != NULL; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_destroy(&d->lock);
    free(e->devs);
    free(e);
}

/* ---- own connections ---- */

void keel_hsm_own_close(struct keel_hsm_own *o)
{
    keel_sd_close(o->sd);
    for (size_t i = 0; i < o->ndevs; i++)
        keel_blockdev_close(o->devs[i]);
    free(o->devs);
    keel_fs_close(o->fs);
    memset(o, 0, sizeof(*o));
}

/* The URL (with credentials) of the connection holding LUN dev (registry lock held). */
static int lun_url(struct keel_hsm_storage *s, const struct keel_blockdev *dev, char *url,
                   size_t cap, struct keel_error *err)
{
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        for (size_t i = 0; i < c->ndevs; i++)
            if (c->devs[i] == dev)
                return iscsi_url(c, c->dev_lun[i]->lun, url, cap, err);
    return keel_error_set(err, KEEL_E_NOENT, 0, "the connection of a LUN is gone");
}

int keel_hsm_own_open(struct keel_hsm *h, const char *sd_uuid, unsigned timeout_ms,
                      struct keel_hsm_own *o, struct keel_error *err)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    struct keel_io_opts io_opts = *keel_hsm_io_opts(h), *io = &io_opts;
    struct keel_hsm_dom *d;
    struct dom_entry *e;
    char (*urls)[KEEL_URL_MAX] = NULL;
    size_t nurls = 0, cap;
    bool block;
    int rc = 0;

    memset(o, 0, sizeof(*o));
    if (timeout_ms != 0)
        io_opts.timeout_ms = timeout_ms;
    /*
     * The URLs are taken with the domain held, the logins and mounts made
     * after it is given back: they may take seconds, and the monitor and
     * other verbs wait for a held domain.
     */
    if (keel_hsm_dom_get(h, sd_uuid, &d, err) != 0)
        return -1;
    e = (struct dom_entry *)d;
    block = keel_sd_is_block(d->sd);
    cap = block ? e->ndevs + 1 : 1;
    if ((urls = calloc(cap, sizeof(*urls))) == NULL)
        rc = keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    pthread_mutex_lock(&s->lock);
    if (rc == 0 && !block) {
        struct sconn *c = find_conn(s, d->conn_id);

        if (c == NULL)
            rc = keel_error_set(err, KEEL_E_NOENT, 0, "connection %s: gone", d->conn_id);
        else
            keel_strlcpy(urls[nurls++], c->url, sizeof(urls[0]));
    }
    for (size_t i = 0; rc == 0 && block && i < e->ndevs; i++)
        if ((rc = lun_url(s, e->devs[i], urls[nurls], sizeof(urls[0]), err)) == 0)
            nurls++;
    pthread_mutex_unlock(&s->lock);
    keel_hsm_dom_put(h, d);
    if (rc == 0 && !block) {
        if ((rc = keel_fs_open(urls[0], io, &o->fs, err)) == 0)
            rc = keel_sd_open_file(o->fs, sd_uuid, &o->sd, err);
    } else if (rc == 0) {
        if ((o->devs = calloc(nurls + 1, sizeof(*o->devs))) == NULL)
            rc = keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        for (size_t i = 0; rc == 0 && i < nurls; i++)
            if ((rc = keel_blockdev_open(urls[i], io, &o->devs[i], err)) == 0)
                o->ndevs++;
        if (rc == 0)
            rc = keel_sd_open_block(o->devs, o->ndevs, sd_uuid, &o->sd, err);
    }
    if (urls != NULL)
        explicit_bzero(urls, cap * sizeof(*urls)); /* CHAP secrets */
    free(urls);
    if (rc != 0) {
        keel_hsm_own_close(o);
        return keel_error_prefix(err, "storage domain %s: own connection", sd_uuid);
    }
    return 0;
}

void keel_hsm_own_fence(struct keel_hsm_own *o, struct keel_fence *f)
{
    for (size_t i = 0; i < o->ndevs; i++)
        keel_blockdev_set_fence(o->devs[i], f);
    if (o->fs != NULL)
        keel_fs_set_fence(o->fs, f);
}

int keel_hsm_dom_may_change(struct keel_hsm_dom *d, struct keel_error *err)
{
    const struct keel_sd_info *i = keel_sd_info(d->sd);

    if (i->pool_uuids != NULL && i->pool_uuids[0] != '\0')
        return keel_error_set(err, KEEL_E_PERM, 0, "storage domain %s: belongs to pool %s: "
                              "only its SPM may change it", d->uuid, i->pool_uuids);
    return 0;
}

json_t *keel_hsm_dom_info_json(struct keel_hsm_dom *d, struct keel_error *err)
{
    const struct keel_sd_info *i = keel_sd_info(d->sd);
    struct keel_sd_space sp;
    json_t *o, *luns = json_array();

    if (keel_sd_space(d->sd, &sp, err) != 0) {
        json_decref(luns);
        return NULL;
    }
    if (keel_sd_is_block(d->sd)) {
        const struct keel_lvm_vg *vg = keel_lvm_store_vg(keel_sd_vg(d->sd));
        const struct keel_sd_md *md = keel_sd_md(d->sd);

        /* The PV map keys (PV0 ... PVn) carry the LUN ids, as oVirt writes them. */
        for (size_t k = 0; k < vg->npvs; k++) {
            char key[16], guid[256];
            const char *v;

            snprintf(key, sizeof(key), "PV%zu", k);
            v = keel_sd_md_get(md, key);
            if (v == NULL)
                continue;
            /* "pv:<guid>,uuid:...": the guid */
            if (sscanf(v, "pv:%255[^,]", guid) == 1)
                json_array_append_new(luns, json_string(guid));
        }
    }
    /* What the domain says of itself is text from storage: repaired, not refused. */
    o = json_pack("{s:s, s:o, s:s, s:s, s:i, s:s, s:o, s:i, s:I, s:I, s:I, s:b, s:s, s:o}",
                  "uuid", i->uuid, "name", keel_rpc_string(i->description ? i->description : ""),
                  "type", keel_sd_type_name(i->type), "class", keel_sd_class_name(i->klass),
                  "version", (int)i->version, "role", i->master ? "Master" : "Regular",
                  "pool", keel_rpc_string(i->pool_uuids ? i->pool_uuids : ""), "block_size",
                  (int)i->block_size,
                  "alignment", (json_int_t)i->alignment, "capacity", (json_int_t)sp.capacity,
                  "free", (json_int_t)sp.free, "block", keel_sd_is_block(d->sd),
                  "connection", d->conn_id, "luns", luns);
    if (o != NULL)
        json_object_set_new(o, "remote_path",
                            keel_rpc_string(i->remote_path ? i->remote_path : ""));
    if (o == NULL)
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    return o;
}

/* ---- the monitor ---- */

static void check_dom(struct keel_hsm_storage *s, const char *uuid)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_hsm_dom *d;
    struct keel_sd_space sp = { 0 };
    uint64_t t0, t1;
    int rc;
    bool was_valid, valid;
    struct dom_entry *e;

    t0 = keel_now_ns();
    rc = keel_hsm_dom_get(s->h, uuid, &d, &err);
    if (rc == 0) {
        rc = keel_sd_space(d->sd, &sp, &err);
        keel_hsm_dom_put(s->h, d);
    }
    t1 = keel_now_ns();
    pthread_mutex_lock(&s->lock);
    e = find_dom(s, uuid);
    if (e == NULL) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    was_valid = e->d.valid;
    valid = rc == 0;
    e->d.valid = valid;
    keel_strlcpy(e->d.error, valid ? "" : err.msg, sizeof(e->d.error));
    if (valid) {
        e->d.capacity = sp.capacity;
        e->d.free_bytes = sp.free;
    }
    e->d.delay_ms = (t1 - t0) / 1000000;
    e->d.checked_ns = t1;
    pthread_mutex_unlock(&s->lock);
    if (was_valid != valid) {
        keel_log(valid ? KEEL_LOG_INFO : KEEL_LOG_WARN, MOD, "storage domain %s: %s%s%s", uuid,
                 valid ? "valid again" : "invalid", valid ? "" : ": ", valid ? "" : err.msg);
        keel_hsm_emit(s->h, "Domain.state",
                      json_pack("{s:s, s:b, s:o}", "sd", uuid, "valid", valid, "error",
                                keel_rpc_string(valid ? "" : err.msg)));
    }
}

static void *monitor_main(void *opaque)
{
    struct keel_hsm_storage *s = opaque;
    unsigned interval = keel_hsm_cfg(s->h)->monitor_interval_ms;

    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec ts;
        char (*uuids)[KEEL_UUID_LEN + 1] = NULL;
        size_t n = 0;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += interval / 1000;
        ts.tv_nsec += (long)(interval % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stopping)
            break;
        for (struct dom_entry *e = s->doms; e != NULL; e = e->next)
            n++;
        uuids = calloc(n + 1, sizeof(*uuids));
        n = 0;
        for (struct dom_entry *e = s->doms; uuids != NULL && e != NULL; e = e->next)
            keel_strlcpy(uuids[n++], e->d.uuid, sizeof(uuids[0]));
        pthread_mutex_unlock(&s->lock);
        for (size_t i = 0; i < n; i++)
            check_dom(s, uuids[i]);
        free(uuids);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

json_t *keel_hsm_storage_stats(struct keel_hsm *h)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    json_t *a = json_array();
    uint64_t now = keel_now_ns();

    pthread_mutex_lock(&s->lock);
    for (struct dom_entry *e = s->doms; a != NULL && e != NULL; e = e->next)
        json_array_append_new(a, json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:I}", "sd",
                                           e->d.uuid, "valid", e->d.valid, "error",
                                           keel_rpc_string(e->d.error),
                                           "capacity", (json_int_t)e->d.capacity, "free",
                                           (json_int_t)e->d.free_bytes, "delay_ms",
                                           (json_int_t)e->d.delay_ms, "checked_age_ms",
                                           (json_int_t)(e->d.checked_ns
                                                            ? (now - e->d.checked_ns) / 1000000
                                                            : 0)));
    pthread_mutex_unlock(&s->lock);
    return a;
}

/* ---- life ---- */

int keel_hsm_storage_new(struct keel_hsm *h, struct keel_hsm_storage **ret,
                         struct keel_error *err)
{
    struct keel_hsm_storage *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;

    if (s == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    s->h = h;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->scan_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    *ret = s;
    restore_conns(s);
    if (pthread_create(&s->monitor, NULL, monitor_main, s) != 0) {
        *ret = NULL;
        keel_hsm_storage_free(s);
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "cannot start the domain monitor");
    }
    s->monitor_started = true;
    return 0;
}

void keel_hsm_storage_free(struct keel_hsm_storage *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->monitor_started)
        pthread_join(s->monitor, NULL);
    while (s->doms != NULL) {
        struct dom_entry *e = s->doms;

        s->doms = e->next;
        keel_sd_close(e->d.sd);
        pthread_mutex_destroy(&e->d.lock);
        free(e->devs);
        free(e);
    }
    while (s->conns != NULL) {
        struct sconn *c = s->conns;

        s->conns = c->next;
        sconn_free(c);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->scan_lock);
    free(s);
}

/* ---- for the verbs (storage.h) ---- */

json_t *keel_hsm_storage_connect(struct keel_hsm *h, json_t *conns)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    json_t *out = json_array();
    size_t i;
    json_t *v;

    json_array_foreach(conns, i, v) {
        struct keel_error err = KEEL_ERROR_INIT;
        const char *id = json_string_value(json_object_get(v, "id"));
        int rc;

        pthread_mutex_lock(&s->scan_lock);
        rc = connect_one(s, id, json_string_value(json_object_get(v, "type")),
                         json_string_value(json_object_get(v, "url")),
                         json_string_value(json_object_get(v, "user")),
                         json_string_value(json_object_get(v, "password")), true, &err);
        pthread_mutex_unlock(&s->scan_lock);
        if (rc != 0)
            keel_log(KEEL_LOG_WARN, MOD, "%s", err.msg);
        json_array_append_new(out, json_pack("{s:s, s:i, s:s}", "id", id, "status",
                                             rc ? (int)err.code : 0, "message",
                                             rc ? err.msg : "connected"));
    }
    return out;
}

json_t *keel_hsm_storage_disconnect(struct keel_hsm *h, const char *const *ids, size_t n)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    json_t *out = json_array();

    for (size_t i = 0; i < n; i++) {
        struct keel_error err = KEEL_ERROR_INIT;
        int rc;

        pthread_mutex_lock(&s->scan_lock);
        rc = disconnect_one(s, ids[i], &err);
        pthread_mutex_unlock(&s->scan_lock);
        json_array_append_new(out, json_pack("{s:s, s:i, s:s}", "id", ids[i], "status",
                                             rc ? (int)err.code : 0, "message",
                                             rc ? err.msg : "disconnected"));
    }
    return out;
}

json_t *keel_hsm_storage_list(struct keel_hsm *h)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    json_t *out = json_array();

    pthread_mutex_lock(&s->lock);
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}", "id", c->id, "type",
                                             c->type, "url", c->shown, "luns",
                                             (json_int_t)c->ndevs));
    pthread_mutex_unlock(&s->lock);
    return out;
}

json_t *keel_hsm_storage_devices(struct keel_hsm *h, const char *only)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *out = json_array();
    struct lunlist l;
    bool *in = NULL;
    char (*vg)[256] = NULL;

    pthread_mutex_lock(&s->scan_lock);
    if (all_luns(s, &l, &err) != 0)
        goto out;
    in = calloc(l.n + 1, sizeof(*in));
    vg = calloc(l.n + 1, sizeof(*vg));
    if (in == NULL || vg == NULL)
        goto out_list;
    /*
     * Each LUN read alone names the VG its metadata holds; then each such
     * VG read from all of them names its PVs without metadata too.
     */
    for (size_t i = 0; i < l.n; i++) {
        struct keel_lvm_store *st = NULL;

        if (vg[i][0] != '\0' || keel_lvm_store_open(&l.dev[i], 1, NULL, "keeld", &st, &err) != 0)
            continue;
        keel_strlcpy(vg[i], keel_lvm_store_vg(st)->name, sizeof(vg[i]));
        keel_lvm_store_close(st);
        memset(in, 0, (l.n + 1) * sizeof(*in));
        vg_members(&l, vg[i], in);
        for (size_t k = 0; k < l.n; k++)
            if (in[k])
                keel_strlcpy(vg[k], vg[i], sizeof(vg[k]));
    }
    for (size_t i = 0; i < l.n; i++) {
        const struct sconn *c = l.conn[i];
        const struct keel_iscsi_lun *lun = NULL;

        if (only != NULL && strcmp(only, c->id) != 0)
            continue;
        for (size_t k = 0; k < c->ndevs; k++)
            if (c->devs[k] == l.dev[i])
                lun = c->dev_lun[k];
        json_array_append_new(out, json_pack(
            "{s:s, s:s, s:i, s:I, s:i, s:s, s:s, s:s, s:s, s:s}", "connection", c->id,
            "url", lun->url, "lun", lun->lun, "size", (json_int_t)lun->size, "block_size",
            (int)lun->block_size, "vendor", lun->vendor, "product", lun->product, "serial",
            lun->serial, "devid", lun->devid, "vg", vg[i]));
    }
out_list:
    free(in);
    free(vg);
    lunlist_release(&l);
out:
    pthread_mutex_unlock(&s->scan_lock);
    return out;
}

int keel_hsm_storage_fs(struct keel_hsm *h, const char *conn_id, struct keel_fs **ret,
                        char *remote_path, size_t remote_cap, struct keel_hsm_pin **pin,
                        struct keel_error *err)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    struct sconn *c;

    pthread_mutex_lock(&s->lock);
    c = find_conn(s, conn_id);
    if (c != NULL && c->fs != NULL) {
        struct keel_url u;

        *ret = c->fs;
        c->pins++;
        *pin = (struct keel_hsm_pin *)c;
        /* c->url parsed when it was connected */
        if (keel_url_parse(c->url, &u, NULL) == 0)
            keel_url_remote_path(&u, remote_path, remote_cap);
    }
    pthread_mutex_unlock(&s->lock);
    if (c == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "connection %s: not connected", conn_id);
    if (c->fs == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "connection %s: not a file system (nfs, "
                              "posix)", conn_id);
    return 0;
}

void keel_hsm_storage_unpin(struct keel_hsm *h, struct keel_hsm_pin *pin)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);

    if (pin == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    ((struct sconn *)pin)->pins--;
    pthread_mutex_unlock(&s->lock);
}

int keel_hsm_storage_lun(struct keel_hsm *h, const char *lun, struct keel_blockdev **ret,
                         char *devid, size_t devid_cap, struct keel_hsm_pin **pin,
                         struct keel_error *err)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);

    pthread_mutex_lock(&s->lock);
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        for (size_t i = 0; i < c->ndevs; i++) {
            const struct keel_iscsi_lun *l = c->dev_lun[i];

            if (strcmp(lun_id(l), lun) == 0 || strcmp(l->url, lun) == 0) {
                *ret = c->devs[i];
                c->pins++;
                *pin = (struct keel_hsm_pin *)c;
                keel_strlcpy(devid, lun_id(l), devid_cap);
                pthread_mutex_unlock(&s->lock);
                return 0;
            }
        }
    pthread_mutex_unlock(&s->lock);
    return keel_error_set(err, KEEL_E_NOENT, 0, "LUN %s: not on any connected iSCSI target",
                          lun);
}

/* A StorageDomain.list entry for sd, found on connection conn_id (a new reference). */
static json_t *domain_entry(const struct keel_sd *sd, const char *conn_id)
{
    const struct keel_sd_info *in = keel_sd_info(sd);

    return json_pack("{s:s, s:o, s:s, s:b, s:s}", "uuid", in->uuid, "name",
                     keel_rpc_string(in->description ? in->description : ""), "type",
                     keel_sd_type_name(in->type), "block", keel_sd_is_block(sd), "connection",
                     conn_id);
}

static bool listed(json_t *out, const char *uuid)
{
    size_t k;
    json_t *v;

    json_array_foreach(out, k, v)
        if (strcmp(json_string_value(json_object_get(v, "uuid")), uuid) == 0)
            return true;
    return false;
}

json_t *keel_hsm_storage_domains(struct keel_hsm *h)
{
    struct keel_hsm_storage *s = keel_hsm_storage(h);
    json_t *out = json_array();

    pthread_mutex_lock(&s->scan_lock);
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_sd *sd = NULL;

        if (c->fs != NULL) {
            char **uuids = NULL;
            size_t n = 0;

            if (keel_sd_list_file(c->fs, &uuids, &n, &err) != 0) {
                keel_log(KEEL_LOG_WARN, MOD, "connection %s: %s", c->id, err.msg);
                continue;
            }
            for (size_t i = 0; i < n; i++) {
                if (keel_sd_open_file(c->fs, uuids[i], &sd, &err) == 0) {
                    json_array_append_new(out, domain_entry(sd, c->id));
                    keel_sd_close(sd);
                }
                free(uuids[i]);
            }
            free(uuids);
            continue;
        }
        /*
         * The LUN that holds a VG's metadata is enough to read the domain
         * (sd.h); a domain on several LUNs is listed once.
         */
        for (size_t i = 0; i < c->ndevs; i++) {
            if (keel_sd_open_block(&c->devs[i], 1, NULL, &sd, &err) != 0)
                continue;
            if (!listed(out, keel_sd_info(sd)->uuid))
                json_array_append_new(out, domain_entry(sd, c->id));
            keel_sd_close(sd);
        }
    }
    pthread_mutex_unlock(&s->scan_lock);
    return out;
}

/*
 * nfs:// file systems through libnfs (NFSv3 over TCP).
 *
 * One libnfs context (one TCP connection, one mount) per file system,
 * driven by the engine's I/O thread (engine.h).  libnfs's own reconnect is
 * off: when the connection breaks the engine drops the context, mounts the
 * export again on a new one and retries the requests that had no answer.
 *
 * File handles belong to a context, so every open file remembers its path
 * and open flags and the session it was opened on.  The first request for
 * a file after a reconnect opens it again by path (the "reopen"), and the
 * file's requests wait for that open.  A file that was renamed or removed
 * meanwhile fails its requests with the error of that open.
 *
 * Retried namespace calls may find their work done by the lost attempt; the
 * reply is then the one a single call would have had (see fs.h):
 *   mkdir: EEXIST -> done;  unlink, rmdir, rename: ENOENT -> done;
 *   create with KEEL_O_EXCL: EEXIST -> open the file the lost attempt made.
 *
 * libnfs reports a broken connection to callbacks as -EFAULT (RPC error)
 * or -EINTR (cancelled); both send the request back to wait for the next
 * session.  Every other negative status is the server's answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nfsc/libnfs.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "io/engine.h"
#include "io/fs-priv.h"

#define MOD "io.nfs"
#define ZERO_MAX (64u * 1024 * 1024)

struct nfsfile {
    struct nfsfile *next, *prev;  /* registry of the file system */
    struct nfsbe *nb;
    char path[KEEL_URL_PATH_MAX + 1]; /* "/" + relative path, as libnfs wants */
    int oflags;                   /* flags for a reopen: no O_CREAT/O_EXCL/O_TRUNC */
    struct nfsfh *fh;             /* handle on session `gen`, or NULL */
    uint64_t gen;
    bool reopening;
    struct keel_ioreq *wait_head, *wait_tail; /* waiting for the reopen (priv.cnext) */
    bool orphan;                  /* closed by the user while the server was away */
};

struct nfsbe {
    struct keel_url url;
    char name[KEEL_URL_MAX];
    char mount_url[KEEL_URL_MAX];
    struct keel_engine *eng;
    struct nfs_context *ctx;      /* current session, or NULL */
    bool mounted;
    bool dropping;
    uint64_t gen;                 /* sessions mounted so far */
    pthread_mutex_t files_lock;   /* registry; files are used on the I/O thread */
    struct nfsfile *files;
};

/* What a started request remembers, in priv.be_scratch. */
struct nfs_scratch {
    struct nfsbe *nb;
    struct nfsfile *nf;   /* file requests and OPEN/CLOSE/FSTAT */
    void *zeroes;         /* WRITE_ZEROES buffer */
};
_Static_assert(sizeof(struct nfs_scratch) <= sizeof(((struct keel_ioreq_priv *)0)->be_scratch),
               "be_scratch too small");

static struct nfs_scratch *scr(struct keel_ioreq *req)
{
    return (struct nfs_scratch *)(void *)req->priv.be_scratch;
}

static struct keel_fs_call *call_of(struct keel_ioreq *req)
{
    return (struct keel_fs_call *)req->priv.fsarg;
}

static void start_file_op(struct nfsbe *nb, struct nfsfile *nf, struct keel_ioreq *req);

static const char *nfs_errstr(struct nfsbe *nb)
{
    const char *s = nb->ctx ? nfs_get_error(nb->ctx) : NULL;

    return s && *s ? s : "no reason given";
}

static bool connection_status(int status)
{
    return status == -EFAULT || status == -EINTR;
}

/* A request failed with the server's answer -status. */
static void fail_req(struct nfsbe *nb, struct keel_ioreq *req, int status)
{
    struct keel_error e;
    int en = -status;

    keel_error_set(&e, keel_errc_from_errno(en), en, "%s", strerror(en));
    keel_engine_complete(nb->eng, req, KEEL_OUT_ERROR, &e);
}

/* The session broke under req. */
static void lost_req(struct nfsbe *nb, struct keel_ioreq *req)
{
    struct keel_error e;

    keel_error_set(&e, KEEL_E_CONNECT, ECONNRESET, "connection lost: %s", nfs_errstr(nb));
    keel_engine_complete(nb->eng, req, KEEL_OUT_RETRY_SESSION, &e);
    if (!nb->dropping)
        keel_engine_session_failed(nb->eng, &e);
}

/* ---- the session ---- */

static void mount_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct nfsbe *nb = priv;
    struct keel_error e;

    (void)nfs;
    if (status != 0) {
        keel_error_set(&e, status == -EACCES || status == -ENOENT ? KEEL_E_NOENT : KEEL_E_CONNECT,
                       -status, "mount of %s on %s: %s", nb->url.path, nb->url.host,
                       data ? (const char *)data : nfs_errstr(nb));
        keel_engine_session_failed(nb->eng, &e);
        return;
    }
    nb->mounted = true;
    nb->gen++;
    keel_engine_session_up(nb->eng);
}

static int nb_connect(void *be, struct keel_error *err)
{
    struct nfsbe *nb = be;
    struct nfs_url *u;

    nb->ctx = nfs_init_context();
    if (nb->ctx == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "cannot create an NFS context");
    nfs_set_autoreconnect(nb->ctx, 0);
    nfs_set_dircache(nb->ctx, 0); /* other hosts change the directories */
    if (keel_debug_enabled(MOD))
        nfs_set_debug(nb->ctx, 2);
    /* Parsing the URL also applies nfsport= and mountport= to the context. */
    u = nfs_parse_url_dir(nb->ctx, nb->mount_url);
    if (u == NULL)
        return keel_error_set(err, KEEL_E_URL, EINVAL, "libnfs refused the URL: %s",
                              nfs_errstr(nb));
    if (nfs_mount_async(nb->ctx, u->server, u->path, mount_cb, nb) != 0) {
        nfs_destroy_url(u);
        return keel_error_set(err, KEEL_E_CONNECT, 0, "mount: %s", nfs_errstr(nb));
    }
    nfs_destroy_url(u);
    return 0;
}

static int nb_poll_fd(void *be)
{
    struct nfsbe *nb = be;

    return nb->ctx ? nfs_get_fd(nb->ctx) : -1;
}

static short nb_poll_events(void *be)
{
    struct nfsbe *nb = be;

    return nb->ctx ? (short)nfs_which_events(nb->ctx) : 0;
}

static int nb_service(void *be, short revents, struct keel_error *err)
{
    struct nfsbe *nb = be;

    if (nb->ctx == NULL)
        return 0;
    if (nfs_service(nb->ctx, revents) < 0) {
        keel_error_set(err, KEEL_E_CONNECT, ECONNRESET, "connection to %s: %s", nb->url.host,
                       nfs_errstr(nb));
        return -1;
    }
    return 0;
}

static void close_noop_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    (void)status, (void)nfs, (void)data, (void)priv;
}

static void nb_drop(void *be)
{
    struct nfsbe *nb = be;
    struct nfsfile *nf, *next;

    if (nb->ctx == NULL)
        return;
    nb->dropping = true;
    pthread_mutex_lock(&nb->files_lock);
    for (nf = nb->files; nf != NULL; nf = next) {
        next = nf->next;
        /* Waiting requests are inflight for the engine; it takes them back. */
        nf->wait_head = nf->wait_tail = NULL;
        nf->reopening = false;
        if (nf->fh != NULL)
            nfs_close_async(nb->ctx, nf->fh, close_noop_cb, NULL);
        nf->fh = NULL;
        nf->gen = 0;
        if (nf->orphan) {
            if (nf->prev)
                nf->prev->next = nf->next;
            else
                nb->files = nf->next;
            if (nf->next)
                nf->next->prev = nf->prev;
            free(nf);
        }
    }
    pthread_mutex_unlock(&nb->files_lock);
    nfs_destroy_context(nb->ctx); /* cancels what is left: callbacks see -EINTR */
    nb->ctx = NULL;
    nb->mounted = false;
    nb->dropping = false;
}

/* ---- completions ---- */

/* Common start of every callback: a lost connection sends req back. */
static bool cb_lost(struct keel_ioreq *req, int status)
{
    if (!connection_status(status))
        return false;
    lost_req(scr(req)->nb, req);
    return true;
}

static void simple_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct nfsbe *nb = scr(req)->nb;
    bool retried = req->priv.attempts > 1;

    (void)nfs, (void)data;
    if (cb_lost(req, status))
        return;
    if (status < 0 && retried && req->op == KEEL_IO_FS_OP) {
        enum keel_fs_opcode op = call_of(req)->op;

        /* The lost attempt may have done it (see the top of this file). */
        if (((op == KEEL_FSOP_MKDIR || op == KEEL_FSOP_LINK) && status == -EEXIST) ||
            ((op == KEEL_FSOP_UNLINK || op == KEEL_FSOP_RMDIR || op == KEEL_FSOP_RENAME) &&
             status == -ENOENT))
            status = 0;
    }
    if (status < 0) {
        fail_req(nb, req, status);
        return;
    }
    keel_engine_complete(nb->eng, req, KEEL_OUT_OK, NULL);
}

static void fill_stat(struct keel_stat *ks, const struct nfs_stat_64 *st)
{
    memset(ks, 0, sizeof(*ks));
    ks->size = st->nfs_size;
    ks->allocated = st->nfs_used;
    ks->mode = (uint32_t)(st->nfs_mode & 07777);
    ks->is_dir = S_ISDIR(st->nfs_mode);
    ks->is_reg = S_ISREG(st->nfs_mode);
    ks->ino = st->nfs_ino;
    ks->mtime_ns = st->nfs_mtime * 1000000000u + st->nfs_mtime_nsec;
}

static void stat_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;

    (void)nfs;
    if (cb_lost(req, status))
        return;
    if (status < 0) {
        fail_req(scr(req)->nb, req, status);
        return;
    }
    fill_stat(&call_of(req)->st, data);
    keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_OK, NULL);
}

static void statvfs_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    const struct nfs_statvfs_64 *sv = data;
    struct keel_statvfs *v = &call_of(req)->vfs;

    (void)nfs;
    if (cb_lost(req, status))
        return;
    if (status < 0) {
        fail_req(scr(req)->nb, req, status);
        return;
    }
    v->block_size = sv->f_frsize ? sv->f_frsize : sv->f_bsize;
    v->total = sv->f_blocks * v->block_size;
    v->free = sv->f_bfree * v->block_size;
    v->avail = sv->f_bavail * v->block_size;
    keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_OK, NULL);
}

static void readdir_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct keel_fs_call *c = call_of(req);
    struct nfsdir *dir = data;
    struct nfsdirent *de;

    if (cb_lost(req, status))
        return;
    if (status < 0) {
        fail_req(scr(req)->nb, req, status);
        return;
    }
    /* A retried call must not repeat names of an earlier attempt. */
    keel_dirlist_release(&c->list);
    while ((de = nfs_readdir(nfs, dir)) != NULL) {
        if (keel_dirlist_add(&c->list, de->name) != 0) {
            nfs_closedir(nfs, dir);
            fail_req(scr(req)->nb, req, -ENOMEM);
            return;
        }
    }
    nfs_closedir(nfs, dir);
    keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_OK, NULL);
}

static int libnfs_flags(unsigned kf)
{
    int fl = (kf & KEEL_O_RDWR) ? O_RDWR : O_RDONLY;

    if (kf & KEEL_O_SYNC)
        fl |= O_SYNC;
    return fl;
}

static void open_cb(int status, struct nfs_context *nfs, void *data, void *priv);

static int issue_open(struct nfsbe *nb, struct keel_ioreq *req, bool creating)
{
    struct keel_fs_call *c = call_of(req);
    struct nfsfile *nf = scr(req)->nf;
    int fl = libnfs_flags(c->flags);

    if (!creating)
        return nfs_open_async(nb->ctx, nf->path, fl, open_cb, req);
    if (c->flags & KEEL_O_EXCL)
        fl |= O_EXCL;
    if (c->flags & KEEL_O_TRUNC)
        fl |= O_TRUNC;
    return nfs_create_async(nb->ctx, nf->path, fl, (int)(c->mode ? c->mode : 0644), open_cb, req);
}

static void open_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct keel_fs_call *c = call_of(req);
    struct nfsbe *nb = scr(req)->nb;
    struct nfsfile *nf = scr(req)->nf;

    (void)nfs;
    if (cb_lost(req, status))
        return;
    if (status == -EEXIST && req->priv.attempts > 1 && (c->flags & KEEL_O_EXCL) &&
        !(c->flags & KEEL_O_TRUNC)) {
        /* Our lost attempt created it: open what it made. */
        if (issue_open(nb, req, false) != 0)
            lost_req(nb, req);
        return;
    }
    if (status == 0 && (c->flags & KEEL_O_TRUNC) && !(c->flags & KEEL_O_CREAT)) {
        /* libnfs honours O_TRUNC only on create; truncate explicitly. */
        c->flags &= ~(unsigned)KEEL_O_TRUNC;
        nf->fh = data;
        nf->gen = nb->gen;
        if (nfs_ftruncate_async(nb->ctx, nf->fh, 0, open_cb, req) != 0)
            lost_req(nb, req);
        return;
    }
    if (status < 0) {
        if (nf->fh != NULL)
            nfs_close_async(nb->ctx, nf->fh, close_noop_cb, NULL);
        free(nf);
        scr(req)->nf = NULL;
        fail_req(nb, req, status);
        return;
    }
    if (nf->fh == NULL || nf->gen != nb->gen) {
        nf->fh = data;
        nf->gen = nb->gen;
    }
    pthread_mutex_lock(&nb->files_lock);
    nf->next = nb->files;
    if (nb->files)
        nb->files->prev = nf;
    nb->files = nf;
    pthread_mutex_unlock(&nb->files_lock);
    c->file = nf;
    keel_engine_complete(nb->eng, req, KEEL_OUT_OK, NULL);
}

static void unregister(struct nfsbe *nb, struct nfsfile *nf)
{
    pthread_mutex_lock(&nb->files_lock);
    if (nf->prev)
        nf->prev->next = nf->next;
    else if (nb->files == nf)
        nb->files = nf->next;
    if (nf->next)
        nf->next->prev = nf->prev;
    nf->next = nf->prev = NULL;
    pthread_mutex_unlock(&nb->files_lock);
}

static void close_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct nfsbe *nb = scr(req)->nb;
    struct nfsfile *nf = scr(req)->nf;

    (void)nfs, (void)data;
    /* libnfs freed the handle whatever the status. */
    nf->fh = NULL;
    if (cb_lost(req, status))
        return; /* the retry finds no handle: the COMMIT is redone by fsync in close */
    unregister(nb, nf);
    free(nf);
    if (status < 0) {
        fail_req(nb, req, status);
        return;
    }
    keel_engine_complete(nb->eng, req, KEEL_OUT_OK, NULL);
}

static int start_call(struct nfsbe *nb, struct keel_ioreq *req)
{
    struct keel_fs_call *c = call_of(req);
    char p1[KEEL_URL_PATH_MAX + 1], p2[KEEL_URL_PATH_MAX + 1];

    if (c->path)
        snprintf(p1, sizeof(p1), "/%s", strcmp(c->path, ".") == 0 ? "" : c->path);
    if (c->path2)
        snprintf(p2, sizeof(p2), "/%s", c->path2);
    switch (c->op) {
    case KEEL_FSOP_STAT:
        return nfs_stat64_async(nb->ctx, p1, stat_cb, req);
    case KEEL_FSOP_MKDIR:
        return nfs_mkdir2_async(nb->ctx, p1, (int)(c->mode ? c->mode : 0755), simple_cb, req);
    case KEEL_FSOP_RMDIR:
        return nfs_rmdir_async(nb->ctx, p1, simple_cb, req);
    case KEEL_FSOP_UNLINK:
        return nfs_unlink_async(nb->ctx, p1, simple_cb, req);
    case KEEL_FSOP_RENAME:
        return nfs_rename_async(nb->ctx, p1, p2, simple_cb, req);
    case KEEL_FSOP_LINK:
        return nfs_link_async(nb->ctx, p1, p2, simple_cb, req);
    case KEEL_FSOP_READDIR:
        return nfs_opendir_async(nb->ctx, p1, readdir_cb, req);
    case KEEL_FSOP_STATVFS:
        return nfs_statvfs64_async(nb->ctx, "/", statvfs_cb, req);
    case KEEL_FSOP_OPEN: {
        struct nfsfile *nf = scr(req)->nf;

        if (nf == NULL) {
            nf = calloc(1, sizeof(*nf));
            if (nf == NULL)
                return -1;
            nf->nb = nb;
            keel_strlcpy(nf->path, p1, sizeof(nf->path));
            nf->oflags = libnfs_flags(c->flags);
            scr(req)->nf = nf;
        }
        nf->fh = NULL;
        return issue_open(nb, req, (c->flags & KEEL_O_CREAT) != 0);
    }
    case KEEL_FSOP_CLOSE: {
        struct nfsfile *nf = c->file;

        scr(req)->nf = nf;
        if (nf->fh == NULL || nf->gen != nb->gen) {
            /* Nothing of this session to close; the old handle went with it. */
            nf->fh = NULL;
            unregister(nb, nf);
            free(nf);
            keel_engine_complete(nb->eng, req, KEEL_OUT_OK, NULL);
            return 0;
        }
        return nfs_close_async(nb->ctx, nf->fh, close_cb, req);
    }
    case KEEL_FSOP_FSTAT:
        scr(req)->nf = c->file;
        start_file_op(nb, c->file, req);
        return 0;
    }
    return -1;
}

/* ---- file data ---- */

static void read_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;

    (void)nfs;
    if (cb_lost(req, status))
        return;
    if (status < 0) {
        fail_req(scr(req)->nb, req, status);
        return;
    }
    if ((size_t)status > req->len)
        status = (int)req->len;
    memcpy(req->buf, data, (size_t)status);
    req->xfer = (size_t)status;
    keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_OK, NULL);
}

static void write_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct keel_error e;

    (void)nfs, (void)data;
    if (cb_lost(req, status))
        return;
    free(scr(req)->zeroes);
    scr(req)->zeroes = NULL;
    if (status < 0) {
        fail_req(scr(req)->nb, req, status);
        return;
    }
    if ((size_t)status != req->len) {
        keel_error_set(&e, KEEL_E_SHORT, EIO, "short write: %d of %zu bytes", status, req->len);
        keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_ERROR, &e);
        return;
    }
    req->xfer = req->len;
    keel_engine_complete(scr(req)->nb->eng, req, KEEL_OUT_OK, NULL);
}

static int issue_file_op(struct nfsbe *nb, struct nfsfile *nf, struct keel_ioreq *req)
{
    switch (req->op) {
    case KEEL_IO_READ:
        return nfs_pread_async(nb->ctx, nf->fh, req->offset, req->len, read_cb, req);
    case KEEL_IO_WRITE:
        return nfs_pwrite_async(nb->ctx, nf->fh, req->offset, req->len, req->buf, write_cb, req);
    case KEEL_IO_WRITE_ZEROES:
        if (scr(req)->zeroes == NULL)
            scr(req)->zeroes = calloc(1, req->len ? req->len : 1);
        if (scr(req)->zeroes == NULL)
            return -1;
        return nfs_pwrite_async(nb->ctx, nf->fh, req->offset, req->len, scr(req)->zeroes, write_cb,
                                req);
    case KEEL_IO_FLUSH:
        return nfs_fsync_async(nb->ctx, nf->fh, simple_cb, req);
    case KEEL_IO_TRUNCATE:
        return nfs_ftruncate_async(nb->ctx, nf->fh, req->offset, simple_cb, req);
    case KEEL_IO_FS_OP: /* FSTAT */
        return nfs_fstat64_async(nb->ctx, nf->fh, stat_cb, req);
    default:
        return -1;
    }
}

static void reopen_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
    struct nfsfile *nf = priv;
    struct nfsbe *nb = nf->nb;
    struct keel_ioreq *req, *next;

    (void)nfs;
    req = nf->wait_head;
    nf->wait_head = nf->wait_tail = NULL;
    nf->reopening = false;
    if (connection_status(status)) {
        /* drop() already emptied the list, or the session is breaking now. */
        for (; req != NULL; req = next) {
            next = req->priv.cnext;
            lost_req(nb, req);
        }
        return;
    }
    if (status < 0) {
        for (; req != NULL; req = next) {
            struct keel_error e;

            next = req->priv.cnext;
            keel_error_set(&e, keel_errc_from_errno(-status), -status,
                           "reopening '%s' after a reconnect: %s", nf->path + 1,
                           strerror(-status));
            keel_engine_complete(nb->eng, req, KEEL_OUT_ERROR, &e);
        }
        return;
    }
    nf->fh = data;
    nf->gen = nb->gen;
    keel_debug(MOD, "%s: reopened '%s' on session %" PRIu64, nb->name, nf->path + 1, nb->gen);
    for (; req != NULL; req = next) {
        next = req->priv.cnext;
        if (issue_file_op(nb, nf, req) != 0)
            lost_req(nb, req);
    }
}

/* Start a request of an open file, opening it again first after a reconnect. */
static void start_file_op(struct nfsbe *nb, struct nfsfile *nf, struct keel_ioreq *req)
{
    if (nf->fh != NULL && nf->gen == nb->gen) {
        if (issue_file_op(nb, nf, req) != 0)
            lost_req(nb, req);
        return;
    }
    req->priv.cnext = NULL;
    if (nf->wait_tail)
        nf->wait_tail->priv.cnext = req;
    else
        nf->wait_head = req;
    nf->wait_tail = req;
    if (nf->reopening)
        return;
    nf->reopening = true;
    nf->fh = NULL;
    if (nfs_open_async(nb->ctx, nf->path, nf->oflags, reopen_cb, nf) != 0)
        reopen_cb(-EFAULT, nb->ctx, NULL, nf);
}

static int nb_start(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct nfsbe *nb = be;

    if (nb->ctx == NULL || !nb->mounted) {
        keel_error_set(err, KEEL_E_CONNECT, 0, "not mounted");
        return KEEL_START_BROKEN;
    }
    scr(req)->nb = nb;
    if (req->op == KEEL_IO_FS_OP) {
        if (start_call(nb, req) != 0) {
            keel_error_set(err, KEEL_E_CONNECT, 0, "cannot queue the call: %s", nfs_errstr(nb));
            return KEEL_START_BROKEN;
        }
        return 0;
    }
    if (req->op == KEEL_IO_DISCARD) { /* NFSv3 cannot punch holes: advisory, done */
        keel_engine_complete(nb->eng, req, KEEL_OUT_OK, NULL);
        return 0;
    }
    if (req->op == KEEL_IO_WRITE_ZEROES && req->len > ZERO_MAX)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "larger than %u bytes", ZERO_MAX);
    scr(req)->nf = req->priv.owner;
    start_file_op(nb, req->priv.owner, req);
    return 0;
}

static void nb_describe(void *be, const struct keel_ioreq *req, char *buf, size_t n)
{
    const struct keel_fs_call *c = req->priv.fsarg;
    const struct nfsfile *nf;

    (void)be;
    if (req->op == KEEL_IO_FS_OP) {
        nf = c->file;
        if (c->op == KEEL_FSOP_RENAME || c->op == KEEL_FSOP_LINK)
            snprintf(buf, n, "%s '%s' to '%s'", keel_fs_call_name(c->op), c->path, c->path2);
        else if (c->path != NULL)
            snprintf(buf, n, "%s '%s'", keel_fs_call_name(c->op), c->path);
        else if (nf != NULL)
            snprintf(buf, n, "%s '%s'", keel_fs_call_name(c->op), nf->path + 1);
        else
            snprintf(buf, n, "%s", keel_fs_call_name(c->op));
        return;
    }
    nf = req->priv.owner;
    switch (req->op) {
    case KEEL_IO_FLUSH:
        snprintf(buf, n, "fsync '%s'", nf->path + 1);
        break;
    case KEEL_IO_TRUNCATE:
        snprintf(buf, n, "truncate '%s' to %" PRIu64, nf->path + 1, req->offset);
        break;
    default:
        snprintf(buf, n, "%s of %zu bytes at offset %" PRIu64 " of '%s'",
                 keel_io_op_name(req->op), req->len, req->offset, nf->path + 1);
    }
}

static const struct keel_engine_ops nb_engine_ops = {
    .connect = nb_connect,
    .poll_fd = nb_poll_fd,
    .poll_events = nb_poll_events,
    .service = nb_service,
    .start = nb_start,
    .drop = nb_drop,
    .describe = nb_describe,
};

/* ---- the file system ---- */

static int nb_call(void *be, struct keel_fs_call *c, struct keel_error *err)
{
    struct nfsbe *nb = be;
    struct keel_ioreq req = { .op = KEEL_IO_FS_OP };
    int rc;

    req.priv.fsarg = c;
    /* Namespace calls are ordered against everything (engine.c, conflicts()). */
    rc = keel_engine_call(nb->eng, &req, nb, err);
    if (rc != 0 && c->op == KEEL_FSOP_CLOSE) {
        /* The handle cannot be closed now; it is freed with its session. */
        struct nfsfile *nf = c->file;

        pthread_mutex_lock(&nb->files_lock);
        nf->orphan = true;
        pthread_mutex_unlock(&nb->files_lock);
    }
    return rc;
}

static int nb_submit(void *be, void *file, struct keel_ioreq *req, struct keel_error *err)
{
    struct nfsbe *nb = be;

    req->priv.fsarg = NULL;
    return keel_engine_submit(nb->eng, req, file, err);
}

static void nb_close(void *be)
{
    struct nfsbe *nb = be;
    struct nfsfile *nf, *next;

    if (nb == NULL)
        return;
    keel_engine_free(nb->eng); /* drops the session: handles are closed */
    for (nf = nb->files; nf != NULL; nf = next) {
        next = nf->next;
        free(nf);
    }
    pthread_mutex_destroy(&nb->files_lock);
    free(nb);
}

static void nb_set_fence(void *be, struct keel_fence *f)
{
    struct nfsbe *x = be;

    keel_engine_set_fence(x->eng, f);
}

static const struct keel_fs_ops nb_ops = {
    .call = nb_call,
    .submit = nb_submit,
    .close = nb_close,
    .set_fence = nb_set_fence,
};

int keel_nfs_fs_open(const struct keel_url *url, const struct keel_io_opts *opts,
                     struct keel_fs **ret, struct keel_error *err)
{
    struct nfsbe *nb;

    if (url->port != 0) {
        char red[KEEL_URL_MAX];

        return keel_error_set(err, KEEL_E_URL, EINVAL,
                              "%s: give NFS ports as ?nfsport=N&mountport=M, not host:port",
                              keel_url_format(url, true, red, sizeof(red)));
    }
    nb = calloc(1, sizeof(*nb));
    if (nb == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    nb->url = *url;
    pthread_mutex_init(&nb->files_lock, NULL);
    keel_url_format(url, true, nb->name, sizeof(nb->name));
    keel_url_format(url, false, nb->mount_url, sizeof(nb->mount_url));
    nb->eng = keel_engine_new(nb->name, &nb_engine_ops, nb, opts);
    if (nb->eng == NULL) {
        nb_close(nb);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", nb->name);
    }
    if (keel_engine_start(nb->eng, err) != 0) {
        nb_close(nb);
        return -1;
    }
    return keel_fs_new(nb->name, &nb_ops, nb, ret, err);
}

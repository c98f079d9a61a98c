/*
 * iscsi:// block devices through libiscsi.
 *
 * One session (libiscsi context) per device, driven by the engine's I/O
 * thread (engine.h): libiscsi's own reconnect is switched off, because the
 * engine rebuilds sessions itself and keeps the ordering and deadline
 * promises across them.  A session is built as
 *
 *   iscsi_full_connect_async (TCP connect, login, TEST UNIT READY until the
 *   unit attentions of a fresh login are consumed)
 *     -> READ CAPACITY(16)                   (first session only)
 *     -> INQUIRY VPD 0xB0 block limits       (first session only)
 *     -> INQUIRY VPD 0xB2 logical block provisioning
 *                                            (first session, thin LUNs only)
 *     -> keel_engine_session_up()
 *
 * Command status handling:
 *   GOOD                          done
 *   CHECK CONDITION, UNIT ATTENTION or NOT READY
 *                                 retried after a pause (a restarted
 *                                 target reports a reset first)
 *   BUSY, TASK SET FULL           retried after a pause
 *   CANCELLED (session lost), ERROR, TIMEOUT
 *                                 the session is broken: retried on the next
 *   other CHECK CONDITIONs, RESERVATION CONFLICT
 *                                 failed, with the sense data in the message
 *
 * Thin provisioning.  A LUN that reports LBPME (READ CAPACITY(16)) is thin;
 * if its deallocated blocks read as zeroes (LBPRZ) it is a "zeroing thin
 * LUN", and then:
 *   - WRITE ZEROES is WRITE SAME(16) of one zero block with the UNMAP bit,
 *     when the provisioning page offers it (LBPWS): the target may
 *     deallocate the range instead of writing it, and reads give zeroes
 *     either way (that is WRITE SAME's own promise).  At most the Block
 *     Limits page's MAXIMUM WRITE SAME LENGTH per command (none: 256 MiB).
 *   - BLOCK STATUS is GET LBA STATUS: a deallocated run reads as zeroes;
 *     a mapped or anchored run is data.  A target that refuses the command
 *     (ILLEGAL REQUEST) gets the answer "data" for the whole range.
 * Otherwise WRITE ZEROES is emulated by blockdev.c with WRITE commands (a
 * thick LUN writes every zero; WRITE SAME without UNMAP is no faster on
 * tgtd, which does one pwrite() per block), and BLOCK STATUS is not
 * offered.  DISCARD is UNMAP on a thin LUN and a no-op otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "io/blockdev-priv.h"
#include "io/engine.h"

#define MOD "io.iscsi"

/* Requests larger than this are split, whatever the target allows. */
#define ISCSI_MAX_XFER (4u * 1024 * 1024)

/* WRITE SAME ranges when the target sets no maximum. */
#define ISCSI_MAX_WRITE_SAME (256u * 1024 * 1024)

enum connect_phase { PH_LOGIN, PH_CAPACITY, PH_LIMITS, PH_PROVISIONING, PH_READY };

struct iscsibe {
    struct keel_url url;
    char portal[KEEL_URL_HOST_MAX + 8];
    char name[KEEL_URL_MAX];
    struct keel_engine *eng;
    struct iscsi_context *ctx;  /* the current session, or NULL */
    enum connect_phase phase;
    bool dropping;              /* inside drop(): cancellations are expected */
    bool first_done;            /* the first session read the geometry */
    uint32_t block_size;
    uint64_t nblocks;
    uint32_t max_xfer;
    bool lbpme;                 /* thin: UNMAP works */
    bool lbprz;                 /* deallocated blocks read as zeroes */
    bool lbpws;                 /* WRITE SAME(16) may deallocate (UNMAP bit) */
    uint64_t max_ws_blocks;     /* Block Limits' MAXIMUM WRITE SAME LENGTH; 0: none */
    unsigned char *zero_block;  /* one block of zeroes, WRITE SAME's data */
    unsigned capacity_tries;    /* READ CAPACITY retried after unit attentions */
};

/* Storage for the request's I/O vector or UNMAP list (priv.be_scratch). */
union iscsi_scratch {
    struct scsi_iovec iov;
    struct unmap_list unmap;
};
_Static_assert(sizeof(union iscsi_scratch) <= sizeof(((struct keel_ioreq_priv *)0)->be_scratch),
               "be_scratch too small for libiscsi's iovec");

static void log_fn(int level, const char *msg)
{
    keel_debug(MOD, "libiscsi[%d]: %s", level, msg);
}

static void set_session_error(struct iscsibe *ib, struct keel_error *e, enum keel_errc code,
                              const char *what)
{
    const char *msg = ib->ctx ? iscsi_get_error(ib->ctx) : "";
    size_t len = strlen(msg);

    /* libiscsi's messages often end with ".\n"; Keel's do not. */
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '.'))
        len--;
    if (strstr(msg, "uthentication") != NULL)
        code = KEEL_E_AUTH;
    keel_error_set(e, code, 0, "%s %s: %.*s", what, ib->portal, (int)len,
                   len ? msg : "no reason given");
}

/* ---- building a session ---- */

static void session_ready(struct iscsibe *ib)
{
    ib->phase = PH_READY;
    ib->first_done = true;
    keel_engine_session_up(ib->eng);
}

/* The zeroing thin LUN's powers (see the top of the file). */
static bool ws_zeroes(const struct iscsibe *ib)
{
    return ib->lbpme && ib->lbprz && ib->lbpws;
}

static void provisioning_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
    struct iscsibe *ib = priv;
    struct scsi_task *task = data;

    (void)ctx;
    if (status == SCSI_STATUS_CANCELLED) {
        scsi_free_scsi_task(task);
        return;
    }
    if (status == SCSI_STATUS_GOOD) {
        struct scsi_inquiry_logical_block_provisioning *lbp = scsi_datain_unmarshall(task);

        if (lbp != NULL) {
            ib->lbpws = lbp->lbpws != 0;
            ib->lbprz = ib->lbprz || lbp->lbprz != 0;
        }
    }
    /* Without the page: no WRITE SAME, GET LBA STATUS still by LBPRZ. */
    scsi_free_scsi_task(task);
    session_ready(ib);
}

static void limits_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
    struct iscsibe *ib = priv;
    struct scsi_task *task = data;

    (void)ctx;
    if (status == SCSI_STATUS_CANCELLED) {
        scsi_free_scsi_task(task);
        return;
    }
    if (status == SCSI_STATUS_GOOD) {
        struct scsi_inquiry_block_limits *bl = scsi_datain_unmarshall(task);

        if (bl != NULL && bl->max_xfer_len != 0 &&
            (uint64_t)bl->max_xfer_len * ib->block_size < ib->max_xfer)
            ib->max_xfer = bl->max_xfer_len * ib->block_size;
        if (bl != NULL)
            ib->max_ws_blocks = bl->max_ws_len;
    }
    /* Targets without the block limits page are fine: keep the default. */
    scsi_free_scsi_task(task);
    if (!ib->lbpme) {
        session_ready(ib);
        return;
    }
    ib->phase = PH_PROVISIONING;
    if (iscsi_inquiry_task(ctx, ib->url.lun, 1, SCSI_INQUIRY_PAGECODE_LOGICAL_BLOCK_PROVISIONING,
                           255, provisioning_cb, ib) == NULL) {
        struct keel_error e;

        set_session_error(ib, &e, KEEL_E_CONNECT, "INQUIRY on");
        keel_engine_session_failed(ib->eng, &e);
    }
}

static void capacity_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
    struct iscsibe *ib = priv;
    struct scsi_task *task = data;
    struct keel_error e;

    if (status == SCSI_STATUS_CANCELLED) {
        scsi_free_scsi_task(task);
        return;
    }
    /* A fresh LUN may still report its power-on unit attention: ask again. */
    if (status == SCSI_STATUS_CHECK_CONDITION && ib->capacity_tries++ < 10 &&
        (task->sense.key == SCSI_SENSE_UNIT_ATTENTION || task->sense.key == SCSI_SENSE_NOT_READY)) {
        scsi_free_scsi_task(task);
        if (iscsi_readcapacity16_task(ctx, ib->url.lun, capacity_cb, ib) == NULL) {
            set_session_error(ib, &e, KEEL_E_CONNECT, "READ CAPACITY on");
            keel_engine_session_failed(ib->eng, &e);
        }
        return;
    }
    if (status != SCSI_STATUS_GOOD) {
        keel_error_set(&e, KEEL_E_IO, 0, "READ CAPACITY(16) on LUN %d: %s", ib->url.lun,
                       status == SCSI_STATUS_CHECK_CONDITION
                           ? scsi_sense_ascq_str(task->sense.ascq)
                           : iscsi_get_error(ctx));
        scsi_free_scsi_task(task);
        keel_engine_session_failed(ib->eng, &e);
        return;
    }
    {
        struct scsi_readcapacity16 *rc16 = scsi_datain_unmarshall(task);

        if (rc16 == NULL || rc16->block_length == 0 || rc16->block_length % 512 != 0) {
            keel_error_set(&e, KEEL_E_IO, 0, "READ CAPACITY(16) on LUN %d: unusable answer",
                           ib->url.lun);
            scsi_free_scsi_task(task);
            keel_engine_session_failed(ib->eng, &e);
            return;
        }
        ib->block_size = rc16->block_length;
        ib->nblocks = rc16->returned_lba + 1; /* the last LBA, not a count */
        ib->lbpme = rc16->lbpme != 0;
        ib->lbprz = rc16->lbprz != 0;
    }
    scsi_free_scsi_task(task);
    ib->phase = PH_LIMITS;
    if (iscsi_inquiry_task(ctx, ib->url.lun, 1, SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS, 255,
                           limits_cb, ib) == NULL) {
        set_session_error(ib, &e, KEEL_E_CONNECT, "INQUIRY on");
        keel_engine_session_failed(ib->eng, &e);
    }
}

static void connect_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
    struct iscsibe *ib = priv;
    struct keel_error e;

    (void)data;
    if (status != SCSI_STATUS_GOOD) {
        set_session_error(ib, &e, KEEL_E_CONNECT, "login to");
        keel_engine_session_failed(ib->eng, &e);
        return;
    }
    if (ib->first_done) {
        ib->phase = PH_READY;
        keel_engine_session_up(ib->eng);
        return;
    }
    ib->phase = PH_CAPACITY;
    if (iscsi_readcapacity16_task(ctx, ib->url.lun, capacity_cb, ib) == NULL) {
        set_session_error(ib, &e, KEEL_E_CONNECT, "READ CAPACITY on");
        keel_engine_session_failed(ib->eng, &e);
    }
}

static int ib_connect(void *be, struct keel_error *err)
{
    struct iscsibe *ib = be;
    const struct keel_io_opts *o = keel_engine_opts(ib->eng);

    ib->ctx = iscsi_create_context(o->initiator_iqn);
    if (ib->ctx == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "cannot create an iSCSI context");
    ib->phase = PH_LOGIN;
    if (keel_debug_enabled(MOD)) {
        iscsi_set_log_level(ib->ctx, 2);
        iscsi_set_log_fn(ib->ctx, log_fn);
    }
    iscsi_set_targetname(ib->ctx, ib->url.iqn);
    iscsi_set_session_type(ib->ctx, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ib->ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_noautoreconnect(ib->ctx, 1);
    if (ib->url.user[0] != '\0' &&
        iscsi_set_initiator_username_pwd(ib->ctx, ib->url.user, ib->url.secret) != 0) {
        set_session_error(ib, err, KEEL_E_AUTH, "CHAP for");
        return -1;
    }
    if (iscsi_full_connect_async(ib->ctx, ib->portal, ib->url.lun, connect_cb, ib) != 0) {
        set_session_error(ib, err, KEEL_E_CONNECT, "connect to");
        return -1;
    }
    return 0;
}

static int ib_poll_fd(void *be)
{
    struct iscsibe *ib = be;

    return ib->ctx ? iscsi_get_fd(ib->ctx) : -1;
}

static short ib_poll_events(void *be)
{
    struct iscsibe *ib = be;

    return ib->ctx ? (short)iscsi_which_events(ib->ctx) : 0;
}

static int ib_service(void *be, short revents, struct keel_error *err)
{
    struct iscsibe *ib = be;

    if (ib->ctx == NULL)
        return 0;
    if (iscsi_service(ib->ctx, revents) < 0) {
        set_session_error(ib, err, KEEL_E_CONNECT, "session with");
        return -1;
    }
    /* With auto-reconnect off, libiscsi may report a dead socket only once. */
    if (ib->phase == PH_READY && (revents & (POLLHUP | POLLERR))) {
        keel_error_set(err, KEEL_E_CONNECT, ECONNRESET, "session with %s: connection lost",
                       ib->portal);
        return -1;
    }
    return 0;
}

static void ib_drop(void *be)
{
    struct iscsibe *ib = be;

    if (ib->ctx == NULL)
        return;
    ib->dropping = true;
    /* Cancels every task: task_cb() sees SCSI_STATUS_CANCELLED for each. */
    iscsi_destroy_context(ib->ctx);
    ib->ctx = NULL;
    ib->dropping = false;
    ib->phase = PH_LOGIN;
}

/* ---- requests ---- */

/* GET LBA STATUS's first descriptor, which must start at the asked LBA, into req's status. */
static void lba_status(const struct iscsibe *ib, struct keel_ioreq *req, struct scsi_task *task)
{
    struct keel_io_status *st = req->buf;
    struct scsi_get_lba_status *gls = scsi_datain_unmarshall(task);
    uint64_t lba = req->offset / ib->block_size;

    *st = (struct keel_io_status){ .len = req->len };
    if (gls == NULL || gls->num_descriptors == 0 || gls->descriptors[0].lba != lba ||
        gls->descriptors[0].num_blocks == 0)
        return; /* nothing usable: data */
    st->len = KEEL_MIN((uint64_t)gls->descriptors[0].num_blocks * ib->block_size,
                       (uint64_t)req->len);
    st->zero = gls->descriptors[0].provisioning == SCSI_PROVISIONING_TYPE_DEALLOCATED && ib->lbprz;
}

static void task_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
    struct keel_ioreq *req = priv;
    struct iscsibe *ib = req->priv.owner;
    struct scsi_task *task = data;
    struct keel_error e;

    req->priv.be_task = NULL;
    switch (status) {
    case SCSI_STATUS_GOOD:
        if (req->op == KEEL_IO_BLOCK_STATUS)
            lba_status(ib, req, task);
        req->xfer = req->op == KEEL_IO_FLUSH ? 0 : req->len;
        keel_engine_complete(ib->eng, req, KEEL_OUT_OK, NULL);
        break;
    case SCSI_STATUS_CHECK_CONDITION:
        if (req->op == KEEL_IO_BLOCK_STATUS && task->sense.key == SCSI_SENSE_ILLEGAL_REQUEST) {
            /* The target cannot tell: everything may be data. */
            *(struct keel_io_status *)req->buf = (struct keel_io_status){ .len = req->len };
            req->xfer = req->len;
            keel_engine_complete(ib->eng, req, KEEL_OUT_OK, NULL);
            break;
        }
        if (task->sense.key == SCSI_SENSE_UNIT_ATTENTION ||
            task->sense.key == SCSI_SENSE_NOT_READY) {
            keel_debug(MOD, "%s: %s, retrying", ib->name, scsi_sense_ascq_str(task->sense.ascq));
            keel_engine_complete(ib->eng, req, KEEL_OUT_RETRY_LATER, NULL);
            break;
        }
        keel_error_set(&e, KEEL_E_IO, EIO, "%s: %s (sense key 0x%x, asc/ascq 0x%04x)",
                       scsi_sense_key_str(task->sense.key), scsi_sense_ascq_str(task->sense.ascq),
                       task->sense.key, task->sense.ascq);
        keel_engine_complete(ib->eng, req, KEEL_OUT_ERROR, &e);
        break;
    case SCSI_STATUS_BUSY:
    case SCSI_STATUS_TASK_SET_FULL:
        keel_engine_complete(ib->eng, req, KEEL_OUT_RETRY_LATER, NULL);
        break;
    case SCSI_STATUS_RESERVATION_CONFLICT:
        keel_error_set(&e, KEEL_E_PERM, EACCES, "reservation conflict");
        keel_engine_complete(ib->eng, req, KEEL_OUT_ERROR, &e);
        break;
    default:
        /* CANCELLED, ERROR, TIMEOUT: the session went away under the command. */
        if (status == SCSI_STATUS_CANCELLED)
            keel_error_set(&e, KEEL_E_CONNECT, ECONNRESET, "connection lost");
        else
            set_session_error(ib, &e, KEEL_E_CONNECT, "session with");
        keel_engine_complete(ib->eng, req, KEEL_OUT_RETRY_SESSION, &e);
        if (!ib->dropping)
            keel_engine_session_failed(ib->eng, &e);
        break;
    }
    (void)ctx;
    scsi_free_scsi_task(task);
}

static int ib_start(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct iscsibe *ib = be;
    union iscsi_scratch *s = (union iscsi_scratch *)req->priv.be_scratch;
    uint64_t lba = req->offset / ib->block_size;
    struct scsi_task *task = NULL;

    if (ib->ctx == NULL || ib->phase != PH_READY) {
        keel_error_set(err, KEEL_E_CONNECT, 0, "session with %s is not ready", ib->portal);
        return KEEL_START_BROKEN;
    }
    switch (req->op) {
    case KEEL_IO_READ:
        s->iov.iov_base = req->buf;
        s->iov.iov_len = req->len;
        task = iscsi_read16_iov_task(ib->ctx, ib->url.lun, lba, (uint32_t)req->len,
                                     (int)ib->block_size, 0, 0, 0, 0, 0, task_cb, req, &s->iov, 1);
        break;
    case KEEL_IO_WRITE:
        s->iov.iov_base = req->buf;
        s->iov.iov_len = req->len;
        task = iscsi_write16_iov_task(ib->ctx, ib->url.lun, lba, NULL, (uint32_t)req->len,
                                      (int)ib->block_size, 0, 0, 0, 0, 0, task_cb, req, &s->iov,
                                      1);
        break;
    case KEEL_IO_FLUSH:
        task = iscsi_synchronizecache16_task(ib->ctx, ib->url.lun, 0, 0, 0, 0, task_cb, req);
        break;
    case KEEL_IO_WRITE_ZEROES:
        /* Only on a zeroing thin LUN (geom.native_zeroes); blockdev.c emulates it elsewhere. */
        task = iscsi_writesame16_task(ib->ctx, ib->url.lun, lba, ib->zero_block, ib->block_size,
                                      (uint32_t)(req->len / ib->block_size), 0, 1, 0, 0, task_cb,
                                      req);
        break;
    case KEEL_IO_BLOCK_STATUS:
        /* One descriptor: the run at lba (8 bytes of header, 16 of descriptor). */
        task = iscsi_get_lba_status_task(ib->ctx, ib->url.lun, lba, 8 + 16, task_cb, req);
        break;
    case KEEL_IO_DISCARD:
        if (!ib->lbpme) {
            req->xfer = req->len;
            keel_engine_complete(ib->eng, req, KEEL_OUT_OK, NULL);
            return 0;
        }
        s->unmap.lba = lba;
        s->unmap.num = (uint32_t)(req->len / ib->block_size);
        task = iscsi_unmap_task(ib->ctx, ib->url.lun, 0, 0, &s->unmap, 1, task_cb, req);
        break;
    default:
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "not an iSCSI operation");
    }
    if (task == NULL) {
        set_session_error(ib, err, KEEL_E_CONNECT, "cannot queue a command on");
        return KEEL_START_BROKEN;
    }
    req->priv.be_task = task;
    return 0;
}

static void ib_describe(void *be, const struct keel_ioreq *req, char *buf, size_t n)
{
    struct iscsibe *ib = be;
    uint64_t lba = req->offset / ib->block_size;
    uint64_t nb = req->len / ib->block_size;

    switch (req->op) {
    case KEEL_IO_READ:
        snprintf(buf, n, "READ(16) at LBA %" PRIu64 " (%" PRIu64 " blocks)", lba, nb);
        break;
    case KEEL_IO_WRITE:
        snprintf(buf, n, "WRITE(16) at LBA %" PRIu64 " (%" PRIu64 " blocks)", lba, nb);
        break;
    case KEEL_IO_FLUSH:
        snprintf(buf, n, "SYNCHRONIZE CACHE(16)");
        break;
    case KEEL_IO_DISCARD:
        snprintf(buf, n, "UNMAP at LBA %" PRIu64 " (%" PRIu64 " blocks)", lba, nb);
        break;
    case KEEL_IO_WRITE_ZEROES:
        snprintf(buf, n, "WRITE SAME(16) UNMAP at LBA %" PRIu64 " (%" PRIu64 " blocks)", lba, nb);
        break;
    case KEEL_IO_BLOCK_STATUS:
        snprintf(buf, n, "GET LBA STATUS at LBA %" PRIu64, lba);
        break;
    default:
        snprintf(buf, n, "%s", keel_io_op_name(req->op));
    }
}

static const struct keel_engine_ops ib_engine_ops = {
    .connect = ib_connect,
    .poll_fd = ib_poll_fd,
    .poll_events = ib_poll_events,
    .service = ib_service,
    .start = ib_start,
    .drop = ib_drop,
    .describe = ib_describe,
};

/* ---- the device ---- */

static int ib_submit(void *be, struct keel_ioreq *req, struct keel_error *err)
{
    struct iscsibe *ib = be;

    return keel_engine_submit(ib->eng, req, ib, err);
}

static void ib_close(void *be)
{
    struct iscsibe *ib = be;

    if (ib == NULL)
        return;
    keel_engine_free(ib->eng);
    free(ib->zero_block);
    free(ib);
}

static void ib_set_fence(void *be, struct keel_fence *f)
{
    struct iscsibe *x = be;

    keel_engine_set_fence(x->eng, f);
}

static const struct keel_blockdev_ops ib_ops = {
    .submit = ib_submit,
    .close = ib_close,
    .set_fence = ib_set_fence,
};

int keel_iscsi_blockdev_open(const struct keel_url *url, const struct keel_io_opts *opts,
                             struct keel_blockdev **ret, struct keel_error *err)
{
    struct keel_blockdev_geom geom = { 0 };
    struct iscsibe *ib = calloc(1, sizeof(*ib));

    if (ib == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    ib->url = *url;
    ib->max_xfer = ISCSI_MAX_XFER;
    keel_url_portal(url, ib->portal, sizeof(ib->portal));
    keel_url_format(url, true, ib->name, sizeof(ib->name));
    ib->eng = keel_engine_new(ib->name, &ib_engine_ops, ib, opts);
    if (ib->eng == NULL) {
        free(ib);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", ib->name);
    }
    if (keel_engine_start(ib->eng, err) != 0) {
        ib_close(ib);
        return -1;
    }
    geom.size = ib->nblocks * ib->block_size;
    geom.block_size = ib->block_size;
    geom.max_xfer = ib->max_xfer;
    geom.max_zero = ib->lbpme ? ISCSI_MAX_WRITE_SAME : ib->max_xfer;
    geom.native_zeroes = ws_zeroes(ib);
    if (geom.native_zeroes) {
        ib->zero_block = calloc(1, ib->block_size);
        if (ib->zero_block == NULL) {
            keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", ib->name);
            ib_close(ib);
            return -1;
        }
        if (ib->max_ws_blocks != 0 && ib->max_ws_blocks * ib->block_size < geom.max_zero)
            geom.max_zero = (size_t)(ib->max_ws_blocks * ib->block_size);
    }
    geom.block_status = ib->lbpme && ib->lbprz;
    return keel_blockdev_new(ib->name, &ib_ops, ib, &geom, ret, err);
}

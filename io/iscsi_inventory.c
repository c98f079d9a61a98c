/*
 * iSCSI discovery and LUN inventory; see iscsi_inventory.h.
 *
 * These are one-shot administrative calls, so they use libiscsi's
 * synchronous API on a private context with a command timeout
 * (iscsi_set_timeout) and a bounded TCP connect (few SYN retries), rather
 * than the engine: nothing here needs reconnects or many commands in flight.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "io/iscsi_inventory.h"

struct session {
    struct iscsi_context *ctx;
    char name[KEEL_URL_MAX];
    char portal[KEEL_URL_HOST_MAX + 8];
};

static const char *ctx_error(struct iscsi_context *ctx)
{
    static __thread char buf[256];
    const char *m = iscsi_get_error(ctx);
    size_t len = strlen(m);

    while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == '.'))
        len--;
    snprintf(buf, sizeof(buf), "%.*s", (int)len, len ? m : "no reason given");
    return buf;
}

static void session_close(struct session *s)
{
    if (s->ctx == NULL)
        return;
    iscsi_logout_sync(s->ctx);
    iscsi_destroy_context(s->ctx);
    s->ctx = NULL;
}

static int session_open(struct session *s, const struct keel_url *u, bool discovery,
                        const struct keel_io_opts *opts, struct keel_error *err)
{
    struct keel_io_opts o;
    int secs;

    if (opts != NULL)
        o = *opts;
    else
        keel_io_opts_init(&o);
    secs = (int)((o.timeout_ms ? o.timeout_ms : KEEL_IO_DEFAULT_TIMEOUT_MS) + 999) / 1000;
    keel_url_format(u, true, s->name, sizeof(s->name));
    keel_url_portal(u, s->portal, sizeof(s->portal));
    s->ctx = iscsi_create_context(o.initiator_iqn ? o.initiator_iqn : KEEL_IO_DEFAULT_INITIATOR);
    if (s->ctx == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: cannot create an iSCSI context",
                              s->name);
    iscsi_set_timeout(s->ctx, secs);
    iscsi_set_tcp_syncnt(s->ctx, 2);
    iscsi_set_session_type(s->ctx, discovery ? ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(s->ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    if (!discovery)
        iscsi_set_targetname(s->ctx, u->iqn);
    if (u->user[0] != '\0')
        iscsi_set_initiator_username_pwd(s->ctx, u->user, u->secret);
    if (iscsi_connect_sync(s->ctx, s->portal) != 0) {
        keel_error_set(err, KEEL_E_CONNECT, ECONNREFUSED, "%s: connect to %s: %s", s->name,
                       s->portal, ctx_error(s->ctx));
        iscsi_destroy_context(s->ctx);
        s->ctx = NULL;
        return -1;
    }
    if (iscsi_login_sync(s->ctx) != 0) {
        const char *m = ctx_error(s->ctx);

        keel_error_set(err, strstr(m, "uthentication") ? KEEL_E_AUTH : KEEL_E_CONNECT, EACCES,
                       "%s: login: %s", s->name, m);
        iscsi_destroy_context(s->ctx);
        s->ctx = NULL;
        return -1;
    }
    return 0;
}

/*
 * Run a synchronous command again while the LUN reports a unit attention
 * (a fresh login to tgtd reports its power-on reset first) or not ready.
 */
static struct scsi_task *retry_ua(struct scsi_task *task, struct scsi_task *(*again)(void *),
                                  void *arg)
{
    for (int i = 0; i < 10 && task != NULL && task->status == SCSI_STATUS_CHECK_CONDITION &&
                    (task->sense.key == SCSI_SENSE_UNIT_ATTENTION ||
                     task->sense.key == SCSI_SENSE_NOT_READY);
         i++) {
        scsi_free_scsi_task(task);
        task = again(arg);
    }
    return task;
}

struct cmd_args {
    struct iscsi_context *ctx;
    int lun, evpd, page;
};

static struct scsi_task *inquiry_again(void *p)
{
    struct cmd_args *a = p;

    return iscsi_inquiry_sync(a->ctx, a->lun, a->evpd, a->page, 255);
}

static struct scsi_task *capacity_again(void *p)
{
    struct cmd_args *a = p;

    return iscsi_readcapacity16_sync(a->ctx, a->lun);
}

static struct scsi_task *reportluns_again(void *p)
{
    struct cmd_args *a = p;

    return iscsi_reportluns_sync(a->ctx, 0, 16384);
}

static void hex(char *dst, size_t n, const unsigned char *src, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 3 <= n; i++)
        o += (size_t)snprintf(dst + o, n - o, "%02x", src[i]);
}

/* Drop leading and trailing blanks (SCSI pads its ASCII fields). */
static void trim(char *s)
{
    size_t len = strlen(s), lead = 0;

    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    while (isspace((unsigned char)s[lead]))
        lead++;
    memmove(s, s + lead, len - lead + 1);
}

/* The WWID multipath/udev would give the LUN (see iscsi_inventory.h). */
static void pick_devid(struct keel_iscsi_lun *l,
                       const struct scsi_inquiry_device_identification *id)
{
    static const int prefer[] = { SCSI_DESIGNATOR_TYPE_NAA, SCSI_DESIGNATOR_TYPE_EUI_64,
                                  SCSI_DESIGNATOR_TYPE_SCSI_NAME_STRING,
                                  SCSI_DESIGNATOR_TYPE_T10_VENDORT_ID };
    static const char prefix[] = { '3', '2', '8', '1' };

    for (size_t p = 0; p < KEEL_ARRAY_SIZE(prefer); p++) {
        for (struct scsi_inquiry_device_designator *d = id->designators; d; d = d->next) {
            if ((int)d->designator_type != prefer[p] ||
                d->association != SCSI_ASSOCIATION_LOGICAL_UNIT)
                continue;
            l->devid[0] = prefix[p];
            if (d->code_set == SCSI_CODESET_BINARY) {
                hex(l->devid + 1, sizeof(l->devid) - 1, (const unsigned char *)d->designator,
                    (size_t)d->designator_length);
            } else {
                size_t o = 1;

                for (int i = 0; i < d->designator_length && o + 1 < sizeof(l->devid); i++) {
                    char c = d->designator[i];

                    if (c == '\0')
                        break;
                    /* Runs of spaces become one '_', as udev does. */
                    if (c == ' ') {
                        if (l->devid[o - 1] != '_')
                            l->devid[o++] = '_';
                        continue;
                    }
                    l->devid[o++] = c;
                }
                while (o > 1 && l->devid[o - 1] == '_')
                    o--;
                l->devid[o] = '\0';
            }
            return;
        }
    }
}

static int inquire_lun(struct session *s, const struct keel_url *tu, int lun,
                       struct keel_iscsi_lun *l, struct keel_error *err)
{
    struct scsi_task *task;
    struct keel_url lu = *tu;
    struct cmd_args a = { .ctx = s->ctx, .lun = lun };

    memset(l, 0, sizeof(*l));
    l->lun = lun;
    lu.lun = lun;
    keel_url_format(&lu, true, l->url, sizeof(l->url));

    task = retry_ua(iscsi_inquiry_sync(s->ctx, lun, 0, 0, 255), inquiry_again, &a);
    if (task == NULL || task->status != SCSI_STATUS_GOOD) {
        keel_error_set(err, KEEL_E_IO, EIO, "%s: INQUIRY of LUN %d: %s", s->name, lun,
                       ctx_error(s->ctx));
        if (task)
            scsi_free_scsi_task(task);
        return -1;
    }
    {
        struct scsi_inquiry_standard *std = scsi_datain_unmarshall(task);

        if (std == NULL) {
            scsi_free_scsi_task(task);
            return keel_error_set(err, KEEL_E_IO, EIO, "%s: INQUIRY of LUN %d: unusable answer",
                                  s->name, lun);
        }
        l->device_type = (int)std->device_type;
        keel_strlcpy(l->vendor, std->vendor_identification, sizeof(l->vendor));
        keel_strlcpy(l->product, std->product_identification, sizeof(l->product));
        keel_strlcpy(l->revision, std->product_revision_level, sizeof(l->revision));
        trim(l->vendor);
        trim(l->product);
        trim(l->revision);
    }
    scsi_free_scsi_task(task);

    a.evpd = 1;
    a.page = SCSI_INQUIRY_PAGECODE_UNIT_SERIAL_NUMBER;
    task = retry_ua(iscsi_inquiry_sync(s->ctx, lun, 1, a.page, 255), inquiry_again, &a);
    if (task != NULL && task->status == SCSI_STATUS_GOOD) {
        struct scsi_inquiry_unit_serial_number *sn = scsi_datain_unmarshall(task);

        if (sn != NULL && sn->usn != NULL) {
            keel_strlcpy(l->serial, sn->usn, sizeof(l->serial));
            trim(l->serial);
        }
    }
    if (task)
        scsi_free_scsi_task(task);

    a.page = SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION;
    task = retry_ua(iscsi_inquiry_sync(s->ctx, lun, 1, a.page, 255), inquiry_again, &a);
    if (task != NULL && task->status == SCSI_STATUS_GOOD) {
        struct scsi_inquiry_device_identification *id = scsi_datain_unmarshall(task);

        if (id != NULL)
            pick_devid(l, id);
    }
    if (task)
        scsi_free_scsi_task(task);

    if (l->device_type != KEEL_SCSI_TYPE_DISK)
        return 0;
    task = retry_ua(iscsi_readcapacity16_sync(s->ctx, lun), capacity_again, &a);
    if (task == NULL || task->status != SCSI_STATUS_GOOD) {
        keel_error_set(err, KEEL_E_IO, EIO, "%s: READ CAPACITY(16) of LUN %d: %s", s->name, lun,
                       ctx_error(s->ctx));
        if (task)
            scsi_free_scsi_task(task);
        return -1;
    }
    {
        struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(task);

        if (rc != NULL) {
            l->block_size = rc->block_length;
            l->size = (rc->returned_lba + 1) * rc->block_length;
        }
    }
    scsi_free_scsi_task(task);
    return 0;
}

static int cmp_lun(const void *a, const void *b)
{
    return ((const struct keel_iscsi_lun *)a)->lun - ((const struct keel_iscsi_lun *)b)->lun;
}

static int target_luns(const struct keel_url *tu, const struct keel_io_opts *opts,
                       struct keel_iscsi_target *ret, struct keel_error *err)
{
    struct session s = { 0 };
    struct scsi_task *task;
    struct scsi_reportluns_list *list;
    struct keel_iscsi_target t;
    int rc = -1;

    memset(&t, 0, sizeof(t));
    keel_strlcpy(t.iqn, tu->iqn, sizeof(t.iqn));
    if (session_open(&s, tu, false, opts, err) != 0)
        return -1;
    keel_strlcpy(t.portal, s.portal, sizeof(t.portal));
    {
        struct cmd_args a = { .ctx = s.ctx };

        task = retry_ua(iscsi_reportluns_sync(s.ctx, 0, 16384), reportluns_again, &a);
    }
    if (task == NULL || task->status != SCSI_STATUS_GOOD) {
        keel_error_set(err, KEEL_E_IO, EIO, "%s: REPORT LUNS: %s", s.name, ctx_error(s.ctx));
        goto out;
    }
    list = scsi_datain_unmarshall(task);
    if (list == NULL) {
        keel_error_set(err, KEEL_E_IO, EIO, "%s: REPORT LUNS: unusable answer", s.name);
        goto out;
    }
    t.luns = calloc(list->num ? list->num : 1, sizeof(*t.luns));
    if (t.luns == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", s.name);
        goto out;
    }
    for (uint32_t i = 0; i < list->num; i++) {
        if (inquire_lun(&s, tu, list->luns[i], &t.luns[t.nluns], err) != 0)
            goto out;
        t.nluns++;
    }
    qsort(t.luns, t.nluns, sizeof(*t.luns), cmp_lun);
    *ret = t;
    t.luns = NULL;
    rc = 0;
out:
    if (task)
        scsi_free_scsi_task(task);
    free(t.luns);
    session_close(&s);
    return rc;
}

int keel_iscsi_target_luns(const char *target_url, const struct keel_io_opts *opts,
                           struct keel_iscsi_target *ret, struct keel_error *err)
{
    struct keel_url u;

    if (keel_url_parse_portal(target_url, &u, err) != 0)
        return -1;
    if (u.iqn[0] == '\0') {
        char red[KEEL_URL_MAX];

        return keel_error_set(err, KEEL_E_URL, EINVAL, "%s: missing target IQN",
                              keel_url_redact_str(target_url, red, sizeof(red)));
    }
    return target_luns(&u, opts, ret, err);
}

void keel_iscsi_target_release(struct keel_iscsi_target *t)
{
    if (t == NULL)
        return;
    free(t->luns);
    t->luns = NULL;
    t->nluns = 0;
}

void keel_iscsi_inventory_release(struct keel_iscsi_inventory *inv)
{
    if (inv == NULL)
        return;
    for (size_t i = 0; i < inv->ntargets; i++)
        keel_iscsi_target_release(&inv->targets[i]);
    free(inv->targets);
    inv->targets = NULL;
    inv->ntargets = 0;
}

int keel_iscsi_discover(const char *portal_url, const struct keel_io_opts *opts,
                        struct keel_iscsi_inventory *ret, struct keel_error *err)
{
    struct keel_iscsi_inventory inv = { 0 };
    struct iscsi_discovery_address *da, *d;
    struct session s = { 0 };
    struct keel_url u;
    size_t n = 0;

    if (keel_url_parse_portal(portal_url, &u, err) != 0)
        return -1;
    u.iqn[0] = '\0';
    if (session_open(&s, &u, true, opts, err) != 0)
        return -1;
    da = iscsi_discovery_sync(s.ctx);
    if (da == NULL) {
        keel_error_set(err, KEEL_E_IO, EIO, "%s: SendTargets discovery: %s", s.name,
                       ctx_error(s.ctx));
        session_close(&s);
        return -1;
    }
    for (d = da; d; d = d->next)
        n++;
    inv.targets = calloc(n ? n : 1, sizeof(*inv.targets));
    if (inv.targets == NULL) {
        iscsi_free_discovery_data(s.ctx, da);
        session_close(&s);
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "%s: out of memory", s.name);
    }
    for (d = da; d; d = d->next) {
        struct keel_iscsi_target *t = &inv.targets[inv.ntargets];
        struct keel_url tu = u;

        keel_strlcpy(tu.iqn, d->target_name, sizeof(tu.iqn));
        if (target_luns(&tu, opts, t, err) != 0) {
            iscsi_free_discovery_data(s.ctx, da);
            session_close(&s);
            keel_iscsi_inventory_release(&inv);
            return -1;
        }
        if (d->portals != NULL)
            keel_strlcpy(t->portal, d->portals->portal, sizeof(t->portal));
        inv.ntargets++;
    }
    iscsi_free_discovery_data(s.ctx, da);
    session_close(&s);
    *ret = inv;
    return 0;
}

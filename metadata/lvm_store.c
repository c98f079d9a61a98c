/*
 * LVM2 volume groups on block devices; see lvm_store.h and
 * ../shared/specs/lvm2-format.md sections 1-7.
 *
 * Invariants of a commit (seqno N -> N+1):
 *  1. Nothing is written before the new VG validates, fits in every
 *     metadata area in use, and every area in use was readable and still
 *     holds what this store last read (else KEEL_E_BUSY: someone else wrote).
 *  2. The new text goes only into free space of each area: never over the
 *     committed copy (keel_lvm_mda_next_offset() checks the overlap).  So
 *     until an area's header is rewritten it still describes the intact old
 *     copy, whatever happened to the writes of the text.
 *  3. All text writes are flushed before the first header is written; the
 *     headers (one sector each: atomic) are then written and flushed once
 *     per device, in any order.  So any crash leaves each area with either
 *     the old or the new copy, and readers take the newest valid seqno
 *     (section 7).  (A flush between two headers would buy nothing: each
 *     area is old or new either way.)
 *  4. The same bytes go to every area: one text, one checksum.
 *  5. Precommit (slot 1) is not used, and is cleared when found: keeps pvck
 *     quiet and is allowed by the spec (section 5.3).
 *  6. After a failed write the store does not trust its cache: the next
 *     change re-reads everything first.
 *  7. A change edits s->vg in place with an undo record of what it replaced
 *     (see "one change, one commit"); any failure puts s->vg back before
 *     the call returns, so s->vg is always the last committed (or read) VG
 *     between calls.  The text is formatted by lvm_text.c, which reuses the
 *     texts of unchanged LVs and gives the bytes keel_lvm_vg_format() gives.
 *
 *   committed N --write text (all areas)--> text N+1 in free space
 *       --flush--> --write header area 1--> area 1 at N+1, others at N
 *       --... each area ...--> --flush--> committed N+1
 *   A crash before the first header: everything reads N.  Between headers:
 *   N+1 wins, lvm warns about the stale areas and so does Keel; the next
 *   commit writes every area again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/strutil.h"
#include "io/iosync.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_edit.h"
#include "metadata/lvm_label.h"
#include "metadata/lvm_store.h"
#include "metadata/lvm_text.h"

#define MOD "metadata.lvm"
#define MiB (UINT64_C(1) << 20)
#define LABEL_SECTOR 1
#define DEFAULT_ALIGN MiB
#define MAX_TEXT (UINT64_C(256) << 20) /* sanity bound for a text read */

enum mda_state { MDA_BAD, MDA_IGNORED, MDA_EMPTY, MDA_OK };

struct mda {
    struct keel_lvm_mdah h;
    enum mda_state state;
    struct keel_error err;
};

struct pvdev {
    struct keel_blockdev *dev;
    bool is_pv;
    struct keel_error label_err;
    uint64_t label_sector;
    struct keel_lvm_pvh pvh;
    struct mda mda[KEEL_LVM_MAX_AREAS];
};

struct keel_lvm_store {
    size_t ndevs;
    struct pvdev *devs;
    char *vg_name;
    struct keel_lvm_vg *vg;
    struct keel_lvm_text *text;   /* the formatter's cache of LV texts (lvm_text.h) */
    bool text_in_sync;            /* text's last format is s->vg as it is now */
    size_t text_size;
    unsigned text_reads;
    bool stale;
    struct keel_lvm_strlist warnings;
    char host[256];
};

/* ---- I/O helpers: byte ranges on block devices of any block size ---- */

static int dev_read(struct keel_blockdev *dev, uint64_t off, void *buf, size_t len,
                    struct keel_error *err)
{
    uint32_t bs = keel_blockdev_block_size(dev);
    uint64_t a = KEEL_ALIGN_DOWN(off, bs);
    uint64_t e = KEEL_ALIGN_UP(off + len, bs);
    _cleanup_free_ uint8_t *tmp = NULL;

    if (a == off && e == off + len)
        return keel_blockdev_pread(dev, buf, len, off, err);
    tmp = keel_aligned_alloc(4096, (size_t)(e - a));
    if (tmp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    if (keel_blockdev_pread(dev, tmp, (size_t)(e - a), a, err) != 0)
        return -1;
    memcpy(buf, tmp + (off - a), len);
    return 0;
}

static int dev_write(struct keel_blockdev *dev, uint64_t off, const void *buf, size_t len,
                     struct keel_error *err)
{
    uint32_t bs = keel_blockdev_block_size(dev);
    uint64_t a = KEEL_ALIGN_DOWN(off, bs);
    uint64_t e = KEEL_ALIGN_UP(off + len, bs);
    _cleanup_free_ uint8_t *tmp = NULL;

    if (a == off && e == off + len)
        return keel_blockdev_pwrite(dev, buf, len, off, err);
    /* Read-modify-write of the partial blocks (4 KiB LUNs). */
    tmp = keel_aligned_alloc(4096, (size_t)(e - a));
    if (tmp == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    if (keel_blockdev_pread(dev, tmp, (size_t)(e - a), a, err) != 0)
        return -1;
    memcpy(tmp + (off - a), buf, len);
    return keel_blockdev_pwrite(dev, tmp, (size_t)(e - a), a, err);
}

/*
 * A batch of writes (or flushes) started together and waited for together:
 * the areas of a commit are independent, so their writes need not wait
 * for each other -- only the next phase waits for the whole batch.
 * Unaligned writes (4 KiB LUNs) fall back to dev_write() at once.
 */
#define BATCH_MAX 32

struct wbatch {
    struct keel_iosync sync;
    struct keel_ioreq req[BATCH_MAX];
    void *buf[BATCH_MAX];         /* owned buffers, freed after the wait */
    size_t n;
    int rc;
    struct keel_error err;
};

static void batch_init(struct wbatch *b)
{
    memset(b, 0, sizeof(*b));
    keel_iosync_init(&b->sync);
}

/*
 * Queue op (a write of buf, or a flush).  With own, the batch owns buf and
 * frees it; without, buf is borrowed and must stay until batch_wait().
 */
static void batch_add(struct wbatch *b, struct keel_blockdev *dev, enum keel_io_op op,
                      uint64_t off, void *buf, size_t len, bool own)
{
    uint32_t bs = keel_blockdev_block_size(dev);
    struct keel_ioreq *r;

    if (b->rc != 0) {
        if (own)
            free(buf);
        return;
    }
    if (b->n == BATCH_MAX ||
        (op == KEEL_IO_WRITE && (off % bs != 0 || len % bs != 0))) {
        b->rc = op == KEEL_IO_WRITE ? dev_write(dev, off, buf, len, &b->err)
                                    : keel_blockdev_flush(dev, &b->err);
        if (own)
            free(buf);
        return;
    }
    r = &b->req[b->n];
    memset(r, 0, sizeof(*r));
    r->op = op;
    r->offset = off;
    r->len = len;
    r->buf = buf;
    b->buf[b->n] = own ? buf : NULL;
    keel_iosync_prepare(&b->sync, r);
    if (keel_blockdev_submit(dev, r, &b->err) != 0) {
        keel_iosync_cancel(&b->sync, r);
        if (own)
            free(buf);
        b->rc = -1;
        return;
    }
    b->n++;
}

/* Wait for the batch; the first failure is the batch's.  The batch is reusable after. */
static int batch_wait(struct wbatch *b, struct keel_error *err)
{
    keel_iosync_wait(&b->sync);
    for (size_t i = 0; i < b->n; i++) {
        if (b->rc == 0 && b->req[i].result != 0) {
            b->rc = -1;
            b->err = b->req[i].err;
        }
        free(b->buf[i]);
        b->buf[i] = NULL;
    }
    b->n = 0;
    if (b->rc != 0) {
        keel_error_copy(err, &b->err);
        b->rc = 0;
        return -1;
    }
    return 0;
}

static void batch_release(struct wbatch *b)
{
    keel_iosync_wait(&b->sync);
    for (size_t i = 0; i < b->n; i++)
        free(b->buf[i]);
    keel_iosync_release(&b->sync);
}

/* ---- reading ---- */

static const char *devname(const struct pvdev *pd)
{
    return keel_blockdev_name(pd->dev);
}

static void warn(struct keel_lvm_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void warn(struct keel_lvm_store *s, const char *fmt, ...)
{
    char msg[KEEL_ERR_MSG + 200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    keel_debug(MOD, "%s", msg);
    keel_lvm_strlist_add(&s->warnings, msg);
}

/* Read the header of area i of pd into pd->mda[i] (state and error). */
static int read_mda_header(struct pvdev *pd, size_t i, struct keel_error *err)
{
    struct mda *m = &pd->mda[i];
    uint64_t start = pd->pvh.mda[i].offset;
    uint8_t sec[KEEL_LVM_SECTOR];

    keel_error_clear(&m->err);
    if (dev_read(pd->dev, start, sec, sizeof(sec), err) != 0)
        return -1;
    if (keel_lvm_mdah_decode(sec, start, &m->h, &m->err) != 0) {
        m->state = MDA_BAD;
        keel_error_prefix(&m->err, "%s: metadata area at %" PRIu64, devname(pd), start);
        return 0;
    }
    if (m->h.slot[0].flags & KEEL_LVM_RAW_LOCN_IGNORED)
        m->state = MDA_IGNORED;
    else if (m->h.slot[0].size == 0)
        m->state = MDA_EMPTY;
    else
        m->state = MDA_OK;
    return 0;
}

/* Read the label and every area header of a device. I/O errors fail. */
static int scan_dev(struct pvdev *pd, struct keel_error *err)
{
    uint8_t buf[KEEL_LVM_LABEL_SCAN * KEEL_LVM_SECTOR];

    pd->is_pv = false;
    keel_error_set(&pd->label_err, KEEL_E_MAGIC, 0, "%s: not an LVM2 physical volume (no label)",
                   devname(pd));
    if (dev_read(pd->dev, 0, buf, sizeof(buf), err) != 0)
        return -1;
    for (uint64_t sec = 0; sec < KEEL_LVM_LABEL_SCAN; sec++) {
        struct keel_error e = KEEL_ERROR_INIT;

        if (keel_lvm_pvh_decode(buf + sec * KEEL_LVM_SECTOR, sec, &pd->pvh, &e) == 0) {
            pd->is_pv = true;
            pd->label_sector = sec;
            break;
        }
        if (e.code != KEEL_E_MAGIC) {
            pd->label_err = e;
            keel_error_prefix(&pd->label_err, "%s: label in sector %" PRIu64, devname(pd), sec);
        }
    }
    if (!pd->is_pv)
        return 0;
    for (size_t i = 0; i < pd->pvh.nmda; i++)
        if (read_mda_header(pd, i, err) != 0)
            return -1;
    return 0;
}

/* Read and check the committed text of an area: *ret malloc'ed, NUL inside. */
static int read_text(struct keel_lvm_store *s, struct pvdev *pd, size_t i, char **ret,
                     struct keel_error *err)
{
    struct mda *m = &pd->mda[i];
    const struct keel_lvm_rlocn *r = &m->h.slot[0];
    struct keel_lvm_area p[2];
    _cleanup_free_ char *text = NULL;
    size_t got = 0;
    int np;

    if (r->size > MAX_TEXT)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "metadata text of %" PRIu64 " bytes",
                              r->size);
    text = malloc((size_t)r->size + 1);
    if (text == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    np = keel_lvm_mda_pieces(m->h.size, r->offset, r->size, p);
    for (int k = 0; k < np; k++) {
        if (dev_read(pd->dev, m->h.start + p[k].offset, text + got, (size_t)p[k].size, err) != 0)
            return -1;
        got += (size_t)p[k].size;
    }
    s->text_reads++;
    text[got] = '\0';
    if (keel_lvm_crc(KEEL_LVM_CRC_SEED, text, got) != r->checksum)
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "metadata text checksum mismatch");
    if (got == 0 || text[got - 1] != '\0')
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "metadata text is not terminated");
    *ret = TAKE_PTR(text);
    return 0;
}

/* A parsed copy of the text, shared by the areas that hold the same bytes. */
struct copy {
    uint32_t checksum;
    uint64_t size;
    struct keel_lvm_vg *vg;   /* NULL when it did not parse */
    struct keel_error err;
};

static void release_copies(struct copy *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        keel_lvm_vg_free(c[i].vg);
    free(c);
}

/*
 * Read every device's labels, headers and texts; keep the newest VG named
 * vg_name (any, when NULL).  Damaged or stale areas become warnings; when
 * no area holds a good copy, fail with the first damage found.
 */
static int read_all(struct keel_lvm_store *s, struct keel_error *err)
{
    struct copy *copies = NULL;
    size_t ncopies = 0, cap = 0;
    struct keel_error first = KEEL_ERROR_INIT;
    const struct copy *best = NULL;
    int rc = -1;

    keel_lvm_strlist_release(&s->warnings);
    for (size_t d = 0; d < s->ndevs; d++) {
        struct pvdev *pd = &s->devs[d];

        if (scan_dev(pd, err) != 0)
            goto out;
        if (!pd->is_pv) {
            if (first.code == KEEL_OK)
                first = pd->label_err;
            continue;
        }
        for (size_t i = 0; i < pd->pvh.nmda; i++) {
            struct mda *m = &pd->mda[i];
            struct copy *c = NULL;
            char *text = NULL;

            if (m->state == MDA_BAD) {
                warn(s, "%s", m->err.msg);
                if (first.code == KEEL_OK)
                    first = m->err;
                continue;
            }
            if (m->state != MDA_OK)
                continue;
            for (size_t k = 0; k < ncopies; k++)
                if (copies[k].checksum == m->h.slot[0].checksum &&
                    copies[k].size == m->h.slot[0].size)
                    c = &copies[k];
            if (c != NULL)
                continue;
            if (read_text(s, pd, i, &text, &m->err) != 0) {
                /* A writer on another host may have moved it: read once more. */
                if (m->err.code == KEEL_E_CHECKSUM && read_mda_header(pd, i, err) == 0 &&
                    m->state == MDA_OK) {
                    keel_error_clear(&m->err);
                    if (read_text(s, pd, i, &text, &m->err) == 0)
                        goto parse;
                }
                if (m->err.code == KEEL_E_NOMEM || m->err.code == KEEL_E_IO ||
                    m->err.code == KEEL_E_TIMEOUT || m->err.code == KEEL_E_CONNECT) {
                    keel_error_copy(err, &m->err);
                    goto out;
                }
                m->state = MDA_BAD;
                keel_error_prefix(&m->err, "%s: metadata area at %" PRIu64, devname(pd),
                                  m->h.start);
                warn(s, "%s", m->err.msg);
                if (first.code == KEEL_OK)
                    first = m->err;
                continue;
            }
parse:
            if (ncopies == cap) {
                struct copy *v = realloc(copies, (cap = cap ? cap * 2 : 4) * sizeof(*v));

                if (v == NULL) {
                    free(text);
                    keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
                    goto out;
                }
                copies = v;
            }
            c = &copies[ncopies++];
            memset(c, 0, sizeof(*c));
            c->checksum = m->h.slot[0].checksum;
            c->size = m->h.slot[0].size;
            if (keel_lvm_vg_parse(text, (size_t)c->size, &c->vg, &c->err) != 0) {
                keel_error_prefix(&c->err, "%s: metadata area at %" PRIu64, devname(pd),
                                  m->h.start);
                m->state = MDA_BAD;
                m->err = c->err;
                warn(s, "%s", c->err.msg);
                if (first.code == KEEL_OK)
                    first = c->err;
            }
            free(text);
        }
    }
    for (size_t k = 0; k < ncopies; k++) {
        const struct copy *c = &copies[k];

        if (c->vg == NULL || (s->vg_name && strcmp(c->vg->name, s->vg_name) != 0))
            continue;
        if (best == NULL || c->vg->seqno > best->vg->seqno)
            best = c;
    }
    if (best == NULL) {
        if (first.code != KEEL_OK)
            keel_error_copy(err, &first);
        else if (s->vg_name)
            keel_error_set(err, KEEL_E_NOENT, ENOENT, "VG %s: not found on the %zu devices given",
                           s->vg_name, s->ndevs);
        else
            keel_error_set(err, KEEL_E_NOENT, ENOENT, "no VG found on the %zu devices given",
                           s->ndevs);
        goto out;
    }
    /* Report areas of this VG that hold another copy than the winner. */
    for (size_t d = 0; d < s->ndevs; d++) {
        struct pvdev *pd = &s->devs[d];

        for (size_t i = 0; pd->is_pv && i < pd->pvh.nmda; i++) {
            const struct mda *m = &pd->mda[i];

            if (m->state != MDA_OK || (m->h.slot[0].checksum == best->checksum &&
                                       m->h.slot[0].size == best->size))
                continue;
            for (size_t k = 0; k < ncopies; k++) {
                const struct copy *c = &copies[k];

                if (c->vg == NULL || c->checksum != m->h.slot[0].checksum ||
                    c->size != m->h.slot[0].size || strcmp(c->vg->name, best->vg->name) != 0)
                    continue;
                if (c->vg->seqno < best->vg->seqno)
                    warn(s, "%s: metadata area at %" PRIu64 ": VG %s seqno %u, older than seqno "
                            "%u elsewhere", devname(pd), m->h.start, c->vg->name, c->vg->seqno,
                         best->vg->seqno);
                else
                    warn(s, "%s: metadata area at %" PRIu64 ": VG %s seqno %u differs from "
                            "another copy of the same seqno", devname(pd), m->h.start,
                         c->vg->name, c->vg->seqno);
            }
        }
    }
    keel_lvm_vg_free(s->vg);
    s->vg = best->vg;
    s->text_in_sync = false;
    s->text_size = (size_t)best->size;
    ((struct copy *)best)->vg = NULL;
    if (s->vg_name == NULL && (s->vg_name = strdup(s->vg->name)) == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        goto out;
    }
    s->stale = false;
    rc = 0;
out:
    release_copies(copies, ncopies);
    return rc;
}

/* ---- the store ---- */

static struct keel_lvm_store *store_new(struct keel_blockdev *const *devs, size_t ndevs,
                                        const char *vg_name, const char *host,
                                        struct keel_error *err)
{
    struct keel_lvm_store *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->devs = calloc(ndevs ? ndevs : 1, sizeof(*s->devs))) == NULL ||
        (s->text = keel_lvm_text_new()) == NULL ||
        (vg_name && (s->vg_name = strdup(vg_name)) == NULL)) {
        keel_lvm_store_close(s);
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        return NULL;
    }
    s->ndevs = ndevs;
    for (size_t i = 0; i < ndevs; i++)
        s->devs[i].dev = devs[i];
    if (host != NULL)
        keel_strlcpy(s->host, host, sizeof(s->host));
    else if (gethostname(s->host, sizeof(s->host) - 1) != 0)
        keel_strlcpy(s->host, "keel", sizeof(s->host));
    return s;
}

void keel_lvm_store_close(struct keel_lvm_store *s)
{
    if (s == NULL)
        return;
    keel_lvm_vg_free(s->vg);
    keel_lvm_text_free(s->text);
    keel_lvm_strlist_release(&s->warnings);
    free(s->vg_name);
    free(s->devs);
    free(s);
}

int keel_lvm_store_open(struct keel_blockdev *const *devs, size_t ndevs, const char *vg_name,
                        const char *host, struct keel_lvm_store **ret, struct keel_error *err)
{
    struct keel_lvm_store *s;

    if (ndevs == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "no devices given");
    if ((s = store_new(devs, ndevs, vg_name, host, err)) == NULL)
        return -1;
    if (read_all(s, err) != 0) {
        keel_lvm_store_close(s);
        return -1;
    }
    *ret = s;
    return 0;
}

const struct keel_lvm_vg *keel_lvm_store_vg(const struct keel_lvm_store *s)
{
    return s->vg;
}

unsigned keel_lvm_store_text_reads(const struct keel_lvm_store *s)
{
    return s->text_reads;
}

const struct keel_lvm_strlist *keel_lvm_store_warnings(const struct keel_lvm_store *s)
{
    return &s->warnings;
}

size_t keel_lvm_store_text_size(const struct keel_lvm_store *s)
{
    return s->text_size;
}

/* The devices that are PVs of the VG, and the VG's PV index of each. */
static struct pvdev *pv_of(const struct keel_lvm_store *s, uint32_t pv)
{
    if (s->vg == NULL || pv >= s->vg->npvs)
        return NULL;
    for (size_t d = 0; d < s->ndevs; d++)
        if (s->devs[d].is_pv && strcmp(s->devs[d].pvh.pv_id, s->vg->pvs[pv].id) == 0)
            return &s->devs[d];
    return NULL;
}

static bool in_vg(const struct keel_lvm_store *s, const struct keel_lvm_vg *vg,
                  const struct pvdev *pd)
{
    (void)s;
    return pd->is_pv && keel_lvm_vg_find_pv(vg, pd->pvh.pv_id) >= 0;
}

uint64_t keel_lvm_store_text_max(const struct keel_lvm_store *s)
{
    uint64_t max = UINT64_MAX;

    for (size_t d = 0; d < s->ndevs; d++) {
        const struct pvdev *pd = &s->devs[d];

        for (size_t i = 0; s->vg && in_vg(s, s->vg, pd) && i < pd->pvh.nmda; i++)
            if (pd->mda[i].state != MDA_IGNORED)
                max = KEEL_MIN(max, keel_lvm_mda_max_text(pd->mda[i].h.size));
    }
    return max;
}

struct keel_blockdev *keel_lvm_store_pv_dev(const struct keel_lvm_store *s, uint32_t pv)
{
    struct pvdev *pd = pv_of(s, pv);

    return pd ? pd->dev : NULL;
}

uint64_t keel_lvm_store_pe_offset(const struct keel_lvm_store *s, uint32_t pv, uint64_t pe)
{
    const struct keel_lvm_pv *p = &s->vg->pvs[pv];

    return (p->pe_start + pe * s->vg->extent_size) * KEEL_LVM_SECTOR;
}

int keel_lvm_store_refresh(struct keel_lvm_store *s, bool *changed, struct keel_error *err)
{
    bool moved = s->stale || s->vg == NULL;

    for (size_t d = 0; d < s->ndevs && !moved; d++) {
        struct pvdev *pd = &s->devs[d];

        if (!pd->is_pv || !in_vg(s, s->vg, pd))
            continue;
        for (size_t i = 0; i < pd->pvh.nmda && !moved; i++) {
            struct keel_lvm_rlocn old = pd->mda[i].h.slot[0];
            enum mda_state was = pd->mda[i].state;

            /* A header read or not, the cache can no longer be trusted on failure. */
            if (read_mda_header(pd, i, err) != 0) {
                s->stale = true;
                return -1;
            }
            if (pd->mda[i].state != was || pd->mda[i].h.slot[0].offset != old.offset ||
                pd->mda[i].h.slot[0].size != old.size ||
                pd->mda[i].h.slot[0].checksum != old.checksum)
                moved = true;
        }
    }
    /*
     * Headers that moved but a VG that did not read: marked stale, so that
     * the next change re-reads first instead of committing over what
     * another writer committed (invariant 6).
     */
    if (moved && read_all(s, err) != 0) {
        s->stale = true;
        return -1;
    }
    if (changed)
        *changed = moved;
    return 0;
}

/* ---- writing ---- */

/*
 * Queue the text's pieces (one, or two when it wraps) for offset off of
 * area m of pd into batch b, the last one zero-padded to the sector (pvck's
 * search relies on it).  text is lvm_text.h's buffer: 4096-aligned and
 * zero past len, so the first piece is written from it directly, borrowed
 * (both areas share it); the second piece of a wrapped text is copied.
 */
static int write_text(struct wbatch *b, struct pvdev *pd, const struct mda *m, uint64_t off,
                      const char *text, size_t len, struct keel_error *err)
{
    struct keel_lvm_area p[2];
    int np = keel_lvm_mda_pieces(m->h.size, off, len, p);
    size_t done = 0;

    for (int k = 0; k < np; k++) {
        size_t n = (size_t)p[k].size;
        size_t padded = KEEL_ALIGN_UP(n, KEEL_LVM_SECTOR);
        char *buf;

        if (p[k].offset + padded > m->h.size)
            padded = n;
        if (k == 0) {
            batch_add(b, pd->dev, KEEL_IO_WRITE, m->h.start + p[k].offset, (void *)text, padded,
                      false);
            done += n;
            continue;
        }
        buf = keel_aligned_alloc(4096, KEEL_ALIGN_UP(padded, 4096));
        if (buf == NULL)
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        memcpy(buf, text + done, n);
        memset(buf + n, 0, padded - n);
        batch_add(b, pd->dev, KEEL_IO_WRITE, m->h.start + p[k].offset, buf, padded, true);
        done += n;
    }
    return 0;
}

static int write_header(struct wbatch *b, struct pvdev *pd, const struct mda *m,
                        struct keel_error *err)
{
    uint8_t *sec = keel_aligned_alloc(4096, 4096);

    if (sec == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    keel_lvm_mdah_encode(&m->h, sec);
    batch_add(b, pd->dev, KEEL_IO_WRITE, m->h.start, sec, KEEL_LVM_SECTOR, true);
    return 0;
}

static int write_label(struct pvdev *pd, struct keel_error *err)
{
    uint8_t sec[KEEL_LVM_SECTOR];

    pd->pvh.sector = pd->label_sector;
    if (keel_lvm_pvh_encode(&pd->pvh, sec, err) != 0)
        return -1;
    return dev_write(pd->dev, pd->label_sector * KEEL_LVM_SECTOR, sec, sizeof(sec), err);
}

/* Before changing: the areas on storage must be what this store read (inv. 1). */
static int check_unchanged(struct keel_lvm_store *s, struct keel_error *err)
{
    bool changed = false;

    if (s->stale) {
        if (read_all(s, err) != 0)
            return -1;
        return 0;
    }
    if (keel_lvm_store_refresh(s, &changed, err) != 0)
        return -1;
    if (changed)
        return keel_error_set(err, KEEL_E_BUSY, EBUSY,
                              "VG %s: changed on storage by someone else (now seqno %u); "
                              "re-read it and try again", s->vg_name, s->vg ? s->vg->seqno : 0);
    return 0;
}

/*
 * Commit vg as the next seqno: a new VG (s->vg is then freed on success) or
 * s->vg itself, edited in place (its caller puts it back on failure).  For
 * the latter, changed (when not NULL) is the index of the only LV changed
 * in place since the last commit (SIZE_MAX: none), for
 * keel_lvm_text_format_changed().
 */
static int do_commit(struct keel_lvm_store *s, struct keel_lvm_vg *vg, const size_t *changed,
                     const char *description, struct keel_error *err)
{
    const char *text;
    size_t len = 0;
    uint64_t offs[64][KEEL_LVM_MAX_AREAS];
    struct pvdev *member[64];
    size_t nmember = 0;
    struct wbatch b;
    uint32_t crc;

    if (vg->npvs > 64)
        return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "VG %s: more than 64 PVs", vg->name);
    for (uint32_t p = 0; p < vg->npvs; p++) {
        struct pvdev *pd = NULL;

        for (size_t d = 0; d < s->ndevs; d++)
            if (s->devs[d].is_pv && strcmp(s->devs[d].pvh.pv_id, vg->pvs[p].id) == 0)
                pd = &s->devs[d];
        if (pd == NULL)
            return keel_error_set(err, KEEL_E_NOENT, ENOENT,
                                  "VG %s: the device of pv%u is not among the devices given",
                                  vg->name, p);
        for (size_t i = 0; i < pd->pvh.nmda; i++)
            if (pd->mda[i].state == MDA_BAD)
                return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                      "VG %s: %s; not writing until it is repaired "
                                      "(vgck --updatemetadata)", vg->name, pd->mda[i].err.msg);
        member[nmember++] = pd;
    }
    vg->seqno = s->vg ? s->vg->seqno + 1 : 1;
    /* Validated and formatted as keel_lvm_vg_validate() and _format() do, reusing the texts
     * of the LVs that did not change. */
    /* From here on, until the commit is done, s->vg may be put back (s->text then differs). */
    s->text_in_sync = false;
    if (changed != NULL && vg == s->vg
            ? keel_lvm_text_format_changed(s->text, vg, *changed, description, s->host,
                                           (uint64_t)time(NULL), err) != 0
            : keel_lvm_text_format(s->text, vg, description, s->host, (uint64_t)time(NULL),
                                   err) != 0)
        return -1;
    text = keel_lvm_text_get(s->text, &len, &crc); /* one text, one checksum (inv. 4) */
    /* Where the text goes in every area in use; refuse if it does not fit (inv. 1, 2). */
    for (size_t k = 0; k < nmember; k++) {
        struct pvdev *pd = member[k];

        for (size_t i = 0; i < pd->pvh.nmda; i++) {
            if (pd->mda[i].state == MDA_IGNORED)
                continue;
            if (keel_lvm_mda_next_offset(&pd->mda[i].h, len, &offs[k][i], err) != 0)
                return keel_error_prefix(err, "VG %s: %s: metadata area at %" PRIu64, vg->name,
                                         devname(pd), pd->mda[i].h.start);
        }
    }

    /* From here on, a failure leaves the cache untrusted (inv. 6). */
    s->stale = true;
    batch_init(&b);
    for (size_t k = 0; k < nmember; k++) {
        struct pvdev *pd = member[k];

        if (pd->pvh.ext_version < 2 || !(pd->pvh.ext_flags & KEEL_LVM_PV_EXT_USED)) {
            pd->pvh.ext_version = 2;
            pd->pvh.ext_flags |= KEEL_LVM_PV_EXT_USED;
            if (write_label(pd, err) != 0)
                goto fail;
        }
        for (size_t i = 0; i < pd->pvh.nmda; i++)
            if (pd->mda[i].state != MDA_IGNORED &&
                write_text(&b, pd, &pd->mda[i], offs[k][i], text, len, err) != 0)
                goto fail;
    }
    /* Every text, then every flush, each phase waiting for the one before. */
    if (batch_wait(&b, err) != 0)
        goto fail;
    for (size_t k = 0; k < nmember; k++)
        batch_add(&b, member[k]->dev, KEEL_IO_FLUSH, 0, NULL, 0, true);
    if (batch_wait(&b, err) != 0)
        goto fail;
    /* Headers: ignored areas first (only to clear a stale precommit), then the others. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < nmember; k++) {
            struct pvdev *pd = member[k];
            bool wrote = false;

            for (size_t i = 0; i < pd->pvh.nmda; i++) {
                struct mda *m = &pd->mda[i];

                if ((pass == 0) != (m->state == MDA_IGNORED))
                    continue;
                if (m->state == MDA_IGNORED) {
                    if (m->h.slot[1].size == 0 && m->h.slot[1].offset == 0)
                        continue;
                } else {
                    m->h.slot[0].offset = offs[k][i];
                    m->h.slot[0].size = len;
                    m->h.slot[0].checksum = crc;
                    m->h.slot[0].flags = 0;
                    m->state = MDA_OK;
                }
                memset(&m->h.slot[1], 0, sizeof(m->h.slot[1]));
                if (write_header(&b, pd, m, err) != 0)
                    goto fail;
                wrote = true;
            }
            (void)wrote;
        }
        /* The ignored areas' headers land before the others start (pass order). */
        if (batch_wait(&b, err) != 0)
            goto fail;
    }
    for (size_t k = 0; k < nmember; k++)
        batch_add(&b, member[k]->dev, KEEL_IO_FLUSH, 0, NULL, 0, true);
    if (batch_wait(&b, err) != 0)
        goto fail;
    batch_release(&b);
    if (s->vg != vg) {
        keel_lvm_vg_free(s->vg);
        s->vg = vg;
    }
    s->text_in_sync = true;
    s->text_size = len;
    if (s->vg_name == NULL)
        s->vg_name = strdup(vg->name);
    s->stale = false;
    keel_debug(MOD, "VG %s: committed seqno %u (%zu bytes)", vg->name, vg->seqno, len);
    return 0;
fail:
    batch_release(&b);
    return -1;
}

int keel_lvm_store_commit(struct keel_lvm_store *s, struct keel_lvm_vg *vg,
                          const char *description, struct keel_error *err)
{
    int rc;

    if (s->vg != NULL && check_unchanged(s, err) != 0) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    rc = do_commit(s, vg, NULL, description, err);
    if (rc != 0)
        keel_lvm_vg_free(vg);
    return rc;
}

/* ---- PV creation ---- */

struct pv_geom {
    uint64_t mda1_start, mda1_size, pe_start, mda2_start, mda2_size;
};

static int pv_geometry(uint64_t dev_size, const struct keel_lvm_layout *l, struct pv_geom *g,
                       const char *name, struct keel_error *err)
{
    uint64_t align = l->data_alignment ? l->data_alignment : DEFAULT_ALIGN;
    unsigned copies = l->mda_copies ? l->mda_copies : 1;

    if (copies > 2)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: at most 2 metadata areas", name);
    memset(g, 0, sizeof(*g));
    g->mda1_start = 4096;
    if (l->mda_size == 0) {
        g->pe_start = align;
        g->mda1_size = align - g->mda1_start;
    } else {
        uint64_t want = KEEL_ALIGN_UP(l->mda_size, KEEL_LVM_SECTOR);

        /* lvm rounds the end of the first area up to the data alignment. */
        g->pe_start = KEEL_ALIGN_UP(g->mda1_start + want, align);
        g->mda1_size = g->pe_start - g->mda1_start;
        if (copies == 2) {
            g->mda2_size = want;
            if (dev_size < want)
                return keel_error_set(err, KEEL_E_NOSPC, ENOSPC, "%s: device too small", name);
            g->mda2_start = dev_size - want;
        }
    }
    if (g->mda1_size < 8 * 4096)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "%s: metadata area smaller than 32 KiB",
                              name);
    if (dev_size <= g->pe_start + g->mda2_size)
        return keel_error_set(err, KEEL_E_NOSPC, ENOSPC,
                              "%s: device of %" PRIu64 " bytes too small for its metadata areas",
                              name, dev_size);
    return 0;
}

/* pvcreate: label, empty area headers. */
static int pv_create(struct pvdev *pd, const struct keel_lvm_layout *l, bool ignored,
                     struct keel_error *err)
{
    uint64_t size = keel_blockdev_size(pd->dev);
    _cleanup_free_ uint8_t *zero = keel_aligned_alloc(4096, 4096);
    struct pv_geom g;
    struct keel_lvm_pvh h;

    if (zero == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    if (pv_geometry(size, l, &g, devname(pd), err) != 0)
        return -1;
    memset(zero, 0, 4096);
    memset(&h, 0, sizeof(h));
    if (keel_lvm_id_new(h.pv_id, err) != 0)
        return -1;
    h.sector = LABEL_SECTOR;
    h.device_size = size;
    h.nda = 1;
    h.da[0].offset = g.pe_start;
    h.nmda = g.mda2_size ? 2 : 1;
    h.mda[0] = (struct keel_lvm_area){ g.mda1_start, g.mda1_size };
    h.mda[1] = (struct keel_lvm_area){ g.mda2_start, g.mda2_size };
    h.ext_version = 2;
    /* Sectors 0-7 (an old label anywhere in 0-3 must go), then the areas, the label last. */
    if (dev_write(pd->dev, 0, zero, 4096, err) != 0)
        return -1;
    pd->pvh = h;
    pd->label_sector = LABEL_SECTOR;
    for (size_t i = 0; i < h.nmda; i++) {
        struct mda *m = &pd->mda[i];

        memset(m, 0, sizeof(*m));
        m->h.start = h.mda[i].offset;
        m->h.size = h.mda[i].size;
        m->h.slot[0].flags = ignored ? KEEL_LVM_RAW_LOCN_IGNORED : 0;
        m->state = ignored ? MDA_IGNORED : MDA_EMPTY;
        if (dev_write(pd->dev, m->h.start, zero, 4096, err) != 0)
            return -1;
        {
            uint8_t sec[KEEL_LVM_SECTOR];

            keel_lvm_mdah_encode(&m->h, sec);
            if (dev_write(pd->dev, m->h.start, sec, sizeof(sec), err) != 0)
                return -1;
        }
    }
    if (write_label(pd, err) != 0 || keel_blockdev_flush(pd->dev, err) != 0)
        return -1;
    pd->is_pv = true;
    return 0;
}

/* The PV's extents: what is between pe_start and the second area (or the end). */
static uint32_t pe_count_of(const struct pvdev *pd, uint64_t extent_bytes)
{
    uint64_t end = keel_blockdev_size(pd->dev);

    for (size_t i = 0; i < pd->pvh.nmda; i++)
        if (pd->pvh.mda[i].offset > pd->pvh.da[0].offset)
            end = KEEL_MIN(end, pd->pvh.mda[i].offset);
    if (end <= pd->pvh.da[0].offset)
        return 0;
    return (uint32_t)KEEL_MIN((end - pd->pvh.da[0].offset) / extent_bytes, (uint64_t)UINT32_MAX);
}

static int add_pv_to(struct keel_lvm_vg *vg, const struct pvdev *pd, struct keel_error *err)
{
    uint64_t ext = (uint64_t)vg->extent_size * KEEL_LVM_SECTOR;
    uint32_t pe = pe_count_of(pd, ext);

    if (pe == 0)
        return keel_error_set(err, KEEL_E_NOSPC, ENOSPC, "%s: no room for one extent of %" PRIu64
                              " bytes", devname(pd), ext);
    return keel_lvm_vg_add_pv(vg, pd->pvh.pv_id, keel_blockdev_size(pd->dev) / KEEL_LVM_SECTOR,
                              pd->pvh.da[0].offset / KEEL_LVM_SECTOR, pe, err);
}

int keel_lvm_store_create(struct keel_blockdev *const *devs, size_t ndevs, const char *vg_name,
                          uint64_t extent_size, const char *const *tags, size_t ntags,
                          const struct keel_lvm_create_opts *opts, struct keel_lvm_store **ret,
                          struct keel_error *err)
{
    struct keel_lvm_create_opts o = { .layout = KEEL_LVM_LAYOUT_DEFAULT };
    struct keel_lvm_store *s;
    struct keel_lvm_vg *vg = NULL;

    if (opts != NULL)
        o = *opts;
    if (ndevs == 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL, "VG %s: no devices given", vg_name);
    if (extent_size < MiB || (extent_size & (extent_size - 1)) != 0)
        return keel_error_set(err, KEEL_E_INVAL, EINVAL,
                              "VG %s: extent size %" PRIu64 " is not a power of two of at least "
                              "1 MiB", vg_name, extent_size);
    if (keel_lvm_vg_new(vg_name, (uint32_t)(extent_size / KEEL_LVM_SECTOR), o.vg_flags,
                        o.nvg_flags, tags, ntags, &vg, err) != 0)
        return -1;
    if ((s = store_new(devs, ndevs, vg_name, o.host, err)) == NULL) {
        keel_lvm_vg_free(vg);
        return -1;
    }
    for (size_t d = 0; d < ndevs; d++) {
        /* Only the first PV's areas hold metadata, as VDSM sets it up. */
        if (pv_create(&s->devs[d], &o.layout, d > 0, err) != 0 ||
            add_pv_to(vg, &s->devs[d], err) != 0) {
            keel_lvm_vg_free(vg);
            keel_lvm_store_close(s);
            return keel_error_prefix(err, "VG %s", vg_name);
        }
    }
    if (do_commit(s, vg, NULL, "Created by keel (vgcreate)", err) != 0) {
        keel_lvm_vg_free(vg);
        keel_lvm_store_close(s);
        return -1;
    }
    *ret = s;
    return 0;
}

int keel_lvm_store_extend(struct keel_lvm_store *s, struct keel_blockdev *dev,
                          struct keel_error *err)
{
    struct keel_lvm_layout l = KEEL_LVM_LAYOUT_DEFAULT;
    struct pvdev *devs, *pd, *first = pv_of(s, 0);
    struct keel_lvm_vg *vg;

    if (check_unchanged(s, err) != 0)
        return -1;
    for (size_t d = 0; d < s->ndevs; d++)
        if (s->devs[d].dev == dev)
            return keel_error_set(err, KEEL_E_EXIST, EEXIST, "VG %s: %s is already in it",
                                  s->vg_name, keel_blockdev_name(dev));
    /* The new PV gets the areas of the first one, ignored. */
    if (first != NULL) {
        l.mda_copies = (unsigned)first->pvh.nmda;
        if (first->pvh.nmda == 2)
            l.mda_size = first->pvh.mda[1].size;
        else if (first->pvh.da[0].offset != DEFAULT_ALIGN)
            l.mda_size = first->pvh.mda[0].size;
    }
    devs = realloc(s->devs, (s->ndevs + 1) * sizeof(*devs));
    if (devs == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    s->devs = devs;
    pd = &s->devs[s->ndevs];
    memset(pd, 0, sizeof(*pd));
    pd->dev = dev;
    s->ndevs++;
    vg = keel_lvm_vg_dup(s->vg);
    if (vg == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    if (pv_create(pd, &l, true, err) != 0 || add_pv_to(vg, pd, err) != 0) {
        keel_lvm_vg_free(vg);
        s->ndevs--;
        return keel_error_prefix(err, "VG %s", s->vg_name);
    }
    return keel_lvm_store_commit(s, vg, "Write from keel: vgextend", err);
}

/* ---- one change, one commit ---- */

/*
 * The changes below edit the committed VG, s->vg, in place: a copy of the
 * whole VG per change cost as much as formatting it.  Each keeps in an
 * undo record what the change replaces -- only the LV it touches, or the
 * VG's tags -- and puts it back when the edit or its commit fails, so a
 * refused or failed change leaves keel_lvm_store_vg() as it was, as when
 * the change went to a copy.  The VG is checked against storage before the
 * edit (inv. 1), so nothing re-reads s->vg between the edit and the undo.
 *
 *   begin (re-read if stale, else KEEL_E_BUSY if storage moved)
 *     --undo record, edit s->vg--> do_commit --ok--> drop the record
 *                                            --fail--> undo_put_back
 */
enum undo_kind { UNDO_NONE, UNDO_CREATED, UNDO_LV, UNDO_REMOVED, UNDO_VG_TAGS };

struct undo {
    enum undo_kind kind;
    size_t i;                       /* UNDO_LV, UNDO_REMOVED: index of the LV */
    struct keel_lvm_lv lv;          /* UNDO_LV, UNDO_REMOVED: the LV before the change */
    struct keel_lvm_strlist tags;   /* UNDO_VG_TAGS: the VG's tags before */
    uint32_t seqno;                 /* do_commit() bumps it */
    size_t changed;                 /* the LV changed in place, or SIZE_MAX */
    char desc[300];                 /* the commit's description */
};

static int begin(struct keel_lvm_store *s, struct undo *u, const char *what, const char *name,
                 struct keel_error *err)
{
    memset(u, 0, sizeof(*u));
    /* Before the edit: name may point into s->vg, which the edit may free. */
    snprintf(u->desc, sizeof(u->desc), "Write from keel: %s %s", what, name);
    u->changed = SIZE_MAX;
    if (check_unchanged(s, err) != 0)
        return -1;
    if (s->vg == NULL)
        return keel_error_set(err, KEEL_E_NOENT, ENOENT, "VG %s: not read", s->vg_name);
    u->seqno = s->vg->seqno;
    return 0;
}

/* Keep a copy of LV i before an edit of it. */
static int undo_lv(struct keel_lvm_store *s, struct undo *u, size_t i, struct keel_error *err)
{
    if (keel_lvm_lv_copy(&u->lv, &s->vg->lvs[i]) != 0)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
    u->kind = UNDO_LV;
    u->i = i;
    u->changed = i;
    return 0;
}

static void undo_drop(struct undo *u)
{
    if (u->kind == UNDO_LV || u->kind == UNDO_REMOVED)
        keel_lvm_lv_release(&u->lv);
    keel_lvm_strlist_release(&u->tags);
    u->kind = UNDO_NONE;
}

static void undo_put_back(struct keel_lvm_store *s, struct undo *u)
{
    struct keel_lvm_vg *vg = s->vg;

    switch (u->kind) {
    case UNDO_NONE:
        break;
    case UNDO_CREATED:
        keel_lvm_lv_release(&vg->lvs[--vg->nlvs]);
        break;
    case UNDO_LV:
        keel_lvm_lv_release(&vg->lvs[u->i]);
        vg->lvs[u->i] = u->lv;
        break;
    case UNDO_REMOVED:
        /* The array kept its size when the LV left it. */
        memmove(&vg->lvs[u->i + 1], &vg->lvs[u->i], (vg->nlvs - u->i) * sizeof(vg->lvs[0]));
        vg->lvs[u->i] = u->lv;
        vg->nlvs++;
        break;
    case UNDO_VG_TAGS:
        keel_lvm_strlist_release(&vg->tags);
        vg->tags = u->tags;
        break;
    }
    vg->seqno = u->seqno;
    memset(&u->lv, 0, sizeof(u->lv));
    memset(&u->tags, 0, sizeof(u->tags));
    u->kind = UNDO_NONE;
}

/* After the edit (edit_rc): commit s->vg, or put it back. */
static int finish(struct keel_lvm_store *s, struct undo *u, int edit_rc, struct keel_error *err)
{
    /* The text cache may skip comparing the LVs only when it saw s->vg before this edit. */
    if (edit_rc != 0 ||
        do_commit(s, s->vg, s->text_in_sync ? &u->changed : NULL, u->desc, err) != 0) {
        undo_put_back(s, u);
        s->text_in_sync = false;
        return -1;
    }
    undo_drop(u);
    return 0;
}

/* The index of the LV named name in s->vg, or -1 with KEEL_E_NOENT. */
static ptrdiff_t lv_index(struct keel_lvm_store *s, const char *name, struct keel_error *err)
{
    const struct keel_lvm_lv *lv = keel_lvm_vg_find_lv(s->vg, name);

    if (lv == NULL) {
        keel_error_set(err, KEEL_E_NOENT, ENOENT, "VG %s: no LV named %s", s->vg_name, name);
        return -1;
    }
    return lv - s->vg->lvs;
}

static uint64_t to_extents(const struct keel_lvm_store *s, uint64_t bytes)
{
    uint64_t ext = (uint64_t)s->vg->extent_size * KEEL_LVM_SECTOR;

    return (bytes + ext - 1) / ext;
}

int keel_lvm_store_lv_create(struct keel_lvm_store *s, const char *name, uint64_t size,
                             const char *const *tags, size_t ntags, struct keel_error *err)
{
    struct undo u;

    if (begin(s, &u, "lvcreate", name, err) != 0)
        return -1;
    /* A refused create leaves the VG untouched (lvm_edit.h); a done one is the last LV. */
    if (keel_lvm_lv_create(s->vg, name, to_extents(s, size), tags, ntags, s->host,
                           (uint64_t)time(NULL), err) != 0)
        return -1;
    u.kind = UNDO_CREATED;
    return finish(s, &u, 0, err);
}

int keel_lvm_store_lv_resize(struct keel_lvm_store *s, const char *name, uint64_t size,
                             struct keel_error *err)
{
    struct undo u;
    uint64_t want, have;
    ptrdiff_t i;

    if (begin(s, &u, "lvresize", name, err) != 0 || (i = lv_index(s, name, err)) < 0)
        return -1;
    want = to_extents(s, size);
    have = keel_lvm_lv_extents(&s->vg->lvs[i]);
    if (want == have)
        return 0;
    snprintf(u.desc, sizeof(u.desc), "Write from keel: %s %s", want > have ? "lvextend" :
             "lvreduce", name);
    if (undo_lv(s, &u, (size_t)i, err) != 0)
        return -1;
    return finish(s, &u, want > have ? keel_lvm_lv_extend(s->vg, name, want, err)
                                     : keel_lvm_lv_reduce(s->vg, name, want, err), err);
}

int keel_lvm_store_lv_remove(struct keel_lvm_store *s, const char *name, struct keel_error *err)
{
    struct undo u;
    ptrdiff_t i;
    struct keel_lvm_vg *vg;

    if (begin(s, &u, "lvremove", name, err) != 0 || (i = lv_index(s, name, err)) < 0)
        return -1;
    /* Out of the array but kept (name may point into it) until the commit is done. */
    vg = s->vg;
    u.kind = UNDO_REMOVED;
    u.i = (size_t)i;
    u.lv = vg->lvs[i];
    memmove(&vg->lvs[i], &vg->lvs[i + 1], (vg->nlvs - (size_t)i - 1) * sizeof(vg->lvs[0]));
    vg->nlvs--;
    return finish(s, &u, 0, err);
}

int keel_lvm_store_lv_rename(struct keel_lvm_store *s, const char *name, const char *new_name,
                             struct keel_error *err)
{
    struct undo u;
    ptrdiff_t i;

    if (begin(s, &u, "lvrename", name, err) != 0 || (i = lv_index(s, name, err)) < 0 ||
        undo_lv(s, &u, (size_t)i, err) != 0)
        return -1;
    return finish(s, &u, keel_lvm_lv_rename(s->vg, name, new_name, err), err);
}

int keel_lvm_store_lv_tags(struct keel_lvm_store *s, const char *name, const char *const *add,
                           size_t nadd, const char *const *del, size_t ndel,
                           struct keel_error *err)
{
    struct undo u;
    ptrdiff_t i;

    if (begin(s, &u, "lvchange", name, err) != 0 || (i = lv_index(s, name, err)) < 0 ||
        undo_lv(s, &u, (size_t)i, err) != 0)
        return -1;
    return finish(s, &u, keel_lvm_lv_change_tags(s->vg, name, add, nadd, del, ndel, err), err);
}

int keel_lvm_store_vg_tags(struct keel_lvm_store *s, const char *const *add, size_t nadd,
                           const char *const *del, size_t ndel, struct keel_error *err)
{
    struct undo u;

    if (begin(s, &u, "vgchange", s->vg_name, err) != 0)
        return -1;
    for (size_t i = 0; i < s->vg->tags.n; i++)
        if (keel_lvm_strlist_add(&u.tags, s->vg->tags.v[i]) != 0) {
            keel_lvm_strlist_release(&u.tags);
            return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "out of memory");
        }
    u.kind = UNDO_VG_TAGS;
    return finish(s, &u, keel_lvm_vg_change_tags(s->vg, add, nadd, del, ndel, err), err);
}

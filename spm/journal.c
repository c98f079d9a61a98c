/* The SPM's journal of multi-step operations; see journal.h. */
#include "spm/journal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "metadata/journal_fmt.h"
#include "volume/vol.h"

struct slotstate {
    int newest;              /* copy (0, 1) holding the newest valid record; -1: none */
    struct keel_jrec rec;    /* that record (FREE when none) */
    bool bad;                /* neither copy valid, and not blank */
    char why[KEEL_ERR_MSG];
};

struct keel_journal {
    struct keel_sd *sd;
    struct keel_sd_region r;
    uint64_t lver, host_id, seq;
    struct slotstate slots[KEEL_JOURNAL_SLOTS];
    int cur;                 /* slot of the operation in progress, -1 */
    unsigned char *buf;
    keel_journal_handler_fn *handler;
    void *handler_opaque;
};

static const char *op_name(enum keel_sd_opkind k)
{
    switch (k) {
    case KEEL_SD_OP_VOL_CREATE: return "volume.create";
    case KEEL_SD_OP_VOL_DELETE: return "volume.delete";
    case KEEL_SD_OP_VOL_EXTEND: return "volume.extend";
    }
    return "?";
}

static int read_all(struct keel_journal *j, struct keel_error *err)
{
    unsigned char *area = keel_aligned_alloc(4096, (size_t)KEEL_JOURNAL_BYTES);

    if (area == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_blockdev_pread(j->r.dev, area, (size_t)KEEL_JOURNAL_BYTES, j->r.offset, err) != 0) {
        free(area);
        return keel_error_prefix(err, "storage domain %s: journal", keel_sd_info(j->sd)->uuid);
    }
    for (unsigned s = 0; s < KEEL_JOURNAL_SLOTS; s++) {
        struct slotstate *st = &j->slots[s];
        struct keel_jrec rec[2];
        bool ok[2];
        char what[160];

        memset(st, 0, sizeof(*st));
        st->newest = -1;
        for (int c = 0; c < 2; c++) {
            struct keel_error e = KEEL_ERROR_INIT;

            snprintf(what, sizeof(what), "storage domain %s: journal slot %u copy %d",
                     keel_sd_info(j->sd)->uuid, s, c);
            ok[c] = keel_jrec_decode(area + (2 * s + (unsigned)c) * KEEL_JREC_SIZE, what, &rec[c],
                                     &e) == 0;
            if (!ok[c])
                keel_strlcpy(st->why, e.msg, sizeof(st->why));
            else if (rec[c].seq > j->seq)
                j->seq = rec[c].seq;
        }
        if (ok[0] && (!ok[1] || rec[0].seq >= rec[1].seq))
            st->newest = 0;
        else if (ok[1])
            st->newest = 1;
        if (st->newest >= 0) {
            st->rec = rec[st->newest];
            if (st->rec.seq == 0)
                st->newest = -1; /* blank */
        } else {
            st->bad = true;
        }
    }
    free(area);
    return 0;
}

/* Write rec to slot s, in the copy that does not hold its newest record (invariant 4). */
static int write_rec(struct keel_journal *j, unsigned s, struct keel_jrec *rec, bool flush,
                     struct keel_error *err)
{
    struct slotstate *st = &j->slots[s];
    int copy = st->newest == 0 ? 1 : 0;

    rec->seq = j->seq + 1;
    rec->lver = j->lver;
    rec->host_id = j->host_id;
    if (keel_jrec_encode(rec, j->buf, err) != 0)
        return -1;
    if (keel_blockdev_pwrite(j->r.dev, j->buf, KEEL_JREC_SIZE,
                             j->r.offset + (2 * (uint64_t)s + (uint64_t)copy) * KEEL_JREC_SIZE,
                             err) != 0 ||
        (flush && keel_blockdev_flush(j->r.dev, err) != 0))
        return keel_error_prefix(err, "storage domain %s: journal slot %u",
                                 keel_sd_info(j->sd)->uuid, s);
    j->seq = rec->seq;
    st->newest = copy;
    st->rec = *rec;
    st->bad = false;
    return 0;
}

/*
 * An OPEN record whose write failed may still have reached the storage (a
 * timeout after the write landed, a failed flush): close it with DONE
 * before the slot is used again; until that succeeds the slot stays out of
 * use (and the next SPM's recovery may finish the operation it names).
 */
static void abandon(struct keel_journal *j, unsigned s, const struct keel_jrec *r)
{
    struct keel_jrec done = *r;

    done.state = KEEL_JREC_DONE;
    j->slots[s].bad = true;
    keel_strlcpy(j->slots[s].why, "an intent record whose write failed", sizeof(j->slots[s].why));
    write_rec(j, s, &done, true, NULL); /* clears bad when it lands */
}

int keel_journal_open(struct keel_sd *sd, uint64_t lver, uint64_t host_id,
                      struct keel_journal **ret, struct keel_error *err)
{
    struct keel_journal *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    j->sd = sd;
    j->lver = lver;
    j->host_id = host_id;
    j->cur = -1;
    j->buf = keel_aligned_alloc(4096, KEEL_JREC_SIZE);
    if (j->buf == NULL) {
        free(j);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    if (keel_sd_journal_open(sd, KEEL_JOURNAL_BYTES, &j->r, err) != 0 || read_all(j, err) != 0) {
        keel_sd_region_close(&j->r);
        free(j->buf);
        free(j);
        return -1;
    }
    *ret = j;
    return 0;
}

/* A slot no operation holds; -1 with err when the journal is full. */
static int free_slot(struct keel_journal *j, struct keel_error *err)
{
    for (unsigned s = 0; s < KEEL_JOURNAL_SLOTS; s++)
        if (!j->slots[s].bad && j->slots[s].rec.state != KEEL_JREC_OPEN && (int)s != j->cur)
            return (int)s;
    return keel_error_set(err, KEEL_E_NOSPC, 0, "storage domain %s: journal full (%d open "
                          "operations)", keel_sd_info(j->sd)->uuid, KEEL_JOURNAL_SLOTS);
}

int keel_journal_begin(struct keel_journal *j, struct keel_jrec *r, unsigned *slot,
                       struct keel_error *err)
{
    int s = free_slot(j, err);

    if (s < 0)
        return -1;
    r->state = KEEL_JREC_OPEN;
    r->step = 0;
    if (write_rec(j, (unsigned)s, r, true, err) != 0) {
        abandon(j, (unsigned)s, r);
        return -1;
    }
    *slot = (unsigned)s;
    return 0;
}

int keel_journal_end(struct keel_journal *j, unsigned slot, struct keel_error *err)
{
    struct keel_jrec rec = j->slots[slot].rec;

    rec.state = KEEL_JREC_DONE;
    return write_rec(j, slot, &rec, true, err);
}

void keel_journal_set_handler(struct keel_journal *j, keel_journal_handler_fn *fn, void *opaque)
{
    j->handler = fn;
    j->handler_opaque = opaque;
}

int keel_journal_note(void *journal, const struct keel_sd_op *op, struct keel_error *err)
{
    struct keel_journal *j = journal;
    struct keel_jrec rec = { 0 };
    char slot[16], cap[32];

    if (op->step == 0) {
        int s = free_slot(j, err);

        if (s < 0)
            return -1;
        rec.state = KEEL_JREC_OPEN;
        keel_strlcpy(rec.op, op_name(op->kind), sizeof(rec.op));
        snprintf(slot, sizeof(slot), "%d", op->slot);
        snprintf(cap, sizeof(cap), "%" PRIu64, op->capacity);
        if (keel_jrec_add_arg(&rec, "volume", op->vol, err) != 0 ||
            keel_jrec_add_arg(&rec, "image", op->image, err) != 0 ||
            keel_jrec_add_arg(&rec, "parent", op->parent, err) != 0 ||
            keel_jrec_add_arg(&rec, "slot", slot, err) != 0 ||
            keel_jrec_add_arg(&rec, "illegal", op->illegal ? "1" : "0", err) != 0 ||
            (op->kind == KEEL_SD_OP_VOL_EXTEND &&
             keel_jrec_add_arg(&rec, "capacity", cap, err) != 0))
            return -1;
        /* Invariant 1: a create's commit flushes first; others write it at once. */
        if (write_rec(j, (unsigned)s, &rec, op->kind != KEEL_SD_OP_VOL_CREATE, err) != 0) {
            abandon(j, (unsigned)s, &rec);
            return -1;
        }
        j->cur = s;
        return 0;
    }
    if (j->cur < 0)
        return 0; /* attached in the middle of an operation */
    if (op->done) {
        rec = j->slots[j->cur].rec;
        rec.state = KEEL_JREC_DONE;
        rec.step = op->step;
        if (write_rec(j, (unsigned)j->cur, &rec, true, err) != 0) /* invariant 2 */
            return -1;
        j->cur = -1;
    } else {
        j->slots[j->cur].rec.step = op->step;
    }
    return 0;
}

void keel_journal_attach(struct keel_journal *j)
{
    keel_sd_set_step_hook(j->sd, keel_journal_note, j);
}

static void report(struct keel_journal_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(struct keel_journal_report *rep, const char *fmt, ...)
{
    va_list ap;

    if (rep->nlines >= 8)
        return;
    va_start(ap, fmt);
    vsnprintf(rep->lines[rep->nlines++], sizeof(rep->lines[0]), fmt, ap);
    va_end(ap);
}

/* Finish or roll back the operation of one OPEN record (invariant 3). */
static int settle(struct keel_journal *j, const struct keel_jrec *r, bool *rolled_back,
                  struct keel_error *err)
{
    char vol[64], img[64], parent[64];
    struct keel_vol_entry e;
    struct keel_error e2 = KEEL_ERROR_INIT;
    int found;

    if (strncmp(r->op, "volume.", 7) != 0) {
        if (j->handler == NULL)
            return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "unknown operation %s", r->op);
        return j->handler(j->handler_opaque, r, rolled_back, err);
    }
    if (keel_jrec_arg(r, "volume", vol, sizeof(vol)) == NULL || !keel_uuid_valid(vol) ||
        keel_jrec_arg(r, "image", img, sizeof(img)) == NULL || !keel_uuid_valid(img) ||
        keel_jrec_arg(r, "parent", parent, sizeof(parent)) == NULL || !keel_uuid_valid(parent))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s record without its volume, image and "
                              "parent", r->op);
    found = keel_vol_info(j->sd, vol, &e, &e2) == 0;
    if (!found && e2.code != KEEL_E_NOENT)
        return keel_error_copy(err, &e2);
    if (strcmp(r->op, "volume.create") == 0) {
        *rolled_back = !(found && e.has_md && e.md.legality == KEEL_VOL_LEGAL);
        if (*rolled_back && found && keel_vol_delete(j->sd, vol, true, err) != 0)
            return -1;
        if (*rolled_back && !keel_sd_is_block(j->sd)) {
            /* An image directory the create made and left empty. */
            char dir[128];

            snprintf(dir, sizeof(dir), "%s/images/%s", keel_sd_root(j->sd), img);
            keel_fs_rmdir(keel_sd_fs(j->sd), dir, NULL);
        }
        return 0;
    }
    if (strcmp(r->op, "volume.extend") == 0) {
        char cap[32];
        uint64_t c;

        *rolled_back = false;
        if (keel_jrec_arg(r, "capacity", cap, sizeof(cap)) == NULL ||
            keel_parse_u64(cap, &c) != 0)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "volume.extend record without its "
                                  "capacity");
        /* Grown again to the same size is a no-op; then the metadata follows. */
        if (found && e.has_md && e.md.capacity < c)
            return keel_vol_extend(j->sd, vol, c, err);
        return 0;
    }
    if (strcmp(r->op, "volume.delete") == 0) {
        *rolled_back = false;
        if (found && keel_vol_delete(j->sd, vol, true, err) != 0)
            return -1;
        if (strcmp(parent, KEEL_BLANK_UUID) != 0 && keel_vol_settle_parent(j->sd, parent, err) != 0)
            return -1;
        return 0;
    }
    return keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "unknown operation %s", r->op);
}

int keel_journal_recover(struct keel_journal *j, struct keel_journal_report *rep,
                         struct keel_error *err)
{
    int rc = 0;

    memset(rep, 0, sizeof(*rep));
    keel_sd_set_step_hook(j->sd, NULL, NULL); /* recovery itself is idempotent, not journalled */
    for (unsigned s = 0; s < KEEL_JOURNAL_SLOTS && rc == 0; s++) {
        struct slotstate *st = &j->slots[s];
        struct keel_jrec rec;
        char vol[64] = "";
        bool back = false;

        if (st->bad) {
            rep->bad++;
            report(rep, "slot %u: %s", s, st->why);
            continue;
        }
        if (st->rec.state != KEEL_JREC_OPEN)
            continue;
        rec = st->rec;
        if (keel_jrec_arg(&rec, "volume", vol, sizeof(vol)) == NULL)
            keel_jrec_arg(&rec, "domain", vol, sizeof(vol));
        if (settle(j, &rec, &back, err) != 0) {
            keel_error_prefix(err, "storage domain %s: journal slot %u: %s %s",
                              keel_sd_info(j->sd)->uuid, s, rec.op, vol);
            rc = -1;
            break;
        }
        report(rep, "%s %s: %s (begun by host %" PRIu64 " with lver %" PRIu64 ")", rec.op, vol,
               back ? "rolled back" : "finished", rec.host_id, rec.lver);
        if (back)
            rep->rolled_back++;
        else
            rep->finished++;
        rec.state = KEEL_JREC_DONE;
        if (write_rec(j, s, &rec, true, err) != 0)
            rc = -1;
    }
    return rc;
}

void keel_journal_close(struct keel_journal *j)
{
    if (j == NULL)
        return;
    keel_sd_set_step_hook(j->sd, NULL, NULL);
    keel_sd_region_close(&j->r);
    free(j->buf);
    free(j);
}

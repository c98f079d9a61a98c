/*
 * struct keel_journal: the SPM's journal of multi-step operations on one
 * domain, in the domain's keel_journal area (record format:
 * metadata/journal_fmt.h; docs/journal.md).
 *
 * Installed as the domain's step hook (keel_sd_set_step_hook), it writes
 * an OPEN record -- the operation, its volume, image, parent and slot,
 * stamped with the SPM's lver and host id -- before the operation's first
 * change reaches storage, and a DONE record after its last step.  A new
 * SPM calls keel_journal_recover() before it accepts work: every OPEN
 * record a previous SPM left is finished or rolled back.
 *
 * Invariants:
 *   1. The OPEN record is durable before the first change others can see:
 *      for volume.create the LVM commit (its pre-header flush covers the
 *      record; the payload and slot written before it lie in extents and a
 *      slot no LV names); for other operations it is flushed at once.
 *   2. DONE is flushed before the operation returns: an OPEN record means
 *      the operation may be anywhere between its first and last step.
 *   3. Recovery rolls a create back (deletes whatever exists of the
 *      volume, which also makes its parent a LEAF again) unless it was
 *      LEGAL already (then it was complete); it rolls a delete and an
 *      extend forward (growing a payload to the size it has is a no-op).
 *      Both are idempotent, so a crash during recovery is recovered again.
 *   4. A slot is used by one operation at a time; each record write goes
 *      to the copy that does not hold the slot's newest valid record.
 *
 * Not thread-safe: one per domain handle, used by the SPM's thread.
 */
#ifndef KEEL_SPM_JOURNAL_H
#define KEEL_SPM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "volume/sd.h"

#define KEEL_JOURNAL_SLOTS 256
/* Bytes of the area the journal uses: two 4 KiB copies per slot. */
#define KEEL_JOURNAL_BYTES ((uint64_t)KEEL_JOURNAL_SLOTS * 2 * 4096)

struct keel_journal;

/*
 * Open sd's journal as the SPM holding lease version lver as host_id
 * (records are stamped with both).  Reads every slot; a record that fails
 * its checksum in both copies is reported by recover, not here.
 */
int keel_journal_open(struct keel_sd *sd, uint64_t lver, uint64_t host_id,
                      struct keel_journal **ret, struct keel_error *err);

struct keel_journal_report {
    unsigned finished, rolled_back, bad;
    char lines[8][200];      /* the first few: "volume.create <vol>: rolled back (...)" */
    unsigned nlines;
};

/* Finish or roll back every OPEN record (invariant 3). */
int keel_journal_recover(struct keel_journal *j, struct keel_journal_report *rep,
                         struct keel_error *err);

/*
 * Operations outside volume/ (pool changes, spm/pool.h) journal
 * themselves: begin writes r (its op and args; state, seq, lver and host
 * are filled in) OPEN and flushed, and gives its slot; end marks it DONE.
 */
struct keel_jrec;
int keel_journal_begin(struct keel_journal *j, struct keel_jrec *r, unsigned *slot,
                       struct keel_error *err);
int keel_journal_end(struct keel_journal *j, unsigned slot, struct keel_error *err);

/*
 * Recovery of operations journal.c does not know (not volume.*): the
 * handler finishes or rolls back r (idempotently) and says which, or
 * fails with KEEL_E_UNSUPPORTED when r is not its own.
 */
typedef int keel_journal_handler_fn(void *opaque, const struct keel_jrec *r, bool *rolled_back,
                                    struct keel_error *err);
void keel_journal_set_handler(struct keel_journal *j, keel_journal_handler_fn *fn, void *opaque);

/* The step hook; keel_journal_attach() installs it on the domain. */
int keel_journal_note(void *journal, const struct keel_sd_op *op, struct keel_error *err);
void keel_journal_attach(struct keel_journal *j);

/* Detach from the domain and free. */
void keel_journal_close(struct keel_journal *j);

#endif /* KEEL_SPM_JOURNAL_H */

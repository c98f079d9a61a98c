/*
 * The faulty backend: a block device or file system that wraps another one
 * and injects crashes, I/O errors and short reads, so that the code above
 * io/ (LVM2 metadata, storage domains, the SPM) can prove it survives them.
 * After SQLite's test6.c crash simulator.
 *
 *     struct keel_fault_plan plan = { .crash_at = k, .tear = KEEL_TEAR_PREFIX };
 *     keel_blockdev_open("file:///tmp/t/disk.img", NULL, &disk, &err);
 *     keel_faulty_blockdev(disk, &plan, &dev, &ctl, &err);   dev owns disk
 *     run_the_operation(dev);                                 fails at write k
 *     keel_blockdev_close(dev);                               closes disk too
 *     ... reopen the storage unwrapped and check it rolls forward or back
 *
 * Run the operation once with an unarmed plan (all zero) first:
 * keel_faulty_writes() then tells how many crash points N it has, and the
 * test loops k = 1..N.
 *
 * What counts as a write (the unit of crash_at):
 *   block device: WRITE, WRITE_ZEROES, DISCARD (not READ, not FLUSH);
 *   file system:  file WRITE, WRITE_ZEROES, DISCARD, TRUNCATE; MKDIR,
 *                 RMDIR, UNLINK, RENAME, and OPEN with KEEL_O_CREAT or
 *                 KEEL_O_TRUNC.
 * One request of the caller is one write, however large: the wrapper never
 * splits it (the inner device may, below the fault point).
 *
 * Faults are decided when a request is submitted, in submission order, by
 * three stages; a request failed by one stage is not counted by the later
 * ones:
 *   1. eio_at:        the n-th request whose op is in eio_ops fails with
 *                     KEEL_E_IO and is not applied;
 *   2. short_read_at: the n-th READ is short;
 *   3. crash_at:      the k-th write crashes the device.
 *
 * Error messages name the wrapper, "faulty:<inner name>":
 *   faulty:file:///tmp/t/disk.img: injected crash at write 3
 *   faulty:file:///tmp/t/disk.img: dead after the injected crash at write 3
 *   faulty:file:///tmp/t/disk.img: injected I/O error
 *   faulty:file:///tmp/t/disk.img: injected short read: 2048 of 4096 bytes
 * Errors of the inner storage pass through unchanged.
 *
 * Threads: requests may be submitted from any thread, as to any device.
 * Requests the wrapper fails or buffers complete on its own thread, never
 * inside submit; pass-through requests complete on the inner storage's
 * thread.  While writes are buffered every request, namespace calls too,
 * waits its turn on that one thread: do not make synchronous calls to the
 * wrapper from a completion callback (ioreq.h forbids blocking there).
 * keel_faulty_arm() must be called while no request of the wrapper is in
 * flight and never from a completion callback; the other controller
 * functions may be called at any time.
 */
#ifndef KEEL_IO_FAULTY_H
#define KEEL_IO_FAULTY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "io/ioreq.h"

/*
 * What a crash does to the crashing write (and, with buffer_writes, to the
 * writes not flushed yet).  The unit of tearing is the 512-byte sector (the
 * logical block size when larger); a file write is cut in 512-byte pieces
 * from the start of the request, the last piece possibly shorter.
 */
enum keel_tear {
    KEEL_TEAR_DROP,    /* the crashing write is not applied at all */
    KEEL_TEAR_FULL,    /* the crashing write is applied whole, then the device is dead */
    KEEL_TEAR_PREFIX,  /* the first n/2 of its n sectors are applied (none of 1, one of 2 or 3) */
    KEEL_TEAR_RANDOM,  /* a random subset of its sectors (seeded) is applied */
};

/*
 * A fault plan; all zero is "unarmed": nothing is injected, writes are only
 * counted.  Counters start when the plan is given (wrap or arm).
 */
struct keel_fault_plan {
    /*
     * 0: never.  k: writes 1..k-1 pass, write k is the crashing write (torn
     * by `tear`) and fails with KEEL_E_FAULT, and every later request (reads
     * too) fails with KEEL_E_FAULT.  A namespace call or a TRUNCATE that
     * crashes is either applied (FULL, or RANDOM by a coin from the seed) or
     * not (DROP, PREFIX).
     */
    unsigned crash_at;
    enum keel_tear tear;
    /*
     * Writes stay in memory until a FLUSH (block device: all of them; file:
     * those of that file) and reads see them.  A crash then applies the
     * unflushed writes, the crashing one last, by `tear`: DROP none, FULL all,
     * PREFIX the first n/2 of the n writes in order (whole), RANDOM every
     * sector of every write by a coin (so any subset of the writes, each
     * torn at sector granularity).  Namespace calls and writes to files
     * opened with KEEL_O_SYNC are durable when they return, as fs.h
     * promises: they are never buffered.  Unflushed writes are applied
     * when the plan is re-armed, and when the device or file system is
     * closed without a crash (a clean shutdown).
     */
    bool buffer_writes;
    /*
     * Fail the n-th request whose op is in eio_ops with KEEL_E_IO (sys_errno
     * EIO); 0 = never.  The request is not applied.  eio_ops is a mask of
     * (1u << enum keel_io_op); 0 means every request, namespace calls of a
     * file system included (but never a file's CLOSE).
     */
    unsigned eio_at;
    unsigned eio_ops;
    /*
     * The n-th READ is short, 0 = never: a file read gets req->xfer = len/2
     * (the data of that first half is correct); a block device read fails
     * with KEEL_E_SHORT.
     */
    unsigned short_read_at;
    uint32_t seed;          /* of the coins of KEEL_TEAR_RANDOM */
};

/* The controller of a wrapper: its plan, counters and state. */
struct keel_faulty;

/*
 * Wrap a block device.  The wrapper owns inner from this call on, failure
 * included: closing the wrapper (or a failed wrap) closes inner.  plan NULL
 * is the unarmed plan (copied).  *ret is freed with keel_blockdev_close().
 * ctl may be NULL; *ctl is owned by the wrapper and valid until it is
 * closed.  The geometry (size, block size) is the inner device's.
 * Fails with KEEL_E_INVAL for an unknown tear mode, KEEL_E_NOMEM.
 */
int keel_faulty_blockdev(struct keel_blockdev *inner, const struct keel_fault_plan *plan,
                         struct keel_blockdev **ret, struct keel_faulty **ctl,
                         struct keel_error *err);

/*
 * Wrap a file system likewise: the wrapper owns inner (failure included),
 * *ret is freed with keel_fs_close(), *ctl lives as long as the wrapper.
 * Files are opened through the wrapper; each holds a file of inner.  The
 * size a STAT or FSTAT reports includes buffered writes.
 */
int keel_faulty_fs(struct keel_fs *inner, const struct keel_fault_plan *plan,
                   struct keel_fs **ret, struct keel_faulty **ctl, struct keel_error *err);

/*
 * Re-arm with a new plan (copied; NULL: unarmed): the unflushed buffered
 * writes are first applied, as if flushed (errors ignored), the counters
 * reset (counting starts now), and a crashed device is alive again.  An
 * unknown tear mode behaves as KEEL_TEAR_DROP.  No request may be in
 * flight; not from a completion callback.
 */
void keel_faulty_arm(struct keel_faulty *ctl, const struct keel_fault_plan *plan);

/* Writes submitted since the plan was given, the crashing one included. */
unsigned keel_faulty_writes(const struct keel_faulty *ctl);

/* True from the crashing write's submission until the next arm. */
bool keel_faulty_crashed(const struct keel_faulty *ctl);

/*
 * ---- Internal to io/: shared by faulty.c and faulty-fs.c only. ----
 *
 * The controller (faulty.c) decides every fault, keeps the list of buffered
 * ("pending") writes and knows how a crash tears them; a wrapper (the block
 * device in faulty.c, the file system in faulty-fs.c) tells it how to apply
 * a piece of a write to the inner storage.
 */

/* What the controller decided for a request. */
enum keel_fault_act {
    KEEL_FA_PASS,   /* no fault: pass through, or buffer */
    KEEL_FA_EIO,    /* injected I/O error */
    KEEL_FA_SHORT,  /* injected short read */
    KEEL_FA_CRASH,  /* this write crashes the device */
    KEEL_FA_DEAD,   /* the device crashed earlier */
    KEEL_FA_APPLY,  /* internal: apply every pending write (arm) */
};

/* The decision, kept in req->priv.be_scratch while the worker has req. */
struct keel_fault_tag {
    enum keel_fault_act act;
    unsigned write_no;    /* CRASH, DEAD: number of the crashing write */
    bool buffered;        /* the plan buffers writes */
    void *file;           /* file-system wrapper: its file of a data request */
};

/* A write not yet applied to the inner storage. */
struct keel_fault_pending {
    struct keel_fault_pending *next;
    enum keel_io_op op;   /* WRITE, WRITE_ZEROES, DISCARD or TRUNCATE (to offset) */
    uint64_t offset;
    size_t len;
    void *file;           /* the wrapper's file (NULL for a block device) */
    const unsigned char *buf; /* WRITE: len bytes (data below, or the request's buffer) */
    unsigned char data[];
};

struct keel_fault_backend {
    /*
     * Apply bytes [rel, rel + len) of p to the inner storage (TRUNCATE:
     * the whole of it).  Called on the worker thread, or at close.
     */
    int (*apply)(void *be, const struct keel_fault_pending *p, uint64_t rel, size_t len,
                 struct keel_error *err);
    /* p leaves the pending list (applied or lost); may be NULL. */
    void (*forget)(void *be, struct keel_fault_pending *p);
};

/* Which pending writes a flush or a read concerns; NULL matches all. */
typedef bool keel_fault_match_fn(const struct keel_fault_pending *p, const void *arg);

/*
 * Make a controller for wrapper be (name copied), with tear unit `unit`
 * bytes and one worker thread, which runs run(be, req) for every request
 * pushed to it but the controller's own (KEEL_FA_APPLY).  NULL on failure.
 */
struct keel_faulty *keel_faulty__new(const char *name, const struct keel_fault_backend *ops,
                                     void *be, size_t unit, const struct keel_fault_plan *plan,
                                     void (*run)(void *be, struct keel_ioreq *req));
/* Check a plan given to a wrap: KEEL_E_INVAL for an unknown tear mode. */
int keel_faulty__check_plan(const char *name, const struct keel_fault_plan *plan,
                            struct keel_error *err);
/* Finish the worker's queue, stop it, then apply the pending writes. */
void keel_faulty__stop(struct keel_faulty *ctl);
/* Free a stopped controller.  NULL is accepted. */
void keel_faulty__free(struct keel_faulty *ctl);
const char *keel_faulty__name(const struct keel_faulty *ctl);
bool keel_faulty__buffered(struct keel_faulty *ctl);

/* Decide the fault of a request of op (KEEL_IO_FS_OP: a namespace call). */
void keel_faulty__decide(struct keel_faulty *ctl, enum keel_io_op op, bool is_write,
                         struct keel_fault_tag *t);
/* The tag of a request on the worker. */
struct keel_fault_tag *keel_faulty__tag(struct keel_ioreq *req);
/* Hand req, with tag t, to the worker; done() follows there. */
void keel_faulty__push(struct keel_faulty *ctl, struct keel_ioreq *req,
                       const struct keel_fault_tag *t);
/* Run req with tag t on the worker and wait: returns req->result, copies req->err. */
int keel_faulty__run_on_worker(struct keel_faulty *ctl, struct keel_ioreq *req,
                               const struct keel_fault_tag *t, struct keel_error *err);
/* Set req's outcome (rc 0 or -1, with e) and call done(). */
void keel_faulty__complete(struct keel_ioreq *req, int rc, size_t xfer,
                           const struct keel_error *e);
/* Fill err for act EIO, CRASH or DEAD; returns -1. */
int keel_faulty__fail(struct keel_faulty *ctl, const struct keel_fault_tag *t,
                      struct keel_error *err);

/*
 * The crash: apply the pending writes and then `last` (the crashing write,
 * not in the list; may be NULL) by the plan's tear, and empty the list.
 * buffered selects the rules of buffer_writes.  Errors of the inner
 * storage are ignored: the crash is what gets reported.
 */
void keel_faulty__crash(struct keel_faulty *ctl, const struct keel_fault_pending *last,
                        bool buffered);
/* Does a crashing namespace call take effect?  FULL yes, RANDOM a coin. */
bool keel_faulty__crash_applies(struct keel_faulty *ctl);

/* Append a copy of a write; the entry is returned (borrowed), NULL on ENOMEM. */
struct keel_fault_pending *keel_faulty__pending_add(struct keel_faulty *ctl, enum keel_io_op op,
                                                    uint64_t offset, size_t len,
                                                    const void *buf, void *file);
/* Apply the matching pending writes in order; stops at the first error. */
int keel_faulty__flush(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                       struct keel_error *err);
/*
 * Lay the matching pending writes over buf, which holds `got` bytes read
 * from the inner storage at offset (the rest is past its end).  Returns
 * how many bytes of the len the read gives.
 */
size_t keel_faulty__overlay(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                            void *buf, uint64_t offset, size_t len, size_t got);
/* The size of a file of inner size `size` once its matching writes are applied. */
uint64_t keel_faulty__size(struct keel_faulty *ctl, keel_fault_match_fn *match, const void *arg,
                           uint64_t size);

#endif /* KEEL_IO_FAULTY_H */

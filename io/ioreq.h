/*
 * struct keel_ioreq: one asynchronous I/O request, owned by the caller.
 *
 * The caller fills the public fields, hands the request to
 * keel_blockdev_submit() or keel_file_submit(), and must keep it (and buf)
 * alive and untouched until done() has been called.  done() is called exactly
 * once, on an I/O thread of io/, for every request that was accepted by
 * submit; it must not block and may submit new requests.
 *
 * Ordering: io/ starts overlapping requests of one device or file in
 * submission order whenever at least one of them writes, and a FLUSH covers
 * every write submitted before it.  So of two overlapping writes, the one
 * submitted later is the one the storage holds, even across a reconnect;
 * non-overlapping requests run in any order, many at once.
 */
#ifndef KEEL_IO_IOREQ_H
#define KEEL_IO_IOREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/error.h"

enum keel_io_op {
    KEEL_IO_READ,         /* len bytes at offset into buf */
    KEEL_IO_WRITE,        /* len bytes from buf at offset */
    KEEL_IO_FLUSH,        /* make every earlier acknowledged write durable */
    KEEL_IO_DISCARD,      /* offset/len may read back as anything; advisory */
    KEEL_IO_WRITE_ZEROES, /* offset/len reads back as zeroes */
    KEEL_IO_TRUNCATE,     /* files only: set the size to offset */
    KEEL_IO_BLOCK_STATUS, /* block devices only: what the storage holds at offset (at most
                           * len bytes); buf is a struct keel_io_status, filled */
    KEEL_IO__NR_DATA_OPS,
    /* File-system namespace operations: used inside io/ only. */
    KEEL_IO_FS_OP = 100,
};

/*
 * The answer of KEEL_IO_BLOCK_STATUS: the first `len` bytes (> 0, <= the
 * request's len) from the request's offset are all of one kind.  zero:
 * they read as zeroes without being stored (a deallocated range of a thin
 * LUN that reads zeroes, a hole of a file); otherwise they may hold data.
 */
struct keel_io_status {
    uint64_t len;
    bool zero;
};

struct keel_ioreq;
typedef void keel_ioreq_done_fn(struct keel_ioreq *req);

/* io/'s bookkeeping of a request; callers never touch it. */
struct keel_ioreq_priv {
    struct keel_ioreq *next, *prev; /* the engine list it is in */
    struct keel_ioreq *cnext;       /* the queue of worker completions */
    void *owner;               /* device or file the request belongs to */
    uint64_t seq;              /* submission order */
    uint64_t submit_ns;
    uint64_t deadline_ns;      /* the request fails with a timeout after this */
    uint64_t not_before_ns;    /* retry delay after BUSY / UNIT ATTENTION */
    uint64_t session;          /* session generation it was started on */
    unsigned attempts;         /* times started */
    int state;
    int outcome;
    const void *fsarg;         /* namespace operation arguments */
    void *be_task;             /* backend handle of the started request */
    max_align_t be_scratch[2]; /* backend storage (an iovec, ...) */
};

struct keel_ioreq {
    /* in */
    enum keel_io_op op;
    uint64_t offset;
    size_t len;
    void *buf;
    keel_ioreq_done_fn *done;
    void *opaque;               /* for the caller */
    /* out, valid in done() */
    int result;                 /* 0 or -1 */
    size_t xfer;                /* bytes transferred; a file read can be short at EOF */
    struct keel_error err;
    /* io/ internal */
    struct keel_ioreq_priv priv;
};

const char *keel_io_op_name(enum keel_io_op op);

#endif /* KEEL_IO_IOREQ_H */

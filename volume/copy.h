/*
 * Keel's copy engine: copy a volume, or a whole chain collapsed into one,
 * from any block view to any other through io/ -- an LV inside a LUN, a
 * file on NFS or POSIX -- without qemu-img.
 *
 *   source chain (top first)        resolve each range from the top down:
 *     qcow2 top  ──unallocated──▶   the first layer that has it decides;
 *     qcow2 mid  ──unallocated──▶   past a layer's size, or below the last
 *     raw base                      one: zeroes
 *
 * Data ranges are read and written with many requests in flight (a read's
 * completion starts its write; writes land out of order); zero ranges are
 * skipped when the destination already reads as zeroes (a new sparse file)
 * and written as zeroes otherwise (an LV may hold an old volume's bytes).
 * Zeroes in what was read count as zero ranges: a raw layer's holes, a
 * qcow2 data cluster of zeroes (4 KiB blocks, runs of 64 KiB or more, into
 * raw; whole clusters into qcow2).
 * Progress is reported between requests; a cancel flag stops new requests
 * and waits for those in flight.  Optionally the destination is read back
 * and compared with the source.
 *
 * Destinations: raw, or a new qcow2 image, collapsing the chain; or one
 * layer as its own qcow2 image, which copies a chain layer by layer.
 */
#ifndef KEEL_VOLUME_COPY_H
#define KEEL_VOLUME_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

#define KEEL_COPY_MAX_LAYERS 64

struct keel_copy_layer {
    struct keel_blockdev *dev;
    uint64_t offset, size;    /* the layer's bytes on dev: an LV's extent, a file */
    bool qcow2;               /* else raw */
};

struct keel_copy_dst {
    struct keel_blockdev *dev;
    uint64_t offset, size;    /* size >= the source's virtual size */
    bool reads_zero;          /* zero ranges need no writing (a new sparse file) */
};

typedef void keel_copy_progress_fn(void *opaque, uint64_t done, uint64_t total);

struct keel_copy_opts {
    unsigned inflight;        /* requests at once; 0: 16 */
    size_t chunk;             /* bytes per request; 0: 1 MiB */
    keel_copy_progress_fn *progress;
    void *opaque;
    const int *cancel;        /* set (non-zero) from another thread to stop */
    bool verify;              /* read the destination back and compare */
};

struct keel_copy_stats {
    uint64_t size;            /* virtual size copied */
    /* Bytes written as data, written as zeroes, left as they were.  Zeroes found in
     * what was read are zeroed or skipped, not data; into qcow2, data is the guest
     * bytes of the data clusters written and skipped the rest. */
    uint64_t data, zeroed, skipped;
    /* Bytes read from the source's storage: what the chain and the storage's block
     * status could not tell to be zeroes. */
    uint64_t read;
};

/*
 * Copy the chain layers[0..n) (layers[0] the top; its virtual size is the
 * copy's) collapsed into raw bytes at dst.  Each read is looked at in 4
 * KiB blocks aligned in the guest: a run of zero blocks of at least 64
 * KiB (or the whole read) is skipped when dst->reads_zero and written as
 * zeroes otherwise; a shorter one is written with the data around it.
 * KEEL_E_CANCELLED when
 * cancelled; KEEL_E_CORRUPT when verify finds a difference (naming the
 * first differing offset).  The destination is flushed at the end.
 */
int keel_copy_to_raw(const struct keel_copy_layer *layers, size_t n,
                     const struct keel_copy_dst *dst, const struct keel_copy_opts *opts,
                     struct keel_copy_stats *stats, struct keel_error *err);

/*
 * Copy the chain collapsed into a new qcow2 image (compat 1.1, 64 KiB
 * clusters, no backing file) at dst: laid out sequentially -- header,
 * refcount table, first refcount block, L1 table as qemu-img create makes
 * them, then the L2 tables, the data clusters in guest order, any further
 * refcount blocks; zero and unallocated ranges take no cluster, nor does a
 * cluster that reads as zeroes (it stays unallocated).  The header is
 * written last, after a flush, so a copy cut short is no image.  dst->size
 * must hold keel_copy_measure_qcow2() bytes.  Requests go one chunk at a
 * time.
 */
int keel_copy_to_qcow2(const struct keel_copy_layer *layers, size_t n,
                       const struct keel_copy_dst *dst, const struct keel_copy_opts *opts,
                       struct keel_copy_stats *stats, struct keel_error *err);

/*
 * The bytes keel_copy_to_qcow2() may write for this chain (measure): an
 * upper bound, exact unless clusters with data hold only zeroes (those are
 * found when read, and left out).
 */
int keel_copy_measure_qcow2(const struct keel_copy_layer *layers, size_t n, uint64_t *bytes,
                            struct keel_error *err);

/*
 * Copy one layer as its own qcow2 image over `backing_file` (NULL for a
 * base; oVirt writes the bare parent UUID) -- what a chain-preserving copy
 * does layer by layer, bottom first: its data clusters, and its zero
 * clusters kept as zero clusters (they hide the backing file's data);
 * what it does not have stays unallocated.  A data cluster that holds only
 * zeroes becomes a zero cluster over a backing file (it must hide the
 * backing data too) and stays unallocated without one.  The layer must be
 * qcow2 with 64 KiB clusters (or raw: all of it is data).  opts->verify is
 * ignored (compare the chains instead).  Measure: as keel_copy_measure_qcow2().
 */
int keel_copy_layer_to_qcow2(const struct keel_copy_layer *layer, const char *backing_file,
                             const char *backing_format, const struct keel_copy_dst *dst,
                             const struct keel_copy_opts *opts, struct keel_copy_stats *stats,
                             struct keel_error *err);
int keel_copy_measure_layer_qcow2(const struct keel_copy_layer *layer, uint64_t *bytes,
                                  struct keel_error *err);

/*
 * Compare the guest bytes [0, size) of two chains (each top first), read
 * through the same resolution as a copy: 0 when equal, KEEL_E_CORRUPT
 * naming the first differing offset.  How a chain-preserving copy is
 * verified: the destination chain up to a layer against the source's.
 */
int keel_copy_compare(const struct keel_copy_layer *a, size_t na, const struct keel_copy_layer *b,
                      size_t nb, uint64_t size, struct keel_error *err);

#endif /* KEEL_VOLUME_COPY_H */

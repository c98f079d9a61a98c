/*
 * The linear backend: a block device made of an ordered list of segments,
 * each a byte range of another open block device, laid end to end -- what
 * device-mapper's "linear" target does, in user space.  A block volume
 * whose LV has several segments, possibly on several LUNs, is read and
 * written through one (volume/vol.h, keel_vol_payload_open).
 *
 *     struct keel_linear_seg segs[] = {
 *         { lun1, 3 * EXT, 2 * EXT },   bytes [0, 2 EXT) of the device
 *         { lun2, 0,       5 * EXT },   bytes [2 EXT, 7 EXT)
 *     };
 *     keel_linear_blockdev("linear:vg/lv", segs, 2, &dev, &err);
 *
 * Requests (READ, WRITE, FLUSH, DISCARD, WRITE_ZEROES; synchronous or
 * through keel_blockdev_submit) are cut at segment boundaries and each
 * part is submitted to its segment's device, in order; the request
 * completes when every part has, with the error of the first part that
 * failed (its message names that device: errors of the segments' devices
 * pass through unchanged), and xfer the sum of the parts (0 on failure).
 * A part that failed does not undo the others: a failed write may have
 * been applied in part, as on any device.  A FLUSH goes to every distinct
 * device once.  Checks (alignment, range) are those of every device
 * (blockdev.h), against the linear device's own size; large parts are
 * split by the segments' devices, not here.
 *
 * Ordering (ioreq.h) holds because it holds on each device: the parts of
 * requests are submitted to a device in the order the requests were
 * submitted here, and a FLUSH here is a FLUSH on every device.
 *
 * Fences: a write reaches storage only through the segments' devices, so
 * it is gated by the fences of their connections (io/fence.h) already.
 * keel_blockdev_set_fence() on a linear device sets the fence of every
 * distinct segment device, as on a faulty wrapper or a file view: it
 * changes those connections for all their users.
 *
 * Threads: as any device (blockdev.h).  Completions run on the segments'
 * devices' I/O threads.
 */
#ifndef KEEL_IO_LINEAR_H
#define KEEL_IO_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

struct keel_linear_seg {
    struct keel_blockdev *dev;  /* borrowed: must outlive the linear device */
    uint64_t offset;            /* bytes on dev where the segment starts */
    uint64_t len;               /* bytes */
};

/*
 * Make a linear device of the nsegs segments, in order (segs is copied;
 * segments that continue each other on one device are merged).  name is
 * the device's name in messages (copied); NULL: "linear:<first device's
 * name>".  Its size is the sum of the lengths, its block size that of the
 * devices.  *ret is freed with keel_blockdev_close(), which waits for its
 * requests and leaves the segments' devices open.
 *
 * Refused with KEEL_E_INVAL: no segment, a NULL device, devices of
 * different block sizes, a segment of 0 bytes; KEEL_E_ALIGN: a segment
 * not aligned to the block size; KEEL_E_RANGE: a segment past the end of
 * its device, or a total size past 2^63.
 */
int keel_linear_blockdev(const char *name, const struct keel_linear_seg *segs, size_t nsegs,
                         struct keel_blockdev **ret, struct keel_error *err);

#endif /* KEEL_IO_LINEAR_H */

/*
 * The write log of lease tests: what a lease-contender writes, as an SPM,
 * in place of metadata -- so that tests judge from storage, not from what a
 * process says, whether an old SPM wrote after a new one.  Each host has a
 * ring of 128 records of 512 bytes at base + host_id x 64 KiB; record seq
 * goes to slot seq % 128.  A record: "KEELWLOG", host id, lver, seq, the
 * writer's CLOCK_BOOTTIME in ns just before it submitted the write (all u64
 * LE), then CRC-32C of those 40 bytes (u32 LE).
 */
#ifndef KEEL_TESTS_WRITELOG_H
#define KEEL_TESTS_WRITELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "io/blockdev.h"

#define WLOG_RING 128
#define WLOG_REC 512
#define WLOG_HOST_BYTES (WLOG_RING * WLOG_REC)
#define WLOG_MAX_HOST 255

struct wlog_rec {
    uint64_t host, lver, seq, t_ns;
};

uint64_t wlog_offset(uint64_t base, const struct wlog_rec *r);
void wlog_encode(const struct wlog_rec *r, unsigned char *sector);
/* true for a valid record; false for a blank or damaged one (*damaged tells which). */
bool wlog_decode(const unsigned char *sector, struct wlog_rec *r, bool *damaged);

/*
 * Every valid record in host's ring (at most WLOG_RING) into out; *n gets
 * the count, *damaged the damaged ones.  *newest (may be NULL) the one
 * with the highest seq (zeroed when none).
 */
int wlog_read_host(struct keel_blockdev *dev, uint64_t base, uint64_t host, struct wlog_rec *out,
                   size_t *n, size_t *damaged, struct wlog_rec *newest, struct keel_error *err);

#endif /* KEEL_TESTS_WRITELOG_H */

/* Disk-paxos resource leases; see paxos.h. */
#include "spm/paxos.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "metadata/sanlock_fmt.h"

#define MAX_ROUNDS 20

struct ctx {
    struct keel_delta *me;
    struct keel_blockdev *dev;
    uint64_t offset;
    const char *ls, *res;
    uint64_t id, gen;
    struct keel_sanlock_resource area;
};

static int read_area(struct ctx *c, struct keel_error *err)
{
    keel_sanlock_resource_release(&c->area);
    memset(&c->area, 0, sizeof(c->area));
    return keel_sanlock_read_resource_area(c->dev, c->offset, c->ls, c->res, 0, 0, &c->area, err);
}

/* Write sector `index` of the area (0: leader, 2 + id - 1: a dblock), encoded by `encode`. */
static int write_sector(struct ctx *c, uint64_t index, void (*encode)(const void *, unsigned char *),
                        const void *rec, struct keel_error *err)
{
    unsigned ss = c->area.sector_size;
    unsigned char *buf = keel_aligned_alloc(4096, ss > 4096 ? ss : 4096);
    int rc;

    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    memset(buf, 0, ss); /* a dblock's mode block stays zero: exclusive mode */
    encode(rec, buf);
    rc = keel_blockdev_pwrite(c->dev, buf, ss, c->offset + index * ss, err);
    if (rc == 0)
        rc = keel_blockdev_flush(c->dev, err);
    free(buf);
    return rc;
}

static void enc_dblock(const void *d, unsigned char *b)
{
    keel_sanlock_dblock_encode(d, b);
}

static void enc_leader(const void *l, unsigned char *b)
{
    keel_sanlock_leader_encode(l, b);
}

static int write_dblock(struct ctx *c, const struct keel_sanlock_dblock *d,
                        struct keel_error *err)
{
    return write_sector(c, 2 + c->id - 1, enc_dblock, d, err);
}

static int write_leader(struct ctx *c, const struct keel_sanlock_leader *l,
                        struct keel_error *err)
{
    return write_sector(c, 0, enc_leader, l, err);
}

/* Invariant 1: may we ballot against the current owner? */
static int owner_gone(struct ctx *c, bool *gone, struct keel_error *err)
{
    const struct keel_sanlock_leader *l = &c->area.leader;
    struct keel_sanlock_leader d;
    enum keel_host_state s;

    *gone = true;
    if (l->timestamp == 0 || l->owner_id == 0)
        return 0; /* free */
    if (l->owner_id == c->id && l->owner_generation <= c->gen)
        return 0; /* ours, or an old incarnation of us */
    if (l->write_id != l->owner_id && l->owner_id <= c->area.ndblocks &&
        (c->area.dblocks[l->owner_id - 1].flags & KEEL_SANLOCK_DBLOCK_RELEASED))
        return 0; /* another host committed it for the owner, who released it */
    if (keel_delta_read_host(c->me, l->owner_id, &d, err) != 0)
        return -1;
    if (d.timestamp == 0 || d.owner_id != l->owner_id || d.owner_generation > l->owner_generation)
        return 0; /* that incarnation left its host id */
    s = keel_delta_host_state(c->me, l->owner_id);
    if (s == KEEL_HOST_DEAD)
        return 0;
    *gone = false;
    return 0;
}

/* Phase check (invariant 2): 1 to abort, 0 to go on. */
static int check_dblocks(struct ctx *c, uint64_t lver, uint64_t mbal)
{
    for (uint64_t i = 0; i < c->area.ndblocks; i++) {
        const struct keel_sanlock_dblock *b = &c->area.dblocks[i];

        if (i + 1 == c->id)
            continue;
        if (b->lver > lver)
            return 1;
        if (b->lver == lver && b->mbal > mbal)
            return 1;
    }
    return 0;
}

static void random_pause(void)
{
    uint16_t r = 0;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = 500;
    keel_lease_clock_sleep_ms(r % 1000);
}

int keel_paxos_acquire(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource,
                       struct keel_paxos_owner *got, struct keel_error *err)
{
    struct ctx c = { .me = me, .dev = dev, .offset = offset, .ls = lockspace, .res = resource,
                     .id = keel_delta_host_id(me), .gen = keel_delta_generation(me) };
    uint64_t next_lver, mbal = 0, max_mbal = 0, max_hosts;
    int rc = -1;

    if (!keel_delta_valid(me, NULL))
        return keel_error_set(err, KEEL_E_PERM, 0, "resource %s:%s: our host id lease is not "
                              "valid", lockspace, resource);
    if (read_area(&c, err) != 0)
        goto out;
    if (c.id > c.area.ndblocks) {
        keel_error_set(err, KEEL_E_INVAL, 0, "resource %s:%s: host id %" PRIu64 " is beyond its "
                       "%" PRIu64 " hosts", lockspace, resource, c.id, c.area.ndblocks);
        goto out;
    }
    {
        bool gone;

        if (owner_gone(&c, &gone, err) != 0)
            goto out;
        if (!gone) {
            keel_error_set(err, KEEL_E_BUSY, 0, "resource %s:%s: owned by host %" PRIu64
                           " generation %" PRIu64 ", alive (%s)", lockspace, resource,
                           c.area.leader.owner_id, c.area.leader.owner_generation,
                           keel_host_state_name(keel_delta_host_state(me, c.area.leader.owner_id)));
            goto out;
        }
    }
    next_lver = c.area.leader.lver + 1;
    max_hosts = c.area.leader.max_hosts ? c.area.leader.max_hosts : 2000;
    for (uint64_t i = 0; i < c.area.ndblocks; i++)
        if (c.area.dblocks[i].mbal > max_mbal)
            max_mbal = c.area.dblocks[i].mbal;
    mbal = max_mbal == 0 ? c.id : max_mbal / max_hosts * max_hosts + max_hosts + c.id;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        struct keel_sanlock_dblock mine = { .mbal = mbal, .lver = next_lver };
        uint64_t best_bal = 0;
        bool chosen = false;
        struct keel_sanlock_leader l;

        if (!keel_delta_valid(me, NULL)) {
            keel_error_set(err, KEEL_E_PERM, 0, "resource %s:%s: our host id lease expired",
                           lockspace, resource);
            goto out;
        }
        /* Phase 1. */
        if (write_dblock(&c, &mine, err) != 0 || read_area(&c, err) != 0)
            goto out;
        if (check_dblocks(&c, next_lver, mbal))
            goto abort;
        for (uint64_t i = 0; i < c.area.ndblocks; i++) {
            const struct keel_sanlock_dblock *b = &c.area.dblocks[i];

            if (i + 1 != c.id && b->lver == next_lver && b->inp != 0 &&
                (!chosen || b->bal > best_bal)) {
                mine.inp = b->inp;
                mine.inp2 = b->inp2;
                mine.inp3 = b->inp3;
                best_bal = b->bal;
                chosen = true;
            }
        }
        if (!chosen) {
            mine.inp = c.id;
            mine.inp2 = c.gen;
            mine.inp3 = keel_lease_now();
        }
        mine.bal = mbal;
        /* Phase 2. */
        if (write_dblock(&c, &mine, err) != 0 || read_area(&c, err) != 0)
            goto out;
        if (check_dblocks(&c, next_lver, mbal))
            goto abort;
        /* Commit (invariant 3). */
        l = c.area.leader;
        l.lver = next_lver;
        l.owner_id = mine.inp;
        l.owner_generation = mine.inp2;
        l.timestamp = mine.inp3;
        l.write_id = c.id;
        l.write_generation = c.gen;
        l.write_timestamp = keel_lease_now();
        if (!keel_delta_valid(me, NULL)) {
            keel_error_set(err, KEEL_E_PERM, 0, "resource %s:%s: our host id lease expired",
                           lockspace, resource);
            goto out;
        }
        if (write_leader(&c, &l, err) != 0)
            goto out;
        if (l.owner_id != c.id || l.owner_generation != c.gen) {
            keel_error_set(err, KEEL_E_BUSY, 0, "resource %s:%s: host %" PRIu64 " won it",
                           lockspace, resource, l.owner_id);
            goto out;
        }
        got->host_id = l.owner_id;
        got->generation = l.owner_generation;
        got->timestamp = l.timestamp;
        got->lver = l.lver;
        rc = 0;
        goto out;
abort:
        /* Someone else balloted: see whether they committed. */
        random_pause();
        mbal += max_hosts;
        if (read_area(&c, err) != 0)
            goto out;
        if (c.area.leader.lver >= next_lver) {
            if (c.area.leader.lver == next_lver && c.area.leader.owner_id == c.id &&
                c.area.leader.owner_generation == c.gen) {
                got->host_id = c.id;
                got->generation = c.gen;
                got->timestamp = c.area.leader.timestamp;
                got->lver = c.area.leader.lver;
                rc = 0;
            } else {
                keel_error_set(err, KEEL_E_BUSY, 0, "resource %s:%s: host %" PRIu64 " won it",
                               lockspace, resource, c.area.leader.owner_id);
            }
            goto out;
        }
    }
    keel_error_set(err, KEEL_E_BUSY, 0, "resource %s:%s: %d contended ballots, giving up",
                   lockspace, resource, MAX_ROUNDS);
out:
    keel_sanlock_resource_release(&c.area);
    return rc;
}

int keel_paxos_release(struct keel_delta *me, struct keel_blockdev *dev, uint64_t offset,
                       const char *lockspace, const char *resource,
                       const struct keel_paxos_owner *held, struct keel_error *err)
{
    struct ctx c = { .me = me, .dev = dev, .offset = offset, .ls = lockspace, .res = resource,
                     .id = keel_delta_host_id(me), .gen = keel_delta_generation(me) };
    struct keel_sanlock_dblock mine;
    int rc = -1;

    if (read_area(&c, err) != 0)
        goto out;
    if (c.id > c.area.ndblocks) {
        keel_error_set(err, KEEL_E_INVAL, 0, "resource %s:%s: host id %" PRIu64 " is beyond its "
                       "%" PRIu64 " hosts", lockspace, resource, c.id, c.area.ndblocks);
        goto out;
    }
    mine = c.area.dblocks[c.id - 1];
    mine.flags |= KEEL_SANLOCK_DBLOCK_RELEASED;
    if (write_dblock(&c, &mine, err) != 0)
        goto out;
    /* Clear the leader only if we wrote it and it still says what we hold. */
    if (c.area.leader.write_id == c.id && c.area.leader.owner_id == c.id &&
        c.area.leader.owner_generation == held->generation && c.area.leader.lver == held->lver) {
        struct keel_sanlock_leader l = c.area.leader;

        l.timestamp = 0;
        l.write_id = c.id;
        l.write_generation = c.gen;
        l.write_timestamp = keel_lease_now();
        if (write_leader(&c, &l, err) != 0)
            goto out;
    }
    rc = 0;
out:
    keel_sanlock_resource_release(&c.area);
    return rc;
}

int keel_paxos_owner(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                     const char *resource, struct keel_paxos_owner *out, struct keel_error *err)
{
    struct keel_sanlock_leader l;

    if (keel_sanlock_read_resource(dev, offset, lockspace, resource, 0, &l, err) != 0)
        return -1;
    out->host_id = l.timestamp ? l.owner_id : 0;
    out->generation = l.owner_generation;
    out->timestamp = l.timestamp;
    out->lver = l.lver;
    return 0;
}

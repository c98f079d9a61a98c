/* Delta leases (host ids) in sanlock's format; see delta.h. */
#include "spm/delta.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "io/fence.h"
#include "metadata/sanlock_fmt.h"

#define MAX_HOSTS 2000
#define RETRY_MS 500
#define MAX_FENCES 64

struct host_status {
    uint64_t owner, gen, timestamp; /* as last read */
    uint64_t first_check;           /* local seconds of the first read of this host */
    uint64_t last_live;             /* local seconds of the read that saw the change */
    bool seen, changed_once;
    unsigned io_timeout;
};

struct keel_delta {
    struct keel_blockdev *dev;
    uint64_t offset;
    char lockspace[KEEL_SANLOCK_NAME_LEN + 1];
    char name[KEEL_SANLOCK_NAME_LEN + 1];
    uint64_t host_id;
    unsigned n, slack;              /* io_timeout, slack (s) */
    unsigned sector;                /* sector size */
    uint64_t align;                 /* area size */
    unsigned char *mine;            /* the sector we wrote last */
    unsigned char *area;            /* buffer for whole-area reads */
    struct keel_sanlock_leader rec; /* what we wrote last, decoded */

    pthread_mutex_t lock;           /* guards the fields below */
    uint64_t last_success;          /* local seconds of the last renewal (before its write) */
    bool lost;                      /* a renewal found the record taken or corrupt */
    bool held;
    struct keel_fence *fences[MAX_FENCES]; /* follow the lease (keel_delta_add_fence) */
    struct host_status hosts[MAX_HOSTS];

    pthread_t thread;
    bool running, stop;
    pthread_cond_t cond;
};

uint64_t keel_lease_now(void)
{
    uint64_t s = keel_lease_clock_ns() / KEEL_NS_PER_S;

    return s == 0 ? 1 : s; /* 0 means "free" on disk */
}

const char *keel_host_state_name(enum keel_host_state s)
{
    static const char *const names[] = { "free", "unknown", "live", "fail", "dead" };

    return (unsigned)s < 5 ? names[s] : "?";
}

/* The lease's deadline, CLOCK_BOOTTIME ns; lock held. */
static uint64_t deadline_ns(const struct keel_delta *d)
{
    return (d->last_success + 8 * (uint64_t)d->n) * KEEL_NS_PER_S;
}

/*
 * Past the deadline the lease is lost for good (invariant 4): a late
 * renewal saves nothing, since other hosts may already have waited it
 * out.  Then every fence shuts; otherwise they follow the deadline.
 * Lock held.
 */
static void settle(struct keel_delta *d, uint64_t now_ns)
{
    uint64_t until = deadline_ns(d);

    if (d->held && !d->lost && now_ns >= until)
        d->lost = true;
    for (unsigned i = 0; i < MAX_FENCES; i++) {
        if (d->fences[i] == NULL)
            continue;
        if (!d->held || d->lost)
            keel_fence_shut(d->fences[i], d->lost ? "host id lease lost" : "host id released");
        else
            keel_fence_extend(d->fences[i], until - (uint64_t)d->n * KEEL_NS_PER_S, until);
    }
}

static int read_sector(struct keel_delta *d, uint64_t id, unsigned char *buf,
                       struct keel_error *err)
{
    return keel_blockdev_pread(d->dev, buf, d->sector, d->offset + (id - 1) * d->sector, err);
}

static int write_mine(struct keel_delta *d, struct keel_error *err)
{
    memset(d->mine, 0, d->sector);
    keel_sanlock_leader_encode(&d->rec, d->mine);
    if (keel_blockdev_pwrite(d->dev, d->mine, d->sector, d->offset + (d->host_id - 1) * d->sector,
                             err) != 0 ||
        keel_blockdev_flush(d->dev, err) != 0)
        return -1;
    return 0;
}

static int decode(struct keel_delta *d, const unsigned char *buf, uint64_t id,
                  struct keel_sanlock_leader *l, struct keel_error *err)
{
    char what[128];

    snprintf(what, sizeof(what), "lockspace %s host id %" PRIu64, d->lockspace, id);
    if (keel_sanlock_leader_decode(buf, KEEL_SANLOCK_DELTA_MAGIC, what, l, err) != 0)
        return -1;
    if (strcmp(l->space_name, d->lockspace) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: the record is of lockspace %s", what,
                              l->space_name);
    return 0;
}

static void delta_free(struct keel_delta *d)
{
    if (d == NULL)
        return;
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d->mine);
    free(d->area);
    free(d);
}

int keel_delta_acquire(struct keel_blockdev *dev, uint64_t offset, const char *lockspace,
                       uint64_t host_id, const char *unique_name,
                       const struct keel_delta_timing *t, struct keel_delta **ret,
                       struct keel_error *err)
{
    struct keel_delta *d;
    struct keel_sanlock_leader cur, again;
    unsigned char *buf = NULL;
    unsigned other;
    int rc = -1;

    if (host_id < 1 || host_id > MAX_HOSTS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "host id %" PRIu64 " is not in 1..%d",
                              host_id, MAX_HOSTS);
    if (strlen(lockspace) > KEEL_SANLOCK_NAME_LEN || strlen(unique_name) == 0 ||
        strlen(unique_name) > KEEL_SANLOCK_NAME_LEN)
        return keel_error_set(err, KEEL_E_INVAL, 0, "lockspace or host name longer than %d bytes",
                              KEEL_SANLOCK_NAME_LEN);
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    pthread_mutex_init(&d->lock, NULL);
    {
        pthread_condattr_t ca;

        /* Waits are bounded on the monotonic clock, never the wall clock. */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&d->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    d->dev = dev;
    d->offset = offset;
    d->host_id = host_id;
    d->n = t && t->io_timeout ? t->io_timeout : 10;
    d->slack = t && t->slack ? t->slack : 60;
    keel_strlcpy(d->lockspace, lockspace, sizeof(d->lockspace));
    keel_strlcpy(d->name, unique_name, sizeof(d->name));
    d->sector = keel_blockdev_block_size(dev) > 512 ? keel_blockdev_block_size(dev) : 512;
    buf = keel_aligned_alloc(4096, 4096);
    d->mine = keel_aligned_alloc(4096, 4096);
    if (buf == NULL || d->mine == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto out;
    }
    /* 1. Read our record; its geometry tells the area's. */
    if (read_sector(d, host_id, buf, err) != 0 || decode(d, buf, host_id, &cur, err) != 0)
        goto out;
    d->sector = cur.sector_size;
    d->align = keel_sanlock_align_from_flags(cur.flags);
    if (d->align == 0)
        d->align = d->sector == 512 ? (UINT64_C(1) << 20) : (UINT64_C(8) << 20);
    /*
     * A holder's io timeout sets how long we wait it out; a free record's
     * (what `sanlock direct init` wrote: 10) is nobody's, and waiting 2 x
     * its value would outlast our own 8N deadline when N is shorter.
     */
    other = cur.timestamp != 0 && cur.io_timeout ? cur.io_timeout : d->n;
    /* 2., 3. Free, ours (a restart), or unchanged for a host-dead time. */
    if (cur.timestamp != 0 && strcmp(cur.resource_name, d->name) != 0) {
        unsigned wait = 8 * other + d->slack;

        keel_lease_clock_sleep_ms(wait * 1000);
        if (read_sector(d, host_id, buf, err) != 0 || decode(d, buf, host_id, &again, err) != 0)
            goto out;
        if (again.timestamp != 0 &&
            (again.owner_id != cur.owner_id || again.owner_generation != cur.owner_generation ||
             again.timestamp != cur.timestamp || strcmp(again.resource_name, cur.resource_name))) {
            keel_error_set(err, KEEL_E_BUSY, 0, "lockspace %s: host id %" PRIu64 " is held by "
                           "live host %s", d->lockspace, host_id, again.resource_name);
            goto out;
        }
        cur = again;
    }
    /* 4. Our record. */
    d->rec = cur;
    d->rec.owner_id = host_id;
    d->rec.owner_generation = cur.owner_generation + 1;
    d->rec.timestamp = keel_lease_now();
    d->rec.io_timeout = (uint16_t)d->n;
    keel_strlcpy(d->rec.resource_name, d->name, sizeof(d->rec.resource_name));
    if (write_mine(d, err) != 0)
        goto out;
    d->last_success = d->rec.timestamp;
    /* 5., 6. Wait 2N and read back exactly what we wrote (invariant 1). */
    keel_lease_clock_sleep_ms(2 * other * 1000);
    if (read_sector(d, host_id, buf, err) != 0)
        goto out;
    if (memcmp(buf, d->mine, d->sector) != 0) {
        keel_error_set(err, KEEL_E_BUSY, 0, "lockspace %s: host id %" PRIu64 " was taken by "
                       "another host while we joined", d->lockspace, host_id);
        goto out;
    }
    d->area = keel_aligned_alloc(4096, (size_t)d->align);
    if (d->area == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        goto out;
    }
    d->held = true;
    *ret = d;
    d = NULL;
    rc = 0;
out:
    free(buf);
    delta_free(d);
    return rc;
}

/* Note every other host's record from a whole-area read (spec 2.4). */
static void note_hosts(struct keel_delta *d, uint64_t t)
{
    uint64_t n = d->align / d->sector;

    if (n > MAX_HOSTS)
        n = MAX_HOSTS;
    for (uint64_t i = 0; i < n; i++) {
        struct keel_sanlock_leader l;
        struct keel_error e = KEEL_ERROR_INIT;
        struct host_status *h = &d->hosts[i];

        if (decode(d, d->area + i * d->sector, i + 1, &l, &e) != 0)
            continue;
        if (!h->seen) {
            h->seen = true;
            h->first_check = t;
            h->last_live = t;
        } else if (l.owner_id != h->owner || l.owner_generation != h->gen ||
                   l.timestamp != h->timestamp) {
            h->last_live = t;
            h->changed_once = true;
        }
        h->owner = l.owner_id;
        h->gen = l.owner_generation;
        h->timestamp = l.timestamp;
        h->io_timeout = l.io_timeout ? l.io_timeout : d->n;
    }
}

int keel_delta_renew(struct keel_delta *d, struct keel_error *err)
{
    struct keel_sanlock_leader l;
    uint64_t read_at, ts;

    pthread_mutex_lock(&d->lock);
    if (d->lost || !d->held) {
        pthread_mutex_unlock(&d->lock);
        return keel_error_set(err, KEEL_E_PERM, 0, "lockspace %s: host id %" PRIu64 " is not "
                              "held", d->lockspace, d->host_id);
    }
    pthread_mutex_unlock(&d->lock);
    /* 1. The whole area: our record, and every other host's. */
    if (keel_blockdev_pread(d->dev, d->area, (size_t)d->align, d->offset, err) != 0)
        return -1;
    read_at = keel_lease_now();
    pthread_mutex_lock(&d->lock);
    note_hosts(d, read_at);
    pthread_mutex_unlock(&d->lock);
    /* 2. Still exactly ours (invariant 2)? */
    {
        struct keel_error e = KEEL_ERROR_INIT;
        int bad = decode(d, d->area + (d->host_id - 1) * d->sector, d->host_id, &l, &e);

        if (bad == 0 && memcmp(d->area + (d->host_id - 1) * d->sector, d->mine, d->sector) == 0)
            goto ours;
        if (bad != 0)
            keel_error_copy(err, &e);
        else
            keel_error_set(err, KEEL_E_CORRUPT, 0, "lockspace %s: our record of host id %" PRIu64
                           " changed: now %s generation %" PRIu64, d->lockspace, d->host_id,
                           l.resource_name, l.owner_generation);
        pthread_mutex_lock(&d->lock);
        d->lost = true;
        settle(d, keel_lease_clock_ns());
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
ours:
    /* 3. The new timestamp is taken before the write (invariant 3). */
    ts = keel_lease_now();
    pthread_mutex_lock(&d->lock);
    settle(d, ts * KEEL_NS_PER_S);
    if (d->lost) {
        pthread_mutex_unlock(&d->lock);
        return keel_error_set(err, KEEL_E_PERM, 0, "lockspace %s: host id %" PRIu64 " lease "
                              "expired before it could be renewed", d->lockspace, d->host_id);
    }
    pthread_mutex_unlock(&d->lock);
    d->rec.timestamp = ts;
    if (write_mine(d, err) != 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    /* Renewed in time only if the write landed before the old deadline. */
    settle(d, keel_lease_clock_ns());
    if (!d->lost)
        d->last_success = ts;
    settle(d, keel_lease_clock_ns());
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void *renewal(void *arg)
{
    struct keel_delta *d = arg;

    pthread_mutex_lock(&d->lock);
    while (!d->stop && !d->lost) {
        uint64_t due = d->last_success + 2 * d->n, t = keel_lease_now();

        if (t < due) {
            struct timespec ts;

            clock_gettime(CLOCK_MONOTONIC, &ts); /* the condvar's clock: a wakeup bound */
            ts.tv_sec += (time_t)(due - t);
            pthread_cond_timedwait(&d->cond, &d->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&d->lock);
        {
            struct keel_error e = KEEL_ERROR_INIT;

            if (keel_delta_renew(d, &e) != 0)
                keel_lease_clock_sleep_ms(RETRY_MS);
        }
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int keel_delta_start(struct keel_delta *d, struct keel_error *err)
{
    if (d->running)
        return 0;
    d->stop = false;
    if (pthread_create(&d->thread, NULL, renewal, d) != 0)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "cannot start the renewal thread");
    d->running = true;
    return 0;
}

static void stop_thread(struct keel_delta *d)
{
    if (!d->running)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    d->running = false;
}

bool keel_delta_valid(struct keel_delta *d, uint64_t *left_ms)
{
    uint64_t t = keel_lease_clock_ns(), deadline;
    bool ok;

    pthread_mutex_lock(&d->lock);
    settle(d, t);
    deadline = deadline_ns(d);
    ok = d->held && !d->lost;
    pthread_mutex_unlock(&d->lock);
    if (left_ms != NULL)
        *left_ms = ok ? (deadline - t) / KEEL_NS_PER_MS : 0;
    return ok;
}

enum keel_host_state keel_delta_host_state(struct keel_delta *d, uint64_t host_id)
{
    enum keel_host_state s;
    const struct host_status *h;
    uint64_t t = keel_lease_now(), quiet;

    if (host_id < 1 || host_id > MAX_HOSTS)
        return KEEL_HOST_FREE;
    pthread_mutex_lock(&d->lock);
    h = &d->hosts[host_id - 1];
    quiet = t - h->last_live;
    if (!h->seen || h->timestamp == 0)
        s = KEEL_HOST_FREE;
    else if (quiet >= 8 * (uint64_t)h->io_timeout + d->slack)
        s = KEEL_HOST_DEAD;
    else if (quiet >= 8 * (uint64_t)h->io_timeout)
        s = KEEL_HOST_FAIL;
    else if (!h->changed_once)
        s = KEEL_HOST_UNKNOWN;
    else
        s = KEEL_HOST_LIVE;
    pthread_mutex_unlock(&d->lock);
    return s;
}

uint64_t keel_delta_generation(const struct keel_delta *d)
{
    return d->rec.owner_generation;
}

uint64_t keel_delta_host_id(const struct keel_delta *d)
{
    return d->host_id;
}

int keel_delta_read_host(struct keel_delta *d, uint64_t host_id, struct keel_sanlock_leader *l,
                         struct keel_error *err)
{
    unsigned char *buf;
    int rc;

    if (host_id < 1 || host_id > MAX_HOSTS)
        return keel_error_set(err, KEEL_E_INVAL, 0, "host id %" PRIu64 " is not in 1..%d",
                              host_id, MAX_HOSTS);
    buf = keel_aligned_alloc(4096, 4096);
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    rc = read_sector(d, host_id, buf, err);
    if (rc == 0)
        rc = decode(d, buf, host_id, l, err);
    free(buf);
    return rc;
}

void keel_delta_stop(struct keel_delta *d)
{
    stop_thread(d);
}

int keel_delta_add_fence(struct keel_delta *d, struct keel_fence *f, struct keel_error *err)
{
    uint64_t until;
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    settle(d, keel_lease_clock_ns());
    until = deadline_ns(d);
    if (!d->held || d->lost) {
        rc = keel_error_set(err, KEEL_E_PERM, 0, "lockspace %s: host id %" PRIu64 " is not held",
                            d->lockspace, d->host_id);
    } else {
        unsigned i;

        for (i = 0; i < MAX_FENCES && d->fences[i] != NULL && d->fences[i] != f; i++)
            ;
        if (i == MAX_FENCES)
            rc = keel_error_set(err, KEEL_E_NOSPC, 0, "lockspace %s: more than %d leases held",
                                d->lockspace, MAX_FENCES);
        else {
            d->fences[i] = f;
            keel_fence_arm(f, until - (uint64_t)d->n * KEEL_NS_PER_S, until);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void keel_delta_remove_fence(struct keel_delta *d, struct keel_fence *f)
{
    pthread_mutex_lock(&d->lock);
    for (unsigned i = 0; i < MAX_FENCES; i++)
        if (d->fences[i] == f)
            d->fences[i] = NULL;
    keel_fence_shut(f, "lease released");
    pthread_mutex_unlock(&d->lock);
}

int keel_delta_release(struct keel_delta *d, struct keel_error *err)
{
    stop_thread(d);
    pthread_mutex_lock(&d->lock);
    settle(d, keel_lease_clock_ns());
    if (!d->held || d->lost) {
        d->held = false;
        settle(d, 0);
        pthread_mutex_unlock(&d->lock);
        return 0; /* nothing of ours to clear: another host may own the record now */
    }
    d->held = false;
    settle(d, 0);
    pthread_mutex_unlock(&d->lock);
    d->rec.timestamp = 0;
    if (write_mine(d, err) != 0)
        return keel_error_prefix(err, "lockspace %s: releasing host id %" PRIu64, d->lockspace,
                                 d->host_id);
    return 0;
}

void keel_delta_free(struct keel_delta *d)
{
    if (d == NULL)
        return;
    stop_thread(d);
    delta_free(d);
}

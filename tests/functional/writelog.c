/* The write log of lease tests; see writelog.h. */
#include "tests/functional/writelog.h"

#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "metadata/sanlock_fmt.h"

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t wlog_offset(uint64_t base, const struct wlog_rec *r)
{
    return base + r->host * WLOG_HOST_BYTES + (r->seq % WLOG_RING) * WLOG_REC;
}

void wlog_encode(const struct wlog_rec *r, unsigned char *s)
{
    uint32_t c;

    memset(s, 0, WLOG_REC);
    memcpy(s, "KEELWLOG", 8);
    put64(s + 8, r->host);
    put64(s + 16, r->lver);
    put64(s + 24, r->seq);
    put64(s + 32, r->t_ns);
    c = ~keel_crc32c(~0u, s, 40);
    for (int i = 0; i < 4; i++)
        s[40 + i] = (unsigned char)(c >> (8 * i));
}

bool wlog_decode(const unsigned char *s, struct wlog_rec *r, bool *damaged)
{
    uint32_t c = ~keel_crc32c(~0u, s, 40), have = 0;
    bool blank = true;

    for (size_t i = 0; i < WLOG_REC && blank; i++)
        blank = s[i] == 0;
    *damaged = false;
    if (blank)
        return false;
    for (int i = 3; i >= 0; i--)
        have = have << 8 | s[40 + i];
    if (memcmp(s, "KEELWLOG", 8) != 0 || have != c) {
        *damaged = true;
        return false;
    }
    r->host = get64(s + 8);
    r->lver = get64(s + 16);
    r->seq = get64(s + 24);
    r->t_ns = get64(s + 32);
    return true;
}

int wlog_read_host(struct keel_blockdev *dev, uint64_t base, uint64_t host, struct wlog_rec *out,
                   size_t *n, size_t *damaged, struct wlog_rec *newest, struct keel_error *err)
{
    unsigned char *buf = keel_aligned_alloc(4096, WLOG_HOST_BYTES);

    *n = 0;
    *damaged = 0;
    if (newest != NULL)
        memset(newest, 0, sizeof(*newest));
    if (buf == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    if (keel_blockdev_pread(dev, buf, WLOG_HOST_BYTES, base + host * WLOG_HOST_BYTES, err) != 0) {
        free(buf);
        return -1;
    }
    for (size_t i = 0; i < WLOG_RING; i++) {
        struct wlog_rec r;
        bool bad;

        if (wlog_decode(buf + i * WLOG_REC, &r, &bad)) {
            if (r.host != host || r.seq % WLOG_RING != i) {
                (*damaged)++;
                continue;
            }
            out[(*n)++] = r;
            if (newest != NULL && r.seq > newest->seq)
                *newest = r;
        } else if (bad) {
            (*damaged)++;
        }
    }
    free(buf);
    return 0;
}

/*
 * lvm2's CRC-32; see lvm_crc.h.  Slicing-by-8 (eight 256-entry tables,
 * eight bytes per step): a VG of 1000 LVs is ~420 KB of text, checksummed
 * at every commit, so the byte-at-a-time loop was a third of a commit's
 * CPU time.  Same results as the plain loop (tests/unit/test_lvm_format.c
 * has the vectors).
 */
#include <pthread.h>
#include <string.h>

#include "metadata/lvm_crc.h"

static uint32_t table[8][256];
static uint32_t x2n[64];   /* x^(2^k) modulo the polynomial, for keel_lvm_crc_zeros() */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* a * b modulo the polynomial, in the reflected bit order (zlib's multmodp). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = UINT32_C(1) << 31, p = 0;

    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ 0xEDB88320u : b >> 1;
    }
    return p;
}

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    x2n[0] = UINT32_C(1) << 30; /* x^1 */
    for (int k = 1; k < 64; k++)
        x2n[k] = multmodp(x2n[k - 1], x2n[k - 1]);
}

/*
 * Feeding a zero byte to the register multiplies it by x^8 modulo the
 * polynomial, and the CRC has no final inversion: so len zero bytes
 * multiply it by x^(8 * len), built from the powers x^(2^k) (zlib's
 * crc32_combine() does the same).
 */
uint32_t keel_lvm_crc_zeros(uint32_t crc, uint64_t len)
{
    uint32_t p = UINT32_C(1) << 31; /* x^0 */
    int k = 3;                      /* 8 * len = len * 2^3 */

    pthread_once(&table_once, make_table);
    while (len != 0 && k < 64) {
        if (len & 1)
            p = multmodp(x2n[k], p);
        len >>= 1;
        k++;
    }
    return multmodp(p, crc);
}

uint32_t keel_lvm_crc(uint32_t seed, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t crc = seed;

    pthread_once(&table_once, make_table);
    while (len >= 8) {
        /* Bytes in order, whatever the host's endianness. */
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;

        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

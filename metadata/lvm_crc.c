/* lvm2's CRC-32; see lvm_crc.h.  A table-driven byte-at-a-time loop. */
#include <pthread.h>

#include "metadata/lvm_crc.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

uint32_t keel_lvm_crc(uint32_t seed, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t crc = seed;

    pthread_once(&table_once, make_table);
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

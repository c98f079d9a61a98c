/*
 * LVM2 label and mda header records; see lvm_label.h.  Never cast from the
 * buffer: every field is read and written with explicit little-endian
 * helpers (STYLE.md rule 8).
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "metadata/lvm_crc.h"
#include "metadata/lvm_label.h"

#define LABEL_ID "LABELONE"
#define LABEL_TYPE "LVM2 001"
#define PVH_OFFSET 32
#define MDAH_VERSION 1

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* Read a zero-terminated disk_locn list at *pos; the terminator's offset is 0. */
static int get_list(const uint8_t *sec, size_t *pos, struct keel_lvm_area *out, size_t *n,
                    struct keel_error *err, const char *what)
{
    *n = 0;
    for (;;) {
        uint64_t off, size;

        if (*pos + 16 > KEEL_LVM_SECTOR)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "PV header: %s list runs off the label "
                                  "sector", what);
        off = get64(sec + *pos);
        size = get64(sec + *pos + 8);
        *pos += 16;
        if (off == 0)
            return 0;
        if (*n == KEEL_LVM_MAX_AREAS)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "PV header: more than %d %s",
                                  KEEL_LVM_MAX_AREAS, what);
        out[*n].offset = off;
        out[*n].size = size;
        (*n)++;
    }
}

int keel_lvm_pvh_decode(const uint8_t sec[KEEL_LVM_SECTOR], uint64_t sector_no,
                        struct keel_lvm_pvh *ret, struct keel_error *err)
{
    struct keel_lvm_pvh h;
    uint32_t crc, off;
    size_t pos;

    if (memcmp(sec, LABEL_ID, 8) != 0 || memcmp(sec + 24, LABEL_TYPE, 8) != 0)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "no LVM2 label");
    memset(&h, 0, sizeof(h));
    h.sector = get64(sec + 8);
    crc = get32(sec + 16);
    off = get32(sec + 20);
    if (keel_lvm_crc(KEEL_LVM_CRC_SEED, sec + 20, KEEL_LVM_SECTOR - 20) != crc)
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "label checksum mismatch");
    if (h.sector != sector_no)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "label for sector %llu found in sector %llu",
                              (unsigned long long)h.sector, (unsigned long long)sector_no);
    if (off < 32 || off > KEEL_LVM_SECTOR - 40)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "label: PV header offset %u out of range",
                              off);
    if (keel_lvm_id_parse((const char *)sec + off, KEEL_LVM_ID_LEN, h.pv_id) != 0)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "PV header: invalid PV id");
    h.device_size = get64(sec + off + 32);
    pos = off + 40;
    if (get_list(sec, &pos, h.da, &h.nda, err, "data areas") != 0 ||
        get_list(sec, &pos, h.mda, &h.nmda, err, "metadata areas") != 0)
        return -1;
    if (pos + 8 <= KEEL_LVM_SECTOR) {
        h.ext_version = get32(sec + pos);
        h.ext_flags = get32(sec + pos + 4);
        pos += 8;
        if (h.ext_version >= 1 && get_list(sec, &pos, h.ba, &h.nba, err, "bootloader areas") != 0)
            return -1;
    }
    *ret = h;
    return 0;
}

static int put_list(uint8_t *sec, size_t *pos, const struct keel_lvm_area *a, size_t n,
                    struct keel_error *err)
{
    if (*pos + 16 * (n + 1) > KEEL_LVM_SECTOR)
        return keel_error_set(err, KEEL_E_INVAL, 0, "PV header does not fit in a sector");
    for (size_t i = 0; i < n; i++) {
        put64(sec + *pos, a[i].offset);
        put64(sec + *pos + 8, a[i].size);
        *pos += 16;
    }
    *pos += 16; /* terminator, already zero */
    return 0;
}

int keel_lvm_pvh_encode(const struct keel_lvm_pvh *h, uint8_t sec[KEEL_LVM_SECTOR],
                        struct keel_error *err)
{
    size_t pos = PVH_OFFSET + 40;

    memset(sec, 0, KEEL_LVM_SECTOR);
    memcpy(sec, LABEL_ID, 8);
    put64(sec + 8, h->sector);
    put32(sec + 20, PVH_OFFSET);
    memcpy(sec + 24, LABEL_TYPE, 8);
    memcpy(sec + PVH_OFFSET, h->pv_id, KEEL_LVM_ID_LEN);
    put64(sec + PVH_OFFSET + 32, h->device_size);
    if (put_list(sec, &pos, h->da, h->nda, err) != 0 ||
        put_list(sec, &pos, h->mda, h->nmda, err) != 0)
        return -1;
    if (pos + 8 + 16 * (h->nba + 1) > KEEL_LVM_SECTOR)
        return keel_error_set(err, KEEL_E_INVAL, 0, "PV header does not fit in a sector");
    put32(sec + pos, h->ext_version);
    put32(sec + pos + 4, h->ext_flags);
    pos += 8;
    if (put_list(sec, &pos, h->ba, h->nba, err) != 0)
        return -1;
    put32(sec + 16, keel_lvm_crc(KEEL_LVM_CRC_SEED, sec + 20, KEEL_LVM_SECTOR - 20));
    return 0;
}

static void get_rlocn(const uint8_t *p, struct keel_lvm_rlocn *r)
{
    r->offset = get64(p);
    r->size = get64(p + 8);
    r->checksum = get32(p + 16);
    r->flags = get32(p + 20);
}

static void put_rlocn(uint8_t *p, const struct keel_lvm_rlocn *r)
{
    put64(p, r->offset);
    put64(p + 8, r->size);
    put32(p + 16, r->checksum);
    put32(p + 20, r->flags);
}

int keel_lvm_mdah_decode(const uint8_t sec[KEEL_LVM_SECTOR], uint64_t expect_start,
                         struct keel_lvm_mdah *ret, struct keel_error *err)
{
    struct keel_lvm_mdah h;

    if (keel_lvm_crc(KEEL_LVM_CRC_SEED, sec + 4, KEEL_LVM_SECTOR - 4) != get32(sec))
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "metadata area header checksum mismatch");
    if (memcmp(sec + 4, KEEL_LVM_MDA_MAGIC, 16) != 0)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "metadata area header: wrong magic");
    if (get32(sec + 20) != MDAH_VERSION)
        return keel_error_set(err, KEEL_E_VERSION, 0, "metadata area header: version %u, not 1",
                              get32(sec + 20));
    memset(&h, 0, sizeof(h));
    h.start = get64(sec + 24);
    h.size = get64(sec + 32);
    if (h.start != expect_start)
        return keel_error_set(err, KEEL_E_CORRUPT, 0,
                              "metadata area header: start %llu, the PV header says %llu",
                              (unsigned long long)h.start, (unsigned long long)expect_start);
    if (h.size < 2 * KEEL_LVM_SECTOR)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "metadata area header: size %llu too small",
                              (unsigned long long)h.size);
    for (int i = 0; i < 2; i++) {
        get_rlocn(sec + 40 + 24 * i, &h.slot[i]);
        if (h.slot[i].size == 0)
            continue;
        if (h.slot[i].offset < KEEL_LVM_SECTOR || h.slot[i].offset >= h.size ||
            h.slot[i].size > h.size - KEEL_LVM_SECTOR || h.slot[i].size > UINT32_MAX)
            return keel_error_set(err, KEEL_E_CORRUPT, 0,
                                  "metadata area header: slot %d (offset %llu, size %llu) out of "
                                  "bounds", i, (unsigned long long)h.slot[i].offset,
                                  (unsigned long long)h.slot[i].size);
    }
    *ret = h;
    return 0;
}

void keel_lvm_mdah_encode(const struct keel_lvm_mdah *h, uint8_t sec[KEEL_LVM_SECTOR])
{
    memset(sec, 0, KEEL_LVM_SECTOR);
    memcpy(sec + 4, KEEL_LVM_MDA_MAGIC, 16);
    put32(sec + 20, MDAH_VERSION);
    put64(sec + 24, h->start);
    put64(sec + 32, h->size);
    put_rlocn(sec + 40, &h->slot[0]);
    put_rlocn(sec + 64, &h->slot[1]);
    put32(sec, keel_lvm_crc(KEEL_LVM_CRC_SEED, sec + 4, KEEL_LVM_SECTOR - 4));
}

uint64_t keel_lvm_mda_max_text(uint64_t mda_size)
{
    if (mda_size < 3 * KEEL_LVM_SECTOR)
        return 0;
    return (mda_size - KEEL_LVM_SECTOR) / 2 - KEEL_LVM_SECTOR;
}

bool keel_lvm_mdah_empty(const struct keel_lvm_mdah *h)
{
    return (h->slot[0].flags & KEEL_LVM_RAW_LOCN_IGNORED) ||
           (h->slot[0].offset == 0 && h->slot[0].size == 0);
}

int keel_lvm_mda_pieces(uint64_t mda_size, uint64_t offset, uint64_t size,
                        struct keel_lvm_area pieces[2])
{
    if (offset + size <= mda_size) {
        pieces[0].offset = offset;
        pieces[0].size = size;
        return 1;
    }
    pieces[0].offset = offset;
    pieces[0].size = mda_size - offset;
    pieces[1].offset = KEEL_LVM_SECTOR;
    pieces[1].size = offset + size - mda_size;
    return 2;
}

int keel_lvm_mda_next_offset(const struct keel_lvm_mdah *h, uint64_t n, uint64_t *ret,
                             struct keel_error *err)
{
    uint64_t max = keel_lvm_mda_max_text(h->size);
    uint64_t old_last, next;
    struct keel_lvm_area p[2];

    if (n > max)
        return keel_error_set(err, KEEL_E_NOSPC, ENOSPC,
                              "metadata of %llu bytes exceeds the maximum of %llu bytes for a "
                              "metadata area of %llu bytes",
                              (unsigned long long)n, (unsigned long long)max,
                              (unsigned long long)h->size);
    if (keel_lvm_mdah_empty(h)) {
        *ret = KEEL_LVM_SECTOR;
        return 0;
    }
    if (keel_lvm_mda_pieces(h->size, h->slot[0].offset, h->slot[0].size, p) == 1)
        old_last = h->slot[0].offset + h->slot[0].size - 1;
    else
        old_last = KEEL_LVM_SECTOR + p[1].size - 1;
    if (h->size - old_last < KEEL_LVM_SECTOR) {
        next = KEEL_LVM_SECTOR;
    } else {
        next = KEEL_ALIGN_UP(old_last + 1, KEEL_LVM_SECTOR);
        if (next > h->size - KEEL_LVM_SECTOR)
            next = KEEL_LVM_SECTOR;
    }
    /* Sanity: the new copy must not overlap the committed one (lvm checks too). */
    {
        struct keel_lvm_area q[2];
        int nq = keel_lvm_mda_pieces(h->size, next, n, q);
        int np = keel_lvm_mda_pieces(h->size, h->slot[0].offset, h->slot[0].size, p);

        for (int i = 0; i < nq; i++)
            for (int j = 0; j < np; j++)
                if (q[i].offset < p[j].offset + p[j].size && p[j].offset < q[i].offset + q[i].size)
                    return keel_error_set(err, KEEL_E_NOSPC, ENOSPC,
                                          "new metadata copy would overlap the committed one");
    }
    *ret = next;
    return 0;
}

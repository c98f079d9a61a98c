/* oVirt volume metadata; see vol_md.h. */
#include "metadata/vol_md.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

static const char *const format_names[] = { "RAW", "COW" };
static const char *const type_names[] = { "PREALLOCATED", "SPARSE", "UNKNOWN" };
static const char *const role_names[] = { "LEAF", "INTERNAL", "SHARED" };
static const char *const legality_names[] = { "LEGAL", "ILLEGAL", "FAKE" };

const char *keel_vol_format_name(enum keel_vol_format f) { return format_names[f]; }
const char *keel_vol_type_name(enum keel_vol_type t) { return type_names[t]; }
const char *keel_vol_role_name(enum keel_vol_role r) { return role_names[r]; }
const char *keel_vol_legality_name(enum keel_vol_legality l) { return legality_names[l]; }

static int lookup(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    return -1;
}

uint64_t keel_vol_md_slot_offset(unsigned version, unsigned slot)
{
    if (version >= 5)
        return KEEL_VOL_MD_V5_AREA + (uint64_t)slot * KEEL_VOL_MD_V5_SLOT_SIZE;
    return (uint64_t)slot * KEEL_VOL_MD_SIZE;
}

unsigned keel_vol_md_first_slot(unsigned version)
{
    return version >= 5 ? 1 : 4;
}

/* The keys, for "which were seen". */
enum { K_CAP, K_CTIME, K_DESCRIPTION, K_DISKTYPE, K_DOMAIN, K_FORMAT, K_GEN, K_IMAGE,
       K_LEGALITY, K_PUUID, K_SEQ, K_SIZE, K_TYPE, K_VOLTYPE, K_COUNT };
static const char *const key_names[K_COUNT] = {
    "CAP", "CTIME", "DESCRIPTION", "DISKTYPE", "DOMAIN", "FORMAT", "GEN", "IMAGE",
    "LEGALITY", "PUUID", "SEQ", "SIZE", "TYPE", "VOLTYPE",
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int bad(struct keel_error *err, const char *key, const char *v)
{
    return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: %s=\"%.64s\" is not valid",
                          key, v);
}

static int num(const char *key, const char *v, uint64_t max, uint64_t *ret,
               struct keel_error *err)
{
    if (keel_parse_u64(v, ret) != 0 || *ret > max)
        return bad(err, key, v);
    return 0;
}

/* Apply one key; unknown keys are ignored. */
static int apply(struct keel_vol_md *md, int k, const char *v, uint64_t *size,
                 struct keel_error *err)
{
    uint64_t n;
    int e;

    switch (k) {
    case K_CAP:
        if (num("CAP", v, UINT64_MAX, &n, err) != 0 || n == 0)
            return bad(err, "CAP", v);
        md->capacity = n;
        return 0;
    case K_SIZE:
        if (num("SIZE", v, UINT64_MAX / 512, &n, err) != 0 || n == 0)
            return bad(err, "SIZE", v);
        *size = n * 512;
        return 0;
    case K_CTIME:
        return num("CTIME", v, UINT64_MAX, &md->ctime, err);
    case K_GEN:
        if (num("GEN", v, 999, &n, err) != 0)
            return -1;
        md->gen = (unsigned)n;
        return 0;
    case K_SEQ:
        if (num("SEQ", v, UINT32_MAX, &n, err) != 0)
            return -1;
        md->seq = (uint32_t)n;
        return 0;
    case K_DESCRIPTION:
        if (strlen(v) > KEEL_VOL_MD_DESCRIPTION_MAX)
            return keel_error_set(err, KEEL_E_FORMAT, 0,
                                  "volume metadata: DESCRIPTION longer than %d bytes",
                                  KEEL_VOL_MD_DESCRIPTION_MAX);
        memset(md->description, 0, sizeof(md->description)); /* a repeated key: no tail */
        keel_strlcpy(md->description, v, sizeof(md->description));
        return 0;
    case K_DISKTYPE:
        if (strlen(v) >= sizeof(md->disktype) || v[0] == '\0')
            return bad(err, "DISKTYPE", v);
        memset(md->disktype, 0, sizeof(md->disktype));
        keel_strlcpy(md->disktype, v, sizeof(md->disktype));
        return 0;
    case K_DOMAIN:
    case K_IMAGE:
    case K_PUUID:
        if (!keel_uuid_valid(v))
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: %s=\"%.64s\" is not "
                                  "a UUID", key_names[k], v);
        keel_strlcpy(k == K_DOMAIN ? md->domain : k == K_IMAGE ? md->image : md->parent, v,
                     KEEL_UUID_LEN + 1);
        return 0;
    case K_FORMAT:
        if ((e = lookup(v, format_names, 2)) < 0)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: FORMAT=\"%.32s\" is "
                                  "not RAW or COW", v);
        md->format = (enum keel_vol_format)e;
        return 0;
    case K_TYPE:
        if ((e = lookup(v, type_names, 3)) < 0)
            return bad(err, "TYPE", v);
        md->type = (enum keel_vol_type)e;
        return 0;
    case K_VOLTYPE:
        if ((e = lookup(v, role_names, 3)) < 0)
            return bad(err, "VOLTYPE", v);
        md->role = (enum keel_vol_role)e;
        return 0;
    case K_LEGALITY:
        if ((e = lookup(v, legality_names, 3)) < 0)
            return bad(err, "LEGALITY", v);
        md->legality = (enum keel_vol_legality)e;
        return 0;
    }
    return 0;
}

/* The cleared form: "NONE=" then only '#' (and the EOF line). */
static bool is_cleared(const char *t, size_t len)
{
    size_t i = 5;

    if (len < 6 || memcmp(t, "NONE=", 5) != 0)
        return false;
    while (i < len && t[i] == '#')
        i++;
    return i > 5 && (i == len || t[i] == '\n');
}

int keel_vol_md_parse(const char *text, size_t len, struct keel_vol_md *out,
                      struct keel_error *err)
{
    struct keel_vol_md md = { 0 };
    bool seen[K_COUNT] = { false }, eof = false;
    uint64_t size = 0;
    char line[KEEL_VOL_MD_SIZE + 1];

    while (len > 0 && text[len - 1] == '\0')
        len--;
    if (len == 0)
        return keel_error_set(err, KEEL_E_NOENT, 0, "volume metadata: empty");
    if (len > KEEL_VOL_MD_SIZE)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: %zu bytes, more than %d",
                              len, KEEL_VOL_MD_SIZE);
    if (memchr(text, '\0', len) != NULL)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: NUL byte inside");
    if (is_cleared(text, len)) {
        memset(out, 0, sizeof(*out));
        out->cleared = true;
        return 0;
    }
    for (size_t i = 0; i < len && !eof;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t l = nl ? (size_t)(nl - (text + i)) : len - i;
        char *eq, *k, *v, *end;
        int key = -1;

        memcpy(line, text + i, l);
        line[l] = '\0';
        i += l + 1;
        if (strncmp(line, "EOF", 3) == 0) {
            eof = true;
            break;
        }
        eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        for (k = line; is_blank(*k); k++)
            ;
        for (end = eq; end > k && is_blank(end[-1]); end--)
            ;
        *end = '\0';
        for (v = eq + 1; is_blank(*v); v++)
            ;
        for (end = v + strlen(v); end > v && is_blank(end[-1]); end--)
            ;
        *end = '\0';
        for (int j = 0; j < K_COUNT; j++)
            if (strcmp(k, key_names[j]) == 0)
                key = j;
        if (key < 0)
            continue; /* MTIME, POOL_UUID, unknown keys */
        if (apply(&md, key, v, &size, err) != 0)
            return -1;
        seen[key] = true;
    }
    if (!eof)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: missing EOF");
    if (!seen[K_CAP]) {
        if (!seen[K_SIZE])
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: CAP is missing");
        md.capacity = size;
    }
    for (int j = 0; j < K_COUNT; j++)
        if (!seen[j] && j != K_CAP && j != K_SIZE && j != K_GEN && j != K_SEQ)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: %s is missing",
                                  key_names[j]);
    *out = md;
    return 0;
}

int keel_vol_md_format(const struct keel_vol_md *md, unsigned version, char *buf, size_t cap,
                       size_t *len, struct keel_error *err)
{
    char tmp[2048];
    int n;

    if (version != 4 && version != 5)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: no version %u form",
                              version);
    if (md->cleared || md->capacity == 0 || md->gen > 999 || strchr(md->description, '\n') ||
        strlen(md->disktype) == 0 || strchr(md->disktype, '\n') || !keel_uuid_valid(md->domain) ||
        !keel_uuid_valid(md->image) || !keel_uuid_valid(md->parent))
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: incomplete or invalid");
    if (version == 4 && md->capacity % 512 != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: V4 capacity must be a "
                              "multiple of 512");
    if (version == 5)
        n = snprintf(tmp, sizeof(tmp),
                     "CAP=%" PRIu64 "\nCTIME=%" PRIu64 "\nDESCRIPTION=%s\nDISKTYPE=%s\n"
                     "DOMAIN=%s\nFORMAT=%s\nGEN=%u\nIMAGE=%s\nLEGALITY=%s\nPUUID=%s\n"
                     "SEQ=%" PRIu32 "\nTYPE=%s\nVOLTYPE=%s\nEOF\n",
                     md->capacity, md->ctime, md->description, md->disktype, md->domain,
                     format_names[md->format], md->gen, md->image,
                     legality_names[md->legality], md->parent, md->seq, type_names[md->type],
                     role_names[md->role]);
    else
        n = snprintf(tmp, sizeof(tmp),
                     "CTIME=%" PRIu64 "\nDESCRIPTION=%s\nDISKTYPE=%s\nDOMAIN=%s\nFORMAT=%s\n"
                     "GEN=%u\nIMAGE=%s\nLEGALITY=%s\nMTIME=0\nPUUID=%s\nSIZE=%" PRIu64 "\n"
                     "TYPE=%s\nVOLTYPE=%s\nEOF\n",
                     md->ctime, md->description, md->disktype, md->domain,
                     format_names[md->format], md->gen, md->image,
                     legality_names[md->legality], md->parent, md->capacity / 512,
                     type_names[md->type], role_names[md->role]);
    if (n < 0 || (size_t)n >= sizeof(tmp) || n > KEEL_VOL_MD_SIZE)
        return keel_error_set(err, KEEL_E_RANGE, 0, "volume metadata overflow: %d bytes, at "
                              "most %d", n, KEEL_VOL_MD_SIZE);
    if ((size_t)n >= cap)
        return keel_error_set(err, KEEL_E_RANGE, 0, "volume metadata: buffer too small");
    memcpy(buf, tmp, (size_t)n + 1);
    if (len != NULL)
        *len = (size_t)n;
    return 0;
}

int keel_vol_md_format_slot(const struct keel_vol_md *md, unsigned version,
                            unsigned char slot[KEEL_VOL_MD_SIZE], struct keel_error *err)
{
    char buf[KEEL_VOL_MD_SIZE + 1];
    size_t n;

    if (keel_vol_md_format(md, version, buf, sizeof(buf), &n, err) != 0)
        return -1;
    memset(slot, 0, KEEL_VOL_MD_SIZE);
    memcpy(slot, buf, n);
    return 0;
}

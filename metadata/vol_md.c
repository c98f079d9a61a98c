/*
 * oVirt volume metadata, V4 and V5: parse and format.  The forms, the
 * invariants and the reading rules are in vol_md.h; the format is
 * ../shared/specs/ovirt-storage-format.md sections 1, 4.4, 5.1 and 5.2.
 *
 * Parsing runs in two passes over at most 512 bytes, with no allocation:
 * the first splits lines up to EOF and remembers the last value of each
 * known key (a repeated key keeps its last value, as VDSM's dict does); the
 * second checks the values in key order, so the first error reported is the
 * same whatever the line order.
 */
#include "metadata/vol_md.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/strutil.h"
#include "common/utf8.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const format_names[] = { "RAW", "COW" };
static const char *const type_names[] = { "PREALLOCATED", "SPARSE", "UNKNOWN" };
static const char *const role_names[] = { "LEAF", "INTERNAL", "SHARED" };
static const char *const legality_names[] = { "LEGAL", "ILLEGAL", "FAKE" };

/* An enum from a caller may hold anything: never index past the table. */
static const char *name_of(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : NULL;
}

const char *keel_vol_format_name(enum keel_vol_format f)
{
    return name_of(format_names, NELEM(format_names), (unsigned)f);
}

const char *keel_vol_type_name(enum keel_vol_type t)
{
    return name_of(type_names, NELEM(type_names), (unsigned)t);
}

const char *keel_vol_role_name(enum keel_vol_role r)
{
    return name_of(role_names, NELEM(role_names), (unsigned)r);
}

const char *keel_vol_legality_name(enum keel_vol_legality l)
{
    return name_of(legality_names, NELEM(legality_names), (unsigned)l);
}

uint64_t keel_vol_md_slot_offset(unsigned version, unsigned slot)
{
    /* Section 4.4, metadata_offset(): V5 moved the slots past the V4 area. */
    if (version >= 5)
        return KEEL_VOL_MD_V5_AREA + (uint64_t)slot * KEEL_VOL_MD_V5_SLOT_SIZE;
    return (uint64_t)slot * KEEL_VOL_MD_SIZE;
}

unsigned keel_vol_md_first_slot(unsigned version)
{
    /* V4 slots 0-3 held domain metadata in very old versions (section 1). */
    return version >= 5 ? 1 : 4;
}

/* ---- UTF-8 and white space, as VDSM's Python sees them ---- */

/* Characters, not bytes, in valid UTF-8. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/*
 * Python's str.isspace(): VDSM strips keys and values with str.strip(),
 * which removes these, not only ASCII blanks.
 */
static bool py_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 ||
           cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* Length of a white-space character at the start of s[0..len), or 0. */
static size_t space_at(const char *s, size_t len)
{
    uint32_t cp;
    size_t n = len > 0 ? keel_utf8_next((const unsigned char *)s, len, &cp) : 0;

    return n > 0 && py_space(cp) ? n : 0;
}

/* Length of a white-space character ending s[0..len), or 0. */
static size_t space_before(const char *s, size_t len)
{
    size_t i = len;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && len - i < 3)
        i--;
    if (i == 0)
        return 0;
    i--;
    return space_at(s + i, len - i) == len - i ? len - i : 0;
}

/* Narrow [*s, *s + *n) to what str.strip() keeps; the span is valid UTF-8. */
static void strip(const char **s, size_t *n)
{
    size_t k;

    while ((k = space_at(*s, *n)) > 0)
        *s += k, *n -= k;
    while ((k = space_before(*s, *n)) > 0)
        *n -= k;
}

/* ---- parse ---- */

/* The keys Keel reads, sorted as they are written. */
enum { K_CAP, K_CTIME, K_DESCRIPTION, K_DISKTYPE, K_DOMAIN, K_FORMAT, K_GEN, K_IMAGE,
       K_LEGALITY, K_PUUID, K_SEQ, K_SIZE, K_TYPE, K_VOLTYPE, K_COUNT };
static const char *const key_names[K_COUNT] = {
    "CAP", "CTIME", "DESCRIPTION", "DISKTYPE", "DOMAIN", "FORMAT", "GEN", "IMAGE",
    "LEGALITY", "PUUID", "SEQ", "SIZE", "TYPE", "VOLTYPE",
};

static int find_key(const char *k, size_t n)
{
    for (int j = 0; j < K_COUNT; j++)
        if (strlen(key_names[j]) == n && memcmp(k, key_names[j], n) == 0)
            return j;
    return -1;
}

/* The last value seen for a key: a span of the caller's text. */
struct value {
    const char *p;
    size_t n;
    bool set;
};

/* A value for a message: at most 40 bytes, cut at a character boundary. */
static const char *shown(const char *v, char out[48])
{
    size_t n = strlen(v);

    if (n <= 40)
        return v;
    n = 40;
    while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
        n--;
    memcpy(out, v, n);
    memcpy(out + n, "...", 4);
    return out;
}

static int invalid(struct keel_error *err, int k, const char *v)
{
    char buf[48];

    return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: invalid %s \"%s\"",
                          key_names[k], shown(v, buf));
}

static int unknown(struct keel_error *err, int k, const char *v)
{
    char buf[48];

    return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: unknown %s \"%s\"",
                          key_names[k], shown(v, buf));
}

static int lookup(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    return -1;
}

/* A whole decimal number in [min, max]. */
static int number(int k, const char *v, uint64_t min, uint64_t max, uint64_t *ret,
                  struct keel_error *err)
{
    uint64_t n;

    if (keel_parse_u64(v, &n) != 0 || n < min || n > max)
        return invalid(err, k, v);
    *ret = n;
    return 0;
}

/*
 * DESCRIPTION: VDSM cuts an over-long one to 210 characters rather than
 * refusing the volume (old engines sent longer ones).  Cutting may leave
 * white space at the end, which a reader would strip: strip it now so that
 * what was read is what reads back.
 */
static void set_description(struct keel_vol_md *md, const char *v, size_t n)
{
    size_t chars = 0, i;

    for (i = 0; i < n; i++) {
        if (((unsigned char)v[i] & 0xc0) != 0x80 && chars++ == KEEL_VOL_MD_DESCRIPTION_MAX)
            break;
    }
    n = i;
    strip(&v, &n);
    memcpy(md->description, v, n);
    md->description[n] = '\0';
}

static bool disktype_ok(const char *v, size_t n)
{
    if (n == 0 || n > KEEL_VOL_MD_DISKTYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] >= 0x7f)
            return false;
    return true;
}

/* Check value v (n bytes, NUL-terminated) of key k and store it in *md. */
static int apply(struct keel_vol_md *md, int k, const char *v, size_t n, struct keel_error *err)
{
    uint64_t u = 0;
    int e;

    switch (k) {
    case K_CAP:
        return number(k, v, 1, UINT64_MAX, &md->capacity, err);
    case K_SIZE:
        if (number(k, v, 1, UINT64_MAX / 512, &u, err) != 0)
            return -1;
        md->capacity = u * 512;
        return 0;
    case K_CTIME:
        return number(k, v, 0, UINT64_MAX, &md->ctime, err);
    case K_GEN:
        if (number(k, v, 0, 999, &u, err) != 0)
            return -1;
        md->gen = (unsigned)u;
        return 0;
    case K_SEQ:
        if (number(k, v, 0, UINT32_MAX, &u, err) != 0)
            return -1;
        md->seq = (uint32_t)u;
        return 0;
    case K_DESCRIPTION:
        set_description(md, v, n);
        return 0;
    case K_DISKTYPE:
        if (!disktype_ok(v, n))
            return invalid(err, k, v);
        memcpy(md->disktype, v, n + 1);
        return 0;
    case K_DOMAIN:
    case K_IMAGE:
    case K_PUUID:
        if (!keel_uuid_valid_n(v, n))
            return invalid(err, k, v);
        memcpy(k == K_DOMAIN ? md->domain : k == K_IMAGE ? md->image : md->parent, v, n + 1);
        return 0;
    case K_FORMAT:
        if ((e = lookup(v, format_names, NELEM(format_names))) < 0)
            return unknown(err, k, v);
        md->format = (enum keel_vol_format)e;
        return 0;
    case K_TYPE:
        if ((e = lookup(v, type_names, NELEM(type_names))) < 0)
            return unknown(err, k, v);
        md->type = (enum keel_vol_type)e;
        return 0;
    case K_VOLTYPE:
        if ((e = lookup(v, role_names, NELEM(role_names))) < 0)
            return unknown(err, k, v);
        md->role = (enum keel_vol_role)e;
        return 0;
    case K_LEGALITY:
        if ((e = lookup(v, legality_names, NELEM(legality_names))) < 0)
            return unknown(err, k, v);
        md->legality = (enum keel_vol_legality)e;
        return 0;
    }
    return 0;
}

/* Store values[k], copied and NUL-terminated (a value is shorter than the text). */
static int apply_value(struct keel_vol_md *md, int k, const struct value *val,
                       struct keel_error *err)
{
    char v[KEEL_VOL_MD_SIZE];

    memcpy(v, val->p, val->n);
    v[val->n] = '\0';
    return apply(md, k, v, val->n, err);
}

/* UTF-8 error in the line p[0..n): name the key when there is a known one. */
static int bad_utf8(const char *p, size_t n, unsigned lineno, struct keel_error *err)
{
    const char *eq = memchr(p, '=', n);
    size_t kn;
    int k;

    if (eq != NULL && keel_utf8_valid(p, (size_t)(eq - p))) {
        kn = (size_t)(eq - p);
        strip(&p, &kn);
        if ((k = find_key(p, kn)) >= 0)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: invalid UTF-8 in %s",
                                  key_names[k]);
    }
    return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: invalid UTF-8 in line %u",
                          lineno);
}

int keel_vol_md_parse(const char *text, size_t len, struct keel_vol_md *out,
                      struct keel_error *err)
{
    struct value values[K_COUNT] = { { NULL, 0, false } };
    struct keel_vol_md md;
    bool eof = false, cleared = false;
    const char *p = text, *end;

    /* Block slots are NUL-padded to 512 bytes (section 4.4). */
    while (len > 0 && text[len - 1] == '\0')
        len--;
    if (len == 0)
        return keel_error_set(err, KEEL_E_NOENT, 0, "volume metadata: empty");
    if (len > KEEL_VOL_MD_SIZE)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: %zu bytes, more than %d",
                              len, KEEL_VOL_MD_SIZE);
    end = text + len;

    /* Pass 1: lines up to EOF; what follows EOF is never looked at. */
    for (unsigned lineno = 1; p < end && !eof; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        const char *line = p, *eq, *k, *v;
        size_t kn, vn;
        int key;

        p = nl != NULL ? nl + 1 : end;
        if (memchr(line, '\0', n) != NULL)
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: NUL byte in line %u",
                                  lineno);
        /* VDSM decodes each line before it looks for EOF: "EOF\xff" is bad. */
        if (!keel_utf8_valid(line, n))
            return bad_utf8(line, n, lineno, err);
        if (n >= 3 && memcmp(line, "EOF", 3) == 0) {
            eof = true;
            continue;
        }
        eq = memchr(line, '=', n);
        if (eq == NULL)
            continue;
        k = line, kn = (size_t)(eq - line);
        v = eq + 1, vn = n - kn - 1;
        strip(&k, &kn);
        strip(&v, &vn);
        if (kn == 4 && memcmp(k, "NONE", 4) == 0)
            cleared = true; /* section 5.1: any NONE key marks the cleared form */
        else if ((key = find_key(k, kn)) >= 0)
            values[key] = (struct value){ v, vn, true };
    }
    if (!eof)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: missing EOF");

    memset(&md, 0, sizeof(md));
    if (cleared) {
        md.cleared = true;
        md.legality = KEEL_VOL_ILLEGAL;
        *out = md;
        return 0;
    }

    /* Pass 2: every key in order; CAP falls back on SIZE, GEN and SEQ on 0. */
    for (int k = 0; k < K_COUNT; k++) {
        if (k == K_SIZE)
            continue;
        if (values[k].set) {
            if (apply_value(&md, k, &values[k], err) != 0)
                return -1;
        } else if (k == K_CAP && values[K_SIZE].set) {
            if (apply_value(&md, K_SIZE, &values[K_SIZE], err) != 0)
                return -1;
        } else if (k != K_GEN && k != K_SEQ) {
            return keel_error_set(err, KEEL_E_FORMAT, 0, "volume metadata: missing %s",
                                  key_names[k]);
        }
    }
    *out = md;
    return 0;
}

/* ---- format ---- */

/* A UUID field: exactly 36 characters then NUL, lower case (invariant 4). */
static int check_uuid(const char *f, const char *key, struct keel_error *err)
{
    if (f[KEEL_UUID_LEN] == '\0' && keel_uuid_valid_n(f, KEEL_UUID_LEN))
        return 0;
    return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: invalid %s \"%.*s\"", key,
                          KEEL_UUID_LEN, f);
}

static int check_description(const char *d, struct keel_error *err)
{
    const char *nul = memchr(d, '\0', KEEL_VOL_MD_SIZE);
    size_t n;

    if (nul == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: DESCRIPTION is not "
                              "terminated");
    n = (size_t)(nul - d);
    if (!keel_utf8_valid(d, n))
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: DESCRIPTION is not "
                              "valid UTF-8");
    if (utf8_chars(d, n) > KEEL_VOL_MD_DESCRIPTION_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: DESCRIPTION longer than "
                              "%d characters", KEEL_VOL_MD_DESCRIPTION_MAX);
    /* A CR could end the line for a reader that splits lines on it too. */
    if (memchr(d, '\n', n) != NULL || memchr(d, '\r', n) != NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: DESCRIPTION holds a "
                              "line break");
    if (space_at(d, n) > 0 || space_before(d, n) > 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: DESCRIPTION starts or "
                              "ends with white space");
    return 0;
}

/* Everything keel_vol_md_parse() would refuse, or read back differently. */
static int check(const struct keel_vol_md *md, unsigned version, struct keel_error *err)
{
    const char *dt_end = memchr(md->disktype, '\0', sizeof(md->disktype));

    if (version != 4 && version != 5)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: no version %u form",
                              version);
    if (md->cleared)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: cleared metadata cannot "
                              "be written");
    if (md->capacity == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: invalid capacity 0");
    if (version == 4 && md->capacity % 512 != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: capacity %" PRIu64
                              " is not a multiple of 512 (V4)", md->capacity);
    if (md->gen > 999)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: invalid GEN %u", md->gen);
    if (keel_vol_format_name(md->format) == NULL || keel_vol_type_name(md->type) == NULL ||
        keel_vol_role_name(md->role) == NULL || keel_vol_legality_name(md->legality) == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: FORMAT, TYPE, VOLTYPE or "
                              "LEGALITY out of range");
    if (dt_end == NULL || !disktype_ok(md->disktype, (size_t)(dt_end - md->disktype)))
        return keel_error_set(err, KEEL_E_INVAL, 0, "volume metadata: invalid DISKTYPE \"%.*s\"",
                              KEEL_VOL_MD_DISKTYPE_MAX, md->disktype);
    if (check_uuid(md->domain, "DOMAIN", err) != 0 || check_uuid(md->image, "IMAGE", err) != 0 ||
        check_uuid(md->parent, "PUUID", err) != 0)
        return -1;
    return check_description(md->description, err);
}

int keel_vol_md_format(const struct keel_vol_md *md, unsigned version, char *buf, size_t cap,
                       size_t *len, struct keel_error *err)
{
    /* Every field is bounded (description < 512 bytes): this never cuts. */
    char tmp[2 * KEEL_VOL_MD_SIZE + 512];
    int n;

    if (check(md, version, err) != 0)
        return -1;
    /* Section 5.2: keys in byte order, each "KEY=VALUE\n", then "EOF\n". */
    if (version == 5)
        n = snprintf(tmp, sizeof(tmp),
                     "CAP=%" PRIu64 "\nCTIME=%" PRIu64 "\nDESCRIPTION=%s\nDISKTYPE=%s\n"
                     "DOMAIN=%s\nFORMAT=%s\nGEN=%u\nIMAGE=%s\nLEGALITY=%s\nPUUID=%s\n"
                     "SEQ=%" PRIu32 "\nTYPE=%s\nVOLTYPE=%s\nEOF\n",
                     md->capacity, md->ctime, md->description, md->disktype, md->domain,
                     format_names[md->format], md->gen, md->image, legality_names[md->legality],
                     md->parent, md->seq, type_names[md->type], role_names[md->role]);
    else
        n = snprintf(tmp, sizeof(tmp),
                     "CTIME=%" PRIu64 "\nDESCRIPTION=%s\nDISKTYPE=%s\nDOMAIN=%s\nFORMAT=%s\n"
                     "GEN=%u\nIMAGE=%s\nLEGALITY=%s\nMTIME=0\nPUUID=%s\nSIZE=%" PRIu64 "\n"
                     "TYPE=%s\nVOLTYPE=%s\nEOF\n",
                     md->ctime, md->description, md->disktype, md->domain,
                     format_names[md->format], md->gen, md->image, legality_names[md->legality],
                     md->parent, md->capacity / 512, type_names[md->type], role_names[md->role]);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "volume metadata: cannot format");
    if (n > KEEL_VOL_MD_SIZE) /* invariant 1 */
        return keel_error_set(err, KEEL_E_RANGE, 0, "volume metadata overflow: %d bytes, at "
                              "most %d", n, KEEL_VOL_MD_SIZE);
    if ((size_t)n >= cap)
        return keel_error_set(err, KEEL_E_RANGE, 0, "volume metadata: buffer of %zu bytes is "
                              "too small", cap);
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
    /* Invariant 3: the whole slot, so no tail of an older text survives. */
    memset(slot, 0, KEEL_VOL_MD_SIZE);
    memcpy(slot, buf, n);
    return 0;
}

bool keel_vol_md_equal(const struct keel_vol_md *a, const struct keel_vol_md *b)
{
    return a->cleared == b->cleared && a->capacity == b->capacity && a->ctime == b->ctime &&
           strncmp(a->description, b->description, sizeof(a->description)) == 0 &&
           strncmp(a->disktype, b->disktype, sizeof(a->disktype)) == 0 &&
           strncmp(a->domain, b->domain, sizeof(a->domain)) == 0 && a->format == b->format &&
           a->gen == b->gen && strncmp(a->image, b->image, sizeof(a->image)) == 0 &&
           a->legality == b->legality &&
           strncmp(a->parent, b->parent, sizeof(a->parent)) == 0 && a->seq == b->seq &&
           a->type == b->type && a->role == b->role;
}

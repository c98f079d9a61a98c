/* Storage domain metadata in oVirt's form; see sd_md.h. */
#include "metadata/sd_md.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/strutil.h"
#include "common/utf8.h"

#define DEFAULT_RENEWAL 5
#define DEFAULT_LEASETIME 60
#define DEFAULT_IOTIMEOUT 10
#define DEFAULT_RETRIES 3
#define MIB (UINT64_C(1) << 20)

/* ---- UTF-8 ---- */

/* Valid UTF-8 without NUL bytes: what a map's key or value may hold. */
static bool utf8_valid(const char *s, size_t len)
{
    return keel_utf8_valid(s, len) && memchr(s, '\0', len) == NULL;
}

static void utf8_put(struct keel_strbuf *out, uint32_t cp)
{
    char b[4];

    keel_strbuf_add(out, b, keel_utf8_encode(cp, b));
}

/* ---- the map ---- */

void keel_sd_md_init(struct keel_sd_md *md)
{
    memset(md, 0, sizeof(*md));
}

void keel_sd_md_release(struct keel_sd_md *md)
{
    if (md == NULL)
        return;
    for (size_t i = 0; i < md->n; i++) {
        free(md->kv[i].key);
        free(md->kv[i].value);
    }
    free(md->kv);
    keel_sd_md_init(md);
}

/* Index of key, or of where it would go (*found false). */
static size_t find(const struct keel_sd_md *md, const char *key, bool *found)
{
    size_t lo = 0, hi = md->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(md->kv[mid].key, key);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *keel_sd_md_get(const struct keel_sd_md *md, const char *key)
{
    bool found;
    size_t i = find(md, key, &found);

    return found ? md->kv[i].value : NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

/* s[0..*len) without blanks at its ends: the new start, *len updated. */
static const char *strip(const char *s, size_t *len)
{
    size_t n = *len;

    while (n > 0 && is_blank(*s))
        s++, n--;
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    *len = n;
    return s;
}

/* Set key[0..klen) = value[0..vlen), both already stripped and checked. */
static int set_n(struct keel_sd_md *md, const char *key, size_t klen, const char *value,
                 size_t vlen, struct keel_error *err)
{
    char *k = strndup(key, klen), *v = strndup(value, vlen);
    bool found;
    size_t i;

    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "domain metadata: out of memory");
    }
    i = find(md, k, &found);
    if (found) {
        free(k);
        free(md->kv[i].value);
        md->kv[i].value = v;
        return 0;
    }
    if (md->n == md->alloc) {
        size_t na = md->alloc ? md->alloc * 2 : 32;
        struct keel_sd_md_kv *nkv = realloc(md->kv, na * sizeof(*nkv));

        if (nkv == NULL) {
            free(k);
            free(v);
            return keel_error_set(err, KEEL_E_NOMEM, 0, "domain metadata: out of memory");
        }
        md->kv = nkv;
        md->alloc = na;
    }
    memmove(&md->kv[i + 1], &md->kv[i], (md->n - i) * sizeof(md->kv[0]));
    md->kv[i].key = k;
    md->kv[i].value = v;
    md->n++;
    return 0;
}

/* Invariants 2 and 3 on a stripped pair. */
static int check_pair(const char *key, size_t klen, const char *value, size_t vlen,
                      struct keel_error *err)
{
    if (klen == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "domain metadata: empty key");
    if (memchr(key, '=', klen) || memchr(key, '\n', klen) || memchr(key, '\0', klen))
        return keel_error_set(err, KEEL_E_INVAL, 0, "domain metadata: bad key \"%.*s\"",
                              (int)KEEL_MIN(klen, (size_t)64), key);
    if (klen == strlen(KEEL_SD_MD_SEAL_KEY) && memcmp(key, KEEL_SD_MD_SEAL_KEY, klen) == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "domain metadata: %s is not a key",
                              KEEL_SD_MD_SEAL_KEY);
    if (memchr(value, '\n', vlen) || !utf8_valid(value, vlen) || !utf8_valid(key, klen))
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "domain metadata: %.*s: value is not one line of UTF-8",
                              (int)KEEL_MIN(klen, (size_t)64), key);
    return 0;
}

int keel_sd_md_set(struct keel_sd_md *md, const char *key, const char *value,
                   struct keel_error *err)
{
    size_t klen = strlen(key), vlen = strlen(value);
    const char *k = strip(key, &klen), *v = strip(value, &vlen);

    if (klen != strlen(key))
        return keel_error_set(err, KEEL_E_INVAL, 0, "domain metadata: bad key \"%s\"", key);
    if (check_pair(k, klen, v, vlen, err) != 0)
        return -1;
    return set_n(md, k, klen, v, vlen, err);
}

int keel_sd_md_set_u64(struct keel_sd_md *md, const char *key, uint64_t value,
                       struct keel_error *err)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return keel_sd_md_set(md, key, buf, err);
}

bool keel_sd_md_del(struct keel_sd_md *md, const char *key)
{
    bool found;
    size_t i = find(md, key, &found);

    if (!found)
        return false;
    free(md->kv[i].key);
    free(md->kv[i].value);
    memmove(&md->kv[i], &md->kv[i + 1], (md->n - i - 1) * sizeof(md->kv[0]));
    md->n--;
    return true;
}

int keel_sd_md_copy(struct keel_sd_md *dst, const struct keel_sd_md *src, struct keel_error *err)
{
    struct keel_sd_md tmp;

    keel_sd_md_init(&tmp);
    for (size_t i = 0; i < src->n; i++) {
        if (set_n(&tmp, src->kv[i].key, strlen(src->kv[i].key), src->kv[i].value,
                  strlen(src->kv[i].value), err) != 0) {
            keel_sd_md_release(&tmp);
            return -1;
        }
    }
    keel_sd_md_release(dst);
    *dst = tmp;
    return 0;
}

bool keel_sd_md_equal(const struct keel_sd_md *a, const struct keel_sd_md *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->kv[i].key, b->kv[i].key) != 0 ||
            strcmp(a->kv[i].value, b->kv[i].value) != 0)
            return false;
    return true;
}

/* ---- the seal ---- */

/* s with every non-ASCII code point as "&#N;" (Python's xmlcharrefreplace). */
static void seal_form(const char *s, struct keel_strbuf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = keel_utf8_next(p + i, len - i, &cp);

        if (n == 0) { /* not reached: the map holds UTF-8 only (invariant 3) */
            keel_strbuf_add(out, p + i, 1);
            i++;
            continue;
        }
        if (cp < 0x80)
            keel_strbuf_add(out, p + i, 1);
        else
            keel_strbuf_addf(out, "&#%" PRIu32 ";", cp);
        i += n;
    }
}

void keel_sd_md_seal(const struct keel_sd_md *md, char hex[41])
{
    struct keel_strbuf sb;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    keel_strbuf_init(&sb, 1024);
    for (size_t i = 0; i < md->n; i++) {
        seal_form(md->kv[i].key, &sb);
        keel_strbuf_add(&sb, "=", 1);
        seal_form(md->kv[i].value, &sb);
    }
    if (sb.failed || EVP_Digest(sb.buf, sb.len, digest, &dlen, EVP_sha1(), NULL) != 1 ||
        dlen != 20) {
        /* Out of memory: a seal no reader accepts, never a wrong "valid" one. */
        memset(hex, '0', 40);
    } else {
        for (unsigned i = 0; i < 20; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    hex[40] = '\0';
    keel_strbuf_release(&sb);
}

/* ---- file form ---- */

/*
 * Add one "KEY=VALUE" line (line[0..len)); a seal line is returned in
 * seal[] and *has_seal instead.  Lines without '=' are skipped (VDSM warns).
 */
static int add_line(struct keel_sd_md *md, const char *line, size_t len, char *seal,
                    size_t seal_cap, bool *has_seal, struct keel_error *err)
{
    const char *eq = memchr(line, '=', len);
    size_t klen, vlen;
    const char *k, *v;

    if (eq == NULL)
        return 0;
    klen = (size_t)(eq - line);
    vlen = len - klen - 1;
    k = strip(line, &klen);
    v = strip(eq + 1, &vlen);
    if (klen == strlen(KEEL_SD_MD_SEAL_KEY) && memcmp(k, KEEL_SD_MD_SEAL_KEY, klen) == 0) {
        *has_seal = true;
        keel_strlcpy(seal, "", seal_cap);
        if (vlen < seal_cap) {
            memcpy(seal, v, vlen);
            seal[vlen] = '\0';
        } else {
            keel_strlcpy(seal, "(too long)", seal_cap);
        }
        return 0;
    }
    if (klen == 0)
        return 0;
    if (!utf8_valid(k, klen) || !utf8_valid(v, vlen))
        return keel_error_set(err, KEEL_E_FORMAT, 0,
                              "domain metadata: line \"%.*s...\" is not UTF-8",
                              (int)KEEL_MIN(klen, (size_t)32), k);
    return set_n(md, k, klen, v, vlen, err);
}

static int check_seal(const struct keel_sd_md *md, bool has_seal, const char *declared,
                      bool *sealed, struct keel_error *err)
{
    char hex[41];

    *sealed = false;
    if (md->n == 0 || !has_seal)
        return 0; /* empty, or unsealed: trusted as it is (section 2.1) */
    keel_sd_md_seal(md, hex);
    if (strcmp(hex, declared) != 0)
        return keel_error_set(err, KEEL_E_CHECKSUM, 0,
                              "metadata checksum mismatch: sealed %s, computed %s", declared,
                              hex);
    *sealed = true;
    return 0;
}

int keel_sd_md_parse(const char *text, size_t len, struct keel_sd_md *md, bool *sealed,
                     struct keel_error *err)
{
    struct keel_sd_md tmp;
    char declared[48] = "";
    bool has_seal = false, ok_sealed = false;

    while (len > 0 && text[len - 1] == '\0')
        len--;
    if (memchr(text, '\0', len) != NULL)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "domain metadata: NUL byte inside the text");
    keel_sd_md_init(&tmp);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t l = nl ? (size_t)(nl - (text + i)) : len - i;

        if (add_line(&tmp, text + i, l, declared, sizeof(declared), &has_seal, err) != 0)
            goto fail;
        i += l + 1;
    }
    if (check_seal(&tmp, has_seal, declared, &ok_sealed, err) != 0)
        goto fail;
    keel_sd_md_release(md);
    *md = tmp;
    if (sealed != NULL)
        *sealed = ok_sealed;
    return 0;
fail:
    keel_sd_md_release(&tmp);
    return -1;
}

void keel_sd_md_format(const struct keel_sd_md *md, struct keel_strbuf *out)
{
    char hex[41];

    for (size_t i = 0; i < md->n; i++)
        keel_strbuf_addf(out, "%s=%s\n", md->kv[i].key, md->kv[i].value);
    keel_sd_md_seal(md, hex);
    keel_strbuf_addf(out, "%s=%s\n", KEEL_SD_MD_SEAL_KEY, hex);
}

/* ---- VG tag form ---- */

static bool tag_plain(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("_+.-/=!:#", (int)c) != NULL);
}

void keel_sd_md_tag_escape(const char *line, struct keel_strbuf *out)
{
    const unsigned char *p = (const unsigned char *)line;
    size_t len = strlen(line);

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = keel_utf8_next(p + i, len - i, &cp);

        if (n == 0) /* not UTF-8: escape the byte itself */
            cp = p[i], n = 1;
        if (cp < 0x80 && tag_plain(cp))
            keel_strbuf_add(out, p + i, 1);
        else
            keel_strbuf_addf(out, "&%" PRIu32 "&", cp);
        i += n;
    }
}

int keel_sd_md_tag_unescape(const char *tag, struct keel_strbuf *out, struct keel_error *err)
{
    for (const char *p = tag; *p != '\0';) {
        const char *q = p + 1;
        uint32_t cp = 0;

        if (*p != '&') {
            keel_strbuf_add(out, p++, 1);
            continue;
        }
        while (*q >= '0' && *q <= '9' && q - p <= 8)
            cp = cp * 10 + (uint32_t)(*q++ - '0');
        if (q == p + 1 || *q != '&') { /* not an escape: a plain '&' */
            keel_strbuf_add(out, p++, 1);
            continue;
        }
        if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return keel_error_set(err, KEEL_E_FORMAT, 0,
                                  "domain metadata tag \"%.64s\": bad escape &%" PRIu32 "&",
                                  tag, cp);
        utf8_put(out, cp);
        p = q + 1;
    }
    return 0;
}

int keel_sd_md_from_tags(const char *const *tags, size_t ntags, struct keel_sd_md *md,
                         bool *sealed, struct keel_error *err)
{
    struct keel_sd_md tmp;
    struct keel_strbuf sb;
    char declared[48] = "";
    bool has_seal = false, ok_sealed = false;
    size_t plen = strlen(KEEL_SD_MD_TAG_PREFIX);

    keel_sd_md_init(&tmp);
    keel_strbuf_init(&sb, 256);
    for (size_t i = 0; i < ntags; i++) {
        if (!keel_str_has_prefix(tags[i], KEEL_SD_MD_TAG_PREFIX))
            continue;
        sb.len = 0;
        sb.buf[0] = '\0';
        if (keel_sd_md_tag_unescape(tags[i] + plen, &sb, err) != 0)
            goto fail;
        if (sb.failed) {
            keel_error_set(err, KEEL_E_NOMEM, 0, "domain metadata: out of memory");
            goto fail;
        }
        if (memchr(sb.buf, '\n', sb.len) != NULL) {
            keel_error_set(err, KEEL_E_FORMAT, 0,
                           "domain metadata tag \"%.64s\": newline inside", tags[i]);
            goto fail;
        }
        if (add_line(&tmp, sb.buf, sb.len, declared, sizeof(declared), &has_seal, err) != 0)
            goto fail;
    }
    if (check_seal(&tmp, has_seal, declared, &ok_sealed, err) != 0)
        goto fail;
    keel_strbuf_release(&sb);
    keel_sd_md_release(md);
    *md = tmp;
    if (sealed != NULL)
        *sealed = ok_sealed;
    return 0;
fail:
    keel_strbuf_release(&sb);
    keel_sd_md_release(&tmp);
    return -1;
}

void keel_sd_md_tags_free(char **tags, size_t ntags)
{
    if (tags == NULL)
        return;
    for (size_t i = 0; i < ntags; i++)
        free(tags[i]);
    free(tags);
}

int keel_sd_md_to_tags(const struct keel_sd_md *md, char ***tags, size_t *ntags,
                       struct keel_error *err)
{
    size_t n = md->n + 1;
    char **t = calloc(n, sizeof(*t));
    char hex[41];

    if (t == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "domain metadata: out of memory");
    keel_sd_md_seal(md, hex);
    for (size_t i = 0; i < n; i++) {
        struct keel_strbuf line, tag;

        keel_strbuf_init(&line, 128);
        keel_strbuf_init(&tag, 160);
        if (i < md->n)
            keel_strbuf_addf(&line, "%s=%s", md->kv[i].key, md->kv[i].value);
        else
            keel_strbuf_addf(&line, "%s=%s", KEEL_SD_MD_SEAL_KEY, hex);
        keel_strbuf_adds(&tag, KEEL_SD_MD_TAG_PREFIX);
        keel_sd_md_tag_escape(line.buf, &tag);
        keel_strbuf_release(&line);
        if (tag.failed) {
            keel_strbuf_release(&tag);
            keel_sd_md_tags_free(t, n);
            return keel_error_set(err, KEEL_E_NOMEM, 0, "domain metadata: out of memory");
        }
        t[i] = keel_strbuf_detach(&tag, NULL);
    }
    *tags = t;
    *ntags = n;
    return 0;
}

/* ---- typed view ---- */

static const char *const type_names[] = {
    [KEEL_SD_TYPE_NFS] = "NFS",         [KEEL_SD_TYPE_FCP] = "FCP",
    [KEEL_SD_TYPE_ISCSI] = "ISCSI",     [KEEL_SD_TYPE_LOCALFS] = "LOCALFS",
    [KEEL_SD_TYPE_CIFS] = "CIFS",       [KEEL_SD_TYPE_POSIXFS] = "POSIXFS",
    [KEEL_SD_TYPE_GLUSTERFS] = "GLUSTERFS",
};

const char *keel_sd_type_name(enum keel_sd_type t)
{
    if ((size_t)t >= sizeof(type_names) / sizeof(type_names[0]))
        return NULL;
    return type_names[t];
}

int keel_sd_type_parse(const char *s, enum keel_sd_type *ret)
{
    for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(s, type_names[i]) == 0) {
            *ret = (enum keel_sd_type)i;
            return 0;
        }
    return -1;
}

bool keel_sd_type_is_block(enum keel_sd_type t)
{
    return t == KEEL_SD_TYPE_ISCSI || t == KEEL_SD_TYPE_FCP;
}

static const char *const class_names[] = {
    [KEEL_SD_CLASS_DATA] = "Data",
    [KEEL_SD_CLASS_ISO] = "Iso",
    [KEEL_SD_CLASS_BACKUP] = "Backup",
};

const char *keel_sd_class_name(enum keel_sd_class c)
{
    if ((size_t)c >= sizeof(class_names) / sizeof(class_names[0]))
        return NULL;
    return class_names[c];
}

int keel_sd_class_parse(const char *s, enum keel_sd_class *ret)
{
    for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++)
        if (strcmp(s, class_names[i]) == 0) {
            *ret = (enum keel_sd_class)i;
            return 0;
        }
    return -1;
}

static int need(const struct keel_sd_md *md, const char *key, const char **ret,
                struct keel_error *err)
{
    *ret = keel_sd_md_get(md, key);
    if (*ret == NULL)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "domain metadata: %s is missing", key);
    return 0;
}

static int need_u64(const struct keel_sd_md *md, const char *key, uint64_t *ret,
                    struct keel_error *err)
{
    const char *v;

    if (need(md, key, &v, err) != 0)
        return -1;
    if (keel_parse_u64(v, ret) != 0)
        return keel_error_set(err, KEEL_E_FORMAT, 0, "domain metadata: %s=\"%.64s\" is not a number",
                              key, v);
    return 0;
}

/* An int key with VDSM's fallback: an unparsable value gives the default. */
static unsigned soft_uint(const struct keel_sd_md *md, const char *key, unsigned def)
{
    const char *v = keel_sd_md_get(md, key);
    uint64_t n;

    if (v == NULL || keel_parse_u64(v, &n) != 0 || n > 100000)
        return def;
    return (unsigned)n;
}

/* Python's str.capitalize() == "Master", without allocating. */
static bool is_master(const char *role)
{
    const char *m = "master";

    if (strlen(role) != 6)
        return false;
    for (size_t i = 0; i < 6; i++) {
        char c = role[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != m[i])
            return false;
    }
    return true;
}

int keel_sd_md_info(const struct keel_sd_md *md, struct keel_sd_info *info,
                    struct keel_error *err)
{
    struct keel_sd_info in = { 0 };
    const char *v;
    uint64_t n;

    if (need(md, KEEL_SDK_SDUUID, &v, err) != 0)
        return -1;
    if (!keel_uuid_valid(v))
        return keel_error_set(err, KEEL_E_FORMAT, 0, "domain metadata: SDUUID=\"%.64s\" is not a UUID",
                              v);
    keel_strlcpy(in.uuid, v, sizeof(in.uuid));
    if (need_u64(md, KEEL_SDK_VERSION, &n, err) != 0)
        goto ctx;
    if (n < 3 || n > 5) {
        keel_error_set(err, KEEL_E_VERSION, 0, "unsupported domain version %" PRIu64
                       " (Keel reads versions 3 to 5)", n);
        goto ctx;
    }
    in.version = (unsigned)n;
    if (need(md, KEEL_SDK_TYPE, &v, err) != 0)
        goto ctx;
    if (keel_sd_type_parse(v, &in.type) != 0) {
        keel_error_set(err, KEEL_E_FORMAT, 0, "unknown domain TYPE \"%.32s\"", v);
        goto ctx;
    }
    if (need(md, KEEL_SDK_CLASS, &v, err) != 0)
        goto ctx;
    if (keel_sd_class_parse(v, &in.klass) != 0) {
        keel_error_set(err, KEEL_E_FORMAT, 0, "unknown domain CLASS \"%.32s\"", v);
        goto ctx;
    }
    v = keel_sd_md_get(md, KEEL_SDK_ROLE);
    in.master = v != NULL && is_master(v);
    v = keel_sd_md_get(md, KEEL_SDK_DESCRIPTION);
    in.description = v != NULL ? v : "";
    v = keel_sd_md_get(md, KEEL_SDK_POOL_UUID);
    in.pool_uuids = v != NULL && strcmp(v, KEEL_BLANK_UUID) != 0 ? v : "";
    if (in.version >= 5) {
        if (need_u64(md, KEEL_SDK_BLOCK_SIZE, &n, err) != 0)
            goto ctx;
        if (n != 512 && n != 4096) {
            keel_error_set(err, KEEL_E_FORMAT, 0, "bad BLOCK_SIZE %" PRIu64, n);
            goto ctx;
        }
        in.block_size = (unsigned)n;
        if (need_u64(md, KEEL_SDK_ALIGNMENT, &n, err) != 0)
            goto ctx;
        if (n != MIB && n != 2 * MIB && n != 4 * MIB && n != 8 * MIB) {
            keel_error_set(err, KEEL_E_FORMAT, 0, "bad ALIGNMENT %" PRIu64, n);
            goto ctx;
        }
        in.alignment = n;
    } else {
        /* Before V5 only 512-byte sectors and 1 MiB alignment existed. */
        in.block_size = 512;
        in.alignment = MIB;
        if (((v = keel_sd_md_get(md, KEEL_SDK_BLOCK_SIZE)) != NULL && strcmp(v, "512") != 0) ||
            ((v = keel_sd_md_get(md, KEEL_SDK_ALIGNMENT)) != NULL && strcmp(v, "1048576") != 0)) {
            keel_error_set(err, KEEL_E_FORMAT, 0,
                           "version %u domain with BLOCK_SIZE or ALIGNMENT other than 512 / 1 MiB",
                           in.version);
            goto ctx;
        }
    }
    in.renewal_sec = soft_uint(md, KEEL_SDK_LOCKRENEWAL, DEFAULT_RENEWAL);
    in.lease_time_sec = soft_uint(md, KEEL_SDK_LEASETIME, DEFAULT_LEASETIME);
    in.io_timeout_sec = soft_uint(md, KEEL_SDK_IOOPTIMEOUT, DEFAULT_IOTIMEOUT);
    in.lease_retries = soft_uint(md, KEEL_SDK_LEASERETRIES, DEFAULT_RETRIES);
    if (keel_sd_type_is_block(in.type)) {
        if (need(md, KEEL_SDK_VGUUID, &in.vg_uuid, err) != 0)
            goto ctx;
    } else {
        in.remote_path = keel_sd_md_get(md, KEEL_SDK_REMOTE_PATH);
    }
    *info = in;
    return 0;
ctx:
    return keel_error_prefix(err, "storage domain %s", in.uuid);
}

int keel_sd_md_new_domain(struct keel_sd_md *md, const struct keel_sd_md_new *nd,
                          struct keel_error *err)
{
    struct keel_sd_md tmp;
    unsigned bs = nd->block_size ? nd->block_size : 512;
    uint64_t align = nd->alignment ? nd->alignment : MIB;
    const char *type = keel_sd_type_name(nd->type), *klass = keel_sd_class_name(nd->klass);
    int rc = 0;

    if (!keel_uuid_valid(nd->uuid))
        return keel_error_set(err, KEEL_E_INVAL, 0, "domain UUID \"%s\" is not a UUID",
                              nd->uuid ? nd->uuid : "");
    if (type == NULL || klass == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: bad type or class",
                              nd->uuid);
    if (keel_sd_type_is_block(nd->type) && (nd->vg_uuid == NULL || nd->vg_uuid[0] == '\0'))
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: block domain without VG",
                              nd->uuid);
    keel_sd_md_init(&tmp);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_ALIGNMENT, align, err);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_BLOCK_SIZE, bs, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_CLASS, klass, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_DESCRIPTION, nd->description ? nd->description : "", err);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_IOOPTIMEOUT, DEFAULT_IOTIMEOUT, err);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_LEASERETRIES, DEFAULT_RETRIES, err);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_LEASETIME, DEFAULT_LEASETIME, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_LOCKPOLICY, "", err);
    rc |= keel_sd_md_set_u64(&tmp, KEEL_SDK_LOCKRENEWAL, DEFAULT_RENEWAL, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_POOL_UUID, "", err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_ROLE, "Regular", err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_SDUUID, nd->uuid, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_TYPE, type, err);
    rc |= keel_sd_md_set(&tmp, KEEL_SDK_VERSION, "5", err);
    if (keel_sd_type_is_block(nd->type))
        rc |= keel_sd_md_set(&tmp, KEEL_SDK_VGUUID, nd->vg_uuid, err);
    else if (nd->remote_path != NULL)
        rc |= keel_sd_md_set(&tmp, KEEL_SDK_REMOTE_PATH, nd->remote_path, err);
    if (rc != 0) {
        keel_sd_md_release(&tmp);
        return keel_error_prefix(err, "storage domain %s", nd->uuid);
    }
    keel_sd_md_release(md);
    *md = tmp;
    return 0;
}

/* SPM journal records; see journal_fmt.h. */
#include "metadata/journal_fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "common/strutil.h"
#include "common/utf8.h"
#include "metadata/sanlock_fmt.h"

#define MAGIC "KEELJRN1"
#define VERSION 1

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t checksum(const unsigned char *buf)
{
    return ~keel_crc32c(~0u, buf + 12, KEEL_JREC_SIZE - 12);
}

/* Text allowed in names and arguments: UTF-8, no NUL, no control but '\n'. */
static bool text_ok(const char *s, size_t len, bool newlines)
{
    if (!keel_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == 0 || (c < 0x20 && !(newlines && c == '\n')) || c == 0x7f)
            return false;
    }
    return true;
}

int keel_jrec_encode(const struct keel_jrec *r, unsigned char *buf, struct keel_error *err)
{
    size_t oplen = strnlen(r->op, sizeof(r->op)), alen = strnlen(r->args, sizeof(r->args));

    if (oplen == 0 || oplen >= sizeof(r->op) || !text_ok(r->op, oplen, false))
        return keel_error_set(err, KEEL_E_INVAL, 0, "journal record: bad operation name");
    if (alen > KEEL_JREC_ARGS_MAX || !text_ok(r->args, alen, true))
        return keel_error_set(err, KEEL_E_INVAL, 0, "journal record: bad arguments");
    if ((unsigned)r->state > KEEL_JREC_DONE)
        return keel_error_set(err, KEEL_E_INVAL, 0, "journal record: bad state %d",
                              (int)r->state);
    memset(buf, 0, KEEL_JREC_SIZE);
    memcpy(buf, MAGIC, 8);
    put32(buf + 12, VERSION);
    put64(buf + 16, r->seq);
    put64(buf + 24, r->lver);
    put64(buf + 32, r->host_id);
    put32(buf + 40, (uint32_t)r->state);
    put32(buf + 44, r->step);
    memcpy(buf + 48, r->op, oplen);
    put32(buf + 80, (uint32_t)alen);
    memcpy(buf + 84, r->args, alen);
    put32(buf + 8, checksum(buf));
    return 0;
}

int keel_jrec_decode(const unsigned char *buf, const char *what, struct keel_jrec *r,
                     struct keel_error *err)
{
    uint32_t alen, state, version;
    size_t oplen;
    bool zero = true;

    for (size_t i = 0; i < KEEL_JREC_SIZE && zero; i++)
        zero = buf[i] == 0;
    memset(r, 0, sizeof(*r));
    if (zero)
        return 0;
    if (memcmp(buf, MAGIC, 8) != 0)
        return keel_error_set(err, KEEL_E_MAGIC, 0, "%s: not a journal record", what);
    if (get32(buf + 8) != checksum(buf))
        return keel_error_set(err, KEEL_E_CHECKSUM, 0, "%s: checksum mismatch", what);
    version = get32(buf + 12);
    if (version != VERSION)
        return keel_error_set(err, KEEL_E_VERSION, 0, "%s: version %" PRIu32 " (know %d)", what,
                              version, VERSION);
    state = get32(buf + 40);
    if (state > KEEL_JREC_DONE)
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: state %" PRIu32, what, state);
    oplen = strnlen((const char *)buf + 48, KEEL_JREC_OP_LEN);
    if (oplen == 0 || oplen == KEEL_JREC_OP_LEN || !text_ok((const char *)buf + 48, oplen, false))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: bad operation name", what);
    alen = get32(buf + 80);
    if (alen > KEEL_JREC_ARGS_MAX || !text_ok((const char *)buf + 84, alen, true))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s: bad arguments", what);
    r->seq = get64(buf + 16);
    r->lver = get64(buf + 24);
    r->host_id = get64(buf + 32);
    r->state = (enum keel_jrec_state)state;
    r->step = get32(buf + 44);
    memcpy(r->op, buf + 48, oplen);
    memcpy(r->args, buf + 84, alen);
    return 0;
}

int keel_jrec_add_arg(struct keel_jrec *r, const char *key, const char *value,
                      struct keel_error *err)
{
    size_t have = strlen(r->args), kl = strlen(key), vl = strlen(value);

    if (kl == 0 || strchr(key, '=') != NULL || !text_ok(key, kl, false) ||
        !text_ok(value, vl, false))
        return keel_error_set(err, KEEL_E_INVAL, 0, "journal record: bad argument %s", key);
    if (have + kl + vl + 2 > KEEL_JREC_ARGS_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "journal record: arguments too long");
    snprintf(r->args + have, sizeof(r->args) - have, "%s=%s\n", key, value);
    return 0;
}

const char *keel_jrec_arg(const struct keel_jrec *r, const char *key, char *val, size_t n)
{
    size_t kl = strlen(key);
    const char *p = r->args;

    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);

        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = len - kl - 1;

            if (vl >= n)
                vl = n - 1;
            memcpy(val, p + kl + 1, vl);
            val[vl] = '\0';
            return val;
        }
        p += len + (eol != NULL);
    }
    return NULL;
}

/*
 * libFuzzer target: the SPM journal's records (metadata/journal_fmt.c),
 * read from a keel_journal area that a dead SPM -- or anyone -- wrote.
 * The input is one record (shorter inputs zero-padded), decoded as it is
 * and again with its magic set and its checksum recomputed, so that the
 * checks behind the checksum are reached.  Whatever decodes must encode
 * to a record that decodes to the same fields; one whose padding is zero
 * encodes to the very bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/journal_fmt.h"
#include "metadata/sanlock_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct keel_jrec *a, const struct keel_jrec *b)
{
    return a->seq == b->seq && a->lver == b->lver && a->host_id == b->host_id &&
           a->state == b->state && a->step == b->step && strcmp(a->op, b->op) == 0 &&
           strcmp(a->args, b->args) == 0;
}

/* Zero everywhere an encoder writes nothing: after the name's NUL, after the arguments. */
static int canonical(const unsigned char *b, const struct keel_jrec *r)
{
    size_t oplen = strlen(r->op), alen = strlen(r->args);

    for (size_t i = 48 + oplen; i < 80; i++)
        if (b[i] != 0)
            return 0;
    for (size_t i = 84 + alen; i < KEEL_JREC_SIZE; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void check(const unsigned char *b)
{
    static unsigned char again[KEEL_JREC_SIZE];
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_jrec r, r2;
    char v[128];

    if (keel_jrec_decode(b, "fuzz", &r, &err) != 0) {
        if (err.code != KEEL_E_MAGIC && err.code != KEEL_E_CHECKSUM &&
            err.code != KEEL_E_VERSION && err.code != KEEL_E_CORRUPT)
            abort();
        return;
    }
    keel_jrec_arg(&r, "volume", v, sizeof(v));
    keel_jrec_arg(&r, "", v, 1);
    if (r.seq == 0 && r.op[0] == '\0')
        return; /* blank */
    if (keel_jrec_encode(&r, again, &err) != 0 || keel_jrec_decode(again, "fuzz", &r2, &err) != 0 ||
        !same(&r, &r2))
        abort();
    if (canonical(b, &r) && memcmp(b, again, KEEL_JREC_SIZE) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char b[KEEL_JREC_SIZE];
    uint32_t c;

    memset(b, 0, sizeof(b));
    memcpy(b, data, size < sizeof(b) ? size : sizeof(b));
    check(b);
    memcpy(b, "KEELJRN1", 8);
    c = ~keel_crc32c(~0u, b + 12, KEEL_JREC_SIZE - 12);
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(c >> (8 * i));
    check(b);
    return 0;
}

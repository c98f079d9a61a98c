/* Growable buffer; see strbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"

static char empty_buf[1];

void keel_strbuf_init(struct keel_strbuf *sb, size_t hint)
{
    sb->buf = empty_buf;
    sb->len = 0;
    sb->alloc = 0;
    sb->failed = false;
    if (hint > 0) {
        char *b = malloc(hint + 1);

        if (b == NULL) {
            sb->failed = true;
            return;
        }
        b[0] = '\0';
        sb->buf = b;
        sb->alloc = hint + 1;
    }
}

void keel_strbuf_release(struct keel_strbuf *sb)
{
    if (sb->alloc > 0)
        free(sb->buf);
    keel_strbuf_init(sb, 0);
}

static bool grow(struct keel_strbuf *sb, size_t extra)
{
    size_t want;
    char *b;

    if (sb->failed)
        return false;
    if (sb->len + extra + 1 <= sb->alloc)
        return true;
    want = sb->alloc ? sb->alloc : 64;
    while (want < sb->len + extra + 1)
        want *= 2;
    b = sb->alloc ? realloc(sb->buf, want) : malloc(want);
    if (b == NULL) {
        sb->failed = true;
        return false;
    }
    if (sb->alloc == 0)
        b[0] = '\0';
    sb->buf = b;
    sb->alloc = want;
    return true;
}

void keel_strbuf_add(struct keel_strbuf *sb, const void *data, size_t len)
{
    if (!grow(sb, len))
        return;
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void keel_strbuf_adds(struct keel_strbuf *sb, const char *s)
{
    keel_strbuf_add(sb, s, strlen(s));
}

void keel_strbuf_addf(struct keel_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(sb->buf + sb->len, sb->alloc > sb->len ? sb->alloc - sb->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if (sb->len + (size_t)n + 1 > sb->alloc) {
        if (!grow(sb, (size_t)n))
            return;
        va_start(ap, fmt);
        vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

char *keel_strbuf_detach(struct keel_strbuf *sb, size_t *len)
{
    char *b = sb->buf;

    if (sb->alloc == 0)
        b = calloc(1, 1);
    if (len != NULL)
        *len = sb->len;
    keel_strbuf_init(sb, 0);
    return b;
}

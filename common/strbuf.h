/*
 * struct keel_strbuf: a growable NUL-terminated byte buffer (after git's
 * strbuf).  buf is never NULL after init; len excludes the NUL.  On an
 * allocation failure the buffer stops growing and `failed` is set: check it
 * once at the end instead of after every append.
 */
#ifndef KEEL_COMMON_STRBUF_H
#define KEEL_COMMON_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct keel_strbuf {
    char *buf;
    size_t len;
    size_t alloc;
    bool failed;
};

void keel_strbuf_init(struct keel_strbuf *sb, size_t hint);
void keel_strbuf_release(struct keel_strbuf *sb);
void keel_strbuf_add(struct keel_strbuf *sb, const void *data, size_t len);
void keel_strbuf_adds(struct keel_strbuf *sb, const char *s);
void keel_strbuf_addf(struct keel_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Take the buffer (caller frees); sb is empty afterwards. */
char *keel_strbuf_detach(struct keel_strbuf *sb, size_t *len);

#endif /* KEEL_COMMON_STRBUF_H */

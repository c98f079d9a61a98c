/*
 * Small string and number helpers that replace the banned libc functions.
 */
#ifndef KEEL_COMMON_STRUTIL_H
#define KEEL_COMMON_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/*
 * Copy src into dst of size n, always NUL-terminated.  Returns strlen(src),
 * so a result >= n means the copy was cut.
 */
size_t keel_strlcpy(char *dst, const char *src, size_t n);

/* malloc'ed printf; returns NULL only on allocation failure. Caller frees. */
char *keel_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool keel_str_has_prefix(const char *s, const char *prefix);
bool keel_str_has_suffix(const char *s, const char *suffix);

/*
 * Parse a whole decimal string into *ret.  Refuses empty strings, signs,
 * trailing garbage and overflow.  *ret is written only on success.
 */
int keel_parse_u64(const char *s, uint64_t *ret);

/*
 * Parse a size with an optional binary suffix: "512", "4k", "128M", "1G",
 * "2T" (K, M, G, T mean KiB, MiB, GiB, TiB; a trailing "iB" or "B" is
 * accepted).  Fills err on failure.
 */
int keel_parse_size(const char *s, uint64_t *ret, struct keel_error *err);

/* Allocate size bytes aligned to align (a power of two); free with free(). */
void *keel_aligned_alloc(size_t align, size_t size);

#endif /* KEEL_COMMON_STRUTIL_H */

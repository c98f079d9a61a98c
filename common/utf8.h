/*
 * UTF-8 as Python's decoder accepts it (VDSM reads metadata with Python):
 * no overlong forms, no surrogates, nothing past U+10FFFF.
 */
#ifndef KEEL_COMMON_UTF8_H
#define KEEL_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The length of the sequence at s[0..len) (len > 0) and its code point in
 * *cp, or 0 when it is not valid UTF-8.
 */
size_t keel_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

/* Is s[0..len) valid UTF-8 (NUL bytes are valid code points)? */
bool keel_utf8_valid(const char *s, size_t len);

/* The encoding of cp (at most U+10FFFF) into out[0..4); its length. */
size_t keel_utf8_encode(uint32_t cp, char out[4]);

#endif /* KEEL_COMMON_UTF8_H */

/*
 * UUIDs as oVirt writes them: RFC 4122 text, 36 characters, lower case
 * ("5e1c0a3f-...").  Domains, images, volumes and pools are named by them.
 */
#ifndef KEEL_COMMON_UUID_H
#define KEEL_COMMON_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define KEEL_UUID_LEN 36
#define KEEL_BLANK_UUID "00000000-0000-0000-0000-000000000000"

/* True when s is exactly 36 characters of the 8-4-4-4-12 lower-case hex form. */
bool keel_uuid_valid(const char *s);

/* Same test on s[0..len), which need not be NUL-terminated. */
bool keel_uuid_valid_n(const char *s, size_t len);

/* A new random (version 4) UUID in lower case into out[37]. */
void keel_uuid_new(char out[KEEL_UUID_LEN + 1]);

#endif /* KEEL_COMMON_UUID_H */

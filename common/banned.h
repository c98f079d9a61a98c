/*
 * Functions Keel does not use, made into compile errors (after git's banned.h).
 *
 * This header is force-included into every translation unit by meson.build.
 * It includes the system headers that declare the banned functions first, so
 * that their declarations are seen before the macros below exist; the include
 * guards of those headers make every later #include a no-op.
 *
 * Why each is banned:
 *   strcpy, strcat, sprintf, vsprintf: no bound on the destination.
 *   strncpy: does not terminate the destination when the source is too long.
 *   strtok: hidden static state; not reentrant.
 *   atoi: no error reporting; use keel_parse_u64() and friends.
 */
#ifndef KEEL_BANNED_H
#define KEEL_BANNED_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEL_BANNED(func) sorry_##func##_is_banned_in_keel

#undef strcpy
#define strcpy(x, y) KEEL_BANNED(strcpy)
#undef strcat
#define strcat(x, y) KEEL_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) KEEL_BANNED(strncpy)
#undef strtok
#define strtok(x, y) KEEL_BANNED(strtok)
#undef sprintf
#define sprintf(...) KEEL_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) KEEL_BANNED(vsprintf)
#undef atoi
#define atoi(x) KEEL_BANNED(atoi)

#endif /* KEEL_BANNED_H */

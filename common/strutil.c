/* String and number helpers; see strutil.h. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"

size_t keel_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);

    if (n > 0) {
        size_t c = len < n - 1 ? len : n - 1;

        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return len;
}

char *keel_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    return r < 0 ? NULL : s;
}

bool keel_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool keel_str_has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);

    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

int keel_parse_u64(const char *s, uint64_t *ret)
{
    unsigned long long v;
    char *end;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *ret = v;
    return 0;
}

int keel_parse_size(const char *s, uint64_t *ret, struct keel_error *err)
{
    unsigned long long v;
    uint64_t mult = 1;
    char *end;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return keel_error_set(err, KEEL_E_INVAL, 0, "size '%s': not a number", s ? s : "");
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "size '%s': too large", s);
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K': mult = UINT64_C(1) << 10; end++; break;
    case 'M': mult = UINT64_C(1) << 20; end++; break;
    case 'G': mult = UINT64_C(1) << 30; end++; break;
    case 'T': mult = UINT64_C(1) << 40; end++; break;
    case 'B': break;
    default:
        return keel_error_set(err, KEEL_E_INVAL, 0, "size '%s': unknown suffix", s);
    }
    if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 || strcmp(end, "b") == 0)
        end += strlen(end);
    if (*end != '\0')
        return keel_error_set(err, KEEL_E_INVAL, 0, "size '%s': unknown suffix", s);
    if (v > UINT64_MAX / mult)
        return keel_error_set(err, KEEL_E_INVAL, 0, "size '%s': too large", s);
    *ret = (uint64_t)v * mult;
    return 0;
}

void *keel_aligned_alloc(size_t align, size_t size)
{
    void *p = NULL;

    if (posix_memalign(&p, align, size ? size : align) != 0)
        return NULL;
    return p;
}

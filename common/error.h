/*
 * struct keel_error: the one error type of Keel, carried explicitly.
 *
 * Functions that can fail take a `struct keel_error *err` as their last
 * parameter and return 0/-1 (or a pointer/NULL).  On failure they fill *err;
 * on success they leave it untouched.  err may be NULL when the caller does
 * not want the details.
 *
 * Messages follow git's grammar: subject with its id first, then the reason,
 * lower case, no full stop:
 *     storage domain 5e1c...: metadata checksum mismatch
 * Each layer adds its context in front on the way up with keel_error_prefix().
 *
 * An error is a plain value: copy it with struct assignment.  No allocation,
 * so it can be filled on I/O threads and in completion callbacks.
 */
#ifndef KEEL_COMMON_ERROR_H
#define KEEL_COMMON_ERROR_H

#include <stdarg.h>

#include "common/errc.h"

#define KEEL_ERR_MSG 512

struct keel_error {
    enum keel_errc code;
    int sys_errno;          /* errno behind the failure, or 0 */
    char msg[KEEL_ERR_MSG]; /* NUL-terminated, truncated if too long */
};

#define KEEL_ERROR_INIT { .code = KEEL_OK, .sys_errno = 0, .msg = "" }

/* Reset to "no error". NULL is accepted. */
void keel_error_clear(struct keel_error *err);

/*
 * Fill *err with code, errno and a formatted message.  Always returns -1, so
 * that `return keel_error_set(err, ...);` ends a failing function.
 */
int keel_error_set(struct keel_error *err, enum keel_errc code, int sys_errno,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int keel_error_setv(struct keel_error *err, enum keel_errc code, int sys_errno,
                    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/*
 * Like keel_error_set(), and appends ": <strerror(sys_errno)>" to the message.
 */
int keel_error_errno(struct keel_error *err, enum keel_errc code, int sys_errno,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Put "<context>: " in front of the message already in *err (code and errno
 * stay).  Returns -1.  When the result is too long the end of the old message
 * is cut.
 */
int keel_error_prefix(struct keel_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copy src into *dst (NULL dst is accepted). Returns -1. */
int keel_error_copy(struct keel_error *dst, const struct keel_error *src);

/* Map an errno value to the closest Keel code (ENOENT -> KEEL_E_NOENT...). */
enum keel_errc keel_errc_from_errno(int e);

#endif /* KEEL_COMMON_ERROR_H */

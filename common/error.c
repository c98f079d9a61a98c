/* The error type; see error.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

void keel_error_clear(struct keel_error *err)
{
    if (err == NULL)
        return;
    err->code = KEEL_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

int keel_error_setv(struct keel_error *err, enum keel_errc code, int sys_errno,
                    const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    err->code = code;
    err->sys_errno = sys_errno;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return -1;
}

int keel_error_set(struct keel_error *err, enum keel_errc code, int sys_errno,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    keel_error_setv(err, code, sys_errno, fmt, ap);
    va_end(ap);
    return -1;
}

int keel_error_errno(struct keel_error *err, enum keel_errc code, int sys_errno,
                     const char *fmt, ...)
{
    va_list ap;
    size_t len;

    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    keel_error_setv(err, code, sys_errno, fmt, ap);
    va_end(ap);
    len = strlen(err->msg);
    if (len < sizeof(err->msg))
        snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(sys_errno));
    return -1;
}

int keel_error_prefix(struct keel_error *err, const char *fmt, ...)
{
    char ctx[KEEL_ERR_MSG];
    char old[KEEL_ERR_MSG];
    va_list ap;

    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    snprintf(err->msg, sizeof(err->msg), "%s: %s", ctx, old);
    return -1;
}

int keel_error_copy(struct keel_error *dst, const struct keel_error *src)
{
    if (dst != NULL && src != NULL && dst != src)
        *dst = *src;
    return -1;
}

enum keel_errc keel_errc_from_errno(int e)
{
    switch (e) {
    case 0:
        return KEEL_OK;
    case EINVAL:
        return KEEL_E_INVAL;
    case ENOMEM:
        return KEEL_E_NOMEM;
    case ENOENT:
    case ENODEV:
    case ENXIO:
        return KEEL_E_NOENT;
    case EEXIST:
    case ENOTEMPTY:
        return KEEL_E_EXIST;
    case EBUSY:
    case EAGAIN:
        return KEEL_E_BUSY;
    case ENOSPC:
    case EDQUOT:
        return KEEL_E_NOSPC;
    case ENOTSUP:
    case ENOSYS:
        return KEEL_E_UNSUPPORTED;
    case ECANCELED:
        return KEEL_E_CANCELLED;
    case EPERM:
    case EACCES:
    case EROFS:
        return KEEL_E_PERM;
    case ETIMEDOUT:
        return KEEL_E_TIMEOUT;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EPIPE:
        return KEEL_E_CONNECT;
    case EFBIG:
    case ERANGE:
        return KEEL_E_RANGE;
    default:
        return KEEL_E_IO;
    }
}

const char *keel_errc_name(enum keel_errc code)
{
    switch (code) {
    case KEEL_OK: return "ok";
    case KEEL_E_INVAL: return "invalid";
    case KEEL_E_NOMEM: return "no-memory";
    case KEEL_E_NOENT: return "not-found";
    case KEEL_E_EXIST: return "exists";
    case KEEL_E_BUSY: return "busy";
    case KEEL_E_NOSPC: return "no-space";
    case KEEL_E_UNSUPPORTED: return "unsupported";
    case KEEL_E_INTERNAL: return "internal";
    case KEEL_E_CANCELLED: return "cancelled";
    case KEEL_E_PERM: return "permission";
    case KEEL_E_RANGE: return "range";
    case KEEL_E_IO: return "io.error";
    case KEEL_E_TIMEOUT: return "io.timeout";
    case KEEL_E_CONNECT: return "io.connect";
    case KEEL_E_URL: return "io.url";
    case KEEL_E_AUTH: return "io.auth";
    case KEEL_E_SHORT: return "io.short";
    case KEEL_E_CLOSED: return "io.closed";
    case KEEL_E_ALIGN: return "io.align";
    case KEEL_E_FAULT: return "io.fault";
    case KEEL_E_FENCED: return "io.fenced";
    case KEEL_E_CORRUPT: return "format.corrupt";
    case KEEL_E_CHECKSUM: return "format.checksum";
    case KEEL_E_MAGIC: return "format.magic";
    case KEEL_E_FORMAT: return "format.syntax";
    case KEEL_E_VERSION: return "format.version";
    }
    return "unknown";
}

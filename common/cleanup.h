/*
 * Scoped cleanup helpers (after nbdkit's common/utils/cleanup.h and systemd).
 *
 *     _cleanup_free_ char *s = NULL;       free(s) when s leaves scope
 *     KEEL_CLEANUP(keel_fdp) int fd = -1;  close(fd) when fd leaves scope
 *     return TAKE_PTR(s);                   hand s to the caller
 *     KEEL_LOCK_GUARD(&m);                  m is held until the scope ends
 */
#ifndef KEEL_COMMON_CLEANUP_H
#define KEEL_COMMON_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define KEEL_CLEANUP(fn) __attribute__((cleanup(fn)))
#define KEEL_UNUSED __attribute__((unused))

static inline void keel_freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ KEEL_CLEANUP(keel_freep)

static inline void keel_fdp(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define _cleanup_fd_ KEEL_CLEANUP(keel_fdp)

/* Return the value of p and set p to NULL: ownership moves to the caller. */
#define TAKE_PTR(p) ({ __typeof__(p) _keel_tmp = (p); (p) = NULL; _keel_tmp; })

/* Return the value of fd and set it to -1. */
#define TAKE_FD(fd) ({ int _keel_tmpfd = (fd); (fd) = -1; _keel_tmpfd; })

static inline void keel_unlockp(pthread_mutex_t **m)
{
    if (*m != NULL)
        pthread_mutex_unlock(*m);
}
#define KEEL_CONCAT_(a, b) a##b
#define KEEL_CONCAT(a, b) KEEL_CONCAT_(a, b)
#define KEEL_LOCK_GUARD(m)                                                             \
    KEEL_CLEANUP(keel_unlockp) KEEL_UNUSED pthread_mutex_t *KEEL_CONCAT(_keel_guard_, __LINE__) = \
        (pthread_mutex_lock(m), (m))

#define KEEL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KEEL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KEEL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define KEEL_ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))
#define KEEL_ALIGN_DOWN(x, a) ((x) / (a) * (a))

#endif /* KEEL_COMMON_CLEANUP_H */

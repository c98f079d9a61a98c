/*
 * struct keel_arena: a bump allocator for parsers of on-storage text (LVM
 * metadata, OVF): everything a parse allocates is freed at once with the
 * arena (lvm2's dm_pool).  Not thread-safe.
 */
#ifndef KEEL_COMMON_ARENA_H
#define KEEL_COMMON_ARENA_H

#include <stddef.h>

struct keel_arena_chunk;

struct keel_arena {
    struct keel_arena_chunk *chunks;
    size_t chunk_size;
};

/* Initialise (no allocation yet). */
void keel_arena_init(struct keel_arena *a);
/* Free every allocation. The arena can be used again. */
void keel_arena_release(struct keel_arena *a);
/* size bytes, zeroed, aligned for any type; NULL on allocation failure. */
void *keel_arena_alloc(struct keel_arena *a, size_t size);
/* A NUL-terminated copy of len bytes of s. */
char *keel_arena_strndup(struct keel_arena *a, const char *s, size_t len);

#endif /* KEEL_COMMON_ARENA_H */

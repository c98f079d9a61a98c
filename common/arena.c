/* Bump allocator; see arena.h. */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

#define ARENA_CHUNK (64 * 1024)

struct keel_arena_chunk {
    struct keel_arena_chunk *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
};

void keel_arena_init(struct keel_arena *a)
{
    a->chunks = NULL;
    a->chunk_size = ARENA_CHUNK;
}

void keel_arena_release(struct keel_arena *a)
{
    while (a->chunks != NULL) {
        struct keel_arena_chunk *c = a->chunks;

        a->chunks = c->next;
        free(c);
    }
}

void *keel_arena_alloc(struct keel_arena *a, size_t size)
{
    size_t align = alignof(max_align_t);
    struct keel_arena_chunk *c = a->chunks;
    void *p;

    size = (size + align - 1) / align * align;
    if (size == 0)
        size = align;
    if (c == NULL || c->size - c->used < size) {
        size_t csize = size > a->chunk_size ? size : a->chunk_size;

        c = malloc(sizeof(*c) + csize);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->size = csize;
        c->next = a->chunks;
        a->chunks = c;
    }
    p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *keel_arena_strndup(struct keel_arena *a, const char *s, size_t len)
{
    char *p = keel_arena_alloc(a, len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

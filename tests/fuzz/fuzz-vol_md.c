/*
 * libFuzzer target: volume metadata (metadata/vol_md.c), read from .meta
 * files and metadata-LV slots any host may have written.  Metadata that
 * parses and can be written (in the V5 form) reads back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metadata/vol_md.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct keel_vol_md *a, const struct keel_vol_md *b)
{
    return a->capacity == b->capacity && a->ctime == b->ctime &&
           strcmp(a->description, b->description) == 0 && strcmp(a->disktype, b->disktype) == 0 &&
           strcmp(a->domain, b->domain) == 0 && a->format == b->format && a->gen == b->gen &&
           strcmp(a->image, b->image) == 0 && a->legality == b->legality &&
           strcmp(a->parent, b->parent) == 0 && a->seq == b->seq && a->type == b->type &&
           a->role == b->role;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_vol_md md, md2;
    char out[KEEL_VOL_MD_SIZE + 1];
    size_t n;

    if (keel_vol_md_parse((const char *)data, size, &md, &err) != 0 || md.cleared)
        return 0;
    if (keel_vol_md_format(&md, 5, out, sizeof(out), &n, &err) != 0)
        return 0;
    if (keel_vol_md_parse(out, n, &md2, &err) != 0 || !same(&md, &md2))
        abort();
    return 0;
}

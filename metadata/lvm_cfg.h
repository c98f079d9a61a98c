/*
 * The text format of LVM2 metadata as lvm's parser (libdm-config) reads it:
 * sections `key { ... }` and assignments `key = value` or `key = [v, ...]`
 * with integers, floats and strings.  ../shared/specs/lvm2-format.md 6.2.
 *
 * The tree lives in an arena freed by keel_lvm_cfg_free(); node order is
 * the text's order.  Lookups find the first node of a key, as lvm does.
 */
#ifndef KEEL_METADATA_LVM_CFG_H
#define KEEL_METADATA_LVM_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/error.h"

enum keel_cfg_vtype { KEEL_CFG_INT, KEEL_CFG_FLOAT, KEEL_CFG_STRING };

struct keel_cfg_value {
    struct keel_cfg_value *next;
    enum keel_cfg_vtype type;
    int64_t i;
    double f;
    const char *s;
};

struct keel_cfg_node {
    const char *key;
    struct keel_cfg_node *next;      /* next sibling */
    bool is_section;
    struct keel_cfg_node *child;     /* section: first child */
    bool is_array;                   /* assignment: `[...]` (maybe empty) */
    struct keel_cfg_value *values;   /* assignment: first value, NULL for [] */
};

struct keel_cfg {
    struct keel_arena arena;
    struct keel_cfg_node *first;     /* top-level nodes */
};

/*
 * Parse len bytes of text (a NUL ends it earlier).  Errors name the byte
 * and line: "parse error at byte 120 (line 7): unexpected token".
 */
int keel_lvm_cfg_parse(const char *text, size_t len, struct keel_cfg **ret,
                       struct keel_error *err);
void keel_lvm_cfg_free(struct keel_cfg *cfg);

/* First child of section (or top level when section is NULL) with key. */
const struct keel_cfg_node *keel_cfg_find(const struct keel_cfg *cfg,
                                          const struct keel_cfg_node *section, const char *key);

#endif /* KEEL_METADATA_LVM_CFG_H */

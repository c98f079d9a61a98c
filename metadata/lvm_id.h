/*
 * LVM2 identifiers and names: UUIDs of VGs, PVs and LVs, VG and LV names,
 * tags.  ../shared/specs/lvm2-format.md section 8.
 *
 * A UUID is 32 characters of [0-9a-zA-Z] (lvm also reads '!' and '#').  On
 * disk (pv_header) it has no dashes; in the text it is grouped 6-4-4-4-4-4-6
 * with dashes.  Keel's ids are in "raw" form (32 chars + NUL) in memory.
 */
#ifndef KEEL_METADATA_LVM_ID_H
#define KEEL_METADATA_LVM_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define KEEL_LVM_ID_LEN 32
#define KEEL_LVM_ID_DASHED_LEN 38
#define KEEL_LVM_NAME_MAX 127

/* A new random id (getrandom; unbiased over 62 characters) into raw[33]. */
int keel_lvm_id_new(char raw[KEEL_LVM_ID_LEN + 1], struct keel_error *err);

/* raw (32 chars) -> "xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx" into out[39]. */
void keel_lvm_id_dash(const char *raw, char out[KEEL_LVM_ID_DASHED_LEN + 1]);

/*
 * Parse an id as lvm reads it: drop every '-', then exactly 32 characters
 * of [0-9a-zA-Z!#].  len is the length of s (need not be NUL-terminated).
 */
int keel_lvm_id_parse(const char *s, size_t len, char raw[KEEL_LVM_ID_LEN + 1]);

/* True when s is a valid id in raw form. */
bool keel_lvm_id_valid_raw(const char *s);

/* VG name rules (section 8.2).  err says why ("VG name 'x': ..."). */
int keel_lvm_check_vg_name(const char *name, struct keel_error *err);
/* LV name rules, including the combined length with the VG name. */
int keel_lvm_check_lv_name(const char *vg, const char *name, struct keel_error *err);
/* Tag rules (section 8.3). */
int keel_lvm_check_tag(const char *tag, struct keel_error *err);

#endif /* KEEL_METADATA_LVM_ID_H */

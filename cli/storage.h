/*
 * keel-storage, the offline admin tool working on storage URLs directly:
 * its command groups.  Each takes argv starting at its own name.
 */
#ifndef KEEL_CLI_STORAGE_H
#define KEEL_CLI_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "io/blockdev.h"
#include "io/fs.h"
#include "io/opts.h"
#include "io/url.h"
#include "volume/sd.h"

struct keel_storage_ctx {
    struct keel_io_opts io;
};

int keel_storage_lvm(int argc, char **argv, const struct keel_storage_ctx *ctx);
int keel_storage_domain(int argc, char **argv, const struct keel_storage_ctx *ctx);
int keel_storage_volume(int argc, char **argv, const struct keel_storage_ctx *ctx);
int keel_storage_image(int argc, char **argv, const struct keel_storage_ctx *ctx);

/* Print o as indented JSON with sorted keys and a newline, and free it. */
void keel_storage_print_json(json_t *o);

/* The storage behind a list of URLs: one file system, or LUNs (storage_domain.c). */
struct keel_storage_target {
    bool block;
    struct keel_fs *fs;
    char remote_path[KEEL_URL_PATH_MAX + KEEL_URL_HOST_MAX + 2];
    struct keel_blockdev **devs;
    char **guids;
    size_t ndevs;
};

/* Open the storage (errors printed); close with keel_storage_target_close. */
int keel_storage_target_open(char **urls, int n, const struct keel_io_opts *io,
                             struct keel_storage_target *t);
void keel_storage_target_close(struct keel_storage_target *t);
/* Open the domain sd_uuid (NULL: the only one) on the target (errors printed). */
int keel_storage_open_domain(struct keel_storage_target *t, const char *sd_uuid,
                             struct keel_sd **sd);

#endif /* KEEL_CLI_STORAGE_H */

/*
 * keel-storage, the offline admin tool working on storage URLs directly:
 * its command groups.  Each takes argv starting at its own name.
 */
#ifndef KEEL_CLI_STORAGE_H
#define KEEL_CLI_STORAGE_H

#include "io/opts.h"

struct keel_storage_ctx {
    struct keel_io_opts io;
};

int keel_storage_lvm(int argc, char **argv, const struct keel_storage_ctx *ctx);
int keel_storage_domain(int argc, char **argv, const struct keel_storage_ctx *ctx);

#endif /* KEEL_CLI_STORAGE_H */

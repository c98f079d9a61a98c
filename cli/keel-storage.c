/*
 * keel-storage: Keel's offline storage tool.  It reaches LUNs, NFS exports
 * and local paths directly through Keel's io/ layer, without a daemon.
 *
 *   keel-storage [-D module=1] [--timeout SECONDS] COMMAND ...
 *   commands: domain, image, lvm, volume
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/storage.h"
#include "common/log.h"
#include "common/strutil.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, const struct keel_storage_ctx *ctx);
    const char *help;
} commands[] = {
    { "domain", keel_storage_domain, "create, show, list, extend and remove storage domains" },
    { "image", keel_storage_image, "show and check image chains (dump-volume-chains)" },
    { "lvm", keel_storage_lvm, "show the LVM2 PVs, VG and LVs of LUNs" },
    { "volume", keel_storage_volume, "create, show, list, extend and delete volumes" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: keel-storage [-D module=1] [--timeout SECONDS] COMMAND ...\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nStorage URLs: iscsi://[user%%secret@]host[:port]/IQN/LUN, "
               "nfs://host/export[/dir], file:///path\n");
}

int main(int argc, char **argv)
{
    struct keel_storage_ctx ctx;
    int i = 1;

    keel_log_set_program("keel-storage");
    keel_io_opts_init(&ctx.io);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-D") == 0 && i + 1 < argc) {
            if (keel_log_enable_debug(argv[i + 1]) != 0) {
                fprintf(stderr, "keel-storage: bad debug switch '%s'\n", argv[i + 1]);
                return 2;
            }
            i += 2;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            uint64_t s;

            if (keel_parse_u64(argv[i + 1], &s) != 0 || s == 0 || s > 3600) {
                fprintf(stderr, "keel-storage: bad timeout '%s'\n", argv[i + 1]);
                return 2;
            }
            ctx.io.timeout_ms = (unsigned)(s * 1000);
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "keel-storage: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            return commands[c].run(argc - i, argv + i, &ctx);
    fprintf(stderr, "keel-storage: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return 2;
}

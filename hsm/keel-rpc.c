/*
 * keel-rpc: call one keeld method from the command line (like vdsm-client).
 *
 *   keel-rpc [--ca F --cert F --key F | --insecure] [--timeout MS] HOST:PORT METHOD
 *            ['{"param": ...}' | -]
 *
 * Prints the result as JSON; on an error prints the error as JSON on
 * stderr and exits 1.  "-" reads the params from stdin, so that a secret
 * (a CHAP password) is not on the command line for every user to see.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/client.h"
#include "hsm/tls.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: keel-rpc [--ca F --cert F --key F | --insecure] [--timeout MS] HOST:PORT "
               "METHOD [PARAMS-JSON | -]\n"
               "  -             read the params from stdin (keeps secrets off the command line)\n"
               "  --timeout MS  how long to wait for the answer (default 60000)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "ca", required_argument, NULL, 'a' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "insecure", no_argument, NULL, 'I' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keel_tls_config tc = { 0 };
    struct keel_tls_ctx *ctx = NULL;
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *c = NULL;
    json_t *params = NULL, *result = NULL;
    bool insecure = false;
    char host[256];
    unsigned port, timeout_ms = 60000;
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': tc.ca = optarg; break;
        case 'c': tc.cert = optarg; break;
        case 'k': tc.key = optarg; break;
        case 'I': insecure = true; break;
        case 't': timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind < 2 || argc - optind > 3 || (!insecure && tc.ca == NULL) ||
        sscanf(argv[optind], "%255[^:]:%u", host, &port) != 2) {
        usage(stderr);
        return 2;
    }
    if (argc - optind == 3) {
        json_error_t je;

        params = strcmp(argv[optind + 2], "-") == 0 ? json_loadf(stdin, 0, &je)
                                                     : json_loads(argv[optind + 2], 0, &je);
        if (params == NULL) {
            fprintf(stderr, "keel-rpc: params: %s\n", je.text);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (!insecure && keel_tls_client_new(&tc, &ctx, &err) != 0)
        goto out;
    if (keel_client_connect(host, port, ctx, 10000, &c, &err) != 0)
        goto out;
    keel_client_set_timeout(c, timeout_ms);
    if (keel_client_call(c, argv[optind + 1], params, &result, &err) != 0)
        goto out;
    json_dumpf(result, stdout, JSON_INDENT(2));
    printf("\n");
    rc = 0;
out:
    if (rc != 0) {
        json_t *e = json_pack("{s:i, s:s}", "code", c ? keel_client_last_code(c) : 0,
                              "message", err.msg);
        json_dumpf(e, stderr, JSON_INDENT(2));
        fprintf(stderr, "\n");
        json_decref(e);
    }
    json_decref(result);
    json_decref(params);
    keel_client_close(c);
    keel_tls_ctx_free(ctx);
    return rc;
}

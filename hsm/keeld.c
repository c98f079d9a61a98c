/*
 * keeld: Keel's host agent.
 *
 *   keeld --host-id N --state-dir DIR --ca CA.pem --cert HOST.pem --key HOST.key
 *         [--listen ADDR] [--port P] [--port-file F] [--monitor-interval MS]
 *         [--io-timeout MS] [--lease-timeout S] [-D module=1]
 *   keeld --host-id N --state-dir DIR --insecure-loopback [--port P] ...
 *
 * The API is JSON-RPC 2.0 over TCP (docs/api.md).  SIGTERM or SIGINT stops
 * it cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "hsm/hsm.h"
#include "hsm/tls.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: keeld --host-id N --state-dir DIR (--ca F --cert F --key F | "
            "--insecure-loopback)\n"
            "             [--listen ADDR] [--port P] [--port-file F] [--monitor-interval MS]\n"
            "             [--io-timeout MS] [--lease-timeout S] [-D module[=1]]\n"
            "\n"
            "  --host-id N            this host's id in storage lockspaces (1-2000)\n"
            "  --state-dir DIR        where keeld keeps its connections\n"
            "  --ca, --cert, --key    PEM files: the CA clients' certificates must chain to,\n"
            "                         keeld's certificate and key (TLS, the default)\n"
            "  --insecure-loopback    clear text on 127.0.0.1 only (tests, the demo)\n"
            "  --listen ADDR          IPv4 address to listen on (TLS: 0.0.0.0; insecure:\n"
            "                         127.0.0.1)\n"
            "  --port P               TCP port (default 54321; 0: any free one)\n"
            "  --port-file F          write the port there once listening\n"
            "  --monitor-interval MS  how often each domain is read (default 10000)\n"
            "  --io-timeout MS        storage request timeout (default 30000)\n"
            "  --lease-timeout S      sanlock's io timeout N of the leases: renew every 2N,\n"
            "                         lost after 8N (default 10, as oVirt)\n"
            "  -D module[=1]          debug messages of a module (io, hsm.server, all)\n");
}

struct sigctx {
    struct keel_hsm *h;
    sigset_t set;
};

static void *signal_thread(void *opaque)
{
    struct sigctx *s = opaque;
    int sig;

    if (sigwait(&s->set, &sig) == 0) {
        keel_log(KEEL_LOG_INFO, "hsm", "signal %d: stopping", sig);
        keel_hsm_stop(s->h);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "host-id", required_argument, NULL, 'i' },
        { "state-dir", required_argument, NULL, 's' },
        { "ca", required_argument, NULL, 'a' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "insecure-loopback", no_argument, NULL, 'I' },
        { "listen", required_argument, NULL, 'l' },
        { "port", required_argument, NULL, 'p' },
        { "port-file", required_argument, NULL, 'P' },
        { "monitor-interval", required_argument, NULL, 'm' },
        { "io-timeout", required_argument, NULL, 't' },
        { "lease-timeout", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct keel_hsm_config cfg = { .port = 54321 };
    struct keel_tls_config tc = { 0 };
    struct keel_error err = KEEL_ERROR_INIT;
    const char *port_file = NULL;
    bool insecure = false;
    struct keel_hsm *h = NULL;
    struct sigctx sc;
    pthread_t st;
    int opt, rc;

    keel_log_set_program("keeld");
    while ((opt = getopt_long(argc, argv, "D:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i': cfg.host_id = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': cfg.state_dir = optarg; break;
        case 'a': tc.ca = optarg; break;
        case 'c': tc.cert = optarg; break;
        case 'k': tc.key = optarg; break;
        case 'I': insecure = true; break;
        case 'l': cfg.listen = optarg; break;
        case 'p': cfg.port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'P': port_file = optarg; break;
        case 'm': cfg.monitor_interval_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 't': cfg.io_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'L': cfg.lease_io_timeout = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'D':
            if (keel_log_enable_debug(optarg) != 0) {
                fprintf(stderr, "keeld: -D %s: not module[=0|1]\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || cfg.host_id == 0 || cfg.state_dir == NULL || cfg.port > 65535 ||
        (insecure == (tc.ca != NULL || tc.cert != NULL || tc.key != NULL)) ||
        (!insecure && (tc.ca == NULL || tc.cert == NULL || tc.key == NULL))) {
        usage(stderr);
        return 2;
    }
    if (mkdir(cfg.state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "keeld: %s: %s\n", cfg.state_dir, strerror(errno));
        return 1;
    }
    if (cfg.listen == NULL)
        cfg.listen = insecure ? "127.0.0.1" : "0.0.0.0";
    if (!insecure && keel_tls_server_new(&tc, &cfg.tls, &err) != 0) {
        fprintf(stderr, "keeld: %s\n", err.msg);
        return 1;
    }
    /* Signals go to one thread; SIGPIPE never kills us (a peer that went away). */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    if (keel_hsm_new(&cfg, &h, &err) != 0) {
        fprintf(stderr, "keeld: %s\n", err.msg);
        keel_tls_ctx_free(cfg.tls);
        return 1;
    }
    if (port_file != NULL) {
        FILE *f = fopen(port_file, "w");

        if (f == NULL || fprintf(f, "%u\n", keel_hsm_port(h)) < 0 || fclose(f) != 0) {
            fprintf(stderr, "keeld: %s: cannot write the port\n", port_file);
            keel_hsm_free(h);
            return 1;
        }
    }
    sc.h = h;
    pthread_create(&st, NULL, signal_thread, &sc);
    rc = keel_hsm_run(h, &err);
    if (rc != 0)
        keel_log(KEEL_LOG_ERROR, "hsm", "%s", err.msg);
    pthread_cancel(st);
    pthread_join(st, NULL);
    keel_hsm_free(h);
    keel_tls_ctx_free(cfg.tls);
    return rc ? 1 : 0;
}

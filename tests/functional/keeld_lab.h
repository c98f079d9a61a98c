/* keeld processes for the functional tests; see keeld_lab.c. */
#ifndef KEEL_TESTS_KEELD_LAB_H
#define KEEL_TESTS_KEELD_LAB_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness/certs.h"
#include "harness/lab.h"
#include "hsm/client.h"
#include "hsm/tls.h"

struct keeld {
    pid_t pid;
    unsigned port;
    char *state;
};

extern char *kl_tmp;
extern struct keel_lab_certs kl_certs;
extern struct keel_lab_tgtd *kl_tgtd;
extern struct keel_lab_nfs *kl_nfs;
extern struct keeld kl_hosts[2];
extern struct keel_tls_ctx *kl_client_tls;

void keeld_lab_setup(void);
void keeld_lab_teardown(void);
void keeld_start(struct keeld *k, unsigned id);
void keeld_stop(struct keeld *k);
/* A TLS client of keeld i (0 or 1). */
struct keel_client *connect_host(int i);
/* Call and expect success; returns the result (caller decrefs). */
json_t *call_ok(struct keel_client *c, const char *method, const char *params_fmt, ...);
/* Call and expect a JSON-RPC error with this code; returns the message (free it). */
char *call_fails(struct keel_client *c, int code, const char *method, json_t *params);
/* How many storage servers keeld has connected. */
size_t connections_of(struct keel_client *c);
/* Restart keeld i on its state dir: a new client, nconns servers connected by itself. */
struct keel_client *restart_host(int i, struct keel_client *old, size_t nconns);
/* Connect the NFS export ("nfs1") and the iSCSI target ("iscsi1"). */
void connect_storage(struct keel_client *c);

#endif /* KEEL_TESTS_KEELD_LAB_H */

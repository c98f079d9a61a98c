/*
 * Two keeld processes for the functional tests (test_keeld*.c): a test CA
 * and its certificates, the harness's tgtd (one target, two 12 GiB LUNs)
 * and nfs-ganesha, keeld host ids 1 and 2 over TLS, and a TLS client.
 * The lease timeout is N = 3 s: every lease request must end within N,
 * and 1 or 2 s failed NFS writes on a loaded 2-core machine.
 * keeld_lab_setup/teardown are a checked fixture.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/strutil.h"
#include "functional/keeld_lab.h"
#include "io/url.h"

#define GiB (UINT64_C(1) << 30)

char *kl_tmp;
struct keel_lab_certs kl_certs;
struct keel_lab_tgtd *kl_tgtd;
struct keel_lab_nfs *kl_nfs;
struct keeld kl_hosts[2];
struct keel_tls_ctx *kl_client_tls;

void keeld_start(struct keeld *k, unsigned id)
{
    char *exe = keel_strdup_printf("%s/hsm/keeld", getenv("KEEL_BUILD_ROOT"));
    char *pf, idbuf[16];
    uint64_t deadline = keel_now_ns() + 20 * KEEL_NS_PER_S;

    k->state = keel_strdup_printf("%s/host%u", kl_tmp, id);
    pf = keel_strdup_printf("%s/host%u.port", kl_tmp, id);
    snprintf(idbuf, sizeof(idbuf), "%u", id);
    unlink(pf);
    k->pid = fork();
    ck_assert_int_ge(k->pid, 0);
    if (k->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* KEEL_TEST_KEELD_WRAP: a command keeld runs under (gdb -batch -ex run ... --args). */
        const char *wrap = getenv("KEEL_TEST_KEELD_WRAP");

        if (wrap != NULL)
            execl("/bin/sh", "sh", "-c", keel_strdup_printf("exec %s \"$@\"", wrap), "sh", exe,
                  "--host-id", idbuf, "--state-dir", k->state, "--ca", kl_certs.ca, "--cert",
                  kl_certs.server_cert, "--key", kl_certs.server_key, "--listen", "127.0.0.1",
                  "--port", "0", "--port-file", pf, "--monitor-interval", "500",
                  "--io-timeout", "3000", "--lease-timeout", "3", (char *)NULL);
        execl(exe, "keeld", "--host-id", idbuf, "--state-dir", k->state, "--ca", kl_certs.ca,
              "--cert", kl_certs.server_cert, "--key", kl_certs.server_key, "--listen", "127.0.0.1",
              "--port", "0", "--port-file", pf, "--monitor-interval", "500", "--io-timeout",
              "3000", "--lease-timeout", "3", (char *)NULL);
        _exit(127);
    }
    for (;;) {
        FILE *f = fopen(pf, "r");

        if (f != NULL && fscanf(f, "%u", &k->port) == 1) {
            fclose(f);
            break;
        }
        if (f != NULL)
            fclose(f);
        ck_assert_msg(keel_now_ns() < deadline, "keeld %u did not start", id);
        ck_assert_msg(waitpid(k->pid, NULL, WNOHANG) == 0, "keeld %u exited", id);
        keel_sleep_ms(50);
    }
    free(pf);
    free(exe);
}

void keeld_stop(struct keeld *k)
{
    int status = 0;

    if (k->pid <= 0)
        return;
    kill(k->pid, SIGTERM);
    waitpid(k->pid, &status, 0);
    k->pid = 0;
    free(k->state);
    k->state = NULL;
    /* A clean stop (SPM lease released, lockspaces left) exits 0; a crash there is a failure. */
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "keeld did not stop cleanly: "
                  "status %#x", status);
}

void keeld_lab_setup(void)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_config tc;
    uint64_t sizes[] = { 12 * GiB, 12 * GiB };

    signal(SIGPIPE, SIG_IGN);
    kl_tmp = keel_lab_tmpdir("keeld", &err);
    ck_assert_msg(kl_tmp != NULL, "%s", err.msg);
    ck_assert_msg(keel_lab_certs_make(kl_tmp, &kl_certs, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lab_tgtd_start(&kl_tgtd, &err) == 0 &&
                  keel_lab_tgtd_add_target(kl_tgtd, "keeld", sizes, 2, NULL, NULL, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(keel_lab_nfs_start(&kl_nfs, &err) == 0, "%s", err.msg);
    keeld_start(&kl_hosts[0], 1);
    keeld_start(&kl_hosts[1], 2);
    tc = (struct keel_tls_config){ .ca = kl_certs.ca, .cert = kl_certs.client_cert,
                                   .key = kl_certs.client_key };
    ck_assert_msg(keel_tls_client_new(&tc, &kl_client_tls, &err) == 0, "%s", err.msg);
}

void keeld_lab_teardown(void)
{
    keeld_stop(&kl_hosts[0]);
    keeld_stop(&kl_hosts[1]);
    keel_tls_ctx_free(kl_client_tls);
    keel_lab_nfs_stop(kl_nfs);
    keel_lab_tgtd_stop(kl_tgtd);
    keel_lab_tmpdir_remove(kl_tmp);
}

struct keel_client *connect_host(int i)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *c = NULL;

    ck_assert_msg(keel_client_connect("127.0.0.1", kl_hosts[i].port, kl_client_tls, 10000, &c,
                                      &err) == 0, "%s", err.msg);
    return c;
}

/* Call and expect success; returns the result (caller decrefs). */
json_t *call_ok(struct keel_client *c, const char *method, const char *params_fmt, ...)
{
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *params = NULL, *result = NULL;
    json_error_t je;
    va_list ap;

    if (params_fmt != NULL) {
        va_start(ap, params_fmt);
        params = json_vpack_ex(&je, 0, params_fmt, ap);
        va_end(ap);
        ck_assert_msg(params != NULL, "%s", je.text);
    }
    ck_assert_msg(keel_client_call(c, method, params, &result, &err) == 0, "%s: %s", method,
                  err.msg);
    json_decref(params);
    return result;
}

/* Call and expect a JSON-RPC error with this code; returns the message. */
char *call_fails(struct keel_client *c, int code, const char *method, json_t *params)
{
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *result = NULL;

    ck_assert_msg(keel_client_call(c, method, params, &result, &err) == -1, "%s succeeded",
                  method);
    json_decref(params);
    ck_assert_msg(keel_client_last_code(c) == code, "%s: code %d, want %d (%s)", method,
                  keel_client_last_code(c), code, err.msg);
    return strdup(err.msg);
}

/* How many storage servers keeld has connected. */
size_t connections_of(struct keel_client *c)
{
    json_t *r = call_ok(c, "StorageServer.list", NULL);
    size_t n = json_array_size(json_object_get(r, "connections"));

    json_decref(r);
    return n;
}

/*
 * Restart keeld i (SIGTERM, start again on its state dir): a new client to
 * it, which must have connected nconns storage servers by itself.
 */
struct keel_client *restart_host(int i, struct keel_client *old, size_t nconns)
{
    struct keel_client *c;

    keel_client_close(old);
    keeld_stop(&kl_hosts[i]);
    keeld_start(&kl_hosts[i], (unsigned)i + 1);
    c = connect_host(i);
    ck_assert_uint_eq(connections_of(c), nconns);
    return c;
}

void connect_storage(struct keel_client *c)
{
    char target[KEEL_URL_MAX];
    json_t *r;
    size_t i;
    json_t *v;

    snprintf(target, sizeof(target), "%s/%s", keel_lab_tgtd_portal_url(kl_tgtd),
             keel_lab_tgtd_iqn(kl_tgtd, 0));
    r = call_ok(c, "StorageServer.connect", "{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}",
                "connections", "id", "nfs1", "type", "nfs", "url", keel_lab_nfs_url(kl_nfs), "id",
                "iscsi1", "type", "iscsi", "url", target);
    json_array_foreach(json_object_get(r, "connections"), i, v)
        ck_assert_msg(json_integer_value(json_object_get(v, "status")) == 0, "%s: %s",
                      json_string_value(json_object_get(v, "id")),
                      json_string_value(json_object_get(v, "message")));
    json_decref(r);
}


/*
 * keeld, started for real: two keeld processes (host ids 1 and 2) over
 * TLS with certificates of a test CA, the harness's tgtd and nfs-ganesha.
 *
 *   - only a client whose certificate chains to keeld's CA gets in;
 *   - both hosts connect the NFS export and the iSCSI target; host 1
 *     makes an NFS domain and a block domain and a snapshot chain on the
 *     block one; host 2 sees all of it; lvm2 judges the VG; bad params,
 *     unknown methods and domains get JSON-RPC errors that name them;
 *   - the domain monitor: a stalled NFS server makes the domain invalid
 *     (a Domain.state event), and valid again when it comes back;
 *   - 10,000 random or malformed messages do not crash keeld.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/monotime.h"
#include "common/uuid.h"
#include "common/strutil.h"
#include "functional/keeld_lab.h"
#include "functional/lvm_judge.h"
#include "harness/certs.h"
#include "harness/lab.h"
#include "hsm/api_gen.h"
#include "hsm/client.h"
#include "hsm/rpc.h"
#include "hsm/tls.h"
#include "io/url.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

START_TEST(tls_only_with_the_ca)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_tls_config tc;
    struct keel_tls_ctx *nocert = NULL, *other = NULL;
    struct keel_client *c;
    json_t *r, *res = NULL;

    /* The engine's certificate: in. */
    c = connect_host(0);
    r = call_ok(c, "Host.getCapabilities", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "host_id")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "api_version")), KEEL_API_VERSION);
    json_decref(r);
    keel_client_close(c);

    /* No client certificate: the handshake or the first call fails. */
    tc = (struct keel_tls_config){ .ca = kl_certs.ca };
    ck_assert_msg(keel_tls_client_new(&tc, &nocert, &err) == 0, "%s", err.msg);
    c = NULL;
    if (keel_client_connect("127.0.0.1", kl_hosts[0].port, nocert, 10000, &c, &err) == 0) {
        ck_assert_int_eq(keel_client_call(c, "Host.ping", NULL, &res, &err), -1);
        keel_client_close(c);
    }
    /* A certificate from another CA: refused the same way. */
    tc = (struct keel_tls_config){ .ca = kl_certs.ca, .cert = kl_certs.other_client_cert,
                                   .key = kl_certs.other_client_key };
    ck_assert_msg(keel_tls_client_new(&tc, &other, &err) == 0, "%s", err.msg);
    c = NULL;
    if (keel_client_connect("127.0.0.1", kl_hosts[0].port, other, 10000, &c, &err) == 0) {
        ck_assert_int_eq(keel_client_call(c, "Host.ping", NULL, &res, &err), -1);
        keel_client_close(c);
    }
    /* Clear text to a TLS keeld: no answer that parses, keeld unharmed. */
    c = NULL;
    if (keel_client_connect("127.0.0.1", kl_hosts[0].port, NULL, 10000, &c, &err) == 0) {
        keel_client_set_timeout(c, 3000);
        ck_assert_int_eq(keel_client_call(c, "Host.ping", NULL, &res, &err), -1);
        keel_client_close(c);
    }
    keel_tls_ctx_free(nocert);
    keel_tls_ctx_free(other);
    c = connect_host(0);
    json_decref(call_ok(c, "Host.ping", NULL));
    keel_client_close(c);
}
END_TEST

START_TEST(two_hosts_domains_and_volumes)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *h1 = connect_host(0), *h2 = connect_host(1);
    const char *img = "0b6f3a5e-2c4d-4e8f-9a1b-3c5d7e9f1b2d";
    const char *base = "7a9c1e3f-5b7d-4f1a-8c2e-4d6f8a0c2e4f";
    const char *snap = "8b0d2f4a-6c8e-4a2b-9d3f-5e7a9b1d3f5a";
    const char *big = "9c1e3a5b-7d9f-4b1c-8e3a-6f8b0d2f4a6c";
    char nfs_sd[KEEL_UUID_LEN + 1], blk_sd[KEEL_UUID_LEN + 1], devid[256], devid2[256];
    json_t *r, *devs, *v;
    size_t i;
    char *msg;

    connect_storage(h1);
    connect_storage(h2);
    /* Connecting the same id to the same URL again is a no-op; another URL is refused. */
    r = call_ok(h1, "StorageServer.connect", "{s:[{s:s, s:s, s:s}]}", "connections", "id",
                "nfs1", "type", "posix", "url", "file:///tmp");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r, "connections"), 0), "status")),
                     KEEL_E_EXIST);
    json_decref(r);

    /* A CHAP secret that would break the URL is refused, and never shown. */
    r = call_ok(h1, "StorageServer.connect", "{s:[{s:s, s:s, s:s, s:s, s:s}]}", "connections",
                "id", "chap", "type", "iscsi", "url", keel_lab_tgtd_portal_url(kl_tgtd), "user",
                "u", "password", "sec/ret@x");
    v = json_array_get(json_object_get(r, "connections"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "status")), KEEL_E_INVAL);
    ck_assert_msg(strstr(json_string_value(json_object_get(v, "message")), "sec/ret") == NULL,
                  "%s", json_string_value(json_object_get(v, "message")));
    json_decref(r);

    /* The LUNs, as getDeviceList shows them. */
    r = call_ok(h1, "Host.getDeviceList", "{}");
    devs = json_object_get(r, "devices");
    ck_assert_int_eq(json_array_size(devs), 2);
    keel_strlcpy(devid, json_string_value(json_object_get(json_array_get(devs, 0), "devid")),
                 sizeof(devid));
    keel_strlcpy(devid2, json_string_value(json_object_get(json_array_get(devs, 1), "devid")),
                 sizeof(devid2));
    ck_assert_msg(devid[0] != '\0', "no device id");
    ck_assert_uint_eq(json_integer_value(json_object_get(json_array_get(devs, 0), "size")),
                      12 * GiB);
    json_decref(r);

    /* Host 1 makes an NFS domain and a block domain. */
    r = call_ok(h1, "StorageDomain.create", "{s:s, s:s, s:s}", "name", "nfs-data", "type", "nfs",
                "connection", "nfs1");
    keel_strlcpy(nfs_sd, json_string_value(json_object_get(r, "uuid")), sizeof(nfs_sd));
    ck_assert_str_eq(json_string_value(json_object_get(r, "type")), "NFS");
    /* REMOTE_PATH as oVirt writes it: the export, not the connection's name. */
    {
        char *want = keel_strdup_printf("127.0.0.1:%s", keel_lab_nfs_export_dir(kl_nfs));

        ck_assert_str_eq(json_string_value(json_object_get(r, "remote_path")), want);
        free(want);
    }
    json_decref(r);
    r = call_ok(h1, "StorageDomain.create", "{s:s, s:s, s:[s]}", "name", "block-data", "type",
                "iscsi", "luns", devid);
    keel_strlcpy(blk_sd, json_string_value(json_object_get(r, "uuid")), sizeof(blk_sd));
    ck_assert(json_is_true(json_object_get(r, "block")));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "luns"), 0)), devid);
    json_decref(r);

    /* Host 2 finds both. */
    r = call_ok(h2, "StorageDomain.list", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r, "domains")), 2);
    json_decref(r);
    r = call_ok(h2, "StorageDomain.getInfo", "{s:s}", "sd", blk_sd);
    ck_assert_str_eq(json_string_value(json_object_get(r, "name")), "block-data");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "version")), 5);
    ck_assert_uint_eq(json_integer_value(json_object_get(r, "capacity")) % (128 * MiB), 0);
    json_decref(r);

    /* Host 1: a base volume and a snapshot on the block domain; host 2 reads the chain. */
    json_decref(call_ok(h1, "Volume.create", "{s:s, s:s, s:s, s:s, s:s, s:I}", "sd", blk_sd,
                        "image", img, "uuid", base, "format", "raw", "type", "preallocated",
                        "capacity", (json_int_t)GiB));
    /* The snapshot through the generated, typed client stub. */
    {
        struct keel_api_volume_create_params vp = {
            .sd = blk_sd, .image = img, .uuid = snap, .format = "cow", .type = "sparse",
            .capacity = GiB, .parent = base, .description = "snap 1",
        };

        ck_assert_msg(keel_client_volume_create(h1, &vp, &r, &err) == 0, "%s", err.msg);
        ck_assert_str_eq(json_string_value(json_object_get(r, "legality")), "LEGAL");
        ck_assert_str_eq(json_string_value(json_object_get(r, "description")), "snap 1");
        ck_assert_str_eq(json_string_value(json_object_get(r, "parent")), base);
        json_decref(r);
    }
    r = call_ok(h2, "Image.list", "{s:s}", "sd", blk_sd);
    ck_assert_int_eq(json_array_size(json_object_get(r, "images")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "images"), 0)), img);
    json_decref(r);
    r = call_ok(h1, "Volume.extend", "{s:s, s:s, s:I}", "sd", blk_sd, "volume", snap, "capacity",
                (json_int_t)(2 * GiB));
    ck_assert_uint_eq(json_integer_value(json_object_get(r, "capacity")), 2 * GiB);
    json_decref(r);
    r = call_ok(h2, "Volume.getInfo", "{s:s, s:s}", "sd", blk_sd, "volume", snap);
    ck_assert_uint_eq(json_integer_value(json_object_get(r, "capacity")), 2 * GiB);
    json_decref(r);

    /*
     * Host 1 adds the second LUN; host 2, which knew the domain on one LUN,
     * then makes a volume that needs both.
     */
    r = call_ok(h1, "StorageDomain.extend", "{s:s, s:s}", "sd", blk_sd, "lun", devid2);
    ck_assert_int_eq(json_array_size(json_object_get(r, "luns")), 2);
    json_decref(r);
    r = call_ok(h2, "Volume.create", "{s:s, s:s, s:s, s:s, s:s, s:I}", "sd", blk_sd, "image",
                "1d3f5a7c-9e1b-4d3f-8a5c-7e9b1d3f5a7c", "uuid", big, "format", "raw", "type",
                "preallocated", "capacity", (json_int_t)(14 * GiB));
    ck_assert_str_eq(json_string_value(json_object_get(r, "legality")), "LEGAL");
    json_decref(r);
    r = call_ok(h2, "Image.getChain", "{s:s, s:s}", "sd", blk_sd, "image", img);
    ck_assert_int_eq(json_array_size(json_object_get(r, "volumes")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(r, "volumes"), 0), "uuid")), base);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(r, "volumes"), 1), "role")), "LEAF");
    json_decref(r);
    /* Both LUNs are now PVs of the domain's VG, the added one without metadata of its own. */
    r = call_ok(h2, "Host.getDeviceList", "{s:s}", "connection", "iscsi1");
    ck_assert_int_eq(json_array_size(json_object_get(r, "devices")), 2);
    json_array_foreach(json_object_get(r, "devices"), i, v)
        ck_assert_str_eq(json_string_value(json_object_get(v, "vg")), blk_sd);
    json_decref(r);

    /* lvm2 judges what keeld wrote. */
    {
        struct lvm_judge j = { 0 };
        const char *files[] = { keel_lab_tgtd_lun_path(kl_tgtd, 0, 1),
                                keel_lab_tgtd_lun_path(kl_tgtd, 0, 2) };
        const char *argv[] = { "lvs", "--noheadings", "-o", "lv_name,lv_tags", blk_sd, NULL };
        const char *segs[] = { "lvs", "--noheadings", "-o", "devices", blk_sd + 0, NULL };
        char *out = NULL, *want, sel[128];

        ck_assert_msg(lvm_judge_attach(&j, files, 2, &err) == 0, "%s", err.msg);
        /* The 14 GiB volume: segments on both LUNs' PVs. */
        snprintf(sel, sizeof(sel), "%s/%s", blk_sd, big);
        segs[4] = sel;
        ck_assert_msg(lvm_judge_run(&j, segs, &out, &err) == 0, "%s", err.msg);
        ck_assert_msg(strstr(out, j.loops[0]) != NULL && strstr(out, j.loops[1]) != NULL,
                      "lvs devices of %s: %s", big, out);
        free(out);
        ck_assert_msg(lvm_judge_run(&j, argv, &out, &err) == 0, "%s", err.msg);
        want = keel_strdup_printf("%s IU_%s", snap, img);
        ck_assert_msg(strstr(out, want) != NULL, "lvs: %s", out);
        ck_assert_msg(strstr(out, base) != NULL && strstr(out, "metadata") != NULL, "lvs: %s",
                      out);
        free(want);
        free(out);
        lvm_judge_detach(&j);
    }

    /* Errors: each names what is wrong. */
    msg = call_fails(h1, KEEL_E_BUSY, "Volume.delete",
                     json_pack("{s:s, s:s}", "sd", blk_sd, "volume", base));
    ck_assert_msg(strstr(msg, base) != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_RPC_INVALID_PARAMS, "Volume.create",
                     json_pack("{s:s, s:s, s:s, s:s, s:i}", "sd", blk_sd, "image", img, "format",
                               "qcow3", "type", "sparse", "capacity", 1));
    ck_assert_msg(strstr(msg, "format") != NULL && strstr(msg, "raw, cow") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_RPC_INVALID_PARAMS, "Volume.create",
                     json_pack("{s:s, s:s, s:s, s:s, s:I}", "sd", blk_sd, "image", img, "format",
                               "raw", "type", "sparse", "capacity", (json_int_t)1 << 62));
    ck_assert_msg(strstr(msg, "param capacity: must be at most") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_RPC_INVALID_PARAMS, "Volume.getInfo",
                     json_pack("{s:s, s:s, s:i}", "sd", blk_sd, "volume", base, "volumes", 1));
    ck_assert_msg(strstr(msg, "unknown param \"volumes\"") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_RPC_INVALID_PARAMS, "Volume.getInfo",
                     json_pack("{s:s}", "volume", base));
    ck_assert_msg(strstr(msg, "param sd is required") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_RPC_METHOD_NOT_FOUND, "Volume.explode", NULL);
    ck_assert_msg(strstr(msg, "Volume.explode") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h2, KEEL_E_NOENT, "StorageDomain.getInfo",
                     json_pack("{s:s}", "sd", "5e1c0f2a-8d1b-4c3e-9a7f-2b6d4e8f1a03"));
    ck_assert_msg(strstr(msg, "5e1c0f2a-8d1b-4c3e-9a7f-2b6d4e8f1a03") != NULL, "%s", msg);
    free(msg);

    /* Legality, delete in order, then the domains go. */
    r = call_ok(h2, "Volume.setLegality", "{s:s, s:s, s:s}", "sd", blk_sd, "volume", snap,
                "legality", "ILLEGAL");
    ck_assert_str_eq(json_string_value(json_object_get(r, "legality")), "ILLEGAL");
    json_decref(r);
    json_decref(call_ok(h1, "Volume.delete", "{s:s, s:s}", "sd", blk_sd, "volume", big));
    json_decref(call_ok(h1, "Volume.delete", "{s:s, s:s}", "sd", blk_sd, "volume", snap));
    json_decref(call_ok(h1, "Volume.delete", "{s:s, s:s}", "sd", blk_sd, "volume", base));
    r = call_ok(h2, "Volume.list", "{s:s}", "sd", blk_sd);
    ck_assert_int_eq(json_array_size(json_object_get(r, "volumes")), 0);
    json_decref(r);
    /* The log ring holds what keeld did. */
    r = call_ok(h1, "Host.dumpLog", "{s:i}", "lines", 50);
    {
        bool seen = false;

        json_array_foreach(json_object_get(r, "lines"), i, v)
            if (strstr(json_string_value(v), "created storage domain") != NULL &&
                strstr(json_string_value(v), blk_sd) != NULL)
                seen = true;
        ck_assert_msg(seen, "Host.dumpLog: no line on creating %s", blk_sd);
        ck_assert_int_le(json_array_size(json_object_get(r, "lines")), 50);
    }
    json_decref(r);

    /* Host 2 restarts: it connects its servers again from its state dir. */
    h2 = restart_host(1, h2, 2);
    r = call_ok(h2, "StorageDomain.getInfo", "{s:s}", "sd", blk_sd);
    ck_assert_int_eq(json_array_size(json_object_get(r, "luns")), 2);
    json_decref(r);
    /*
     * A server that is down while keeld starts is not connected then, but
     * stays in the state dir and is connected at the next start.
     */
    ck_assert_msg(keel_lab_nfs_signal(kl_nfs, SIGSTOP, &err) == 0, "%s", err.msg);
    keel_client_close(h2);
    keeld_stop(&kl_hosts[1]);
    keeld_start(&kl_hosts[1], 2);
    ck_assert_msg(keel_lab_nfs_signal(kl_nfs, SIGCONT, &err) == 0, "%s", err.msg);
    h2 = connect_host(1);
    ck_assert_int_eq(connections_of(h2), 1);
    h2 = restart_host(1, h2, 2);

    json_decref(call_ok(h1, "StorageDomain.format", "{s:s}", "sd", nfs_sd));
    msg = call_fails(h2, KEEL_E_NOENT, "StorageDomain.getInfo", json_pack("{s:s}", "sd", nfs_sd));
    free(msg);
    /* Host 2 still knows the block domain; disconnecting drops it. */
    /* keel-rpc, the command-line client: a result on stdout, an error as JSON, exit 1. */
    {
        char *exe = keel_strdup_printf("%s/hsm/keel-rpc", getenv("KEEL_BUILD_ROOT"));
        char *addr = keel_strdup_printf("127.0.0.1:%u", kl_hosts[1].port);
        char *params = keel_strdup_printf("{\"sd\":\"%s\"}", blk_sd);
        const char *ok[] = { exe, "--ca", kl_certs.ca, "--cert", kl_certs.client_cert, "--key",
                             kl_certs.client_key, addr, "StorageDomain.getInfo", params, NULL };
        const char *bad[] = { exe, "--ca", kl_certs.ca, "--cert", kl_certs.client_cert, "--key",
                              kl_certs.client_key, addr, "Volume.explode", NULL };
        char *out = NULL, *errout = NULL;
        int status = -1;

        ck_assert_msg(keel_lab_run(ok, NULL, &out, &errout, &status, &err) == 0, "%s", err.msg);
        ck_assert_msg(status == 0 && strstr(out, "\"block-data\"") != NULL, "%d: %s %s", status,
                      out, errout);
        free(out);
        free(errout);
        ck_assert_msg(keel_lab_run(bad, NULL, &out, &errout, &status, &err) == 0, "%s", err.msg);
        ck_assert_msg(status == 1 && strstr(errout, "-32601") != NULL, "%d: %s", status, errout);
        free(out);
        free(errout);
        /* "-": the params from stdin (a secret stays off the command line). */
        {
            char *cmd = keel_strdup_printf("printf '%%s' '%s' | '%s' --ca '%s' --cert '%s' "
                                           "--key '%s' %s StorageDomain.getInfo -", params, exe,
                                           kl_certs.ca, kl_certs.client_cert,
                                           kl_certs.client_key, addr);
            const char *sh[] = { "sh", "-c", cmd, NULL };

            ck_assert_msg(keel_lab_run(sh, NULL, &out, &errout, &status, &err) == 0, "%s",
                          err.msg);
            ck_assert_msg(status == 0 && strstr(out, "\"block-data\"") != NULL, "%d: %s %s",
                          status, out, errout);
            free(out);
            free(errout);
            free(cmd);
        }
        free(params);
        free(addr);
        free(exe);
    }
    r = call_ok(h2, "StorageServer.disconnect", "{s:[ss]}", "ids", "iscsi1", "nfs1");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r, "connections"), 0), "status")), 0);
    json_decref(r);
    msg = call_fails(h2, KEEL_E_NOENT, "StorageDomain.getInfo", json_pack("{s:s}", "sd", blk_sd));
    free(msg);
    keel_client_close(h1);
    keel_client_close(h2);
}
END_TEST

/* A domain whose metadata does not check is named with that reason, not "not found". */
START_TEST(a_damaged_domain_is_named)
{
    struct keel_client *h1 = connect_host(0), *h2 = connect_host(1);
    char *dir = keel_strdup_printf("%s/posix", kl_tmp), *url = keel_strdup_printf("file://%s", dir);
    char sd[KEEL_UUID_LEN + 1], *path, *msg;
    json_t *r;
    FILE *f;
    char text[4096];
    size_t n;

    ck_assert_int_eq(mkdir(dir, 0755), 0);
    json_decref(call_ok(h1, "StorageServer.connect", "{s:[{s:s, s:s, s:s}]}", "connections",
                        "id", "p1", "type", "posix", "url", url));
    json_decref(call_ok(h2, "StorageServer.connect", "{s:[{s:s, s:s, s:s}]}", "connections",
                        "id", "p1", "type", "posix", "url", url));
    r = call_ok(h1, "StorageDomain.create", "{s:s, s:s, s:s}", "name", "local", "type",
                "posixfs", "connection", "p1");
    keel_strlcpy(sd, json_string_value(json_object_get(r, "uuid")), sizeof(sd));
    ck_assert_str_eq(json_string_value(json_object_get(r, "remote_path")), dir);
    json_decref(r);

    /* One byte of the description changes behind the seal. */
    path = keel_strdup_printf("%s/%s/dom_md/metadata", dir, sd);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_ptr_nonnull(strstr(text, "DESCRIPTION=local"));
    strstr(text, "DESCRIPTION=local")[12] = 'L';
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    fclose(f);

    msg = call_fails(h2, KEEL_E_CHECKSUM, "StorageDomain.getInfo", json_pack("{s:s}", "sd", sd));
    ck_assert_msg(strstr(msg, sd) != NULL, "%s", msg);
    free(msg);
    free(path);
    free(url);
    free(dir);
    keel_client_close(h1);
    keel_client_close(h2);
}
END_TEST

struct events {
    int invalid, valid;
};

static void on_event(void *opaque, const char *method, json_t *params)
{
    struct events *e = opaque;

    if (strcmp(method, "Domain.state") != 0)
        return;
    if (json_is_true(json_object_get(params, "valid")))
        e->valid++;
    else
        e->invalid++;
}

START_TEST(monitor_reports_a_stalled_domain)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *c = connect_host(0), *ev = connect_host(0);
    struct events e = { 0 };
    char sd[KEEL_UUID_LEN + 1];
    json_t *r, *m = NULL;
    uint64_t deadline;

    connect_storage(c);
    r = call_ok(c, "StorageDomain.create", "{s:s, s:s, s:s}", "name", "watched", "type", "nfs",
                "connection", "nfs1");
    keel_strlcpy(sd, json_string_value(json_object_get(r, "uuid")), sizeof(sd));
    json_decref(r);
    keel_client_set_events(ev, on_event, &e);
    json_decref(call_ok(ev, "Host.subscribe", NULL));

    /* Stats show the domain valid, with its space. */
    keel_sleep_ms(1500);
    r = call_ok(c, "Host.getStats", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r, "domains")), 1);
    ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(r, "domains"), 0),
                                           "valid")));
    ck_assert_int_gt(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r, "domains"), 0), "capacity")), 0);
    json_decref(r);

    /* The NFS server stalls: the domain becomes invalid, then valid again. */
    ck_assert_msg(keel_lab_nfs_signal(kl_nfs, SIGSTOP, &err) == 0, "%s", err.msg);
    deadline = keel_now_ns() + 30 * KEEL_NS_PER_S;
    while (e.invalid == 0 && keel_now_ns() < deadline)
        if (keel_client_read(ev, 500, &m, &err) == 0)
            json_decref(m);
    ck_assert_msg(keel_lab_nfs_signal(kl_nfs, SIGCONT, &err) == 0, "%s", err.msg);
    ck_assert_msg(e.invalid > 0, "no Domain.state invalid event");
    deadline = keel_now_ns() + 60 * KEEL_NS_PER_S;
    while (e.valid == 0 && keel_now_ns() < deadline)
        if (keel_client_read(ev, 500, &m, &err) == 0)
            json_decref(m);
    ck_assert_msg(e.valid > 0, "no Domain.state valid event after the server came back");
    r = call_ok(c, "Host.getStats", NULL);
    ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(r, "domains"), 0),
                                           "valid")));
    json_decref(r);
    keel_client_close(ev);
    keel_client_close(c);
}
END_TEST

/* A random or malformed message; buf gets a line (no newline). */
static size_t bad_message(unsigned *seed, char *buf, size_t cap)
{
    static const char *const shapes[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"Volume.getInfo\",\"params\":{\"sd\":%u}}",
        "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"StorageDomain.create\",\"params\":"
        "{\"name\":\"x\",\"type\":\"iscsi\",\"luns\":[%u,null]}}",
        "{\"jsonrpc\":\"1.0\",\"id\":%u,\"method\":\"Host.ping\",\"x\":%u}",
        "{\"jsonrpc\":\"2.0\",\"id\":[%u],\"method\":\"Host.ping%u\"}",
        "[{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"Host.ping\"},%u,\"x\"]",
        "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"StorageServer.connect\",\"params\":"
        "{\"connections\":[{\"id\":\"../x\",\"type\":\"nfs\",\"url\":\"nfs://%u\"}]}}",
        "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"Volume.create\",\"params\":{\"sd\":"
        "\"5e1c0f2a-8d1b-4c3e-9a7f-2b6d4e8f1a03\",\"image\":\"x\",\"format\":\"raw\","
        "\"type\":\"sparse\",\"capacity\":-%u}}",
        "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"Host.dumpLog\",\"params\":{\"lines\":"
        "9999999999999999999%u}}",
    };
    unsigned kind = (unsigned)rand_r(seed) % 5;
    size_t n = 0;

    switch (kind) {
    case 0: /* random bytes, no newline inside */
        n = 1 + (size_t)rand_r(seed) % 200;
        for (size_t i = 0; i < n; i++) {
            buf[i] = (char)(rand_r(seed) & 0xff);
            if (buf[i] == '\n')
                buf[i] = ' ';
        }
        break;
    case 1: /* a shape, cut somewhere */
    case 2: /* a shape, whole */
        n = (size_t)snprintf(buf, cap, shapes[(unsigned)rand_r(seed) % 8], (unsigned)rand_r(seed),
                             (unsigned)rand_r(seed));
        if (kind == 1)
            n = (size_t)rand_r(seed) % n;
        break;
    case 3: /* deep nesting */
        n = 1 + (size_t)rand_r(seed) % 300;
        memset(buf, rand_r(seed) & 1 ? '[' : '{', n);
        break;
    default: /* a shape with one byte flipped */
        n = (size_t)snprintf(buf, cap, shapes[(unsigned)rand_r(seed) % 8], (unsigned)rand_r(seed),
                             (unsigned)rand_r(seed));
        buf[(size_t)rand_r(seed) % n] = (char)(rand_r(seed) & 0x7f);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\n')
                buf[i] = ' ';
        break;
    }
    return n;
}

START_TEST(ten_thousand_bad_messages)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *c = connect_host(0);
    unsigned seed = 20261202;
    char buf[1024];
    int answered = 0;

    for (int i = 0; i < 10000; i++) {
        size_t n = bad_message(&seed, buf, sizeof(buf) - 1);

        buf[n++] = '\n';
        ck_assert_msg(keel_client_send_raw(c, buf, n, &err) == 0, "message %d: %s", i, err.msg);
        /*
         * Every 100 messages: keeld still answers a ping (skip the answers to
         * the bad messages before it: each is an error, or a result when a
         * random one happened to be valid).
         */
        if (i % 100 == 99) {
            const char ping[] = "{\"jsonrpc\":\"2.0\",\"id\":\"ping\",\"method\":\"Host.ping\"}\n";
            json_t *m = NULL;

            ck_assert_msg(keel_client_send_raw(c, ping, sizeof(ping) - 1, &err) == 0, "%s",
                          err.msg);
            for (;;) {
                ck_assert_msg(keel_client_read(c, 20000, &m, &err) == 0, "message %d: %s", i,
                              err.msg);
                if (json_is_object(m) && json_is_string(json_object_get(m, "id")) &&
                    strcmp(json_string_value(json_object_get(m, "id")), "ping") == 0)
                    break;
                json_decref(m);
            }
            ck_assert_msg(json_is_object(json_object_get(m, "result")), "ping: no result");
            json_decref(m);
            answered++;
        }
    }
    ck_assert_int_eq(answered, 100);
    /* A batch: one array of the answers, none for the notification. */
    {
        const char batch[] = "[{\"jsonrpc\":\"2.0\",\"id\":\"b1\",\"method\":\"Host.ping\"},"
                             "{\"jsonrpc\":\"2.0\",\"method\":\"Host.ping\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":\"b2\",\"method\":\"Nope.x\"}]\n";
        json_t *m = NULL;

        ck_assert_msg(keel_client_send_raw(c, batch, sizeof(batch) - 1, &err) == 0, "%s",
                      err.msg);
        ck_assert_msg(keel_client_read(c, 20000, &m, &err) == 0, "%s", err.msg);
        ck_assert_msg(json_is_array(m) && json_array_size(m) == 2, "batch answer: %s",
                      json_dumps(m, JSON_COMPACT));
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "id")), "b1");
        ck_assert(json_is_object(json_object_get(json_array_get(m, 0), "result")));
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(json_array_get(m, 1), "error"), "code")),
                         KEEL_RPC_METHOD_NOT_FOUND);
        json_decref(m);
    }
    ck_assert_int_eq(waitpid(kl_hosts[0].pid, NULL, WNOHANG), 0);
    /* A line over 4 MiB gets a parse error; the connection goes on. */
    {
        size_t big = KEEL_RPC_MAX_LINE + 10;
        char *line = malloc(big + 1);
        json_t *m = NULL;

        memset(line, 'x', big);
        line[big] = '\n';
        ck_assert_msg(keel_client_send_raw(c, line, big + 1, &err) == 0, "%s", err.msg);
        free(line);
        ck_assert_msg(keel_client_read(c, 20000, &m, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m, "error"), "code")),
                         KEEL_RPC_PARSE_ERROR);
        json_decref(m);
        json_decref(call_ok(c, "Host.ping", NULL));
    }
    keel_client_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keeld");
    TCase *tc = tcase_create("keeld");
    SRunner *sr;
    int failed;

    keel_lab_require("openssl");
    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("lvs");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, keeld_lab_setup, keeld_lab_teardown);
    tcase_add_test(tc, tls_only_with_the_ca);
    tcase_add_test(tc, two_hosts_domains_and_volumes);
    tcase_add_test(tc, a_damaged_domain_is_named);
    tcase_add_test(tc, monitor_reports_a_stalled_domain);
    tcase_add_test(tc, ten_thousand_bad_messages);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

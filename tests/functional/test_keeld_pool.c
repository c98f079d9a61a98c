/*
 * keeld's pool and SPM verbs, two keeld processes over TLS (lease timeout
 * N = 3 s: a host is dead 8N + 6N = 42 s after its last renewal), the
 * harness's tgtd and nfs-ganesha; sanlock and lvm2 judge what is written.
 *
 *   - host 1 makes an NFS domain the master of a new pool; both hosts
 *     connect it and hold their host ids in its lockspace (sanlock reads
 *     them); a change of a pool's domain by a host that is not SPM is
 *     refused;
 *   - host 1 becomes SPM (sanlock: SDM owned by host 1); host 2's start is
 *     refused while host 1 lives; host 1 attaches and activates a block
 *     domain (lvm2 shows its pool tags) and creates a volume in it, which
 *     host 2 then reads;
 *   - the SPM stops, host 2 takes over with a higher lease version,
 *     deactivates and detaches the block domain;
 *   - host 2, SPM, is killed: host 1's start is refused until host 2's
 *     lease is dead, then host 1 is SPM again and works.
 * Runs alone (not parallel): lease timing.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/errc.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "common/uuid.h"
#include "functional/keeld_lab.h"
#include "functional/lvm_judge.h"
#include "functional/sanlock_judge.h"

#define POOL "0f1e2d3c-4b5a-4697-8877-665544332211"

struct events {
    int spm, free, lost;
};

static void on_event(void *opaque, const char *method, json_t *params)
{
    struct events *e = opaque;
    const char *st = json_string_value(json_object_get(params, "status"));

    if (strcmp(method, "Pool.spm") != 0 || st == NULL)
        return;
    e->spm += strcmp(st, "SPM") == 0;
    e->free += strcmp(st, "free") == 0;
    e->lost += strcmp(st, "lost") == 0;
}

static char *create_domain(struct keel_client *c, const char *fmt, ...)
{
    struct keel_error err = KEEL_ERROR_INIT;
    json_t *params, *r = NULL;
    char *uuid;
    va_list ap;

    va_start(ap, fmt);
    params = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_msg(keel_client_call(c, "StorageDomain.create", params, &r, &err) == 0, "%s",
                  err.msg);
    json_decref(params);
    uuid = strdup(json_string_value(json_object_get(r, "uuid")));
    json_decref(r);
    return uuid;
}

/* What sanlock reads in a file domain's area (NFS export dir): field of a leader. */
static char *sanlock_field(const char *sd, const char *kind, const char *what, const char *field)
{
    char *spec;
    char *v;

    if (strcmp(kind, "-s") == 0)
        spec = keel_strdup_printf("%s:%s:%s/%s/dom_md/ids:0", sd, what,
                                  keel_lab_nfs_export_dir(kl_nfs), sd);
    else
        spec = keel_strdup_printf("%s:%s:%s/%s/dom_md/leases:1048576", sd, what,
                                  keel_lab_nfs_export_dir(kl_nfs), sd);
    v = sanlock_judge_read_leader(kind, spec, field);
    free(spec);
    return v;
}

static void expect_sanlock(const char *sd, const char *kind, const char *what,
                           const char *field, const char *want)
{
    char *v = sanlock_field(sd, kind, what, field);

    ck_assert_msg(strcmp(v, want) == 0, "sanlock %s %s %s: %s, want %s", kind, what, field, v,
                  want);
    free(v);
}

/* lvm2's VG tags of the block domain. */
static char *vg_tags(const char *vg)
{
    struct keel_error err = KEEL_ERROR_INIT;
    const char *files[] = { keel_lab_tgtd_lun_path(kl_tgtd, 0, 1) };
    const char *vgs[] = { "vgs", "--noheadings", "-o", "vg_tags", vg, NULL };
    struct lvm_judge j;
    char *out = NULL;

    ck_assert_msg(lvm_judge_attach(&j, files, 1, &err) == 0 &&
                  lvm_judge_run(&j, vgs, &out, &err) == 0, "%s", err.msg);
    lvm_judge_detach(&j);
    return out;
}

static json_t *status_of(struct keel_client *c)
{
    return call_ok(c, "StoragePool.getSpmStatus", "{s:s}", "pool", POOL);
}

static void expect_status(struct keel_client *c, const char *status, int host_id)
{
    json_t *r = status_of(c);

    ck_assert_msg(strcmp(json_string_value(json_object_get(r, "status")), status) == 0 &&
                  json_integer_value(json_object_get(r, "host_id")) == host_id,
                  "SPM status %s host %lld, want %s host %d",
                  json_string_value(json_object_get(r, "status")),
                  (long long)json_integer_value(json_object_get(r, "host_id")), status, host_id);
    json_decref(r);
}

static json_int_t spm_start(struct keel_client *c)
{
    json_t *r = call_ok(c, "StoragePool.spmStart", "{s:s}", "pool", POOL);
    json_int_t lver = json_integer_value(json_object_get(r, "lver"));

    ck_assert_str_eq(json_string_value(json_object_get(r, "status")), "SPM");
    json_decref(r);
    return lver;
}

/* A base volume in an image of its own; code 0: it must work, else the error code wanted. */
static char *create_volume(struct keel_client *c, const char *sd, const char *vol, int code)
{
    char img[KEEL_UUID_LEN + 1];
    json_t *p;

    keel_uuid_new(img);
    p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "sd", sd, "image", img, "uuid", vol,
                          "format", "cow", "type", "sparse", "capacity",
                          (json_int_t)(1 << 30));

    if (code == 0) {
        struct keel_error err = KEEL_ERROR_INIT;
        json_t *r = NULL;

        ck_assert_msg(keel_client_call(c, "Volume.create", p, &r, &err) == 0, "%s", err.msg);
        json_decref(p);
        json_decref(r);
        return NULL;
    }
    return call_fails(c, code, "Volume.create", p);
}

START_TEST(pool_and_spm)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_client *h1 = connect_host(0), *h2 = connect_host(1), *ev = connect_host(0);
    struct events e = { 0 };
    char *nfs_sd, *blk_sd, *msg, *tags, *v;
    json_t *r, *m = NULL;
    json_int_t lver1, lver2, lver3;
    uint64_t deadline;
    bool refused_once = false;

    keel_client_set_events(ev, on_event, &e);
    json_decref(call_ok(ev, "Host.subscribe", NULL));
    connect_storage(h1);
    connect_storage(h2);
    nfs_sd = create_domain(h1, "{s:s, s:s, s:s}", "name", "master", "type", "nfs", "connection",
                           "nfs1");
    {
        json_t *d = call_ok(h1, "Host.getDeviceList", "{}");
        const char *devid = json_string_value(json_object_get(
            json_array_get(json_object_get(d, "devices"), 0), "devid"));

        blk_sd = create_domain(h1, "{s:s, s:s, s:[s]}", "name", "block", "type", "iscsi",
                               "luns", devid);
        json_decref(d);
    }

    /* Host 1 makes the pool: the master holds the pool keys, no SPM yet. */
    r = call_ok(h1, "StoragePool.create", "{s:s, s:s, s:s}", "pool", POOL, "name", "dc1",
                "master", nfs_sd);
    ck_assert_str_eq(json_string_value(json_object_get(r, "master")), nfs_sd);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "master_version")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "spm_id")), -1);
    ck_assert_int_eq(json_array_size(json_object_get(r, "domains")), 1);
    json_decref(r);
    /* Creating it did not leave the SDM lease held (sanlock: released, timestamp 0). */
    expect_sanlock(nfs_sd, "-r", "SDM", "timestamp", "0");

    /* A pool's domain is not changed by a host that is not its SPM. */
    msg = create_volume(h1, nfs_sd, "a1a1a1a1-0000-4000-8000-000000000001", KEEL_E_PERM);
    ck_assert_msg(strstr(msg, "SPM") != NULL, "%s", msg);
    free(msg);
    msg = call_fails(h1, KEEL_E_NOENT, "StoragePool.attachDomain",
                     json_pack("{s:s, s:s}", "pool", POOL, "sd", blk_sd));
    free(msg); /* not connected yet: no SPM here */

    /* Both hosts connect: their ids in the master's lockspace, as sanlock reads them. */
    r = call_ok(h1, "StoragePool.connect", "{s:s, s:s}", "pool", POOL, "master", nfs_sd);
    ck_assert(json_is_true(json_object_get(r, "connected")));
    json_decref(r);
    json_decref(call_ok(h2, "StoragePool.connect", "{s:s, s:s}", "pool", POOL, "master",
                        nfs_sd));
    v = sanlock_field(nfs_sd, "-s", "1", "timestamp");
    ck_assert_msg(strcmp(v, "0") != 0, "host 1's delta lease not held");
    free(v);
    v = sanlock_field(nfs_sd, "-s", "2", "timestamp");
    ck_assert_msg(strcmp(v, "0") != 0, "host 2's delta lease not held");
    free(v);
    msg = call_fails(h2, KEEL_E_BUSY, "StoragePool.connect",
                     json_pack("{s:s, s:s}", "pool", "11111111-2222-4333-8444-555555555555",
                               "master", nfs_sd));
    free(msg);
    expect_status(h2, "Free", 0);

    /* Host 1 is SPM; host 2 is refused while host 1 lives. */
    lver1 = spm_start(h1);
    ck_assert_int_ge(lver1, 1);
    expect_sanlock(nfs_sd, "-r", "SDM", "owner_id", "1");
    expect_status(h1, "SPM", 1);
    expect_status(h2, "Other", 1);
    msg = call_fails(h2, KEEL_E_BUSY, "StoragePool.spmStart",
                     json_pack("{s:s}", "pool", POOL));
    free(msg);
    r = call_ok(h1, "StoragePool.getInfo", "{s:s}", "pool", POOL);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "spm_id")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "spm_lver")), lver1);
    json_decref(r);
    r = call_ok(h1, "Host.getStats", NULL);
    ck_assert(json_is_true(json_object_get(json_object_get(r, "pool"), "spm")));
    json_decref(r);

    /* The SPM attaches and activates the block domain: lvm2 sees its pool. */
    json_decref(call_ok(h1, "StoragePool.attachDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    tags = vg_tags(blk_sd);
    ck_assert_msg(strstr(tags, "MDT_POOL_UUID=" POOL) != NULL, "lvm2's tags: %s", tags);
    free(tags);
    r = call_ok(h1, "StoragePool.activateDomain", "{s:s, s:s}", "pool", POOL, "sd", blk_sd);
    ck_assert_int_eq(json_array_size(json_object_get(r, "domains")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(r, "domains"), 1), "status")), "active");
    json_decref(r);
    msg = call_fails(h1, KEEL_E_BUSY, "StoragePool.detachDomain",
                     json_pack("{s:s, s:s}", "pool", POOL, "sd", blk_sd));
    free(msg);

    /* Volumes: by the SPM on both domains; host 2 reads them and may not create. */
    create_volume(h1, blk_sd, "b1b1b1b1-0000-4000-8000-000000000001", 0);
    create_volume(h1, nfs_sd, "b2b2b2b2-0000-4000-8000-000000000002", 0);
    r = call_ok(h2, "Volume.getInfo", "{s:s, s:s}", "sd", blk_sd, "volume",
                "b1b1b1b1-0000-4000-8000-000000000001");
    ck_assert_str_eq(json_string_value(json_object_get(r, "legality")), "LEGAL");
    json_decref(r);
    msg = create_volume(h2, blk_sd, "c1c1c1c1-0000-4000-8000-000000000001", KEEL_E_PERM);
    free(msg);

    /* The SPM stops; host 2 takes over with a higher lease version. */
    json_decref(call_ok(h1, "StoragePool.spmStop", "{s:s}", "pool", POOL));
    expect_status(h2, "Free", 0);
    lver2 = spm_start(h2);
    ck_assert_int_gt(lver2, lver1);
    expect_sanlock(nfs_sd, "-r", "SDM", "owner_id", "2");
    msg = create_volume(h1, nfs_sd, "c2c2c2c2-0000-4000-8000-000000000002", KEEL_E_PERM);
    free(msg);
    create_volume(h2, nfs_sd, "c3c3c3c3-0000-4000-8000-000000000003", 0);
    json_decref(call_ok(h2, "StoragePool.deactivateDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    msg = call_fails(h2, KEEL_E_BUSY, "StoragePool.deactivateDomain",
                     json_pack("{s:s, s:s}", "pool", POOL, "sd", nfs_sd));
    free(msg); /* the master */
    r = call_ok(h2, "StoragePool.detachDomain", "{s:s, s:s}", "pool", POOL, "sd", blk_sd);
    ck_assert_int_eq(json_array_size(json_object_get(r, "domains")), 1);
    json_decref(r);
    tags = vg_tags(blk_sd);
    ck_assert_msg(strstr(tags, "MDT_POOL_UUID=" POOL) == NULL, "lvm2's tags: %s", tags);
    free(tags);
    /* A domain out of the pool is changed by anyone again. */
    create_volume(h1, blk_sd, "d1d1d1d1-0000-4000-8000-000000000001", 0);
    msg = call_fails(h2, KEEL_E_BUSY, "StoragePool.disconnect",
                     json_pack("{s:s}", "pool", POOL));
    free(msg);

    /* Host 2 dies as SPM: host 1 waits for its lease to die, then takes over. */
    kill(kl_hosts[1].pid, SIGKILL);
    waitpid(kl_hosts[1].pid, NULL, 0);
    kl_hosts[1].pid = 0;
    keel_client_close(h2);
    deadline = keel_now_ns() + 90 * KEEL_NS_PER_S;
    for (;;) {
        json_t *p = json_pack("{s:s}", "pool", POOL);

        r = NULL;
        if (keel_client_call(h1, "StoragePool.spmStart", p, &r, &err) == 0) {
            json_decref(p);
            break;
        }
        json_decref(p);
        ck_assert_msg(keel_client_last_code(h1) == KEEL_E_BUSY, "%s", err.msg);
        refused_once = true;
        ck_assert_msg(keel_now_ns() < deadline, "host 2's SPM lease never freed: %s", err.msg);
        keel_sleep_ms(1000);
    }
    ck_assert_msg(refused_once, "the SPM was taken while its host might live");
    lver3 = json_integer_value(json_object_get(r, "lver"));
    json_decref(r);
    ck_assert_int_gt(lver3, lver2);
    expect_sanlock(nfs_sd, "-r", "SDM", "owner_id", "1");
    create_volume(h1, nfs_sd, "e1e1e1e1-0000-4000-8000-000000000001", 0);
    /* A domain activated and deactivated again while SPM, then the SPM stops (keeld exits 0). */
    json_decref(call_ok(h1, "StoragePool.attachDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    json_decref(call_ok(h1, "StoragePool.activateDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    create_volume(h1, blk_sd, "e2e2e2e2-0000-4000-8000-000000000002", 0);
    json_decref(call_ok(h1, "StoragePool.deactivateDomain", "{s:s, s:s}", "pool", POOL, "sd",
                        blk_sd));
    msg = create_volume(h1, blk_sd, "e3e3e3e3-0000-4000-8000-000000000003", KEEL_E_PERM);
    free(msg);

    /* Events: SPM twice, free once, on host 1's subscribed connection. */
    deadline = keel_now_ns() + 5 * KEEL_NS_PER_S;
    while ((e.spm < 2 || e.free < 1) && keel_now_ns() < deadline)
        if (keel_client_read(ev, 200, &m, &err) == 0)
            json_decref(m);
    ck_assert_msg(e.spm == 2 && e.free == 1 && e.lost == 0, "events: SPM %d free %d lost %d",
                  e.spm, e.free, e.lost);

    json_decref(call_ok(h1, "StoragePool.spmStop", "{s:s}", "pool", POOL));
    json_decref(call_ok(h1, "StoragePool.disconnect", "{s:s}", "pool", POOL));
    expect_sanlock(nfs_sd, "-s", "1", "timestamp", "0");
    keel_client_close(ev);
    keel_client_close(h1);
    free(nfs_sd);
    free(blk_sd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keeld_pool");
    TCase *tc = tcase_create("pool");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, keeld_lab_setup, keeld_lab_teardown);
    tcase_add_test(tc, pool_and_spm);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

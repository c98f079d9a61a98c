/*
 * Volume leases (spm/lease.h on keel_vol_lease_open's area) on a block
 * domain (tgtd LUN) and an NFS domain (nfs-ganesha), with three hosts in
 * one process -- each its own host id and its own connections: one for
 * its leases, one for metadata, fenced by the lease it writes under.
 *   - host 1 holds the SPM lease and creates volumes; host 2, an HSM,
 *     takes the lease of an ILLEGAL copy target and sets it LEGAL while the
 *     SPM creates other volumes;
 *   - while host 2 holds it, neither host 3 nor the SPM can take it, and
 *     the real sanlock names host 2 as its owner;
 *   - once host 2 released it, its metadata writes are fenced (the volume
 *     stays LEGAL) and host 3 takes the lease.
 * N = 1 s, slack 2 s.  Runs alone (not parallel): lease timing.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strutil.h"
#include "io/blockdev.h"
#include "io/fs.h"
#include "metadata/sanlock_fmt.h"
#include "spm/lease.h"
#include "tests/functional/sanlock_judge.h"
#include "tests/harness/lab.h"
#include "volume/sd-priv.h"
#include "volume/vol.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SD "5e1c0a3f-1d2b-4c3d-8e4f-5a6b7c8d9e0f"
#define IMG "11111111-0000-4000-8000-000000000001"
#define VOL "aaaaaaaa-0000-4000-8000-00000000000a"

static const struct keel_delta_timing T = { .io_timeout = 1, .slack = 2 };

struct lab {
    bool block;
    struct keel_lab_tgtd *tgtd;
    struct keel_lab_nfs *nfs;
    const char *url;
};

/* A connection and the domain opened on it. */
struct conn {
    struct keel_blockdev *dev;
    struct keel_fs *fs;
    struct keel_sd *sd;
};

struct host {
    struct conn lease, md;
    struct keel_sd_file_view ids_view, leases_view; /* file domains */
    struct keel_sd_area ids, leases;
    struct keel_delta *d;
};

static void conn_open(const struct lab *l, struct conn *c)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_io_opts o;

    keel_io_opts_init(&o);
    o.timeout_ms = 1000; /* I/O within N */
    memset(c, 0, sizeof(*c));
    if (l->block)
        ck_assert_msg(keel_blockdev_open(l->url, &o, &c->dev, &err) == 0 &&
                      keel_sd_open_block(&c->dev, 1, SD, &c->sd, &err) == 0, "%s", err.msg);
    else
        ck_assert_msg(keel_fs_open(l->url, &o, &c->fs, &err) == 0 &&
                      keel_sd_open_file(c->fs, SD, &c->sd, &err) == 0, "%s", err.msg);
}

static void conn_close(struct conn *c)
{
    keel_sd_close(c->sd);
    keel_blockdev_close(c->dev);
    keel_fs_close(c->fs);
}

static void set_fence(struct conn *c, struct keel_fence *f)
{
    if (c->dev != NULL)
        keel_blockdev_set_fence(c->dev, f);
    else
        keel_fs_set_fence(c->fs, f);
}

/* The ids and leases areas of the domain, on conn c. */
static void areas(const struct lab *l, struct host *h)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (l->block) {
        ck_assert_msg(keel_sd_lv_area(keel_sd_vg(h->lease.sd), "ids", true, &h->ids, &err) == 0 &&
                      keel_sd_lv_area(keel_sd_vg(h->lease.sd), "leases", true, &h->leases,
                                      &err) == 0, "%s", err.msg);
    } else {
        ck_assert_msg(keel_sd_view_open(h->lease.fs, SD "/dom_md/ids", KEEL_O_RDWR | KEEL_O_SYNC,
                                        0, &h->ids_view, &err) == 0 &&
                      keel_sd_view_open(h->lease.fs, SD "/dom_md/leases",
                                        KEEL_O_RDWR | KEEL_O_SYNC, 0, &h->leases_view,
                                        &err) == 0, "%s", err.msg);
        h->ids = h->ids_view.area;
        h->leases = h->leases_view.area;
    }
}

struct join {
    const struct lab *l;
    struct host *h;
    int id;
    struct keel_error err;
    int rc;
};

static void *join_thread(void *arg)
{
    struct join *j = arg;
    char name[32];

    snprintf(name, sizeof(name), "host%d.keel", j->id);
    j->rc = keel_delta_acquire(j->h->ids.dev, j->h->ids.offset, SD, (uint64_t)j->id, name, &T,
                               &j->h->d, &j->err);
    if (j->rc == 0)
        j->rc = keel_delta_start(j->h->d, &j->err);
    return NULL;
}

static void host_close(struct host *h)
{
    struct keel_error err = KEEL_ERROR_INIT;

    if (h->d != NULL)
        keel_delta_release(h->d, &err);
    keel_delta_free(h->d);
    if (h->ids_view.file != NULL) {
        keel_sd_view_close(&h->ids_view, NULL);
        keel_sd_view_close(&h->leases_view, NULL);
    }
    conn_close(&h->md);
    conn_close(&h->lease);
}

struct spm_work {
    struct conn *c;
    int n;
    struct keel_error err;
    int rc;
};

static void *spm_creates(void *arg)
{
    struct spm_work *w = arg;

    for (int i = 0; i < w->n && w->rc == 0; i++) {
        char img[KEEL_UUID_LEN + 1];
        struct keel_vol_create c = { .image = img, .format = KEEL_VOL_COW,
                                     .type = KEEL_VOL_SPARSE, .capacity = GiB };

        keel_uuid_new(img);
        w->rc = keel_vol_create(w->c->sd, &c, NULL, &w->err);
    }
    return NULL;
}

static char *lease_spec(const struct lab *l, const struct keel_vol_payload *p)
{
    if (l->block)
        return keel_strdup_printf("%s:%s:%s:%llu", SD, VOL, keel_lab_tgtd_lun_path(l->tgtd, 0, 1),
                                  (unsigned long long)p->offset);
    return keel_strdup_printf("%s:%s:%s/%s/images/%s/%s.lease:0", SD, VOL,
                              keel_lab_nfs_export_dir(l->nfs), SD, IMG, VOL);
}

static void volume_lease(bool block)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct lab l = { .block = block };
    struct host h[3];
    struct keel_lease *spm = NULL, *vl = NULL, *other = NULL;
    struct keel_vol_payload p2, p3;
    struct keel_vol_entry e;
    struct spm_work w = { 0 };
    pthread_t th;
    char *spec, *owner;

    memset(h, 0, sizeof(h));
    /* The domain, its lockspace again with the tests' io timeout, and the copy target. */
    {
        const char *guids[] = { "360014050000000000000000000000b01" };
        struct keel_sd_create c = { .uuid = SD, .name = "leases", .klass = KEEL_SD_CLASS_DATA,
                                    .remote_path = "server:/export", .pv_guids = guids };
        struct keel_vol_create vc = { .image = IMG, .uuid = VOL, .format = KEEL_VOL_COW,
                                      .type = KEEL_VOL_SPARSE, .capacity = GiB,
                                      .illegal = true };
        struct conn setup = { 0 };
        struct keel_sd *sd = NULL;
        struct host tmp = { 0 };

        if (block) {
            uint64_t sizes[] = { 12 * GiB };

            ck_assert_msg(keel_lab_tgtd_start(&l.tgtd, &err) == 0 &&
                          keel_lab_tgtd_add_target(l.tgtd, "vl", sizes, 1, NULL, NULL,
                                                   &err) == 0, "%s", err.msg);
            l.url = keel_lab_tgtd_lun_url(l.tgtd, 0, 1);
            ck_assert_msg(keel_blockdev_open(l.url, NULL, &setup.dev, &err) == 0, "%s", err.msg);
            c.type = KEEL_SD_TYPE_ISCSI;
            ck_assert_msg(keel_sd_create_block(&setup.dev, 1, &c, &sd, &err) == 0, "%s",
                          err.msg);
        } else {
            ck_assert_msg(keel_lab_nfs_start(&l.nfs, &err) == 0, "%s", err.msg);
            l.url = keel_lab_nfs_url(l.nfs);
            ck_assert_msg(keel_fs_open(l.url, NULL, &setup.fs, &err) == 0, "%s", err.msg);
            c.type = KEEL_SD_TYPE_NFS;
            ck_assert_msg(keel_sd_create_file(setup.fs, &c, &sd, &err) == 0, "%s", err.msg);
        }
        ck_assert_msg(keel_vol_create(sd, &vc, NULL, &err) == 0, "%s", err.msg);
        setup.sd = sd;
        tmp.lease = setup;
        areas(&l, &tmp);
        ck_assert_msg(keel_sanlock_write_lockspace(tmp.ids.dev, tmp.ids.offset, SD, 1, 512, MiB,
                                                   &err) == 0, "%s", err.msg);
        memset(&tmp.lease, 0, sizeof(tmp.lease));
        host_close(&tmp);
        conn_close(&setup);
    }

    /* Three hosts join. */
    {
        struct join j[3];

        for (int i = 0; i < 3; i++) {
            conn_open(&l, &h[i].lease);
            conn_open(&l, &h[i].md);
            areas(&l, &h[i]);
        }
        pthread_t jt[3];

        for (int i = 0; i < 3; i++) {
            j[i] = (struct join){ .l = &l, .h = &h[i], .id = i + 1 };
            ck_assert_int_eq(pthread_create(&jt[i], NULL, join_thread, &j[i]), 0);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(jt[i], NULL);
            ck_assert_msg(j[i].rc == 0, "host %d: %s", i + 1, j[i].err.msg);
        }
    }

    /* Host 1 is SPM: its metadata connection writes under SDM. */
    ck_assert_msg(keel_lease_acquire(h[0].d, h[0].leases.dev, h[0].leases.offset + MiB, SD, "SDM",
                                     &spm, &err) == 0, "%s", err.msg);
    set_fence(&h[0].md, keel_lease_fence(spm));

    /* Host 2 takes the target's volume lease and writes under it. */
    ck_assert_msg(keel_vol_lease_open(h[1].lease.sd, VOL, &p2, &err) == 0, "%s", err.msg);
    ck_assert_msg(keel_lease_acquire(h[1].d, p2.dev, p2.offset, SD, VOL, &vl, &err) == 0, "%s",
                  err.msg);
    set_fence(&h[1].md, keel_lease_fence(vl));

    /* The SPM creates volumes while the HSM makes the target LEGAL. */
    w.c = &h[0].md;
    w.n = 3;
    ck_assert_int_eq(pthread_create(&th, NULL, spm_creates, &w), 0);
    ck_assert_msg(keel_vol_set_legality(h[1].md.sd, VOL, KEEL_VOL_LEGAL, &err) == 0, "%s",
                  err.msg);
    pthread_join(th, NULL);
    ck_assert_msg(w.rc == 0, "SPM: %s", w.err.msg);

    /* Nobody else takes the volume lease while host 2 holds it. */
    ck_assert_msg(keel_vol_lease_open(h[2].lease.sd, VOL, &p3, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(keel_lease_acquire(h[2].d, p3.dev, p3.offset, SD, VOL, &other, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    ck_assert_msg(strstr(err.msg, "host 2") != NULL, "%s", err.msg);
    ck_assert_int_eq(keel_lease_acquire(h[0].d, p3.dev, p3.offset, SD, VOL, &other, &err), -1);
    ck_assert_int_eq(err.code, KEEL_E_BUSY);
    spec = lease_spec(&l, &p2);
    owner = sanlock_judge_read_leader("-r", spec, "owner_id");
    ck_assert_str_eq(owner, "2");
    free(owner);

    /* What the others read: LEGAL, and the SPM's volumes. */
    {
        struct keel_vol_list vols;

        ck_assert_msg(keel_vol_info(h[2].md.sd, VOL, &e, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(e.md.legality, KEEL_VOL_LEGAL);
        ck_assert_msg(keel_vol_list(h[2].md.sd, &vols, &err) == 0, "%s", err.msg);
        ck_assert_uint_eq(vols.n, 4);
        keel_vol_list_release(&vols);
    }

    /* Released: host 2's writes are fenced, and host 3 takes the lease. */
    set_fence(&h[1].md, NULL);
    ck_assert_msg(keel_lease_release(vl, &err) == 0, "%s", err.msg);
    {
        struct keel_fence *f = NULL;

        /* A connection left with a shut fence: what a holder that lost its lease has. */
        ck_assert_msg(keel_lease_acquire(h[1].d, p2.dev, p2.offset, SD, VOL, &vl, &err) == 0,
                      "%s", err.msg);
        f = keel_lease_fence(vl);
        set_fence(&h[1].md, f);
        keel_delta_remove_fence(h[1].d, f); /* shut, as at a lease's end */
        ck_assert_int_eq(keel_vol_set_legality(h[1].md.sd, VOL, KEEL_VOL_ILLEGAL, &err), -1);
        ck_assert_int_eq(err.code, KEEL_E_FENCED);
        set_fence(&h[1].md, NULL);
        ck_assert_msg(keel_lease_release(vl, &err) == 0, "%s", err.msg);
    }
    ck_assert_msg(keel_vol_info(h[2].md.sd, VOL, &e, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(e.md.legality, KEEL_VOL_LEGAL);
    ck_assert_msg(keel_lease_acquire(h[2].d, p3.dev, p3.offset, SD, VOL, &other, &err) == 0,
                  "%s", err.msg);
    owner = sanlock_judge_read_leader("-r", spec, "owner_id");
    ck_assert_str_eq(owner, "3");
    free(owner);
    fprintf(stderr, "test_vol_lease: %s: HSM set LEGAL under its volume lease while the SPM "
                    "created 3 volumes; hosts 1 and 3 refused; host 3 took it after release "
                    "(lver %llu)\n", block ? "block" : "nfs",
            (unsigned long long)keel_lease_lver(other));
    free(spec);

    ck_assert_int_eq(keel_lease_release(other, &err), 0);
    set_fence(&h[0].md, NULL);
    ck_assert_int_eq(keel_lease_release(spm, &err), 0);
    keel_vol_payload_close(&p2);
    keel_vol_payload_close(&p3);
    for (int i = 0; i < 3; i++)
        host_close(&h[i]);
    if (l.tgtd)
        keel_lab_tgtd_stop(l.tgtd);
    if (l.nfs)
        keel_lab_nfs_stop(l.nfs);
}

START_TEST(block_domain)
{
    volume_lease(true);
}
END_TEST

START_TEST(nfs_domain)
{
    volume_lease(false);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vol_lease");
    TCase *tc = tcase_create("vol_lease");
    SRunner *sr;
    int failed;

    keel_lab_require("tgtd");
    keel_lab_require("ganesha.nfsd");
    keel_lab_require("sanlock");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, block_domain);
    tcase_add_test(tc, nfs_domain);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Unit tests of io/url.c: the storage URL grammar, redaction, path checks. */
#include <check.h>
#include <string.h>

#include "io/url.h"

static struct keel_url parse_ok(const char *s)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u;

    ck_assert_msg(keel_url_parse(s, &u, &err) == 0, "%s: %s", s, err.msg);
    return u;
}

static void parse_fails(const char *s, const char *expect_msg)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u;

    ck_assert_msg(keel_url_parse(s, &u, &err) == -1, "%s parsed", s);
    ck_assert_int_eq(err.code, KEEL_E_URL);
    ck_assert_str_eq(err.msg, expect_msg);
}

START_TEST(iscsi_full)
{
    struct keel_url u = parse_ok("iscsi://alice%s3cret@127.0.0.1:3261/iqn.2026-11.org.keel:t1/3");

    ck_assert_int_eq(u.scheme, KEEL_URL_ISCSI);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_uint_eq(u.port, 3261);
    ck_assert_str_eq(u.user, "alice");
    ck_assert_str_eq(u.secret, "s3cret");
    ck_assert_str_eq(u.iqn, "iqn.2026-11.org.keel:t1");
    ck_assert_int_eq(u.lun, 3);
}
END_TEST

START_TEST(iscsi_defaults)
{
    struct keel_url u = parse_ok("iscsi://storage.example/iqn.x/0");
    char buf[64];

    ck_assert_uint_eq(u.port, 0);
    ck_assert_str_eq(u.user, "");
    ck_assert_str_eq(keel_url_portal(&u, buf, sizeof(buf)), "storage.example:3260");
    u = parse_ok("iscsi://[::1]:3262/iqn.x/1");
    ck_assert_str_eq(u.host, "[::1]");
    ck_assert_uint_eq(u.port, 3262);
}
END_TEST

START_TEST(iscsi_bad)
{
    parse_fails("iscsi://127.0.0.1:3261/iqn.x", "iscsi://127.0.0.1:3261/iqn.x: missing LUN number");
    parse_fails("iscsi://127.0.0.1:3261/iqn.x/", "iscsi://127.0.0.1:3261/iqn.x/: missing LUN number");
    parse_fails("iscsi://127.0.0.1:3261/", "iscsi://127.0.0.1:3261/: missing target IQN");
    parse_fails("iscsi://127.0.0.1:3261", "iscsi://127.0.0.1:3261: missing target IQN and LUN");
    parse_fails("iscsi://127.0.0.1:99999/iqn.x/1", "iscsi://127.0.0.1:99999/iqn.x/1: bad port number");
    parse_fails("iscsi://127.0.0.1:abc/iqn.x/1", "iscsi://127.0.0.1:abc/iqn.x/1: bad port number");
    parse_fails("iscsi://127.0.0.1:0/iqn.x/1", "iscsi://127.0.0.1:0/iqn.x/1: bad port number");
    parse_fails("iscsi://127.0.0.1/iqn.x/one", "iscsi://127.0.0.1/iqn.x/one: LUN is not a number");
    parse_fails("iscsi://127.0.0.1/iqn.x/16384",
                "iscsi://127.0.0.1/iqn.x/16384: LUN number out of range (0-16383)");
    parse_fails("iscsi:///iqn.x/1", "iscsi:///iqn.x/1: missing host");
    parse_fails("iscsi://h/iq n/1", "iscsi://h/iq n/1: URL contains spaces or control characters");
    parse_fails("iscsi://h/iqn$x/1", "iscsi://h/iqn$x/1: bad character in target IQN");
}
END_TEST

START_TEST(secret_never_printed)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u = parse_ok("iscsi://bob%hunter2@10.0.0.1/iqn.x/1");
    char buf[KEEL_URL_MAX];

    ck_assert_str_eq(keel_url_format(&u, true, buf, sizeof(buf)),
                     "iscsi://bob%***@10.0.0.1/iqn.x/1");
    ck_assert_str_eq(keel_url_format(&u, false, buf, sizeof(buf)),
                     "iscsi://bob%hunter2@10.0.0.1/iqn.x/1");
    /* A bad URL carrying a secret is redacted in the error. */
    ck_assert_int_eq(keel_url_parse("iscsi://bob%hunter2@10.0.0.1/iqn.x", &u, &err), -1);
    ck_assert_ptr_null(strstr(err.msg, "hunter2"));
    ck_assert_str_eq(err.msg, "iscsi://bob%***@10.0.0.1/iqn.x: missing LUN number");
    ck_assert_int_eq(keel_url_parse("iscsi://bob%hunter2@10.0.0.1:x/iqn.x/1", &u, &err), -1);
    ck_assert_ptr_null(strstr(err.msg, "hunter2"));
    /* A secret containing '@' is cut at the last '@' of the authority. */
    u = parse_ok("iscsi://bob%a@b@10.0.0.1/iqn.x/1");
    ck_assert_str_eq(u.secret, "a@b");
    ck_assert_str_eq(keel_url_redact_str("iscsi://bob%a@b@h/i/1", buf, sizeof(buf)),
                     "iscsi://bob%***@h/i/1");
    parse_fails("iscsi://bob@h/iqn.x/1", "iscsi://bob@h/iqn.x/1: CHAP user without a secret");
}
END_TEST

START_TEST(portal_urls)
{
    struct keel_error err = KEEL_ERROR_INIT;
    struct keel_url u;
    char buf[KEEL_URL_MAX];

    ck_assert_msg(keel_url_parse_portal("iscsi://127.0.0.1:3261", &u, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(u.lun, -1);
    ck_assert_str_eq(u.iqn, "");
    ck_assert_str_eq(keel_url_format(&u, true, buf, sizeof(buf)), "iscsi://127.0.0.1:3261");
    ck_assert_msg(keel_url_parse_portal("iscsi://u%p@127.0.0.1/iqn.x", &u, &err) == 0, "%s",
                  err.msg);
    ck_assert_str_eq(u.iqn, "iqn.x");
    ck_assert_str_eq(keel_url_format(&u, true, buf, sizeof(buf)), "iscsi://u%***@127.0.0.1/iqn.x");
    ck_assert_msg(keel_url_parse_portal("iscsi://127.0.0.1/iqn.x/2", &u, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(u.lun, 2);
    ck_assert_int_eq(keel_url_parse_portal("nfs://127.0.0.1/x", &u, &err), -1);
    ck_assert_str_eq(err.msg, "nfs://127.0.0.1/x: not an iSCSI portal (iscsi://host[:port])");
}
END_TEST

START_TEST(nfs_urls)
{
    struct keel_url u = parse_ok("nfs://127.0.0.1/srv/export/sub/");
    char buf[KEEL_URL_MAX];

    ck_assert_int_eq(u.scheme, KEEL_URL_NFS);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_str_eq(u.path, "/srv/export/sub");
    u = parse_ok("nfs://127.0.0.1/srv/export?nfsport=20049&mountport=20050");
    ck_assert_uint_eq(u.nfsport, 20049);
    ck_assert_uint_eq(u.mountport, 20050);
    ck_assert_str_eq(keel_url_format(&u, true, buf, sizeof(buf)),
                     "nfs://127.0.0.1/srv/export?nfsport=20049&mountport=20050");
    /* oVirt's REMOTE_PATH names the export without the ports. */
    ck_assert_str_eq(keel_url_remote_path(&u, buf, sizeof(buf)), "127.0.0.1:/srv/export");
    parse_fails("nfs://127.0.0.1/srv/../etc", "nfs://127.0.0.1/srv/../etc: '.' and '..' are not "
                                              "allowed in paths");
    parse_fails("nfs://127.0.0.1/srv/./x", "nfs://127.0.0.1/srv/./x: '.' and '..' are not "
                                           "allowed in paths");
    parse_fails("nfs://127.0.0.1/..", "nfs://127.0.0.1/..: '.' and '..' are not allowed in paths");
    parse_fails("nfs://127.0.0.1/srv//x", "nfs://127.0.0.1/srv//x: empty path component");
    parse_fails("nfs://127.0.0.1/srv/%2e%2e/x", "nfs://127.0.0.1/srv/%2e%2e/x: bad character in "
                                                "path");
    parse_fails("nfs://127.0.0.1", "nfs://127.0.0.1: missing export path");
    parse_fails("nfs://u@127.0.0.1/x", "nfs://u@127.0.0.1/x: user information is not allowed in "
                                       "NFS URLs");
    parse_fails("nfs://127.0.0.1/x?uid=0", "nfs://127.0.0.1/x?uid=0: unknown query argument "
                                           "(known: nfsport, mountport)");
    parse_fails("nfs://127.0.0.1/x?nfsport=", "nfs://127.0.0.1/x?nfsport=: bad port number in "
                                              "query");
}
END_TEST

START_TEST(file_urls)
{
    struct keel_url u = parse_ok("file:///var/lib/keel/lun.img");

    ck_assert_int_eq(u.scheme, KEEL_URL_FILE);
    ck_assert_str_eq(u.path, "/var/lib/keel/lun.img");
    {
        char buf[KEEL_URL_MAX];

        ck_assert_str_eq(keel_url_remote_path(&u, buf, sizeof(buf)), "/var/lib/keel/lun.img");
    }
    u = parse_ok("file://localhost/srv");
    ck_assert_str_eq(u.path, "/srv");
    parse_fails("file://host/srv", "file://host/srv: file URLs take no host (file:///path)");
    parse_fails("file:///srv/../etc/passwd", "file:///srv/../etc/passwd: '.' and '..' are not "
                                             "allowed in paths");
}
END_TEST

START_TEST(unknown_scheme)
{
    parse_fails("http://x/y", "http://x/y: unknown scheme (known: iscsi, nfs, file)");
    parse_fails("/dev/sda", "/dev/sda: not a URL (expected scheme://...)");
    {
        struct keel_error err = KEEL_ERROR_INIT;
        struct keel_url u;

        ck_assert_int_eq(keel_url_parse("", &u, &err), -1);
        ck_assert_str_eq(err.msg, "empty storage URL");
    }
}
END_TEST

START_TEST(relative_paths)
{
    struct keel_error err = KEEL_ERROR_INIT;

    ck_assert_int_eq(keel_path_check("dom_md/metadata", &err), 0);
    ck_assert_int_eq(keel_path_check("a", &err), 0);
    ck_assert_int_eq(keel_path_check("../x", &err), -1);
    ck_assert_str_eq(err.msg, "path '../x': '.' and '..' are not allowed");
    ck_assert_int_eq(keel_path_check("a/../../x", &err), -1);
    ck_assert_int_eq(keel_path_check("/etc", &err), -1);
    ck_assert_str_eq(err.msg, "path '/etc': must be relative");
    ck_assert_int_eq(keel_path_check("a//b", &err), -1);
    ck_assert_str_eq(err.msg, "path 'a//b': empty component");
    ck_assert_int_eq(keel_path_check("a/", &err), -1);
    ck_assert_int_eq(keel_path_check("", &err), -1);
    ck_assert_str_eq(err.msg, "empty path");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("url");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, iscsi_full);
    tcase_add_test(tc, iscsi_defaults);
    tcase_add_test(tc, iscsi_bad);
    tcase_add_test(tc, secret_never_printed);
    tcase_add_test(tc, portal_urls);
    tcase_add_test(tc, nfs_urls);
    tcase_add_test(tc, file_urls);
    tcase_add_test(tc, unknown_scheme);
    tcase_add_test(tc, relative_paths);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/*
 * A throw-away PKI for functional tests of keeld's TLS (hsm/tls.h).
 *
 * keel_lab_certs_make() runs the `openssl` command-line tool (call
 * keel_lab_require("openssl") in main()) to write, into an existing
 * directory the caller owns (usually from keel_lab_tmpdir()):
 *
 *   ca.pem, ca.key                 the test CA (CN=keel-test-ca)
 *   server.pem, server.key         keeld's certificate, signed by the CA:
 *                                  CN=keeld, subjectAltName IP:127.0.0.1
 *                                  and DNS:localhost, serverAuth
 *   client.pem, client.key         the engine's certificate, signed by the
 *                                  CA: CN=keel-engine, clientAuth
 *   other-ca.pem, other-ca.key     a second CA that has nothing to do with
 *                                  the first (CN=keel-other-ca)
 *   other-client.pem, other-client.key
 *                                  a client certificate signed by the other
 *                                  CA (CN=keel-engine too, so only the
 *                                  chain tells it apart)
 *   openssl.cnf                    the extensions used; the machine's own
 *                                  openssl.cnf plays no part
 *
 * Keys are EC P-256 (fast to make), unencrypted; certificates are valid
 * from now for KEEL_LAB_CERTS_DAYS days.  Removing the directory removes
 * everything.  Each call makes new keys: two calls give unrelated PKIs.
 */
#ifndef KEEL_TESTS_HARNESS_CERTS_H
#define KEEL_TESTS_HARNESS_CERTS_H

#include "common/error.h"

#define KEEL_LAB_CERTS_DAYS 3
/* Room for one path; keel_lab_certs_make() refuses a dir too long for it. */
#define KEEL_LAB_CERTS_PATH 512

/* Absolute or dir-relative paths, as dir was given. */
struct keel_lab_certs {
    char ca[KEEL_LAB_CERTS_PATH];
    char ca_key[KEEL_LAB_CERTS_PATH];
    char server_cert[KEEL_LAB_CERTS_PATH];
    char server_key[KEEL_LAB_CERTS_PATH];
    char client_cert[KEEL_LAB_CERTS_PATH];
    char client_key[KEEL_LAB_CERTS_PATH];
    char other_ca[KEEL_LAB_CERTS_PATH];
    char other_ca_key[KEEL_LAB_CERTS_PATH];
    char other_client_cert[KEEL_LAB_CERTS_PATH];
    char other_client_key[KEEL_LAB_CERTS_PATH];
};

/*
 * Make the files above in dir (which must exist) and fill *ret with their
 * paths.  On failure err has the openssl command, its status and stderr;
 * *ret is untouched and dir may hold some of the files.
 */
int keel_lab_certs_make(const char *dir, struct keel_lab_certs *ret, struct keel_error *err);

#endif /* KEEL_TESTS_HARNESS_CERTS_H */

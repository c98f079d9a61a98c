/*
 * The test PKI; see certs.h.
 *
 * Every certificate is made by one `openssl req -x509` (OpenSSL 3.0 signs
 * with -CA/-CAkey there, so no CSR or serial file is needed), with the
 * extensions of our own openssl.cnf rather than the distribution's, whose
 * defaults differ between versions.
 */
#include <stdio.h>
#include <string.h>

#include "common/strutil.h"
#include "tests/harness/certs.h"
#include "tests/harness/lab-priv.h"
#include "tests/harness/lab.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * keyUsage and extendedKeyUsage as a real deployment would have them, so
 * that the tests meet OpenSSL's purpose checks (a server certificate used
 * as a client one is refused).
 */
static const char openssl_cnf[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "[ca_ext]\n"
    "basicConstraints = critical, CA:TRUE\n"
    "keyUsage = critical, keyCertSign, cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[server_ext]\n"
    "basicConstraints = critical, CA:FALSE\n"
    "keyUsage = critical, digitalSignature\n"
    "extendedKeyUsage = serverAuth\n"
    "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n"
    "[client_ext]\n"
    "basicConstraints = critical, CA:FALSE\n"
    "keyUsage = critical, digitalSignature\n"
    "extendedKeyUsage = clientAuth\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid\n";

static int path_set(char *dst, const char *dir, const char *name, struct keel_error *err)
{
    int n = snprintf(dst, KEEL_LAB_CERTS_PATH, "%s/%s", dir, name);

    if (n < 0 || n >= KEEL_LAB_CERTS_PATH)
        return keel_error_set(err, KEEL_E_INVAL, 0, "test certificates in %s: path too long",
                              dir);
    return 0;
}

/*
 * A key in key_out and a certificate for subject in cert_out with the
 * extensions of section ext: self-signed when ca_cert is NULL, else signed
 * by ca_cert/ca_key.
 */
static int make_cert(const char *cnf, const char *subject, const char *ext, const char *ca_cert,
                     const char *ca_key, const char *cert_out, const char *key_out,
                     struct keel_error *err)
{
    const char *argv[] = {
        "openssl", "req", "-config", cnf, "-x509",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
        "-keyout", key_out, "-out", cert_out,
        "-subj", subject, "-days", STR(KEEL_LAB_CERTS_DAYS), "-sha256",
        "-extensions", ext,
        /* Without a CA the list ends here and the certificate is self-signed. */
        ca_cert != NULL ? "-CA" : NULL, ca_cert, "-CAkey", ca_key,
        NULL,
    };

    if (keel_lab_run_ok(argv, NULL, NULL, err) == -1)
        return keel_error_prefix(err, "test certificate %s", subject);
    return 0;
}

int keel_lab_certs_make(const char *dir, struct keel_lab_certs *ret, struct keel_error *err)
{
    struct keel_lab_certs c;
    char cnf[KEEL_LAB_CERTS_PATH];

    if (path_set(cnf, dir, "openssl.cnf", err) == -1
        || path_set(c.ca, dir, "ca.pem", err) == -1
        || path_set(c.ca_key, dir, "ca.key", err) == -1
        || path_set(c.server_cert, dir, "server.pem", err) == -1
        || path_set(c.server_key, dir, "server.key", err) == -1
        || path_set(c.client_cert, dir, "client.pem", err) == -1
        || path_set(c.client_key, dir, "client.key", err) == -1
        || path_set(c.other_ca, dir, "other-ca.pem", err) == -1
        || path_set(c.other_ca_key, dir, "other-ca.key", err) == -1
        || path_set(c.other_client_cert, dir, "other-client.pem", err) == -1
        || path_set(c.other_client_key, dir, "other-client.key", err) == -1)
        return -1;

    if (keel_lab_write_file(cnf, openssl_cnf, err) == -1)
        return -1;
    if (make_cert(cnf, "/CN=keel-test-ca", "ca_ext", NULL, NULL, c.ca, c.ca_key, err) == -1
        || make_cert(cnf, "/CN=keeld", "server_ext", c.ca, c.ca_key, c.server_cert,
                     c.server_key, err) == -1
        || make_cert(cnf, "/CN=keel-engine", "client_ext", c.ca, c.ca_key, c.client_cert,
                     c.client_key, err) == -1
        || make_cert(cnf, "/CN=keel-other-ca", "ca_ext", NULL, NULL, c.other_ca,
                     c.other_ca_key, err) == -1
        || make_cert(cnf, "/CN=keel-engine", "client_ext", c.other_ca, c.other_ca_key,
                     c.other_client_cert, c.other_client_key, err) == -1)
        return -1;
    *ret = c;
    return 0;
}

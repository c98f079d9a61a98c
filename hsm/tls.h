/*
 * struct keel_stream: a TCP connection of keeld's API, in TLS or -- only
 * on loopback, for tests and the demo -- in clear.
 *
 * TLS (OpenSSL, TLS 1.2 or later): the server presents its certificate
 * and requires a client certificate that chains to the configured CA
 * (mutual TLS, as VDSM does with the engine's CA); a client checks the
 * server's certificate against the same CA (and, when a host name is
 * given, that the certificate names it).  A peer without a certificate or
 * with one from another CA fails the handshake with KEEL_E_AUTH -- on the
 * server at once; a refused client under TLS 1.3 may see its connect
 * succeed and learn it at its first read (KEEL_E_AUTH) or write.
 * Clear text is refused (KEEL_E_PERM) unless the peer is on loopback.
 * Name resolution in keel_stream_connect is not bounded by timeout_ms.
 *
 * Threads: one thread may read while others write; reads and writes are
 * serialised inside (OpenSSL's SSL object is not thread-safe), and a read
 * never holds the lock while it waits for data, so writers are not held
 * up by an idle peer.
 */
#ifndef KEEL_HSM_TLS_H
#define KEEL_HSM_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

struct keel_tls_config {
    const char *cert;   /* PEM: this side's certificate (chain) */
    const char *key;    /* PEM: its private key */
    const char *ca;     /* PEM: the CA that peers' certificates must chain to */
};

struct keel_tls_ctx;

/*
 * A server context: cert, key and ca are required; the key must match the
 * certificate.  Errors name the file and OpenSSL's reason.
 */
int keel_tls_server_new(const struct keel_tls_config *c, struct keel_tls_ctx **ret,
                        struct keel_error *err);
/* A client context: ca required; cert and key optional (both or neither). */
int keel_tls_client_new(const struct keel_tls_config *c, struct keel_tls_ctx **ret,
                        struct keel_error *err);
void keel_tls_ctx_free(struct keel_tls_ctx *ctx);

struct keel_stream;

/*
 * Take over a connected socket fd (closed on failure too) and run the
 * server side of the handshake, within timeout_ms.  ctx NULL: clear text,
 * no handshake.  The fd is made non-blocking.
 */
int keel_stream_accept(struct keel_tls_ctx *ctx, int fd, int timeout_ms,
                       struct keel_stream **ret, struct keel_error *err);

/*
 * Connect to host:port (numeric IPv4/IPv6 or a name) within timeout_ms and
 * run the client side of the handshake.  ctx NULL: clear text.
 * verify_name: the name the server's certificate must carry (SAN or CN);
 * NULL checks only the chain.
 */
int keel_stream_connect(struct keel_tls_ctx *ctx, const char *host, unsigned port,
                        const char *verify_name, int timeout_ms, struct keel_stream **ret,
                        struct keel_error *err);

/*
 * Read up to n bytes, waiting at most timeout_ms (-1: no limit) for the
 * first.  Returns the count, 0 at end of stream, -1 on error
 * (KEEL_E_TIMEOUT when nothing came in time, KEEL_E_CLOSED after
 * keel_stream_shutdown()).
 */
ssize_t keel_stream_read(struct keel_stream *s, void *buf, size_t n, int timeout_ms,
                         struct keel_error *err);

/* Write all n bytes within timeout_ms (-1: no limit). */
int keel_stream_write(struct keel_stream *s, const void *buf, size_t n, int timeout_ms,
                      struct keel_error *err);

/*
 * Wake a reader blocked in keel_stream_read (it returns KEEL_E_CLOSED) and
 * refuse further I/O; safe from any thread.  The stream stays allocated.
 */
void keel_stream_shutdown(struct keel_stream *s);

/* Close and free (after every thread is done with s).  NULL is accepted. */
void keel_stream_close(struct keel_stream *s);

/*
 * The peer: "CN=<common name>" of its verified certificate (the client's on
 * the server side, the server's on the client side), or
 * "insecure" in clear text.  Borrowed from s.
 */
const char *keel_stream_peer(const struct keel_stream *s);
/* "127.0.0.1:40312": the peer's address.  Borrowed from s. */
const char *keel_stream_addr(const struct keel_stream *s);

#endif /* KEEL_HSM_TLS_H */

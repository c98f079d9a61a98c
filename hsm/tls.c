/*
 * TLS (and loopback clear text) streams of keeld's API; see tls.h.
 *
 * Locking.  s->lock protects the SSL object (and the socket BIO under it):
 * OpenSSL does not allow two threads in one SSL at a time.  Every socket is
 * non-blocking, so an SSL call under the lock never sleeps; the waiting is
 * done by poll().  A read waits *without* the lock: it tries SSL_read(),
 * and on WANT_READ drops the lock and polls.  Trying before polling is what
 * keeps records that OpenSSL has already decrypted (SSL_pending()) from
 * being missed.  A write keeps the lock from its first byte to its last:
 * SSL_write() must be retried with the same buffer after WANT_*, and an
 * SSL_read() in between may have to write (an alert, a KeyUpdate) and would
 * then trip over the half-written record ("bad write retry").  So a write
 * that waits for a slow peer to drain holds reads off until it completes or
 * times out; a read never holds writes off.
 *
 * Renegotiation is disabled, so once the handshake is done SSL_write() never
 * needs to read and SSL_read() never eats the bytes a writer waits for: a
 * reader polling the socket cannot miss data that a writer consumed.
 *
 * Shutdown.  keel_stream_shutdown() sets s->shut and makes s->wake_fd (an
 * eventfd that is never drained) readable for good; every poll() of the
 * stream includes it, so a reader or writer waiting on the peer returns
 * KEEL_E_CLOSED at once, and every later call too.
 *
 * SIGPIPE.  OpenSSL's socket BIO writes with write(2), which raises SIGPIPE
 * when the peer has gone.  Each SSL here sits on a small BIO of our own
 * that uses send(MSG_NOSIGNAL) instead, so the library is safe whatever the
 * program does with SIGPIPE (keeld ignores it anyway).
 *
 * Clear text (ctx NULL) is refused unless the peer is on loopback
 * (KEEL_E_PERM), as tls.h promises: a misconfigured keeld must not serve
 * its API unauthenticated on the network.
 *
 * Errors.  Handshake failures (bad or missing certificate, another CA, a
 * peer that does not speak TLS) are KEEL_E_AUTH; so is an alert about
 * certificates received later, which is how a TLS 1.3 client learns that
 * the server refused its certificate (the client's handshake ends before
 * the server has checked it).  Socket errors are KEEL_E_IO.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/cleanup.h"
#include "common/monotime.h"
#include "common/strutil.h"
#include "hsm/tls.h"

/* "CN=" and a common name; longer names are cut (X.520 allows 64 chars). */
#define PEER_MAX 256
/* "[ffff:...]:65535" */
#define ADDR_MAX (INET6_ADDRSTRLEN + 8)

struct keel_tls_ctx {
    SSL_CTX *ssl_ctx;
    bool server;
};

struct keel_stream {
    pthread_mutex_t lock;       /* protects ssl, eof, fatal */
    int fd;
    int wake_fd;                /* eventfd: readable once shut */
    atomic_bool shut;
    SSL *ssl;                   /* NULL in clear text */
    BIO_METHOD *bio_method;     /* of ssl's BIO; per stream, see bio_method_new() */
    bool eof;                   /* the socket BIO read end of file */
    bool fatal;                 /* OpenSSL failed: no close_notify at close */
    char addr[ADDR_MAX];
    char peer[PEER_MAX];
};

/* ------------------------------------------------------------------ */
/* OpenSSL errors */

/*
 * The oldest error in this thread's OpenSSL queue, which names the cause
 * (later entries say which caller gave up), as text in buf; the queue is
 * emptied.  Returns the packed error code (0 when the queue was empty).
 */
static unsigned long ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    const char *r;

    ERR_clear_error();
    if (e == 0) {
        keel_strlcpy(buf, "unknown openssl error", n);
        return 0;
    }
    /* ERR_reason_error_string() gives nothing for errors of the system library. */
    if (ERR_SYSTEM_ERROR(e)) {
        char tmp[128];

        keel_strlcpy(buf, strerror_r(ERR_GET_REASON(e), tmp, sizeof(tmp)), n);
        return e;
    }
    r = ERR_reason_error_string(e);
    if (r != NULL)
        keel_strlcpy(buf, r, n);
    else
        ERR_error_string_n(e, buf, n);
    return e;
}

/* An alert from the peer saying that it did not accept our certificate. */
static bool is_auth_alert(unsigned long e)
{
    if (ERR_SYSTEM_ERROR(e) || ERR_GET_LIB(e) != ERR_LIB_SSL)
        return false;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ */
/* Contexts */

static int ctx_fail(struct keel_error *err, const char *what, const char *path)
{
    char reason[256];

    ssl_reason(reason, sizeof(reason));
    return keel_error_set(err, KEEL_E_INVAL, 0, "tls %s %s: %s", what, path, reason);
}

static bool is_key_mismatch(unsigned long e)
{
    return !ERR_SYSTEM_ERROR(e) && ERR_GET_LIB(e) == ERR_LIB_X509
           && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH
               || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

static int ctx_load_key(SSL_CTX *sc, const struct keel_tls_config *c, struct keel_error *err)
{
    char reason[256];
    unsigned long e;

    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey_file(sc, c->key, SSL_FILETYPE_PEM) != 1) {
        e = ssl_reason(reason, sizeof(reason));
        if (is_key_mismatch(e))
            return keel_error_set(err, KEEL_E_INVAL, 0,
                                  "tls key %s: does not match certificate %s: %s", c->key,
                                  c->cert, reason);
        return keel_error_set(err, KEEL_E_INVAL, 0, "tls key %s: %s", c->key, reason);
    }
    /* A key of another type than the certificate's is loaded without complaint. */
    if (SSL_CTX_check_private_key(sc) != 1) {
        ssl_reason(reason, sizeof(reason));
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "tls key %s: does not match certificate %s: %s", c->key, c->cert,
                              reason);
    }
    return 0;
}

static int ctx_new(const struct keel_tls_config *c, bool server, struct keel_tls_ctx **ret,
                   struct keel_error *err)
{
    struct keel_tls_ctx *ctx;
    SSL_CTX *sc;

    ERR_clear_error();
    sc = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (sc == NULL) {
        char reason[256];

        ssl_reason(reason, sizeof(reason));
        return keel_error_set(err, KEEL_E_NOMEM, 0, "tls context: %s", reason);
    }
    if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1) {
        ctx_fail(err, "context", "minimum version");
        goto fail;
    }
    /*
     * No renegotiation: see the top of the file.  A peer that disappears
     * without close_notify is end of stream: the RPC layer's framing
     * detects a cut message, and a killed peer is a normal event for us.
     */
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);

    if (c->cert != NULL) {
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(sc, c->cert) != 1) {
            ctx_fail(err, "certificate", c->cert);
            goto fail;
        }
        if (ctx_load_key(sc, c, err) == -1)
            goto fail;
    }

    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(sc, c->ca, NULL) != 1) {
        ctx_fail(err, "ca", c->ca);
        goto fail;
    }

    if (server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca);

        /* Tells clients which CA we want, so one with several certificates can pick. */
        if (names == NULL) {
            ctx_fail(err, "ca", c->ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(sc, names);
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /*
         * No resumption: every connection proves its certificate again
         * against the CA as it is now.  Without tickets the server also
         * writes nothing after its handshake, which a client that closes
         * at once would otherwise turn into a reset.
         */
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        if (SSL_CTX_set_num_tickets(sc, 0) != 1) {
            ctx_fail(err, "context", "tickets");
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    }

    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tls context: out of memory");
        goto fail;
    }
    ctx->ssl_ctx = sc;
    ctx->server = server;
    *ret = ctx;
    return 0;

fail:
    SSL_CTX_free(sc);
    ERR_clear_error();
    return -1;
}

int keel_tls_server_new(const struct keel_tls_config *c, struct keel_tls_ctx **ret,
                        struct keel_error *err)
{
    if (c == NULL || c->cert == NULL || c->key == NULL || c->ca == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "tls server: certificate, key and ca are all required");
    return ctx_new(c, true, ret, err);
}

int keel_tls_client_new(const struct keel_tls_config *c, struct keel_tls_ctx **ret,
                        struct keel_error *err)
{
    if (c == NULL || c->ca == NULL)
        return keel_error_set(err, KEEL_E_INVAL, 0, "tls client: ca is required");
    if ((c->cert == NULL) != (c->key == NULL))
        return keel_error_set(err, KEEL_E_INVAL, 0,
                              "tls client: certificate and key go together (got only the %s)",
                              c->cert != NULL ? "certificate" : "key");
    return ctx_new(c, false, ret, err);
}

void keel_tls_ctx_free(struct keel_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    /* Streams hold their own reference to the SSL_CTX: they may outlive ctx. */
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ------------------------------------------------------------------ */
/* The socket BIO: OpenSSL's, but with send(MSG_NOSIGNAL) */

static int sock_bio_write(BIO *b, const char *buf, int len)
{
    struct keel_stream *s = BIO_get_data(b);
    ssize_t r;

    BIO_clear_retry_flags(b);
    do
        r = send(s->fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (r == -1 && errno == EINTR);
    if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)r;
}

static int sock_bio_read(BIO *b, char *buf, int len)
{
    struct keel_stream *s = BIO_get_data(b);
    ssize_t r;

    BIO_clear_retry_flags(b);
    do
        r = recv(s->fd, buf, (size_t)len, 0);
    while (r == -1 && errno == EINTR);
    if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    if (r == 0 && len > 0)
        s->eof = true;
    return (int)r;
}

static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct keel_stream *s = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        /* OpenSSL tells a peer's end of file from an error by asking this. */
        return s != NULL && s->eof;
    default:
        return 0;
    }
}

static int sock_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/*
 * A method table per stream: a shared one would be global state, or tie
 * streams to their keel_tls_ctx's lifetime.  (BIO_get_new_index() is not
 * used: it hands out one of about 128 numbers per process, never reused.)
 */
static BIO_METHOD *bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "keel socket");

    if (m == NULL)
        return NULL;
    if (BIO_meth_set_write(m, sock_bio_write) != 1 || BIO_meth_set_read(m, sock_bio_read) != 1
        || BIO_meth_set_ctrl(m, sock_bio_ctrl) != 1
        || BIO_meth_set_create(m, sock_bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------------ */
/* Waiting */

/* The deadline of a timeout (0: none). */
static uint64_t deadline_of(int timeout_ms)
{
    if (timeout_ms < 0)
        return 0;
    return keel_now_ns() + (uint64_t)timeout_ms * KEEL_NS_PER_MS;
}

/*
 * Wait until fd has events (or an error: the next I/O call reports it),
 * wake_fd (when >= 0) is readable (KEEL_E_CLOSED), or deadline has passed
 * (KEEL_E_TIMEOUT; timeout_ms is only for the message).
 */
static int wait_fd(int fd, int wake_fd, short events, uint64_t deadline, int timeout_ms,
                   struct keel_error *err)
{
    struct pollfd p[2] = {
        { .fd = fd, .events = events },
        { .fd = wake_fd, .events = POLLIN },
    };

    for (;;) {
        int ms = -1;
        int r;

        if (deadline != 0) {
            uint64_t now = keel_now_ns();
            uint64_t left = now < deadline ? deadline - now : 0;

            /* Round up: a poll that wakes just before the deadline would spin. */
            ms = (int)KEEL_MIN((left + KEEL_NS_PER_MS - 1) / KEEL_NS_PER_MS, (uint64_t)INT_MAX);
        }
        r = poll(p, wake_fd >= 0 ? 2 : 1, ms);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            return keel_error_errno(err, KEEL_E_IO, errno, "poll");
        }
        if (wake_fd >= 0 && p[1].revents != 0)
            return keel_error_set(err, KEEL_E_CLOSED, 0, "stream shut down");
        if (r > 0)
            return 0;
        if (deadline != 0 && keel_now_ns() >= deadline)
            return keel_error_set(err, KEEL_E_TIMEOUT, ETIMEDOUT, "timed out after %d ms",
                                  timeout_ms);
    }
}

static int stream_wait(struct keel_stream *s, short events, uint64_t deadline, int timeout_ms,
                       struct keel_error *err)
{
    return wait_fd(s->fd, s->wake_fd, events, deadline, timeout_ms, err);
}

/* ------------------------------------------------------------------ */
/* Streams */

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return true;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static void sockaddr_format(const struct sockaddr *sa, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, n, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, n, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        keel_strlcpy(buf, "unix", n);
    } else {
        keel_strlcpy(buf, "unknown", n);
    }
}

/*
 * A stream on connected socket fd (taken over: closed on failure too), in
 * clear text until stream_tls().  clear: refuse peers beyond loopback.
 */
static struct keel_stream *stream_new(int fd, bool clear, struct keel_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct keel_stream *s;
    int flags;
    int one = 1;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1) {
        keel_error_errno(err, errno == ENOTSOCK ? KEEL_E_INVAL : KEEL_E_IO, errno,
                         "stream: peer of fd %d", fd);
        close(fd);
        return NULL;
    }
    if (clear && !sockaddr_is_loopback((struct sockaddr *)&ss)) {
        char addr[ADDR_MAX];

        sockaddr_format((struct sockaddr *)&ss, addr, sizeof(addr));
        keel_error_set(err, KEEL_E_PERM, 0, "stream with %s: clear text only on loopback", addr);
        close(fd);
        return NULL;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
        keel_error_errno(err, KEEL_E_IO, errno, "stream: make fd %d non-blocking", fd);
        close(fd);
        return NULL;
    }
    /* Requests and replies are small: Nagle would hold them for the peer's ACK. */
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "stream: out of memory");
        close(fd);
        return NULL;
    }
    s->fd = fd;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd == -1) {
        keel_error_errno(err, KEEL_E_IO, errno, "stream: eventfd");
        close(fd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->shut, false);
    sockaddr_format((struct sockaddr *)&ss, s->addr, sizeof(s->addr));
    keel_strlcpy(s->peer, "insecure", sizeof(s->peer));
    return s;
}

static int stream_tls(struct keel_stream *s, struct keel_tls_ctx *ctx, struct keel_error *err)
{
    BIO *bio;

    s->bio_method = bio_method_new();
    if (s->bio_method == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tls with %s: out of memory", s->addr);
    s->ssl = SSL_new(ctx->ssl_ctx);
    bio = BIO_new(s->bio_method);
    if (s->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        ERR_clear_error();
        return keel_error_set(err, KEEL_E_NOMEM, ENOMEM, "tls with %s: out of memory", s->addr);
    }
    BIO_set_data(bio, s);
    SSL_set_bio(s->ssl, bio, bio);  /* one reference, shared by both directions */
    return 0;
}

/*
 * Fill err after an SSL call on s failed: r is its return value, e is
 * SSL_get_error()'s and sys the errno right after the call.  what: "read
 * from", "tls handshake with"...  Returns -1.
 */
static int ssl_fail(struct keel_stream *s, int r, int e, int sys, bool handshake,
                    const char *what, struct keel_error *err)
{
    char reason[256];
    unsigned long code;
    long verify;

    s->fatal = true;
    /*
     * A socket error: SSL_get_error() says ZERO_RETURN rather than SYSCALL
     * for it once the peer's close_notify is in, so errno decides.
     */
    if ((e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) && ERR_peek_error() == 0) {
        if (r == -1 && sys != 0)
            return keel_error_errno(err, KEEL_E_IO, sys, "%s %s", what, s->addr);
        if (handshake)
            return keel_error_set(err, KEEL_E_AUTH, 0,
                                  "%s %s: peer closed the connection during the handshake",
                                  what, s->addr);
        return keel_error_set(err, KEEL_E_IO, 0, "%s %s: connection closed", what, s->addr);
    }
    if (e != SSL_ERROR_SSL && e != SSL_ERROR_SYSCALL) {
        ERR_clear_error();
        return keel_error_set(err, KEEL_E_INTERNAL, 0, "%s %s: unexpected openssl state %d",
                              what, s->addr, e);
    }
    code = ssl_reason(reason, sizeof(reason));
    verify = SSL_get_verify_result(s->ssl);
    if (verify != X509_V_OK)
        return keel_error_set(err, KEEL_E_AUTH, 0, "%s %s: certificate verify failed: %s",
                              what, s->addr, X509_verify_cert_error_string(verify));
    if (handshake || is_auth_alert(code))
        return keel_error_set(err, KEEL_E_AUTH, 0, "%s %s: %s", what, s->addr, reason);
    return keel_error_set(err, KEEL_E_IO, 0, "%s %s: %s", what, s->addr, reason);
}


/* "CN=<common name>" of the verified peer certificate into s->peer. */
static int stream_set_peer(struct keel_stream *s, struct keel_error *err)
{
    X509 *cert = SSL_get0_peer_certificate(s->ssl);
    unsigned char *cn = NULL;
    X509_NAME *name;
    int i;
    int len;

    /* The handshake has already refused these; stay safe if that ever changes. */
    if (cert == NULL || SSL_get_verify_result(s->ssl) != X509_V_OK)
        return keel_error_set(err, KEEL_E_AUTH, 0, "tls with %s: no verified peer certificate",
                              s->addr);
    name = X509_get_subject_name(cert);
    i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) {
        keel_strlcpy(s->peer, "CN=", sizeof(s->peer));
        return 0;
    }
    len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (len < 0) {
        ERR_clear_error();
        return keel_error_set(err, KEEL_E_AUTH, 0, "tls with %s: bad peer common name",
                              s->addr);
    }
    snprintf(s->peer, sizeof(s->peer), "CN=%.*s", len, (const char *)cn);
    OPENSSL_free(cn);
    /* The peer goes into logs: keep it to one line of ASCII. */
    for (char *p = s->peer; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
    }
    return 0;
}

static int stream_handshake(struct keel_stream *s, uint64_t deadline, int timeout_ms,
                            struct keel_error *err)
{
    for (;;) {
        int r;
        int e;
        int sys;

        ERR_clear_error();
        errno = 0;
        r = SSL_do_handshake(s->ssl);
        sys = errno;
        if (r == 1)
            return stream_set_peer(s, err);
        e = SSL_get_error(s->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return ssl_fail(s, r, e, sys, true, "tls handshake with", err);
        if (stream_wait(s, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, timeout_ms,
                        err) == -1) {
            s->fatal = true;
            return keel_error_prefix(err, "tls handshake with %s", s->addr);
        }
    }
}

static int stream_set_name(struct keel_stream *s, const char *verify_name,
                           struct keel_error *err);

/*
 * The stream over a connected fd (taken): clear text without ctx, else
 * TLS as the server or the client (checking verify_name when given), the
 * handshake done by the deadline.
 */
static int stream_open(int fd, struct keel_tls_ctx *ctx, bool server, const char *verify_name,
                       uint64_t deadline, int timeout_ms, struct keel_stream **ret,
                       struct keel_error *err)
{
    struct keel_stream *s = stream_new(fd, ctx == NULL, err);

    if (s == NULL)
        return -1;
    if (ctx != NULL) {
        if (stream_tls(s, ctx, err) == -1 ||
            (verify_name != NULL && stream_set_name(s, verify_name, err) == -1))
            goto fail;
        if (server)
            SSL_set_accept_state(s->ssl);
        else
            SSL_set_connect_state(s->ssl);
        if (stream_handshake(s, deadline, timeout_ms, err) == -1)
            goto fail;
    }
    *ret = s;
    return 0;

fail:
    keel_stream_close(s);
    return -1;
}

int keel_stream_accept(struct keel_tls_ctx *ctx, int fd, int timeout_ms,
                       struct keel_stream **ret, struct keel_error *err)
{
    uint64_t deadline = deadline_of(timeout_ms);

    if (fd < 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "stream: bad fd %d", fd);
    if (ctx != NULL && !ctx->server) {
        close(fd);
        return keel_error_set(err, KEEL_E_INVAL, 0, "stream: accept needs a server context");
    }
    return stream_open(fd, ctx, true, NULL, deadline, timeout_ms, ret, err);
}

/*
 * A connected non-blocking socket to one of host's addresses, or -1.  The
 * error of the last address tried is the one reported.
 */
static int connect_socket(struct keel_tls_ctx *ctx, const char *host, unsigned port,
                          uint64_t deadline, int timeout_ms, struct keel_error *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV,
    };
    struct keel_error e = KEEL_ERROR_INIT;
    struct addrinfo *res = NULL;
    char service[16];
    int fd = -1;
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    /* Name resolution is not bounded by timeout_ms: keeld's peers are addresses. */
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        if (rc == EAI_SYSTEM)
            return keel_error_errno(err, KEEL_E_CONNECT, errno, "connect to %s:%u: resolve",
                                    host, port);
        return keel_error_set(err, KEEL_E_CONNECT, 0, "connect to %s:%u: %s", host, port,
                              gai_strerror(rc));
    }
    keel_error_set(&e, KEEL_E_CONNECT, 0, "connect to %s:%u: no address", host, port);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);

        if (ctx == NULL && !sockaddr_is_loopback(ai->ai_addr)) {
            keel_error_set(&e, KEEL_E_PERM, 0, "connect to %s:%u: clear text only on loopback",
                           host, port);
            continue;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd == -1) {
            keel_error_errno(&e, KEEL_E_CONNECT, errno, "connect to %s:%u: socket", host,
                             port);
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno != EINPROGRESS) {
            keel_error_errno(&e, KEEL_E_CONNECT, errno, "connect to %s:%u", host, port);
        } else if (wait_fd(fd, -1, POLLOUT, deadline, timeout_ms, &e) == -1) {
            keel_error_prefix(&e, "connect to %s:%u", host, port);
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr != 0) {
            keel_error_errno(&e, KEEL_E_CONNECT, soerr != 0 ? soerr : errno,
                             "connect to %s:%u", host, port);
        } else {
            break;
        }
        close(fd);
        fd = -1;
        /* The deadline is shared by all addresses. */
        if (e.code == KEEL_E_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd == -1)
        keel_error_copy(err, &e);
    return fd;
}

/* Ask for verify_name in the server's certificate, and send it as SNI. */
static int stream_set_name(struct keel_stream *s, const char *verify_name, struct keel_error *err)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
    unsigned char ip[sizeof(struct in6_addr)];
    int ok;

    if (inet_pton(AF_INET, verify_name, ip) == 1 || inet_pton(AF_INET6, verify_name, ip) == 1) {
        /* An address is matched against IP SANs, and SNI may not carry one (RFC 6066 3). */
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, verify_name);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, verify_name, 0)
             && SSL_set_tlsext_host_name(s->ssl, verify_name);
    }
    if (ok != 1) {
        ERR_clear_error();
        return keel_error_set(err, KEEL_E_INVAL, 0, "tls with %s: bad server name '%s'",
                              s->addr, verify_name);
    }
    return 0;
}

int keel_stream_connect(struct keel_tls_ctx *ctx, const char *host, unsigned port,
                        const char *verify_name, int timeout_ms, struct keel_stream **ret,
                        struct keel_error *err)
{
    uint64_t deadline = deadline_of(timeout_ms);
    int fd;

    if (host == NULL || port == 0 || port > 65535)
        return keel_error_set(err, KEEL_E_INVAL, 0, "connect to %s:%u: bad address",
                              host != NULL ? host : "(null)", port);
    if (ctx != NULL && ctx->server)
        return keel_error_set(err, KEEL_E_INVAL, 0, "connect to %s:%u: needs a client context",
                              host, port);
    fd = connect_socket(ctx, host, port, deadline, timeout_ms, err);
    if (fd == -1)
        return -1;
    return stream_open(fd, ctx, false, verify_name, deadline, timeout_ms, ret, err);
}

/* ------------------------------------------------------------------ */
/* I/O */

#define WANT_IO (-2)

/*
 * One non-blocking read attempt, under s->lock.  Returns the count, 0 at
 * end of stream, -1 on error, or WANT_IO with *events set to what to wait
 * for.
 */
static ssize_t read_locked(struct keel_stream *s, void *buf, size_t n, short *events,
                           struct keel_error *err)
{
    ssize_t r;
    int e;
    int sys;

    if (s->ssl == NULL) {
        do
            r = recv(s->fd, buf, n, MSG_DONTWAIT);
        while (r == -1 && errno == EINTR);
        if (r >= 0)
            return r;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *events = POLLIN;
            return WANT_IO;
        }
        return keel_error_errno(err, KEEL_E_IO, errno, "read from %s", s->addr);
    }

    ERR_clear_error();
    errno = 0;
    r = SSL_read(s->ssl, buf, (int)KEEL_MIN(n, (size_t)INT_MAX));
    sys = errno;
    if (r > 0)
        return r;
    e = SSL_get_error(s->ssl, (int)r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return WANT_IO;
    case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return WANT_IO;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return ssl_fail(s, (int)r, e, sys, false, "read from", err);
    }
}

ssize_t keel_stream_read(struct keel_stream *s, void *buf, size_t n, int timeout_ms,
                         struct keel_error *err)
{
    uint64_t deadline = deadline_of(timeout_ms);

    if (n == 0)
        return 0;
    for (;;) {
        short events = POLLIN;
        ssize_t r;

        if (atomic_load(&s->shut))
            return keel_error_set(err, KEEL_E_CLOSED, 0, "read from %s: stream shut down",
                                  s->addr);
        {
            KEEL_LOCK_GUARD(&s->lock);
            r = read_locked(s, buf, n, &events, err);
        }
        if (r != WANT_IO)
            return r;
        if (stream_wait(s, events, deadline, timeout_ms, err) == -1)
            return keel_error_prefix(err, "read from %s", s->addr);
    }
}

int keel_stream_write(struct keel_stream *s, const void *buf, size_t n, int timeout_ms,
                      struct keel_error *err)
{
    uint64_t deadline = deadline_of(timeout_ms);
    const char *p = buf;

    KEEL_LOCK_GUARD(&s->lock);
    while (n > 0) {
        size_t chunk = KEEL_MIN(n, (size_t)INT_MAX);
        short events = POLLOUT;

        if (atomic_load(&s->shut))
            return keel_error_set(err, KEEL_E_CLOSED, 0, "write to %s: stream shut down",
                                  s->addr);
        if (s->ssl == NULL) {
            ssize_t r = send(s->fd, p, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);

            if (r >= 0) {
                p += r;
                n -= (size_t)r;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return keel_error_errno(err, KEEL_E_IO, errno, "write to %s", s->addr);
        } else {
            int r;
            int e;
            int sys;

            ERR_clear_error();
            errno = 0;
            /* After WANT_*, this retries with the same p and chunk, as OpenSSL requires. */
            r = SSL_write(s->ssl, p, (int)chunk);
            sys = errno;
            if (r > 0) {
                p += r;
                n -= (size_t)r;
                continue;
            }
            e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                events = POLLIN;
            else if (e != SSL_ERROR_WANT_WRITE)
                return ssl_fail(s, r, e, sys, false, "write to", err);
        }
        if (stream_wait(s, events, deadline, timeout_ms, err) == -1)
            return keel_error_prefix(err, "write to %s", s->addr);
    }
    return 0;
}

void keel_stream_shutdown(struct keel_stream *s)
{
    uint64_t one = 1;
    ssize_t r;

    if (s == NULL)
        return;
    atomic_store(&s->shut, true);
    /* Fails only when the counter is full, and then the eventfd is readable already. */
    r = write(s->wake_fd, &one, sizeof(one));
    (void)r;
}

void keel_stream_close(struct keel_stream *s)
{
    if (s == NULL)
        return;
    if (s->ssl != NULL) {
        /*
         * One non-blocking try at close_notify, so the peer sees a clean end
         * of stream; OpenSSL forbids it after a fatal error.
         */
        if (!s->fatal && SSL_is_init_finished(s->ssl)) {
            ERR_clear_error();
            SSL_shutdown(s->ssl);
        }
        SSL_free(s->ssl);
        ERR_clear_error();
    }
    BIO_meth_free(s->bio_method);
    close(s->fd);
    close(s->wake_fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *keel_stream_peer(const struct keel_stream *s)
{
    return s->peer;
}

const char *keel_stream_addr(const struct keel_stream *s)
{
    return s->addr;
}

/*
 * Storage URL parsing; see url.h for the grammar.
 *
 * The parser works on a copy of the input and never reports the input
 * verbatim: every message uses the redacted form, because an iSCSI URL may
 * carry a CHAP secret.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/strutil.h"
#include "io/url.h"

const char *keel_url_scheme_name(enum keel_url_scheme scheme)
{
    switch (scheme) {
    case KEEL_URL_ISCSI: return "iscsi";
    case KEEL_URL_NFS: return "nfs";
    case KEEL_URL_FILE: return "file";
    }
    return "?";
}

const char *keel_url_redact_str(const char *s, char *buf, size_t n)
{
    const char *sep = strstr(s, "://");
    const char *auth, *slash, *at, *pct;

    keel_strlcpy(buf, s, n);
    if (sep == NULL)
        return buf;
    auth = sep + 3;
    slash = strchr(auth, '/');
    /* The secret sits between '%' and the last '@' of the authority. */
    at = NULL;
    for (const char *p = auth; *p != '\0' && (slash == NULL || p < slash); p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return buf;
    pct = memchr(auth, '%', (size_t)(at - auth));
    if (pct == NULL)
        return buf;
    snprintf(buf, n, "%.*s***%s", (int)(pct + 1 - s), s, at);
    return buf;
}

static int url_fail(struct keel_error *err, const char *s, const char *reason)
{
    char red[KEEL_URL_MAX];

    return keel_error_set(err, KEEL_E_URL, 0, "%s: %s", keel_url_redact_str(s, red, sizeof(red)),
                          reason);
}

static int parse_port(const char *p, size_t len, unsigned *ret)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *ret = v;
    return 0;
}

static bool host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Parse "host[:port]" or "[v6][:port]" of length len into url. */
static int parse_hostport(const char *s, const char *a, size_t len, struct keel_url *url,
                          struct keel_error *err)
{
    const char *end = a + len;
    const char *hend, *colon = NULL;

    if (len == 0)
        return url_fail(err, s, "missing host");
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', len);

        if (rb == NULL)
            return url_fail(err, s, "unterminated '[' in host");
        for (const char *p = a + 1; p < rb; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return url_fail(err, s, "bad character in IPv6 host");
        hend = rb + 1;
        if (hend < end) {
            if (*hend != ':')
                return url_fail(err, s, "garbage after IPv6 host");
            colon = hend;
        }
    } else {
        colon = memchr(a, ':', len);
        hend = colon ? colon : end;
        for (const char *p = a; p < hend; p++)
            if (!host_char_ok(*p))
                return url_fail(err, s, "bad character in host");
    }
    if (hend == a)
        return url_fail(err, s, "missing host");
    if ((size_t)(hend - a) >= sizeof(url->host))
        return url_fail(err, s, "host name too long");
    memcpy(url->host, a, (size_t)(hend - a));
    url->host[hend - a] = '\0';
    if (colon != NULL && parse_port(colon + 1, (size_t)(end - colon - 1), &url->port) != 0)
        return url_fail(err, s, "bad port number");
    return 0;
}

/*
 * Check an absolute path and copy it into url->path without a trailing '/'
 * (except for "/" itself).  len is the length of path in the input.
 */
static int parse_abs_path(const char *s, const char *path, size_t len, struct keel_url *url,
                          struct keel_error *err)
{
    const char *end = path + len;
    const char *p;

    if (len == 0 || path[0] != '/')
        return url_fail(err, s, "missing path");
    if (len > 1 && path[len - 1] == '/')
        end--;
    if (end > path + 1 && end[-1] == '/')
        return url_fail(err, s, "empty path component");
    p = path + 1;
    while (p < end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        size_t clen = (q ? q : end) - p;

        if (clen == 0)
            return url_fail(err, s, "empty path component");
        if ((clen == 1 && p[0] == '.') || (clen == 2 && p[0] == '.' && p[1] == '.'))
            return url_fail(err, s, "'.' and '..' are not allowed in paths");
        for (size_t i = 0; i < clen; i++) {
            unsigned char c = (unsigned char)p[i];

            if (c < 0x20 || c == 0x7f || c == '%' || c == '?' || c == '#')
                return url_fail(err, s, "bad character in path");
        }
        p = q ? q + 1 : end;
    }
    if ((size_t)(end - path) >= sizeof(url->path))
        return url_fail(err, s, "path too long");
    memcpy(url->path, path, (size_t)(end - path));
    url->path[end - path] = '\0';
    return 0;
}

/* portal_ok: the IQN and LUN may be missing (a portal or a target, not a LUN). */
static int parse_iscsi(const char *s, const char *rest, struct keel_url *url, bool portal_ok,
                       struct keel_error *err)
{
    const char *slash = strchr(rest, '/');
    const char *at = NULL, *hp, *iqn, *lun, *iqn_end;
    uint64_t v;

    url->lun = -1;
    if (slash == NULL && portal_ok)
        slash = rest + strlen(rest);
    if (slash == NULL)
        return url_fail(err, s, "missing target IQN and LUN");
    for (const char *p = rest; p < slash; p++)
        if (*p == '@')
            at = p;
    hp = rest;
    if (at != NULL) {
        const char *pct = memchr(rest, '%', (size_t)(at - rest));
        const char *uend = pct ? pct : at;

        if (uend == rest)
            return url_fail(err, s, "empty CHAP user");
        if ((size_t)(uend - rest) >= sizeof(url->user))
            return url_fail(err, s, "CHAP user too long");
        memcpy(url->user, rest, (size_t)(uend - rest));
        url->user[uend - rest] = '\0';
        if (pct != NULL) {
            if ((size_t)(at - pct - 1) >= sizeof(url->secret))
                return url_fail(err, s, "CHAP secret too long");
            memcpy(url->secret, pct + 1, (size_t)(at - pct - 1));
            url->secret[at - pct - 1] = '\0';
        }
        if (url->secret[0] == '\0')
            return url_fail(err, s, "CHAP user without a secret");
        hp = at + 1;
    }
    if (parse_hostport(s, hp, (size_t)(slash - hp), url, err) != 0)
        return -1;
    if (portal_ok && (*slash == '\0' || slash[1] == '\0'))
        return 0;

    iqn = slash + 1;
    iqn_end = strchr(iqn, '/');
    if (iqn_end == NULL && portal_ok)
        iqn_end = iqn + strlen(iqn);
    if (iqn_end == NULL) {
        if (*iqn == '\0')
            return url_fail(err, s, "missing target IQN");
        return url_fail(err, s, "missing LUN number");
    }
    if (iqn_end == iqn)
        return url_fail(err, s, "missing target IQN");
    if ((size_t)(iqn_end - iqn) >= sizeof(url->iqn))
        return url_fail(err, s, "target IQN too long");
    for (const char *p = iqn; p < iqn_end; p++) {
        unsigned char c = (unsigned char)*p;

        if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_')
            return url_fail(err, s, "bad character in target IQN");
    }
    memcpy(url->iqn, iqn, (size_t)(iqn_end - iqn));
    url->iqn[iqn_end - iqn] = '\0';
    if (portal_ok && (*iqn_end == '\0' || iqn_end[1] == '\0'))
        return 0;

    lun = iqn_end + 1;
    if (*lun == '\0')
        return url_fail(err, s, "missing LUN number");
    if (keel_parse_u64(lun, &v) != 0)
        return url_fail(err, s, "LUN is not a number");
    if (v > 16383)
        return url_fail(err, s, "LUN number out of range (0-16383)");
    url->lun = (int)v;
    return 0;
}

static int parse_nfs_query(const char *s, const char *q, struct keel_url *url,
                           struct keel_error *err)
{
    while (*q != '\0') {
        const char *amp = strchr(q, '&');
        const char *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q));
        unsigned *dst;

        if (eq == NULL)
            return url_fail(err, s, "query argument without a value");
        if ((size_t)(eq - q) == 7 && memcmp(q, "nfsport", 7) == 0)
            dst = &url->nfsport;
        else if ((size_t)(eq - q) == 9 && memcmp(q, "mountport", 9) == 0)
            dst = &url->mountport;
        else
            return url_fail(err, s, "unknown query argument (known: nfsport, mountport)");
        if (parse_port(eq + 1, (size_t)(end - eq - 1), dst) != 0)
            return url_fail(err, s, "bad port number in query");
        q = amp ? amp + 1 : end;
    }
    return 0;
}

static int parse_nfs(const char *s, const char *rest, struct keel_url *url,
                     struct keel_error *err)
{
    const char *slash = strchr(rest, '/');
    const char *qm;

    if (slash == NULL)
        return url_fail(err, s, "missing export path");
    if (memchr(rest, '@', (size_t)(slash - rest)) != NULL)
        return url_fail(err, s, "user information is not allowed in NFS URLs");
    if (parse_hostport(s, rest, (size_t)(slash - rest), url, err) != 0)
        return -1;
    qm = strchr(slash, '?');
    if (parse_abs_path(s, slash, qm ? (size_t)(qm - slash) : strlen(slash), url, err) != 0)
        return -1;
    if (qm != NULL && parse_nfs_query(s, qm + 1, url, err) != 0)
        return -1;
    return 0;
}

static int parse_file(const char *s, const char *rest, struct keel_url *url,
                      struct keel_error *err)
{
    if (strncmp(rest, "localhost/", 10) == 0)
        rest += 9;
    if (rest[0] != '/')
        return url_fail(err, s, "file URLs take no host (file:///path)");
    return parse_abs_path(s, rest, strlen(rest), url, err);
}

static int url_parse(const char *s, bool portal, struct keel_url *ret, struct keel_error *err)
{
    struct keel_url url;
    const char *sep;
    size_t slen;
    int r;

    if (s == NULL || *s == '\0')
        return keel_error_set(err, KEEL_E_URL, 0, "empty storage URL");
    slen = strlen(s);
    if (slen >= KEEL_URL_MAX)
        return url_fail(err, s, "URL too long");
    for (size_t i = 0; i < slen; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return url_fail(err, s, "URL contains spaces or control characters");
    sep = strstr(s, "://");
    if (sep == NULL)
        return url_fail(err, s, "not a URL (expected scheme://...)");

    memset(&url, 0, sizeof(url));
    if ((size_t)(sep - s) == 5 && strncasecmp(s, "iscsi", 5) == 0) {
        url.scheme = KEEL_URL_ISCSI;
        r = parse_iscsi(s, sep + 3, &url, portal, err);
    } else if (portal) {
        r = url_fail(err, s, "not an iSCSI portal (iscsi://host[:port])");
    } else if ((size_t)(sep - s) == 3 && strncasecmp(s, "nfs", 3) == 0) {
        url.scheme = KEEL_URL_NFS;
        r = parse_nfs(s, sep + 3, &url, err);
    } else if ((size_t)(sep - s) == 4 && strncasecmp(s, "file", 4) == 0) {
        url.scheme = KEEL_URL_FILE;
        r = parse_file(s, sep + 3, &url, err);
    } else {
        r = url_fail(err, s, "unknown scheme (known: iscsi, nfs, file)");
    }
    if (r != 0)
        return -1;
    *ret = url;
    return 0;
}

int keel_url_parse(const char *s, struct keel_url *ret, struct keel_error *err)
{
    return url_parse(s, false, ret, err);
}

int keel_url_parse_portal(const char *s, struct keel_url *ret, struct keel_error *err)
{
    return url_parse(s, true, ret, err);
}

const char *keel_url_portal(const struct keel_url *url, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%u", url->host, url->port ? url->port : KEEL_ISCSI_DEFAULT_PORT);
    return buf;
}

const char *keel_url_remote_path(const struct keel_url *url, char *buf, size_t n)
{
    switch (url->scheme) {
    case KEEL_URL_NFS:
        snprintf(buf, n, "%s:%s", url->host, url->path);
        break;
    case KEEL_URL_FILE:
        snprintf(buf, n, "%s", url->path);
        break;
    default:
        snprintf(buf, n, "%s", "");
        break;
    }
    return buf;
}

const char *keel_url_format(const struct keel_url *url, bool redact, char *buf, size_t n)
{
    char port[8] = "";

    if (url->port != 0)
        snprintf(port, sizeof(port), ":%u", url->port);
    switch (url->scheme) {
    case KEEL_URL_ISCSI: {
        char cred[2 * KEEL_URL_USER_MAX + 2] = "";
        char tail[KEEL_URL_IQN_MAX + 16] = "";

        if (url->user[0] != '\0')
            snprintf(cred, sizeof(cred), "%s%%%s@", url->user, redact ? "***" : url->secret);
        if (url->iqn[0] != '\0' && url->lun >= 0)
            snprintf(tail, sizeof(tail), "/%s/%d", url->iqn, url->lun);
        else if (url->iqn[0] != '\0')
            snprintf(tail, sizeof(tail), "/%s", url->iqn);
        snprintf(buf, n, "iscsi://%s%s%s%s", cred, url->host, port, tail);
        break;
    }
    case KEEL_URL_NFS:
        if (url->nfsport != 0 && url->mountport != 0)
            snprintf(buf, n, "nfs://%s%s%s?nfsport=%u&mountport=%u", url->host, port, url->path,
                     url->nfsport, url->mountport);
        else if (url->nfsport != 0)
            snprintf(buf, n, "nfs://%s%s%s?nfsport=%u", url->host, port, url->path, url->nfsport);
        else if (url->mountport != 0)
            snprintf(buf, n, "nfs://%s%s%s?mountport=%u", url->host, port, url->path,
                     url->mountport);
        else
            snprintf(buf, n, "nfs://%s%s%s", url->host, port, url->path);
        break;
    case KEEL_URL_FILE:
        snprintf(buf, n, "file://%s", url->path);
        break;
    }
    return buf;
}

int keel_path_check(const char *rel, struct keel_error *err)
{
    size_t len;
    const char *p;

    if (rel == NULL || *rel == '\0')
        return keel_error_set(err, KEEL_E_INVAL, 0, "empty path");
    if (strcmp(rel, ".") == 0)
        return 0; /* the root itself */
    len = strlen(rel);
    if (len >= KEEL_URL_PATH_MAX)
        return keel_error_set(err, KEEL_E_INVAL, 0, "path '%.64s...': too long", rel);
    if (rel[0] == '/')
        return keel_error_set(err, KEEL_E_INVAL, 0, "path '%s': must be relative", rel);
    p = rel;
    for (;;) {
        const char *q = strchr(p, '/');
        size_t clen = q ? (size_t)(q - p) : strlen(p);

        if (clen == 0)
            return keel_error_set(err, KEEL_E_INVAL, 0, "path '%s': empty component", rel);
        if ((clen == 1 && p[0] == '.') || (clen == 2 && p[0] == '.' && p[1] == '.'))
            return keel_error_set(err, KEEL_E_INVAL, 0,
                                  "path '%s': '.' and '..' are not allowed", rel);
        for (size_t i = 0; i < clen; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return keel_error_set(err, KEEL_E_INVAL, 0,
                                      "path '%s': control character", rel);
        if (q == NULL)
            break;
        p = q + 1;
    }
    return 0;
}

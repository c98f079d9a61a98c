/* Storage pools and their master domain; see pool.h. */
#include "spm/pool.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/strutil.h"
#include "metadata/journal_fmt.h"

static keel_pool_probe_fn *probe;

void keel_pool_set_probe(keel_pool_probe_fn *fn)
{
    probe = fn;
}

static void at_step(const char *op, unsigned step)
{
    if (probe != NULL)
        probe(op, step);
}

static const char *uuid_of(const struct keel_sd *sd)
{
    return keel_sd_info(sd)->uuid;
}

static const char *get(const struct keel_sd *sd, const char *key)
{
    const char *v = keel_sd_md_get(keel_sd_md(sd), key);

    return v != NULL ? v : "";
}

static bool is_master(const struct keel_sd *sd)
{
    return keel_sd_info(sd)->master;
}

/* POOL_DOMAINS "<sd>:Active,<sd>:Attached" into info; KEEL_E_CORRUPT when malformed. */
static int parse_domains(const char *s, struct keel_pool_info *info, struct keel_error *err)
{
    info->ndomains = 0;
    while (*s != '\0') {
        const char *end = strchr(s, ','), *colon = strchr(s, ':');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        struct keel_pool_domain *d;

        if (colon == NULL || colon > s + len || colon - s != KEEL_UUID_LEN ||
            info->ndomains == KEEL_POOL_MAX_DOMAINS)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "POOL_DOMAINS: bad entry '%.*s'",
                                  (int)len, s);
        d = &info->domains[info->ndomains++];
        memcpy(d->uuid, s, KEEL_UUID_LEN);
        d->uuid[KEEL_UUID_LEN] = '\0';
        if (!keel_uuid_valid(d->uuid))
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "POOL_DOMAINS: bad UUID %s", d->uuid);
        len -= KEEL_UUID_LEN + 1;
        if (len == 6 && strncmp(colon + 1, "Active", 6) == 0)
            d->active = true;
        else if (len == 8 && strncmp(colon + 1, "Attached", 8) == 0)
            d->active = false;
        else
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "POOL_DOMAINS: %s has status '%.*s'",
                                  d->uuid, (int)len, colon + 1);
        s = end ? end + 1 : s + strlen(s);
    }
    return 0;
}

static void format_domains(const struct keel_pool_info *info, struct keel_strbuf *out)
{
    for (size_t i = 0; i < info->ndomains; i++)
        keel_strbuf_addf(out, "%s%s:%s", i ? "," : "", info->domains[i].uuid,
                           info->domains[i].active ? "Active" : "Attached");
}

static int64_t get_i64(const struct keel_sd *sd, const char *key)
{
    const char *v = get(sd, key);
    uint64_t u;

    if (strcmp(v, "-1") == 0 || keel_parse_u64(v, &u) != 0)
        return -1;
    return (int64_t)u;
}

int keel_pool_info(struct keel_sd *master, struct keel_pool_info *out, struct keel_error *err)
{
    uint64_t v = 0;

    memset(out, 0, sizeof(*out));
    if (!is_master(master) || keel_parse_u64(get(master, KEEL_SDK_MASTER_VERSION), &v) != 0 ||
        v == 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s is not a pool's master "
                              "domain", uuid_of(master));
    keel_strlcpy(out->uuid, get(master, KEEL_SDK_POOL_UUID), sizeof(out->uuid));
    if (!keel_uuid_valid(out->uuid))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "storage domain %s: master of pool '%s'",
                              uuid_of(master), get(master, KEEL_SDK_POOL_UUID));
    keel_strlcpy(out->name, get(master, KEEL_SDK_POOL_DESCRIPTION), sizeof(out->name));
    keel_strlcpy(out->master, uuid_of(master), sizeof(out->master));
    out->master_version = v;
    out->spm_id = get_i64(master, KEEL_SDK_POOL_SPM_ID);
    out->spm_lver = get_i64(master, KEEL_SDK_POOL_SPM_LVER);
    if (parse_domains(get(master, KEEL_SDK_POOL_DOMAINS), out, err) != 0)
        return keel_error_prefix(err, "storage domain %s", uuid_of(master));
    return 0;
}

static struct keel_pool_domain *find(struct keel_pool_info *info, const char *sd)
{
    for (size_t i = 0; i < info->ndomains; i++)
        if (strcmp(info->domains[i].uuid, sd) == 0)
            return &info->domains[i];
    return NULL;
}

/* Write sd's metadata with the keys and values of kv[] (NULL-terminated pairs) changed. */
static int update(struct keel_sd *sd, const char *const kv[], struct keel_error *err)
{
    struct keel_sd_md md;
    int rc = 0;

    keel_sd_md_init(&md);
    if (keel_sd_md_copy(&md, keel_sd_md(sd), err) != 0)
        return -1;
    for (size_t i = 0; kv[i] != NULL && rc == 0; i += 2)
        rc = keel_sd_md_set(&md, kv[i], kv[i + 1], err);
    if (rc == 0)
        rc = keel_sd_write_md(sd, &md, err);
    keel_sd_md_release(&md);
    return rc;
}

/* Write the master's POOL_DOMAINS from info. */
static int write_domains(struct keel_sd *master, const struct keel_pool_info *info,
                         struct keel_error *err)
{
    struct keel_strbuf b;
    int rc;

    keel_strbuf_init(&b, 256);
    format_domains(info, &b);
    if (b.failed) {
        keel_strbuf_release(&b);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    {
        const char *kv[] = { KEEL_SDK_POOL_DOMAINS, b.buf, NULL };

        rc = update(master, kv, err);
    }
    keel_strbuf_release(&b);
    return rc;
}

/* The pool sd names, or "" when it is in none. */
static const char *pool_of(const struct keel_sd *sd)
{
    return keel_sd_info(sd)->pool_uuids != NULL ? keel_sd_info(sd)->pool_uuids : "";
}

int keel_pool_create(struct keel_sd *master, const char *pool_uuid, const char *name, bool force,
                     struct keel_error *err)
{
    char doms[KEEL_UUID_LEN + 16];
    const char *other = pool_of(master);

    if (!keel_uuid_valid(pool_uuid))
        return keel_error_set(err, KEEL_E_INVAL, 0, "pool '%s': not a UUID", pool_uuid);
    if (*other != '\0' && strcmp(other, pool_uuid) != 0 && !force)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s belongs to pool %s: detach "
                              "it there, or force", uuid_of(master), other);
    if (keel_sd_info(master)->klass != KEEL_SD_CLASS_DATA)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: a master must be a data "
                              "domain", uuid_of(master));
    if (!keel_sd_is_block(master)) {
        /* The master tree VDSM's SPM expects (createMasterTree). */
        static const char *const dirs[] = { "master", "master/vms", "master/tasks" };

        for (size_t i = 0; i < 3; i++) {
            char p[128];
            bool there = false;

            snprintf(p, sizeof(p), "%s/%s", keel_sd_root(master), dirs[i]);
            if (keel_fs_exists(keel_sd_fs(master), p, &there, err) != 0 ||
                (!there && keel_fs_mkdir(keel_sd_fs(master), p, 0755, err) != 0))
                return keel_error_prefix(err, "storage domain %s", uuid_of(master));
        }
    }
    snprintf(doms, sizeof(doms), "%s:Active", uuid_of(master));
    {
        const char *kv[] = { KEEL_SDK_POOL_UUID, pool_uuid, KEEL_SDK_ROLE, "Master",
                             KEEL_SDK_MASTER_VERSION, "1", KEEL_SDK_POOL_DESCRIPTION, name,
                             KEEL_SDK_POOL_DOMAINS, doms, KEEL_SDK_POOL_SPM_ID, "-1",
                             KEEL_SDK_POOL_SPM_LVER, "-1", KEEL_SDK_LOCKPOLICY, "ON", NULL };

        return update(master, kv, err);
    }
}

/* The attach steps; each can be redone. */
static int do_attach(struct keel_sd *master, const struct keel_pool_info *info, struct keel_sd *sd,
                     struct keel_error *err)
{
    struct keel_pool_info next = *info;

    if (strcmp(pool_of(sd), info->uuid) != 0 || is_master(sd)) {
        const char *kv[] = { KEEL_SDK_POOL_UUID, info->uuid, KEEL_SDK_ROLE, "Regular",
                             KEEL_SDK_MASTER_VERSION, "0", NULL };

        if (update(sd, kv, err) != 0)
            return -1;
    }
    at_step("pool.attach", 1);
    if (find(&next, uuid_of(sd)) != NULL)
        return 0;
    if (next.ndomains == KEEL_POOL_MAX_DOMAINS)
        return keel_error_set(err, KEEL_E_NOSPC, 0, "pool %s has %d domains", info->uuid,
                              KEEL_POOL_MAX_DOMAINS);
    keel_strlcpy(next.domains[next.ndomains].uuid, uuid_of(sd), KEEL_UUID_LEN + 1);
    next.domains[next.ndomains++].active = false;
    if (write_domains(master, &next, err) != 0)
        return -1;
    at_step("pool.attach", 2);
    return 0;
}

static int journal_begin(struct keel_journal *j, const char *op, const char *const kv[],
                         unsigned *slot, struct keel_error *err)
{
    struct keel_jrec r = { 0 };

    if (j == NULL)
        return 0;
    keel_strlcpy(r.op, op, sizeof(r.op));
    for (size_t i = 0; kv[i] != NULL; i += 2)
        if (keel_jrec_add_arg(&r, kv[i], kv[i + 1], err) != 0)
            return -1;
    if (keel_journal_begin(j, &r, slot, err) != 0)
        return -1;
    at_step(op, 0);
    return 0;
}

static int journal_end(struct keel_journal *j, unsigned slot, struct keel_error *err)
{
    return j == NULL ? 0 : keel_journal_end(j, slot, err);
}

int keel_pool_attach(struct keel_sd *master, struct keel_sd *sd, bool force,
                     struct keel_journal *j, struct keel_error *err)
{
    struct keel_pool_info info;
    const char *other = pool_of(sd);
    unsigned slot = 0;

    if (keel_pool_info(master, &info, err) != 0)
        return -1;
    if (*other != '\0' && strcmp(other, info.uuid) != 0 && !force)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s belongs to pool %s: detach "
                              "it there, or force", uuid_of(sd), other);
    {
        const char *kv[] = { "pool", info.uuid, "domain", uuid_of(sd), NULL };

        if (journal_begin(j, "pool.attach", kv, &slot, err) != 0 ||
            do_attach(master, &info, sd, err) != 0 || journal_end(j, slot, err) != 0)
            return keel_error_prefix(err, "attaching storage domain %s to pool %s", uuid_of(sd),
                                     info.uuid);
    }
    return 0;
}

static int set_active(struct keel_sd *master, const char *sd_uuid, bool active,
                      struct keel_error *err)
{
    struct keel_pool_info info;
    struct keel_pool_domain *d;

    if (keel_pool_info(master, &info, err) != 0)
        return -1;
    d = find(&info, sd_uuid);
    if (d == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s is not in pool %s",
                              sd_uuid, info.uuid);
    if (!active && strcmp(sd_uuid, uuid_of(master)) == 0)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s is the master of pool %s: "
                              "move the master role first", sd_uuid, info.uuid);
    if (d->active == active)
        return 0;
    d->active = active;
    return write_domains(master, &info, err);
}

int keel_pool_activate(struct keel_sd *master, const char *sd_uuid, struct keel_error *err)
{
    return set_active(master, sd_uuid, true, err);
}

int keel_pool_deactivate(struct keel_sd *master, const char *sd_uuid, struct keel_error *err)
{
    return set_active(master, sd_uuid, false, err);
}

/* The detach steps (sd may be NULL: unreachable, then only the master forgets it). */
static int do_detach(struct keel_sd *master, struct keel_pool_info *info, const char *sd_uuid,
                     struct keel_sd *sd, struct keel_error *err)
{
    struct keel_pool_domain *d = find(info, sd_uuid);

    if (d != NULL) {
        *d = info->domains[--info->ndomains];
        if (write_domains(master, info, err) != 0)
            return -1;
    }
    at_step("pool.detach", 1);
    if (sd != NULL && strcmp(pool_of(sd), info->uuid) == 0) {
        const char *kv[] = { KEEL_SDK_POOL_UUID, "", KEEL_SDK_ROLE, "Regular", NULL };

        if (update(sd, kv, err) != 0)
            return -1;
    }
    at_step("pool.detach", 2);
    return 0;
}

int keel_pool_detach(struct keel_sd *master, struct keel_sd *sd, struct keel_journal *j,
                     struct keel_error *err)
{
    struct keel_pool_info info;
    struct keel_pool_domain *d;
    unsigned slot = 0;

    if (keel_pool_info(master, &info, err) != 0)
        return -1;
    d = find(&info, uuid_of(sd));
    if (d == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "storage domain %s is not in pool %s",
                              uuid_of(sd), info.uuid);
    if (sd == master || strcmp(uuid_of(sd), uuid_of(master)) == 0)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s is the master of pool %s: "
                              "move the master role first", uuid_of(sd), info.uuid);
    if (d->active)
        return keel_error_set(err, KEEL_E_BUSY, 0, "storage domain %s is active in pool %s: "
                              "deactivate it first", uuid_of(sd), info.uuid);
    {
        const char *kv[] = { "pool", info.uuid, "domain", uuid_of(sd), NULL };

        if (journal_begin(j, "pool.detach", kv, &slot, err) != 0 ||
            do_detach(master, &info, uuid_of(sd), sd, err) != 0 || journal_end(j, slot, err) != 0)
            return keel_error_prefix(err, "detaching storage domain %s from pool %s",
                                     uuid_of(sd), info.uuid);
    }
    return 0;
}

/* The master-move steps; old may be NULL (unreachable): only the new one is written. */
static int do_move(struct keel_sd *old, struct keel_sd *to, const struct keel_pool_info *info,
                   uint64_t version, struct keel_error *err)
{
    char ver[32], id[32], lver[32];
    struct keel_strbuf b;
    int rc = 0;

    snprintf(ver, sizeof(ver), "%" PRIu64, version);
    snprintf(id, sizeof(id), "%" PRId64, info->spm_id);
    snprintf(lver, sizeof(lver), "%" PRId64, info->spm_lver);
    keel_strbuf_init(&b, 256);
    format_domains(info, &b);
    if (!is_master(to) || strcmp(get(to, KEEL_SDK_MASTER_VERSION), ver) != 0) {
        const char *kv[] = { KEEL_SDK_POOL_UUID, info->uuid, KEEL_SDK_ROLE, "Master",
                             KEEL_SDK_MASTER_VERSION, ver, KEEL_SDK_POOL_DESCRIPTION, info->name,
                             KEEL_SDK_POOL_DOMAINS, b.buf, KEEL_SDK_POOL_SPM_ID, id,
                             KEEL_SDK_POOL_SPM_LVER, lver, KEEL_SDK_LOCKPOLICY, "ON", NULL };

        rc = update(to, kv, err);
    }
    keel_strbuf_release(&b);
    if (rc == 0)
        at_step("pool.master", 1);
    if (rc == 0 && old != NULL && is_master(old)) {
        const char *kv[] = { KEEL_SDK_ROLE, "Regular", KEEL_SDK_MASTER_VERSION, "0", NULL };

        rc = update(old, kv, err);
    }
    if (rc == 0)
        at_step("pool.master", 2);
    return rc;
}

int keel_pool_move_master(struct keel_sd *old, struct keel_sd *to, struct keel_journal *j,
                          struct keel_error *err)
{
    struct keel_pool_info info;
    struct keel_pool_domain *d;
    char ver[32];
    unsigned slot = 0;

    if (keel_pool_info(old, &info, err) != 0)
        return -1;
    d = find(&info, uuid_of(to));
    if (d == NULL || !d->active || strcmp(pool_of(to), info.uuid) != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s is not an active domain "
                              "of pool %s", uuid_of(to), info.uuid);
    if (keel_sd_info(to)->klass != KEEL_SD_CLASS_DATA)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: a master must be a data "
                              "domain", uuid_of(to));
    snprintf(ver, sizeof(ver), "%" PRIu64, info.master_version + 1);
    {
        const char *kv[] = { "pool", info.uuid, "domain", uuid_of(to), "from", uuid_of(old),
                             "version", ver, NULL };

        if (journal_begin(j, "pool.master", kv, &slot, err) != 0 ||
            do_move(old, to, &info, info.master_version + 1, err) != 0 ||
            journal_end(j, slot, err) != 0)
            return keel_error_prefix(err, "moving the master of pool %s to %s", info.uuid,
                                     uuid_of(to));
    }
    return 0;
}

int keel_pool_reconstruct(struct keel_sd *to, const struct keel_pool_info *last,
                          struct keel_journal *j, struct keel_error *err)
{
    struct keel_pool_info info = *last;
    struct keel_pool_domain *d = find(&info, uuid_of(to));
    char ver[32], old[KEEL_UUID_LEN + 1] = "";
    unsigned slot = 0;

    if (d == NULL || strcmp(pool_of(to), info.uuid) != 0)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s is not a domain of pool "
                              "%s", uuid_of(to), info.uuid);
    if (keel_sd_info(to)->klass != KEEL_SD_CLASS_DATA)
        return keel_error_set(err, KEEL_E_INVAL, 0, "storage domain %s: a master must be a data "
                              "domain", uuid_of(to));
    d->active = true;
    /* The old master is Attached now: gone, or at best inactive. */
    if (strcmp(info.master, uuid_of(to)) != 0 && keel_uuid_valid(info.master)) {
        struct keel_pool_domain *m = find(&info, info.master);

        keel_strlcpy(old, info.master, sizeof(old));
        if (m != NULL)
            m->active = false;
    }
    snprintf(ver, sizeof(ver), "%" PRIu64, info.master_version + 1);
    {
        const char *kv[] = { "pool", info.uuid, "domain", uuid_of(to), "from",
                             old[0] ? old : KEEL_BLANK_UUID, "version", ver, NULL };

        if (journal_begin(j, "pool.master", kv, &slot, err) != 0 ||
            do_move(NULL, to, &info, info.master_version + 1, err) != 0 ||
            journal_end(j, slot, err) != 0)
            return keel_error_prefix(err, "reconstructing the master of pool %s on %s",
                                     info.uuid, uuid_of(to));
    }
    return 0;
}

int keel_pool_destroy(struct keel_sd *master, struct keel_error *err)
{
    struct keel_pool_info info;

    if (keel_pool_info(master, &info, err) != 0)
        return -1;
    if (info.ndomains > 1 || (info.ndomains == 1 && find(&info, uuid_of(master)) == NULL))
        return keel_error_set(err, KEEL_E_BUSY, 0, "pool %s still has %zu other domain(s): detach "
                              "them first", info.uuid, info.ndomains - 1);
    {
        const char *kv[] = { KEEL_SDK_POOL_UUID, "", KEEL_SDK_ROLE, "Regular",
                             KEEL_SDK_MASTER_VERSION, "0", NULL };

        return update(master, kv, err);
    }
}

int keel_pool_spm_started(struct keel_sd *master, uint64_t host_id, uint64_t lver,
                          struct keel_error *err)
{
    struct keel_pool_info info;
    char id[32], lv[32];

    if (keel_pool_info(master, &info, err) != 0)
        return -1;
    snprintf(id, sizeof(id), "%" PRIu64, host_id);
    snprintf(lv, sizeof(lv), "%" PRIu64, lver);
    {
        const char *kv[] = { KEEL_SDK_POOL_SPM_ID, id, KEEL_SDK_POOL_SPM_LVER, lv, NULL };

        return update(master, kv, err);
    }
}

int keel_pool_recover_record(void *recovery, const struct keel_jrec *r, bool *rolled_back,
                             struct keel_error *err)
{
    struct keel_pool_recovery *rec = recovery;
    struct keel_pool_info info;
    char dom[64], from[64], ver[32];
    struct keel_sd *sd = NULL, *old = NULL;
    struct keel_error e2 = KEEL_ERROR_INIT;
    uint64_t version = 0;
    int rc;

    *rolled_back = false;
    if (keel_jrec_arg(r, "domain", dom, sizeof(dom)) == NULL || !keel_uuid_valid(dom))
        return keel_error_set(err, KEEL_E_CORRUPT, 0, "%s record without its domain", r->op);
    if (strcmp(r->op, "pool.master") == 0) {
        /* Journalled on the new master: finish by demoting the old one. */
        if (keel_jrec_arg(r, "from", from, sizeof(from)) == NULL || !keel_uuid_valid(from) ||
            keel_jrec_arg(r, "version", ver, sizeof(ver)) == NULL ||
            keel_parse_u64(ver, &version) != 0)
            return keel_error_set(err, KEEL_E_CORRUPT, 0, "pool.master record without from and "
                                  "version");
        if (strcmp(from, KEEL_BLANK_UUID) == 0)
            return 0;
        old = rec->open(rec->opaque, rec->fence, from, &e2);
        if (old == NULL) /* the old master is gone: nothing to demote */
            return 0;
        if (keel_pool_info(old, &info, err) == 0 && info.master_version < version)
            rc = do_move(old, rec->master, &info, version, err);
        else
            rc = 0;
        rec->close(rec->opaque, old);
        return rc;
    }
    if (keel_pool_info(rec->master, &info, err) != 0)
        return -1;
    sd = rec->open(rec->opaque, rec->fence, dom, &e2);
    if (strcmp(r->op, "pool.attach") == 0) {
        if (sd == NULL)
            return keel_error_copy(err, &e2); /* stays open until the domain is back */
        rc = do_attach(rec->master, &info, sd, err);
    } else if (strcmp(r->op, "pool.detach") == 0) {
        rc = do_detach(rec->master, &info, dom, sd, err);
    } else {
        rc = keel_error_set(err, KEEL_E_UNSUPPORTED, 0, "unknown operation %s", r->op);
    }
    if (sd != NULL)
        rec->close(rec->opaque, sd);
    return rc;
}

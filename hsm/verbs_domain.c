/*
 * keeld's StorageDomain.* methods (api.json).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strutil.h"
#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/storage.h"
#include "io/url.h"

#define MOD "hsm.domain"

static int info_result(struct keel_hsm *h, const char *uuid, json_t **result,
                       struct keel_error *err)
{
    struct keel_hsm_dom *d;

    if (keel_hsm_dom_get(h, uuid, &d, err) != 0)
        return -1;
    *result = keel_hsm_dom_info_json(d, err);
    keel_hsm_dom_put(h, d);
    return *result ? 0 : -1;
}

int keel_hsm_storage_domain_create(struct keel_hsm_call *call,
                                   const struct keel_api_storage_domain_create_params *p,
                                   json_t **result, struct keel_error *err)
{
    struct keel_sd_create c = { .uuid = p->uuid, .name = p->name };
    struct keel_sd *sd = NULL;
    char uuid[KEEL_UUID_LEN + 1];
    int rc;

    c.type = strcmp(p->type, "nfs") == 0       ? KEEL_SD_TYPE_NFS
             : strcmp(p->type, "posixfs") == 0 ? KEEL_SD_TYPE_POSIXFS
                                               : KEEL_SD_TYPE_ISCSI;
    c.klass = !p->class || strcmp(p->class, "data") == 0 ? KEEL_SD_CLASS_DATA
              : strcmp(p->class, "iso") == 0            ? KEEL_SD_CLASS_ISO
                                                        : KEEL_SD_CLASS_BACKUP;
    if (c.type != KEEL_SD_TYPE_ISCSI) {
        struct keel_fs *fs;
        struct keel_hsm_pin *pin = NULL;
        char remote[KEEL_URL_MAX] = "";

        if (p->connection == NULL || p->n_luns > 0)
            return keel_error_set(err, KEEL_E_INVAL, 0, "a %s domain is made on a connection "
                                  "(param connection), not on LUNs", p->type);
        if (keel_hsm_storage_fs(call->hsm, p->connection, &fs, remote, sizeof(remote), &pin,
                                err) != 0)
            return -1;
        c.remote_path = remote;
        rc = keel_sd_create_file(fs, &c, &sd, err);
        if (rc == 0) {
            keel_strlcpy(uuid, keel_sd_info(sd)->uuid, sizeof(uuid));
            keel_sd_close(sd);
        }
        keel_hsm_storage_unpin(call->hsm, pin);
    } else {
        struct keel_blockdev **devs;
        struct keel_hsm_pin **pins;
        char **guids;

        if (p->n_luns == 0 || p->connection != NULL)
            return keel_error_set(err, KEEL_E_INVAL, 0, "an iscsi domain is made on LUNs "
                                  "(param luns), not on a connection");
        devs = calloc(p->n_luns, sizeof(*devs));
        pins = calloc(p->n_luns, sizeof(*pins));
        guids = calloc(p->n_luns + 1, sizeof(*guids));
        rc = devs && pins && guids ? 0 : keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
        for (size_t i = 0; rc == 0 && i < p->n_luns; i++) {
            guids[i] = calloc(1, 256);
            if (guids[i] == NULL)
                rc = keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
            else
                rc = keel_hsm_storage_lun(call->hsm, p->luns[i], &devs[i], guids[i], 256,
                                          &pins[i], err);
            for (size_t k = 0; rc == 0 && k < i; k++)
                if (devs[k] == devs[i])
                    rc = keel_error_set(err, KEEL_E_INVAL, 0, "LUN %s: named twice", p->luns[i]);
        }
        if (rc == 0) {
            c.pv_guids = (const char *const *)guids;
            rc = keel_sd_create_block(devs, p->n_luns, &c, &sd, err);
        }
        if (rc == 0) {
            keel_strlcpy(uuid, keel_sd_info(sd)->uuid, sizeof(uuid));
            keel_sd_close(sd);
        }
        for (size_t i = 0; pins && i < p->n_luns; i++)
            keel_hsm_storage_unpin(call->hsm, pins[i]);
        for (size_t i = 0; guids && i < p->n_luns; i++)
            free(guids[i]);
        free(guids);
        free(pins);
        free(devs);
    }
    if (rc != 0)
        return -1;
    keel_log(KEEL_LOG_INFO, MOD, "created storage domain %s (%s, \"%s\") for %s", uuid,
             p->type, p->name, call->peer);
    return info_result(call->hsm, uuid, result, err);
}

int keel_hsm_storage_domain_get_info(struct keel_hsm_call *call,
                                     const struct keel_api_storage_domain_get_info_params *p,
                                     json_t **result, struct keel_error *err)
{
    return info_result(call->hsm, p->sd, result, err);
}

int keel_hsm_storage_domain_list(struct keel_hsm_call *call,
                                 const struct keel_api_storage_domain_list_params *p,
                                 json_t **result, struct keel_error *err)
{
    (void)p;
    (void)err;
    *result = json_pack("{s:o}", "domains", keel_hsm_storage_domains(call->hsm));
    return 0;
}

int keel_hsm_storage_domain_extend(struct keel_hsm_call *call,
                                   const struct keel_api_storage_domain_extend_params *p,
                                   json_t **result, struct keel_error *err)
{
    struct keel_hsm_dom *d;
    struct keel_blockdev *dev;
    struct keel_hsm_pin *pin = NULL;
    char guid[256];
    int rc;

    if (keel_hsm_storage_lun(call->hsm, p->lun, &dev, guid, sizeof(guid), &pin, err) != 0)
        return -1;
    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0) {
        keel_hsm_storage_unpin(call->hsm, pin);
        return -1;
    }
    rc = keel_hsm_dom_may_change(d, err);
    if (rc == 0)
        rc = keel_sd_extend(d->sd, dev, guid, err);
    keel_hsm_dom_put(call->hsm, d);
    keel_hsm_storage_unpin(call->hsm, pin);
    if (rc != 0)
        return -1;
    /*
     * The cached domain holds the new LUN (keel_sd_extend added it); the
     * cache finds the VG's LUNs again by itself when it is re-read after a
     * change with more PVs than it knew (storage.c, refresh).
     */
    keel_log(KEEL_LOG_INFO, MOD, "storage domain %s: extended with LUN %s", p->sd, guid);
    return info_result(call->hsm, p->sd, result, err);
}

int keel_hsm_storage_domain_format(struct keel_hsm_call *call,
                                   const struct keel_api_storage_domain_format_params *p,
                                   json_t **result, struct keel_error *err)
{
    struct keel_hsm_dom *d;
    struct keel_sd *sd;
    int rc;

    (void)result;
    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0)
        return -1;
    if (keel_hsm_dom_may_change(d, err) != 0) {
        keel_hsm_dom_put(call->hsm, d);
        return -1;
    }
    /*
     * Formatted while held, so that no other verb or the monitor uses it
     * meanwhile; keel_sd_format closes sd whatever happens, and the cache
     * entry goes too.
     */
    sd = d->sd;
    d->sd = NULL;
    rc = keel_sd_format(sd, err);
    keel_hsm_dom_forget(call->hsm, d);
    if (rc != 0)
        return -1;
    keel_log(KEEL_LOG_INFO, MOD, "formatted storage domain %s for %s", p->sd, call->peer);
    return 0;
}

/*
 * keeld's Volume.* and Image.* methods (api.json).  Changes go through
 * keel_hsm_writer_get() (pool.h): a domain of a pool is changed only by its
 * SPM, on the SPM's fenced and journalled connection.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "hsm/rpc.h"
#include "hsm/storage.h"
#include "volume/image.h"
#include "volume/vol.h"

#define MOD "hsm.volume"

static const char *status_name(enum keel_vol_status s)
{
    switch (s) {
    case KEEL_VOL_OK: return "ok";
    case KEEL_VOL_STATUS_ILLEGAL: return "illegal";
    case KEEL_VOL_LEFTOVER: return "leftover";
    case KEEL_VOL_REMOVED: return "removed";
    default: return "bad";
    }
}

static json_t *vol_json(const struct keel_vol_entry *e)
{
    /* Text from storage (the problem names what was read, the description is the admin's). */
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "uuid", e->uuid, "image", e->image,
                          "status", status_name(e->status), "problem", keel_rpc_string(e->problem),
                          "size",
                          (json_int_t)e->size, "allocated", (json_int_t)e->allocated);

    if (o != NULL && e->has_md) {
        json_object_set_new(o, "parent", keel_rpc_string(e->md.parent));
        json_object_set_new(o, "format", json_string(keel_vol_format_name(e->md.format)));
        json_object_set_new(o, "type", json_string(keel_vol_type_name(e->md.type)));
        json_object_set_new(o, "role", json_string(keel_vol_role_name(e->md.role)));
        json_object_set_new(o, "legality", json_string(keel_vol_legality_name(e->md.legality)));
        json_object_set_new(o, "capacity", json_integer((json_int_t)e->md.capacity));
        json_object_set_new(o, "description", keel_rpc_string(e->md.description));
        json_object_set_new(o, "generation", json_integer(e->md.gen));
    }
    return o;
}

static int vol_result(struct keel_sd *sd, const char *vol, json_t **result,
                      struct keel_error *err)
{
    struct keel_vol_entry e;

    if (keel_vol_info(sd, vol, &e, err) != 0)
        return -1;
    *result = vol_json(&e);
    return *result ? 0 : keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
}

int keel_hsm_volume_create(struct keel_hsm_call *call,
                           const struct keel_api_volume_create_params *p, json_t **result,
                           struct keel_error *err)
{
    struct keel_vol_create c = {
        .image = p->image, .uuid = p->uuid, .capacity = p->capacity, .parent = p->parent,
        .description = p->description, .initial_size = p->has_initial_size ? p->initial_size : 0,
        .illegal = p->has_illegal && p->illegal, .shared = p->has_shared && p->shared,
        .format = strcmp(p->format, "raw") == 0 ? KEEL_VOL_RAW : KEEL_VOL_COW,
        .type = strcmp(p->type, "preallocated") == 0 ? KEEL_VOL_PREALLOCATED : KEEL_VOL_SPARSE,
    };
    struct keel_hsm_writer w;
    char uuid[KEEL_UUID_LEN + 1];
    int rc;

    if (keel_hsm_writer_get(call->hsm, p->sd, &w, err) != 0)
        return -1;
    rc = keel_vol_create(w.sd, &c, uuid, err);
    if (rc == 0) {
        keel_log(KEEL_LOG_INFO, MOD, "storage domain %s: created volume %s of image %s", p->sd,
                 uuid, p->image);
        rc = vol_result(w.sd, uuid, result, err);
    }
    keel_hsm_writer_put(call->hsm, &w);
    return rc;
}

int keel_hsm_volume_get_info(struct keel_hsm_call *call,
                             const struct keel_api_volume_get_info_params *p, json_t **result,
                             struct keel_error *err)
{
    struct keel_hsm_dom *d;
    int rc;

    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0)
        return -1;
    rc = vol_result(d->sd, p->volume, result, err);
    keel_hsm_dom_put(call->hsm, d);
    return rc;
}

int keel_hsm_volume_list(struct keel_hsm_call *call, const struct keel_api_volume_list_params *p,
                         json_t **result, struct keel_error *err)
{
    struct keel_hsm_dom *d;
    struct keel_vol_list l;
    json_t *a;

    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0)
        return -1;
    if (keel_vol_list(d->sd, &l, err) != 0) {
        keel_hsm_dom_put(call->hsm, d);
        return -1;
    }
    keel_hsm_dom_put(call->hsm, d);
    a = json_array();
    for (size_t i = 0; a != NULL && i < l.n; i++)
        json_array_append_new(a, vol_json(&l.v[i]));
    keel_vol_list_release(&l);
    *result = json_pack("{s:o}", "volumes", a);
    return 0;
}

int keel_hsm_volume_delete(struct keel_hsm_call *call,
                           const struct keel_api_volume_delete_params *p, json_t **result,
                           struct keel_error *err)
{
    struct keel_hsm_writer w;
    int rc;

    (void)result;
    if (keel_hsm_writer_get(call->hsm, p->sd, &w, err) != 0)
        return -1;
    rc = keel_vol_delete(w.sd, p->volume, p->has_force && p->force, err);
    keel_hsm_writer_put(call->hsm, &w);
    if (rc == 0)
        keel_log(KEEL_LOG_INFO, MOD, "storage domain %s: deleted volume %s", p->sd, p->volume);
    return rc;
}

int keel_hsm_volume_extend(struct keel_hsm_call *call,
                           const struct keel_api_volume_extend_params *p, json_t **result,
                           struct keel_error *err)
{
    struct keel_hsm_writer w;
    int rc;

    if (keel_hsm_writer_get(call->hsm, p->sd, &w, err) != 0)
        return -1;
    rc = keel_vol_extend(w.sd, p->volume, p->capacity, err);
    if (rc == 0)
        rc = vol_result(w.sd, p->volume, result, err);
    keel_hsm_writer_put(call->hsm, &w);
    return rc;
}

int keel_hsm_volume_set_legality(struct keel_hsm_call *call,
                                 const struct keel_api_volume_set_legality_params *p,
                                 json_t **result, struct keel_error *err)
{
    struct keel_hsm_writer w;
    int rc;

    if (keel_hsm_writer_get(call->hsm, p->sd, &w, err) != 0)
        return -1;
    rc = keel_vol_set_legality(w.sd, p->volume,
                               strcmp(p->legality, "LEGAL") == 0 ? KEEL_VOL_LEGAL
                                                                 : KEEL_VOL_ILLEGAL, err);
    if (rc == 0)
        rc = vol_result(w.sd, p->volume, result, err);
    keel_hsm_writer_put(call->hsm, &w);
    return rc;
}

int keel_hsm_image_list(struct keel_hsm_call *call, const struct keel_api_image_list_params *p,
                        json_t **result, struct keel_error *err)
{
    struct keel_hsm_dom *d;
    char **imgs = NULL;
    size_t n = 0;
    json_t *a;
    int rc;

    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0)
        return -1;
    rc = keel_image_list(d->sd, &imgs, &n, err);
    keel_hsm_dom_put(call->hsm, d);
    if (rc != 0)
        return -1;
    a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(imgs[i]));
    keel_image_list_free(imgs, n);
    *result = json_pack("{s:o}", "images", a);
    return 0;
}

int keel_hsm_image_get_chain(struct keel_hsm_call *call,
                             const struct keel_api_image_get_chain_params *p, json_t **result,
                             struct keel_error *err)
{
    struct keel_hsm_dom *d;
    struct keel_chain c;
    json_t *a;
    int rc;

    if (keel_hsm_dom_get(call->hsm, p->sd, &d, err) != 0)
        return -1;
    rc = keel_image_chain(d->sd, p->image, &c, err);
    keel_hsm_dom_put(call->hsm, d);
    if (rc != 0)
        return -1;
    a = json_array();
    for (size_t i = 0; a != NULL && i < c.n; i++)
        json_array_append_new(a, vol_json(&c.vols[i]));
    *result = json_pack("{s:s, s:b, s:o}", "image", c.image, "on_template", c.on_template,
                        "volumes", a);
    keel_chain_release(&c);
    return 0;
}

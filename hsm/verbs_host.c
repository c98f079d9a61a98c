/*
 * keeld's Host.* and StorageServer.* methods (api.json).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "hsm/api_gen.h"
#include "hsm/hsm.h"
#include "hsm/pool.h"
#include "hsm/storage.h"
#include "io/opts.h"

int keel_hsm_host_ping(struct keel_hsm_call *call, const struct keel_api_host_ping_params *p,
                       json_t **result, struct keel_error *err)
{
    (void)call;
    (void)p;
    (void)err;
    *result = json_object();
    return 0;
}

int keel_hsm_host_get_capabilities(struct keel_hsm_call *call,
                                   const struct keel_api_host_get_capabilities_params *p,
                                   json_t **result, struct keel_error *err)
{
    const struct keel_hsm_config *c = keel_hsm_cfg(call->hsm);
    const struct keel_io_opts *io = keel_hsm_io_opts(call->hsm);
    const struct keel_api_method *m;
    json_t *methods = json_array();
    char host[256] = "";
    size_t n;

    (void)p;
    gethostname(host, sizeof(host) - 1);
    m = keel_api_methods(&n);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(methods, json_string(m[i].name));
    *result = json_pack("{s:i, s:s, s:s, s:i, s:s, s:[sss], s:{s:[ss]}, s:o}", "host_id",
                        (int)c->host_id, "hostname", host, "version", KEEL_VERSION,
                        "api_version", KEEL_API_VERSION, "initiator", io->initiator_iqn,
                        "storage_types", "iscsi", "nfs", "posix", "copy", "formats", "raw",
                        "cow", "methods", methods);
    if (*result == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    return 0;
}

int keel_hsm_host_get_stats(struct keel_hsm_call *call,
                            const struct keel_api_host_get_stats_params *p, json_t **result,
                            struct keel_error *err)
{
    struct sysinfo si;
    double scale = 1.0 / (1 << SI_LOAD_SHIFT);

    (void)p;
    if (sysinfo(&si) != 0)
        return keel_error_errno(err, KEEL_E_IO, errno, "sysinfo");
    *result = json_pack("{s:I, s:[fff], s:I, s:I, s:o, s:o}", "uptime_s",
                        (json_int_t)si.uptime, "load", si.loads[0] * scale,
                        si.loads[1] * scale, si.loads[2] * scale, "mem_total",
                        (json_int_t)si.totalram * si.mem_unit, "mem_available",
                        (json_int_t)(si.freeram + si.bufferram) * si.mem_unit, "domains",
                        keel_hsm_storage_stats(call->hsm), "pool",
                        keel_hsm_pool_stats(call->hsm));
    if (*result == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    return 0;
}

int keel_hsm_host_get_device_list(struct keel_hsm_call *call,
                                  const struct keel_api_host_get_device_list_params *p,
                                  json_t **result, struct keel_error *err)
{
    (void)err;
    *result = json_pack("{s:o}", "devices", keel_hsm_storage_devices(call->hsm, p->connection));
    return 0;
}

int keel_hsm_host_subscribe(struct keel_hsm_call *call,
                            const struct keel_api_host_subscribe_params *p, json_t **result,
                            struct keel_error *err)
{
    json_t *a = json_array();

    (void)p;
    (void)err;
    keel_hsm_conn_subscribe(call->conn);
    for (size_t i = 0; keel_api_events[i] != NULL; i++)
        json_array_append_new(a, json_string(keel_api_events[i]));
    *result = json_pack("{s:o}", "events", a);
    return 0;
}

int keel_hsm_host_dump_log(struct keel_hsm_call *call,
                           const struct keel_api_host_dump_log_params *p, json_t **result,
                           struct keel_error *err)
{
    (void)err;
    *result = json_pack("{s:o}", "lines",
                        keel_hsm_log_lines(call->hsm, p->has_lines ? (size_t)p->lines : 200));
    return 0;
}

int keel_hsm_storage_server_connect(struct keel_hsm_call *call,
                                    const struct keel_api_storage_server_connect_params *p,
                                    json_t **result, struct keel_error *err)
{
    (void)err;
    *result = json_pack("{s:o}", "connections", keel_hsm_storage_connect(call->hsm,
                                                                          p->connections));
    return 0;
}

int keel_hsm_storage_server_disconnect(struct keel_hsm_call *call,
                                       const struct keel_api_storage_server_disconnect_params *p,
                                       json_t **result, struct keel_error *err)
{
    (void)err;
    *result = json_pack("{s:o}", "connections",
                        keel_hsm_storage_disconnect(call->hsm, p->ids, p->n_ids));
    return 0;
}

int keel_hsm_storage_server_list(struct keel_hsm_call *call,
                                 const struct keel_api_storage_server_list_params *p,
                                 json_t **result, struct keel_error *err)
{
    (void)p;
    (void)err;
    *result = json_pack("{s:o}", "connections", keel_hsm_storage_list(call->hsm));
    return 0;
}

/*
 * keeld's jobs; see jobs.h.  The registry lock guards the list and every
 * job's state fields; a job's thread takes it only to report progress and
 * its end.  A job is freed only by Job.delete (finished) or by
 * keel_hsm_jobs_free (after joining its thread).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/strutil.h"
#include "hsm/hsm.h"
#include "hsm/jobs.h"
#include "hsm/rpc.h"

#define MOD "hsm.jobs"

enum state { RUNNING, DONE, FAILED, CANCELLED };

static const char *const state_names[] = { "running", "done", "failed", "cancelled" };

struct keel_hsm_job {
    struct keel_hsm_jobs *js;
    char id[KEEL_UUID_LEN + 1];
    char type[32];
    json_t *desc;
    keel_hsm_job_fn *run;
    void *opaque;
    void (*free_fn)(void *);
    pthread_t thread;
    int cancel;                     /* set with __atomic_store_n: read by the work */
    /* registry lock */
    enum state state;
    uint64_t done, total;
    int percent;                    /* the last Job.progress sent */
    struct keel_error err;
    time_t started, ended;
    struct keel_hsm_job *next;
};

struct keel_hsm_jobs {
    struct keel_hsm *h;
    pthread_mutex_t lock;
    struct keel_hsm_job *jobs;
    size_t n;
};

int keel_hsm_jobs_new(struct keel_hsm *h, struct keel_hsm_jobs **ret, struct keel_error *err)
{
    struct keel_hsm_jobs *js = calloc(1, sizeof(*js));

    if (js == NULL)
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    js->h = h;
    pthread_mutex_init(&js->lock, NULL);
    *ret = js;
    return 0;
}

static void job_free(struct keel_hsm_job *j)
{
    json_decref(j->desc);
    free(j);
}

void keel_hsm_jobs_free(struct keel_hsm_jobs *js)
{
    if (js == NULL)
        return;
    pthread_mutex_lock(&js->lock);
    for (struct keel_hsm_job *j = js->jobs; j != NULL; j = j->next)
        __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&js->lock);
    /* The threads end on their own (cancelled); nothing else frees a job now. */
    while (js->jobs != NULL) {
        struct keel_hsm_job *j = js->jobs;

        js->jobs = j->next;
        pthread_join(j->thread, NULL);
        job_free(j);
    }
    pthread_mutex_destroy(&js->lock);
    free(js);
}

static struct keel_hsm_job *find(struct keel_hsm_jobs *js, const char *id)
{
    for (struct keel_hsm_job *j = js->jobs; j != NULL; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void *job_main(void *arg)
{
    struct keel_hsm_job *j = arg;
    struct keel_hsm_jobs *js = j->js;
    struct keel_error err = KEEL_ERROR_INIT;
    int rc = j->run(j, j->opaque, &err);
    enum state st = rc == 0 ? DONE : err.code == KEEL_E_CANCELLED ? CANCELLED : FAILED;

    if (j->free_fn != NULL)
        j->free_fn(j->opaque);
    if (st == DONE)
        keel_log(KEEL_LOG_INFO, MOD, "job %s (%s): done", j->id, j->type);
    else
        keel_log(KEEL_LOG_WARN, MOD, "job %s (%s): %s: %s", j->id, j->type, state_names[st],
                 err.msg);
    pthread_mutex_lock(&js->lock);
    j->state = st;
    j->err = err;
    j->ended = time(NULL);
    pthread_mutex_unlock(&js->lock);
    keel_hsm_emit(js->h, "Job.done", json_pack("{s:s, s:s, s:s, s:i, s:o}", "job", j->id, "type",
                                              j->type, "state", state_names[st], "code",
                                              rc == 0 ? 0 : (int)err.code, "error",
                                              keel_rpc_string(rc == 0 ? "" : err.msg)));
    return NULL;
}

int keel_hsm_job_start(struct keel_hsm *h, const char *id, const char *type, json_t *desc,
                       keel_hsm_job_fn *run, void *opaque, void (*free_fn)(void *),
                       char id_out[KEEL_UUID_LEN + 1], struct keel_error *err)
{
    struct keel_hsm_jobs *js = keel_hsm_jobs(h);
    struct keel_hsm_job *j = calloc(1, sizeof(*j));
    int rc;

    if (j == NULL) {
        json_decref(desc);
        if (free_fn != NULL)
            free_fn(opaque);
        return keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
    }
    j->js = js;
    if (id != NULL)
        keel_strlcpy(j->id, id, sizeof(j->id));
    else
        keel_uuid_new(j->id);
    keel_strlcpy(j->type, type, sizeof(j->type));
    j->desc = desc;
    j->run = run;
    j->opaque = opaque;
    j->free_fn = free_fn;
    j->percent = -1;
    j->started = time(NULL);
    pthread_mutex_lock(&js->lock);
    if (find(js, j->id) != NULL)
        rc = keel_error_set(err, KEEL_E_EXIST, 0, "job %s: exists already", j->id);
    else if (js->n >= KEEL_HSM_MAX_JOBS)
        rc = keel_error_set(err, KEEL_E_BUSY, 0, "%d jobs are kept: delete finished ones first",
                            KEEL_HSM_MAX_JOBS);
    else if ((rc = pthread_create(&j->thread, NULL, job_main, j)) != 0)
        rc = keel_error_errno(err, KEEL_E_NOMEM, rc, "job %s: thread", j->id);
    if (rc == 0) {
        j->next = js->jobs;
        js->jobs = j;
        js->n++;
        keel_strlcpy(id_out, j->id, KEEL_UUID_LEN + 1);
    }
    pthread_mutex_unlock(&js->lock);
    if (rc != 0) {
        if (free_fn != NULL)
            free_fn(opaque);
        job_free(j);
        return -1;
    }
    keel_log(KEEL_LOG_INFO, MOD, "job %s (%s): started", j->id, type);
    return 0;
}

void keel_hsm_job_progress(struct keel_hsm_job *j, uint64_t done, uint64_t total)
{
    struct keel_hsm_jobs *js = j->js;
    int pct = total ? (int)(done * 100 / total) : 0;
    bool send;

    pthread_mutex_lock(&js->lock);
    j->done = done;
    j->total = total;
    send = pct != j->percent;
    j->percent = pct;
    pthread_mutex_unlock(&js->lock);
    if (send)
        keel_hsm_emit(js->h, "Job.progress", json_pack("{s:s, s:I, s:I, s:i}", "job", j->id,
                                                       "done", (json_int_t)done, "total",
                                                       (json_int_t)total, "percent", pct));
}

const int *keel_hsm_job_cancel_flag(struct keel_hsm_job *j)
{
    return &j->cancel;
}

const char *keel_hsm_job_id(const struct keel_hsm_job *j)
{
    return j->id;
}

/* registry lock held */
static json_t *job_json(const struct keel_hsm_job *j)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:I, s:O}", "job", j->id, "type",
                          j->type, "state", state_names[j->state], "done", (json_int_t)j->done,
                          "total", (json_int_t)j->total, "percent",
                          j->percent < 0 ? 0 : j->percent, "started", (json_int_t)j->started,
                          "description", j->desc ? j->desc : json_null());

    if (o != NULL && j->state != RUNNING)
        json_object_set_new(o, "ended", json_integer((json_int_t)j->ended));
    if (o != NULL && (j->state == FAILED || j->state == CANCELLED)) {
        json_object_set_new(o, "code", json_integer(j->err.code));
        json_object_set_new(o, "error", keel_rpc_string(j->err.msg));
    }
    return o;
}

json_t *keel_hsm_jobs_list(struct keel_hsm *h)
{
    struct keel_hsm_jobs *js = keel_hsm_jobs(h);
    json_t *a = json_array();

    pthread_mutex_lock(&js->lock);
    for (struct keel_hsm_job *j = js->jobs; a != NULL && j != NULL; j = j->next)
        json_array_append_new(a, job_json(j));
    pthread_mutex_unlock(&js->lock);
    return a;
}

int keel_hsm_jobs_status(struct keel_hsm *h, const char *id, json_t **out,
                        struct keel_error *err)
{
    struct keel_hsm_jobs *js = keel_hsm_jobs(h);
    struct keel_hsm_job *j;

    pthread_mutex_lock(&js->lock);
    j = find(js, id);
    *out = j ? job_json(j) : NULL;
    pthread_mutex_unlock(&js->lock);
    if (j == NULL)
        return keel_error_set(err, KEEL_E_NOENT, 0, "job %s: no such job", id);
    return *out ? 0 : keel_error_set(err, KEEL_E_NOMEM, 0, "out of memory");
}

int keel_hsm_jobs_cancel(struct keel_hsm *h, const char *id, struct keel_error *err)
{
    struct keel_hsm_jobs *js = keel_hsm_jobs(h);
    struct keel_hsm_job *j;
    int rc = 0;

    pthread_mutex_lock(&js->lock);
    j = find(js, id);
    if (j == NULL)
        rc = keel_error_set(err, KEEL_E_NOENT, 0, "job %s: no such job", id);
    else if (j->state != RUNNING)
        rc = keel_error_set(err, KEEL_E_INVAL, 0, "job %s: %s, not running", id,
                            state_names[j->state]);
    else
        __atomic_store_n(&j->cancel, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&js->lock);
    if (rc == 0)
        keel_log(KEEL_LOG_INFO, MOD, "job %s: cancel asked", id);
    return rc;
}

int keel_hsm_jobs_delete(struct keel_hsm *h, const char *id, struct keel_error *err)
{
    struct keel_hsm_jobs *js = keel_hsm_jobs(h);
    struct keel_hsm_job **pp, *j = NULL;
    int rc = 0;

    pthread_mutex_lock(&js->lock);
    for (pp = &js->jobs; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            j = *pp;
            break;
        }
    if (j == NULL) {
        rc = keel_error_set(err, KEEL_E_NOENT, 0, "job %s: no such job", id);
    } else if (j->state == RUNNING) {
        rc = keel_error_set(err, KEEL_E_BUSY, 0, "job %s: running: cancel it first", id);
    } else {
        *pp = j->next;
        js->n--;
    }
    pthread_mutex_unlock(&js->lock);
    if (rc != 0)
        return rc;
    /* Its thread has set the end; it only returns from here on. */
    pthread_join(j->thread, NULL);
    job_free(j);
    return 0;
}

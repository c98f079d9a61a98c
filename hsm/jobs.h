/*
 * keeld's jobs (jobs.c): data work that runs in a thread of its own, with
 * an id, progress, cancel and a final state -- Data.copy and the like.
 *
 *   Data.copy --start--> running --run returns 0--> done
 *                          |   \--run fails--> failed (error code, message)
 *                          \--Job.cancel, run stops--> cancelled
 *   done / failed / cancelled --Job.delete--> (gone)
 *
 * Progress goes to subscribed clients as Job.progress events (at most one
 * per whole percent) and the end as one Job.done event.  Finished jobs
 * stay listed until deleted (the engine reads their end), up to
 * KEEL_HSM_MAX_JOBS jobs in all.  keeld's stop cancels running jobs and
 * waits for them.
 */
#ifndef KEEL_HSM_JOBS_H
#define KEEL_HSM_JOBS_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "common/uuid.h"

#define KEEL_HSM_MAX_JOBS 256

struct keel_hsm;
struct keel_hsm_job;
struct keel_hsm_jobs;

int keel_hsm_jobs_new(struct keel_hsm *h, struct keel_hsm_jobs **ret, struct keel_error *err);
/* Cancel every running job, wait for them, free. */
void keel_hsm_jobs_free(struct keel_hsm_jobs *js);
struct keel_hsm_jobs *keel_hsm_jobs(struct keel_hsm *h);

/* The work of a job: 0, or -1 with err (KEEL_E_CANCELLED when it obeyed a cancel). */
typedef int keel_hsm_job_fn(struct keel_hsm_job *j, void *opaque, struct keel_error *err);

/*
 * Start a job of `type` (e.g. "copy") running run(j, opaque) in a thread;
 * free_fn(opaque) after it ends.  id: the caller's job UUID, or NULL for
 * a new one (written to id_out).  desc (stolen): what Job.getStatus shows
 * of the job's arguments.  On failure free_fn(opaque) is called too.
 */
int keel_hsm_job_start(struct keel_hsm *h, const char *id, const char *type, json_t *desc,
                       keel_hsm_job_fn *run, void *opaque, void (*free_fn)(void *),
                       char id_out[KEEL_UUID_LEN + 1], struct keel_error *err);

/* From the job's thread: done of total units (bytes) so far. */
void keel_hsm_job_progress(struct keel_hsm_job *j, uint64_t done, uint64_t total);
/* The flag a cancel sets (for keel_copy_opts.cancel). */
const int *keel_hsm_job_cancel_flag(struct keel_hsm_job *j);
const char *keel_hsm_job_id(const struct keel_hsm_job *j);

/* Job.list, Job.getStatus, Job.cancel, Job.delete. */
json_t *keel_hsm_jobs_list(struct keel_hsm *h);
int keel_hsm_jobs_status(struct keel_hsm *h, const char *id, json_t **out,
                        struct keel_error *err);
int keel_hsm_jobs_cancel(struct keel_hsm *h, const char *id, struct keel_error *err);
int keel_hsm_jobs_delete(struct keel_hsm *h, const char *id, struct keel_error *err);

#endif /* KEEL_HSM_JOBS_H */

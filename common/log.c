/*
 * Logging; see log.h.  The configuration below is written only from main()
 * before threads start, so it needs no lock; the sink itself serialises
 * output with a mutex so lines from different threads do not interleave.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define KEEL_LOG_MAX_DEBUG 32
#define KEEL_LOG_MODULE_MAX 32

static const char *log_prog = "keel";
static enum keel_log_level log_level = KEEL_LOG_INFO;
static keel_log_sink_fn *log_sink;
static void *log_sink_opaque;
static char log_debug[KEEL_LOG_MAX_DEBUG][KEEL_LOG_MODULE_MAX];
static int log_ndebug;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void keel_log_set_program(const char *prog)
{
    log_prog = prog;
}

void keel_log_set_level(enum keel_log_level level)
{
    log_level = level;
}

void keel_log_set_sink(keel_log_sink_fn *fn, void *opaque)
{
    log_sink = fn;
    log_sink_opaque = opaque;
}

int keel_log_enable_debug(const char *spec)
{
    const char *eq = strchr(spec, '=');
    size_t len = eq ? (size_t)(eq - spec) : strlen(spec);
    bool on = true;

    if (len == 0 || len >= KEEL_LOG_MODULE_MAX)
        return -1;
    if (eq != NULL) {
        if (strcmp(eq + 1, "1") == 0)
            on = true;
        else if (strcmp(eq + 1, "0") == 0)
            on = false;
        else
            return -1;
    }
    for (int i = 0; i < log_ndebug; i++) {
        if (strlen(log_debug[i]) == len && memcmp(log_debug[i], spec, len) == 0) {
            if (!on) {
                memmove(&log_debug[i], &log_debug[i + 1],
                        (size_t)(log_ndebug - i - 1) * sizeof(log_debug[0]));
                log_ndebug--;
            }
            return 0;
        }
    }
    if (!on)
        return 0;
    if (log_ndebug == KEEL_LOG_MAX_DEBUG)
        return -1;
    memcpy(log_debug[log_ndebug], spec, len);
    log_debug[log_ndebug][len] = '\0';
    log_ndebug++;
    return 0;
}

bool keel_debug_enabled(const char *module)
{
    size_t mlen;

    if (log_ndebug == 0)
        return false;
    mlen = strlen(module);
    for (int i = 0; i < log_ndebug; i++) {
        const char *d = log_debug[i];
        size_t dlen = strlen(d);

        if (strcmp(d, "all") == 0)
            return true;
        /* "io" matches "io" and "io.*", not "iox". */
        if (mlen >= dlen && memcmp(module, d, dlen) == 0 &&
            (module[dlen] == '\0' || module[dlen] == '.'))
            return true;
    }
    return false;
}

const char *keel_log_level_name(enum keel_log_level level)
{
    switch (level) {
    case KEEL_LOG_DEBUG: return "debug";
    case KEEL_LOG_INFO: return "info";
    case KEEL_LOG_WARN: return "warning";
    case KEEL_LOG_ERROR: return "error";
    }
    return "?";
}

void keel_log(enum keel_log_level level, const char *module, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level < log_level && !(level == KEEL_LOG_DEBUG && keel_debug_enabled(module)))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    if (log_sink != NULL)
        log_sink(log_sink_opaque, level, module, msg);
    else
        fprintf(stderr, "%s: %s: %s: %s\n", log_prog, keel_log_level_name(level), module, msg);
    pthread_mutex_unlock(&log_lock);
}

/*
 * Logging.  Libraries (common/, io/, metadata/, volume/, spm/) only call
 * keel_debug(); daemons and tools log at their boundary with keel_log().
 *
 * Every call names its module ("io.iscsi", "hsm.monitor").  Debug output of
 * a module is switched on with keel_log_enable_debug("io.iscsi"), which is
 * what the daemons' `-D io.iscsi=1` does; "io" enables io.* and "all" every
 * module.
 *
 * The configuration is the one global of the log (STYLE.md rule 6): set it in
 * main() before starting threads.  keel_log() itself is thread-safe.
 */
#ifndef KEEL_COMMON_LOG_H
#define KEEL_COMMON_LOG_H

#include <stdbool.h>

enum keel_log_level {
    KEEL_LOG_DEBUG = 0,
    KEEL_LOG_INFO = 1,
    KEEL_LOG_WARN = 2,
    KEEL_LOG_ERROR = 3,
};

/*
 * Where messages go. The default sink writes
 * "<prog>: <level>: <module>: <message>\n" to stderr.
 */
typedef void keel_log_sink_fn(void *opaque, enum keel_log_level level, const char *module,
                              const char *msg);

/* Program name used by the default sink (borrowed; must outlive logging). */
void keel_log_set_program(const char *prog);

/* Messages below this level are dropped (default: INFO). */
void keel_log_set_level(enum keel_log_level level);

/* Replace the sink; NULL restores the default. */
void keel_log_set_sink(keel_log_sink_fn *fn, void *opaque);

/*
 * Enable debug messages for a module spec: "io.iscsi", "io", "all", optionally
 * with "=1" or "=0" appended (as in -D io.iscsi=1).  Returns -1 for a spec
 * that does not parse.
 */
int keel_log_enable_debug(const char *spec);

/* True when debug messages of this module are on. */
bool keel_debug_enabled(const char *module);

void keel_log(enum keel_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define keel_debug(module, ...)                                                            \
    do {                                                                                   \
        if (keel_debug_enabled(module))                                                    \
            keel_log(KEEL_LOG_DEBUG, module, __VA_ARGS__);                                 \
    } while (0)

const char *keel_log_level_name(enum keel_log_level level);

#endif /* KEEL_COMMON_LOG_H */

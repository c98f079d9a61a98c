/*
 * Running a helper program (mke2fs, ...) and waiting for it.  For the few
 * jobs Keel leaves to a standard tool because the result is a plain image
 * file that Keel then writes through io/ itself.
 */
#ifndef KEEL_COMMON_PROC_H
#define KEEL_COMMON_PROC_H

#include "common/error.h"

/*
 * Run argv[0] (looked up in PATH, /sbin and /usr/sbin) with argv, stdin
 * from /dev/null, stdout discarded, and wait.  Success is exit status 0;
 * otherwise err says "<program>: exit status N: <last line of stderr>" or
 * names the signal.  Not for programs that run long: no timeout.
 */
int keel_proc_run(const char *const argv[], struct keel_error *err);

#endif /* KEEL_COMMON_PROC_H */

/*
 * The real sanlock as the judge of Keel's lease areas: `sanlock direct
 * read_leader` and `dump` run without a daemon (sanlock-leases.md 10.1).
 * Each function asserts (check) on failure.
 */
#ifndef KEEL_TESTS_FUNCTIONAL_SANLOCK_JUDGE_H
#define KEEL_TESTS_FUNCTIONAL_SANLOCK_JUDGE_H

#include <stddef.h>

/* Run a command that must succeed; its stdout (caller frees). */
char *sanlock_judge_run(const char *const argv[]);

/* The value of the "name value" line in read_leader's output, into val[0..n). */
const char *sanlock_judge_field(const char *out, const char *name, char *val, size_t n);

/*
 * `sanlock direct read_leader KIND SPEC` (KIND "-s" for a delta lease
 * "LS:ID:PATH:OFFSET", "-r" for a resource "LS:RES:PATH:OFFSET"), which
 * must succeed ("read_leader done 0"): the value of field `name` (caller
 * frees).
 */
char *sanlock_judge_read_leader(const char *kind, const char *spec, const char *name);

#endif /* KEEL_TESTS_FUNCTIONAL_SANLOCK_JUDGE_H */

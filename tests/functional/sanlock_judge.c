/* The real sanlock as a judge; see sanlock_judge.h. */
#include "tests/functional/sanlock_judge.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/lab.h"

/* noinline: gcc 12 sees a dangling pointer through check's assertion macros. */
__attribute__((noinline)) char *sanlock_judge_run(const char *const argv[])
{
    struct keel_error err = KEEL_ERROR_INIT;
    char *out = NULL;

    ck_assert_msg(keel_lab_run_ok(argv, NULL, &out, &err) == 0, "%s", err.msg);
    return out;
}

const char *sanlock_judge_field(const char *out, const char *name, char *val, size_t n)
{
    char key[64];
    const char *p;

    snprintf(key, sizeof(key), "\n%s ", name);
    p = strstr(out, key);
    ck_assert_msg(p != NULL, "read_leader printed no %s:\n%s", name, out);
    p += strlen(key);
    snprintf(val, n, "%.*s", (int)strcspn(p, "\n"), p);
    return val;
}

char *sanlock_judge_read_leader(const char *kind, const char *spec, const char *name)
{
    const char *argv[] = { "sanlock", "direct", "read_leader", kind, spec, NULL };
    char *out = sanlock_judge_run(argv), val[128];

    ck_assert_msg(strstr(out, "read_leader done 0") != NULL, "%s", out);
    sanlock_judge_field(out, name, val, sizeof(val));
    free(out);
    return strdup(val);
}

/* Drive lease-contender processes; see contender.h. */
#include "tests/functional/contender.h"

#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/strutil.h"

void contender_spawn(struct contender *c, int id, const char *url, const char *sd)
{
    char *exe = keel_strdup_printf("%s/tests/lease-contender", getenv("KEEL_BUILD_ROOT"));
    char ids[16], name[32];
    const char *argv[] = { exe, ids, name, url, sd, NULL };
    int to[2], from[2];

    snprintf(ids, sizeof(ids), "%d", id);
    c->id = id;
    snprintf(name, sizeof(name), "contender%d.keel", id);
    ck_assert_int_eq(pipe(to), 0);
    ck_assert_int_eq(pipe(from), 0);
    c->pid = fork();
    ck_assert(c->pid >= 0);
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c->in = fdopen(to[1], "w");
    c->out = fdopen(from[0], "r");
    free(exe);
}

void contender_say(struct contender *c, const char *cmd)
{
    fprintf(c->in, "%s\n", cmd);
    fflush(c->in);
}

char *contender_hear(struct contender *c)
{
    char buf[1024];

    ck_assert_msg(fgets(buf, sizeof(buf), c->out) != NULL, "contender %d said nothing",
                  (int)c->pid);
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

char *contender_ask(struct contender *c, const char *cmd)
{
    contender_say(c, cmd);
    return contender_hear(c);
}

void contender_joined(struct contender *c)
{
    char *l = contender_hear(c);

    ck_assert_msg(strcmp(l, "joined") == 0, "contender %d: %s", (int)c->pid, l);
    free(l);
}

void contender_stop(struct contender *c)
{
    if (c->pid <= 0)
        return;
    fclose(c->in);
    fclose(c->out);
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

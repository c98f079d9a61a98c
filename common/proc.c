/* Running helper programs; see proc.h. */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strutil.h"

extern char **environ;

/* argv[0] as a path: PATH first, then the sbin directories tools live in. */
static char *find_program(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs, *save = NULL, *found = NULL;

    if (strchr(name, '/') != NULL)
        return strdup(name);
    dirs = keel_strdup_printf("%s:/usr/sbin:/sbin", path != NULL ? path : "/usr/bin:/bin");
    if (dirs == NULL)
        return NULL;
    for (char *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        char *p = keel_strdup_printf("%s/%s", d, name);

        if (p != NULL && access(p, X_OK) == 0) {
            found = p;
            break;
        }
        free(p);
    }
    free(dirs);
    return found;
}

/* The last non-empty line of buf[0..len), cut to fit msg. */
static void last_line(char *buf, size_t len, char *out, size_t cap)
{
    size_t end = len, start;

    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    snprintf(out, cap, "%.*s", (int)(end - start), buf + start);
}

int keel_proc_run(const char *const argv[], struct keel_error *err)
{
    posix_spawn_file_actions_t fa;
    char *prog = find_program(argv[0]);
    char errbuf[4096], line[256] = "";
    size_t got = 0;
    int pipefd[2] = { -1, -1 }, status = 0, rc;
    pid_t pid;

    if (prog == NULL)
        return keel_error_set(err, KEEL_E_NOENT, ENOENT, "%s: program not found", argv[0]);
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free(prog);
        return keel_error_errno(err, KEEL_E_INTERNAL, errno, "%s: pipe", argv[0]);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    rc = posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(prog);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return keel_error_errno(err, KEEL_E_INTERNAL, rc, "%s: cannot start", argv[0]);
    }
    for (;;) {
        char tmp[1024];
        ssize_t n = read(pipefd[0], tmp, sizeof(tmp));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* Keep the end of stderr: the reason is usually last. */
        if (got + (size_t)n > sizeof(errbuf)) {
            size_t drop = got + (size_t)n - sizeof(errbuf);

            if (drop > got)
                drop = got;
            memmove(errbuf, errbuf + drop, got - drop);
            got -= drop;
        }
        memcpy(errbuf + got, tmp, KEEL_MIN((size_t)n, sizeof(errbuf) - got));
        got += KEEL_MIN((size_t)n, sizeof(errbuf) - got);
    }
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return keel_error_errno(err, KEEL_E_INTERNAL, errno, "%s: waitpid", argv[0]);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    last_line(errbuf, got, line, sizeof(line));
    if (WIFSIGNALED(status))
        return keel_error_set(err, KEEL_E_IO, 0, "%s: killed by signal %d", argv[0],
                              WTERMSIG(status));
    return keel_error_set(err, KEEL_E_IO, 0, "%s: exit status %d%s%s", argv[0],
                          WEXITSTATUS(status), line[0] ? ": " : "", line);
}

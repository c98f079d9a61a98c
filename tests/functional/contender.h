/*
 * Drive lease-contender processes (tests/functional/lease_contender.c)
 * from a test: spawn, say a command, hear its one-line answer, stop.
 */
#ifndef KEEL_TESTS_CONTENDER_H
#define KEEL_TESTS_CONTENDER_H

#include <stdio.h>
#include <sys/types.h>

struct contender {
    pid_t pid;
    int id;         /* its host id */
    FILE *in, *out;
};

/* Start host `id` ("contender<id>.keel") on url (and sd for NFS, "" for a LUN). */
void contender_spawn(struct contender *c, int id, const char *url, const char *sd);
/* Wait for "joined". */
void contender_joined(struct contender *c);
void contender_say(struct contender *c, const char *cmd);
/* The next answer line, malloc'd, without its newline. */
char *contender_hear(struct contender *c);
/* say + hear */
char *contender_ask(struct contender *c, const char *cmd);
/* SIGKILL and reap; pid 0 afterwards.  Nothing happens when pid is 0. */
void contender_stop(struct contender *c);

#endif /* KEEL_TESTS_CONTENDER_H */

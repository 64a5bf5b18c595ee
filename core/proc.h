/* proc.h - what /proc says about a process: its program name, state, parent, owner, age
 * and children. The health report describes the processes of the stack with it. Every call
 * reads /proc afresh; nothing is cached. */
#ifndef MG_PROC_H
#define MG_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct proc_info {
    pid_t pid;
    pid_t ppid;
    char state;      /* 'R', 'S', 'D', 'Z', ... as in /proc/<pid>/stat */
    char comm[16];   /* the program name the kernel keeps (at most 15 bytes) */
    uid_t uid;       /* effective user id */
    double age_s;    /* seconds since the process started */
} proc_info;

/* Fills `p` for process `pid`. 0, or -1 when there is no such process. */
int proc_read(pid_t pid, proc_info *p);

/* 1 when `p` describes a process that still runs (not a zombie). */
int proc_live(const proc_info *p);

/* The pid written in pid file `path` when it names a live process whose program is `comm`
 * (fills `p` when not NULL); 0 otherwise. */
pid_t proc_pidfile(const char *path, const char *comm, proc_info *p);

/* Writes up to `max` pids of the children of `pid` into `out`. Returns how many. */
size_t proc_children(pid_t pid, pid_t *out, size_t max);

/* The name of user `uid` into `out` (size `n`), or its number when it has no name.
 * Returns out. */
char *proc_user_name(uid_t uid, char *out, size_t n);

#endif

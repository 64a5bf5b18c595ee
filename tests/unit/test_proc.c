/* test_proc.c - /proc facts for the health report: this process's name, parent, owner and
 * age; children (live and zombie); pid files naming this process, another program, a dead
 * pid, garbage; user names. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "unit.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        unit_fail(__FILE__, __LINE__, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

UNIT_TEST(reads_this_process) {
    proc_info p;
    CHECK_INT(proc_read(getpid(), &p), 0);
    CHECK_INT(p.pid, getpid());
    CHECK_INT(p.ppid, getppid());
    CHECK_STR(p.comm, "test_proc");
    CHECK_INT(p.uid, geteuid());
    CHECK(proc_live(&p));
    CHECK(p.age_s >= 0 && p.age_s < 600);
}

UNIT_TEST(no_such_process) {
    proc_info p;
    CHECK_INT(proc_read(0, &p), -1);
    CHECK_INT(proc_read(-5, &p), -1);
    CHECK_INT(proc_read(0x7ffffff0, &p), -1);
}

UNIT_TEST(children_live_and_zombie) {
    pid_t kid = fork();
    if (kid == 0) {
        pause();
        _exit(0);
    }
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    pid_t kids[8];
    size_t n = 0;
    /* the second child exits at once and stays a zombie until reaped */
    for (int i = 0; i < 200; i++) {
        proc_info z;
        if (proc_read(dead, &z) == 0 && z.state == 'Z') break;
        usleep(10000);
    }
    n = proc_children(getpid(), kids, 8);
    CHECK_INT(n, 2);
    int found = 0;
    for (size_t i = 0; i < n; i++) found += kids[i] == kid || kids[i] == dead;
    CHECK_INT(found, 2);
    proc_info p;
    CHECK_INT(proc_read(dead, &p), 0);
    CHECK(!proc_live(&p));
    CHECK_INT(proc_read(kid, &p), 0);
    CHECK(proc_live(&p));
    CHECK_INT(p.ppid, getpid());
    CHECK_INT(proc_children(getpid(), kids, 1), 1); /* bounded by max */
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    waitpid(dead, NULL, 0);
    CHECK_INT(proc_children(getpid(), kids, 8), 0);
}

UNIT_TEST(pid_files) {
    char path[512], text[32];
    snprintf(path, sizeof path, "%s/x.pid", unit_tmpdir());
    snprintf(text, sizeof text, "%d\n", (int)getpid());
    write_file(path, text);
    proc_info p;
    CHECK_INT(proc_pidfile(path, "test_proc", &p), getpid());
    CHECK_STR(p.comm, "test_proc");
    CHECK_INT(proc_pidfile(path, "nginx", NULL), 0); /* another program */
    write_file(path, "2147483000\n");
    CHECK_INT(proc_pidfile(path, "test_proc", NULL), 0);
    write_file(path, "garbage");
    CHECK_INT(proc_pidfile(path, "test_proc", NULL), 0);
    write_file(path, "");
    CHECK_INT(proc_pidfile(path, "test_proc", NULL), 0);
    snprintf(path, sizeof path, "%s/absent.pid", unit_tmpdir());
    CHECK_INT(proc_pidfile(path, "test_proc", NULL), 0);
}

UNIT_TEST(user_names) {
    char name[64];
    CHECK_STR(proc_user_name(0, name, sizeof name), "root");
    CHECK_STR(proc_user_name(4000000000u, name, sizeof name), "4000000000");
}

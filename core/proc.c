/* proc.c - facts about processes read from /proc (stat, status, children) and pid files. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads at most n - 1 bytes of `path` into `buf`, NUL-terminated. Bytes read, or -1. */
static ssize_t proc_read_text(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* Seconds since boot, from /proc/uptime; 0 when unreadable. */
static double proc_uptime(void) {
    char buf[64];
    return proc_read_text("/proc/uptime", buf, sizeof buf) > 0 ? strtod(buf, NULL) : 0;
}

/* The effective uid from /proc/<pid>/status ("Uid: real effective saved fs"). 0 or -1. */
static int proc_read_uid(pid_t pid, uid_t *uid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (proc_read_text(path, buf, sizeof buf) <= 0) return -1;
    const char *line = strstr(buf, "\nUid:");
    unsigned long real, eff;
    if (!line || sscanf(line + 5, "%lu %lu", &real, &eff) != 2) return -1;
    *uid = (uid_t)eff;
    return 0;
}

/* /proc/<pid>/stat is "pid (comm) state ppid ..."; comm may hold spaces and ")", so the
 * fields are counted from the last ")". */
int proc_read(pid_t pid, proc_info *p) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (pid <= 0 || proc_read_text(path, buf, sizeof buf) <= 0) return -1;
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open || close[1] != ' ') return -1;
    memset(p, 0, sizeof *p);
    p->pid = pid;
    size_t len = (size_t)(close - open - 1);
    if (len >= sizeof p->comm) len = sizeof p->comm - 1;
    memcpy(p->comm, open + 1, len);
    /* after ") ": state, ppid, then 17 fields up to starttime, the 20th (proc(5)) */
    const char *f = close + 2;
    p->state = *f;
    char *end;
    long ppid = strtol(f + 1, &end, 10);
    if (end == f + 1) return -1;
    f = end;
    for (int i = 0; i < 17 && f; i++) f = strchr(f + 1, ' ');
    if (!f) return -1;
    unsigned long long start = strtoull(f + 1, NULL, 10);
    p->ppid = (pid_t)ppid;
    long hz = sysconf(_SC_CLK_TCK);
    double age = proc_uptime() - (double)start / (double)(hz > 0 ? hz : 100);
    p->age_s = age > 0 ? age : 0;
    if (proc_read_uid(pid, &p->uid) != 0) return -1;
    return 0;
}

int proc_live(const proc_info *p) {
    return p->state != 'Z' && p->state != 'X' && p->state != 'x';
}

pid_t proc_pidfile(const char *path, const char *comm, proc_info *p) {
    char buf[32];
    if (proc_read_text(path, buf, sizeof buf) <= 0) return 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    if (pid <= 0 || pid > 0x7fffffffL || end == buf) return 0;
    proc_info info;
    if (proc_read((pid_t)pid, &info) != 0 || !proc_live(&info) || strcmp(info.comm, comm) != 0)
        return 0;
    if (p) *p = info;
    return (pid_t)pid;
}

size_t proc_children(pid_t pid, pid_t *out, size_t max) {
    char path[80], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    if (proc_read_text(path, buf, sizeof buf) <= 0) return 0;
    size_t n = 0;
    char *s = buf, *end;
    while (n < max) {
        long child = strtol(s, &end, 10);
        if (end == s) break;
        if (child > 0) out[n++] = (pid_t)child;
        s = end;
    }
    return n;
}

char *proc_user_name(uid_t uid, char *out, size_t n) {
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(out, n, "%s", found->pw_name);
    else
        snprintf(out, n, "%lu", (unsigned long)uid);
    return out;
}

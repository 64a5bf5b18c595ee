/* main.c - mgctl: options, the command table, usage and exit codes. Global options may come
 * before or after the command; the rest goes to the command. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgctl.h"

#define CTL_ARGS_MAX 256

typedef int (*ctl_cmd_fn)(const ctl *c, int argc, char **argv);

static const struct {
    const char *name;
    ctl_cmd_fn fn;
    const char *args;
    const char *what;
} ctl_commands[] = {
    {"search", ctl_cmd_search, "[TERMS...] [--category C] [--language L] [--tag T] [--fit F,...]"
     " [--family F] [--sort S] [--order asc|desc] [--limit N] [--offset N]",
     "search the gallery"},
    {"show", ctl_cmd_show, "ID", "one gallery model, whether it fits and whether it is installed"},
    {"install", ctl_cmd_install, "ID", "install a model and wait for it, with progress"},
    {"jobs", ctl_cmd_jobs, "[--status S] [--limit N] [--offset N] | show JOB_ID",
     "the jobs, newest first; or one job (its source URL, error)"},
    {"cancel", ctl_cmd_cancel, "JOB_ID", "cancel a job"},
    {"pause", ctl_cmd_pause, "JOB_ID", "pause a download (its partial file stays)"},
    {"resume", ctl_cmd_resume, "JOB_ID", "resume a paused download and wait for it"},
    {"ls", ctl_cmd_ls, "", "the installed models, partial downloads and stray files"},
    {"rm", ctl_cmd_rm, "ID", "delete an installed model (or a partial download)"},
    {"update", ctl_cmd_update, "ID | --all", "update to the gallery's current file"},
    {"verify", ctl_cmd_verify, "ID", "re-hash an installed file against its checksum"},
    {"cleanup", ctl_cmd_cleanup, "[--dry-run] [--include-unregistered]",
     "remove leftovers: partial downloads without a job, temporary files"},
    {"system", ctl_cmd_system, "", "RAM, CPU cores, GPUs and free disk of the server"},
    {"preflight", ctl_cmd_preflight, "ID", "would an install work here? (nothing is queued)"},
    {"gallery", ctl_cmd_gallery, "status | sign --key KEY.pem FILE [--out SIG] | keygen KEY.pem",
     "the gallery sources (models, signature, errors); sign a gallery file (Ed25519;\n"
     "            FILE.sig) or make a signing key (no server needed)"},
};

#define CTL_NCOMMANDS (sizeof ctl_commands / sizeof ctl_commands[0])

int ctl_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mgctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (mgctl --help)\n", stderr);
    va_end(ap);
    return CTL_USAGE;
}

static void ctl_help(FILE *f) {
    fputs("usage: mgctl [--url URL] [--token TOKEN] [--json] [--no-wait]\n"
          "             [--progress=auto|bar|plain|none] COMMAND [ARGS]\n\n"
          "A client of the Model Gallery API (like `ollama pull`, against this API).\n\n"
          "commands:\n", f);
    for (size_t i = 0; i < CTL_NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n            %s\n", ctl_commands[i].name, ctl_commands[i].what,
                ctl_commands[i].args);
    fputs("\noptions:\n"
          "  --url URL        the server (default $MG_URL, else http://127.0.0.1:8080)\n"
          "  --token TOKEN    the api_token for changes (default $MG_API_TOKEN)\n"
          "  --json           print the answers as JSON (for scripts)\n"
          "  --no-wait        install, update, verify, resume: return once the job is queued\n"
          "  --progress=MODE  auto (a bar on a terminal, lines otherwise), bar, plain, none\n"
          "  --timeout S      seconds per request (default 30; waiting on a job has no limit)\n\n"
          "exit codes: 0 done; 1 other error; 2 usage; 3 server not reachable; 4 not found;\n"
          "5 refused for the state things are in (already installed, up to date, finished;\n"
          "a preflight that is not ok); 6 the job failed; 7 the job was cancelled or paused;\n"
          "8 token or origin refused; 9 not enough disk space.\n", f);
}

/* The value of option `name` at argv[*i] ("--name=v" or "--name v"): 1 and *value, 0 when
 * argv[*i] is another option, -1 when the value is missing. */
int ctl_opt(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

static int ctl_progress_mode(const char *v, ctl_progress *out) {
    static const char *const names[] = {"auto", "bar", "plain", "none"};
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (ctl_progress)i;
            return 0;
        }
    return -1;
}

/* Takes the global options out of argv into `c`; the rest (the command first) into rest.
 * Returns its count, or -1 after a usage error, -2 for --help. */
static int ctl_globals(ctl *c, int argc, char **argv, char **rest) {
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return -2;
        if (strcmp(argv[i], "--json") == 0) c->json = 1;
        else if (strcmp(argv[i], "--no-wait") == 0) c->wait = 0;
        else if ((r = ctl_opt(argc, argv, &i, "--url", &v)) != 0) {
            if (r < 0) return ctl_usage_error("--url needs a value"), -1;
            c->url = v;
        } else if ((r = ctl_opt(argc, argv, &i, "--token", &v)) != 0) {
            if (r < 0) return ctl_usage_error("--token needs a value"), -1;
            c->token = *v ? v : NULL;
        } else if ((r = ctl_opt(argc, argv, &i, "--progress", &v)) != 0) {
            if (r < 0 || ctl_progress_mode(v, &c->progress) < 0)
                return ctl_usage_error("--progress takes auto, bar, plain or none"), -1;
        } else if ((r = ctl_opt(argc, argv, &i, "--timeout", &v)) != 0) {
            c->timeout_s = r > 0 ? atoi(v) : 0;
            if (c->timeout_s <= 0) return ctl_usage_error("--timeout takes seconds above 0"), -1;
        } else if (n < CTL_ARGS_MAX) {
            rest[n++] = argv[i];
        }
    }
    return n;
}

int main(int argc, char **argv) {
    static char *rest[CTL_ARGS_MAX + 1];
    static char url[2048];
    ctl c = {getenv("MG_URL"), getenv("MG_API_TOKEN"), 0, 1, CTL_PROGRESS_AUTO, 30};
    if (!c.url || !*c.url) c.url = "http://127.0.0.1:8080";
    if (c.token && !*c.token) c.token = NULL;
    int n = ctl_globals(&c, argc, argv, rest);
    if (n == -2) {
        ctl_help(stdout);
        return CTL_OK;
    }
    if (n < 0) return CTL_USAGE;
    if (n == 0) {
        ctl_help(stderr);
        return CTL_USAGE;
    }
    snprintf(url, sizeof url, "%s", c.url);
    for (size_t len = strlen(url); len && url[len - 1] == '/';) url[--len] = '\0';
    c.url = url;
    for (size_t i = 0; i < CTL_NCOMMANDS; i++) {
        if (strcmp(rest[0], ctl_commands[i].name) != 0) continue;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = ctl_commands[i].fn(&c, n - 1, rest + 1);
        curl_global_cleanup();
        return rc;
    }
    return ctl_usage_error("unknown command '%s'", rest[0]);
}

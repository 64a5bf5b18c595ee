# bench/lib.sh - the setup the bench scripts share, sourced by them (. "$repo/bench/lib.sh"):
# logging, Debian packages, free ports, a temp dir that is removed on exit together with the
# stacks and processes started in it, timing helpers, a throwaway static nginx, and installs
# through mg-installer's job queue timed from the job to "installed". Plain bash, safe under
# set -euo pipefail; every name it defines starts with bench_ or BENCH_.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the BENCH_ variables set here are read by the scripts

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_WORK=""      # the temp dir of bench_work_new; removed on exit unless BENCH_KEEP=1
BENCH_ROOTS=()     # data roots stopped with deploy/down on exit (bench_deploy_up adds them)
BENCH_PID_VARS=()  # names of the variables holding pids to stop on exit (empty: nothing)

# bench_log MSG...: prints "[bench] MSG" on stderr.
bench_log() { printf '[bench] %s\n' "$*" >&2; }

# bench_die MSG...: prints "[bench] error: MSG" on stderr and exits 1.
bench_die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# bench_need_packages PKG...: installs the Debian packages that are missing (as root), or dies
# naming them.
bench_need_packages() {
    local missing=() p
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] ||
            missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || bench_die "missing Debian packages: ${missing[*]} (run as root or install them)"
    bench_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >&2 || bench_die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 ||
        bench_die "apt-get install failed"
}

# bench_free_ports N: prints N free TCP ports on 127.0.0.1, space-separated (held
# open together while choosing, so they differ).
bench_free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# bench_now: prints the time in seconds (date +%s.%N).
bench_now() { date +%s.%N; }

# bench_median: prints the median of the numbers on stdin, one a line.
bench_median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# bench_measure FILE COMMAND: removes FILE, syncs, runs COMMAND (bash -c, output dropped) and
# prints the seconds it took.
bench_measure() {
    rm -f "$1"; sync; local t0; t0=$(bench_now)
    bash -c "$2" >/dev/null
    echo "$(bench_now) - $t0" | bc
}

# ---- the temp dir and what runs in it ----

# bench_descendants PID...: prints every descendant of the given pids (not the pids themselves).
bench_descendants() {
    ps -e -o pid=,ppid= | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
        { parent[$1] = $2; pids[++m] = $1 }
        END {
            do {
                added = 0
                for (i = 1; i <= m; i++) { p = pids[i]
                    if (!(p in want) && (parent[p] in want)) { want[p] = 1; out[p] = 1; added = 1 } }
            } while (added)
            for (p in out) print p
        }'
}

# bench_stop_pid PID: SIGTERM to it and, afterwards, to any descendant left; KILL after 10 s.
bench_stop_pid() {
    local pid=$1 i kids
    [[ -n $pid && -d /proc/$pid ]] || return 0
    kids=$(bench_descendants "$pid" | tr '\n' ' ')
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -d /proc/$pid ]] || break
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
    for i in $kids; do
        if [[ -d /proc/$i ]]; then kill -TERM "$i" 2>/dev/null || true; fi
    done
}

# bench_cleanup: the exit trap: deploy/down of BENCH_ROOTS, stops the pids named by
# BENCH_PID_VARS, removes BENCH_WORK (BENCH_KEEP=1 keeps it), exits with the script's status.
bench_cleanup() {
    local rc=$? r v
    trap - EXIT INT TERM
    for r in "${BENCH_ROOTS[@]}"; do
        if [[ -d $r/run ]]; then
            MG_ROOT=$r "$BENCH_REPO/deploy/down" >/dev/null 2>&1 || bench_log "deploy/down failed for $r"
        fi
    done
    for v in "${BENCH_PID_VARS[@]}"; do bench_stop_pid "${!v:-}"; done
    if [[ -n $BENCH_WORK && -d $BENCH_WORK ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then bench_log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
    fi
    exit "$rc"
}

# bench_work_new TEMPLATE [MODE]: sets the exit trap (bench_cleanup; INT and TERM exit 130),
# then makes the temp dir BENCH_WORK (mktemp -d TEMPLATE) with MODE (default 755: deploy/up as
# root runs the stack as its service user, which must pass through it).
bench_work_new() {
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    BENCH_WORK=$(mktemp -d "$1")
    chmod "${2:-755}" "$BENCH_WORK"
}

# bench_deploy_up ROOT PORT LOG [NAME=VALUE...]: deploy/up of ROOT on PORT with those settings
# in its environment, its output in LOG; dies showing LOG if it fails. ROOT is stopped on exit.
bench_deploy_up() {
    local root=$1 port=$2 log=$3
    shift 3
    BENCH_ROOTS+=("$root")
    env MG_ROOT="$root" MG_PORT="$port" "$@" "$BENCH_REPO/deploy/up" >"$log" 2>&1 ||
        { cat "$log" >&2; bench_die "deploy/up of $root failed"; }
}

# ---- a file to download, a server for it, the installer ----

# bench_random_file FILE MIB: writes MIB MiB of random bytes to FILE; sets BENCH_SIZE (bytes)
# and BENCH_SHA (its SHA-256, hex).
bench_random_file() {
    echo "making a $2 MiB random file..." >&2
    head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1"
    BENCH_SIZE=$(stat -c %s "$1")
    BENCH_SHA=$(openssl dgst -sha256 -r "$1" | cut -d' ' -f1)
}

# bench_static_nginx DIR WORKERS SERVERS: a throwaway nginx with prefix DIR (its nginx.conf,
# pid, log and temp files there), WORKERS worker processes, sendfile, and the server blocks
# SERVERS; started as a daemon. Sets BENCH_NGINX_PID, stopped on exit.
bench_static_nginx() {
    local d=$1 user_line=""
    mkdir -p "$d/tmp"
    if [[ $(id -u) == 0 ]]; then user_line="user root;"; fi
    cat >"$d/nginx.conf" <<CONF
$user_line
worker_processes $2;
pid $d/nginx.pid;
error_log $d/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
    sendfile on; tcp_nopush on;
$3
}
CONF
    nginx -p "$d" -c "$d/nginx.conf"
    for _ in $(seq 50); do [[ -s $d/nginx.pid ]] && break; sleep 0.1; done
    BENCH_NGINX_PID=$(cat "$d/nginx.pid")
    BENCH_PID_VARS+=(BENCH_NGINX_PID)
}

# bench_build_installer BIN_DIR: builds mg-installer (Release) into BIN_DIR unless it is there.
bench_build_installer() {
    [[ -x $1/mg-installer ]] && return 0
    cmake -S "$BENCH_REPO" -B "$1" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$1" --target mg-installer -j2 >/dev/null
}

# bench_installer_start BIN_DIR ROOT LOG: mg-installer alone on ROOT, its stderr in LOG; returns
# once its pid file is there (at most 5 s). Sets BENCH_INSTALLER_PID, stopped on exit.
bench_installer_start() {
    "$1/mg-installer" --root "$2" 2>"$3" &
    BENCH_INSTALLER_PID=$!
    BENCH_PID_VARS+=(BENCH_INSTALLER_PID)
    for _ in $(seq 100); do [[ -s $2/run/installer.pid ]] && break; sleep 0.05; done
}

# bench_check_installed FILE SHA: dies unless FILE's SHA-256 is SHA.
bench_check_installed() {
    local got
    got=$(openssl dgst -sha256 -r "$1" | cut -d' ' -f1)
    [[ $got == "$2" ]] || { echo "installed file has the wrong digest" >&2; exit 1; }
}

# bench_time_install MODE MODEL WHERE URL SHA SIZE: one install of MODEL from URL, timed by one
# python process (spawning a poller per check would steal CPU from the install on a small
# machine). MODE "direct": a job written into the queue of the installer of the root WHERE;
# "stack": POST /api/models/gallery/MODEL/install to the API on port WHERE. Prints the seconds
# until the job reads installed.
bench_time_install() {
    python3 - "$@" <<'PY'
import http.client, json, os, sys, time
mode, model, where, url, sha, size = sys.argv[1:7]
def api(method, path):
    c = http.client.HTTPConnection("127.0.0.1", int(where), timeout=30)
    c.request(method, path); r = c.getresponse(); body = json.loads(r.read()); c.close()
    return body
os.sync()
t0 = time.monotonic()
if mode == "direct":
    jid = os.urandom(8).hex()
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    job = {"job_id": jid, "model_id": model, "name": model, "url": url, "checksum": "sha256:" + sha,
           "ext": ".gguf", "size": int(size), "status": "queued", "progress": 0.0, "downloaded": 0,
           "total": int(size), "error": None, "created_at": now, "updated_at": now,
           "created_ns": time.time_ns()}
    path = os.path.join(where, "jobs", jid + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(job, f)
    os.rename(path + ".tmp", path)
    def status():
        try:
            with open(path) as f:
                return json.load(f)["status"]
        except (OSError, ValueError):
            return "?"
else:
    jid = api("POST", "/api/models/gallery/%s/install" % model)["job_id"]
    def status():
        return api("GET", "/api/models/jobs/" + jid)["status"]
while True:
    st = status()
    if st == "installed":
        break
    if st in ("failed", "cancelled"):
        sys.exit("job " + st)
    time.sleep(0.01)
print("%.3f" % (time.monotonic() - t0))
PY
}

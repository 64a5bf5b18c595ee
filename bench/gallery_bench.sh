#!/usr/bin/env bash
# bench/gallery_bench.sh - the gallery and search benchmark (issues 2 and 10), each case side by
# side with its baseline in one run, alternating rounds, on loopback with wrk:
#
#   10k models   GET /api/models/gallery, its 304 and its gzip answer   ours vs a plain nginx
#                serving the same files (the .gz with gzip_static)
#                a search that matches nothing (the floor: one FastCGI round trip), a free-text
#                search, a broad filtered and sorted search, facets     ours vs the FastAPI peer
#                the broad search with the fit filter                  ours vs ours without it
#   250k models  deploy/up on a fresh root (cache, index and .gz built), the peak memory of
#                every process during that rebuild, the same searches and facets (p99), each
#                worker's memory (RSS, PSS, RSS without file pages), the CPU time of single
#                expensive requests, and a rebuild of the running stack from the gallery file;
#                the FastAPI peer on the same searches (BENCH_PEER_LARGE=0 skips it)
#
# and prints the goals with the measured ratios. Everything it starts runs on 127.0.0.1 in a
# temp root and is stopped by pid on exit.
#
#   BENCH_SECONDS=10    wrk time per server and test    BENCH_WARMUP=1   warm-up run, seconds
#   BENCH_ROUNDS=3      that time split in rounds that alternate ours and the baseline
#   BENCH_CONNECTIONS=32, BENCH_THREADS=2               wrk -c / -t
#   BENCH_MODELS=10000, BENCH_MODELS_LARGE=250000       gallery sizes
#   BENCH_FREE, BENCH_BROAD, BENCH_FACETS, BENCH_NONE   the query strings
#   BENCH_FIT=fit=cpu,full_gpu,partial_gpu               the fit filter added to the broad search
#   BENCH_PEER_LARGE=1  also run the FastAPI peer at the large size (slow to start, ~6 GB)
#   BENCH_CPU_SECONDS=3 wrk -c1 time for the CPU of single requests
#   MG_BIN_DIR=<cmake build dir>                        use that build (else deploy/up builds)
#   BENCH_KEEP=1                                        keep the temp root (wrk outputs, logs)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
N_MODELS=${BENCH_MODELS:-10000}
N_LARGE=${BENCH_MODELS_LARGE:-250000}
PEER_LARGE=${BENCH_PEER_LARGE:-1}
CPU_SECONDS=${BENCH_CPU_SECONDS:-3}
Q_FREE=${BENCH_FREE:-query=qwen+coder+7b+instruct}
Q_BROAD=${BENCH_BROAD:-category=chat&min_rating=3&sort=updated&limit=100}
Q_FACETS=${BENCH_FACETS:-language=en&min_rating=3}
Q_NONE=${BENCH_NONE:-query=zzzqqqxxx}
Q_FIT=${BENCH_FIT:-fit=cpu,full_gpu,partial_gpu}   # added to the broad search (all but too_large)
PY=/usr/bin/python3   # Debian's python: python3-fastapi and python3-uvicorn live there
CLK_TCK=$(getconf CLK_TCK)
[[ $SECONDS_RUN =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SECONDS and BENCH_ROUNDS must be integers" >&2; exit 2; }
ROUND_SECONDS=$(( (SECONDS_RUN + ROUNDS - 1) / ROUNDS ))   # rounded up
((ROUND_SECONDS > 0)) || ROUND_SECONDS=1

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# ---------------------------------------------------------------------------------------------
# Processes we started, stopped by pid on exit.
WORK=""
OURS_ROOT=""
PEER_PID=""
STATIC_PID=""
SAMPLER_PID=""
BENCH_PID_VARS+=(SAMPLER_PID PEER_PID STATIC_PID)

# The pids of a server: its root pids and all their descendants.
bench_tree() {
    local p
    for p in "$@"; do [[ -n $p && -d /proc/$p ]] && echo "$p"; done
    bench_descendants "$@"
}

# Sum of utime+stime+cutime+cstime (clock ticks) of the given pids. Children reaped during a
# run show in their parent's cutime/cstime, so re-listing the tree at each end counts them.
bench_cpu_ticks() {
    local p sum=0 stat rest
    local -a f
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        # after "comm) ": f[0] is field 3 (state); utime is field 14 -> f[11]
        sum=$((sum + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$sum"
}

# ---------------------------------------------------------------------------------------------
# Helpers.

# bench_wait_http URL SECONDS: until the URL answers 200.
bench_wait_http() {
    local url=$1 secs=$2 i
    for ((i = 0; i < secs * 4; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) == 200 ]] && return 0
        sleep 0.25
    done
    return 1
}

bench_etag() { curl -s -D - -o /dev/null "$1" | awk 'tolower($1)=="etag:" {sub(/\r$/, "", $2); print $2}'; }

bench_mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ---------------------------------------------------------------------------------------------
# One wrk run against one server. Results go to RES[<key>.rps|p99|cpu|req|err].
declare -A RES

# wrk's "99%  3.21ms" -> milliseconds.
bench_p99_ms() {
    awk '$1 == "99%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1
        printf "%.2f", v * f; exit }' "$1"
}

# bench_round KEY URL PIDS_FN [wrk args...]: one wrk run of ROUND_SECONDS against one server
# (PIDS_FN prints its pids), added to RES[KEY.req|secs|ticks|err|p99s].
bench_round() {
    local key=$1 url=$2 pids_fn=$3; shift 3
    local out=$WORK/wrk-$key-$((${RES[$key.rounds]:-0} + 1)).txt t0 t1 req secs bad
    bench_log "wrk $key: $url $*"
    if [[ -z ${RES[$key.rounds]:-} ]] && ((WARMUP > 0)); then
        wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s "$@" "$url" >/dev/null 2>&1 || true
    fi
    # shellcheck disable=SC2046 # one argument per pid
    t0=$(bench_cpu_ticks $($pids_fn))
    wrk -t"$THREADS" -c"$CONNS" -d"${ROUND_SECONDS}s" --timeout 10s --latency "$@" "$url" >"$out" 2>&1 ||
        bench_die "wrk failed: $(cat "$out")"
    # shellcheck disable=SC2046
    t1=$(bench_cpu_ticks $($pids_fn))
    bench_settle "$pids_fn"
    read -r req secs < <(awk '/requests in/ { s = $4; sub(/s,$/, "", s); print $1, s; exit }' "$out") || true
    bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ {
                for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(/,/, "", v); n += v } }
               END { print n + 0 }' "$out")
    [[ -n $req && -n $secs ]] || bench_die "cannot read wrk's output ($key): $(cat "$out")"
    RES[$key.rounds]=$((${RES[$key.rounds]:-0} + 1))
    RES[$key.req]=$((${RES[$key.req]:-0} + req))
    RES[$key.secs]=$(awk -v a="${RES[$key.secs]:-0}" -v b="$secs" 'BEGIN { print a + b }')
    RES[$key.ticks]=$((${RES[$key.ticks]:-0} + t1 - t0))
    RES[$key.err]=$((${RES[$key.err]:-0} + bad))
    RES[$key.p99s]="${RES[$key.p99s]:-} $(bench_p99_ms "$out")"
}

# bench_settle PIDS_FN: waits (at most 5 min) until the server is idle: a slow server keeps
# working on the requests wrk left queued when its round ended, and would otherwise take CPU
# from the next round of the other side.
bench_settle() {
    local a b i
    # shellcheck disable=SC2046
    a=$(bench_cpu_ticks $($1))
    for ((i = 0; i < 1500; i++)); do
        sleep 0.2
        # shellcheck disable=SC2046
        b=$(bench_cpu_ticks $($1))
        ((b - a <= 2)) && return 0
        a=$b
    done
    bench_log "warning: the server of $1 did not go idle"
}

# bench_finish KEY: req/s over all rounds, CPU ms per request, the median round's p99.
bench_finish() {
    local key=$1
    if ((${RES[$key.req]} == 0)); then # a baseline too slow to answer within a round
        bench_log "wrk completed no request against $key in $ROUNDS rounds"
        RES[$key.rps]=0.0 RES[$key.cpu]=n/a RES[$key.p99]=">${ROUND_SECONDS}000"
        return
    fi
    RES[$key.rps]=$(awk -v n="${RES[$key.req]}" -v s="${RES[$key.secs]}" 'BEGIN { printf "%.1f", n / s }')
    RES[$key.cpu]=$(awk -v d="${RES[$key.ticks]}" -v hz="$CLK_TCK" -v n="${RES[$key.req]}" \
        'BEGIN { printf "%.3f", d * 1000 / hz / n }')
    RES[$key.p99]=$(tr ' ' '\n' <<<"${RES[$key.p99s]}" | grep . | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.2f", v[int((NR + 1) / 2)] }')
}

# bench_pair KEY_A URL_A FN_A 'WRK ARGS A' KEY_B URL_B FN_B 'WRK ARGS B': ROUNDS rounds,
# alternating A and B, so that a passing disturbance of the machine hits both alike.
bench_pair() {
    local r
    local -a args_a=() args_b=()
    # a header, or "script:FILE" for wrk -s FILE
    if [[ $4 == script:* ]]; then args_a=(-s "${4#script:}"); elif [[ -n $4 ]]; then args_a=(-H "$4"); fi
    if [[ $8 == script:* ]]; then args_b=(-s "${8#script:}"); elif [[ -n $8 ]]; then args_b=(-H "$8"); fi
    for ((r = 0; r < ROUNDS; r++)); do
        bench_round "$1" "$2" "$3" "${args_a[@]}"
        bench_round "$5" "$6" "$7" "${args_b[@]}"
    done
    bench_finish "$1"
    bench_finish "$5"
}

ours_pids() {
    local p pids=()
    for p in nginx fcgi installer; do
        [[ -s $OURS_ROOT/run/$p.pid ]] && pids+=("$(tr -dc 0-9 <"$OURS_ROOT/run/$p.pid")")
    done
    bench_tree "${pids[@]}"
}
static_pids() { bench_tree "$STATIC_PID"; }
peer_pids() { bench_tree "$PEER_PID"; }

# ---------------------------------------------------------------------------------------------
# The servers.

bench_gen() { # bench_gen N FILE
    [[ -f $REPO/bench/gen_gallery.py ]] || bench_die "bench/gen_gallery.py not found"
    bench_log "generating a $1-model gallery"
    python3 "$REPO/bench/gen_gallery.py" "$1" >"$2.tmp" && mv "$2.tmp" "$2"
}

# ours_up: deploy/up; UP_SECONDS gets its wall time.
ours_up() {
    bench_log "deploy/up on $OURS_ROOT, port $PORT_OURS${MG_BIN_DIR:+ (MG_BIN_DIR=$MG_BIN_DIR)}"
    local t0 t1
    t0=$(date +%s.%N)
    bench_deploy_up "$OURS_ROOT" "$PORT_OURS" "$WORK/up.log" MG_UP_TIMEOUT=300
    t1=$(date +%s.%N)
    UP_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    [[ -s $OURS_ROOT/cache/gallery_cache.json ]] || bench_die "no cache/gallery_cache.json after deploy/up"
}

static_up() {
    local d=$WORK/static user_line=""
    mkdir -p "$d/www" "$d/tmp"
    cp "$OURS_ROOT/cache/gallery_cache.json" "$OURS_ROOT/cache/gallery_cache.json.gz" "$d/www/"
    [[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
    # The same core settings as deploy/nginx/nginx.conf.in (workers, sendfile, keepalive,
    # etag, root + try_files, gzip_static), and nothing else.
    cat >"$d/nginx.conf" <<NGINX
$user_line
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $d/tmp/client_body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 10000;
    etag on;
    server {
        listen 127.0.0.1:$PORT_STATIC;
        location = /api/models/gallery {
            root $d/www;
            types { }
            default_type application/json;
            gzip_static on;
            gzip_vary on;
            try_files /gallery_cache.json =404;
        }
    }
}
NGINX
    nginx -e "$d/error.log" -p "$d/" -c "$d/nginx.conf" </dev/null >"$d/stdout.log" 2>&1 &
    STATIC_PID=$!
    bench_wait_http "http://127.0.0.1:$PORT_STATIC/api/models/gallery" 10 ||
        { cat "$d/error.log" >&2; bench_die "static nginx did not start"; }
}

peer_up() { # peer_up SECONDS_TO_WAIT
    "$PY" -c 'import fastapi, uvicorn' 2>/dev/null || bench_die "$PY cannot import fastapi and uvicorn"
    MG_PEER_GALLERY=$OURS_ROOT/config/models_gallery.json \
        "$PY" -m uvicorn --app-dir "$REPO/bench" peer_fastapi:app --host 127.0.0.1 \
        --port "$PORT_PEER" --workers 2 --no-access-log --log-level warning \
        </dev/null >"$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    bench_wait_http "http://127.0.0.1:$PORT_PEER/api/models/gallery/search?limit=1" "$1" ||
        { cat "$WORK/peer.log" >&2; bench_die "the FastAPI peer did not start"; }
}

# "same answer (total N)" when ours and the peer answer PATH?QUERY alike (search: total and ids
# in order; facets: the whole answer but the fit facet, which the peer does not compute).
bench_same_answer() {
    local path=$1 q=$2
    curl -s "http://127.0.0.1:$PORT_OURS$path?$q" >"$WORK/a.json"
    curl -s "http://127.0.0.1:$PORT_PEER$path?$q" >"$WORK/b.json"
    "$PY" - "$WORK/a.json" "$WORK/b.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if "facets" in a:
    for d in (a, b):
        d.get("facets", {}).pop("fit", None)
    ok = a == b
else:
    ids = lambda d: [m["id"] for m in d.get("models", [])]
    ok = a.get("total") == b.get("total") and ids(a) == ids(b)
print("same answer (total %s)" % a.get("total") if ok else
      "DIFFERENT answers: ours total %s, peer total %s" % (a.get("total"), b.get("total")))
PY
}


# ---------------------------------------------------------------------------------------------
# Memory and CPU of our processes.

fcgi_pids() {
    local master
    master=$(tr -dc 0-9 <"$OURS_ROOT/run/fcgi.pid")
    echo "$master"
    bench_descendants "$master" | sort -n
}

# bench_kib PID FIELD: a kB field of /proc/PID/status or smaps_rollup ("Pss", "VmHWM", ...).
bench_kib() {
    local v
    v=$(awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" "/proc/$1/smaps_rollup" 2>/dev/null)
    echo "${v:-0}"
}

# bench_mem_table LABEL: one row per process of the stack (peak, RSS, PSS, RSS without file
# pages). MEM_WORKER_MAX: the largest worker "RSS without file pages" (MEM_WORKER_PSS: its
# PSS); MEM_PEAK_MAX: the largest peak of the processes that rebuild (fcgi master, installer).
MEM_ROWS=()
MEM_WORKER_MAX=0
MEM_WORKER_PSS=0
MEM_PEAK_MAX=0
MEM_PEAK_WHO=""
bench_mem_table() {
    local label=$1 p role master inst hwm rss pss anon shm
    master=$(tr -dc 0-9 <"$OURS_ROOT/run/fcgi.pid")
    inst=$(tr -dc 0-9 <"$OURS_ROOT/run/installer.pid" 2>/dev/null || true)
    for p in $(fcgi_pids) $inst; do
        [[ -r /proc/$p/status ]] || continue
        role=worker
        [[ $p == "$master" ]] && role=fcgi-master
        [[ $p == "$inst" ]] && role=installer
        hwm=$(bench_kib "$p" VmHWM); rss=$(bench_kib "$p" Rss); pss=$(bench_kib "$p" Pss)
        anon=$(bench_kib "$p" RssAnon); shm=$(bench_kib "$p" RssShmem)
        anon=$((anon + shm))
        if [[ $role == worker ]] && ((anon > MEM_WORKER_MAX)); then MEM_WORKER_MAX=$anon; MEM_WORKER_PSS=$pss; fi
        if ((hwm > MEM_PEAK_MAX)); then MEM_PEAK_MAX=$hwm; MEM_PEAK_WHO="$role $p"; fi
        MEM_ROWS+=("$(printf '%-30s %-12s %-8s %9.1f %9.1f %9.1f %9.1f' "$label" "$role" "$p" \
            "$(bench_mib $((hwm * 1024)))" "$(bench_mib $((rss * 1024)))" \
            "$(bench_mib $((pss * 1024)))" "$(bench_mib $((anon * 1024)))")")
        label=""
    done
}

# bench_sampler_start: every 50 ms, the RSS and RSS without file pages of every mg-fcgi and
# mg-installer process of OURS_ROOT (found by their command line, so that processes started
# meanwhile count too) go to WORK/samples. bench_sampler_stop LABEL: stops it and sets, per
# role, the peaks PEAK[<role>.rss] and PEAK[<role>.anon] (KiB) and PEAK_ROWS.
declare -A PEAK
PEAK_ROWS=()
bench_sampler_start() {
    local root=$OURS_ROOT
    : >"$WORK/samples"
    (
        while :; do
            for d in /proc/[0-9]*; do
                comm=$(cat "$d/comm" 2>/dev/null) || continue
                [[ $comm == mg-fcgi || $comm == mg-installer ]] || continue
                tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -- "--root $root\b" || continue
                awk -v p="${d#/proc/}" -v c="$comm" '/^PPid:/ { pp = $2 } /^VmRSS:/ { r = $2 }
                    /^RssAnon:/ { a = $2 } /^RssShmem:/ { s = $2 }
                    END { if (r) print p, pp, c, r, a + s }' "$d/status" 2>/dev/null
            done
            sleep 0.05
        done
    ) >>"$WORK/samples" 2>/dev/null &
    SAMPLER_PID=$!
}
bench_sampler_stop() {
    local key=$1 label=$1 role rss anon
    bench_stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
    # role: the installer, the mg-fcgi master (its parent is not an mg-fcgi) or a worker
    while read -r role rss anon; do
        PEAK[$key.$role.rss]=$rss
        PEAK[$key.$role.anon]=$anon
        PEAK_ROWS+=("$(printf '%-36s %-12s %9.1f %9.1f' "$label" "$role" "$(bench_mib $((rss * 1024)))" \
            "$(bench_mib $((anon * 1024)))")")
        label=""
    done < <(awk '{ fc[$1] = ($3 == "mg-fcgi") } { ppid[$1] = $2; comm[$1] = $3; r[$1] = ($4 > r[$1]) ? $4 : r[$1]
                    a[$1] = ($5 > a[$1]) ? $5 : a[$1] }
              END { for (p in r) {
                        role = (comm[p] == "mg-installer") ? "installer" : (fc[ppid[p]] ? "worker" : "fcgi-master")
                        if (r[p] > R[role]) R[role] = r[p]; if (a[p] > A[role]) A[role] = a[p] }
                    for (x in R) print x, R[x], A[x] }' "$WORK/samples" | sort)
}

# bench_cpu_one KEY URL: CPU ms per request of mg-fcgi (master and workers) for one request
# at a time (wrk -c1, each request its own query string: nothing from a cache) over
# CPU_SECONDS, and the median latency.
bench_cpu_one() {
    local key=$1 url=$2 t0 t1 out=$WORK/cpu-$1.txt req
    bench_log "CPU of single requests: $url"
    wrk -t1 -c1 -d1s -s "$VARY" "$url" >/dev/null 2>&1 || true
    # shellcheck disable=SC2046
    t0=$(bench_cpu_ticks $(fcgi_pids))
    wrk -t1 -c1 -d"${CPU_SECONDS}s" -s "$VARY" --latency --timeout 10s "$url" >"$out" 2>&1 ||
        bench_die "wrk failed: $(cat "$out")"
    # shellcheck disable=SC2046
    t1=$(bench_cpu_ticks $(fcgi_pids))
    req=$(awk '/requests in/ { print $1; exit }' "$out")
    ((req > 0)) || bench_die "no request completed: $url"
    RES[$key.cpu1]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.2f", d * 1000 / hz / n }')
    RES[$key.lat1]=$(awk '$1 == "50%" { print $2; exit }' "$out")
}

# ---------------------------------------------------------------------------------------------
# The report.

bench_row() { # bench_row LABEL SERVER KEY
    printf '%-24s %-8s %10s %10s %12s %8s\n' "$1" "$2" "${RES[$3.rps]}" "${RES[$3.p99]}" \
        "${RES[$3.cpu]}" "${RES[$3.err]}"
}

bench_ratio_row() { # bench_ratio_row A B: the "ratio" row of req/s and CPU/req
    local rr cr
    rr=$(bench_x "$1" "$2")
    cr=$(awk -v a="${RES[$1.cpu]}" -v b="${RES[$2.cpu]}" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-24s %-8s %9sx %10s %11sx\n' "" "ratio" "$rr" "" "$cr"
}

bench_x() { awk -v a="${RES[$1.rps]}" -v b="${RES[$2.rps]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }

# bench_goal TEXT MEASURED OP LIMIT UNIT (OP ">=" or "<")
GOALS=()
bench_goal() {
    local verdict
    verdict=$(awk -v m="$2" -v op="$3" -v l="$4" 'BEGIN { if (m == "inf") m = 1e300
        ok = (op == ">=") ? (m + 0 >= l) : (m + 0 < l); print ok ? "met" : "MISSED" }')
    GOALS+=("$(printf '  %-66s %10s  %-2s %-7s %s' "$1" "$2$5" "$3" "$4$5" "$verdict")")
}

# ---------------------------------------------------------------------------------------------
# Main.

bench_need_packages wrk nginx python3 python3-fastapi python3-uvicorn curl
command -v wrk >/dev/null || bench_die "wrk not found"

bench_work_new /tmp/mg-bench.XXXXXX
WORK=$BENCH_WORK
OURS_ROOT=$WORK/ours
mkdir -p "$OURS_ROOT/config"
read -r PORT_OURS PORT_STATIC PORT_PEER <<<"$(bench_free_ports 3)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the smaller gallery ----
bench_gen "$N_MODELS" "$OURS_ROOT/config/models_gallery.json"
ours_up
static_up
peer_up 60

G_OURS=http://127.0.0.1:$PORT_OURS/api/models/gallery
G_STATIC=http://127.0.0.1:$PORT_STATIC/api/models/gallery
S_OURS=http://127.0.0.1:$PORT_OURS/api/models/gallery/search
S_PEER=http://127.0.0.1:$PORT_PEER/api/models/gallery/search
F_OURS=http://127.0.0.1:$PORT_OURS/api/models/gallery/facets
F_PEER=http://127.0.0.1:$PORT_PEER/api/models/gallery/facets
GZ="Accept-Encoding: gzip"
VARY=$REPO/bench/wrk_vary.lua   # every request its own query string: no cached facet answer

# Both gallery servers send the same bytes, plain and gzip; both answer 304 to their ETag.
curl -s "$G_OURS" -o "$WORK/g-ours.json"
curl -s "$G_STATIC" -o "$WORK/g-static.json"
cmp -s "$WORK/g-ours.json" "$WORK/g-static.json" || bench_die "ours and nginx serve different gallery bytes"
curl -s -H "$GZ" "$G_OURS" -o "$WORK/g-ours.gz"
curl -s -H "$GZ" "$G_STATIC" -o "$WORK/g-static.gz"
cmp -s "$WORK/g-ours.gz" "$WORK/g-static.gz" || bench_die "ours and nginx serve different gzip bytes"
gzip -dc "$WORK/g-ours.gz" | cmp -s - "$WORK/g-ours.json" || bench_die "the gzip answer is not the gallery"
GALLERY_BYTES=$(stat -c %s "$WORK/g-ours.json")
GZIP_BYTES=$(stat -c %s "$WORK/g-ours.gz")
ETAG_OURS=$(bench_etag "$G_OURS")
ETAG_STATIC=$(bench_etag "$G_STATIC")
[[ -n $ETAG_OURS ]] || bench_die "our GET /api/models/gallery sends no ETag"
for pair in "$G_OURS|$ETAG_OURS" "$G_STATIC|$ETAG_STATIC"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: ${pair#*|}" "${pair%|*}")
    [[ $code == 304 ]] || bench_log "warning: ${pair%|*} answers $code, not 304, to If-None-Match ${pair#*|}"
done
CHECK_NONE=$(bench_same_answer /api/models/gallery/search "$Q_NONE")
CHECK_FREE=$(bench_same_answer /api/models/gallery/search "$Q_FREE")
CHECK_BROAD=$(bench_same_answer /api/models/gallery/search "$Q_BROAD")
CHECK_FACETS=$(bench_same_answer /api/models/gallery/facets "$Q_FACETS")
MODELS_SERVED=$(curl -s "$S_OURS?limit=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')

bench_pair gal.ours "$G_OURS" ours_pids "" gal.nginx "$G_STATIC" static_pids ""
bench_pair 304.ours "$G_OURS" ours_pids "If-None-Match: $ETAG_OURS" \
    304.nginx "$G_STATIC" static_pids "If-None-Match: $ETAG_STATIC"
bench_pair gz.ours "$G_OURS" ours_pids "$GZ" gz.nginx "$G_STATIC" static_pids "$GZ"
bench_pair none.ours "$S_OURS?$Q_NONE" ours_pids "" none.peer "$S_PEER?$Q_NONE" peer_pids ""
bench_pair free.ours "$S_OURS?$Q_FREE" ours_pids "" free.peer "$S_PEER?$Q_FREE" peer_pids ""
bench_pair broad.ours "$S_OURS?$Q_BROAD" ours_pids "" broad.peer "$S_PEER?$Q_BROAD" peer_pids ""
bench_pair facets.ours "$F_OURS?$Q_FACETS" ours_pids "" facets.peer "$F_PEER?$Q_FACETS" peer_pids ""
bench_pair facetsv.ours "$F_OURS?$Q_FACETS" ours_pids "script:$VARY" facetsv.peer "$F_PEER?$Q_FACETS" peer_pids "script:$VARY"
bench_pair broadgz.ours "$S_OURS?$Q_BROAD" ours_pids "$GZ" broadgz.peer "$S_PEER?$Q_BROAD" peer_pids "$GZ"
bench_pair fit.ours "$S_OURS?$Q_BROAD&$Q_FIT" ours_pids "" broad2.ours "$S_OURS?$Q_BROAD" ours_pids ""

bench_stop_pid "$PEER_PID"; PEER_PID=""
bench_stop_pid "$STATIC_PID"; STATIC_PID=""
MG_ROOT=$OURS_ROOT "$REPO/deploy/down" >/dev/null 2>&1 || true

# ---- the large gallery, in a fresh root ----
OURS_ROOT=$WORK/large
mkdir -p "$OURS_ROOT/config"
bench_gen "$N_LARGE" "$OURS_ROOT/config/models_gallery.json"
LARGE_MB=$(bench_mib "$(stat -c %s "$OURS_ROOT/config/models_gallery.json")")
sync
bench_sampler_start
ours_up
bench_sampler_stop "rebuild at deploy/up"
UP_LARGE=$UP_SECONDS
LARGE_SERVED=$(curl -s "$S_OURS?limit=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
bench_mem_table "after deploy/up (rebuilt)"
PEAK_UP=$MEM_PEAK_MAX
PEAK_UP_WHO=$MEM_PEAK_WHO

if [[ $PEER_LARGE == 1 ]]; then
    bench_log "starting the FastAPI peer on $N_LARGE models (slow)"
    peer_up 600
fi
bench_large() { # bench_large KEY OURS_URL PEER_URL [script:FILE] (PEER_URL "": ours only)
    if [[ $PEER_LARGE == 1 && -n $3 ]]; then
        bench_pair "L$1.ours" "$2" ours_pids "${4:-}" "L$1.peer" "$3" peer_pids "${4:-}"
    else
        local r
        local -a extra=()
        [[ -n ${4:-} ]] && extra=(-s "${4#script:}")
        for ((r = 0; r < ROUNDS; r++)); do bench_round "L$1.ours" "$2" ours_pids "${extra[@]}"; done
        bench_finish "L$1.ours"
    fi
}
bench_large none "$S_OURS?$Q_NONE" "$S_PEER?$Q_NONE"
bench_large free "$S_OURS?$Q_FREE" "$S_PEER?$Q_FREE"
bench_large broad "$S_OURS?$Q_BROAD" "$S_PEER?$Q_BROAD"
# (the peer takes tens of seconds for facets at this size: ours only)
bench_large facets "$F_OURS?$Q_FACETS" ""
bench_large facetsv "$F_OURS?$Q_FACETS" "" "script:$VARY"
bench_stop_pid "$PEER_PID"; PEER_PID=""
# the fit filter, each round beside the same search without it
for ((r = 0; r < ROUNDS; r++)); do
    bench_round Lfit.ours "$S_OURS?$Q_BROAD&$Q_FIT" ours_pids
    bench_round Lbroad2.ours "$S_OURS?$Q_BROAD" ours_pids
done
bench_finish Lfit.ours
bench_finish Lbroad2.ours

# The CPU time of single expensive requests.
TERMS32=$(printf '%s+' a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5)
CPU_ORDER=()
declare -A CPU_LABEL CPU_URL
bench_cpu_case() { CPU_ORDER+=("$1"); CPU_LABEL[$1]=$2; CPU_URL[$1]=$3; } # KEY LABEL URL
bench_cpu_case a1000 "query=a&limit=1000" "$S_OURS?query=a&limit=1000"
bench_cpu_case name249k "sort=name&limit=1000&offset=$((N_LARGE - 1000))" \
    "$S_OURS?sort=name&limit=1000&offset=$((N_LARGE - 1000))"
bench_cpu_case terms32 "query= 32 distinct one-letter terms" "$S_OURS?query=${TERMS32%+}"
bench_cpu_case free1 "$Q_FREE" "$S_OURS?$Q_FREE"
bench_cpu_case punct "query=-k-+k-m-+m-0+-q4 (checked on the haystacks)" "$S_OURS?query=-k-+k-m-+m-0+-q4"
bench_cpu_case facets "facets?facet_limit=1000&query=instruct" "$F_OURS?facet_limit=1000&query=instruct"
bench_cpu_case fitall "fit=full_gpu,partial_gpu,cpu&sort=name (fit of every model)" \
    "$S_OURS?fit=full_gpu,partial_gpu,cpu&sort=name&limit=100"
bench_cpu_case facetsall "facets?facet_limit=1000 (no filter: fit of every model)" "$F_OURS?facet_limit=1000"
for k in "${CPU_ORDER[@]}"; do bench_cpu_one "$k" "${CPU_URL[$k]}"; done

MEM_WORKER_MAX=0
bench_mem_table "after the searches"

# A rebuild of the running stack from the gallery file (the installer notices the change).
CACHE=$OURS_ROOT/cache/gallery_cache.json
bench_sampler_start
ino0=$(stat -c %i "$CACHE")
cp "$OURS_ROOT/config/models_gallery.json" "$OURS_ROOT/config/.g.tmp"
t0=$(date +%s.%N)
mv "$OURS_ROOT/config/.g.tmp" "$OURS_ROOT/config/models_gallery.json"
for ((i = 0; i < 1200; i++)); do
    [[ $(stat -c %i "$CACHE" 2>/dev/null) != "$ino0" ]] && break
    sleep 0.05
done
t1=$(date +%s.%N)
REBUILD_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
for ((i = 0; i < 10; i++)); do curl -s -o /dev/null "$S_OURS?$Q_FREE"; done  # every worker remaps
sleep 0.5
bench_sampler_stop "rebuild while running"
MEM_PEAK_MAX=0
bench_mem_table "after a rebuild while running"
PEAK_RUN=$MEM_PEAK_MAX
PEAK_RUN_WHO=$MEM_PEAK_WHO
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
HR=$(printf '%.0s-' {1..80})
printf '\nModel Gallery benchmark  %s  (%s cores, %s, wrk -t%s -c%s, %s rounds of %s s alternating, loopback)\n' \
    "$(date -u +%FT%TZ)" "$(nproc)" "$(uname -r)" "$THREADS" "$CONNS" "$ROUNDS" "$ROUND_SECONDS"
printf 'load average before: %s, after: %s (above ~0.5 before: other work shared the cores)\n' \
    "$LOAD_START" "$LOAD_END"
printf '%s models: %s served, gallery %s MiB, gzip %s MiB; peer: FastAPI + uvicorn --workers 2\n' \
    "$N_MODELS" "$MODELS_SERVED" "$(bench_mib "$GALLERY_BYTES")" "$(bench_mib "$GZIP_BYTES")"
printf '  no match   ?%s  (%s)\n  free text  ?%s  (%s)\n  broad      ?%s  (%s)\n  facets     ?%s  (%s)\n' \
    "$Q_NONE" "$CHECK_NONE" "$Q_FREE" "$CHECK_FREE" "$Q_BROAD" "$CHECK_BROAD" "$Q_FACETS" "$CHECK_FACETS"
printf 'req/s over all rounds; p99: median of the rounds; CPU ms/req: utime+stime of every process\n'
printf 'of the server (ours: nginx + mg-fcgi + mg-installer) / requests\n\n'
printf '%-24s %-8s %10s %10s %12s %8s\n' "$N_MODELS models" "server" "req/s" "p99 ms" "CPU ms/req" "errors"
echo "$HR"
bench_row "GET gallery" ours gal.ours; bench_row "" nginx gal.nginx; bench_ratio_row gal.ours gal.nginx
bench_row "GET gallery 304" ours 304.ours; bench_row "" nginx 304.nginx; bench_ratio_row 304.ours 304.nginx
bench_row "GET gallery, gzip" ours gz.ours; bench_row "" nginx gz.nginx; bench_ratio_row gz.ours gz.nginx
bench_row "search, no match" ours none.ours; bench_row "" fastapi none.peer; bench_ratio_row none.ours none.peer
bench_row "search, free text" ours free.ours; bench_row "" fastapi free.peer; bench_ratio_row free.ours free.peer
bench_row "search, broad sorted" ours broad.ours; bench_row "" fastapi broad.peer; bench_ratio_row broad.ours broad.peer
bench_row "facets" ours facets.ours; bench_row "" fastapi facets.peer; bench_ratio_row facets.ours facets.peer
bench_row "facets, each different" ours facetsv.ours; bench_row "" fastapi facetsv.peer; bench_ratio_row facetsv.ours facetsv.peer
bench_row "broad sorted, gzip" ours broadgz.ours; bench_row "" fastapi broadgz.peer; bench_ratio_row broadgz.ours broadgz.peer
bench_row "broad sorted + fit" ours fit.ours; bench_row "" "no fit" broad2.ours; bench_ratio_row fit.ours broad2.ours
echo "$HR"

printf '\n%s models (%s served, gallery file %s MiB): deploy/up on a fresh root %s s; a rebuild of\n' \
    "$N_LARGE" "$LARGE_SERVED" "$LARGE_MB" "$UP_LARGE"
printf 'the running stack from the gallery file (until the new cache is in place) %s s\n\n' "$REBUILD_SECONDS"
printf '%-24s %-8s %10s %10s %12s %8s\n' "$N_LARGE models" "server" "req/s" "p99 ms" "CPU ms/req" "errors"
echo "$HR"
for c in none:"search, no match" free:"search, free text" broad:"search, broad sorted" facets:"facets" \
    facetsv:"facets, each different"; do
    k=${c%%:*}
    bench_row "${c#*:}" ours "L$k.ours"
    if [[ -n ${RES[L$k.peer.rps]:-} ]]; then bench_row "" fastapi "L$k.peer"; bench_ratio_row "L$k.ours" "L$k.peer"; fi
done
bench_row "broad sorted + fit" ours Lfit.ours; bench_row "" "no fit" Lbroad2.ours; bench_ratio_row Lfit.ours Lbroad2.ours
echo "$HR"
printf '\nCPU time of single requests (wrk -c1, none from a cache; mg-fcgi processes only), %s models\n' "$N_LARGE"
CPU_MAX=0
for k in "${CPU_ORDER[@]}"; do
    printf '  %-58s %8s ms CPU   %8s latency (median)\n' "${CPU_LABEL[$k]}" "${RES[$k.cpu1]}" "${RES[$k.lat1]}"
    CPU_MAX=$(awk -v a="$CPU_MAX" -v b="${RES[$k.cpu1]}" 'BEGIN { print (b > a) ? b : a }')
done
printf '\nMemory of the stack, %s models (MiB; peak: VmHWM; no files: RssAnon + RssShmem)\n' "$N_LARGE"
printf '%-30s %-12s %-8s %9s %9s %9s %9s\n' when process pid peak RSS PSS "no files"
printf '%s\n' "${MEM_ROWS[@]}"
printf '\nPeaks during the two rebuilds, sampled every 50 ms (MiB; a worker maps the old and the new\n'
printf 'index and cache files while it switches: shared page-cache pages, not its own memory)\n'
printf '%-36s %-12s %9s %9s\n' rebuild process "peak RSS" "no files"
printf '%s\n' "${PEAK_ROWS[@]}"

bench_goal "$N_MODELS: free-text search, req/s vs the FastAPI peer" "$(bench_x free.ours free.peer)" ">=" 100 x
bench_goal "$N_MODELS: broad sorted search, req/s vs the peer" "$(bench_x broad.ours broad.peer)" ">=" 100 x
bench_goal "$N_MODELS: facets, req/s vs the peer" "$(bench_x facets.ours facets.peer)" ">=" 100 x
bench_goal "$N_MODELS: facets, each query different, req/s vs the peer" "$(bench_x facetsv.ours facetsv.peer)" ">=" 100 x
bench_goal "$N_MODELS: free-text, req/s vs our no-match search" "$(bench_x free.ours none.ours)" ">=" 0.5 x
bench_goal "$N_MODELS: broad sorted, req/s vs our no-match search" "$(bench_x broad.ours none.ours)" ">=" 0.5 x
bench_goal "$N_MODELS: facets, req/s vs our no-match search" "$(bench_x facets.ours none.ours)" ">=" 0.5 x
bench_goal "$N_MODELS: facets, each query different, vs our no-match" "$(bench_x facetsv.ours none.ours)" ">=" 0.5 x
for k in free broad facets facetsv; do bench_goal "$N_MODELS: $k p99" "${RES[$k.ours.p99]}" "<" 10 " ms"; done
for k in free broad facets facetsv; do
    bench_goal "$N_LARGE: $k p99 at $CONNS connections" "${RES[L$k.ours.p99]}" "<" 10 " ms"
done
bench_cpu_x() { awk -v a="${RES[$1.cpu]}" -v b="${RES[$2.cpu]}" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "inf" }'; }
bench_goal "$N_MODELS: broad search with the fit filter, CPU/req vs without" "$(bench_cpu_x fit.ours broad2.ours)" "<" 2 x
bench_goal "$N_LARGE: broad search with the fit filter, CPU/req vs without" "$(bench_cpu_x Lfit.ours Lbroad2.ours)" "<" 2 x
bench_goal "$N_LARGE: largest worker RSS without file pages (PSS $(bench_mib $((MEM_WORKER_PSS * 1024))) MiB)" \
    "$(bench_mib $((MEM_WORKER_MAX * 1024)))" "<" 128 " MiB"
PEAK_ANON=0
for k in "${!PEAK[@]}"; do
    [[ $k == *.anon ]] && ((PEAK[$k] > PEAK_ANON)) && PEAK_ANON=${PEAK[$k]}
done
bench_goal "$N_LARGE: peak RSS of the rebuilding fcgi master, at deploy/up" \
    "$(bench_mib $((${PEAK[rebuild at deploy/up.fcgi-master.rss]:-$PEAK_UP} * 1024)))" "<" 256 " MiB"
bench_goal "$N_LARGE: peak RSS of the rebuilding installer, while running" \
    "$(bench_mib $((${PEAK[rebuild while running.installer.rss]:-$PEAK_RUN} * 1024)))" "<" 256 " MiB"
bench_goal "$N_LARGE: peak RSS without file pages, any process, both rebuilds" \
    "$(bench_mib $((PEAK_ANON * 1024)))" "<" 256 " MiB"
bench_goal "$N_LARGE: rebuild from the gallery file" "$REBUILD_SECONDS" "<" 10 " s"
bench_goal "$N_LARGE: deploy/up ready on a fresh root" "$UP_LARGE" "<" 15 " s"
bench_goal "$N_LARGE: CPU of the most expensive single request above" "$CPU_MAX" "<" 50 " ms"
bench_goal "GET gallery, req/s vs nginx serving the file" "$(bench_x gal.ours gal.nginx)" ">=" 0.8 x
bench_goal "GET gallery 304, req/s vs nginx" "$(bench_x 304.ours 304.nginx)" ">=" 0.8 x
bench_goal "GET gallery gzip, req/s vs nginx serving the same .gz" "$(bench_x gz.ours gz.nginx)" ">=" 0.8 x
printf '\nGoals (measured, goal, verdict)\n'
printf '%s\n' "${GOALS[@]}"

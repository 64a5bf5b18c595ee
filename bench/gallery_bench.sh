#!/usr/bin/env bash
# bench/gallery_bench.sh - the gallery/search benchmark of issue 2, side by side in one run:
#
#   GET /api/models/gallery, and its 304   ours vs a plain nginx serving the same bytes
#   a selective and a broad sorted search  ours vs a FastAPI + uvicorn peer (bench/peer_fastapi.py)
#
# on a 10k-model gallery (bench/gen_gallery.py), with wrk on loopback; prints req/s, p99 and CPU
# time per request (utime+stime of every process of each server, from /proc/<pid>/stat), the
# ratios and the targets. Then restarts our stack on a 50k-model gallery and prints each
# mg-fcgi worker's resident memory. Everything it starts runs on 127.0.0.1 in a temp root and
# is stopped by pid on exit.
#
#   BENCH_SECONDS=10    wrk time per server and test    BENCH_WARMUP=1   warm-up run, seconds
#   BENCH_ROUNDS=3      that time split in rounds that alternate ours and the baseline
#   BENCH_CONNECTIONS=32, BENCH_THREADS=2               wrk -c / -t
#   BENCH_MODELS=10000, BENCH_MODELS_MEM=50000          gallery sizes
#   BENCH_SELECTIVE, BENCH_BROAD                        the two search query strings
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
N_MODELS_MEM=${BENCH_MODELS_MEM:-50000}
Q_SELECTIVE=${BENCH_SELECTIVE:-category=code&language=de&min_rating=4}
Q_BROAD=${BENCH_BROAD:-sort=name&limit=100}
PY=/usr/bin/python3   # Debian's python: python3-fastapi and python3-uvicorn live there
CLK_TCK=$(getconf CLK_TCK)
[[ $SECONDS_RUN =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SECONDS and BENCH_ROUNDS must be integers" >&2; exit 2; }
ROUND_SECONDS=$(( (SECONDS_RUN + ROUNDS - 1) / ROUNDS ))   # rounded up
((ROUND_SECONDS > 0)) || ROUND_SECONDS=1

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Packages: wrk, nginx, FastAPI and uvicorn from Debian, installed only when missing.
bench_need_packages() {
    local missing=() p
    for p in wrk nginx python3 python3-fastapi python3-uvicorn curl; do
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

# ---------------------------------------------------------------------------------------------
# Processes we started, stopped by pid on exit.
WORK=""
OURS_ROOT=""
PEER_PID=""
STATIC_PID=""

# Every descendant of the given pids (not the pids themselves), from /proc.
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
    [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in $kids; do [[ -d /proc/$i ]] && kill -TERM "$i" 2>/dev/null || true; done
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    bench_stop_pid "$PEER_PID"
    bench_stop_pid "$STATIC_PID"
    if [[ -n $OURS_ROOT && -d $OURS_ROOT/run ]]; then
        MG_ROOT=$OURS_ROOT "$REPO/deploy/down" >/dev/null 2>&1 ||
            bench_log "deploy/down failed for $OURS_ROOT"
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then bench_log "kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Helpers.

# N free TCP ports on 127.0.0.1 (held open together while choosing, so they differ).
bench_free_ports() {
    "$PY" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

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

# bench_finish KEY: req/s over all rounds, CPU ms per request, the median round's p99.
bench_finish() {
    local key=$1
    ((${RES[$key.req]} > 0)) || bench_die "wrk completed no request against $key in $ROUNDS rounds"
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
    [[ -n $4 ]] && args_a=(-H "$4")
    [[ -n $8 ]] && args_b=(-H "$8")
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
# The three servers.

bench_gen() { # bench_gen N FILE
    [[ -f $REPO/bench/gen_gallery.py ]] || bench_die "bench/gen_gallery.py not found"
    bench_log "generating a $1-model gallery"
    python3 "$REPO/bench/gen_gallery.py" "$1" >"$2.tmp" && mv "$2.tmp" "$2"
}

ours_up() {
    bench_log "deploy/up on $OURS_ROOT, port $PORT_OURS${MG_BIN_DIR:+ (MG_BIN_DIR=$MG_BIN_DIR)}"
    MG_ROOT=$OURS_ROOT MG_PORT=$PORT_OURS "$REPO/deploy/up" >"$WORK/up.log" 2>&1 ||
        { cat "$WORK/up.log" >&2; bench_die "deploy/up failed"; }
    [[ -s $OURS_ROOT/cache/gallery_cache.json ]] || bench_die "no cache/gallery_cache.json after deploy/up"
}

static_up() {
    local d=$WORK/static user_line=""
    mkdir -p "$d/www" "$d/tmp"
    cp "$OURS_ROOT/cache/gallery_cache.json" "$d/www/gallery_cache.json"
    [[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
    # The same core settings as deploy/nginx/nginx.conf.in (workers, sendfile, keepalive,
    # etag, root + try_files), and nothing else.
    cat >"$d/nginx.conf" <<EOF
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
            try_files /gallery_cache.json =404;
        }
    }
}
EOF
    nginx -e "$d/error.log" -p "$d/" -c "$d/nginx.conf" </dev/null >"$d/stdout.log" 2>&1 &
    STATIC_PID=$!
    bench_wait_http "http://127.0.0.1:$PORT_STATIC/api/models/gallery" 10 ||
        { cat "$d/error.log" >&2; bench_die "static nginx did not start"; }
}

peer_up() {
    "$PY" -c 'import fastapi, uvicorn' 2>/dev/null || bench_die "$PY cannot import fastapi and uvicorn"
    MG_PEER_GALLERY=$OURS_ROOT/config/models_gallery.json \
        "$PY" -m uvicorn --app-dir "$REPO/bench" peer_fastapi:app --host 127.0.0.1 \
        --port "$PORT_PEER" --workers 2 --no-access-log --log-level warning \
        </dev/null >"$WORK/peer.log" 2>&1 &
    PEER_PID=$!
    bench_wait_http "http://127.0.0.1:$PORT_PEER/api/models/gallery/search?limit=1" 60 ||
        { cat "$WORK/peer.log" >&2; bench_die "the FastAPI peer did not start"; }
}

# 1 when ours and the peer answer QUERY with the same total and the same ids in order.
bench_same_answer() {
    local q=$1
    curl -s "http://127.0.0.1:$PORT_OURS/api/models/gallery/search?$q" >"$WORK/a.json"
    curl -s "http://127.0.0.1:$PORT_PEER/api/models/gallery/search?$q" >"$WORK/b.json"
    "$PY" - "$WORK/a.json" "$WORK/b.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ids = lambda d: [m["id"] for m in d.get("models", [])]
ok = a.get("total") == b.get("total") and ids(a) == ids(b)
print("same answer (total %s)" % a.get("total") if ok else
      "DIFFERENT answers: ours total %s, peer total %s" % (a.get("total"), b.get("total")))
PY
}

# ---------------------------------------------------------------------------------------------
# The report.

bench_row() { # bench_row LABEL SERVER KEY
    printf '%-28s %-8s %10s %10s %12s %8s\n' "$1" "$2" "${RES[$3.rps]}" "${RES[$3.p99]}" \
        "${RES[$3.cpu]}" "${RES[$3.err]}"
}

# bench_ratio LABEL OURS BASE: ratio rows; TARGET text; verdicts for the summary.
SUMMARY=()
bench_compare() {
    local label=$1 ours=$2 base=$3 kind=$4
    local rr cr verdict
    rr=$(awk -v a="${RES[$ours.rps]}" -v b="${RES[$base.rps]}" 'BEGIN { printf "%.2f", a / b }')
    cr=$(awk -v a="${RES[$ours.cpu]}" -v b="${RES[$base.cpu]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-28s %-8s %9sx %10s %11sx\n' "" "ratio" "$rr" "" "$cr"
    if [[ $kind == search ]]; then
        verdict=$(awk -v r="$rr" -v p="${RES[$ours.p99]}" 'BEGIN {
            v = (r >= 50) ? "met" : sprintf("MISSED, %.0f%% short", (50 - r) / 50 * 100)
            w = (p < 10) ? "met" : sprintf("MISSED by %.2f ms", p - 10)
            printf "rps >= 50x peer: %s (%.1fx); p99 < 10 ms: %s (%.2f ms)", v, r, w, p }')
    else
        verdict=$(awk -v r="$rr" -v c="$cr" 'BEGIN {
            v = (r >= 0.8) ? "met" : sprintf("MISSED, %.0f%% short", (0.8 - r) / 0.8 * 100)
            w = (c == "n/a") ? "n/a" : (c <= 1.3) ? "met" : sprintf("MISSED, %.0f%% over", (c - 1.3) / 1.3 * 100)
            printf "rps >= 0.8x nginx: %s (%.2fx); CPU/req <= 1.3x nginx: %s (%sx)", v, r, w, c }')
    fi
    SUMMARY+=("$(printf '%-28s %s' "$label" "$verdict")")
}

# ---------------------------------------------------------------------------------------------
# Main.

bench_need_packages
command -v wrk >/dev/null || bench_die "wrk not found"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/mg-bench.XXXXXX)
chmod 711 "$WORK" # deploy/up as root runs the stack as its service user, which passes here
chmod 755 "$WORK"
OURS_ROOT=$WORK/ours
mkdir -p "$OURS_ROOT/config"
read -r PORT_OURS PORT_STATIC PORT_PEER <<<"$(bench_free_ports 3)"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_gen "$N_MODELS" "$OURS_ROOT/config/models_gallery.json"
ours_up
static_up
peer_up

G_OURS=http://127.0.0.1:$PORT_OURS/api/models/gallery
G_STATIC=http://127.0.0.1:$PORT_STATIC/api/models/gallery
S_OURS=http://127.0.0.1:$PORT_OURS/api/models/gallery/search
S_PEER=http://127.0.0.1:$PORT_PEER/api/models/gallery/search

# Both gallery servers must send the same bytes; both must answer 304 to their own ETag.
curl -s "$G_OURS" -o "$WORK/g-ours.json"
curl -s "$G_STATIC" -o "$WORK/g-static.json"
cmp -s "$WORK/g-ours.json" "$WORK/g-static.json" || bench_die "ours and nginx serve different gallery bytes"
GALLERY_BYTES=$(stat -c %s "$WORK/g-ours.json")
ETAG_OURS=$(bench_etag "$G_OURS")
ETAG_STATIC=$(bench_etag "$G_STATIC")
[[ -n $ETAG_OURS ]] || bench_die "our GET /api/models/gallery sends no ETag"
for pair in "$G_OURS|$ETAG_OURS" "$G_STATIC|$ETAG_STATIC"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: ${pair#*|}" "${pair%|*}")
    [[ $code == 304 ]] || bench_log "warning: ${pair%|*} answers $code, not 304, to If-None-Match ${pair#*|}"
done
CHECK_SEL=$(bench_same_answer "$Q_SELECTIVE")
CHECK_BROAD=$(bench_same_answer "$Q_BROAD")
MODELS_SERVED=$(curl -s "$S_OURS?limit=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')

bench_pair gal.ours "$G_OURS" ours_pids "" gal.nginx "$G_STATIC" static_pids ""
bench_pair 304.ours "$G_OURS" ours_pids "If-None-Match: $ETAG_OURS" \
    304.nginx "$G_STATIC" static_pids "If-None-Match: $ETAG_STATIC"
bench_pair sel.ours "$S_OURS?$Q_SELECTIVE" ours_pids "" sel.peer "$S_PEER?$Q_SELECTIVE" peer_pids ""
bench_pair broad.ours "$S_OURS?$Q_BROAD" ours_pids "" broad.peer "$S_PEER?$Q_BROAD" peer_pids ""

# The memory check: our stack restarted on a larger gallery, searched, then each worker's
# resident memory read. Twice: after the restart that rebuilds the cache from the new gallery,
# and after a plain restart with the cache already current.
bench_mem_searches() {
    local q
    for q in "" "$Q_SELECTIVE" "$Q_BROAD" "sort=updated&order=asc&limit=1000" "sort=size&offset=40000" \
        "query=qwen%20coder&max_ram_gb=16" "tag=gguf&license=apache-2.0&sort=name&order=desc" \
        "query=reasoning&min_size_gb=1&max_size_gb=8&max_vram_gb=12"; do
        curl -s -o /dev/null "$S_OURS?$q"
    done
    # Every worker serves searches (each has its own index), then memory is read.
    wrk -t"$THREADS" -c"$CONNS" -d2s "$S_OURS?$Q_BROAD" >/dev/null 2>&1 || true
    wrk -t"$THREADS" -c"$CONNS" -d2s "$S_OURS?query=instruct&sort=updated&limit=1000" >/dev/null 2>&1 || true
}

# bench_mem_read LABEL: adds the rows of the fcgi master and each worker to MEM_ROWS.
MEM_ROWS=()
MEM_MAX=0
MEM_WORKERS=0
bench_mem_read() {
    local label=$1 master p rss anon file role
    master=$(tr -dc 0-9 <"$OURS_ROOT/run/fcgi.pid")
    for p in $master $(bench_descendants "$master" | sort -n); do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        [[ -n $rss ]] || continue
        anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status")
        file=$(awk '/^RssFile:/ { print $2 }' "/proc/$p/status")
        role=worker
        if [[ $p == "$master" ]]; then
            role=master
        else
            MEM_WORKERS=$((MEM_WORKERS + 1))
            if ((rss > MEM_MAX)); then MEM_MAX=$rss; fi
        fi
        MEM_ROWS+=("$(printf '%-30s %-8s %-8s %10.1f %10.1f %10.1f' "$label" "$role" "$p" \
            "$(bench_mib $((rss * 1024)))" "$(bench_mib $((anon * 1024)))" "$(bench_mib $((file * 1024)))")")
        label=""
    done
}

bench_stop_pid "$PEER_PID"; PEER_PID=""
bench_stop_pid "$STATIC_PID"; STATIC_PID=""
bench_gen "$N_MODELS_MEM" "$OURS_ROOT/config/models_gallery.json"
ours_up
MEM_MODELS=$(curl -s "$S_OURS?limit=1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
bench_mem_searches
bench_mem_read "restart, cache rebuilt"
ours_up
bench_mem_searches
bench_mem_read "restart, cache current"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
HR=$(printf '%.0s-' {1..80})
printf '\nModel Gallery benchmark  %s  (%s cores, %s, wrk -t%s -c%s -d%ss --latency, loopback)\n' \
    "$(date -u +%FT%TZ)" "$(nproc)" "$(uname -r)" "$THREADS" "$CONNS" "$SECONDS_RUN"
printf 'load average before: %s, after: %s (anything above ~0.5 before means other work shares the cores)\n' \
    "$LOAD_START" "$LOAD_END"
printf 'gallery: %s models generated, %s served, GET body %s MiB; peer: FastAPI + uvicorn --workers 2\n' \
    "$N_MODELS" "$MODELS_SERVED" "$(bench_mib "$GALLERY_BYTES")"
printf 'search selective: ?%s  (ours vs peer: %s)\n' "$Q_SELECTIVE" "$CHECK_SEL"
printf 'search broad sorted: ?%s  (ours vs peer: %s)\n' "$Q_BROAD" "$CHECK_BROAD"
printf 'req/s over all rounds; p99: median of the rounds; CPU ms/req: utime+stime of every process of\n'
printf 'the server (ours: nginx + mg-fcgi + mg-installer) over the runs / requests; %s rounds of %s s, alternating\n\n' "$ROUNDS" "$ROUND_SECONDS"
printf '%-28s %-8s %10s %10s %12s %8s\n' "test" "server" "req/s" "p99 ms" "CPU ms/req" "errors"
echo "$HR"
bench_row "GET gallery" ours gal.ours
bench_row "" nginx gal.nginx
bench_compare "GET gallery" gal.ours gal.nginx gallery
bench_row "GET gallery 304" ours 304.ours
bench_row "" nginx 304.nginx
bench_compare "GET gallery 304" 304.ours 304.nginx gallery
bench_row "search selective" ours sel.ours
bench_row "" fastapi sel.peer
bench_compare "search (selective)" sel.ours sel.peer search
bench_row "search broad sorted" ours broad.ours
bench_row "" fastapi broad.peer
bench_compare "search (broad sorted)" broad.ours broad.peer search
echo "$HR"
printf '\nTargets\n'
printf '  %s\n' "${SUMMARY[@]}"
printf '\nmg-fcgi resident memory with a %s-model gallery (%s served), after searches\n' \
    "$N_MODELS_MEM" "$MEM_MODELS"
printf '%-30s %-8s %-8s %10s %10s %10s\n' when role pid "VmRSS MiB" "anon MiB" "file MiB"
printf '%s\n' "${MEM_ROWS[@]}"
if ((MEM_WORKERS == 0)); then
    printf '  worker VmRSS < 64 MiB: no mg-fcgi worker process found\n'
else
    awk -v m="$MEM_MAX" 'BEGIN { r = m / 1024
        printf "  worker VmRSS < 64 MiB: %s (largest %.1f MiB)\n", (r < 64) ? "met" : sprintf("MISSED by %.1f MiB", r - 64), r }'
fi

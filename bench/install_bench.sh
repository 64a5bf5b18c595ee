#!/usr/bin/env bash
# install_bench.sh - how long installing a 1 GiB model takes, next to its physical bounds.
#
# Serves a random file with a throwaway nginx on 127.0.0.1 (free port, own temp prefix) and
# measures, RUNS times each (median printed):
#   a) curl -o f && sync f        the bound for a durable download
#   b) curl -o f && sha256sum f   download, then hash (what overlapping must beat)
#   c) mg-installer               from the job appearing in the queue until it reads installed
#                                 (hashed, verified, fsynced, renamed, registered)
# With MG_BENCH_STACK=1 and deploy/up present, (c) goes through the whole stack instead: POST
# /api/models/gallery/{id}/install, then GET /api/models/jobs/{id} until installed.
#
# Environment: MG_BIN_DIR (build dir with mg-installer; built into build-bench when unset),
# SIZE_MB (default 1024), RUNS (default 3), TMPDIR.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-3}
bin_dir=${MG_BIN_DIR:-$repo/build-bench}

if [ ! -x "$bin_dir/mg-installer" ]; then
    cmake -S "$repo" -B "$bin_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bin_dir" --target mg-installer -j"$(nproc)" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mg-bench.XXXXXX")
nginx_pid=""
inst_pid=""
cleanup() {
    [ -n "$inst_pid" ] && kill "$inst_pid" 2>/dev/null && wait "$inst_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    if [ "${MG_BENCH_STACK:-0}" = 1 ] && [ -x "$repo/deploy/down" ]; then
        MG_ROOT="$work/root" "$repo/deploy/down" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the file and the server ----
mkdir -p "$work/www" "$work/nginx/tmp" "$work/out"
echo "making a ${size_mb} MiB random file..." >&2
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/www/model.gguf"
size=$(stat -c %s "$work/www/model.gguf")
sha=$(openssl dgst -sha256 -r "$work/www/model.gguf" | cut -d' ' -f1)
port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
    sendfile on; tcp_nopush on;
    server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$work/nginx/nginx.pid")
url="http://127.0.0.1:$port/model.gguf"
curl -s -o /dev/null "$url" # warm the page cache of the source

# ---- a) and b) ----
measure() { # $1: command; prints seconds
    rm -f "$work/out/f"; sync; local t0; t0=$(now)
    bash -c "$1" >/dev/null
    echo "$(now) - $t0" | bc
}
echo "a) curl -o f && sync f" >&2
a=$(for _ in $(seq "$runs"); do measure "curl -s -o '$work/out/f' '$url' && sync '$work/out/f'"; done | tee /dev/stderr | median)
echo "b) curl -o f && sha256sum f" >&2
b=$(for _ in $(seq "$runs"); do measure "curl -s -o '$work/out/f' '$url' && sha256sum '$work/out/f'"; done | tee /dev/stderr | median)
rm -f "$work/out/f"

# ---- c) the installer ----
root="$work/root"
mkdir -p "$root/config" "$root/jobs"
echo '{"allow_http": true, "max_parallel_downloads": 2}' >"$root/config/server.json"
gallery_model() { # $1: id
    printf '{"id":"%s","name":"Bench %s","checksum":"sha256:%s","downloadUrl":"%s","sizeGb":%s,"sizeBytes":%s}' \
        "$1" "$1" "$sha" "$url" "$(echo "scale=6; $size/1000000000" | bc)" "$size"
}
{
    printf '{"version":"bench","generatedAt":"2026-01-01T00:00:00Z","models":['
    for i in $(seq "$runs"); do [ "$i" -gt 1 ] && printf ','; gallery_model "bench-$i"; done
    printf ']}\n'
} >"$root/config/models_gallery.json"

write_job() { # $1: model id; prints the job id
    local jid; jid=$(openssl rand -hex 8)
    local ts; ts=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
    printf '{"job_id":"%s","model_id":"%s","name":"Bench","url":"%s","checksum":"sha256:%s","ext":".gguf","size":%s,"status":"queued","progress":0.0,"downloaded":0,"total":%s,"error":null,"created_at":"%s","updated_at":"%s","created_ns":%s}' \
        "$jid" "$1" "$url" "$sha" "$size" "$size" "$ts" "$ts" "$(date +%s%N)" >"$root/jobs/.$jid.tmp"
    mv "$root/jobs/.$jid.tmp" "$root/jobs/$jid.json"
    echo "$jid"
}
job_status() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$1" 2>/dev/null || echo "?"; }

wait_installed() { # $1: command printing the status; waits until it is final
    local st
    while :; do
        st=$($1)
        case "$st" in installed) return 0 ;; failed|cancelled) echo "job $st" >&2; return 1 ;; esac
        sleep 0.01
    done
}

if [ "${MG_BENCH_STACK:-0}" = 1 ] && [ -x "$repo/deploy/up" ]; then
    api_port=$(free_port)
    MG_ROOT="$root" MG_PORT="$api_port" MG_BIN_DIR="$bin_dir" "$repo/deploy/up" >&2
    echo "c) POST install through the stack (deploy/up)" >&2
    c=$(for i in $(seq "$runs"); do
        sync; t0=$(now)
        jid=$(curl -s -X POST "http://127.0.0.1:$api_port/api/models/gallery/bench-$i/install" |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
        wait_installed "eval curl -s http://127.0.0.1:$api_port/api/models/jobs/$jid | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])'"
        echo "$(now) - $t0" | bc
    done | tee /dev/stderr | median)
else
    "$bin_dir/mg-installer" --root "$root" 2>"$work/installer.log" &
    inst_pid=$!
    for _ in $(seq 100); do [ -s "$root/run/installer.pid" ] && break; sleep 0.05; done
    echo "c) mg-installer: job file written -> installed" >&2
    c=$(for i in $(seq "$runs"); do
        sync; t0=$(now)
        jid=$(write_job "bench-$i")
        wait_installed "job_status $root/jobs/$jid.json"
        echo "$(now) - $t0" | bc
    done | tee /dev/stderr | median)
fi
got=$(openssl dgst -sha256 -r "$root/models/llm/bench-1.gguf" | cut -d' ' -f1)
[ "$got" = "$sha" ] || { echo "installed file has the wrong digest" >&2; exit 1; }

printf '\n%s MiB over 127.0.0.1, median of %s runs\n' "$size_mb" "$runs"
printf '  a) curl -o f && sync f        %6.2f s\n' "$a"
printf '  b) curl -o f && sha256sum f   %6.2f s\n' "$b"
printf '  c) mg-installer install       %6.2f s\n' "$c"
printf '  c/a = %.2f (target <= 1.2)   c/b = %.2f\n' "$(echo "$c / $a" | bc -l)" "$(echo "$c / $b" | bc -l)"

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
# SIZE_MB (default 1024), RUNS (default 3), TMPDIR, BENCH_KEEP=1 (keeps the temp dir).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-3}
bin_dir=${MG_BIN_DIR:-$repo/build-bench}

bench_build_installer "$bin_dir"

bench_work_new "${TMPDIR:-/tmp}/mg-bench.XXXXXX" 711 # the stack's service user passes here
work=$BENCH_WORK

# ---- the file and the server ----
mkdir -p "$work/www" "$work/nginx" "$work/out"
bench_random_file "$work/www/model.gguf" "$size_mb"
size=$BENCH_SIZE sha=$BENCH_SHA
port=$(bench_free_ports 1)
bench_static_nginx "$work/nginx" 1 "    server { listen 127.0.0.1:$port; root $work/www; }"
url="http://127.0.0.1:$port/model.gguf"
curl -s -o /dev/null "$url" # warm the page cache of the source

# ---- c) the installer ----
root="$work/root"
mkdir -p "$root/config" "$root/jobs"
echo '{"allow_http": true, "max_parallel_downloads": 2}' >"$root/config/server.json"
gallery_model() { # $1: id
    printf '{"id":"%s","name":"Bench %s","checksum":"sha256:%s","downloadUrl":"%s","sizeGb":%s,"sizeBytes":%s}' \
        "$1" "$1" "$sha" "$url" "$(echo "scale=6; $size/1000000000" | bc | sed "s/^\./0./")" "$size"
}
{
    printf '{"version":"bench","generatedAt":"2026-01-01T00:00:00Z","models":['
    for i in $(seq "$runs"); do [ "$i" -gt 1 ] && printf ','; gallery_model "bench-$i"; done
    printf ']}\n'
} >"$root/config/models_gallery.json"

if [ "${MG_BENCH_STACK:-0}" = 1 ] && [ -x "$repo/deploy/up" ]; then
    api_port=$(bench_free_ports 1)
    BENCH_ROOTS+=("$root")
    MG_ROOT="$root" MG_PORT="$api_port" MG_BIN_DIR="$bin_dir" "$repo/deploy/up" >&2
    mode=stack where=$api_port
else
    bench_installer_start "$bin_dir" "$root" "$work/installer.log"
    mode=direct where=$root
fi
# Rounds of a, b, c side by side, so that the load of the machine and the state of the disk
# weigh on all three alike. Each installed file is checked, then removed (as the curl
# outputs are) so that every run writes to the same kind of free space.
for i in $(seq "$runs"); do
    ta=$(bench_measure "$work/out/f" "curl -s -o '$work/out/f' '$url' && sync '$work/out/f'")
    tb=$(bench_measure "$work/out/f" "curl -s -o '$work/out/f' '$url' && sha256sum '$work/out/f'")
    rm -f "$work/out/f"
    tc=$(bench_time_install "$mode" "bench-$i" "$where" "$url" "$sha" "$size")
    bench_check_installed "$root/models/llm/bench-$i.gguf" "$sha"
    if [ "$mode" = stack ]; then
        curl -s -o /dev/null -X DELETE "http://127.0.0.1:$api_port/api/models/bench-$i"
    else
        rm -f "$root/models/llm/bench-$i.gguf"
    fi
    printf 'run %s: a %.2f s  b %.2f s  c %.2f s\n' "$i" "$ta" "$tb" "$tc" >&2
    echo "$ta $tb $tc" >>"$work/times"
done
a=$(cut -d' ' -f1 "$work/times" | bench_median)
b=$(cut -d' ' -f2 "$work/times" | bench_median)
c=$(cut -d' ' -f3 "$work/times" | bench_median)
[ -s "$work/installer.log" ] && grep -h "installed in" "$work/installer.log" | sed 's/^.*: bench/  bench/' >&2 || true

printf '\n%s MiB over 127.0.0.1, median of %s runs\n' "$size_mb" "$runs"
printf '  a) curl -o f && sync f        %6.2f s\n' "$a"
printf '  b) curl -o f && sha256sum f   %6.2f s\n' "$b"
printf '  c) mg-installer install       %6.2f s\n' "$c"
printf '  c/a = %.2f (target <= 1.2)   c/b = %.2f\n' "$(echo "$c / $a" | bc -l)" "$(echo "$c / $b" | bc -l)"

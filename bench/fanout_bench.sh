#!/usr/bin/env bash
# fanout_bench.sh - progress fan-out across nodes: progress messages delivered per second to
# BENCH_SUBS (1,000) WebSocket subscribers spread over two nodes whose nchan shares the
# channel through Redis, against the baseline of one node alone (the channel in nginx's
# memory) with as many subscribers, in the same run.
#
#   redis     two stacks (deploy/up, redis_url to one redis-server), BENCH_SUBS/2 subscribers
#             on each, messages POSTed into both nodes' publisher sockets
#   memory    one stack without redis_url, BENCH_SUBS subscribers, messages POSTed into its
#             publisher socket
#
# Each side runs twice (bench/fanout.py): at BENCH_RATE messages per second in all (default
# 100: ten downloads at the most a job sends, 10 a second), for the delivery latency; and as
# fast as nchan answers the POSTs, for the capacity: BENCH_PUBLISHERS (8) connections POST
# at once in all (nchan answers a POST once the message went out to its subscribers, so
# fewer would measure the publishers' wait), spread over the publishing sockets.
# Prints deliveries per second, the share of the expected deliveries that arrived, the
# latency p50/p99, and the ratio redis/memory.
#
#   bench/fanout_bench.sh                       # deploy/up builds into build/
#   MG_BIN_DIR=build bench/fanout_bench.sh
#   BENCH_SUBS=1000 BENCH_SECONDS=10 BENCH_RATE=100 BENCH_PUBLISHERS=8
#   BENCH_KEEP=1 (keeps the temp dir)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUBS=${BENCH_SUBS:-1000}
SECS=${BENCH_SECONDS:-10}
RATE=${BENCH_RATE:-100}
PUBS=${BENCH_PUBLISHERS:-8}

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_work_new "${TMPDIR:-/tmp}/mg-fanout-bench.XXXXXX"
WORK=$BENCH_WORK
REDIS_PID=""
BENCH_PID_VARS+=(REDIS_PID) # stopped on exit

command -v redis-server >/dev/null || bench_die "redis-server is missing (apt-get install redis-server)"

# up NAME PORT SERVER_JSON: a stack in $WORK/NAME (stopped at exit).
up() {
    local root=$WORK/$1
    mkdir -p "$root/config"
    printf '%s\n' "$3" >"$root/config/server.json"
    bench_deploy_up "$root" "$2" "$WORK/up-$1.log"
}

# fanout LABEL ARGS...: one run of fanout.py; its JSON goes to $WORK/LABEL.json.
fanout() {
    local label=$1; shift
    bench_log "$label: $*"
    python3 "$REPO/bench/fanout.py" --seconds "$SECS" "$@" >"$WORK/$label.json" ||
        bench_die "fanout.py failed ($label)"
    cat "$WORK/$label.json" >&2
}

RPORT=$(bench_free_ports 1)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    --daemonize no >"$WORK/redis.log" 2>&1 &
# shellcheck disable=SC2034 # read through BENCH_PID_VARS
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$RPORT" ping | grep -q PONG || bench_die "redis-server did not start"

read -r PA PB PM <<<"$(bench_free_ports 3)"
up a "$PA" "{\"node_name\": \"a\", \"redis_url\": \"redis://127.0.0.1:$RPORT\"}"
up b "$PB" "{\"node_name\": \"b\", \"redis_url\": \"redis://127.0.0.1:$RPORT\"}"
up m "$PM" '{"node_name": "m"}'
HALF=$((SUBS / 2))
REDIS_ARGS=(--sub "$PA:$HALF" --sub "$PB:$((SUBS - HALF))" --pub "$WORK/a/run/nchan.sock" --pub "$WORK/b/run/nchan.sock")
MEM_ARGS=(--sub "$PM:$SUBS" --pub "$WORK/m/run/nchan.sock")

fanout memory-rate "${MEM_ARGS[@]}" --rate "$RATE"
fanout redis-rate "${REDIS_ARGS[@]}" --rate "$RATE"
fanout memory-max "${MEM_ARGS[@]}" --rate max --publishers "$PUBS"
fanout redis-max "${REDIS_ARGS[@]}" --rate max --publishers "$((PUBS / 2))"

python3 - "$WORK" "$SUBS" "$RATE" "$SECS" <<'PY'
import json, os, sys
work, subs, rate, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = {k: json.load(open(os.path.join(work, k + ".json")))
     for k in ("memory-rate", "redis-rate", "memory-max", "redis-max")}
print(f"progress fan-out: {subs} WebSocket subscribers, {secs} s per run")
print(f"{'run':<12} {'setup':<30} {'msgs/s in':>9} {'deliveries/s':>12} {'arrived':>8} {'p50 ms':>7} {'p99 ms':>7}")
setup = {"memory": "1 node, channel in memory", "redis": "2 nodes, channel in Redis"}
for k, v in r.items():
    side, kind = k.split("-")
    print(f"{kind + ' ' + side:<12} {setup[side]:<30} {v['publish_per_s']:>9} "
          f"{v['deliveries_per_s']:>12} {v['delivered_share']*100:>7.2f}% "
          f"{v['latency_ms_p50']!s:>7} {v['latency_ms_p99']!s:>7}")
ratio = r["redis-max"]["deliveries_per_s"] / r["memory-max"]["deliveries_per_s"]
print(f"capacity ratio redis/memory: {ratio:.2f}x deliveries per second "
      f"(at {rate} msg/s: p99 {r['redis-rate']['latency_ms_p99']} ms vs "
      f"{r['memory-rate']['latency_ms_p99']} ms)")
PY

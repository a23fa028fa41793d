#!/usr/bin/env bash
# What each of `sockscope trace`'s BPF programs and its reader cost per
# run and per event: figures that do not depend on the machine's load
# (bench/trace.sh's throughput ratios do).
#
#   bench/trace_cost.sh [DURATION] [-- [TRACE ARGS...]]
#
# nginx serves a 2-byte page on 127.0.0.1:8080 in a private network
# namespace and wrk (-t2 -c64, new connection per request) loads it for
# DURATION seconds (default 5) while `sockscope trace -q TRACE ARGS` runs
# (without `--`: --port 9; `--` alone: unfiltered). Meanwhile kernel.bpf_stats_enabled is 1, so the
# kernel times every BPF program run; it is set back to what it was
# (normally 0) when the load ends, also on failure or interrupt: left at
# 1 it slows every BPF program on the host. Prints, per program of
# sockscope's: runs, runs per request, ns per run (the stats' own clock
# reads included, ~the same for every program), and the total; then the
# reader's CPU (user+sys of every thread of the trace process, from
# /proc/PID/task/*/schedstat) per event read.
#
# STATS=0: do not time the programs (for the reader alone).
# PERF=FILE: also `perf record -g` the trace process during the load.
# SOCKSCOPE_TRACE_NOOP_ALL=1 in the environment is passed on: the floor.
# Run as root. SOCKSCOPE: the binary (default target/release/sockscope).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=5
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    DURATION=$1
    shift
fi
if [ "${1:-}" = "--" ]; then
    shift
elif [ $# -eq 0 ]; then
    set -- --port 9
fi
STATS=${STATS:-1}
if [ "$(id -u)" != 0 ]; then
    echo "bench/trace_cost.sh: loads BPF programs and makes a network namespace; run as root" >&2
    exit 2
fi
for cmd in wrk bpftool; do
    command -v "$cmd" >/dev/null || {
        echo "bench/trace_cost.sh: needs $cmd (apt-get install $cmd)" >&2
        exit 2
    }
done
SOCKSCOPE=$(realpath "${SOCKSCOPE:-target/release/sockscope}")

if [ -z "${SOCKSCOPE_COST_NS:-}" ]; then
    export SOCKSCOPE SOCKSCOPE_COST_NS=1 STATS
    exec unshare -n -- "$0" "$DURATION" -- "$@"
fi
ip link set lo up

work=$(mktemp -d /tmp/sockscope-trace-cost.XXXXXX)
nginx_pid=""
trace_pid=""
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
    echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
    if [ -n "$trace_pid" ]; then kill -INT "$trace_pid" 2>/dev/null || true; wait "$trace_pid" 2>/dev/null || true; fi
    if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/nginx.sh
. bench/nginx.sh # (the scripts run from the repository root: see cd above)
start_nginx "$work"

: >"$work/trace.err"
"$SOCKSCOPE" trace -q "$@" >"$work/trace.out" 2>"$work/trace.err" &
trace_pid=$!
for _ in $(seq 300); do
    grep -q '^sockscope: tracing' "$work/trace.err" && break
    sleep 0.1
done
grep -q '^sockscope: tracing' "$work/trace.err" || {
    cat "$work/trace.err" >&2
    exit 1
}

# CPU ns of every thread of the trace process.
cpu_ns() { cat /proc/"$trace_pid"/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s }'; }
# "name run_time_ns run_cnt" for each program the trace process holds
# (its fds' fdinfo; names from bpftool).
prog_stats() {
    bpftool prog show -j | python3 -c '
import glob, json, sys
names = {p["id"]: p.get("name", "?") for p in json.load(sys.stdin)}
seen = set()
for f in glob.glob("/proc/%s/fdinfo/*" % sys.argv[1]):
    try:
        info = dict(l.split(":", 1) for l in open(f).read().splitlines() if ":" in l)
    except OSError:
        continue
    if "prog_id" not in info:
        continue
    pid = int(info["prog_id"])
    if pid in seen:
        continue
    seen.add(pid)
    print(names.get(pid, "?"), int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
' "$trace_pid"
}

[ "$STATS" = 1 ] && echo 1 >/proc/sys/kernel/bpf_stats_enabled
prog_stats >"$work/p0"
c0=$(cpu_ns)
perf_pid=""
if [ -n "${PERF:-}" ]; then
    perf record -q --call-graph "${PERF_CALLGRAPH:-fp}" -o "$PERF" -p "$trace_pid" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
fi
rps=$(wrk -t2 -c64 -d"${DURATION}s" -H 'Connection: close' http://127.0.0.1:8080/ | awk '/Requests\/sec/ { print $2 }')
prog_stats >"$work/p1"
[ -n "$perf_pid" ] && wait "$perf_pid"
echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
sleep 0.5
c1=$(cpu_ns)
kill -INT "$trace_pid"
wait "$trace_pid" || true
trace_pid=""

echo "sockscope trace -q $*: wrk -t2 -c64 ${DURATION}s, $rps requests/s; $(uptime | sed 's/.*load/load/')"
[ -n "${SOCKSCOPE_TRACE_NOOP_ALL:-}" ] && echo "(SOCKSCOPE_TRACE_NOOP_ALL: every program returns at once)"
requests=$(awk -v r="$rps" -v d="$DURATION" 'BEGIN { printf "%d", r * d }')
if [ "$STATS" = 1 ]; then
    join <(sort -u "$work/p0") <(sort -u "$work/p1") 2>/dev/null | awk -v req="$requests" '
        { t = $4 - $2; n = $5 - $3; if (n == 0 && t == 0) next
          printf "  %-20s %12d runs %8.2f/request %8.1f ns/run %8.0f ns/request\n", $1, n, n / req, n ? t / n : 0, t / req
          T += t }
        END { printf "  %-20s %12s      %8s          %8s        %8.0f ns/request\n", "all programs", "", "", "", T / req }'
fi
grep '^Events:' "$work/trace.out" || true
awk -v c="$((c1 - c0))" '/^Events:/ { for (i = 1; i <= NF; i++) if ($i == "read") n = $(i - 1) }
    END { if (n > 0) printf "  reader: %.0f ms CPU for %d events = %.0f ns/event\n", c / 1e6, n, c / n }' "$work/trace.out"

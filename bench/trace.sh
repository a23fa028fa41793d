#!/usr/bin/env bash
# What `sockscope trace` costs a busy server, measured in one run.
#
# nginx (Debian) serves a 2-byte page on 127.0.0.1:8080 in a private
# network namespace; wrk (Debian) hammers it with a new TCP connection per
# request (Connection: close): the machine's top connection rate, the worst
# case for a tracer (every connection is ~12 state changes, a dozen
# syscalls, data, two destroys). Runs of DURATION seconds each:
#
#   baseline     no trace
#   filtered     sockscope trace --port 9 (a port with no traffic): every
#                event of the load is cut in the kernel
#   filtered, every program doing nothing
#                the same with SOCKSCOPE_TRACE_NOOP_ALL=1: every program
#                is attached but returns at once. What is left is what the
#                attached tracepoints cost by themselves (every syscall of
#                every process takes the traced slow path once one is
#                enabled; every packet, wakeup and state change enters a
#                BPF program): the floor under any tracer that hooks them
#   filtered, kernel events only
#                the same with --events state,retransmit,reset,destroy,drop:
#                no syscall hooks (the costliest part)
#   unfiltered   sockscope trace (every default event, all namespaces:
#                packet and wait events are not in the default without
#                a --port/--addr/--pid filter)
#   unfiltered, with packets
#                the same plus --events ...,packet: every TCP segment at
#                the devices (each crosses lo twice: out and in)
#   the two unfiltered runs again with SOCKSCOPE_TRACE_NOOP_ALL=1: their
#                floors (the same programs attached, doing nothing)
#   unfiltered, reader discarding
#                the unfiltered run with SOCKSCOPE_TRACE_DISCARD=1: the
#                programs do all their work and the reader takes every
#                record from the ring buffer but drops it unread. Between
#                the floor and this row: the programs' cost; between this
#                row and the unfiltered one: the reader's
#   unfiltered, one empty record per event (and the same with packets)
#                SOCKSCOPE_TRACE_EMIT_ONLY=1: each program that writes
#                events writes one empty 176-byte record of its kind per
#                run (a clock read and the batched write, nothing read
#                from the kernel), the others do nothing, the reader drops
#                every record: what streaming each event to user space
#                costs before any of it is looked at, the floor under a
#                tracer that writes a record per event (the events/s
#                column says how many: one per run of those programs,
#                a few more than the real trace writes)
#
# With --port 9, the default events include packet and wait events: their
# programs run for every packet (and every wakeup) and are cut in the
# kernel, so the filtered run measures them too.
#
# in ROUNDS interleaved rounds (the machine may be shared: medians of
# interleaved runs resist drift; the filtered, the unfiltered and the
# packet group of a round each have a baseline measured just before them,
# and each ratio is to that baseline), then a rate ladder: unfiltered under
# lighter loads (wrk -c1, -c2, -c4, -c8), each against its own baseline,
# for events lost at lower event rates.
#
# It prints requests/s and the ratio to the baseline for each run, and for
# each traced run the events per second sockscope read and how many the
# ring buffer lost. Run as root:  bench/trace.sh [DURATION] [ROUNDS]
# Environment: SOCKSCOPE (binary; default: build target/release/sockscope),
# CONNS (wrk connections, default 64), THREADS (wrk threads, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

if [ "$(id -u)" != 0 ]; then
    echo "bench/trace.sh: loads BPF programs and makes a network namespace; run as root" >&2
    exit 2
fi
for pair in wrk:wrk nginx:nginx unshare:util-linux; do
    cmd=${pair%%:*}
    if ! command -v "$cmd" >/dev/null && [ ! -x "/usr/sbin/$cmd" ]; then
        echo "bench/trace.sh: installing ${pair#*:}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pair#*:}" >/dev/null
    fi
done

if [ -z "${SOCKSCOPE:-}" ]; then
    cargo build --release -q -p sockscope-cli
    SOCKSCOPE=${CARGO_TARGET_DIR:-target}/release/sockscope
fi
SOCKSCOPE=$(realpath "$SOCKSCOPE")

# Everything below runs inside a private network namespace.
if [ -z "${SOCKSCOPE_BENCH_NS:-}" ]; then
    export SOCKSCOPE SOCKSCOPE_BENCH_NS=1
    exec unshare -n -- "$0" "$DURATION" "$ROUNDS"
fi
ip link set lo up

work=$(mktemp -d /tmp/sockscope-bench-trace.XXXXXX)
nginx_pid=""
cleanup() {
    if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/nginx.sh
. bench/nginx.sh # (the scripts run from the repository root: see cd above)
start_nginx "$work"

# wrk CONNS: requests/s
load() {
    local t=$THREADS
    [ "$1" -lt "$t" ] && t=$1
    wrk -t"$t" -c"$1" -d"${DURATION}s" -H 'Connection: close' http://127.0.0.1:8080/ \
        | awk '/Requests\/sec/ {print $2}'
}

# Run the load with `sockscope trace ARGS -q` running; prints
# "requests/s events/s events lost".
traced() {
    local conns=$1
    shift
    "$SOCKSCOPE" trace -q "$@" >"$work/trace.out" 2>"$work/trace.err" &
    local tp=$!
    for _ in $(seq 300); do
        grep -q '^sockscope: tracing' "$work/trace.err" && break
        sleep 0.1
    done
    local rps
    rps=$(load "$conns")
    sleep 0.5
    kill -INT "$tp"
    wait "$tp" || true
    # Events: N read in S s (R/s), M shown; kernel: W written, L lost, F filtered out
    awk -v rps="$rps" '/^Events:/ {
        gsub(/[(),;]/, " ");
        for (i = 1; i <= NF; i++) {
            if ($i == "read") read = $(i - 1);
            if ($i == "in") secs = $(i + 1);
            if ($i == "lost") lost = $(i - 1);
        }
        printf "%s %.0f %s\n", rps, read / secs, lost
    }' "$work/trace.out"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "sockscope trace benchmark: nginx + wrk -t$THREADS -c$CONNS, new connection per request, ${DURATION}s per run, $ROUNDS rounds"
echo "machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), kernel.bpf_stats_enabled=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo '?')"
if [ "$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null)" = 1 ]; then
    echo "  (bpf_stats_enabled=1: every BPF program run is timed; the traced runs cost more than on a default host)"
fi
: >"$work/base"; : >"$work/base2"; : >"$work/base3"
: >"$work/filt"; : >"$work/floor"; : >"$work/light"; : >"$work/unf"; : >"$work/pkt"; : >"$work/unf0"; : >"$work/pkt0"; : >"$work/unfd"; : >"$work/unfe"; : >"$work/pkte"
for round in $(seq "$ROUNDS"); do
    # Each group of runs has a baseline of its own, measured just before
    # it: this host's throughput drifts by tens of percent within a
    # minute, so a traced run is compared with the nearest baseline.
    load "$CONNS" >>"$work/base"
    traced "$CONNS" --port 9 >>"$work/filt"
    SOCKSCOPE_TRACE_NOOP_ALL=1 traced "$CONNS" --port 9 >>"$work/floor"
    traced "$CONNS" --port 9 --events state,retransmit,reset,destroy,drop >>"$work/light"
    load "$CONNS" >>"$work/base2"
    traced "$CONNS" >>"$work/unf"
    SOCKSCOPE_TRACE_NOOP_ALL=1 traced "$CONNS" >>"$work/unf0"
    SOCKSCOPE_TRACE_DISCARD=1 traced "$CONNS" >>"$work/unfd"
    SOCKSCOPE_TRACE_EMIT_ONLY=1 traced "$CONNS" >>"$work/unfe"
    load "$CONNS" >>"$work/base3"
    traced "$CONNS" --events state,retransmit,reset,destroy,drop,syscall,data,packet >>"$work/pkt"
    SOCKSCOPE_TRACE_NOOP_ALL=1 traced "$CONNS" --events state,retransmit,reset,destroy,drop,syscall,data,packet >>"$work/pkt0"
    SOCKSCOPE_TRACE_EMIT_ONLY=1 traced "$CONNS" --events state,retransmit,reset,destroy,drop,syscall,data,packet >>"$work/pkte"
    echo "round $round: baseline $(tail -n1 "$work/base") | filtered $(tail -n1 "$work/filt") | floor $(tail -n1 "$work/floor") | light $(tail -n1 "$work/light") | baseline $(tail -n1 "$work/base2") | unfiltered $(tail -n1 "$work/unf") (floor $(tail -n1 "$work/unf0"), reader discarding $(tail -n1 "$work/unfd"), empty records $(tail -n1 "$work/unfe")) | baseline $(tail -n1 "$work/base3") | with packets $(tail -n1 "$work/pkt") (floor $(tail -n1 "$work/pkt0"), empty records $(tail -n1 "$work/pkte"))  (requests/s [events/s lost])"
done
# Ratios per round (each against the baseline measured just before its
# group), then the median: robust to load from elsewhere drifting between
# rounds and, mostly, within one.
rratio() {
    local b="$work/base"
    case "$1" in
    "$work/unf" | "$work/unf0" | "$work/unfd" | "$work/unfe") b="$work/base2" ;;
    "$work/pkt" | "$work/pkt0" | "$work/pkte") b="$work/base3" ;;
    esac
    paste -d' ' "$b" "$1" | awk '{ printf "%.4f\n", $2 / $1 }' | median
}
base=$(cat "$work/base" "$work/base2" "$work/base3" | median)
col() { awk -v c="$1" '{ print $c }' "$2" | median; }
lost() { awk '{ s += $3 } END { print s + 0 }' "$1"; }
row() { printf '%-40s %12.0f %8.3f %12s %10s\n' "$1" "$(col 1 "$2")" "$(rratio "$2")" "$(col 2 "$2")" "$(lost "$2")"; }
printf '%-40s %12s %8s %12s %10s\n' "run (median of $ROUNDS rounds)" "requests/s" "ratio" "events/s" "lost"
printf '%-40s %12.0f %8s %12s %10s\n' "baseline (no trace)" "$base" "1.000" "-" "-"
row "trace --port 9 (all filtered in kernel)" "$work/filt"
row "  same, every program doing nothing" "$work/floor"
row "  same, --events without syscall/data" "$work/light"
row "trace (unfiltered)" "$work/unf"
row "  same, every program doing nothing" "$work/unf0"
row "  same, the reader discarding records" "$work/unfd"
row "  one empty record per event, discarded" "$work/unfe"
row "trace (unfiltered) with packet events" "$work/pkt"
row "  same, every program doing nothing" "$work/pkt0"
row "  one empty record per event, discarded" "$work/pkte"
for c in 1 2 4 8; do
    b=$(load "$c")
    read -r r e l <<<"$(traced "$c")"
    printf '%-40s %12.0f %8s %12s %10s\n' "trace (unfiltered), wrk -c$c" "$r" "$(ratio "$r" "$b")" "$e" "$l"
done

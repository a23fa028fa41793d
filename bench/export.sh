#!/usr/bin/env bash
# bench/export.sh — cost of one `sockscope export` scrape, against
# node_exporter (netstat and sockstat collectors only) in the same run.
#
# It builds N established TCP sockets over P processes with
# bench/mksockets.py in a new network namespace (loopback only, nothing
# leaves it), starts both exporters inside that namespace, scrapes each
# SCRAPES times with curl (after one warm-up scrape) and reports per scrape:
# wall time (curl time_total), CPU time of the exporter process (utime +
# stime from /proc/PID/stat, all threads, before and after), and the
# exporter's peak RSS (VmHWM) and RSS after the scrapes. sockscope export
# collects on scrape, so an idle exporter costs nothing: the CPU time of a
# scrape is the whole cost. It prints a Markdown table, the ratios to
# node_exporter, and PASS/FAIL against the targets: scrape CPU <= 100 ms,
# peak RSS < 64 MiB.
#
# node_exporter does much less per scrape: it reads /proc/net/netstat, snmp
# and sockstat, and never walks sockets or fd tables. The ratio says what
# the per-listener and per-process detail costs on top of that.
#
# Usage: bench/export.sh [--case N:P] [--scrapes K] [--sockscope PATH]
#   --case N:P     sockets:processes (default 40000:100; N even)
#   --scrapes K    timed scrapes per exporter (default 10)
#   --sockscope P  binary (default target/release/sockscope, or $SOCKSCOPE)
# Needs root (unshare, nsenter), python3, curl; node_exporter is used when
# installed (Debian: prometheus-node-exporter). Exit: 0 targets met,
# 1 a target failed, 2 setup error.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SOCKSCOPE=${SOCKSCOPE:-$ROOT/target/release/sockscope}
PYTHON=${PYTHON:-python3}
CASE=40000:100
SCRAPES=10
LISTENERS=8
READY_TIMEOUT=${READY_TIMEOUT:-300}
SS_PORT=9469
NE_PORT=9100
CPU_TARGET_MS=100
RSS_TARGET_KIB=$((64 * 1024))

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "export.sh: $*" >&2; exit 2; }

while (($#)); do
    case $1 in
        --case) shift; CASE=${1:?--case needs N:P} ;;
        --scrapes) shift; SCRAPES=${1:?--scrapes needs a number} ;;
        --sockscope) shift; SOCKSCOPE=${1:?--sockscope needs a path} ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
[[ $CASE =~ ^[0-9]+:[1-9][0-9]*$ ]] || die "bad case '$CASE' (want N:P)"
[[ $SCRAPES =~ ^[1-9][0-9]*$ ]] || die "--scrapes must be a positive integer"
N=${CASE%%:*} P=${CASE##*:}
((N % 2 == 0)) || die "N must be even"
((EUID == 0)) || die "must run as root (unshare -n, nsenter)"
for t in unshare nsenter ip curl "$PYTHON"; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ -x $SOCKSCOPE ]] || die "no sockscope at $SOCKSCOPE (cargo build --release -p sockscope-cli)"
NODE_EXPORTER=$(command -v prometheus-node-exporter || command -v node_exporter || true)

WORK=$(mktemp -d /tmp/sockscope-bench-export.XXXXXX)
MKPID= SSPID= NEPID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    for p in $SSPID $NEPID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $SSPID $NEPID; do wait "$p" 2>/dev/null || true; done
    exec 9>&- 2>/dev/null || true
    if [[ -n $MKPID ]]; then
        kill -TERM "$MKPID" 2>/dev/null || true
        wait "$MKPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- the sockets ---------------------------------------------------------
mkfifo "$WORK/ctl"
exec 9<>"$WORK/ctl"
unshare -n -- bash -c 'ip link set lo up && exec "$@"' _ \
    "$PYTHON" "$HERE/mksockets.py" -n "$N" -p "$P" -l "$LISTENERS" \
    <"$WORK/ctl" >"$WORK/mk.out" 2>"$WORK/mk.err" 9>&- &
MKPID=$!
deadline=$((SECONDS + READY_TIMEOUT))
until grep -q '^READY ' "$WORK/mk.out" 2>/dev/null; do
    kill -0 "$MKPID" 2>/dev/null || { cat "$WORK/mk.err" >&2; die "mksockets exited"; }
    ((SECONDS < deadline)) || die "mksockets not ready after ${READY_TIMEOUT}s"
    sleep 0.05
done
NSPID=$(awk '/^READY /{print $2; exit}' "$WORK/mk.out")
in_ns() { nsenter -t "$NSPID" -n -- "$@"; }

# --- helpers -------------------------------------------------------------
TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # utime+stime
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
wait_port() { # port pid errfile
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        in_ns curl -sf -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
        in_ns curl -s -o /dev/null "http://127.0.0.1:$1/metrics" 2>/dev/null && return 0
        sleep 0.05
    done
    kill -TERM "$2" 2>/dev/null; return 1
}

# start_exporter ERRFILE PORTVAR PIDVAR CMD... (CMD may contain @PORT@):
# mksockets widens ip_local_port_range, so a port may be taken by one of
# its connections: try the next one.
start_exporter() {
    local err=$1 portvar=$2 pidvar=$3 port=${!2} try pid
    shift 3
    for ((try = 0; try < 20; try++, port++)); do
        # nsenter execs the exporter, so $! is the exporter's own pid.
        nsenter -t "$NSPID" -n -- "${@//@PORT@/$port}" 2>"$err" &
        pid=$!
        if wait_port "$port" "$pid" "$err" 2>/dev/null; then
            printf -v "$portvar" %s "$port"
            printf -v "$pidvar" %s "$pid"
            return 0
        fi
        wait "$pid" 2>/dev/null || true
        grep -qi "in use" "$err" || { cat "$err" >&2; die "could not start: $*"; }
    done
    die "no free port from ${!portvar}"
}

# measure NAME PID PORT -> one Markdown row; sets CPU_MS RSS_KIB WALL_MS LINES
measure() {
    local name=$1 pid=$2 port=$3 url="http://127.0.0.1:$3/metrics"
    in_ns curl -sf -o "$WORK/$name.prom" "$url" || die "$name: warm-up scrape failed"
    local c0 c1 i total=0 t
    c0=$(cpu_ticks "$pid")
    for ((i = 0; i < SCRAPES; i++)); do
        t=$(in_ns curl -sf -o "$WORK/$name.prom" -w '%{time_total}' "$url") ||
            die "$name: scrape failed"
        total=$(awk -v a="$total" -v b="$t" 'BEGIN{print a + b}')
    done
    c1=$(cpu_ticks "$pid")
    CPU_MS=$(awk -v a="$c0" -v b="$c1" -v k="$SCRAPES" -v t="$TICK" 'BEGIN{printf "%.1f", (b - a) * 1000 / t / k}')
    WALL_MS=$(awk -v a="$total" -v k="$SCRAPES" 'BEGIN{printf "%.1f", a * 1000 / k}')
    RSS_KIB=$(status_kib "$pid" VmHWM)
    local now; now=$(status_kib "$pid" VmRSS)
    LINES=$(grep -vc '^#' "$WORK/$name.prom" || true)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$WALL_MS" "$CPU_MS" \
        "$(awk -v k="$RSS_KIB" 'BEGIN{printf "%.1f", k / 1024}')" \
        "$(awk -v k="$now" 'BEGIN{printf "%.1f", k / 1024}')" "$LINES"
}

echo "# sockscope export benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(uname -r), $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "- case: $N established TCP sockets + $LISTENERS listeners over $P processes; $SCRAPES scrapes after 1 warm-up"
echo "- sockscope: $SOCKSCOPE ($("$SOCKSCOPE" --version))"
echo "- node_exporter: ${NODE_EXPORTER:-not installed} $([[ -n $NODE_EXPORTER ]] && "$NODE_EXPORTER" --version 2>&1 | head -n1)"
echo
echo "| exporter | wall ms/scrape | CPU ms/scrape | peak RSS MiB | RSS after MiB | samples |"
echo "|---|---:|---:|---:|---:|---:|"

start_exporter "$WORK/ss.err" SS_PORT SSPID "$SOCKSCOPE" export --listen "127.0.0.1:@PORT@"
measure "sockscope export" "$SSPID" "$SS_PORT"
SS_CPU=$CPU_MS SS_RSS=$RSS_KIB SS_WALL=$WALL_MS
# The scrape saw the workload (a check, not a measurement).
grep -q "sockscope_sockets{.*state=\"established\"} $((N + 2))\$" "$WORK/sockscope export.prom" ||
    grep -q "state=\"established\"" "$WORK/sockscope export.prom" ||
    die "sockscope export did not report the established sockets"

if [[ -n $NODE_EXPORTER ]]; then
    start_exporter "$WORK/ne.err" NE_PORT NEPID "$NODE_EXPORTER" --collector.disable-defaults \
        --collector.netstat --collector.sockstat --web.listen-address="127.0.0.1:@PORT@"
    measure "node_exporter (netstat, sockstat)" "$NEPID" "$NE_PORT"
    NE_CPU=$CPU_MS NE_RSS=$RSS_KIB NE_WALL=$WALL_MS
fi

# For reference: the same socket table and owner scan as one command
# (`sockscope ls -anp`: every kind, every state, with owners), CPU from
# /proc of the finished child, averaged over the same number of runs.
if [[ -x /usr/bin/time ]]; then
    total=0 best=0
    for ((i = 0; i < SCRAPES; i++)); do
        in_ns /usr/bin/time -f '%U %S %M' -o "$WORK/ls.time" "$SOCKSCOPE" ls -anp >/dev/null 2>&1 || true
        read -r u s m <"$WORK/ls.time"
        total=$(awk -v a="$total" -v u="$u" -v s="$s" 'BEGIN{print a + u + s}')
        ((m > best)) && best=$m
    done
    printf '| %s | - | %s | %s | - | - |\n' "sockscope ls -anp (one-shot, reference)" \
        "$(awk -v a="$total" -v k="$SCRAPES" 'BEGIN{printf "%.1f", a * 1000 / k}')" \
        "$(awk -v k="$best" 'BEGIN{printf "%.1f", k / 1024}')"
fi

echo
rc=0
if [[ -n $NODE_EXPORTER ]]; then
    awk -v a="$SS_CPU" -v b="$NE_CPU" -v c="$SS_RSS" -v d="$NE_RSS" -v e="$SS_WALL" -v f="$NE_WALL" 'BEGIN{
        r = (b > 0) ? sprintf("%.1fx", a / b) : "n/a (node_exporter below the clock tick)";
        printf "- ratios sockscope / node_exporter: CPU %s, wall %.1fx, peak RSS %.1fx\n", r, e / f, c / d }'
fi
if awk -v a="$SS_CPU" -v t="$CPU_TARGET_MS" 'BEGIN{exit !(a <= t)}'; then
    echo "- PASS scrape CPU ${SS_CPU} ms <= ${CPU_TARGET_MS} ms"
else
    echo "- FAIL scrape CPU ${SS_CPU} ms > ${CPU_TARGET_MS} ms"; rc=1
fi
if ((SS_RSS < RSS_TARGET_KIB)); then
    echo "- PASS peak RSS $((SS_RSS / 1024)) MiB < 64 MiB"
else
    echo "- FAIL peak RSS $((SS_RSS / 1024)) MiB >= 64 MiB"; rc=1
fi
exit "$rc"

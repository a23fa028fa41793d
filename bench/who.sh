#!/usr/bin/env bash
# bench/who.sh — benchmark `sockscope who :PORT` against
# `ss -tanp 'sport = :PORT'` (the ss way to ask "who is on this port").
#
# It builds the `ls` benchmark's namespace with bench/mksockets.py (N
# established loopback TCP sockets over P processes and 8 listeners on
# 127.0.0.1:20000-20007 that every process holds), picks the listener port
# PORT (20000 by default; it has the listener and N/16 accepted connections),
# and runs every command inside that namespace with `nsenter -t PID -n`, so
# the owner scans walk /proc of every process on the host as on a real
# machine.
#
# Before timing, each command's output is checked once: ss must print the
# listener and the N/16 connections, every one with its process; sockscope
# `who :PORT --json` must give one chain (the listener) with P owners and
# the N/16 connections as its children, each with its owner. Then wall time
# (hyperfine -N, median of --runs after 1 warm-up; a date +%s%N loop if
# hyperfine is missing), mean CPU time (user+sys, hyperfine) and peak RSS
# (/usr/bin/time -f %M, largest of RSS_RUNS runs). It prints a Markdown
# table and the ratio the target is about, and two floors measured in the
# same run: `ss -tan 'sport = :PORT'` (the kernel's dump of the port, no
# owners) and `who :PORT` with SOCKSCOPE_OWNERS_NOOP=1 (everything who does,
# but the owner walk's program returns at once for every fd: the kernel
# still visits every fd of every task, no socket is read, no owner found):
#   wall(sockscope who :PORT) / wall(ss -tanp 'sport = :PORT') <= 0.1 (issue 16)
# and, for information, who :PORT with SOCKSCOPE_OWNERS_FDT=0: the owners
# found by the `task_file` iterator (one program run per fd of the host,
# filtered to the port, split by process between two threads) instead of
# the walk of every task's fd array that runs beside the dump. The
# NOOP floor is that `task_file` walk's (NOOP turns the fd-array walk off).
# Also for information: `ls -tan sport = :PORT` and `ls -tanp sport =
# :PORT` against ss with the same filter (the filter is applied by the
# kernel, as ss does). `ls -tan sport = :PORT` is also who's own floor: the
# same dump, every TCP state including BOUND-INACTIVE (bound, neither
# listening nor connected: the kernel finds those by walking its whole
# bind table, Linux 6.9+; ss before iproute2 6.9 does not ask for them).
#
# Usage: bench/who.sh [--quick] [--runs N] [--case N:P] [--port PORT]
#                     [--sockscope PATH]
#   --quick        smoke run: 4000 sockets / 10 processes (no target applies)
#   --runs N       timed runs per command (default 10; 1 warm-up before)
#   --case N:P     sockets and processes (default 40000:100)
#   --port PORT    listener port to ask about (20000-20007; default 20000)
#   --sockscope P  binary (default: target/release/sockscope, or $SOCKSCOPE)
# Needs root (unshare, nsenter), python3, ss, /usr/bin/time; hyperfine is
# used when installed (NO_HYPERFINE=1 forces the loop). Environment:
# SOCKSCOPE, PYTHON, RSS_RUNS (3), READY_TIMEOUT (300 s).
# Exit: 0 target met (or not applicable), 1 target missed or wrong output,
#       2 setup error.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SOCKSCOPE=${SOCKSCOPE:-$ROOT/target/release/sockscope}
PYTHON=${PYTHON:-python3}
RUNS=10
RSS_RUNS=${RSS_RUNS:-3}
READY_TIMEOUT=${READY_TIMEOUT:-300}
LISTENERS=8
PORT_BASE=20000
PORT=$PORT_BASE
CASE=40000:100
QUICK=0
TARGET=0.1

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "who.sh: $*" >&2; exit 2; }

while (($#)); do
    case $1 in
        --quick) QUICK=1; CASE=4000:10 ;;
        --runs) shift; RUNS=${1:?--runs needs a number} ;;
        --case) shift; CASE=${1:?--case needs N:P} ;;
        --port) shift; PORT=${1:?--port needs a port} ;;
        --sockscope) shift; SOCKSCOPE=${1:?--sockscope needs a path} ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $CASE =~ ^[0-9]+:[1-9][0-9]*$ ]] || die "bad case '$CASE' (want N:P)"
N=${CASE%%:*} P=${CASE##*:}
((N % (2 * LISTENERS) == 0)) || die "N must be a multiple of $((2 * LISTENERS))"
((PORT >= PORT_BASE && PORT < PORT_BASE + LISTENERS)) ||
    die "--port must be one of the listener ports $PORT_BASE-$((PORT_BASE + LISTENERS - 1))"
CONNS=$((N / 2 / LISTENERS)) # connections accepted on each listener

((EUID == 0)) || die "must run as root (unshare -n, nsenter)"
for t in unshare nsenter ip ss "$PYTHON"; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ -x /usr/bin/time ]] || die "missing /usr/bin/time (apt-get install -y time)"
[[ -x $SOCKSCOPE ]] || die "no sockscope binary at $SOCKSCOPE (cargo build --release -p sockscope-cli)"
HYPERFINE=$(command -v hyperfine || true)
[[ ${NO_HYPERFINE:-0} == 1 ]] && HYPERFINE=

WORK=$(mktemp -d /tmp/sockscope-whobench.XXXXXX)
MKPID=
CTL_OPEN=0

stop_sockets() {
    # End of file on its stdin makes mksockets stop its children and exit.
    if ((CTL_OPEN)); then exec 9>&-; CTL_OPEN=0; fi
    [[ -n $MKPID ]] || return 0
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$MKPID" 2>/dev/null || break
        ((i == 30)) && kill -TERM "$MKPID" 2>/dev/null
        sleep 0.1
    done
    kill -0 "$MKPID" 2>/dev/null && kill -KILL "$MKPID" 2>/dev/null
    wait "$MKPID" 2>/dev/null || true
    MKPID=
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_sockets
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "who.sh: interrupted" >&2; exit 130' INT
trap 'echo "who.sh: terminated" >&2; exit 143' TERM HUP

# ------------------------------------------------------------ the sockets --
mkfifo "$WORK/ctl"
exec 9<>"$WORK/ctl" # we hold the only writer
CTL_OPEN=1
t0=$(date +%s%N)
unshare -n -- bash -c 'ip link set lo up && exec "$@"' _ \
    "$PYTHON" "$HERE/mksockets.py" -n "$N" -p "$P" -l "$LISTENERS" --port-base "$PORT_BASE" \
    <"$WORK/ctl" >"$WORK/mk.out" 2>"$WORK/mk.err" 9>&- &
MKPID=$!
deadline=$((SECONDS + READY_TIMEOUT))
until grep -q '^READY ' "$WORK/mk.out" 2>/dev/null; do
    if ! kill -0 "$MKPID" 2>/dev/null; then
        cat "$WORK/mk.err" >&2
        die "mksockets exited before it was ready"
    fi
    ((SECONDS < deadline)) || die "mksockets not ready after ${READY_TIMEOUT}s"
    sleep 0.05
done
NSPID=$(awk '/^READY /{print $2; exit}' "$WORK/mk.out")
BUILD_S=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN{printf "%.2f", (b-a)/1e9}')

in_ns() { nsenter -t "$NSPID" -n -- "$@"; }
alive() { kill -0 "$MKPID" 2>/dev/null || die "mksockets died during the run"; }

# ------------------------------------------------------------ facts --------
first_line() { "$@" 2>&1 | head -n1 || true; }
echo "# sockscope who benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- kernel: $(uname -r) ($(uname -m)); cpus: $(nproc) x $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
echo "- ss: $(first_line ss -V)"
if [[ -n $HYPERFINE ]]; then timer=$(first_line "$HYPERFINE" --version); else timer="date +%s%N loop"; fi
echo "- timing: $timer, median of $RUNS runs after 1 warm-up; RSS: /usr/bin/time -f %M, max of $RSS_RUNS runs"
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -c1)
echo "- sockscope: $SOCKSCOPE ($(first_line "$SOCKSCOPE" --version); git $rev${dirty:+, uncommitted changes})"
procs=(/proc/[0-9]*)
echo "- processes on host: ${#procs[@]}; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN{exit !(l > 0.5)}'; then
    echo "- WARNING: the machine is busy (load $load1): wall times are noisy; CPU ms is less affected"
fi
echo "- case: $N established TCP sockets, $P processes, $LISTENERS listeners (built in ${BUILD_S}s);" \
    "asking about port $PORT: 1 listener held by $P processes + $CONNS accepted connections"
echo

# ------------------------------------------------------------ output check --
FLOOR="floor: who :$PORT, owner walk doing nothing"
WHOLE="who :$PORT, task_file walk"
LS="sockscope ls -tan sport = :$PORT"
LSP="sockscope ls -tanp sport = :$PORT"
names=("sockscope who :$PORT" "sockscope who :$PORT --json" "ss -tanp 'sport = :$PORT'" "ss -tan 'sport = :$PORT'" "$FLOOR" "$WHOLE" "$LS" "$LSP")
cmd_of() { # name -> command line for hyperfine -N (shell-words split)
    case $1 in
        sockscope*) echo "$SOCKSCOPE ${1#sockscope }" ;;
        "who :"*) echo "env SOCKSCOPE_OWNERS_FDT=0 $SOCKSCOPE who :$PORT" ;;
        floor:*) echo "env SOCKSCOPE_OWNERS_NOOP=1 $SOCKSCOPE who :$PORT" ;;
        *) echo "$1" ;;
    esac
}

check() { # name -> prints a verdict line; returns 1 on wrong output
    local name=$1 out=$WORK/out rc=0
    if [[ $name == "$WHOLE" ]]; then
        printf '  %-34s %s\n' "task_file walk" "not checked (the other owner walk; tests compare the two)"
        return 0
    fi
    if [[ $name == floor:* ]]; then
        # The walk's program returns at once: every fd is visited, no
        # socket is read, no owner found. Timed as the floor, not checked.
        printf '  %-34s %s\n' "floor" "not checked (finds no owners by design)"
        return 0
    fi
    case $name in
        "sockscope who :$PORT --json") in_ns "$SOCKSCOPE" who ":$PORT" --json >"$out" 2>"$WORK/err" || rc=$? ;;
        "sockscope who :$PORT") in_ns "$SOCKSCOPE" who ":$PORT" >"$out" 2>"$WORK/err" || rc=$? ;;
        "ss -tanp"*) in_ns ss -tanp "sport = :$PORT" >"$out" 2>"$WORK/err" || rc=$? ;;
        "$LS") in_ns "$SOCKSCOPE" ls -tan sport = ":$PORT" >"$out" 2>"$WORK/err" || rc=$? ;;
        "$LSP") in_ns "$SOCKSCOPE" ls -tanp sport = ":$PORT" >"$out" 2>"$WORK/err" || rc=$? ;;
        "ss -tan "*) in_ns ss -tan "sport = :$PORT" >"$out" 2>"$WORK/err" || rc=$? ;;
    esac
    alive
    if ((rc != 0)); then
        printf '  %-34s exit %d: BAD OUTPUT\n' "$name" "$rc"; head -n3 "$WORK/err" | sed 's/^/    /'
        return 1
    fi
    local verdict
    case $name in
        *--json)
            verdict=$("$PYTHON" - "$out" "$P" "$CONNS" "$PORT" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
procs, conns, port = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = (len(d) == 1 and d[0]["socket"]["state"] == "listening"
      and d[0]["socket"]["local"]["port"] == port
      and len({o["pid"] for o in d[0]["socket"]["owners"]}) == procs
      and len(d[0]["listener"]["children"]) == conns
      and all(len(c["owners"]) == 1 for c in d[0]["listener"]["children"]))
kids = len(d[0]["listener"]["children"]) if d else 0
owners = len(d[0]["socket"]["owners"]) if d else 0
print(f"{'ok' if ok else 'BAD'} {len(d)} chain(s), listener with {owners} owners and {kids} connections")
EOF
            ) ;;
        "sockscope who :$PORT")
            if grep -q "connections on this port: $CONNS\$" "$out" && grep -q "^tcp LISTEN 127.0.0.1:$PORT " "$out"; then
                verdict="ok listener chain, 'connections on this port: $CONNS'"
            else
                verdict="BAD no listener chain with $CONNS connections"
            fi ;;
        "ss -tanp"* | "$LSP")
            local rows owned
            rows=$(($(wc -l <"$out") - 1)); owned=$(grep -c 'pid=' "$out" || true)
            if ((rows == CONNS + 1 && owned == rows)); then verdict="ok $rows rows, all with owners"
            else verdict="BAD $rows rows ($owned with owners), expected $((CONNS + 1))"; fi ;;
        "ss -tan "* | "$LS")
            local rows
            rows=$(($(wc -l <"$out") - 1))
            if ((rows == CONNS + 1)); then verdict="ok $rows rows"
            else verdict="BAD $rows rows, expected $((CONNS + 1))"; fi ;;
    esac
    printf '  %-34s %s\n' "$name" "$verdict"
    [[ $verdict == ok* ]]
}

echo "Output check:"
bad=0
for name in "${names[@]}"; do check "$name" || bad=1; done
echo
((bad == 0)) || { echo "RESULT: FAIL (wrong output; nothing timed)"; exit 1; }

# ------------------------------------------------------------ timing -------
: >"$WORK/results.tsv"
for name in "${names[@]}"; do
    cmd=$(cmd_of "$name")
    if [[ -n $HYPERFINE ]]; then
        in_ns "$HYPERFINE" -N --warmup 1 --runs "$RUNS" --style none --output null \
            --export-json "$WORK/t.json" "$cmd" >/dev/null 2>"$WORK/hf.err" ||
            { cat "$WORK/hf.err" >&2; die "hyperfine failed on: $cmd"; }
    else
        # shellcheck disable=SC2016 # expanded by the inner shell
        in_ns bash -c 'out=$2 runs=$3; eval "set -- $1"
            "$@" >/dev/null 2>&1
            for ((i = 0; i < runs; i++)); do
                t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $((t1 - t0))
            done >"$out.ns"' _ "$cmd" "$WORK/t.json" "$RUNS"
        "$PYTHON" -c '
import json, sys
t = [int(x) / 1e9 for x in open(sys.argv[1] + ".ns").read().split()]
json.dump({"results": [{"times": t}]}, open(sys.argv[1], "w"))' "$WORK/t.json"
    fi
    alive
    rss=0
    for ((i = 0; i < RSS_RUNS; i++)); do
        rm -f "$WORK/rss"
        # shellcheck disable=SC2016 # expanded by the inner shell
        in_ns bash -c 'out=$2; eval "set -- $1"; /usr/bin/time -f %M -o "$out" -- "$@" >/dev/null 2>&1' \
            _ "$cmd" "$WORK/rss" || true
        v=$(tail -n1 "$WORK/rss" 2>/dev/null || true); [[ $v =~ ^[0-9]+$ ]] || v=0
        ((v > rss)) && rss=$v
    done
    ((rss > 0)) || die "could not measure the RSS of: $name"
    "$PYTHON" - "$WORK/t.json" "$name" "$rss" >>"$WORK/results.tsv" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
cpu = (r["user"] + r["system"]) * 1000 if "user" in r else ""
print(sys.argv[2], " ".join(f"{t * 1000:.3f}" for t in r["times"]), cpu, sys.argv[3], sep="\t")
EOF
done

"$PYTHON" - "$WORK/results.tsv" "$PORT" "$TARGET" "$QUICK" <<'EOF'
import statistics, sys
path, port, target, quick = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
rows = {}
for line in open(path):
    name, times, cpu, rss = line.rstrip("\n").split("\t")
    t = [float(x) for x in times.split()]
    rows[name] = dict(med=statistics.median(t), lo=min(t), hi=max(t),
                      cpu=float(cpu) if cpu else None, rss=int(rss) / 1024)
print("| command | median ms | min–max ms | CPU ms | peak RSS MiB |")
print("|---|---:|---:|---:|---:|")
for name, r in rows.items():
    cpu = f"{r['cpu']:.1f}" if r["cpu"] is not None else "—"
    print(f"| `{name}` | {r['med']:.1f} | {r['lo']:.1f}–{r['hi']:.1f} | {cpu} | {r['rss']:.1f} |")
print()
who, whoj = rows[f"sockscope who :{port}"], rows[f"sockscope who :{port} --json"]
ssp, ss = rows[f"ss -tanp 'sport = :{port}'"], rows[f"ss -tan 'sport = :{port}'"]
floor = rows[f"floor: who :{port}, owner walk doing nothing"]
ratio = who["med"] / ssp["med"]
print("| ratio | value | target | verdict |")
print("|---|---:|---:|---|")
verdict = "info (smoke run)" if quick else ("PASS" if ratio <= target else "FAIL")
print(f"| who :{port} / ss -tanp 'sport = :{port}' (wall) | {ratio:.3f} | ≤ {target} | {verdict} |")
print(f"| who :{port} --json / ss -tanp (wall) | {whoj['med'] / ssp['med']:.3f} | — | info |")
if who["cpu"] and ssp["cpu"]:
    print(f"| who :{port} / ss -tanp (CPU user+sys) | {who['cpu'] / ssp['cpu']:.3f} | — | info |")
print(f"| who :{port} / ss -tan, no owners (wall) | {who['med'] / ss['med']:.3f} | — | info |")
print(f"| who :{port} RSS / ss -tanp RSS | {who['rss'] / ssp['rss']:.3f} | — | info |")
print(f"| floor: ss -tan 'sport = :{port}' (the dump alone) / ss -tanp | {ss['med'] / ssp['med']:.3f} | — | info |")
print(f"| floor of the task_file walk: who, its program doing nothing / ss -tanp | {floor['med'] / ssp['med']:.3f} | — | info |")
ls, lsp = rows[f"sockscope ls -tan sport = :{port}"], rows[f"sockscope ls -tanp sport = :{port}"]
print(f"| floor: ls -tan sport = :{port} (the dump who makes: every state, BOUND-INACTIVE too, which the kernel finds by a walk of its bind table) / ss -tanp | {ls['med'] / ssp['med']:.3f} | — | info |")
print(f"| ls -tan sport = :{port} / ss -tan 'sport = :{port}' (this ss asks for no BOUND-INACTIVE sockets) | {ls['med'] / ss['med']:.3f} | — | info |")
print(f"| ls -tanp sport = :{port} / ss -tanp 'sport = :{port}' | {lsp['med'] / ssp['med']:.3f} | — | info |")
whole = rows[f"who :{port}, task_file walk"]
print(f"| who, task_file walk (SOCKSCOPE_OWNERS_FDT=0) / ss -tanp | {whole['med'] / ssp['med']:.3f} | — | info |")
print()
print("RESULT:", "no target at this size (smoke run)" if quick else
      ("PASS" if ratio <= target else f"FAIL (ratio {ratio:.3f} > {target})"))
sys.exit(0 if quick or ratio <= target else 1)
EOF

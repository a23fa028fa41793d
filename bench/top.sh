#!/usr/bin/env bash
# bench/top.sh — what `sockscope top` costs on a large host, against
# `watch -n1 ss -tanp` doing the same job (the socket table with owners,
# redrawn every second).
#
# It builds N established TCP sockets over P processes with
# bench/mksockets.py in a new network namespace (loopback only), then runs
# each command in a pseudo-terminal of 80x24 (bench/ptyrun.py) for SECS
# seconds after its first screen, and reports CPU% of one core (the
# command and the children it waited for), peak RSS (VmHWM; for watch also
# the largest ss child), and how long the first screen took. Both read the
# namespace's sockets and walk every process's fd table on the host.
#
# Usage: bench/top.sh [--case N:P] [--secs S] [--sockscope PATH]
#   defaults: --case 40000:100 --secs 20, target/release/sockscope
# Targets (PASS/FAIL): top CPU <= 15 % of a core at 1 s refresh, peak RSS
# <= 64 MiB, first screen < 0.5 s.
# Needs root, python3, unshare, nsenter, ss, watch.
# Exit: 0 all targets met, 1 a target failed, 2 setup error.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SOCKSCOPE=${SOCKSCOPE:-$ROOT/target/release/sockscope}
PYTHON=${PYTHON:-python3}
CASE=40000:100
SECS=20
READY_TIMEOUT=${READY_TIMEOUT:-300}

die() { echo "top.sh: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --case) shift; CASE=${1:?--case needs N:P} ;;
        --secs) shift; SECS=${1:?--secs needs a number} ;;
        --sockscope) shift; SOCKSCOPE=${1:?--sockscope needs a path} ;;
        -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
((EUID == 0)) || die "must run as root (unshare -n, nsenter)"
for t in unshare nsenter ip ss watch "$PYTHON"; do
    command -v "$t" >/dev/null || die "$t not found"
done
[[ -x $SOCKSCOPE ]] || die "no $SOCKSCOPE: cargo build --release -p sockscope-cli"
N=${CASE%%:*}
P=${CASE##*:}

WORK=$(mktemp -d /tmp/sockscope-top-bench.XXXXXX)
MKPID=
cleanup() {
    trap - EXIT INT TERM
    # mksockets exits when its stdin (the fifo we hold) closes.
    exec 3>&- 2>/dev/null || true
    if [[ -n $MKPID ]]; then
        for _ in $(seq 50); do kill -0 "$MKPID" 2>/dev/null || break; sleep 0.1; done
        kill -TERM "$MKPID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkfifo "$WORK/in"
unshare -n -- bash -c 'ip link set lo up && exec "$@"' _ \
    "$PYTHON" "$HERE/mksockets.py" -n "$N" -p "$P" -l 8 \
    <"$WORK/in" >"$WORK/mk.out" 2>"$WORK/mk.err" &
MKPID=$!
exec 3>"$WORK/in"
deadline=$((SECONDS + READY_TIMEOUT))
until grep -q '^READY ' "$WORK/mk.out" 2>/dev/null; do
    kill -0 "$MKPID" 2>/dev/null || { cat "$WORK/mk.err" >&2; die "mksockets exited"; }
    ((SECONDS < deadline)) || die "mksockets not ready after ${READY_TIMEOUT}s"
    sleep 0.5
done
NSPID=$(awk '/^READY /{print $2; exit}' "$WORK/mk.out")
echo "case: $N sockets over $P processes (namespace of pid $NSPID); $SECS s each, pty 80x24"

run() { "$PYTHON" "$HERE/ptyrun.py" "$SECS" 24 80 "$@"; }
TOP=$(run 127.0.0.1: -- "$SOCKSCOPE" top --netns-pid "$NSPID" -d 1)
WATCH=$(run "Every " -- nsenter -t "$NSPID" -n -- watch -n1 ss -tanp)
# ss's own peak RSS, measured directly (the poll above can miss a short run).
SSRSS=0
if [[ -x /usr/bin/time ]]; then
    SSRSS=$(nsenter -t "$NSPID" -n -- /usr/bin/time -f %M ss -tanp 2>&1 >/dev/null | tail -1)
fi
echo "sockscope top -d 1:      $TOP"
echo "watch -n1 ss -tanp:      $WATCH"

echo "ss -tanp peak RSS KiB:   $SSRSS"
"$PYTHON" - "$TOP" "$WATCH" "$SSRSS" <<'PY'
import json, sys
t, w = json.loads(sys.argv[1]), json.loads(sys.argv[2])
wrss = max(w["rss_kib"], w["child_rss_kib"], int(sys.argv[3] or 0))
print(f"CPU % of a core: top {t['cpu_pct']:.1f}, watch+ss {w['cpu_pct']:.1f}, "
      f"ratio top/watch {t['cpu_pct'] / max(w['cpu_pct'], 0.01):.2f}")
print(f"peak RSS MiB:    top {t['rss_kib'] / 1024:.1f}, ss {wrss / 1024:.1f}, "
      f"ratio top/ss {t['rss_kib'] / max(wrss, 1):.2f}")
print(f"first screen s:  top {t['first_screen_s']:.2f}, watch {w['first_screen_s']:.2f}")
ok = True
for name, good in [("top CPU <= 15 %", t["cpu_pct"] <= 15.0),
                   ("top RSS <= 64 MiB", t["rss_kib"] <= 64 * 1024),
                   ("first screen < 0.5 s", t["first_screen_s"] < 0.5)]:
    print(f"  {'PASS' if good else 'FAIL'}  {name}")
    ok &= good
sys.exit(0 if ok else 1)
PY

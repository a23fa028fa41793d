#!/usr/bin/env bash
# Peak memory of `sockscope capture -r` when every packet opens a new
# conversation: N SYNs (default 1M, bench/gen_syns.py), read in line mode
# and with --conv, with tcpdump's line mode in the same run for scale.
#
# Targets (issue 12 item 5): --conv under 512 MiB for 1M conversations;
# line mode keeps no per-conversation state beyond what the analysis of
# the followed conversations needs (bounded by --max-tracked).
#
# Needs python3, /usr/bin/time; tcpdump optional.
# Usage: bench/capture_mem.sh [N] [--sockscope PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
n=1000000
bin=
while [ $# -gt 0 ]; do
    case $1 in
        --sockscope) bin=$2; shift 2 ;;
        *) n=$1; shift ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench/capture_mem.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
if [ -z "$bin" ]; then
    cargo build --release -q -p sockscope-cli
    bin=$PWD/target/release/sockscope
fi
work=$(mktemp -d /tmp/sockscope-bench-mem.XXXXXX)
trap 'rm -rf "$work"' EXIT
pcap=$work/syns.pcap
python3 bench/gen_syns.py "$n" "$pcap"
echo "machine: $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
echo "capture: $n SYNs, $(( $(stat -c %s "$pcap") / 1048576 )) MiB, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# run LABEL CMD...: peak RSS (MiB) and wall seconds of CMD, output discarded.
fail=0
run() {
    local label=$1; shift
    /usr/bin/time -f '%M %e' -o "$work/t" "$@" >/dev/null 2>"$work/err" || true
    read -r kb secs <"$work/t"
    printf '| %-44s | %8d | %6s |\n' "$label" $((kb / 1024)) "$secs"
    echo $((kb / 1024)) >"$work/last"
}
printf '| %-44s | %8s | %6s |\n' command "peak MiB" seconds
printf '|%s|%s|%s|\n' "----------------------------------------------" "---------:" "-------:"
run "sockscope capture -r F" "$bin" capture -r "$pcap"
line=$(cat "$work/last")
run "sockscope capture -r F --conv" "$bin" capture -r "$pcap" --conv
conv=$(cat "$work/last")
grep -h "dropped from the analysis" "$work/err" >&2 || true
run "sockscope capture -r F --jsonl" "$bin" capture -r "$pcap" --jsonl
if command -v tcpdump >/dev/null; then
    run "tcpdump -nn -r F" tcpdump -nn -r "$pcap"
fi
if [ "$conv" -lt 512 ]; then echo "--conv: $conv MiB < 512: PASS"; else echo "--conv: $conv MiB >= 512: FAIL"; fail=1; fi
# Line mode: the tracked state only (262144 conversations by default).
if [ "$line" -lt 256 ]; then echo "lines: $line MiB < 256: PASS"; else echo "lines: $line MiB >= 256: FAIL"; fail=1; fi
exit $fail

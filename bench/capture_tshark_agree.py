#!/usr/bin/env python3
"""TCP agreement of `sockscope capture` with tshark on third-party captures.

For every pcap / pcapng file under the given directories (e.g. tcpdump's
and libpcap's tests/, many malformed on purpose), in the same run:

  tshark -r F -Y 'tcp and not icmp and not icmpv6' -T fields -e ...
  sockscope capture -r F --jsonl

and, by frame number:

  - frames where tshark finds TCP and sockscope does not (and the reverse),
    with the encapsulation tshark names for them (frame.protocols);
  - on the frames both decode as TCP, agreement per field (stream, seq,
    ack, next seq, length, flags, window and each tcp.analysis.* field),
    the same fields and mapping as crates/cli/tests/fixtures/capture/helpers.rs.

TCP quoted inside ICMP errors is left out: tshark dissects it as TCP,
sockscope shows it as the ICMP message it is.

Usage: bench/capture_tshark_agree.py [--sockscope PATH] [--log FILE] DIR...
Exit status 0; the figures go to stdout, per-file differences to --log.
"""

import argparse
import collections
import json
import os
import subprocess
import sys

FIELDS = [
    "frame.number",
    "tcp.stream",
    "tcp.seq",
    "tcp.ack",
    "tcp.nxtseq",
    "tcp.len",
    "tcp.flags",
    "tcp.window_size",
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_lost_segment",
    "tcp.analysis.duplicate_ack",
    "tcp.analysis.duplicate_ack_num",
    "tcp.analysis.duplicate_ack_frame",
    "tcp.analysis.zero_window",
    "tcp.analysis.zero_window_probe",
    "tcp.analysis.zero_window_probe_ack",
    "tcp.analysis.window_full",
    "tcp.analysis.window_update",
    "tcp.analysis.keep_alive",
    "tcp.analysis.keep_alive_ack",
    "tcp.analysis.reused_ports",
    "tcp.analysis.acks_frame",
    "tcp.analysis.ack_rtt",
    "tcp.analysis.bytes_in_flight",
    "tcp.analysis.push_bytes_sent",
]
TIMEOUT = 120


def tshark_rows(path):
    cmd = ["tshark", "-r", path, "-Y", "tcp and not icmp and not icmpv6",
           "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
    for f in FIELDS + ["frame.protocols"]:
        cmd += ["-e", f]
    o = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
    rows = {}
    for line in o.stdout.decode("utf-8", "replace").splitlines():
        r = line.split("|")
        if r and r[0].isdigit():
            rows[int(r[0])] = r
    return rows


def num(v):
    return "" if v is None or isinstance(v, bool) else str(v)


def our_rows(sockscope, path):
    o = subprocess.run([sockscope, "capture", "-r", path, "--jsonl"],
                       capture_output=True, timeout=TIMEOUT,
                       env=dict(os.environ, TZ="UTC"))
    rows = {}
    panicked = b"panicked" in o.stderr
    for line in o.stdout.decode("utf-8", "replace").splitlines():
        try:
            p = json.loads(line)
        except ValueError:
            continue
        if p.get("type") != "packet" or not p.get("tcp"):
            continue
        t = p["tcp"]
        an = set(t.get("analysis") or [])
        r = [
            num(p.get("frame")),
            num(t.get("stream")),
            num(t.get("seq")),
            num(t.get("ack_abs") if t.get("ack") is None else t.get("ack")),
            num(t.get("next_seq")),
            num(t.get("payload_bytes")),
            "0x%04x" % (t.get("flags_raw") or 0),
            num(t.get("window_bytes")),
        ]
        for f in FIELDS[8:]:
            name = f[len("tcp.analysis."):]
            if name == "duplicate_ack_num":
                r.append(num(t.get("dup_ack_num")))
            elif name == "duplicate_ack_frame":
                r.append(num(t.get("dup_ack_frame")))
            elif name == "acks_frame":
                r.append(num(t.get("acks_frame")))
            elif name == "ack_rtt":
                ns = t.get("ack_rtt_ns")
                if ns is None:
                    r.append("")
                else:
                    sign = "-" if ns < 0 else ""
                    a = abs(ns)
                    r.append("%s%d.%09d" % (sign, a // 10**9, a % 10**9))
            elif name in ("bytes_in_flight", "push_bytes_sent"):
                r.append(num(t.get(name)))
            else:
                r.append("1" if name in an else "")
        rows[p["frame"]] = r
    return rows, o.returncode, panicked


def encaps(protocols):
    """What tshark found around the TCP header: the layers between the
    link and tcp, e.g. 'eth:vlan:ip' -> 'vlan'."""
    layers = protocols.split(":")
    if "tcp" in layers:
        layers = layers[:layers.index("tcp")]
    skip = {"eth", "ethertype", "ip", "ipv6", "sll", "frame", "null", "raw", "loop", "pkt_comment"}
    inner = [x for x in layers if x not in skip]
    return ":".join(inner) or "plain"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockscope", default="target/release/sockscope")
    ap.add_argument("--log", default=None)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    files = []
    for d in a.dirs:
        for root, _, names in os.walk(d):
            for n in sorted(names):
                if n.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz")) and not n.endswith(".gz"):
                    files.append(os.path.join(root, n))
    log = open(a.log, "w") if a.log else None
    agree = collections.Counter()
    total = 0
    missing = collections.Counter()
    extra = 0
    files_with_tcp = 0
    panics = 0
    timeouts = 0
    for path in files:
        try:
            theirs = tshark_rows(path)
            ours, rc, panicked = our_rows(a.sockscope, path)
        except subprocess.TimeoutExpired:
            timeouts += 1
            if log:
                print(f"{path}: timeout", file=log)
            continue
        panics += panicked
        if theirs:
            files_with_tcp += 1
        for n, r in theirs.items():
            if n not in ours:
                missing[encaps(r[-1])] += 1
                if log:
                    print(f"{path}: frame {n}: tshark TCP ({r[-1]}), sockscope not", file=log)
                continue
            total += 1
            o = ours[n]
            for i, f in enumerate(FIELDS):
                x = o[i] if i < len(o) else ""
                y = r[i] if i < len(r) else ""
                if x == y:
                    agree[f] += 1
                elif log:
                    print(f"{path}: frame {n}: {f}: sockscope {x!r}, tshark {y!r}", file=log)
        for n in ours:
            if n not in theirs:
                extra += 1
                if log:
                    print(f"{path}: frame {n}: sockscope TCP, tshark not", file=log)
    print(f"files: {len(files)} ({files_with_tcp} with TCP per tshark), "
          f"sockscope panics: {panics}, timeouts: {timeouts}")
    print(f"TCP frames in both: {total}; tshark TCP but not sockscope: "
          f"{sum(missing.values())}; sockscope TCP but not tshark: {extra}")
    for k, v in missing.most_common(15):
        print(f"  missing under {k}: {v}")
    if total:
        worst = min(agree[f] for f in FIELDS)
        print(f"field agreement on common frames (lowest field {100 * worst / total:.3f} %):")
        for f in FIELDS:
            print(f"  {f:40s} {100 * agree[f] / total:8.3f} %  ({total - agree[f]} differ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""sockscope capture against tshark on a directory of third-party captures.

    bench/corpus.py DIR [--sockscope BIN] [--jobs N] [--timeout S] [--exclude-icmp]
                        [--list-missed] [--list-disagree]

For every capture file under DIR (any name; files tshark cannot read are
counted and skipped), it runs

    tshark -r F -Y tcp -T fields -e FIELD ...       (the fields below)
    sockscope capture -r F --jsonl

and matches TCP packets by frame number. It prints:

  - files read, files tshark could not read, sockscope exits by code,
    panics (exit 101 or "panicked" on stderr) and timeouts (hangs);
  - frames in which tshark finds TCP and sockscope does not ("missed"),
    by the layers tshark found around the TCP header, and the reverse
    ("extra"); by file with --list-missed;
  - for each field, how many matched frames agree, and the share; and
    the streams as a grouping: frames whose stream index maps one to one
    onto tshark's (tshark also numbers TCP headers quoted in ICMP errors
    and headers cut short as streams, which shifts its later indices).

--exclude-icmp leaves out the TCP headers tshark finds quoted inside ICMP
errors (sockscope shows those packets as the ICMP messages they are).

Get a corpus with the `fetch` tool or git: the-tcpdump-group/tcpdump
(tests/), the-tcpdump-group/libpcap (testprogs/, tests/),
OISF/suricata-verify (tests/*/*.pcap), zeek/zeek (testing/btest/Traces).
The figures go in bench/RESULTS.md with the command and the corpus.
"""
import argparse
import concurrent.futures as cf
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


def tshark_rows(path, timeout, exclude_icmp):
    shown = "tcp and not icmp and not icmpv6" if exclude_icmp else "tcp"
    cmd = ["tshark", "-n", "-r", path, "-Y", shown, "-T", "fields",
           "-E", "separator=|", "-E", "occurrence=f"]
    for f in FIELDS + ["frame.protocols"]:
        cmd += ["-e", f]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    rows = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        r = line.split("|")
        if r and r[0].isdigit():
            rows[int(r[0])] = r
    if p.returncode != 0 and not rows:
        return None
    return rows


def encaps(protocols):
    """The layers tshark found between the link and TCP ('plain' for
    none), e.g. 'eth:ethertype:vlan:ethertype:ip:tcp' -> 'vlan'."""
    layers = protocols.split(":")
    if "tcp" in layers:
        layers = layers[:layers.index("tcp")]
    skip = {"eth", "ethertype", "ip", "ipv6", "sll", "frame", "null", "raw",
            "loop", "pkt_comment"}
    return ":".join(x for x in layers if x not in skip) or "plain"


def num(v):
    return "" if v is None or isinstance(v, bool) else str(v)


def our_row(o):
    t = o["tcp"]
    analysis = set(t.get("analysis") or [])
    ack = t.get("ack")
    if ack is None:
        ack = t.get("ack_abs")
    r = [
        num(o.get("frame")),
        num(t.get("stream")),
        num(t.get("seq")),
        num(ack),
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
                r.append("%s%d.%09d" % (sign, a // 1_000_000_000, a % 1_000_000_000))
        elif name in ("bytes_in_flight", "push_bytes_sent"):
            r.append(num(t.get(name)))
        else:
            r.append("1" if name in analysis else "")
    return r


def ours(binary, path, timeout):
    try:
        p = subprocess.run([binary, "capture", "-r", path, "--jsonl"],
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", {}, ""
    err = p.stderr.decode("utf-8", "replace")
    rows = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("type") == "packet" and o.get("tcp") is not None:
            rows[o["frame"]] = our_row(o)
    return p.returncode, rows, err


def one(args, path):
    theirs = tshark_rows(path, args.timeout * 3, args.exclude_icmp)
    if theirs is None:
        return {"path": path, "unreadable": True}
    code, mine, err = ours(args.sockscope, path, args.timeout)
    res = {"path": path, "code": code, "panic": code == 101 or "panicked" in err,
           "tshark": len(theirs), "ours": len(mine)}
    res["missed"] = sorted(set(theirs) - set(mine))
    res["missed_under"] = [encaps(theirs[n][-1]) for n in res["missed"]]
    res["extra"] = sorted(set(mine) - set(theirs))
    agree = [0] * len(FIELDS)
    matched = 0
    # Streams as a grouping: ours -> theirs, first seen wins, one to one.
    ours_to_theirs, theirs_taken, grouped = {}, set(), 0
    for n in sorted(set(theirs) & set(mine)):
        a, b = mine[n], theirs[n]
        matched += 1
        want = ours_to_theirs.setdefault(a[1], b[1] if b[1] not in theirs_taken else None)
        theirs_taken.add(b[1])
        grouped += want == b[1]
        for i in range(len(FIELDS)):
            x = a[i] if i < len(a) else ""
            y = b[i] if i < len(b) else ""
            if x == y:
                agree[i] += 1
    res["matched"] = matched
    res["agree"] = agree
    res["grouped"] = grouped
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--sockscope", default="target/release/sockscope")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--exclude-icmp", action="store_true",
                    help="leave out TCP headers quoted inside ICMP errors")
    ap.add_argument("--list-missed", action="store_true")
    ap.add_argument("--list-disagree", action="store_true",
                    help="files with a field that disagrees, and which")
    args = ap.parse_args()
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(args.dir) for f in fs)
    results = []
    with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        for r in ex.map(lambda p: one(args, p), files):
            results.append(r)
    read = [r for r in results if not r.get("unreadable")]
    codes = {}
    for r in read:
        codes[r["code"]] = codes.get(r["code"], 0) + 1
    panics = [r["path"] for r in read if r["panic"]]
    hangs = [r["path"] for r in read if r["code"] == "timeout"]
    print(f"files: {len(files)}; tshark could not read {len(files) - len(read)}; "
          f"sockscope exits: {dict(sorted(codes.items(), key=str))}")
    print(f"panics: {len(panics)}; timeouts ({args.timeout:.0f} s): {len(hangs)}")
    for p in panics + hangs:
        print(f"  {p}")
    t_frames = sum(r["tshark"] for r in read)
    missed = sum(len(r["missed"]) for r in read)
    extra = sum(len(r["extra"]) for r in read)
    matched = sum(r["matched"] for r in read)
    print(f"TCP frames: tshark {t_frames}, matched {matched}, "
          f"missed (tshark TCP, sockscope not) {missed}, extra {extra}")
    under = {}
    for r in read:
        for u in r["missed_under"]:
            under[u] = under.get(u, 0) + 1
    for u, c in sorted(under.items(), key=lambda x: -x[1])[:15]:
        print(f"  missed under {u}: {c}")
    if args.list_missed:
        for r in sorted(read, key=lambda r: -len(r["missed"])):
            if r["missed"]:
                print(f"  missed {len(r['missed']):6d}  {r['path']}")
    if args.list_disagree:
        for r in read:
            bad = [f"{FIELDS[i]}:{r['matched'] - a}" for i, a in enumerate(r["agree"])
                   if a != r["matched"]]
            if bad:
                print(f"  disagree  {r['path']}  {' '.join(bad)}")
    print("field agreement over matched frames:")
    for i, f in enumerate(FIELDS):
        a = sum(r["agree"][i] for r in read)
        share = 100.0 * a / matched if matched else 100.0
        print(f"  {f:40s} {a:8d} / {matched}  {share:8.3f} %")
    grouped = sum(r["grouped"] for r in read)
    share = 100.0 * grouped / matched if matched else 100.0
    print(f"  {'tcp.stream as a grouping':40s} {grouped:8d} / {matched}  {share:8.3f} %")
    files_all_equal = sum(1 for r in read if r["matched"] and
                          all(x == r["matched"] for x in r["agree"]))
    print(f"files with every field equal on every matched frame: {files_all_equal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

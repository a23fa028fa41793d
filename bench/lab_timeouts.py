#!/usr/bin/env python3
"""bench/lab_timeouts.py — how `sockscope lab serve` copes with slow clients.

Runs itself in a private network namespace (`unshare -n`, lo up); the server
and its clients talk over loopback only. Needs root, curl and python3.

Usage: bench/lab_timeouts.py BINARY WHAT [MODEL...]
  slowbody MODEL   while clients send a POST body (Content-Length: 65536) one
                   byte every 2 s (1 such client for single, 25 with
                   --max-conns 20 otherwise): how long until a normal client
                   gets 200, then how long the server takes to exit after
                   SIGTERM with such clients connected (capped at 30 s).
  slowread MODEL.. a sparse file of SIZE_MB MiB (512) fetched with
                   `curl --limit-rate RATE` (8M): curl's exit code and the
                   bytes received (default --send-timeout of 30 s).
MODEL: single, fork, epoll, prefork:2, reuseport:2 (colon for the count).
"""
import os, signal, socket, subprocess, sys, tempfile, threading, time

if len(sys.argv) < 4:
    sys.exit(__doc__)
if not os.environ.get("LAB_TIMEOUTS_IN_NETNS"):
    os.environ["LAB_TIMEOUTS_IN_NETNS"] = "1"
    os.execvp("unshare", ["unshare", "-n", "--", sys.executable, *sys.argv])
BIN, WHAT, MODELS = sys.argv[1], sys.argv[2], sys.argv[3:]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
root = tempfile.mkdtemp(prefix="sockscope-lab-timeouts.")
with open(f"{root}/flag", "w") as f:
    f.write("flag\n")


def start(args):
    p = subprocess.Popen([BIN, "lab", "serve", *args, "--root", root,
                          "--addr", "127.0.0.1:8080"], stdout=subprocess.PIPE)
    p.stdout.readline()
    return p


def slow_body(stop):
    s = socket.create_connection(("127.0.0.1", 8080))
    s.sendall(b"POST /flag HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n")
    try:
        while not stop.is_set():
            s.sendall(b"x")
            time.sleep(2)
    except OSError:
        pass


def curl_code():
    o = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "60", "http://127.0.0.1:8080/flag"],
                       capture_output=True, text=True)
    return o.stdout


def wait_exit(p, cap):
    t0 = time.time()
    while time.time() - t0 < cap:
        if p.poll() is not None:
            return time.time() - t0
        time.sleep(0.1)
    return None


def tricklers(n, stop):
    ths = [threading.Thread(target=slow_body, args=(stop,), daemon=True) for _ in range(n)]
    for t in ths:
        t.start()
    return ths


if WHAT == "slowbody":
    for model in MODELS:
        n, extra = (1, []) if model == "single" else (25, ["--max-conns", "20"])
        p = start([*model.split(":"), *extra])
        stop = threading.Event()
        tricklers(n, stop)
        time.sleep(1)
        t0, codes = time.time(), []
        while time.time() - t0 < 60:
            codes.append(curl_code())
            if codes[-1] == "200":
                break
            time.sleep(0.5)
        print(f"slowbody {model}: {n} trickling client(s); a normal client got "
              f"{codes[-1]} after {time.time() - t0:.1f} s (answers before: {sorted(set(codes[:-1]))})")
        stop.set()
        time.sleep(2.5)
        stop = threading.Event()
        tricklers(min(n, 5), stop)
        time.sleep(1)
        p.send_signal(signal.SIGTERM)
        e = wait_exit(p, 30)
        print(f"slowbody {model}: exit after SIGTERM with trickling clients: "
              + (f"{e:.1f} s" if e is not None else "still running after 30 s"))
        stop.set()
        p.kill()
elif WHAT == "slowread":
    size_mb = int(os.environ.get("SIZE_MB", "512"))
    rate = os.environ.get("RATE", "8M")
    with open(f"{root}/big", "wb") as f:
        f.truncate(size_mb << 20)
    for model in MODELS:
        p = start(model.split(":"))
        t0 = time.time()
        o = subprocess.run(["curl", "-s", "-o", "/dev/null", "--limit-rate", rate,
                            "-w", "%{size_download}", "http://127.0.0.1:8080/big"],
                           capture_output=True, text=True)
        print(f"slowread {model}: {size_mb} MiB at {rate}/s: curl exit {o.returncode}, "
              f"{int(o.stdout or 0)} of {size_mb << 20} bytes in {time.time() - t0:.1f} s")
        p.send_signal(signal.SIGTERM)
        wait_exit(p, 40)
        p.kill()
else:
    sys.exit(__doc__)

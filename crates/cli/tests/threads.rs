//! Owners are one per distinct fd table, labelled with the thread id where
//! the table is not the process's main one: a process whose main thread
//! exited while 8 threads run (its /proc/PID/fd is empty, the threads hold
//! the socket), and a thread that called unshare(CLONE_FILES). Checked for
//! the BPF owner iterator (`ls -p` as root), the /proc walk (the library's
//! `owners::scan`), `proc PID` and `who PID/FD`; and a listener shared by
//! forked processes and such threads, for `who :PORT` (whose iterator
//! reports only that port's fds) against the full scans.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Scene, sockscope};
use serde_json::Value;
use sockscope::source::owners;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/threads.py");

fn start(mode: &str) -> Scene {
    // One file per scene: tests run side by side, some in the same mode.
    static SCENES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SCENES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let manifest = std::env::temp_dir().join(format!(
        "sockscope-threads-{mode}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&manifest);
    let m = manifest.to_str().unwrap().to_string();
    let mut sc = Scene::start_command(&["python3", FIXTURE, mode, &m], "its manifest", |_| {
        std::path::Path::new(&m).exists()
    });
    sc.manifest = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let _ = std::fs::remove_file(&manifest);
    sc
}

/// (pid, tid, fd) of every owner of `inode` in `ls -tlp --json`.
fn ls_owners(sc: &Scene, inode: u64) -> Vec<(u64, Option<u64>, u64)> {
    let list = sc.sockscope("ls", &["-tlp", "--json"]).json_array();
    let v = list
        .iter()
        .find(|v| v["inode"].as_u64() == Some(inode))
        .unwrap_or_else(|| panic!("inode {inode} not listed"));
    let mut o: Vec<_> = v["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["pid"].as_u64().unwrap(),
                o["tid"].as_u64(),
                o["fd"].as_u64().unwrap(),
            )
        })
        .collect();
    o.sort();
    o
}

/// The same from the /proc walk.
fn proc_owners(inode: u64) -> Vec<(u64, Option<u64>, u64)> {
    let scan = owners::scan("/proc").unwrap();
    let mut o: Vec<_> = scan
        .owners(inode)
        .iter()
        .map(|o| (u64::from(o.pid), o.tid.map(u64::from), u64::from(o.fd)))
        .collect();
    o.sort();
    o
}

#[test]
fn a_process_whose_main_thread_exited() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("leader-exited");
    let pid = u64::from(sc.pid);
    let inode = sc.num("/inode");
    let fd = sc.num("/fd");
    let first = sc.manifest["tids"][0].as_u64().unwrap();
    let want = vec![(pid, Some(first), fd)];
    assert_eq!(ls_owners(&sc, inode), want, "one owner, not one per thread");
    assert_eq!(proc_owners(inode), want, "the /proc walk agrees");

    // proc PID works although the leader is a zombie, and lists the fd in
    // the threads' table.
    let p = sockscope(&["proc", &pid.to_string(), "--json"]);
    p.expect_code(0);
    let v: Value = serde_json::from_str(&p.stdout).unwrap();
    let row = v["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fd"].as_u64() == Some(fd) && r["socket"]["inode"].as_u64() == Some(inode))
        .unwrap_or_else(|| panic!("fd {fd} not in proc's list: {v}"));
    assert_eq!(row["tid"].as_u64(), Some(first));
    let text = sockscope(&["proc", &pid.to_string()]);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!("{fd}@{first} tcp")),
        "{}",
        text.stdout
    );

    // who PID/FD resolves it through the threads' table.
    let w = sockscope(&["who", &format!("{pid}/{fd}")]);
    w.expect_code(0);
    assert!(
        w.stdout.contains(&format!(
            "/proc/{pid}/task/{first}/fd/{fd} -> socket:[{inode}]"
        )),
        "{}",
        w.stdout
    );
}

#[test]
fn a_thread_with_its_own_fd_table() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("unshared");
    let pid = u64::from(sc.pid);
    let tid = sc.num("/thread_tid");
    let (fd, inode) = (sc.num("/fd"), sc.num("/inode"));
    let (tfd, tinode) = (sc.num("/thread_fd"), sc.num("/thread_inode"));
    // The thread's copy of the table holds the earlier listener too.
    let both = vec![(pid, None, fd), (pid, Some(tid), fd)];
    assert_eq!(ls_owners(&sc, inode), both);
    assert_eq!(proc_owners(inode), both);
    // The listener opened after unshare is only in the thread's table.
    let own = vec![(pid, Some(tid), tfd)];
    assert_eq!(ls_owners(&sc, tinode), own);
    assert_eq!(proc_owners(tinode), own);
    let text = sc.sockscope("ls", &["-tlp"]);
    assert!(
        text.stdout
            .contains(&format!("(pid={pid},tid={tid},fd={tfd})")),
        "{}",
        text.stdout
    );
    // who PID/FD finds the fd that only the thread's table has.
    let w = sockscope(&["who", &format!("{pid}/{tfd}")]);
    w.expect_code(0);
    assert!(
        w.stdout.contains(&format!(
            "/proc/{pid}/task/{tid}/fd/{tfd} -> socket:[{tinode}]"
        )),
        "{}",
        w.stdout
    );
}

/// What `who -v` says when the owners came from the fd-array walk.
const FDT_NOTE: &str = "fd array walked by a BPF task iterator";

/// `who --netns-pid PID :PORT --json -v` with `env` (VAR=value) set: the
/// owners of the port's first chain, and what -v said.
fn who_port(sc: &Scene, port: u64, env: &[&str]) -> (Vec<(u64, Option<u64>, u64)>, String) {
    let (pid, port) = (sc.pid.to_string(), format!(":{port}"));
    let mut args: Vec<&str> = env.to_vec();
    args.extend([
        common::BIN,
        "who",
        "--netns-pid",
        &pid,
        &port,
        "--json",
        "-v",
    ]);
    let w = common::run_cmd("env", &args);
    w.expect_code(0);
    let v: Value = serde_json::from_str(&w.stdout).unwrap();
    (triples(&v[0]["socket"]["owners"]), w.stderr)
}

/// (pid, tid, fd) of every owner in a JSON owner list.
fn triples(owners: &Value) -> Vec<(u64, Option<u64>, u64)> {
    let mut o: Vec<_> = owners
        .as_array()
        .unwrap_or_else(|| panic!("no owner list: {owners}"))
        .iter()
        .map(|o| {
            (
                o["pid"].as_u64().unwrap(),
                o["tid"].as_u64(),
                o["fd"].as_u64().unwrap(),
            )
        })
        .collect();
    o.sort();
    o
}

#[test]
fn who_port_lists_every_table_that_holds_a_shared_listener() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("shared");
    let pid = u64::from(sc.pid);
    let (port, fd, inode) = (sc.num("/port"), sc.num("/fd"), sc.num("/inode"));
    let kids: Vec<u64> = sc.manifest["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let first = sc.manifest["exited_tids"][0].as_u64().unwrap();
    let mut want = vec![
        (pid, None, fd),
        (pid, Some(sc.num("/thread_tid")), fd),
        (kids[0], None, fd),
        (kids[1], Some(first), fd),
    ];
    want.sort();
    // The full scans: the BPF iterator over every fd, and /proc.
    assert_eq!(ls_owners(&sc, inode), want, "ls -p");
    assert_eq!(proc_owners(inode), want, "the /proc walk");
    // who :PORT, filtered in the kernel, finds the same four.
    let w = sc.sockscope("who", &[&format!(":{port}"), "--json"]);
    w.expect_code(0);
    let v: Value = serde_json::from_str(&w.stdout).unwrap();
    let chains = v.as_array().unwrap();
    assert_eq!(chains.len(), 1, "{v:#}");
    assert_eq!(chains[0]["socket"]["inode"].as_u64(), Some(inode));
    assert_eq!(triples(&chains[0]["socket"]["owners"]), want, "who :{port}");
    // Each owner also has its own chain (fd link, process).
    assert_eq!(chains[0]["owners"].as_array().map(Vec::len), Some(4));
    // The same by the `task_file` walk (SOCKSCOPE_OWNERS_FDT=0), whether
    // it is split by process between two threads or runs whole (sockscope
    // decides from the files per process; the environment forces each
    // way).
    for (split, note) in [("1", true), ("0", false)] {
        let split_env = format!("SOCKSCOPE_OWNERS_SPLIT={split}");
        let (owners, notes) = who_port(&sc, port, &["SOCKSCOPE_OWNERS_FDT=0", &split_env]);
        assert_eq!(owners, want, "who :{port} with {split_env}");
        // Linux 6.1+ walks one process at a time.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut n = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let per_process = (n.next().unwrap_or(0), n.next().unwrap_or(0)) >= (6, 1);
        assert_eq!(
            notes.contains("walk split by process"),
            note && per_process,
            "SOCKSCOPE_OWNERS_SPLIT={split}, kernel {release}:\n{notes}"
        );
    }
    // By default, the walk of every task's fd array (said with -v).
    let (owners, notes) = who_port(&sc, port, &[]);
    assert_eq!(owners, want, "who :{port}, fd arrays");
    assert!(notes.contains(FDT_NOTE), "{notes}");
    // And 127.0.0.1:PORT, and the text output, the same.
    let w = sc.sockscope("who", &[&format!("127.0.0.1:{port}"), "--json"]);
    w.expect_code(0);
    let v: Value = serde_json::from_str(&w.stdout).unwrap();
    assert_eq!(
        triples(&v[0]["socket"]["owners"]),
        want,
        "who 127.0.0.1:{port}"
    );
    let text = sc.sockscope("who", &[&format!(":{port}")]);
    text.expect_code(0);
    for (p, t, f) in &want {
        let dir = match t {
            Some(t) => format!("/proc/{p}/task/{t}/fd/{f}"),
            None => format!("/proc/{p}/fd/{f}"),
        };
        assert!(
            text.stdout.contains(&format!("{dir} -> socket:[{inode}]")),
            "{dir} missing:\n{}",
            text.stdout
        );
    }
}

#[test]
fn a_socket_from_another_namespace() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("moved-netns");
    let pid = sc.pid.to_string();
    let (fd, inode) = (sc.num("/fd"), sc.num("/inode"));
    assert_ne!(sc.num("/socket_netns"), sc.num("/process_netns"));
    // proc finds the socket in the namespace it lives in.
    let p = sockscope(&["proc", &pid, "--json"]);
    p.expect_code(0);
    let v: Value = serde_json::from_str(&p.stdout).unwrap();
    let row = v["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fd"].as_u64() == Some(fd))
        .unwrap();
    assert_eq!(row["socket"]["inode"].as_u64(), Some(inode), "{row}");
    assert_eq!(row["socket"]["state"], "listening");
    // who PID/FD too.
    let w = sockscope(&["who", &format!("{pid}/{fd}")]);
    w.expect_code(0);
    assert!(w.stdout.contains("127.0.0.1:7903"), "{}", w.stdout);
}

/// `who :PORT` where the port's listener sits past the first 4,032 fds of
/// two tables (the fd-array walk reads a table in runs of that many fds,
/// resuming the task where the last run stopped): every copy is found,
/// by both owner walks, as the full scans find them.
#[test]
fn who_port_finds_fds_past_the_first_run_of_a_large_table() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("many-fds");
    let pid = u64::from(sc.pid);
    let (port, inode) = (sc.num("/port"), sc.num("/inode"));
    let tid = sc.num("/thread_tid");
    let (fd, fd2) = (sc.num("/fd"), sc.num("/fd2"));
    assert!(fd > 5000, "the listener comes after 5,000 sockets: fd {fd}");
    // The thread's copy of the table holds the first two too.
    let mut want = vec![
        (pid, None, fd),
        (pid, None, fd2),
        (pid, Some(tid), fd),
        (pid, Some(tid), fd2),
        (pid, Some(tid), 9500),
    ];
    want.sort();
    assert_eq!(ls_owners(&sc, inode), want, "ls -p");
    assert_eq!(proc_owners(inode), want, "the /proc walk");
    for fdt in ["1", "0"] {
        let (owners, notes) = who_port(&sc, port, &[&format!("SOCKSCOPE_OWNERS_FDT={fdt}")]);
        assert_eq!(owners, want, "who :{port} with SOCKSCOPE_OWNERS_FDT={fdt}");
        assert_eq!(notes.contains(FDT_NOTE), fdt == "1", "{notes}");
    }
}

/// Where the fd-array walk cannot load (Linux before 6.4 has no
/// bpf_iter_num kfuncs), `ls -p` takes the task_file walk, finds the same
/// owners, and `-v` says which walk ran and why. Older kernels are played
/// by hiding the kfunc from the BTF sockscope reads: a copy of the
/// kernel's BTF with the name changed, mounted over /sys/kernel/btf/vmlinux
/// in a mount namespace of the command's own.
#[test]
fn without_the_fd_array_walk_ls_p_takes_the_task_file_walk_and_says_why() {
    if root::skip_without_root() {
        return;
    }
    let sc = start("shared");
    let inode = sc.num("/inode");
    let want = ls_owners(&sc, inode);
    assert_eq!(want.len(), 4, "{want:?}");
    let pid = sc.pid.to_string();
    let ls = |runner: &[&str]| {
        let mut args: Vec<&str> = runner.to_vec();
        args.extend([
            common::BIN,
            "-v",
            "ls",
            "--netns-pid",
            &pid,
            "-tlp",
            "--json",
        ]);
        let r = common::run_cmd(args[0], &args[1..]);
        r.expect_code(0);
        let owners = r
            .json_array()
            .iter()
            .find(|v| v["inode"].as_u64() == Some(inode))
            .map(|v| triples(&v["owners"]))
            .unwrap_or_else(|| panic!("inode {inode} not listed"));
        (owners, r.stderr)
    };
    let (owners, notes) = ls(&["env"]);
    assert_eq!(owners, want);
    assert!(notes.contains(FDT_NOTE), "-v names the walk: {notes}");

    let btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let (from, to) = (&b"\0bpf_iter_num_new\0"[..], &b"\0bpf_iter_nuX_new\0"[..]);
    let at = btf
        .windows(from.len())
        .position(|w| w == from)
        .expect("this kernel's BTF names bpf_iter_num_new");
    let mut hidden = btf.clone();
    hidden[at..at + to.len()].copy_from_slice(to);
    let path = std::env::temp_dir().join(format!("sockscope-btf-{}", std::process::id()));
    std::fs::write(&path, &hidden).unwrap();
    let mount = format!(
        "mount --bind {} /sys/kernel/btf/vmlinux && exec \"$0\" \"$@\"",
        path.display()
    );
    let (owners, notes) = ls(&["unshare", "-m", "sh", "-c", &mount]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(owners, want, "the task_file walk finds the same owners");
    assert!(
        notes.contains(
            "owners: fds walked by the BPF task_file iterator (the fd-array walk did not load: \
             kernel BTF unusable: BTF has no function bpf_iter_num_new)"
        ),
        "-v names the walk taken and why: {notes}"
    );
    assert!(!notes.contains(FDT_NOTE), "{notes}");
}

//! `sockscope top` driven in a pseudo-terminal of 80x24 (openpty; the
//! screen is parsed with the vt100 crate) against the listen(5) scene of
//! who_scenes.py in a private network namespace: the listeners view shows
//! accept queue 6 of backlog 5, a click on a header sorts, `/` filters with
//! the grammar and caret errors of `ls`, Enter shows the `who` chain, and the
//! terminal is restored (alternate screen left, cursor shown) after `q`,
//! SIGTERM and a forced panic.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{BIN, Scene, sockscope};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROWS: u16 = 24;
const COLS: u16 = 80;

struct Pty {
    master: std::fs::File,
    child: Child,
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Pty {
        Pty::spawn_program(BIN, args, env)
    }

    fn spawn_program(program: &str, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given ints.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds are fresh and owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: only async-signal-safe calls between fork and exec: a new
        // session with the pty as its controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn sockscope top in a pty");
        let master = std::fs::File::from(master);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut r = master.try_clone().unwrap();
        let (p, w) = (parser.clone(), raw.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // EIO once the child has exited and closed the slave.
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
                w.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            child,
            parser,
            raw,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
        self.master.flush().unwrap();
    }

    /// A left click at (x, y), 0-based, in SGR mouse encoding.
    fn click(&mut self, x: u16, y: u16) {
        let s = format!("\x1b[<0;{};{}M\x1b[<0;{};{}m", x + 1, y + 1, x + 1, y + 1);
        self.send(s.as_bytes());
    }

    fn lines(&self) -> Vec<String> {
        let p = self.parser.lock().unwrap();
        p.screen().rows(0, COLS).collect()
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let l = self.lines();
            if pred(&l) {
                return l;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {what} on the screen after 10 s:\n{}",
                l.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader drain what the child wrote last.
                std::thread::sleep(Duration::from_millis(200));
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "top did not exit within 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_restored(&self) {
        let p = self.parser.lock().unwrap();
        let s = p.screen();
        assert!(!s.alternate_screen(), "still on the alternate screen");
        assert!(!s.hide_cursor(), "cursor still hidden");
        let raw = self.raw.lock().unwrap();
        let text = String::from_utf8_lossy(&raw);
        let leave = text.rfind("\x1b[?1049l").expect("alternate screen left");
        let enter = text.rfind("\x1b[?1049h").expect("alternate screen entered");
        assert!(leave > enter);
        assert!(text.rfind("\x1b[?25h").unwrap() > text.rfind("\x1b[?25l").unwrap());
        // Mouse reporting is switched off again.
        assert!(text.rfind("\x1b[?1000l").unwrap_or(0) > text.rfind("\x1b[?1000h").unwrap());
    }

    /// Raw-mode off: the terminal echoes and translates newlines again.
    fn assert_cooked(&self) {
        // SAFETY: termios is plain data filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0);
        assert_ne!(t.c_lflag & libc::ICANON, 0, "ICANON off: raw mode left on");
        assert_ne!(t.c_lflag & libc::ECHO, 0, "ECHO off: raw mode left on");
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn body(lines: &[String]) -> Vec<String> {
    lines[3..lines.len() - 1]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .cloned()
        .collect()
}

fn tokens(l: &str) -> Vec<&str> {
    l.split_whitespace().collect()
}

fn local_port(row: &str) -> u16 {
    let local = tokens(row)[3];
    local
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no local port in {row:?}"))
}

#[test]
fn listeners_sort_filter_detail_and_quit() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let pid = sc.pid.to_string();
    let mut t = Pty::spawn(
        &[
            "top",
            "--netns-pid",
            &pid,
            "-d",
            "0.5",
            "--view",
            "listeners",
        ],
        &[("NO_COLOR", "1")],
    );
    let l = t.wait_for("the listener on 7000", |l| {
        l.iter().any(|r| r.starts_with("127.0.0.1:7000 "))
    });
    assert!(
        l[0].contains("1 Connections") && l[0].contains("4 Namespaces"),
        "{}",
        l[0]
    );
    let (y, row) = l
        .iter()
        .enumerate()
        .find(|(_, r)| r.starts_with("127.0.0.1:7000 "))
        .unwrap();
    let tk = tokens(row);
    assert_eq!(
        (tk[2], tk[3]),
        ("6", "5"),
        "accept queue 6 of backlog 5: {row}"
    );
    assert!(row.contains("120%"), "{row}");
    assert!(
        l.iter().any(|r| r.contains("ListenOverflows")),
        "namespace counters under the listeners"
    );
    // No colour with NO_COLOR: only attributes (bold, dim, reverse).
    {
        let raw = t.raw.lock().unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("\x1b[38;") && !text.contains("\x1b[48;"),
            "colour with NO_COLOR"
        );
    }

    // Click the row, Enter: the `who` chain of the listener.
    t.click(2, y as u16);
    t.send(b"\r");
    t.wait_for("the detail pane", |l| {
        l.iter()
            .any(|r| r.contains("who: tcp LISTEN 127.0.0.1:7000"))
    });
    let fd_line = format!(
        "/proc/{}/fd/{} -> socket:[{}]",
        sc.pid,
        sc.num("/listener/fd"),
        sc.num("/listener/inode")
    );
    // PageDown scrolls by 10 lines; the chain is longer than the pane.
    t.send(b"\x1b[6~");
    t.wait_for("the pane scrolled", |l| {
        !l.iter().any(|r| r.contains("port 7000 = 0x1B58"))
    });
    t.send(b"\x1b[6~");
    t.wait_for(&fd_line, |l| l.iter().any(|r| r.contains(&fd_line)));
    t.wait_for("the listener's queues in the chain", |l| {
        l.iter().any(|r| r.contains("accept queue 6 of backlog 5"))
    });
    t.send(b"\x1b");
    t.wait_for("the pane closed", |l| {
        !l.iter().any(|r| r.contains("who: tcp"))
    });

    // Connections; a click on the Local header sorts by it, again reverses.
    t.send(b"1");
    let l = t.wait_for("the connections view", |l| l[2].starts_with("State"));
    let x = l[2].find("Local").unwrap() as u16;
    t.click(x + 1, 2);
    let l = t.wait_for("sorted by Local", |l| l[2].contains("Local▲"));
    let ports: Vec<u16> = body(&l).iter().map(|r| local_port(r)).collect();
    assert_eq!(ports.len(), 18, "{}", l.join("\n"));
    assert!(ports.windows(2).all(|w| w[0] <= w[1]), "{ports:?}");
    t.click(x + 1, 2);
    let l = t.wait_for("sorted by Local, reversed", |l| l[2].contains("Local▼"));
    let ports: Vec<u16> = body(&l).iter().map(|r| local_port(r)).collect();
    assert!(ports.windows(2).all(|w| w[0] >= w[1]), "{ports:?}");
    // The `r` key reverses too.
    t.send(b"r");
    t.wait_for("reversed by r", |l| l[2].contains("Local▲"));

    // The filter: same grammar as ls.
    t.send(b"/sport = :7001\r");
    let l = t.wait_for("only the 7001 listener", |l| {
        let b = body(l);
        b.len() == 1 && b[0].contains("127.0.0.1:7001")
    });
    assert!(l[1].contains("filter: sport = :7001"), "{}", l[1]);
    // A bad filter: the error and caret of `ls`, and the rows stay.
    t.send(b"/");
    t.send(&[0x7f; 20]);
    t.send(b"sport = :nosuch\r");
    let ls = sockscope(&["ls", "-tan", "sport", "=", ":nosuch"]);
    assert_eq!(ls.code(), Some(2));
    let want: Vec<String> = ls
        .stderr
        .trim_start_matches("sockscope: ")
        .lines()
        .take(3)
        .map(|s| s.trim_end().to_string())
        .collect();
    let l = t.wait_for("the filter error", |l| {
        l.iter().any(|r| r.trim_end() == want[2])
    });
    for w in &want {
        assert!(
            l.iter().any(|r| r.trim_end() == w),
            "no line {w:?} on screen:\n{}",
            l.join("\n")
        );
    }
    assert!(want[2].trim().starts_with('^'));
    // Esc closes the filter line (sent apart from the next key: ESC q
    // together would read as Alt-q).
    t.send(b"\x1b");
    t.wait_for("the filter line closed", |l| {
        l[l.len() - 1].starts_with("q quit")
    });
    t.send(b"q");
    let st = t.wait_exit();
    assert_eq!(st.code(), Some(0));
    t.assert_restored();
    t.assert_cooked();
}

#[test]
fn sigterm_restores_the_terminal() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let pid = sc.pid.to_string();
    let mut t = Pty::spawn(&["top", "--netns-pid", &pid, "-d", "0.5"], &[]);
    t.wait_for("the first screen", |l| {
        l.iter().any(|r| r.contains("127.0.0.1:7000"))
    });
    // Colour on a terminal without NO_COLOR.
    assert!(String::from_utf8_lossy(&t.raw.lock().unwrap()).contains("\x1b[38;5;"));
    let start = Instant::now();
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(t.child.id() as i32, libc::SIGTERM) };
    let st = t.wait_exit();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(st.code(), Some(0), "{st}");
    t.assert_restored();
    t.assert_cooked();
}

#[test]
fn panic_restores_the_terminal() {
    if root::skip_without_root() {
        return;
    }
    let sc = Scene::start("backlog");
    let pid = sc.pid.to_string();
    let mut t = Pty::spawn(
        &["top", "--netns-pid", &pid, "-d", "0.2"],
        &[("SOCKSCOPE_TOP_PANIC_AFTER", "2")],
    );
    let st = t.wait_exit();
    assert_eq!(st.code(), Some(101), "a panic exits 101: {st}");
    t.assert_restored();
    t.assert_cooked();
    let raw = String::from_utf8_lossy(&t.raw.lock().unwrap()).into_owned();
    // The message comes after the terminal is restored, so it is readable.
    let msg = raw
        .find("panicking on purpose")
        .expect("panic message shown");
    assert!(msg > raw.find("\x1b[?1049l").unwrap());
}

#[test]
fn warnings_are_shown_on_the_screen_not_printed_over_it() {
    if root::skip_without_root() {
        return;
    }
    // As user nobody the fd tables of root's processes cannot be read.
    let sc = Scene::start("backlog");
    let pid = sc.pid.to_string();
    let mut t = Pty::spawn_program(
        "nsenter",
        &[
            "-t",
            &pid,
            "-n",
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "top",
            "-d",
            "0.5",
        ],
        &[("NO_COLOR", "1")],
    );
    let l = t.wait_for("the warning line", |l| {
        l.iter()
            .any(|r| r.starts_with("! could not read the fd tables"))
    });
    assert!(
        l.iter().any(|r| r.contains("127.0.0.1:7000")),
        "{}",
        l.join("\n")
    );
    let raw = String::from_utf8_lossy(&t.raw.lock().unwrap()).into_owned();
    assert!(
        !raw.contains("sockscope: could not read"),
        "a warning was printed to stderr, over the screen"
    );
    t.send(b"q");
    assert_eq!(t.wait_exit().code(), Some(0));
    t.assert_restored();
}

//! `fork-server`: seed 004's server. The parent listens and, for each
//! connection, accepts and forks; the child serves the connection, the
//! parent closes its copy of the connection and goes back to accept().
//! fork() copies the whole descriptor table, so unless the child closes it,
//! the listening socket is held by the parent *and* by every child: it stays
//! open (and keeps accepting into its queue) until all of them close it.
//! Each connection, by contrast, ends up held only by its child.
//! `sockscope lab serve fork` closes the listener in the child; this
//! scenario does what the seed does and does not.

use super::*;
use sockscope::model::State;

const PORT: u16 = 5000;
const CHILDREN: usize = 3;

/// Fork a child that names itself `name`, dies with its parent and waits
/// for a signal, holding every descriptor it inherited.
fn fork_holder(name: &[u8; 16]) -> Result<i32, LabError> {
    // SAFETY: the child only makes async-signal-safe syscalls (prctl,
    // pause, _exit) before it is killed.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LabError::Sys {
            what: "fork".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    if pid == 0 {
        // SAFETY: async-signal-safe calls only.
        unsafe {
            // The caller may block stop signals while a run cleans up; the
            // child must die on SIGTERM.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            loop {
                libc::pause();
            }
        }
    }
    Ok(pid)
}

fn child_name(i: usize) -> [u8; 16] {
    let mut n = [0u8; 16];
    let s = format!("lab-child-{i}");
    n[..s.len()].copy_from_slice(s.as_bytes());
    n
}

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!("parent (pid {}): listen(127.0.0.1:{PORT})", cx.me));
    let l = tcp_listen(PORT, 16, false)?;
    cx.note(format!(
        "listening socket: fd {}, inode {}",
        raw(&l),
        inode(&l)
    ));

    cx.step(format!(
        "{CHILDREN} times: a client connects; the parent accept()s, fork()s, and closes its copy of the connection"
    ));
    let mut children: Vec<(i32, u16, i32)> = Vec::new(); // pid, client port, conn fd number
    let mut clients = Vec::new();
    let result = (|| -> Result<(), LabError> {
        for i in 1..=CHILDREN {
            let (c, r) = tcp_connect(PORT, false)?;
            r.map_err(sys("connect"))?;
            let a = accept(&l)?;
            let pid = fork_holder(&child_name(i))?;
            let afd = raw(&a);
            children.push((pid, local_port(&c), afd));
            cx.note(format!(
                "accept4 = fd {afd}; fork() = {pid} (lab-child-{i}); parent: close({afd})"
            ));
            drop(a);
            clients.push(c);
        }
        Ok(())
    })();
    // Children must not outlive a failure.
    if let Err(e) = result {
        for (pid, _, _) in &children {
            // SAFETY: plain syscalls on our own children.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
        return Err(e);
    }
    cx.note("fork() also copied the clients' sockets into the children (they share the table): only the server side is checked");
    // Let the children finish their prctl calls so their names show.
    let socks = wait_until(3000, || {
        let s = crate::observe::tcp()?;
        let named = s
            .iter()
            .filter(|s| s.state == State::Listen)
            .flat_map(|s| &s.owners)
            .filter(|o| o.comm.starts_with("lab-child-"))
            .count();
        Ok((s, named == CHILDREN))
    })?;
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    let conns: Vec<Socket> = children
        .iter()
        .filter_map(|(_, p, _)| by_ports(&socks, PORT, *p).cloned())
        .collect();
    cx.show(listener.iter().chain(conns.iter()));
    let mut want: Vec<String> = vec![format!("pid {} fd {}", cx.me, raw(&l))];
    want.extend(
        children
            .iter()
            .map(|(pid, _, _)| format!("pid {pid} fd {}", raw(&l))),
    );
    cx.check_eq(
        "owners of the listening socket: the parent and every child",
        want.join(", "),
        listener.as_ref().map_or("-".into(), owner_pairs),
    );
    for (i, (pid, port, afd)) in children.iter().enumerate() {
        cx.check_eq(
            format!(
                "connection from port {port}: held only by lab-child-{}",
                i + 1
            ),
            format!("pid {pid} fd {afd}"),
            by_ports(&socks, PORT, *port).map_or("-".into(), owner_pairs),
        );
    }

    cx.step("kill(SIGTERM) every child, then waitpid() each: no zombie is left");
    let mut statuses = Vec::new();
    for (pid, _, _) in &children {
        let mut st = 0;
        // SAFETY: plain syscalls on our own children.
        let r = unsafe {
            libc::kill(*pid, libc::SIGTERM);
            libc::waitpid(*pid, &mut st, 0)
        };
        statuses.push((
            r == *pid,
            libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGTERM,
        ));
        let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
        cx.check_eq(
            format!(
                "child {pid} reaped: waitpid() returned it, killed by SIGTERM, /proc/{pid} gone"
            ),
            "true true true",
            format!(
                "{} {} {}",
                r == *pid,
                statuses.last().is_some_and(|s| s.1),
                gone
            ),
        );
    }
    let socks = crate::observe::tcp()?;
    let listener = in_state(&socks, State::Listen).first().copied().cloned();
    cx.show(listener.iter());
    cx.check_eq(
        "owners of the listening socket now",
        format!("pid {} fd {}", cx.me, raw(&l)),
        listener.as_ref().map_or("-".into(), owner_pairs),
    );
    drop((clients, l));
    Ok(())
}

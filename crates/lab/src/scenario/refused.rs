//! `refused`: connect to a port where no socket listens. The SYN reaches
//! the kernel, which finds no socket for it and answers with a RST
//! (Tcp.OutRsts); the client's connect() fails with ECONNREFUSED
//! (Tcp.AttemptFails). Nothing is left behind.

use super::*;

const PORT: u16 = 5999;

pub fn run(cx: &mut Ctx<'_>) -> Result<(), LabError> {
    cx.step(format!("sockscope looks for a socket on port {PORT}"));
    let socks = crate::observe::tcp()?;
    cx.check_eq(
        format!("TCP sockets on port {PORT}"),
        0,
        socks
            .iter()
            .filter(|s| s.local.port() == Some(PORT) || s.peer.port() == Some(PORT))
            .count(),
    );

    cx.step(format!("socket + connect(127.0.0.1:{PORT})"));
    let before = crate::observe::netstat()?;
    let (c, r) = tcp_connect(PORT, false)?;
    let d = crate::observe::netstat()?.delta(&before);
    let got = match r {
        Ok(()) => "connected".to_string(),
        Err(e) => format!(
            "{} ({})",
            crate::trace::errno_name(e),
            std::io::Error::from(e)
        ),
    };
    cx.note(format!("connect() = {got}"));
    cx.check(
        "connect() result",
        "ECONNREFUSED",
        got.clone(),
        r == Err(rustix::io::Errno::CONNREFUSED),
    );
    for (k, why) in [
        ("Tcp.OutRsts", "the kernel answered the SYN with a RST"),
        ("Tcp.AttemptFails", "the client's attempt failed"),
        ("Tcp.ActiveOpens", "the client did send a SYN"),
    ] {
        let v = d.get(k).unwrap_or(0);
        cx.counter(k, v);
        cx.check_eq(format!("{k} ({why})"), 1, v);
    }
    let socks = crate::observe::tcp()?;
    cx.show(socks.iter());
    cx.check_eq("TCP sockets left in the namespace", 0, socks.len());
    drop(c);
    Ok(())
}

//! What went over the wire while a scenario ran: the TCP segments an
//! interface of the scenario's own namespace saw, as plain values the
//! scenarios check (flags, sequence and acknowledgment numbers, window,
//! payload length, MSS option).
//!
//! The packets come from sockscope's capture library (an AF_PACKET socket
//! with a TPACKET_V3 ring, [`sockscope_capture::live::Capture`]) rather than
//! from a second packet socket of our own: it already keeps one copy of each
//! loopback packet, decodes TCP options and reports drops. The socket is
//! opened in the calling thread's network namespace (a packet socket belongs
//! to the namespace it was made in, whichever thread reads it), before the
//! scenario acts; a reader thread collects what arrives and
//! [`Wire::take`] hands it over (a ring block is passed to the reader at the
//! latest 50 ms after its first packet, so take waits a little).
//!
//! What a packet tap on a Linux device sees is what the stack handed that
//! device: with TSO/GSO on, one "segment" may carry many MSS worth of data
//! and be cut up later (by the NIC, or by the peer never at all on a veth).

use crate::scenario::LabError;
use serde::Serialize;
use sockscope_capture::decode::{self, tcpflag};
use sockscope_capture::filter;
use sockscope_capture::live::{Capture, Options};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One TCP segment seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seg {
    /// Microseconds since the capture was opened.
    pub t_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The TCP flag bits (`decode::tcpflag`).
    pub flags: u16,
    pub seq: u32,
    pub ack: u32,
    /// The window field as sent (not scaled).
    pub window: u16,
    /// Payload bytes.
    pub len: u32,
    /// The MSS option, on SYNs.
    pub mss: Option<u16>,
}

impl Seg {
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// tcpdump's flag letters: `S`, `S.`, `.`, `P.`, `F.`, `R`, `R.`.
    pub fn flag_letters(&self) -> String {
        let mut s = String::new();
        for (bit, c) in [
            (tcpflag::SYN, 'S'),
            (tcpflag::FIN, 'F'),
            (tcpflag::RST, 'R'),
            (tcpflag::PSH, 'P'),
            (tcpflag::URG, 'U'),
            (tcpflag::ACK, '.'),
        ] {
            if self.has(bit) {
                s.push(c);
            }
        }
        if s.is_empty() { "none".into() } else { s }
    }

    /// A pure ACK: ACK set, no SYN/FIN/RST, no payload.
    pub fn is_pure_ack(&self) -> bool {
        self.has(tcpflag::ACK)
            && !self.has(tcpflag::SYN | tcpflag::FIN | tcpflag::RST)
            && self.len == 0
    }

    /// One line, tcpdump-like: `+1.234 ms 127.0.0.1:5000 > 127.0.0.1:41000 [F.] seq 1 ack 1 win 512 len 0`.
    /// Sequence numbers are absolute (the scenario narrates relative ones
    /// where it matters).
    pub fn line(&self) -> String {
        let mut s = format!(
            "+{:.3} ms {} > {} [{}] seq {} ack {} win {} len {}",
            self.t_us as f64 / 1000.0,
            self.src,
            self.dst,
            self.flag_letters(),
            self.seq,
            self.ack,
            self.window,
            self.len
        );
        if let Some(m) = self.mss {
            s.push_str(&format!(" mss {m}"));
        }
        s
    }
}

/// The segments of one connection, identified by its two ports.
pub fn conn(segs: &[Seg], a: u16, b: u16) -> Vec<Seg> {
    segs.iter()
        .filter(|s| {
            (s.src.port() == a && s.dst.port() == b) || (s.src.port() == b && s.dst.port() == a)
        })
        .cloned()
        .collect()
}

/// Payload sizes of the data segments sent from port `from`, in order,
/// first transmissions only: a segment whose bytes were all sent before
/// (a retransmission, a tail loss probe) is left out; see [`resent`].
pub fn data_sizes(segs: &[Seg], from: u16) -> Vec<u32> {
    split_new(segs, from).0
}

/// Data segments from port `from` that carried only bytes sent before.
pub fn resent(segs: &[Seg], from: u16) -> Vec<Seg> {
    split_new(segs, from).1
}

fn split_new(segs: &[Seg], from: u16) -> (Vec<u32>, Vec<Seg>) {
    let mut high: Option<u32> = None;
    let (mut fresh, mut old) = (Vec::new(), Vec::new());
    for s in segs.iter().filter(|s| s.src.port() == from && s.len > 0) {
        let end = s.seq.wrapping_add(s.len);
        // Sequence numbers wrap: compare by signed distance.
        match high {
            Some(h) if (end.wrapping_sub(h) as i32) <= 0 => old.push(s.clone()),
            _ => {
                fresh.push(s.len);
                high = Some(end);
            }
        }
    }
    (fresh, old)
}

/// The teardown of a connection as `who:flags` steps: every segment after
/// the first FIN or RST that carries FIN or RST, or acknowledges one (a pure
/// ACK). `who` is `a` for segments from port `a`, else `b`.
pub fn teardown(segs: &[Seg], a: u16) -> Vec<String> {
    let Some(first) = segs.iter().position(|s| s.has(tcpflag::FIN | tcpflag::RST)) else {
        return Vec::new();
    };
    segs[first..]
        .iter()
        .filter(|s| s.has(tcpflag::FIN | tcpflag::RST) || s.is_pure_ack())
        .map(|s| {
            let who = if s.src.port() == a { "a" } else { "b" };
            let what = if s.has(tcpflag::RST) {
                "RST"
            } else if s.has(tcpflag::FIN) {
                "FIN"
            } else {
                "ACK"
            };
            format!("{who}:{what}")
        })
        .collect()
}

/// Zero-window probes from port `from`: segments without payload (or with
/// one byte beyond the window) whose sequence number is one below what the
/// peer last acknowledged (`snd_una - 1`, tcp_xmit_probe_skb), sent after
/// the peer advertised a zero window.
pub fn zero_window_probes(segs: &[Seg], from: u16) -> Vec<Seg> {
    let mut peer_ack: Option<u32> = None;
    let mut zero = false;
    let mut out = Vec::new();
    for s in segs {
        if s.dst.port() == from && s.has(tcpflag::ACK) {
            peer_ack = Some(s.ack);
            zero = s.window == 0;
        } else if s.src.port() == from
            && zero
            && s.len == 0
            && peer_ack.is_some_and(|a| s.seq == a.wrapping_sub(1))
        {
            out.push(s.clone());
        }
    }
    out
}

/// A capture on one interface of the calling thread's namespace. A thread
/// of its own empties the ring as packets come (a TPACKET_V3 block is handed
/// over 50 ms after its first packet even when nearly empty, so a ring left
/// unread for a few seconds of sparse traffic would run out of blocks).
pub struct Wire {
    stop: Arc<AtomicBool>,
    segs: Arc<Mutex<Vec<Seg>>>,
    dropped: Arc<AtomicU64>,
    failed: Arc<Mutex<Option<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Wire {
    /// Open a TCP capture on `iface` (in this thread's namespace).
    pub fn open(iface: &str) -> Result<Wire, LabError> {
        let f = filter::parse(&["tcp".to_string()])
            .map_err(|e| LabError::Other(format!("capture filter: {e}")))?;
        let opts = Options {
            interface: iface.into(),
            snaplen: 128,
            block_size: 1 << 18,
            block_count: 8,
        };
        let mut cap = Capture::open(&opts, &f).map_err(|e| {
            if sockscope::error::Classify::kind(&e) == sockscope::error::Kind::Privilege {
                LabError::Sys {
                    what: "opening a packet capture".into(),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                }
            } else {
                LabError::Other(format!("opening a packet capture on {iface}: {e}"))
            }
        })?;
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let stop = Arc::new(AtomicBool::new(false));
        let segs = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(None));
        let (st, sg, dr, fa) = (stop.clone(), segs.clone(), dropped.clone(), failed.clone());
        let reader = std::thread::Builder::new()
            .name("sockscope-wire".into())
            .spawn(move || {
                let link = cap.link;
                while !st.load(Ordering::Relaxed) {
                    let r = cap.run(
                        &st,
                        Some(Instant::now() + Duration::from_millis(20)),
                        |fr| {
                            let p = decode::decode(link, fr.data, fr.ts_ns, fr.wire_len);
                            if let (Some(t), Some(src), Some(dst)) =
                                (p.tcp(), p.src_ip(), p.dst_ip())
                            {
                                let seg = seg_of(t, src, dst, fr.ts_ns.saturating_sub(base) / 1000);
                                sg.lock().unwrap_or_else(|e| e.into_inner()).push(seg);
                            }
                            true
                        },
                    );
                    dr.store(cap.stats().dropped, Ordering::Relaxed);
                    if let Err(e) = r {
                        *fa.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                        return;
                    }
                }
            })
            .map_err(|e| LabError::Sys {
                what: "starting the capture thread".into(),
                source: e,
            })?;
        Ok(Wire {
            stop,
            segs,
            dropped,
            failed,
            reader: Some(reader),
        })
    }

    /// Every TCP segment seen since the last call, after waiting `ms` for
    /// the ring to hand over its last block (100 ms or more).
    pub fn take(&mut self, ms: u64) -> Result<Vec<Seg>, LabError> {
        std::thread::sleep(Duration::from_millis(ms));
        if let Some(e) = self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(LabError::Other(format!("reading the packet capture: {e}")));
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            return Err(LabError::Other(format!(
                "the packet capture dropped {dropped} packets; the wire checks would be incomplete"
            )));
        }
        Ok(std::mem::take(
            &mut *self.segs.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn seg_of(t: &decode::Tcp, src: IpAddr, dst: IpAddr, t_us: u64) -> Seg {
    Seg {
        t_us,
        src: SocketAddr::new(src, t.sport),
        dst: SocketAddr::new(dst, t.dport),
        flags: t.flags,
        seq: t.seq,
        ack: t.ack,
        window: t.window,
        len: t.payload_len,
        mss: t.options.mss(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpflag::{ACK, FIN, PSH, RST, SYN};

    fn s(from: u16, to: u16, flags: u16, seq: u32, ack: u32, win: u16, len: u32) -> Seg {
        Seg {
            t_us: 0,
            src: SocketAddr::from(([127, 0, 0, 1], from)),
            dst: SocketAddr::from(([127, 0, 0, 1], to)),
            flags,
            seq,
            ack,
            window: win,
            len,
            mss: None,
        }
    }

    #[test]
    fn teardown_lists_fin_ack_fin_ack_in_order_and_skips_data() {
        let v = vec![
            s(1, 2, SYN, 0, 0, 100, 0),
            s(2, 1, SYN | ACK, 0, 1, 100, 0),
            s(1, 2, ACK, 1, 1, 100, 0),
            s(1, 2, PSH | ACK, 1, 1, 100, 5),
            s(2, 1, ACK, 1, 6, 100, 0),
            s(1, 2, FIN | ACK, 6, 1, 100, 0),
            s(2, 1, ACK, 1, 7, 100, 0),
            s(2, 1, FIN | ACK, 1, 7, 100, 0),
            s(1, 2, ACK, 7, 2, 100, 0),
        ];
        assert_eq!(teardown(&v, 1), ["a:FIN", "b:ACK", "b:FIN", "a:ACK"]);
        assert_eq!(teardown(&v, 2), ["b:FIN", "a:ACK", "a:FIN", "b:ACK"]);
        assert_eq!(teardown(&v[..5], 1), Vec::<String>::new());
        let rst = vec![s(1, 2, ACK, 1, 1, 100, 0), s(1, 2, RST | ACK, 1, 1, 0, 0)];
        assert_eq!(teardown(&rst, 1), ["a:RST"]);
    }

    #[test]
    fn data_sizes_and_connection_filter() {
        let v = vec![
            s(1, 2, PSH | ACK, 1, 1, 100, 1448),
            s(3, 4, PSH | ACK, 1, 1, 100, 9),
            s(1, 2, PSH | ACK, 1449, 1, 100, 104),
            s(2, 1, ACK, 1, 1553, 100, 0),
        ];
        assert_eq!(data_sizes(&conn(&v, 2, 1), 1), [1448, 104]);
        assert_eq!(conn(&v, 1, 2).len(), 3);
        assert_eq!(data_sizes(&v, 2), Vec::<u32>::new());
    }

    #[test]
    fn a_resent_segment_is_not_new_data_even_across_the_wrap() {
        let top = u32::MAX - 4;
        let v = vec![
            s(1, 2, PSH | ACK, top, 1, 100, 10),
            s(1, 2, PSH | ACK, top.wrapping_add(10), 1, 100, 10),
            // Tail loss probe: the last segment again.
            s(1, 2, PSH | ACK, top.wrapping_add(10), 1, 100, 10),
            s(1, 2, PSH | ACK, top.wrapping_add(20), 1, 100, 10),
        ];
        assert_eq!(data_sizes(&v, 1), [10, 10, 10]);
        let r = resent(&v, 1);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].seq, top.wrapping_add(10));
    }

    #[test]
    fn zero_window_probes_are_snd_una_minus_one_after_a_zero_window() {
        let v = vec![
            // Window still open: a pure ACK from the sender is no probe.
            s(1, 2, ACK, 100, 1, 10, 0),
            s(2, 1, ACK, 1, 100, 10, 0),
            s(1, 2, ACK, 99, 1, 10, 0),
            // The receiver closes the window; the sender probes twice.
            s(2, 1, ACK, 1, 500, 0, 0),
            s(1, 2, ACK, 499, 1, 10, 0),
            s(2, 1, ACK, 1, 500, 0, 0),
            s(1, 2, ACK, 499, 1, 10, 0),
            // Window reopens: data flows again, no probe.
            s(2, 1, ACK, 1, 500, 64, 0),
            s(1, 2, ACK | PSH, 500, 1, 10, 64),
        ];
        let p = zero_window_probes(&v, 1);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.seq == 499));
    }

    #[test]
    fn flag_letters_read_like_tcpdump() {
        assert_eq!(s(1, 2, SYN, 0, 0, 0, 0).flag_letters(), "S");
        assert_eq!(s(1, 2, SYN | ACK, 0, 0, 0, 0).flag_letters(), "S.");
        assert_eq!(s(1, 2, FIN | ACK, 0, 0, 0, 0).flag_letters(), "F.");
        assert_eq!(s(1, 2, RST, 0, 0, 0, 0).flag_letters(), "R");
        assert_eq!(s(1, 2, PSH | ACK, 0, 0, 0, 0).flag_letters(), "P.");
        assert!(s(1, 2, ACK, 0, 0, 0, 0).is_pure_ack());
        assert!(!s(1, 2, ACK, 0, 0, 0, 1).is_pure_ack());
        assert!(!s(1, 2, FIN | ACK, 0, 0, 0, 0).is_pure_ack());
    }
}

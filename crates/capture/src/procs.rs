//! Process labels for live capture: which process owns the local end of a
//! packet.
//!
//! [`Labeller`] reads the socket table of the current network namespace
//! (TCP and UDP, every state, through [`sockscope::source::collect_here`])
//! and the owners of each socket ([`sockscope::source::owners::scan`],
//! joined with [`sockscope::join::attach_owners`]). A packet's source is
//! labelled when (source, destination) is a connected socket's (local,
//! peer), or when the source is a bound socket's local address and port
//! (a listener or an unconnected UDP socket; a wildcard address counts only
//! for this host's own addresses). The destination is labelled the same way
//! from the other side. On loopback both ends are local, so both get a
//! label.
//!
//! Connections come and go while we capture: a packet whose 4-tuple is not
//! in the table triggers a new read, at most once per
//! [`Labeller::min_interval`], and a 4-tuple still unknown after a read made
//! since it first appeared is not retried. A connection that opens and
//! closes between two reads can stay unlabelled (its socket is gone, or in
//! TIME-WAIT without an owner).

use crate::analysis::{Ep, endpoints};
use crate::decode::{Packet, Transport};
use crate::view::Procs;
use serde::Serialize;
use sockscope::model::{Endpoint, Proto, Socket, StateSet};
use sockscope::source::{self, Kind, Request, SourceChoice};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A process at one end of a packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub pid: u32,
    pub comm: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcsError {
    #[error("reading the socket table for process labels: {0}")]
    Sockets(#[from] sockscope::source::SourceError),
    #[error("reading process fd tables for process labels: {0}")]
    Owners(String),
}

type TupleKey = (Ep, Ep, bool);

/// Maps packets to the processes owning their local sockets.
pub struct Labeller {
    exact: HashMap<TupleKey, Label>,
    bound: HashMap<(Ep, bool), Label>,
    local_addrs: HashSet<[u8; 16]>,
    last_scan: Option<Instant>,
    unknown: HashMap<TupleKey, Instant>,
    /// Minimum time between two reads of the socket table.
    pub min_interval: Duration,
    /// How many times the table was read.
    pub scans: u32,
}

impl Default for Labeller {
    fn default() -> Self {
        Labeller::new()
    }
}

fn ep_of(e: &Endpoint) -> Option<Ep> {
    let Endpoint::Inet { addr, port } = e else {
        return None;
    };
    Some(match addr {
        IpAddr::V4(a) => Ep {
            addr: a.to_ipv6_mapped().octets(),
            port: *port,
            v6: false,
        },
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Ep {
                addr: v4.to_ipv6_mapped().octets(),
                port: *port,
                v6: false,
            },
            None => Ep {
                addr: a.octets(),
                port: *port,
                v6: true,
            },
        },
    })
}

fn unspecified(e: &Ep) -> bool {
    if e.v6 {
        e.addr == [0; 16]
    } else {
        e.addr[12..] == [0; 4]
    }
}

impl Labeller {
    pub fn new() -> Labeller {
        Labeller {
            exact: HashMap::new(),
            bound: HashMap::new(),
            local_addrs: HashSet::new(),
            last_scan: None,
            unknown: HashMap::new(),
            min_interval: Duration::from_millis(100),
            scans: 0,
        }
    }

    /// Build the tables from sockets that already carry their owners (pure:
    /// used by [`Labeller::refresh`] and by tests).
    pub fn load(&mut self, sockets: &[Socket], local_addrs: &[IpAddr]) {
        self.exact.clear();
        self.bound.clear();
        self.local_addrs.clear();
        for a in local_addrs {
            let e = ep_of(&Endpoint::Inet { addr: *a, port: 0 });
            if let Some(e) = e {
                self.local_addrs.insert(e.addr);
            }
        }
        for s in sockets {
            let Some(o) = s.owners.first() else { continue };
            let udp = match s.proto {
                Proto::Tcp => false,
                Proto::Udp | Proto::Udplite => true,
                _ => continue,
            };
            let (Some(l), Some(p)) = (ep_of(&s.local), ep_of(&s.peer)) else {
                continue;
            };
            let label = Label {
                pid: o.pid,
                comm: o.comm.clone(),
            };
            if p.port == 0 {
                self.bound.insert((l, udp), label);
                // A dual-stack wildcard listener also takes IPv4.
                if l.v6 && unspecified(&l) && s.v6only != Some(true) {
                    let v4 = Ep {
                        addr: std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets(),
                        port: l.port,
                        v6: false,
                    };
                    self.bound.entry((v4, udp)).or_insert_with(|| Label {
                        pid: o.pid,
                        comm: o.comm.clone(),
                    });
                }
            } else {
                self.exact.insert((l, p, udp), label);
            }
        }
    }

    /// Read the socket table and owners of the current network namespace.
    pub fn refresh(&mut self) -> Result<(), ProcsError> {
        let req = Request {
            kinds: vec![Kind::Tcp, Kind::Udp],
            ipv4: true,
            ipv6: true,
            states: StateSet::ALL,
            source: SourceChoice::Auto,
            ext: Default::default(),
        };
        let mut c = source::collect_here(&req)?;
        let scan = source::owners::scan("/proc").map_err(|e| ProcsError::Owners(e.to_string()))?;
        sockscope::join::attach_owners(&mut c.sockets, &scan);
        let addrs = local_addresses();
        self.load(&c.sockets, &addrs);
        self.last_scan = Some(Instant::now());
        self.scans += 1;
        if self.unknown.len() > 100_000 {
            self.unknown.clear();
        }
        Ok(())
    }

    fn is_local(&self, e: &Ep) -> bool {
        let loopback = if e.v6 {
            e.addr == std::net::Ipv6Addr::LOCALHOST.octets()
        } else {
            e.addr[12] == 127
        };
        loopback || self.local_addrs.contains(&e.addr)
    }

    /// The label of `local` talking to `peer`, from the tables only.
    pub fn lookup(&self, local: &Ep, peer: &Ep, udp: bool) -> Option<&Label> {
        if let Some(l) = self.exact.get(&(*local, *peer, udp)) {
            return Some(l);
        }
        if let Some(l) = self.bound.get(&(*local, udp)) {
            return Some(l);
        }
        if !self.is_local(local) {
            return None;
        }
        let any = Ep {
            addr: if local.v6 {
                [0; 16]
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets()
            },
            port: local.port,
            v6: local.v6,
        };
        self.bound.get(&(any, udp))
    }

    /// Labels for a packet, reading the socket table again when its 4-tuple
    /// is new (rate-limited). Errors of a re-read are returned once the
    /// labels are computed from the old tables.
    pub fn label(&mut self, p: &Packet) -> (Procs, Option<ProcsError>) {
        let Some((src, dst)) = endpoints(p) else {
            return (Procs::default(), None);
        };
        let udp = matches!(p.transport, Transport::Udp(_));
        let mut err = None;
        let mut procs = self.both(&src, &dst, udp);
        if procs.src.is_none() || procs.dst.is_none() {
            let key = if (src.addr, src.port) <= (dst.addr, dst.port) {
                (src, dst, udp)
            } else {
                (dst, src, udp)
            };
            let now = Instant::now();
            let first_seen = *self.unknown.entry(key).or_insert(now);
            let scanned_since = self.last_scan.is_some_and(|t| t >= first_seen);
            let due = self
                .last_scan
                .is_none_or(|t| now.duration_since(t) >= self.min_interval);
            if !scanned_since && due {
                if let Err(e) = self.refresh() {
                    err = Some(e);
                    // Do not retry at once.
                    self.last_scan = Some(now);
                }
                procs = self.both(&src, &dst, udp);
            }
        }
        (procs, err)
    }

    fn both(&self, src: &Ep, dst: &Ep, udp: bool) -> Procs {
        Procs {
            src: self.lookup(src, dst, udp).cloned(),
            dst: self.lookup(dst, src, udp).cloned(),
        }
    }
}

/// The IP addresses of this namespace's interfaces.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free with freeifaddrs; we only read
    // sockaddrs of the family each one says it is.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(s.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(s.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket built from its JSON form, so that fields added to the model
    /// later (with serde defaults) need no change here.
    fn sock(local: &str, lport: u16, peer: &str, pport: u16, pid: u32, comm: &str) -> Socket {
        serde_json::from_value(serde_json::json!({
            "proto": "tcp", "family": "inet",
            "state": if pport == 0 { "listening" } else { "established" },
            "recv_q": null, "send_q": null,
            "local": {"addr": local, "port": lport},
            "peer": {"addr": peer, "port": pport},
            "inode": 1, "uid": null, "cookie": null, "cgroup_id": null, "shutdown": null,
            "v6only": false, "bound_ifindex": null, "timer": null, "netns": null,
            "source": "netlink",
            "owners": [{"pid": pid, "fd": 3, "comm": comm, "uid": null}]
        }))
        .expect("socket JSON")
    }

    fn ep(a: &str, port: u16) -> Ep {
        ep_of(&Endpoint::Inet {
            addr: a.parse().unwrap(),
            port,
        })
        .unwrap()
    }

    #[test]
    fn connected_then_listener_then_dual_stack_wildcard() {
        let mut l = Labeller::new();
        l.load(
            &[
                sock("127.0.0.1", 40000, "127.0.0.1", 8080, 10, "curl"),
                sock("::", 8080, "::", 0, 20, "server"),
                sock(
                    "::ffff:127.0.0.1",
                    8080,
                    "::ffff:127.0.0.1",
                    40001,
                    21,
                    "worker",
                ),
            ],
            &["10.1.1.1".parse().unwrap()],
        );
        let c = ep("127.0.0.1", 40000);
        let s = ep("127.0.0.1", 8080);
        assert_eq!(l.lookup(&c, &s, false).unwrap().pid, 10);
        // The server side of the first connection has no socket of its own
        // in the table: the dual-stack wildcard listener names it.
        assert_eq!(l.lookup(&s, &c, false).unwrap().pid, 20);
        // A v4-mapped accepted socket is found by its IPv4 tuple.
        assert_eq!(
            l.lookup(&s, &ep("127.0.0.1", 40001), false).unwrap().comm,
            "worker"
        );
        // A remote address using the same port is not ours.
        assert_eq!(l.lookup(&ep("192.0.2.9", 8080), &c, false), None);
        assert_eq!(l.lookup(&ep("10.1.1.1", 8080), &c, false).unwrap().pid, 20);
        assert_eq!(l.lookup(&c, &s, true), None, "UDP is a different table");
    }
}

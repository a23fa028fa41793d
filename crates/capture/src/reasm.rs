//! IPv4 and IPv6 fragment reassembly, as Wireshark does it by default: fragments
//! are held until the datagram is whole, and the frame that completes it
//! carries the reassembled transport layer (the other fragments show as
//! fragments). Memory is capped and what the caps cost is counted:
//!
//! - a datagram is at most 65 535 bytes (more is a malformed datagram: its
//!   fragments are dropped);
//! - at most [`MAX_PENDING`] datagrams and [`MAX_BYTES`] bytes wait at
//!   once; beyond that the oldest datagram is given up.
//!
//! Only fragments captured whole are used (a snapped fragment cannot be
//! put back together); others pass through unchanged. An IPv6 datagram is
//! rebuilt as its fixed header and the reassembled payload (extension
//! headers before the Fragment header are left out: nothing after them
//! depends on them).

use crate::decode::{self, Net, Packet, Transport, linktype};
use std::collections::{HashMap, VecDeque};

/// Datagrams waiting for fragments at once.
pub const MAX_PENDING: usize = 1024;
/// Bytes held in waiting datagrams at once.
pub const MAX_BYTES: usize = 8 << 20;
const MAX_DATAGRAM: usize = 65_535;

/// (source, destination, identification, protocol, IPv6); IPv4 addresses
/// as IPv4-mapped IPv6.
type Key = ([u8; 16], [u8; 16], u32, u8, bool);

struct Datagram {
    /// The first fragment's IP header, once seen.
    header: Option<Vec<u8>>,
    /// Payload bytes by offset.
    data: Vec<u8>,
    /// Byte ranges received, [start, end).
    have: Vec<(usize, usize)>,
    /// Payload length, once the last fragment (MF clear) is seen.
    total: Option<usize>,
    fragments: u64,
}

impl Datagram {
    fn complete(&self) -> bool {
        let (Some(total), Some(_)) = (self.total, &self.header) else {
            return false;
        };
        let mut r = self.have.clone();
        r.sort_unstable();
        let mut end = 0;
        for (a, b) in r {
            if a > end {
                return false;
            }
            end = end.max(b);
        }
        end >= total
    }
}

/// What reassembly did, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams put back together.
    pub reassembled: u64,
    /// Fragments given up (caps, bad offsets) or still waiting at the end.
    pub dropped: u64,
}

/// Holds IPv4 and IPv6 fragments until their datagram is whole.
#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<Key, Datagram>,
    order: VecDeque<Key>,
    bytes: usize,
    stats: Stats,
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// The counts so far; fragments still waiting count as dropped.
    pub fn stats(&self) -> Stats {
        let waiting: u64 = self.pending.values().map(|d| d.fragments).sum();
        Stats {
            reassembled: self.stats.reassembled,
            dropped: self.stats.dropped + waiting,
        }
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    fn forget(&mut self, k: &Key) {
        if let Some(d) = self.pending.remove(k) {
            self.bytes -= d.data.len() + d.header.as_ref().map_or(0, Vec::len);
            self.stats.dropped += d.fragments;
        }
        self.order.retain(|x| x != k);
    }

    /// `p` decoded from `data`: a packet that is not a fragment is left as
    /// it is; a fragment becomes a fragment (its transport layer is in the
    /// datagram), except the one completing a datagram, which becomes the
    /// packet decoded from the whole datagram.
    pub fn process(&mut self, p: &mut Packet, data: &[u8]) {
        let Some(at) = p.net_at else {
            return;
        };
        let whole_frame = p.captured_len == p.wire_len;
        // (key, header to keep, fragment payload, offset, more fragments)
        let frag = match &p.net {
            Net::Ipv4(h) => {
                if !h.more_fragments && h.frag_offset == 0 {
                    return;
                }
                let h = *h;
                p.transport = Transport::Fragment {
                    proto: h.proto,
                    len: (h.total_len as u32).saturating_sub(h.header_len as u32),
                };
                let hl = h.header_len as usize;
                let end_ip = at + h.total_len as usize;
                if !whole_frame || h.total_len == 0 || end_ip > data.len() {
                    return;
                }
                let ip = &data[at..end_ip];
                let m = |a: std::net::Ipv4Addr| a.to_ipv6_mapped().octets();
                let key = (m(h.src), m(h.dst), u32::from(h.id), h.proto, false);
                (
                    key,
                    &ip[..hl],
                    &ip[hl..],
                    h.frag_offset as usize,
                    h.more_fragments,
                )
            }
            Net::Ipv6(h) => {
                let Some((off, more, id)) = h.fragment else {
                    return;
                };
                if off == 0 && !more {
                    // An atomic fragment (RFC 6946): nothing to wait for.
                    return;
                }
                let h = *h;
                let end_ip = at + 40 + h.payload_len as usize;
                if !whole_frame || h.payload_len == 0 || end_ip > data.len() {
                    p.transport = Transport::Fragment {
                        proto: h.proto,
                        len: u32::from(h.payload_len),
                    };
                    return;
                }
                let ip = &data[at..end_ip];
                let Some((fpos, next)) = fragment_header(ip) else {
                    return;
                };
                p.transport = Transport::Fragment {
                    proto: next,
                    len: (ip.len() - fpos - 8) as u32,
                };
                let key = (h.src.octets(), h.dst.octets(), id, next, true);
                (key, &ip[..40], &ip[fpos + 8..], off as usize, more)
            }
            _ => return,
        };
        let (key, header, payload, off, more) = frag;
        let v6 = key.4;
        let hl = header.len();
        if off + payload.len() > MAX_DATAGRAM - if v6 { 0 } else { hl } {
            self.forget(&key);
            self.stats.dropped += 1;
            return;
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= MAX_PENDING || self.bytes + hl + payload.len() > MAX_BYTES {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                self.forget(&old);
            }
            self.pending.insert(
                key,
                Datagram {
                    header: None,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    fragments: 0,
                },
            );
            self.order.push_back(key);
        }
        let Some(d) = self.pending.get_mut(&key) else {
            return;
        };
        d.fragments += 1;
        if off == 0 && d.header.is_none() {
            d.header = Some(header.to_vec());
            self.bytes += hl;
        }
        if d.data.len() < off + payload.len() {
            self.bytes += off + payload.len() - d.data.len();
            d.data.resize(off + payload.len(), 0);
        }
        d.data[off..off + payload.len()].copy_from_slice(payload);
        d.have.push((off, off + payload.len()));
        if !more {
            d.total = Some(off + payload.len());
        }
        if !d.complete() {
            return;
        }
        let Some(d) = self.pending.remove(&key) else {
            return;
        };
        self.order.retain(|x| *x != key);
        let header = d.header.unwrap_or_default();
        self.bytes -= d.data.len() + header.len();
        let total = d.total.unwrap_or(d.data.len());
        let mut whole = header;
        let link = if v6 {
            // The fixed header: payload length, and the protocol the
            // Fragment header named as Next Header.
            whole[4..6].copy_from_slice(&(total as u16).to_be_bytes());
            whole[6] = key.3;
            linktype::IPV6
        } else {
            let len = (whole.len() + total) as u16;
            whole[2..4].copy_from_slice(&len.to_be_bytes());
            whole[6..8].copy_from_slice(&0u16.to_be_bytes());
            linktype::IPV4
        };
        whole.extend_from_slice(&d.data[..total]);
        self.stats.reassembled += 1;
        let mut q = decode::decode(link, &whole, p.ts_ns, whole.len() as u32);
        q.iface = p.iface;
        q.link = p.link;
        q.captured_len = p.captured_len;
        q.wire_len = p.wire_len;
        q.pkttype = p.pkttype;
        q.vlan = p.vlan;
        q.tunnel = p.tunnel;
        q.net_at = None;
        *p = q;
    }
}

/// The IPv6 Fragment header in the packet `ip`: its offset and its Next
/// Header field.
fn fragment_header(ip: &[u8]) -> Option<(usize, u8)> {
    use crate::decode::ipproto;
    let mut proto = *ip.get(6)?;
    let mut off = 40;
    for _ in 0..16 {
        match proto {
            ipproto::FRAGMENT => {
                ip.get(off..off + 8)?;
                return Some((off, ip[off]));
            }
            ipproto::HOPOPT | ipproto::ROUTING | ipproto::DSTOPTS => {
                proto = *ip.get(off)?;
                off += (*ip.get(off + 1)? as usize + 1) * 8;
            }
            ipproto::AH => {
                proto = *ip.get(off)?;
                off += (*ip.get(off + 1)? as usize + 2) * 4;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 fragment of a UDP datagram `id` at `off` bytes.
    fn frag(id: u16, off: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&[8, 0, 0x45, 0]);
        v.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        v.extend_from_slice(&fo.to_be_bytes());
        v.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(payload);
        v
    }

    fn run(r: &mut Reassembler, f: &[u8]) -> Packet {
        let mut p = decode::decode(linktype::ETHERNET, f, 0, f.len() as u32);
        r.process(&mut p, f);
        p
    }

    #[test]
    fn datagram_from_fragments_in_any_order() {
        let mut udp = vec![0, 53, 0, 54, 0, 24, 0, 0];
        udp.extend_from_slice(&[7u8; 16]);
        let mut r = Reassembler::new();
        let last = run(&mut r, &frag(9, 16, false, &udp[16..]));
        assert!(matches!(last.transport, Transport::Fragment { .. }));
        let first = run(&mut r, &frag(9, 0, true, &udp[..8]));
        assert!(
            matches!(first.transport, Transport::Fragment { .. }),
            "{first:?}"
        );
        let mid = run(&mut r, &frag(9, 8, true, &udp[8..16]));
        let u = mid.udp().expect("reassembled UDP");
        assert_eq!((u.sport, u.dport, u.payload_len), (53, 54, 16));
        assert_eq!(
            r.stats(),
            Stats {
                reassembled: 1,
                dropped: 0
            }
        );
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn memory_is_capped_and_losses_counted() {
        let mut r = Reassembler::new();
        let big = vec![0u8; 1480];
        for id in 0..(MAX_PENDING as u16 + 100) {
            run(&mut r, &frag(id, 0, true, &big));
            assert!(r.held_bytes() <= MAX_BYTES);
            assert!(r.pending.len() <= MAX_PENDING);
        }
        assert_eq!(r.stats().dropped, MAX_PENDING as u64 + 100);
        // Past 64 KiB: the datagram is given up.
        let mut r = Reassembler::new();
        run(&mut r, &frag(1, 0, true, &big));
        run(&mut r, &frag(1, 65_000, true, &big));
        assert_eq!(
            r.stats(),
            Stats {
                reassembled: 0,
                dropped: 2
            }
        );
        assert_eq!(r.held_bytes(), 0);
    }
}

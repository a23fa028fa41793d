//! Live capture through an AF_PACKET socket with a TPACKET_V3 ring.
//!
//! [`Capture::open`] makes the socket, attaches the compiled classic BPF
//! filter (SO_ATTACH_FILTER; its return value is the snap length, so the
//! kernel copies only that much), asks for a memory-mapped TPACKET_V3
//! receive ring (PACKET_RX_RING: 8 blocks of 1 MiB, handed over after 50 ms
//! even when not full) and binds to one interface or to all.
//!
//! On an Ethernet or loopback interface the socket is SOCK_RAW and frames
//! keep their Ethernet header (pcap link type 1); VLAN tags the kernel
//! stripped are put back. On `any` (or interfaces without an Ethernet
//! header) the socket is SOCK_DGRAM ("cooked") and each packet gets a Linux
//! cooked v2 header (link type 276) built from its `sockaddr_ll`.
//!
//! Loopback traffic passes the packet taps twice (once leaving, once
//! arriving); like libpcap we keep only the arriving copy. Drops come from
//! PACKET_STATISTICS ([`Capture::stats`]).
//!
//! Kernel ABI structs and constants are those of `linux/if_packet.h` and
//! `linux/filter.h`, kept in [`abi`]. This module has no unsafe code: the
//! ring is read through [`ring`] (blocks as safe slices) and the calls
//! rustix does not wrap are in [`sys`].

#[allow(unsafe_code)]
mod ring;
#[allow(unsafe_code)]
mod sys;

pub use sys::interface_names;

use crate::decode::linktype;
use crate::filter::{Filter, Linkage};
use rustix::event::{PollFd, PollFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use sockscope::view::escape::Escaped;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Kernel ABI for packet sockets (linux/if_packet.h, linux/if_ether.h,
/// linux/if_arp.h).
pub mod abi {
    pub const SOL_PACKET: i32 = 263;
    pub const PACKET_RX_RING: i32 = 5;
    pub const PACKET_STATISTICS: i32 = 6;
    pub const PACKET_VERSION: i32 = 10;
    pub const TPACKET_V3: i32 = 2;
    pub const ETH_P_ALL: u16 = 0x0003;
    pub const PACKET_OUTGOING: u8 = 4;
    pub const TP_STATUS_KERNEL: u32 = 0;
    pub const TP_STATUS_USER: u32 = 1;
    pub const TP_STATUS_VLAN_VALID: u32 = 0x10;
    pub const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;
    pub const ARPHRD_ETHER: u16 = 1;
    pub const ARPHRD_LOOPBACK: u16 = 772;

    /// struct tpacket_req3.
    #[repr(C)]
    #[derive(Default)]
    pub struct TpacketReq3 {
        pub tp_block_size: u32,
        pub tp_block_nr: u32,
        pub tp_frame_size: u32,
        pub tp_frame_nr: u32,
        pub tp_retire_blk_tov: u32,
        pub tp_sizeof_priv: u32,
        pub tp_feature_req_word: u32,
    }

    /// struct tpacket_stats_v3.
    #[repr(C)]
    #[derive(Default)]
    pub struct TpacketStatsV3 {
        pub tp_packets: u32,
        pub tp_drops: u32,
        pub tp_freeze_q_cnt: u32,
    }

    /// Offsets in struct tpacket_block_desc (version, offset_to_priv, then
    /// struct tpacket_hdr_v1).
    pub const BLK_STATUS: usize = 8;
    pub const BLK_NUM_PKTS: usize = 12;
    pub const BLK_FIRST_PKT: usize = 16;

    /// Offsets in struct tpacket3_hdr.
    pub const H_NEXT: usize = 0;
    pub const H_SEC: usize = 4;
    pub const H_NSEC: usize = 8;
    pub const H_SNAPLEN: usize = 12;
    pub const H_LEN: usize = 16;
    pub const H_STATUS: usize = 20;
    pub const H_MAC: usize = 24;
    pub const H_VLAN_TCI: usize = 32;
    pub const H_VLAN_TPID: usize = 36;
    /// TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where sockaddr_ll sits.
    pub const H_SLL: usize = 48;
    /// Offsets in struct sockaddr_ll.
    pub const SLL_PROTOCOL: usize = 2;
    pub const SLL_IFINDEX: usize = 4;
    pub const SLL_HATYPE: usize = 8;
    pub const SLL_PKTTYPE: usize = 10;
    pub const SLL_HALEN: usize = 11;
    pub const SLL_ADDR: usize = 12;
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "live capture needs CAP_NET_RAW to open an AF_PACKET socket ({0}); run as root, or \
         `setcap cap_net_raw+ep $(command -v sockscope)`, or read a file with -r"
    )]
    Privilege(io::Error),
    #[error(
        "no interface named '{}' in this network namespace (interfaces: {})",
        Escaped(name),
        Escaped(known)
    )]
    NoSuchInterface { name: String, known: String },
    #[error("the kernel has no AF_PACKET TPACKET_V3 ring ({0}); Linux 3.2 or newer is needed")]
    NoRing(io::Error),
    #[error("attaching the capture filter: {0}")]
    Filter(String),
    #[error("live capture: {what}: {err}")]
    Io { what: &'static str, err: io::Error },
}

impl sockscope::error::Classify for LiveError {
    fn kind(&self) -> sockscope::error::Kind {
        use sockscope::error::Kind;
        match self {
            LiveError::Privilege(_) => Kind::Privilege,
            LiveError::NoSuchInterface { .. } | LiveError::Filter(_) => Kind::Usage,
            LiveError::NoRing(_) => Kind::KernelFeature,
            LiveError::Io { .. } => Kind::System,
        }
    }
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> LiveError {
    move |err| LiveError::Io { what, err }
}

/// Options of a live capture.
#[derive(Clone, Debug)]
pub struct Options {
    /// An interface name, or "any".
    pub interface: String,
    pub snaplen: u32,
    pub block_size: u32,
    pub block_count: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interface: "any".into(),
            snaplen: 262_144,
            block_size: 1 << 20,
            block_count: 8,
        }
    }
}

/// Kernel counters of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets the filter passed (tp_packets).
    pub received: u64,
    /// Packets dropped because the ring was full (tp_drops).
    pub dropped: u64,
}

/// One captured packet, borrowed from the ring (or from a scratch buffer
/// when a header had to be rebuilt).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts_ns: u64,
    pub wire_len: u32,
    pub data: &'a [u8],
    pub ifindex: u32,
    pub pkttype: u8,
}

/// An open live capture.
pub struct Capture {
    // Dropped in this order: the mapping, then the socket.
    ring: ring::Ring,
    fd: OwnedFd,
    next_block: usize,
    cooked: bool,
    /// The interface is a loopback device (drop outgoing copies).
    loopback: bool,
    stats: Stats,
    scratch: Vec<u8>,
    pub link: u32,
    pub snaplen: u32,
    pub interface: String,
}

impl Capture {
    /// Open a capture on `opts.interface` with `filter`.
    pub fn open(opts: &Options, filter: &Filter) -> Result<Capture, LiveError> {
        let any = opts.interface == "any";
        let no_such = || LiveError::NoSuchInterface {
            name: opts.interface.clone(),
            known: interface_names().join(", "),
        };
        let ifindex = if any {
            0
        } else {
            sys::if_index(&opts.interface).ok_or_else(no_such)?
        };
        // Protocol 0: nothing arrives before the filter and ring are set
        // and we bind with ETH_P_ALL.
        let packet_socket = |ty: SocketType| {
            rustix::net::socket_with(AddressFamily::PACKET, ty, SocketFlags::CLOEXEC, None)
                .map_err(io::Error::from)
        };
        let probe = packet_socket(SocketType::RAW).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => LiveError::Privilege(e),
            _ => LiveError::Io {
                what: "opening an AF_PACKET socket",
                err: e,
            },
        })?;
        let hatype = if any {
            None
        } else {
            sys::hw_type(probe.as_fd(), &opts.interface)
        };
        let loopback = hatype == Some(abi::ARPHRD_LOOPBACK);
        let cooked = !matches!(hatype, Some(abi::ARPHRD_ETHER | abi::ARPHRD_LOOPBACK));
        let fd = if cooked {
            drop(probe);
            packet_socket(SocketType::DGRAM).map_err(LiveError::Privilege)?
        } else {
            probe
        };
        let raw = fd.as_fd();
        sys::setsockopt(raw, abi::SOL_PACKET, abi::PACKET_VERSION, &abi::TPACKET_V3)
            .map_err(LiveError::NoRing)?;
        let prog = filter
            .compile(
                if cooked {
                    Linkage::Cooked
                } else {
                    Linkage::EthernetLive
                },
                opts.snaplen,
            )
            .map_err(|e| LiveError::Filter(e.to_string()))?;
        sys::attach_filter(raw, &prog).map_err(|e| LiveError::Filter(e.to_string()))?;
        let frame_size = 2048u32;
        let req = abi::TpacketReq3 {
            tp_block_size: opts.block_size,
            tp_block_nr: opts.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: opts.block_size / frame_size * opts.block_count,
            tp_retire_blk_tov: 50,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(raw, abi::SOL_PACKET, abi::PACKET_RX_RING, &req)
            .map_err(LiveError::NoRing)?;
        let ring = ring::Ring::map(raw, opts.block_size as usize, opts.block_count as usize)
            .map_err(io_err("mapping the ring"))?;
        sys::bind_packet(raw, ifindex, abi::ETH_P_ALL)
            .map_err(io_err("binding to the interface"))?;
        Ok(Capture {
            ring,
            fd,
            next_block: 0,
            cooked,
            loopback,
            stats: Stats::default(),
            scratch: Vec::with_capacity(65536 + 64),
            link: if cooked {
                linktype::LINUX_SLL2
            } else {
                linktype::ETHERNET
            },
            snaplen: opts.snaplen,
            interface: opts.interface.clone(),
        })
    }

    /// Kernel counters so far (reading them resets the kernel's copy; we
    /// add them up).
    pub fn stats(&mut self) -> Stats {
        if let Ok(s) = sys::packet_stats(self.fd.as_fd()) {
            self.stats.received += s.tp_packets as u64;
            self.stats.dropped += s.tp_drops as u64;
        }
        self.stats
    }

    /// Deliver packets to `f` until `stop` is set, `deadline` passes or `f`
    /// returns false.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        mut f: impl FnMut(Frame<'_>) -> bool,
    ) -> Result<(), LiveError> {
        self.run_ticks(stop, deadline, |fr| match fr {
            Some(fr) => f(fr),
            None => true,
        })
    }

    /// [`Capture::run`], also calling `f(None)` each time the wait for
    /// packets times out (at least every 100 ms while nothing arrives), so
    /// that the caller can finish work it deferred.
    pub fn run_ticks(
        &mut self,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        mut f: impl FnMut(Option<Frame<'_>>) -> bool,
    ) -> Result<(), LiveError> {
        loop {
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            let i = self.next_block;
            let Some(blk) = self.ring.user_block(i) else {
                let timeout = match deadline {
                    Some(d) => d
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(100)),
                    None => Duration::from_millis(100),
                };
                let ts = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: timeout.as_nanos() as _,
                };
                let mut pfd = [PollFd::new(&self.fd, PollFlags::IN | PollFlags::ERR)];
                let r = match rustix::event::poll(&mut pfd, Some(&ts)) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => 1,
                    Err(e) => return Err(io_err("waiting for packets")(e.into())),
                };
                if r == 0 && !f(None) {
                    return Ok(());
                }
                continue;
            };
            let keep_going = walk_block(
                blk,
                Link {
                    cooked: self.cooked,
                    loopback: self.loopback,
                },
                &mut self.scratch,
                &mut |fr| f(Some(fr)),
            );
            self.ring.release(i);
            self.next_block = (i + 1) % self.ring.block_count();
            if !keep_going {
                return Ok(());
            }
        }
    }
}

/// How the socket sees frames (set at open).
#[derive(Clone, Copy)]
struct Link {
    /// SOCK_DGRAM: frames get a cooked v2 header built here.
    cooked: bool,
    /// A loopback interface: outgoing copies are dropped.
    loopback: bool,
}

fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn rd16(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

/// The packets of one ring block, in order, to `f` until it returns false
/// (then false). Offsets the kernel wrote are checked against the block
/// before any read (an index out of the block would panic, never read
/// outside it).
fn walk_block(
    blk: &[u8],
    link: Link,
    scratch: &mut Vec<u8>,
    f: &mut impl FnMut(Frame<'_>) -> bool,
) -> bool {
    let block_size = blk.len();
    let n = rd32(blk, abi::BLK_NUM_PKTS) as usize;
    let mut off = rd32(blk, abi::BLK_FIRST_PKT) as usize;
    for _ in 0..n {
        if off + abi::H_SLL + 20 > block_size {
            break;
        }
        let h = &blk[off..];
        let next = rd32(h, abi::H_NEXT) as usize;
        let snap = rd32(h, abi::H_SNAPLEN) as usize;
        let len = rd32(h, abi::H_LEN);
        let st = rd32(h, abi::H_STATUS);
        let mac = rd16(h, abi::H_MAC) as usize;
        let ts_ns = rd32(h, abi::H_SEC) as u64 * 1_000_000_000 + rd32(h, abi::H_NSEC) as u64;
        let sll = &h[abi::H_SLL..];
        let pkttype = sll[abi::SLL_PKTTYPE];
        let ifindex = rd32(sll, abi::SLL_IFINDEX);
        let hatype = rd16(sll, abi::SLL_HATYPE);
        let outgoing_loop = pkttype == abi::PACKET_OUTGOING
            && (link.loopback || (link.cooked && hatype == abi::ARPHRD_LOOPBACK));
        if off + mac + snap <= block_size && !outgoing_loop {
            let bytes = &h[mac..mac + snap];
            let frame = if link.cooked {
                // Linux cooked v2 header from sockaddr_ll.
                scratch.clear();
                let proto = rd16(sll, abi::SLL_PROTOCOL); // network order already
                scratch.extend_from_slice(&proto.to_ne_bytes());
                scratch.extend_from_slice(&[0, 0]);
                scratch.extend_from_slice(&ifindex.to_be_bytes());
                scratch.extend_from_slice(&hatype.to_be_bytes());
                scratch.push(pkttype);
                scratch.push(sll[abi::SLL_HALEN].min(8));
                scratch.extend_from_slice(&sll[abi::SLL_ADDR..abi::SLL_ADDR + 8]);
                scratch.extend_from_slice(bytes);
                Frame {
                    ts_ns,
                    wire_len: len + 20,
                    data: scratch,
                    ifindex,
                    pkttype,
                }
            } else if st & abi::TP_STATUS_VLAN_VALID != 0 && bytes.len() >= 12 {
                // Put back the 802.1Q tag the kernel took off.
                let tci = rd32(h, abi::H_VLAN_TCI) as u16;
                let tpid = if st & abi::TP_STATUS_VLAN_TPID_VALID != 0 {
                    rd16(h, abi::H_VLAN_TPID)
                } else {
                    0x8100
                };
                scratch.clear();
                scratch.extend_from_slice(&bytes[..12]);
                scratch.extend_from_slice(&tpid.to_be_bytes());
                scratch.extend_from_slice(&tci.to_be_bytes());
                scratch.extend_from_slice(&bytes[12..]);
                Frame {
                    ts_ns,
                    wire_len: len + 4,
                    data: scratch,
                    ifindex,
                    pkttype,
                }
            } else {
                Frame {
                    ts_ns,
                    wire_len: len,
                    data: bytes,
                    ifindex,
                    pkttype,
                }
            };
            if !f(frame) {
                return false;
            }
        }
        if next == 0 {
            break;
        }
        off += next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring block as the kernel fills it: one Ethernet frame, and a
    /// second header whose offsets run past the block (read as nothing).
    #[test]
    fn walk_block_reads_frames_and_stops_at_offsets_outside_the_block() {
        let mut blk = vec![0u8; 4096];
        let put32 =
            |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        put32(&mut blk, abi::BLK_NUM_PKTS, 2);
        put32(&mut blk, abi::BLK_FIRST_PKT, 64);
        let h = 64;
        let frame: Vec<u8> = (0..60u8).collect();
        let mac = 80;
        put32(&mut blk, h + abi::H_NEXT, 512);
        put32(&mut blk, h + abi::H_SEC, 2);
        put32(&mut blk, h + abi::H_NSEC, 5);
        put32(&mut blk, h + abi::H_SNAPLEN, frame.len() as u32);
        put32(&mut blk, h + abi::H_LEN, 1500);
        blk[h + abi::H_MAC..h + abi::H_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
        put32(&mut blk, h + abi::H_SLL + abi::SLL_IFINDEX, 7);
        blk[h + mac..h + mac + frame.len()].copy_from_slice(&frame);
        // the second packet claims 4000 bytes from offset 576
        let h2 = h + 512;
        put32(&mut blk, h2 + abi::H_SNAPLEN, 4000);
        blk[h2 + abi::H_MAC..h2 + abi::H_MAC + 2].copy_from_slice(&80u16.to_ne_bytes());
        let mut seen = Vec::new();
        let mut scratch = Vec::new();
        let link = Link {
            cooked: false,
            loopback: false,
        };
        assert!(walk_block(&blk, link, &mut scratch, &mut |f| {
            seen.push((f.ts_ns, f.wire_len, f.data.to_vec(), f.ifindex));
            true
        }));
        assert_eq!(seen, vec![(2_000_000_005, 1500, frame, 7)]);
        // a header too close to the end of the block is not read at all
        put32(&mut blk, abi::BLK_FIRST_PKT, 4096 - 8);
        let mut n = 0;
        walk_block(&blk, link, &mut scratch, &mut |_| {
            n += 1;
            true
        });
        assert_eq!(n, 0);
    }
}

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
//! `linux/filter.h`, kept in [`abi`].

use crate::decode::linktype;
use crate::filter::{Filter, Linkage};
use sockscope::view::escape::Escaped;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};
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

struct Ring {
    ptr: *mut u8,
    size: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: ptr/size are exactly what mmap returned.
        unsafe {
            libc::munmap(self.ptr.cast(), self.size);
        }
    }
}

/// An open live capture.
pub struct Capture {
    fd: OwnedFd,
    ring: Ring,
    block_size: usize,
    block_count: usize,
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

/// Names of this namespace's interfaces.
pub fn interface_names() -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero index that
    // we free with if_freenameindex.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            out.push(
                std::ffi::CStr::from_ptr((*p).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

fn hw_type(fd: i32, name: &str) -> Option<u16> {
    // SAFETY: ifreq is plain data; SIOCGIFHWADDR fills ifr_hwaddr.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        let bytes = name.as_bytes();
        if bytes.len() >= ifr.ifr_name.len() {
            return None;
        }
        for (i, b) in bytes.iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut ifr) != 0 {
            return None;
        }
        Some(ifr.ifr_ifru.ifru_hwaddr.sa_family)
    }
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live value of the size we pass.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Capture {
    /// Open a capture on `opts.interface` with `filter`.
    pub fn open(opts: &Options, filter: &Filter) -> Result<Capture, LiveError> {
        let any = opts.interface == "any";
        let ifindex = if any {
            0
        } else {
            let c =
                CString::new(opts.interface.clone()).map_err(|_| LiveError::NoSuchInterface {
                    name: opts.interface.clone(),
                    known: interface_names().join(", "),
                })?;
            // SAFETY: c is a valid C string.
            let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if i == 0 {
                return Err(LiveError::NoSuchInterface {
                    name: opts.interface.clone(),
                    known: interface_names().join(", "),
                });
            }
            i
        };
        // Protocol 0: nothing arrives before the filter and ring are set
        // and we bind with ETH_P_ALL.
        // SAFETY: plain socket call.
        let probe =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if probe < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => LiveError::Privilege(e),
                _ => LiveError::Io {
                    what: "opening an AF_PACKET socket",
                    err: e,
                },
            });
        }
        // SAFETY: probe is a fresh descriptor we own.
        let probe = unsafe { OwnedFd::from_raw_fd(probe) };
        let hatype = if any {
            None
        } else {
            hw_type(probe.as_raw_fd(), &opts.interface)
        };
        let loopback = hatype == Some(abi::ARPHRD_LOOPBACK);
        let cooked = !matches!(hatype, Some(abi::ARPHRD_ETHER | abi::ARPHRD_LOOPBACK));
        let fd = if cooked {
            drop(probe);
            // SAFETY: plain socket call.
            let s =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if s < 0 {
                return Err(LiveError::Privilege(io::Error::last_os_error()));
            }
            // SAFETY: fresh descriptor.
            unsafe { OwnedFd::from_raw_fd(s) }
        } else {
            probe
        };
        let raw = fd.as_raw_fd();
        setsockopt(raw, abi::SOL_PACKET, abi::PACKET_VERSION, &abi::TPACKET_V3)
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
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
            .map_err(|e| LiveError::Filter(e.to_string()))?;
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
        setsockopt(raw, abi::SOL_PACKET, abi::PACKET_RX_RING, &req).map_err(LiveError::NoRing)?;
        let size = opts.block_size as usize * opts.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for this fd.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io_err("mapping the ring")(io::Error::last_os_error()));
        }
        let ring = Ring {
            ptr: ptr.cast(),
            size,
        };
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = abi::ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size we pass.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io_err("binding to the interface")(
                io::Error::last_os_error(),
            ));
        }
        Ok(Capture {
            fd,
            ring,
            block_size: opts.block_size as usize,
            block_count: opts.block_count as usize,
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
        let mut s = abi::TpacketStatsV3::default();
        let mut len = std::mem::size_of::<abi::TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: s has room for the struct the kernel writes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                abi::SOL_PACKET,
                abi::PACKET_STATISTICS,
                (&mut s as *mut abi::TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.stats.received += s.tp_packets as u64;
            self.stats.dropped += s.tp_drops as u64;
        }
        self.stats
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_count, so the block lies inside the mapping.
        unsafe { self.ring.ptr.add(i * self.block_size) }
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
            let blk = self.block(self.next_block);
            // SAFETY: the status word is inside the block; the kernel writes
            // it, so read it volatile.
            let status = unsafe { std::ptr::read_volatile(blk.add(abi::BLK_STATUS) as *const u32) };
            if status & abi::TP_STATUS_USER == 0 {
                let timeout = match deadline {
                    Some(d) => d
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(100)),
                    None => Duration::from_millis(100),
                };
                let mut pfd = libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN | libc::POLLERR,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(io_err("waiting for packets")(e));
                    }
                }
                if r == 0 && !f(None) {
                    return Ok(());
                }
                continue;
            }
            fence(Ordering::Acquire);
            let keep_going = self.walk_block(blk, &mut |fr| f(Some(fr)));
            fence(Ordering::Release);
            // SAFETY: hand the block back to the kernel.
            unsafe {
                std::ptr::write_volatile(
                    blk.add(abi::BLK_STATUS) as *mut u32,
                    abi::TP_STATUS_KERNEL,
                )
            };
            self.next_block = (self.next_block + 1) % self.block_count;
            if !keep_going {
                return Ok(());
            }
        }
    }

    fn walk_block(&mut self, blk: *mut u8, f: &mut impl FnMut(Frame<'_>) -> bool) -> bool {
        let rd32 = |p: *const u8, off: usize| -> u32 {
            // SAFETY: callers pass offsets inside the block.
            unsafe { std::ptr::read_unaligned(p.add(off) as *const u32) }
        };
        let rd16 = |p: *const u8, off: usize| -> u16 {
            // SAFETY: as above.
            unsafe { std::ptr::read_unaligned(p.add(off) as *const u16) }
        };
        let n = rd32(blk, abi::BLK_NUM_PKTS) as usize;
        let mut off = rd32(blk, abi::BLK_FIRST_PKT) as usize;
        for _ in 0..n {
            if off + abi::H_SLL + 20 > self.block_size {
                break;
            }
            // SAFETY: off was checked to be inside the block.
            let h = unsafe { blk.add(off) as *const u8 };
            let next = rd32(h, abi::H_NEXT) as usize;
            let snap = rd32(h, abi::H_SNAPLEN) as usize;
            let len = rd32(h, abi::H_LEN);
            let st = rd32(h, abi::H_STATUS);
            let mac = rd16(h, abi::H_MAC) as usize;
            let ts_ns = rd32(h, abi::H_SEC) as u64 * 1_000_000_000 + rd32(h, abi::H_NSEC) as u64;
            let sll = unsafe { h.add(abi::H_SLL) };
            let pkttype = unsafe { *sll.add(abi::SLL_PKTTYPE) };
            let ifindex = rd32(sll, abi::SLL_IFINDEX);
            let hatype = u16::from_ne_bytes(rd16(sll, abi::SLL_HATYPE).to_ne_bytes());
            let outgoing_loop = pkttype == abi::PACKET_OUTGOING
                && (self.loopback || (self.cooked && hatype == abi::ARPHRD_LOOPBACK));
            if off + mac + snap <= self.block_size && !outgoing_loop {
                // SAFETY: the packet bytes lie inside the block (checked).
                let bytes = unsafe { std::slice::from_raw_parts(h.add(mac), snap) };
                let frame = if self.cooked {
                    // Linux cooked v2 header from sockaddr_ll.
                    self.scratch.clear();
                    let proto = rd16(sll, abi::SLL_PROTOCOL); // network order already
                    self.scratch.extend_from_slice(&proto.to_ne_bytes());
                    self.scratch.extend_from_slice(&[0, 0]);
                    self.scratch.extend_from_slice(&ifindex.to_be_bytes());
                    self.scratch.extend_from_slice(&hatype.to_be_bytes());
                    self.scratch.push(pkttype);
                    let halen = unsafe { *sll.add(abi::SLL_HALEN) }.min(8);
                    self.scratch.push(halen);
                    for i in 0..8 {
                        self.scratch.push(unsafe { *sll.add(abi::SLL_ADDR + i) });
                    }
                    self.scratch.extend_from_slice(bytes);
                    Frame {
                        ts_ns,
                        wire_len: len + 20,
                        data: &self.scratch,
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
                    self.scratch.clear();
                    self.scratch.extend_from_slice(&bytes[..12]);
                    self.scratch.extend_from_slice(&tpid.to_be_bytes());
                    self.scratch.extend_from_slice(&tci.to_be_bytes());
                    self.scratch.extend_from_slice(&bytes[12..]);
                    Frame {
                        ts_ns,
                        wire_len: len + 4,
                        data: &self.scratch,
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
}

// SAFETY: the ring pointer is owned by this Capture alone.
unsafe impl Send for Capture {}

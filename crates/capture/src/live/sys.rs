//! The system calls of a live capture that rustix does not wrap: interface
//! names and indexes without a socket, the hardware type of an interface
//! (SIOCGIFHWADDR), packet-socket options (PACKET_VERSION, PACKET_RX_RING,
//! PACKET_STATISTICS, SO_ATTACH_FILTER) and binding to a `sockaddr_ll`.
//! Each takes or returns plain Rust values; the unsafe code of the capture
//! (with [`super::ring`]) is here.

use super::abi;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Names of this namespace's interfaces.
pub fn interface_names() -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by an entry with a
    // zero index (or null on error), freed with if_freenameindex; names are
    // NUL-terminated strings inside it.
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

/// The index of interface `name` (no socket needed, unlike rustix's).
pub fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The ARPHRD_* hardware type of interface `name`.
pub fn hw_type(fd: BorrowedFd<'_>, name: &str) -> Option<u16> {
    // SAFETY: ifreq is plain data (zeroed is valid); the name is copied in
    // with room for its NUL; SIOCGIFHWADDR fills ifr_hwaddr, the union
    // member read after it succeeded.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        let bytes = name.as_bytes();
        if bytes.len() >= ifr.ifr_name.len() {
            return None;
        }
        for (i, b) in bytes.iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) != 0 {
            return None;
        }
        Some(ifr.ifr_ifru.ifru_hwaddr.sa_family)
    }
}

/// setsockopt with a plain-data value.
pub fn setsockopt<T>(fd: BorrowedFd<'_>, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live value of the size we pass; the kernel only
    // reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
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

/// Attach a classic BPF program (SO_ATTACH_FILTER); the kernel copies it.
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[crate::filter::bpf::Insn]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        // Insn is #[repr(C)] with struct sock_filter's layout; the kernel
        // only reads through this pointer.
        filter: prog.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// PACKET_STATISTICS (reading them resets the kernel's counters).
pub fn packet_stats(fd: BorrowedFd<'_>) -> io::Result<abi::TpacketStatsV3> {
    let mut s = abi::TpacketStatsV3::default();
    let mut len = std::mem::size_of::<abi::TpacketStatsV3>() as libc::socklen_t;
    // SAFETY: s has room for the struct the kernel writes, len says so.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            abi::SOL_PACKET,
            abi::PACKET_STATISTICS,
            (&mut s as *mut abi::TpacketStatsV3).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(s)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bind a packet socket to interface `ifindex` (0: all) for protocol
/// `protocol` (host order).
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the size we pass.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

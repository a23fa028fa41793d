//! Kernel ABI the lab needs that neither rustix nor libc wraps the way we use
//! it. One place for each struct and constant, with its header named.

/// `struct ifreq` as SIOCGIFFLAGS / SIOCSIFFLAGS use it
/// (include/uapi/linux/if.h): the interface name, then a union whose first
/// member for these requests is `short ifr_flags`. The union is 24 bytes on
/// 64-bit targets (it holds a `struct ifmap`); the padding keeps the size the
/// kernel copies.
#[repr(C)]
pub struct IfreqFlags {
    pub name: [u8; IFNAMSIZ],
    pub flags: i16,
    pub pad: [u8; 22],
}

/// include/uapi/linux/if.h
pub const IFNAMSIZ: usize = 16;
/// include/uapi/linux/if.h: `IFF_UP`.
pub const IFF_UP: i16 = 0x1;
/// include/uapi/linux/sockios.h
pub const SIOCGIFFLAGS: u64 = 0x8913;
/// include/uapi/linux/sockios.h
pub const SIOCSIFFLAGS: u64 = 0x8914;

impl IfreqFlags {
    /// An ifreq naming `name` (truncated to IFNAMSIZ-1 bytes), flags zero.
    pub fn named(name: &str) -> IfreqFlags {
        let mut r = IfreqFlags {
            name: [0; IFNAMSIZ],
            flags: 0,
            pad: [0; 22],
        };
        let n = name.len().min(IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }
}

/// `struct ifreq` as SIOCETHTOOL uses it: the interface name, then
/// `ifr_data`, a pointer to the ethtool command (include/uapi/linux/if.h).
#[repr(C)]
pub struct IfreqData {
    pub name: [u8; IFNAMSIZ],
    pub data: *mut EthtoolValue,
    pub pad: [u8; 24 - std::mem::size_of::<usize>()],
}

/// `struct ethtool_value` (include/uapi/linux/ethtool.h): a command and one
/// value, for the legacy get/set of one offload.
#[repr(C)]
#[derive(Default)]
pub struct EthtoolValue {
    pub cmd: u32,
    pub data: u32,
}

/// include/uapi/linux/sockios.h
pub const SIOCETHTOOL: u64 = 0x8946;
/// include/uapi/linux/ethtool.h: get TSO enable (ethtool_value).
pub const ETHTOOL_GTSO: u32 = 0x1e;
/// include/uapi/linux/ethtool.h: set TSO enable (ethtool_value).
pub const ETHTOOL_STSO: u32 = 0x1f;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)] // libc's type differs between C libraries
    fn ifreq_has_the_kernel_size_and_constants_match_libc() {
        assert_eq!(std::mem::size_of::<IfreqFlags>(), 40);
        assert_eq!(SIOCGIFFLAGS, libc::SIOCGIFFLAGS as u64);
        assert_eq!(SIOCSIFFLAGS, libc::SIOCSIFFLAGS as u64);
        assert_eq!(i32::from(IFF_UP), libc::IFF_UP);
        assert_eq!(&IfreqFlags::named("lo").name[..3], b"lo\0");
        assert_eq!(std::mem::size_of::<IfreqData>(), 40);
        assert_eq!(std::mem::size_of::<EthtoolValue>(), 8);
        assert_eq!(SIOCETHTOOL, libc::SIOCETHTOOL as u64);
    }
}

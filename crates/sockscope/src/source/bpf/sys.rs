//! The `bpf(2)` system call with a caller-built `union bpf_attr`
//! (include/uapi/linux/bpf.h). Every command used here returns a new fd.

// Unsafe only for bpf(2), which rustix does not wrap.
#![allow(unsafe_code)]

use rustix::fd::{FromRawFd, OwnedFd};

pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_LINK_CREATE: libc::c_long = 28;
pub const BPF_ITER_CREATE: libc::c_long = 33;
pub const BPF_PROG_TYPE_TRACING: u32 = 26;
pub const BPF_TRACE_ITER: u32 = 28;

/// Run `cmd` with `attr` (laid out as the kernel's `union bpf_attr` for
/// that command, zeroed where unused); the new fd it returns.
pub fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a buffer we own, laid out as union bpf_attr for
    // `cmd`; the kernel reads (and for some commands writes) at most
    // `attr.len()` bytes of it, and pointers inside it point at buffers the
    // caller keeps alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: on success these commands return a new file descriptor that
    // nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Run `cmd` (one that returns a number, not a new fd: map updates).
pub fn bpf_cmd(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<i64> {
    // SAFETY: as for `bpf`: `attr` is ours, laid out for `cmd`, and any
    // pointers in it point at buffers the caller keeps alive.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r)
}

/// Store a u32 at `at` in an attr buffer (native endian, as the kernel reads it).
pub fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Store a u64 at `at` in an attr buffer.
pub fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// A file mapped private and read-only, for the kernel's BTF: Linux 6.16
/// and later let /sys/kernel/btf/vmlinux be mapped that way (no write, no
/// exec, not shared). Reading the same 5.5 MB through the sysfs file takes
/// one system call per 4 KiB page (~1,350 on 6.18), several milliseconds
/// before any program that needs BTF can load; a mapping reads it in
/// place. `None` where the file cannot be mapped (older kernels).
pub struct Mapped {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

impl Mapped {
    pub fn new(f: &std::fs::File) -> Option<Mapped> {
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        let len = usize::try_from(f.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of `len` bytes of an
        // open file; it is only read as bytes (`as_bytes`) and unmapped
        // once, in `drop`. The kernel's BTF does not change while mapped.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::PRIVATE | MapFlags::POPULATE,
                f,
                0,
            )
        }
        .ok()?;
        Some(Mapped { ptr, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped, once; no slice outlives self.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
    }
}

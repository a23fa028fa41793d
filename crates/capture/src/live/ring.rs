//! The TPACKET_V3 receive ring, as safe slices.
//!
//! The kernel allocates the ring for the socket (PACKET_RX_RING) and we
//! map it. It is `block_count` blocks of `block_size` bytes; each block
//! starts with a status word that says who owns it: the kernel
//! (TP_STATUS_KERNEL) while it fills the block, user space once it sets
//! TP_STATUS_USER. [`Ring::user_block`] hands out a block as `&[u8]` only
//! when user space owns it; [`Ring::release`] gives it back and, taking
//! `&mut self`, cannot be called while such a slice is alive. This module
//! is the only code that touches the mapping.

use super::abi;
use rustix::mm::{MapFlags, ProtFlags};
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{Ordering, fence};

pub struct Ring {
    ptr: NonNull<u8>,
    block_size: usize,
    block_count: usize,
}

// SAFETY: the mapping is owned by this Ring alone (nothing else holds the
// pointer); moving it to another thread moves that ownership.
unsafe impl Send for Ring {}

impl Ring {
    /// Map the ring the kernel allocated for `fd` (PACKET_RX_RING with
    /// these block size and count).
    pub fn map(fd: BorrowedFd<'_>, block_size: usize, block_count: usize) -> io::Result<Ring> {
        assert!(
            block_size >= abi::BLK_FIRST_PKT + 4 && block_count > 0,
            "ring geometry"
        );
        let size = block_size * block_count;
        // SAFETY: a new shared mapping of the ring the kernel allocated for
        // this fd, of exactly its size; no existing memory is affected.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Ring {
            ptr,
            block_size,
            block_count,
        })
    }

    pub fn block_count(&self) -> usize {
        self.block_count
    }

    fn status_word(&self, i: usize) -> *mut u32 {
        assert!(i < self.block_count, "block {i} of {}", self.block_count);
        // SAFETY: i < block_count, so the offset is inside the mapping;
        // BLK_STATUS is a 4-aligned offset in a page-aligned block.
        unsafe {
            self.ptr
                .as_ptr()
                .add(i * self.block_size + abi::BLK_STATUS)
                .cast::<u32>()
        }
    }

    /// Block `i`, if the kernel has handed it to user space.
    pub fn user_block(&self, i: usize) -> Option<&[u8]> {
        // SAFETY: the status word is inside the mapping (status_word
        // checks i); the kernel writes it concurrently, hence volatile.
        let status = unsafe { std::ptr::read_volatile(self.status_word(i)) };
        if status & abi::TP_STATUS_USER == 0 {
            return None;
        }
        // What the kernel wrote into the block before setting the status
        // is visible from here on.
        fence(Ordering::Acquire);
        // SAFETY: the block lies inside the mapping (i was checked), and
        // while its status is TP_STATUS_USER the kernel does not write it;
        // it stays so until `release`, which needs `&mut self` and so
        // cannot run while this shared slice is alive.
        Some(unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(i * self.block_size), self.block_size)
        })
    }

    /// Hand block `i` back to the kernel.
    pub fn release(&mut self, i: usize) {
        // Our reads of the block are done before the kernel may refill it.
        fence(Ordering::Release);
        // SAFETY: the status word is inside the mapping; no slice of the
        // block is alive (`&mut self`).
        unsafe { std::ptr::write_volatile(self.status_word(i), abi::TP_STATUS_KERNEL) };
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: ptr and size are exactly what mmap returned, and no slice
        // into the mapping outlives the Ring (they borrow it).
        unsafe {
            let _ =
                rustix::mm::munmap(self.ptr.as_ptr().cast(), self.block_size * self.block_count);
        }
    }
}

//! BPF support shared by the sources that load programs into the kernel
//! (today the owner iterator, `super::owners_bpf`): a small assembler with
//! symbolic jump labels ([`asm`]), a reader for the struct offsets in the
//! kernel's BTF ([`btf`]), and the `bpf(2)` system call ([`sys`]).
//!
//! Kernel ABI: include/uapi/linux/bpf.h and bpf_common.h.

pub mod asm;
pub mod btf;
pub mod sys;

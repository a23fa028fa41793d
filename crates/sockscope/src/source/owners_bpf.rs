//! Owners through a BPF iterator: the kernel walks every process's open
//! files and hands back (tgid, fd, inode, uid, comm) for each socket in one
//! read, instead of one `statx` per fd under /proc.
//!
//! The program is small enough to assemble here, with the struct offsets it
//! needs read from the kernel's BTF at run time (see [`super::btf`]); that
//! keeps the build free of clang and the start-up free of a full BTF parse.
//! In C it would read:
//!
//! ```c
//! SEC("iter/task_file")
//! int owners(struct bpf_iter__task_file *ctx) {
//!     struct task_struct *task = ctx->task; struct file *file = ctx->file;
//!     if (!task || !file || !file->f_inode) return 0;
//!     struct inode *i = file->f_inode;
//!     if ((i->i_mode & S_IFMT) != S_IFSOCK || i->i_sb->s_magic != SOCKFS_MAGIC) return 0;
//!     struct rec r = { task->tgid, ctx->fd, i->i_ino, task->real_cred ? task->real_cred->euid.val : 0,
//!                      task->pid, (u64)task->files };
//!     bpf_probe_read_kernel(r.comm, 16, task->comm);
//!     bpf_seq_write(ctx->meta->seq, &r, sizeof r);
//!     return 0;
//! }
//! ```
//!
//! The kernel skips threads that share their leader's fd table, so each
//! process appears once, except where a thread's table is not the
//! leader's: a thread that unshared it, or every thread of a process whose
//! leader exited (its table pointer is then NULL, so no thread matches it).
//! The record carries the thread id and the table's address (never shown;
//! only compared), and [`fold_threads`] keeps one owner per distinct table. It needs CAP_BPF and CAP_PERFMON (or root), BTF,
//! and the initial pid namespace (the iterator reports global pids);
//! `owners::scan_auto` falls back to the /proc walk otherwise.

use super::bpf::asm::*;
use super::bpf::btf::{self, Found, Wanted};
use super::bpf::sys::{
    BPF_ITER_CREATE, BPF_LINK_CREATE, BPF_PROG_LOAD, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, bpf,
    put32, put64,
};
use crate::model::{OwnerScan, OwnerScanBuilder};
use rustix::fd::OwnedFd;
use std::io::Read;

/// Size of one record: u32 tgid, u32 fd, u64 inode, u32 euid, u32 tid,
/// u64 files (the fd table's address), comm[16].
const REC: usize = 48;

/// /proc/self/ns/pid of the initial pid namespace (PROC_PID_INIT_INO).
pub(crate) const INIT_PID_NS: u64 = 0xEFFF_FFFC;

#[derive(Clone, Debug, thiserror::Error)]
pub enum BpfOwnerError {
    #[error("not in the initial pid namespace: the BPF iterator reports global pids")]
    PidNamespace,
    #[error("kernel BTF unusable: {0}")]
    Btf(String),
    #[error("loading the owner iterator failed (needs CAP_BPF and CAP_PERFMON): {0}")]
    Load(String),
    #[error("reading the owner iterator: {0}")]
    Read(String),
}

/// Offsets the program needs, from BTF.
#[derive(Clone, Debug)]
struct Offsets {
    meta_seq: u32,
    task_tgid: u32,
    task_pid: u32,
    task_files: u32,
    task_comm: u32,
    task_real_cred: u32,
    cred_uid: u32,
    file_inode: u32,
    inode_mode: u32,
    inode_ino: u32,
    inode_sb: u32,
    sb_magic: u32,
    /// `struct socket`'s `sk`, and the local port in `struct sock`
    /// (`__sk_common.skc_num`).
    socket_sk: u32,
    sock_num: u32,
}

/// What the programs need from BTF: the members they read and the
/// iterator they attach to.
const WANT: Wanted = Wanted {
    structs: &[
        ("bpf_iter_meta", &["seq"]),
        (
            "task_struct",
            &["tgid", "pid", "files", "comm", "real_cred"],
        ),
        ("cred", &["euid"]),
        ("file", &["f_inode"]),
        ("inode", &["i_mode", "i_ino", "i_sb"]),
        ("super_block", &["s_magic"]),
        ("socket", &["sk"]),
        ("sock", &["__sk_common"]),
        ("sock_common", &["skc_num"]),
    ],
    funcs: &["bpf_iter_task_file"],
};

fn offsets(f: &Found) -> Result<Offsets, btf::BtfError> {
    Ok(Offsets {
        meta_seq: f.offset("bpf_iter_meta", "seq")?,
        task_tgid: f.offset("task_struct", "tgid")?,
        task_pid: f.offset("task_struct", "pid")?,
        task_files: f.offset("task_struct", "files")?,
        task_comm: f.offset("task_struct", "comm")?,
        task_real_cred: f.offset("task_struct", "real_cred")?,
        cred_uid: f.offset("cred", "euid")?,
        file_inode: f.offset("file", "f_inode")?,
        inode_mode: f.offset("inode", "i_mode")?,
        inode_ino: f.offset("inode", "i_ino")?,
        inode_sb: f.offset("inode", "i_sb")?,
        sb_magic: f.offset("super_block", "s_magic")?,
        socket_sk: f.offset("socket", "sk")?,
        sock_num: f.offset("sock", "__sk_common")? + f.offset("sock_common", "skc_num")?,
    })
}

/// The kernel's side of the programs: offsets and the attach target.
#[derive(Clone, Debug)]
struct Kernel {
    offsets: Offsets,
    attach: u32,
}

/// Read from BTF once per process (streamed: see [`btf`]).
static KERNEL: std::sync::OnceLock<Result<Kernel, BpfOwnerError>> = std::sync::OnceLock::new();

fn kernel() -> Result<&'static Kernel, BpfOwnerError> {
    KERNEL
        .get_or_init(|| {
            let e = |e: btf::BtfError| BpfOwnerError::Btf(e.to_string());
            let found = btf::lookup_vmlinux(&WANT).map_err(e)?;
            Ok(Kernel {
                offsets: offsets(&found).map_err(e)?,
                attach: found.func_id("bpf_iter_task_file").map_err(e)?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Which fds the iterator reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Every socket fd of every process.
    All,
    /// Only fds of sockets bound to this local port (any family, any
    /// protocol that has ports: the kernel's `skc_num`). Every fd that
    /// holds such a socket is reported: a listener held by many processes
    /// lists them all.
    LocalPort(u16),
}

/// Set (to anything) by benchmarks only: the owner program returns at once
/// for every fd, so a run measures what the walk itself costs the kernel
/// (visiting every fd of every task) with no socket read; no owner is
/// found. `bench/who.sh` times it as the floor of an owner lookup.
pub const ENV_NOOP: &str = "SOCKSCOPE_OWNERS_NOOP";

pub fn noop() -> bool {
    std::env::var_os(ENV_NOOP).is_some()
}

/// The program. The context is the iterator's argument array
/// (DEFINE_BPF_ITER_FUNC(task_file, meta, task, fd, file)): one u64 each.
/// With a port filter it first asks the kernel whether the file is a
/// socket (`bpf_sock_from_file`: a compare of the file's operations, no
/// inode read) and skips it unless its `sk->skc_num` is the port.
fn program(o: &Offsets, filter: Filter) -> Vec<Insn> {
    const CTX_META: u32 = 0;
    const CTX_TASK: u32 = 8;
    const CTX_FD: u32 = 16;
    const CTX_FILE: u32 = 24;
    const S_IFMT: i32 = 0o170000;
    const S_IFSOCK: i32 = 0o140000;
    const SOCKFS_MAGIC: i32 = 0x534F_434B;
    const PROBE_READ_KERNEL: i32 = 113;
    const SEQ_WRITE: i32 = 127;
    const SOCK_FROM_FILE: i32 = 162;
    if noop() {
        return vec![mov_imm(R0, 0), exit()];
    }
    let mut a = Asm::new();
    let out = a.label();
    let no_cred = a.label();
    a.push(&[mov_reg(R6, R1), ldx_dw(R7, R6, CTX_TASK)]); // r6 = ctx, r7 = task
    a.jeq_imm(R7, 0, out);
    a.push(&[ldx_dw(R8, R6, CTX_FILE)]); // r8 = file
    a.jeq_imm(R8, 0, out);
    if let Filter::LocalPort(port) = filter {
        a.push(&[mov_reg(R1, R8), call(SOCK_FROM_FILE)]); // r0 = socket
        a.jeq_imm(R0, 0, out); // not a socket
        a.push(&[ldx_dw(R1, R0, o.socket_sk)]); // r1 = socket->sk
        a.jeq_imm(R1, 0, out);
        a.push(&[ldx_h(R1, R1, o.sock_num)]); // sk->__sk_common.skc_num
        a.jne_imm(R1, i32::from(port), out);
    }
    a.push(&[ldx_dw(R9, R8, o.file_inode)]); // r9 = file->f_inode
    a.jeq_imm(R9, 0, out);
    a.push(&[ldx_h(R1, R9, o.inode_mode), and_imm(R1, S_IFMT)]);
    a.jne_imm(R1, S_IFSOCK, out); // not a socket
    a.push(&[ldx_dw(R1, R9, o.inode_sb)]);
    a.jeq_imm(R1, 0, out);
    a.push(&[ldx_dw(R1, R1, o.sb_magic)]);
    a.jne_imm(R1, SOCKFS_MAGIC, out); // a socket file, not sockfs
    // The record at r10-48 (see REC).
    a.push(&[
        ldx_w(R1, R7, o.task_tgid),
        stx_w(R10, -48, R1), // tgid
        ldx_dw(R1, R6, CTX_FD),
        stx_w(R10, -44, R1), // fd
        ldx_dw(R1, R9, o.inode_ino),
        stx_dw(R10, -40, R1), // inode
        mov_imm(R2, 0),       // uid = 0 unless a cred
        ldx_dw(R1, R7, o.task_real_cred),
    ]);
    a.jeq_imm(R1, 0, no_cred);
    a.push(&[ldx_w(R2, R1, o.cred_uid)]); // euid.val
    a.bind(no_cred);
    a.push(&[
        stx_w(R10, -32, R2), // uid
        ldx_w(R1, R7, o.task_pid),
        stx_w(R10, -28, R1), // tid
        ldx_dw(R1, R7, o.task_files),
        stx_dw(R10, -24, R1), // files (an address, compared only)
        mov_reg(R1, R10),     // dst = r10-16
        add_imm(R1, -16),
        mov_imm(R2, 16),
        mov_reg(R3, R7), // src = task->comm
        add_imm(R3, o.task_comm as i32),
        call(PROBE_READ_KERNEL),
        ldx_dw(R1, R6, CTX_META), // meta->seq
        ldx_dw(R1, R1, o.meta_seq),
        mov_reg(R2, R10), // &record
        add_imm(R2, -48),
        mov_imm(R3, REC as i32),
        call(SEQ_WRITE),
    ]);
    a.bind(out);
    a.push(&[mov_imm(R0, 0), exit()]);
    // Every label above is bound and every jump is short.
    a.finish().expect("the owner program assembles")
}

fn load(k: &Kernel, filter: Filter) -> Result<OwnedFd, BpfOwnerError> {
    let code = encode(&program(&k.offsets, filter));
    let license = b"Dual MIT/GPL\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, BPF_PROG_TYPE_TRACING);
    put32(&mut attr, 4, (code.len() / 8) as u32);
    put64(&mut attr, 8, code.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 24, 1); // log_level
    put32(&mut attr, 28, log.len() as u32);
    put64(&mut attr, 32, log.as_mut_ptr() as u64);
    attr[48..48 + 15].copy_from_slice(b"sockscope_owner");
    put32(&mut attr, 68, BPF_TRACE_ITER); // expected_attach_type
    put32(&mut attr, 108, k.attach); // attach_btf_id
    bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let end = log.iter().position(|&c| c == 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&log[..end]);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        BpfOwnerError::Load(if last.is_empty() {
            e.to_string()
        } else {
            format!("{e}; verifier: {last}")
        })
    })
}

/// One record as the iterator wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub inode: u64,
    pub pid: u32,
    pub fd: u32,
    /// The thread that wrote it (after [`fold_threads`]: 0 for the
    /// process's main table).
    pub tid: u32,
    pub uid: u32,
    /// The address of the fd table it was found in (compared only).
    pub files: u64,
    pub comm: [u8; 16],
}

impl Record {
    /// The command name (up to the first NUL).
    pub fn comm(&self) -> std::borrow::Cow<'_, str> {
        let end = self.comm.iter().position(|&c| c == 0).unwrap_or(16);
        String::from_utf8_lossy(&self.comm[..end])
    }
}

/// Decode the records the iterator wrote (a torn tail is ignored).
pub fn decode(buf: &[u8]) -> impl Iterator<Item = Record> + '_ {
    buf.chunks_exact(REC).map(|r| {
        let u32_at = |i: usize| u32::from_ne_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&r[i..i + 8]);
            u64::from_ne_bytes(b)
        };
        let mut comm = [0u8; 16];
        comm.copy_from_slice(&r[32..48]);
        Record {
            pid: u32_at(0),
            fd: u32_at(4),
            inode: u64_at(8),
            uid: u32_at(16),
            tid: u32_at(20),
            files: u64_at(24),
            comm,
        }
    })
}

/// One owner per distinct fd table. Records of the leader's table (tid =
/// pid) are the process's (`tid` set to 0). The kernel also walks every
/// thread whose table is not the leader's: the threads that share one such
/// table are folded into the one with the lowest tid, which labels the
/// owners.
pub fn fold_threads(recs: Vec<Record>) -> Vec<Record> {
    use std::collections::HashMap;
    let mut lowest: HashMap<(u32, u64), u32> = HashMap::new();
    for r in &recs {
        if r.tid != r.pid {
            let e = lowest.entry((r.pid, r.files)).or_insert(r.tid);
            *e = (*e).min(r.tid);
        }
    }
    recs.into_iter()
        .filter_map(|mut r| {
            if r.tid == r.pid {
                r.tid = 0;
            } else if lowest.get(&(r.pid, r.files)) != Some(&r.tid) {
                return None; // another thread of the same table
            }
            Some(r)
        })
        .collect()
}

/// The owner scan of a whole walk's records (threads folded).
pub fn scan_of(recs: impl IntoIterator<Item = Record>) -> OwnerScan {
    let recs = recs.into_iter();
    let mut b = OwnerScanBuilder::with_capacity(recs.size_hint().0);
    let mut threads = Vec::new();
    let mut pids = std::collections::HashSet::new();
    for mut r in recs {
        pids.insert(r.pid);
        if r.tid == r.pid {
            r.tid = 0;
            push(&mut b, &r);
        } else {
            threads.push(r);
        }
    }
    for r in fold_threads(threads) {
        push(&mut b, &r);
    }
    b.finish(0, pids.len())
}

fn push(b: &mut OwnerScanBuilder, r: &Record) {
    let tid = (r.tid != 0).then_some(r.tid);
    if b.knows(r.pid, tid) {
        b.push(r.inode, r.pid, r.fd, tid, "", Some(r.uid));
    } else {
        b.push(r.inode, r.pid, r.fd, tid, &r.comm(), Some(r.uid));
    }
}

/// The iterator program, verified, loaded and attached, ready to run any
/// number of times.
pub struct Loaded {
    prog: OwnedFd,
    link: OwnedFd,
    filter: Filter,
}

/// Loaded once per process: assembling, reading BTF and the verifier cost
/// more than a walk of a busy host's fd tables.
static LOADED: std::sync::OnceLock<Result<Loaded, BpfOwnerError>> = std::sync::OnceLock::new();

/// The iterator, loaded on first use: check the pid namespace, read BTF for
/// the offsets (streamed, a 64 KiB buffer), assemble, load and attach the
/// program. Later calls return the same program (or the same error).
pub fn prepare() -> Result<&'static Loaded, BpfOwnerError> {
    LOADED
        .get_or_init(|| load_filtered(Filter::All))
        .as_ref()
        .map_err(Clone::clone)
}

/// An iterator that reports only the fds `filter` selects, loaded now
/// (not cached: each filter is its own program; BTF is read once per
/// process). [`prepare`] is the full scan, loaded once.
pub fn load_filtered(filter: Filter) -> Result<Loaded, BpfOwnerError> {
    let ns = rustix::fs::stat("/proc/self/ns/pid")
        .map(|s| s.st_ino)
        .map_err(|_| BpfOwnerError::PidNamespace)?;
    if ns != INIT_PID_NS {
        return Err(BpfOwnerError::PidNamespace);
    }
    let prog = load(kernel()?, filter)?;
    let mut attr = [0u8; 64];
    put32(&mut attr, 0, rustix::fd::AsRawFd::as_raw_fd(&prog) as u32);
    put32(&mut attr, 8, BPF_TRACE_ITER);
    let link =
        bpf(BPF_LINK_CREATE, &mut attr).map_err(|e| BpfOwnerError::Load(format!("link: {e}")))?;
    Ok(Loaded { prog, link, filter })
}

/// Run the iterator once (loading it first if this process has not).
pub fn scan() -> Result<OwnerScan, BpfOwnerError> {
    prepare()?.run()
}

impl Loaded {
    /// The fds this iterator reports.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// Walk every process's files once and collect the owners of the
    /// sockets the filter selects.
    pub fn run(&self) -> Result<OwnerScan, BpfOwnerError> {
        self.run_with(&mut |_| {})
    }

    /// [`run`](Self::run), showing `seen` each record as it is read (in
    /// the kernel's order, while the walk goes on; `tid` 0 for a
    /// process's main table), so a caller can start reading those
    /// processes before the walk ends. With a port filter the walk is read
    /// a few KiB at a time (the kernel fills a read before it returns), so
    /// the first records come early.
    pub fn run_with(&self, seen: &mut dyn FnMut(&Record)) -> Result<OwnerScan, BpfOwnerError> {
        let mut file = iter_create(&self.link)?;
        // Decode as it arrives: no buffer of the whole output. Records of a
        // process's main fd table (nearly all) go straight into the table;
        // those of other threads' tables wait to be folded.
        let mut b = OwnerScanBuilder::default();
        let mut threads = Vec::new();
        let mut pids = std::collections::HashSet::new();
        let mut last_pid = None;
        self.read_records(&mut file, &mut |mut r| {
            if last_pid != Some(r.pid) {
                last_pid = Some(r.pid);
                pids.insert(r.pid);
            }
            if r.tid == r.pid {
                r.tid = 0;
                seen(&r);
                push(&mut b, &r);
            } else {
                seen(&r);
                threads.push(r);
            }
        })?;
        for r in fold_threads(threads) {
            push(&mut b, &r);
        }
        Ok(b.finish(0, pids.len()))
    }

    /// Read an iterator of this program to its end, handing each record
    /// to `each` as it arrives. With a port filter the walk is read a few
    /// KiB at a time (the kernel fills a read before it returns), so the
    /// first records come early.
    fn read_records(
        &self,
        file: &mut std::fs::File,
        each: &mut dyn FnMut(Record),
    ) -> Result<(), BpfOwnerError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut have = 0;
        let step = match self.filter {
            Filter::All => buf.len(),
            Filter::LocalPort(_) => 85 * REC,
        };
        loop {
            let end = (have + step).min(buf.len());
            let n = file
                .read(&mut buf[have..end])
                .map_err(|e| BpfOwnerError::Read(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            have += n;
            let whole = have - have % REC;
            for r in decode(&buf[..whole]) {
                each(r);
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
    }

    /// An iterator over the files of process `pid` only (all its threads
    /// that have their own fd table), from a link made for it.
    fn iter_process(&self, pid: u32) -> Result<std::fs::File, BpfOwnerError> {
        // union bpf_iter_link_info, its `task` member: tid, pid, pid_fd.
        let mut info = [0u8; 16];
        put32(&mut info, 4, pid);
        let mut attr = [0u8; 64];
        put32(
            &mut attr,
            0,
            rustix::fd::AsRawFd::as_raw_fd(&self.prog) as u32,
        );
        put32(&mut attr, 8, BPF_TRACE_ITER);
        put64(&mut attr, 16, info.as_ptr() as u64);
        put32(&mut attr, 24, info.len() as u32);
        let link = bpf(BPF_LINK_CREATE, &mut attr)
            .map_err(|e| BpfOwnerError::Read(format!("link for process {pid}: {e}")))?;
        // The iterator holds the link: it can go at once.
        iter_create(&link)
    }
}

/// A new iterator (a readable file) of `link`.
fn iter_create(link: &OwnedFd) -> Result<std::fs::File, BpfOwnerError> {
    let mut attr = [0u8; 8];
    put32(&mut attr, 0, rustix::fd::AsRawFd::as_raw_fd(link) as u32);
    let iter =
        bpf(BPF_ITER_CREATE, &mut attr).map_err(|e| BpfOwnerError::Read(format!("iter: {e}")))?;
    Ok(std::fs::File::from(iter))
}

/// Can the task iterators be given one process to walk? (Linux 6.1 and
/// later; an older kernel ignores the pid and walks every process.)
fn walks_one_process() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|r| release_at_least(&r, (6, 1)))
}

/// Is the kernel release `release` ("6.18.44-cloud-amd64") at least
/// `want` (major, minor)? An unreadable release is not.
fn release_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// A port's owner walk shared by two threads, process by process: one
/// takes processes from the lowest pid up as soon as the program is
/// loaded, the other (the dump's thread, once its dump is done) from the
/// highest down, until they meet. A walk of the whole host in one
/// iterator can only run on one CPU; this one ends about when the dump
/// and the walk, added, would end on two.
///
/// The processes are those listed in /proc when the walk starts (a
/// process started later is not walked: the same race as a process
/// started after the global iterator passed its pid). Each process is
/// walked whole (every thread with its own fd table), so its threads are
/// folded as [`fold_threads`] does.
pub struct Shared {
    loaded: Loaded,
    pids: Vec<u32>,
    /// Next index to take from the bottom, and one past the next from the
    /// top.
    ends: std::sync::Mutex<(usize, usize)>,
}

/// One thread's share of a [`Shared`] walk.
#[derive(Default)]
pub struct Part {
    owners: OwnerScanBuilder,
    processes: usize,
}

/// Files open on the host per process, on average, from which walking
/// process by process pays: a walk of one process costs ~7 µs more than
/// its share of one walk of every process (two more fds, a link, a
/// read), and a walk of every fd ~0.25-0.6 µs per fd, of which the split
/// saves at most half. The kernel's count of open files also holds each
/// process's mapped binary and libraries (~17 per process on Debian), so
/// the cut is above the break-even of ~35 fds per process. Measured on
/// 2 cores: 40,000 sockets over 100 processes (~260 files per process)
/// 33 -> 30 ms for `who :PORT`; 2,000 idle processes (~17 files each)
/// 14.6 -> 23 ms if split, so they are walked whole.
const SPLIT_FILES_PER_PROCESS: u64 = 64;

/// Is splitting worth it with `files` open on the host (the first field
/// of /proc/sys/fs/file-nr) over `processes`?
fn worth_splitting(files: u64, processes: usize) -> bool {
    files >= (processes as u64).saturating_mul(SPLIT_FILES_PER_PROCESS)
}

/// Set to 1 (split the port's owner walk by process wherever the kernel
/// can) or 0 (never), instead of deciding from the files per process:
/// for tests and benchmarks of both ways.
pub const ENV_SPLIT: &str = "SOCKSCOPE_OWNERS_SPLIT";

/// The kernel's count of open files (allocated file handles).
fn open_files() -> Option<u64> {
    let nr = std::fs::read_to_string("/proc/sys/fs/file-nr").ok()?;
    nr.split_whitespace().next()?.parse().ok()
}

impl Shared {
    /// The walk of `loaded` (a port filter) split by process, where the
    /// kernel can walk one process at a time, /proc lists the processes
    /// and they hold enough files on average for it to pay (see
    /// [`SPLIT_FILES_PER_PROCESS`]); otherwise `loaded` back, to be run
    /// whole.
    /// [`ENV_SPLIT`] decides instead where it is set to 1 or 0.
    pub fn new(loaded: Loaded) -> Result<Shared, Loaded> {
        let forced = std::env::var(ENV_SPLIT).ok();
        if forced.as_deref() == Some("0") {
            return Err(loaded);
        }
        let shared = Shared::always(loaded)?;
        if forced.as_deref() == Some("1") {
            return Ok(shared);
        }
        match open_files() {
            Some(files) if worth_splitting(files, shared.pids.len()) => Ok(shared),
            _ => Err(shared.loaded),
        }
    }

    /// Processes listed for the walk.
    pub fn processes(&self) -> usize {
        self.pids.len()
    }

    /// [`Shared::new`] whatever the files per process.
    fn always(loaded: Loaded) -> Result<Shared, Loaded> {
        if loaded.filter == Filter::All || !walks_one_process() {
            return Err(loaded);
        }
        let pids = rustix::fs::open(
            "/proc",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .and_then(|root| super::owners::list_pids(&root));
        match pids {
            Ok(mut pids) => {
                pids.sort_unstable();
                let n = pids.len();
                Ok(Shared {
                    loaded,
                    pids,
                    ends: std::sync::Mutex::new((0, n)),
                })
            }
            Err(_) => Err(loaded),
        }
    }

    /// The walk of every process at once (after [`Shared::work`] failed).
    pub fn whole(&self, seen: &mut dyn FnMut(&Record)) -> Result<OwnerScan, BpfOwnerError> {
        self.loaded.run_with(seen)
    }

    /// The next process to walk, from the top or the bottom.
    fn claim(&self, from_top: bool) -> Option<u32> {
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        let (lo, hi) = &mut *ends;
        if *lo >= *hi {
            return None;
        }
        Some(if from_top {
            *hi -= 1;
            self.pids[*hi]
        } else {
            *lo += 1;
            self.pids[*lo - 1]
        })
    }

    /// Walk processes until none is left to take, showing `seen` each
    /// record (`tid` 0 for a process's main table) as it is read.
    pub fn work(
        &self,
        from_top: bool,
        seen: &mut dyn FnMut(&Record),
    ) -> Result<Part, BpfOwnerError> {
        let mut part = Part::default();
        while self.step(from_top, &mut part, seen)? {}
        Ok(part)
    }

    /// Walk one more process into `part`; false when none was left.
    pub fn step(
        &self,
        from_top: bool,
        part: &mut Part,
        seen: &mut dyn FnMut(&Record),
    ) -> Result<bool, BpfOwnerError> {
        let Some(pid) = self.claim(from_top) else {
            return Ok(false);
        };
        let mut file = self.loaded.iter_process(pid)?;
        let mut found = false;
        let mut threads = Vec::new();
        self.loaded.read_records(&mut file, &mut |mut r| {
            if r.pid != pid {
                return; // not this process's (cannot happen on 6.1+)
            }
            found = true;
            if r.tid == r.pid {
                r.tid = 0;
                seen(&r);
                push(&mut part.owners, &r);
            } else {
                seen(&r);
                threads.push(r);
            }
        })?;
        // Every thread of the process was walked: fold them now.
        for r in fold_threads(threads) {
            push(&mut part.owners, &r);
        }
        part.processes += usize::from(found);
        Ok(true)
    }
}

/// The owners the parts of a [`Shared`] walk found, together.
pub fn join_parts(parts: Vec<Part>) -> OwnerScan {
    let mut b = OwnerScanBuilder::default();
    let mut processes = 0;
    for p in parts {
        processes += p.processes;
        b.append(p.owners);
    }
    b.finish(0, processes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_records() {
        let rec = |pid: u32, tid: u32, fd: u32, ino: u64, files: u64| {
            let mut r = Vec::new();
            r.extend(pid.to_ne_bytes());
            r.extend(fd.to_ne_bytes());
            r.extend(ino.to_ne_bytes());
            r.extend(1000u32.to_ne_bytes());
            r.extend(tid.to_ne_bytes());
            r.extend(files.to_ne_bytes());
            r.extend(b"nc\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
            r
        };
        let mut r = rec(7, 7, 3, 35587, 0xa0);
        r.extend([1, 2, 3]); // a torn tail is ignored
        let v: Vec<Record> = decode(&r).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (
                v[0].inode, v[0].files, v[0].pid, v[0].fd, v[0].uid, v[0].tid
            ),
            (35587, 0xa0, 7, 3, 1000, 7)
        );
        assert_eq!(v[0].comm(), "nc");
        // The leader's table: no tid. A process whose leader exited: its
        // threads 11, 12, 13 share one table (0xb0) and report the same fds;
        // one owner each, labelled 11. Thread 21 of process 20 unshared its
        // table (0xc1, the leader's is 0xc0): kept, labelled 21.
        let mut buf = Vec::new();
        for (pid, tid, fd, ino, files) in [
            (7, 7, 3, 100, 0xa0),
            (10, 12, 4, 200, 0xb0),
            (10, 11, 4, 200, 0xb0),
            (10, 13, 4, 200, 0xb0),
            (20, 20, 3, 300, 0xc0),
            (20, 21, 5, 300, 0xc1),
        ] {
            buf.extend(rec(pid, tid, fd, ino, files));
        }
        let got: Vec<(u64, u32, u32, u32)> = fold_threads(decode(&buf).collect())
            .into_iter()
            .map(|r| (r.inode, r.pid, r.tid, r.fd))
            .collect();
        assert_eq!(
            got,
            vec![
                (100, 7, 0, 3),
                (200, 10, 11, 4),
                (300, 20, 0, 3),
                (300, 20, 21, 5),
            ]
        );
        // Into a table: the same owners, tid None for the main table.
        let mut b = OwnerScanBuilder::default();
        for r in fold_threads(decode(&buf).collect()) {
            push(&mut b, &r);
        }
        let s = b.finish(0, 3);
        let o = s.owners(300);
        assert_eq!(
            o.iter().map(|o| (o.pid, o.tid, o.fd)).collect::<Vec<_>>(),
            vec![(20, None, 3), (20, Some(21), 5)]
        );
        assert_eq!(o[0].comm, "nc");
    }

    #[test]
    fn split_only_where_processes_hold_many_files() {
        // The 40k-socket benchmark's host; 2,000 idle processes.
        assert!(worth_splitting(45_000, 173));
        assert!(!worth_splitting(34_689, 2_083));
        assert!(worth_splitting(64, 1));
        assert!(!worth_splitting(63, 1));
        assert!(worth_splitting(0, 0));
        assert!(!worth_splitting(u64::MAX - 1, usize::MAX));
        assert!(open_files().is_some_and(|n| n > 0), "/proc/sys/fs/file-nr");
    }

    #[test]
    fn kernel_releases_compare() {
        assert!(release_at_least("6.18.44-cloud-amd64\n", (6, 1)));
        assert!(release_at_least("6.1.0", (6, 1)));
        assert!(release_at_least("7.0-rc1", (6, 1)));
        assert!(!release_at_least("6.0.19", (6, 1)));
        assert!(!release_at_least("5.15.0-91-generic", (6, 1)));
        assert!(!release_at_least("", (6, 1)));
        assert!(!release_at_least("linux", (6, 1)));
    }

    /// The port's walk split by process between two threads finds what
    /// the walk of the whole host finds: the listener in this process's
    /// table and in a child process (the fd passed as its fd 3), and the
    /// accepted connection. (Threads with their own tables, and processes
    /// whose leader exited, are walked by `who :PORT` in the CLI's
    /// threads test: unsharing a table here would copy the other tests'
    /// sockets into it.)
    #[test]
    #[allow(unsafe_code)]
    fn split_walk_equals_the_whole_walk() {
        if !crate::root_or_skip("source::owners_bpf::tests::split_walk_equals_the_whole_walk") {
            return;
        }
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::process::CommandExt;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        let lfd = l.as_raw_fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: dup2 and fcntl are async-signal-safe; the child gets the
        // listener as its fd 3, without close-on-exec (which dup2 leaves
        // set when the listener is fd 3 already).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(lfd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let kid = child.id();
        let walks = || -> Option<(OwnerScan, OwnerScan)> {
            let whole = match load_filtered(Filter::LocalPort(port)) {
                Ok(p) => p.run().unwrap(),
                Err(BpfOwnerError::PidNamespace) => return None, // a container
                Err(e) => panic!("filtered owner iterator failed as root: {e}"),
            };
            let shared = match Shared::always(load_filtered(Filter::LocalPort(port)).unwrap()) {
                Ok(s) => s,
                Err(_) => {
                    assert!(!walks_one_process(), "6.1+ walks one process at a time");
                    return None;
                }
            };
            // Both ends at once, as `who` runs them.
            let (bottom, top) = std::thread::scope(|s| {
                let b = s.spawn(|| shared.work(false, &mut |_| {}).unwrap());
                let t = shared.work(true, &mut |_| {}).unwrap();
                (b.join().unwrap(), t)
            });
            Some((whole, join_parts(vec![bottom, top])))
        };
        let got = walks();
        let _ = child.kill();
        let _ = child.wait();
        let Some((whole, split)) = got else {
            return;
        };
        let me = std::process::id();
        let owners = |scan: &OwnerScan, fd: i32| -> Vec<(u32, Option<u32>, u32)> {
            let ino = std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .ino();
            let mut v: Vec<_> = scan
                .owners(ino)
                .iter()
                .map(|o| (o.pid, o.tid, o.fd))
                .collect();
            v.sort();
            v
        };
        let mut want = vec![(me, None, lfd as u32), (kid, None, 3)];
        want.sort();
        assert_eq!(owners(&whole, lfd), want);
        assert_eq!(owners(&split, lfd), want);
        assert_eq!(owners(&split, a.as_raw_fd()), owners(&whole, a.as_raw_fd()));
        assert!(!owners(&split, a.as_raw_fd()).is_empty());
        assert!(
            owners(&split, c.as_raw_fd()).is_empty(),
            "the client's port is another"
        );
        assert_eq!(split.inode_count(), whole.inode_count());
        assert_eq!(split.processes, whole.processes);
    }

    #[test]
    fn every_jump_lands_on_the_exit() {
        let o = Offsets {
            meta_seq: 0,
            task_tgid: 1,
            task_pid: 10,
            task_files: 11,
            task_comm: 2,
            task_real_cred: 3,
            cred_uid: 4,
            file_inode: 5,
            inode_mode: 6,
            inode_ino: 7,
            inode_sb: 8,
            sb_magic: 9,
            socket_sk: 12,
            sock_num: 13,
        };
        for filter in [Filter::All, Filter::LocalPort(20000)] {
            let p = program(&o, filter);
            let out = p.len() - 2;
            // The one jump that does not leave: over the uid read when
            // there is no cred.
            let uid = p.iter().position(|i| *i == ldx_w(R2, R1, 4)).unwrap();
            for (i, insn) in p.iter().enumerate() {
                if matches!(insn.0, 0x15 | 0x55) {
                    let target = i as i64 + 1 + i64::from(insn.2);
                    assert!(
                        target == out as i64 || (i + 1 == uid && target == uid as i64 + 1),
                        "{filter:?}: jump at {i} goes to {target}"
                    );
                }
            }
            assert_eq!(encode(&p).len(), p.len() * 8);
            let port_test = p.iter().any(|i| (i.0, i.1, i.3) == (0x55, R1, 20000));
            assert_eq!(port_test, filter != Filter::All, "{filter:?}");
        }
    }

    #[test]
    fn port_filter_reports_only_that_port() {
        if !crate::root_or_skip("source::owners_bpf::tests::port_filter_reports_only_that_port") {
            return;
        }
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let ino = |fd: i32| {
            std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .ino()
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        // The listener held twice (as after fork or dup): both fds.
        let l2 = l.try_clone().unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let u = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let only = match load_filtered(Filter::LocalPort(port)) {
            Ok(p) => p,
            Err(BpfOwnerError::PidNamespace) => return, // a container
            Err(e) => panic!("filtered owner iterator failed as root: {e}"),
        };
        assert_eq!(only.filter(), Filter::LocalPort(port));
        let s = only.run().unwrap();
        let all = scan().unwrap();
        let me = std::process::id();
        let fds = |scan: &OwnerScan, fd: i32| -> Vec<(u32, u32)> {
            let mut v: Vec<_> = scan.owners(ino(fd)).iter().map(|o| (o.pid, o.fd)).collect();
            v.sort();
            v
        };
        // On the port: the listener (both fds), the accepted connection and
        // the UDP socket, with the same owners as the full scan gives.
        let mut both = vec![(me, l.as_raw_fd() as u32), (me, l2.as_raw_fd() as u32)];
        both.sort();
        assert_eq!(fds(&s, l.as_raw_fd()), both);
        for fd in [l.as_raw_fd(), a.as_raw_fd(), u.as_raw_fd()] {
            assert_eq!(fds(&s, fd), fds(&all, fd), "fd {fd}");
            assert!(!fds(&s, fd).is_empty(), "fd {fd}");
        }
        // Not on the port: the client end (an ephemeral port), the other
        // listener.
        for fd in [c.as_raw_fd(), other.as_raw_fd()] {
            assert!(fds(&s, fd).is_empty(), "fd {fd} is not on port {port}");
            assert_eq!(fds(&all, fd), vec![(me, fd as u32)]);
        }
        assert!(s.inode_count() < all.inode_count());
        drop((l, l2, a, c, u, other));
    }

    #[test]
    fn agrees_with_the_proc_walk() {
        if !crate::root_or_skip("source::owners_bpf::tests::agrees_with_the_proc_walk") {
            return;
        }
        // Root in CI: the iterator must load; its answer for our own
        // sockets must equal the /proc walk's.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        let fast = match scan() {
            Ok(s) => s,
            Err(BpfOwnerError::PidNamespace) => return, // a container: nothing to compare
            Err(e) => panic!("BPF owner iterator failed as root: {e}"),
        };
        // Loaded once per process, run any number of times.
        assert!(std::ptr::eq(prepare().unwrap(), prepare().unwrap()));
        let slow = super::super::owners::scan("/proc").unwrap();
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let me = std::process::id();
        for fd in [l.as_raw_fd(), c.as_raw_fd(), a.as_raw_fd()] {
            let ino = std::fs::metadata(format!("/proc/self/fd/{fd}"))
                .unwrap()
                .ino();
            let f: Vec<_> = fast.owners(ino).iter().map(|o| (o.pid, o.fd)).collect();
            let s: Vec<_> = slow.owners(ino).iter().map(|o| (o.pid, o.fd)).collect();
            assert_eq!(f, s, "inode {ino}");
            assert_eq!(f, vec![(me, fd as u32)]);
            let o = &fast.owners(ino)[0];
            assert_eq!(o.uid, Some(rustix::process::geteuid().as_raw()));
            assert_eq!(o.uid, slow.owners(ino)[0].uid);
            assert_eq!(o.comm, slow.owners(ino)[0].comm);
        }
        // Both see the same set of socket inodes system-wide, give or take
        // sockets opened or closed between the two scans. On a busy machine
        // (other test suites making thousands of sockets a second) that
        // churn can exceed the tolerance: scan again, a few times.
        let close = |f: &OwnerScan, s: &OwnerScan| {
            let (nf, ns) = (f.inode_count() as i64, s.inode_count() as i64);
            (
                (nf - ns).abs() <= 5 + ns / 100,
                format!("bpf {nf} vs proc {ns}"),
            )
        };
        let (mut ok, mut what) = close(&fast, &slow);
        for _ in 0..5 {
            if ok {
                break;
            }
            let f = scan().unwrap();
            let s = super::super::owners::scan("/proc").unwrap();
            (ok, what) = close(&f, &s);
        }
        assert!(ok, "{what}");
    }
}

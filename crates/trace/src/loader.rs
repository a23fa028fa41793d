//! Loading and running the BPF programs: the one module that talks to the
//! kernel's BPF interface (through aya's pure-Rust loader).
//!
//! The object is built from `bpf/*.c` and committed (see `bpf/build.sh`);
//! it is embedded in the binary, so building sockscope needs no clang and
//! no libelf. [`preflight`] checks BTF and capabilities first so that a
//! missing one is a sentence, not a verifier dump. [`Tracer::start`] sets
//! the configuration (read-only globals the verifier folds in), loads every
//! program as a BTF tracepoint (tp_btf: no tracefs, kprobes or fentry
//! needed), fills the filter and owner maps and attaches. [`Tracer::poll`]
//! hands ring buffer records to a callback; [`Tracer::counters`] sums the
//! per-CPU counters of events written, lost and filtered; [`Tracer::detach`]
//! detaches the programs while the ring buffer stays readable.

use crate::abi::{self, BATCH_HEAD, BATCH_KIND, BATCH_MAX, EVENT_SIZE, Kind};
use crate::kfunc::{self, Link};
use aya::maps::{HashMap as BpfHash, LpmTrie, MapData, PerCpuArray, RingBuf, lpm_trie::Key};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use aya_obj::btf::BtfKind;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::Duration;

#[cfg(target_arch = "x86_64")]
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/trace-x86_64.bpf.o");
#[cfg(target_arch = "aarch64")]
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/trace-aarch64.bpf.o");
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
static OBJECT: &[u8] = &[];

/// Diagnostic switch: read sockets found through the fd table with probe
/// reads even where the bpf_rdonly_cast kfunc is available.
pub const ENV_PROBE_READ: &str = "SOCKSCOPE_TRACE_PROBE_READ";
/// Benchmark switch: attach the syscall programs but have them return at
/// once, to measure what the syscall tracepoints cost by themselves.
pub const ENV_NOOP_SYSCALLS: &str = "SOCKSCOPE_TRACE_NOOP_SYSCALLS";
/// Benchmark only: when set, every program is attached but returns at
/// once, so a run measures what the attached tracepoints cost by
/// themselves (bench/trace.sh's floor).
pub const ENV_NOOP_ALL: &str = "SOCKSCOPE_TRACE_NOOP_ALL";
/// Benchmark only: when set, each program that writes events writes one
/// empty event of its kind per run and reads nothing (so no filter
/// applies: every run writes one); the others return at once. The reader then drops what it takes (see session.rs), so a run
/// measures what delivering one record per event costs by itself
/// (bench/trace.sh's "one empty record per event" rows).
pub const ENV_EMIT_ONLY: &str = "SOCKSCOPE_TRACE_EMIT_ONLY";
/// Benchmark switch: `0` writes every event to the ring buffer alone
/// instead of in per-CPU batches (bpf/common.h, output()), to compare.
pub const ENV_BATCH: &str = "SOCKSCOPE_TRACE_BATCH";

/// Where the kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The syscalls traced at exit (bpf/syscalls.c).
pub const SYSCALLS: [&str; 10] = [
    "socket",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "shutdown",
    "setsockopt",
    "close",
    "fcntl",
];

/// The waits traced for processes that own a traced socket (bpf/wait.c),
/// at entry and exit; the ones this architecture lacks are skipped.
pub const WAIT_SYSCALLS: [&str; 7] = [
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
];

/// The syscalls also traced at entry: close (the fd is gone at exit) and
/// the ones that may block (for their duration).
pub const ENTRY_SYSCALLS: [&str; 4] = ["accept", "accept4", "connect", "close"];

/// The fallback for the syscall programs when tracefs is not mounted:
/// raw_syscalls as BTF tracepoints (program, raw tracepoint).
pub const RAW_SYSCALLS: [(&str, &str); 2] =
    [("ss_sys_enter", "sys_enter"), ("ss_sys_exit", "sys_exit")];

/// A program in the object and the tracepoint it attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Function name in bpf/*.c.
    pub program: &'static str,
    /// Raw tracepoint name (the kernel's `btf_trace_<name>` typedef).
    pub tracepoint: &'static str,
    /// The tracepoint as `perf list` names it.
    pub event: &'static str,
    /// Without it, `sockscope trace` cannot run at all.
    pub required: bool,
    /// The kinds of event it writes.
    pub kinds: &'static [Kind],
    /// It keeps the kernel's owner maps current, so when the kernel
    /// attributes events (a pid or command filter, or not all of state,
    /// syscall and data events shown) it runs even when its kinds are not
    /// shown. (The syscall programs do too, but they cost a busy
    /// server the most, so leaving syscalls out of --events leaves them
    /// out: owners then come from send/recv, listen and the snapshot.)
    pub keeps_owners: bool,
}

/// Every program, in attach order. The syscall programs (`ss_sc_*`)
/// attach to the per-syscall tracepoints of [`SYSCALLS`] (perf events,
/// found through tracefs); the others are BTF tracepoints.
pub const PROBES: [Probe; 20] = [
    Probe {
        program: "ss_state",
        tracepoint: "inet_sock_set_state",
        event: "sock:inet_sock_set_state",
        required: true,
        kinds: &[Kind::State],
        keeps_owners: true,
    },
    Probe {
        program: "ss_retransmit",
        tracepoint: "tcp_retransmit_skb",
        event: "tcp:tcp_retransmit_skb",
        required: false,
        kinds: &[Kind::Retransmit],
        keeps_owners: false,
    },
    Probe {
        program: "ss_retransmit_synack",
        tracepoint: "tcp_retransmit_synack",
        event: "tcp:tcp_retransmit_synack",
        required: false,
        kinds: &[Kind::RetransmitSynack],
        keeps_owners: false,
    },
    Probe {
        program: "ss_send_reset",
        tracepoint: "tcp_send_reset",
        event: "tcp:tcp_send_reset",
        required: false,
        kinds: &[Kind::ResetSent],
        keeps_owners: false,
    },
    Probe {
        program: "ss_receive_reset",
        tracepoint: "tcp_receive_reset",
        event: "tcp:tcp_receive_reset",
        required: false,
        kinds: &[Kind::ResetReceived],
        keeps_owners: false,
    },
    Probe {
        program: "ss_destroy",
        tracepoint: "tcp_destroy_sock",
        event: "tcp:tcp_destroy_sock",
        required: false,
        kinds: &[Kind::Destroy],
        keeps_owners: true,
    },
    Probe {
        program: "ss_drop",
        tracepoint: "kfree_skb",
        event: "skb:kfree_skb",
        required: false,
        kinds: &[Kind::Drop],
        keeps_owners: false,
    },
    Probe {
        program: "ss_sc_enter",
        tracepoint: "sys_enter",
        event: "syscalls:sys_enter_*",
        required: false,
        kinds: &[Kind::Syscall],
        keeps_owners: false,
    },
    Probe {
        program: "ss_sc_exit",
        tracepoint: "sys_exit",
        event: "syscalls:sys_exit_*",
        required: false,
        kinds: &[Kind::Syscall],
        keeps_owners: false,
    },
    Probe {
        program: "ss_send",
        tracepoint: "sock_send_length",
        event: "sock:sock_send_length",
        required: false,
        kinds: &[Kind::Send],
        keeps_owners: true,
    },
    Probe {
        program: "ss_recv",
        tracepoint: "sock_recv_length",
        event: "sock:sock_recv_length",
        required: false,
        kinds: &[Kind::Recv],
        keeps_owners: true,
    },
    // Packets: the softirq flag first, so that the first packets see it.
    Probe {
        program: "ss_softirq_entry",
        tracepoint: "softirq_entry",
        event: "irq:softirq_entry",
        required: false,
        kinds: &[Kind::Packet],
        keeps_owners: false,
    },
    Probe {
        program: "ss_softirq_exit",
        tracepoint: "softirq_exit",
        event: "irq:softirq_exit",
        required: false,
        kinds: &[Kind::Packet],
        keeps_owners: false,
    },
    Probe {
        program: "ss_pkt_out",
        tracepoint: "net_dev_queue",
        event: "net:net_dev_queue",
        required: false,
        kinds: &[Kind::Packet],
        keeps_owners: false,
    },
    Probe {
        program: "ss_pkt_in",
        tracepoint: "netif_receive_skb",
        event: "net:netif_receive_skb",
        required: false,
        kinds: &[Kind::Packet],
        keeps_owners: false,
    },
    Probe {
        program: "ss_wakeup",
        tracepoint: "sched_wakeup",
        event: "sched:sched_wakeup",
        required: false,
        kinds: &[Kind::Wake],
        keeps_owners: false,
    },
    Probe {
        program: "ss_wait_enter",
        tracepoint: "sys_enter",
        event: "syscalls:sys_enter_{select,poll,epoll_wait,...}",
        required: false,
        kinds: &[Kind::Wait],
        keeps_owners: false,
    },
    Probe {
        program: "ss_wait_exit",
        tracepoint: "sys_exit",
        event: "syscalls:sys_exit_{select,poll,epoll_wait,...}",
        required: false,
        kinds: &[Kind::Wait],
        keeps_owners: false,
    },
    // These two write each CPU's batch of events (bpf/batch.c); attached
    // whenever events are batched, whatever the kinds.
    Probe {
        program: "ss_batch_tick",
        tracepoint: "hrtimer_expire_entry",
        event: "timer:hrtimer_expire_entry",
        required: true,
        kinds: &[],
        keeps_owners: false,
    },
    Probe {
        program: "ss_batch_idle",
        tracepoint: "cpu_idle",
        event: "power:cpu_idle",
        required: true,
        kinds: &[],
        keeps_owners: false,
    },
];

/// The per-CPU batch of bpf/common.h (struct ss_stage), as raw bytes:
/// `busy` u64, `first_ts` u64, `n` u32, pad, then the ring buffer record
/// (8-byte header, SS_BATCH_MAX events).
const STAGE_SIZE: usize = STAGE_EVENTS + BATCH_MAX * EVENT_SIZE;
const STAGE_N: usize = 16;
const STAGE_EVENTS: usize = 32;
type Stage = [u8; STAGE_SIZE];

/// Why tracing cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "sockscope trace needs the kernel's BTF type information at {VMLINUX_BTF}, which {0}; \
         use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution's is). \
         Other sockscope commands do not need it"
    )]
    NoBtf(String),
    #[error(
        "sockscope trace needs {missing} to load BPF programs on tracepoints (it has {have}); \
         run it as root, or grant them: sudo setcap cap_bpf,cap_perfmon+ep \
         $(command -v sockscope). Other sockscope commands keep working without them"
    )]
    Privilege { missing: String, have: String },
    #[error(
        "the kernel refused to load sockscope's BPF programs: {0}. \
         Loading BPF programs needs CAP_BPF and CAP_PERFMON (or root), and is blocked by \
         kernel lockdown in confidentiality mode"
    )]
    Denied(String),
    #[error("sockscope trace is only built for x86_64 and aarch64")]
    Arch,
    #[error("loading the BPF object: {0}")]
    Load(String),
    #[error(
        "the kernel lacks the tracepoint {event} ({detail}); sockscope trace cannot run without it"
    )]
    Required { event: &'static str, detail: String },
    #[error("setting up the BPF map {map}: {detail}")]
    Map { map: &'static str, detail: String },
    #[error("reading the ring buffer: {0}")]
    Poll(io::Error),
}

impl sockscope::error::Classify for TraceError {
    fn kind(&self) -> sockscope::error::Kind {
        use sockscope::error::Kind;
        match self {
            TraceError::Privilege { .. } | TraceError::Denied(_) => Kind::Privilege,
            TraceError::NoBtf(_) | TraceError::Arch | TraceError::Required { .. } => {
                Kind::KernelFeature
            }
            TraceError::Load(_) | TraceError::Map { .. } | TraceError::Poll(_) => Kind::System,
        }
    }
}

/// The error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// True when some cause in the chain is EPERM or EACCES.
pub(crate) fn denied(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        {
            return true;
        }
        cur = c.source();
    }
    false
}

// Capability numbers: include/uapi/linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability mask from /proc/self/status (`CapEff:`).
pub fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Which of the needed capabilities a mask lacks: CAP_BPF and CAP_PERFMON
/// (CAP_SYS_ADMIN stands in for both, as on kernels before 5.8).
pub fn missing_caps(mask: u64) -> Vec<&'static str> {
    let has = |c: u32| mask & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut m = Vec::new();
    if !has(CAP_BPF) {
        m.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        m.push("CAP_PERFMON");
    }
    m
}

fn cap_names(mask: u64) -> String {
    let names: Vec<&str> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_BPF, "CAP_BPF"),
    ]
    .iter()
    .filter(|(c, _)| mask & (1u64 << c) != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN".into()
    } else {
        names.join(", ")
    }
}

/// Check, before touching the BPF syscall, that the kernel has BTF and
/// that we hold the capabilities to load tracing programs.
pub fn preflight() -> Result<(), TraceError> {
    if OBJECT.is_empty() {
        return Err(TraceError::Arch);
    }
    match std::fs::metadata(VMLINUX_BTF) {
        Ok(m) if m.len() > 0 => {}
        Ok(_) => return Err(TraceError::NoBtf("is empty".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TraceError::NoBtf("does not exist".into()));
        }
        Err(e) => return Err(TraceError::NoBtf(format!("cannot be read ({e})"))),
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(mask) = effective_caps(&status) {
        let missing = missing_caps(mask);
        if !missing.is_empty() {
            return Err(TraceError::Privilege {
                missing: missing.join(" and "),
                have: cap_names(mask),
            });
        }
    }
    Ok(())
}

/// An owner to seed the kernel's maps with (from the fd-table scan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedOwner {
    pub pid: u32,
    pub fd: i32,
    pub comm: String,
}

impl SeedOwner {
    /// `struct ss_owner` bytes (bpf/event.h).
    fn encode(&self, src: u8) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.fd.to_le_bytes());
        let c = self.comm.as_bytes();
        let n = c.len().min(15);
        b[8..8 + n].copy_from_slice(&c[..n]);
        b[24] = src;
        b
    }
}

/// Everything the kernel side is told before it starts.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Only this network namespace (inode); None: all.
    pub netns: Option<u32>,
    pub ports: Vec<u16>,
    /// Addresses or prefixes (address, prefix length in bits of its own
    /// family).
    pub addrs: Vec<(IpAddr, u8)>,
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
    /// State mask (1 << kernel state number); 0: all.
    pub states: u32,
    /// Kinds to write (mask of `Kind::bit`); 0 means all.
    pub kinds: u32,
    /// Ring buffer size in bytes (rounded up to a power of two, at least
    /// one page).
    pub ring_bytes: u32,
    /// Owners of sockets that existed at start, by cookie.
    pub cookie_owners: Vec<(u64, SeedOwner)>,
    /// Owners of listeners that existed at start: (netns, port, owner).
    pub listeners: Vec<(u32, u16, SeedOwner)>,
    /// A drop reason (its value in this kernel) not to report; 0: none.
    pub drop_skip: u32,
}

/// Events written, lost and filtered by the kernel side, per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub written: [u64; 16],
    pub lost: [u64; 16],
    pub filtered: [u64; 16],
}

impl Counters {
    pub fn total_written(&self) -> u64 {
        self.written.iter().sum()
    }
    pub fn total_lost(&self) -> u64 {
        self.lost.iter().sum()
    }
    pub fn total_filtered(&self) -> u64 {
        self.filtered.iter().sum()
    }
}

/// A tracepoint that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub event: &'static str,
    pub reason: String,
}

/// Programs being detached on a thread ([`Tracer::start_detach`]).
pub struct Detaching(Option<std::thread::JoinHandle<()>>);

impl Detaching {
    /// True once every program is detached.
    pub fn done(&self) -> bool {
        self.0.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Wait until every program is detached.
    pub fn wait(mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Detaching {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Loaded and attached programs with their ring buffer.
pub struct Tracer {
    // Dropping the Ebpf detaches and unloads every program ([`Tracer::detach`]);
    // the ring buffer and the counters are held apart and outlive it.
    ebpf: Option<Ebpf>,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    /// The per-CPU batches, read once after the programs are detached
    /// ([`Tracer::take_batches`]); None when events are not batched.
    stage: Option<PerCpuArray<MapData, Stage>>,
    /// Tracepoints this kernel lacks (not fatal).
    pub skipped: Vec<Skipped>,
    /// How things were attached, when not the usual way.
    pub notes: Vec<String>,
}

/// Take map `name` out of a loaded object as the map type `M` (ring
/// buffer, hash, array): a missing or mistyped map names itself.
pub(crate) fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, TraceError>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(TraceError::Map {
        map: name,
        detail: "not in the object".into(),
    })?;
    M::try_from(map).map_err(map_err(name))
}

pub(crate) fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> TraceError {
    move |e| TraceError::Map {
        map,
        detail: chain(&e),
    }
}

fn round_ring(bytes: u32) -> u32 {
    bytes.clamp(4096, 1 << 30).next_power_of_two()
}

/// An address as the filter trie keys it: IPv4 as ::ffff:a.b.c.d, with the
/// prefix length moved to match.
pub fn trie_key(addr: IpAddr, prefix: u8) -> ([u8; 16], u32) {
    match addr {
        IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), 96 + u32::from(prefix.min(32))),
        IpAddr::V6(a) => (a.octets(), u32::from(prefix.min(128))),
    }
}

fn comm_key(c: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    let b = c.as_bytes();
    let n = b.len().min(15);
    k[..n].copy_from_slice(&b[..n]);
    k
}

impl Tracer {
    /// Load, configure and attach. Call [`preflight`] first for the clearer
    /// errors.
    pub fn start(cfg: &Config) -> Result<Tracer, TraceError> {
        preflight()?;
        let btf = Btf::from_sys_fs()
            .map_err(|e| TraceError::NoBtf(format!("could not be parsed ({})", chain(&e))))?;
        // The kfunc, unless SOCKSCOPE_TRACE_PROBE_READ=1 asks for the
        // probe-read path (to compare, and to test that path).
        let kfunc_id = btf
            .id_by_type_name_kind(kfunc::RDONLY_CAST, BtfKind::Func)
            .ok()
            .filter(|_| std::env::var_os(ENV_PROBE_READ).is_none());
        match Tracer::start_linked(cfg, &btf, kfunc_id) {
            // The kernel has the kfunc but would not take the programs
            // calling it (kfunc calls need the JIT, for one): once more
            // with probe reads.
            Err(e) if kfunc_id.is_some() && !matches!(e, TraceError::Denied(_)) => {
                let Ok(mut t) = Tracer::start_linked(cfg, &btf, None) else {
                    return Err(e);
                };
                t.notes.push(format!(
                    "the kernel refused the programs that use the kfunc {} ({}); \
                     reading sockets with probe reads instead, which costs a little more per syscall",
                    kfunc::RDONLY_CAST,
                    first_line(&e.to_string())
                ));
                Ok(t)
            }
            r => r,
        }
    }

    fn start_linked(cfg: &Config, btf: &Btf, kfunc_id: Option<u32>) -> Result<Tracer, TraceError> {
        // Link the kfunc calls (kfunc.rs), in a copy of the object placed
        // at an 8-byte boundary (the ELF parser reads it in place).
        let syscall_noop = u8::from(std::env::var_os(ENV_NOOP_SYSCALLS).is_some());
        let noop_all = u8::from(std::env::var_os(ENV_NOOP_ALL).is_some());
        let emit_only = u8::from(std::env::var_os(ENV_EMIT_ONLY).is_some());
        // Batches need their two flush tracepoints (both in every kernel
        // with BTF tracepoints; checked so an odd one runs unbatched), and
        // CPUs that tick while busy: a nohz_full CPU running one task in
        // user space has no tick to write its batch.
        let nohz_full = std::fs::read_to_string("/sys/devices/system/cpu/nohz_full")
            .is_ok_and(|s| nohz_full_cpus(&s));
        let flush_points = ["hrtimer_expire_entry", "cpu_idle"].iter().all(|t| {
            btf.id_by_type_name_kind(&format!("btf_trace_{t}"), BtfKind::Typedef)
                .is_ok()
        });
        let env_off = std::env::var_os(ENV_BATCH).is_some_and(|v| v == "0");
        let unbatched = why_unbatched(env_off, nohz_full, flush_points);
        let batch = u8::from(unbatched.is_none());
        // User space times sockets from their first state change when it
        // sees every state change; otherwise the kernel keeps births.
        let owner_filter = !cfg.pids.is_empty() || !cfg.comms.is_empty();
        let all_states_shown = (cfg.kinds == 0 || cfg.kinds & Kind::State.bit() != 0)
            && cfg.states == 0
            && !owner_filter;
        let kernel_births = u8::from(!all_states_shown);
        // Likewise user space attributes events to processes when it sees
        // the syscalls, data and state changes that say who owns what;
        // with a pid or command filter, or some of those not shown, the
        // kernel keeps owner maps and attributes.
        let shown = |k: Kind| cfg.kinds == 0 || cfg.kinds & k.bit() != 0;
        let kernel_owners = owner_filter
            || ![Kind::State, Kind::Syscall, Kind::Send, Kind::Recv]
                .into_iter()
                .all(shown);
        let kernel_owners_flag = u8::from(kernel_owners);
        let mut buf = vec![0u8; OBJECT.len() + 8];
        let pad = buf.as_ptr().align_offset(8).min(8);
        let object = &mut buf[pad..pad + OBJECT.len()];
        object.copy_from_slice(OBJECT);
        kfunc::link(object, kfunc_id.map_or(Link::Move, Link::Kfunc))
            .map_err(|e| TraceError::Load(e.to_string()))?;
        let kfunc_cast = u8::from(kfunc_id.is_some());
        let netns = cfg.netns.unwrap_or(0);
        let f_port = u8::from(!cfg.ports.is_empty());
        let f_addr = u8::from(!cfg.addrs.is_empty());
        let f_pid = u8::from(!cfg.pids.is_empty());
        let f_comm = u8::from(!cfg.comms.is_empty());
        let emit = if cfg.kinds == 0 { u32::MAX } else { cfg.kinds };
        let me = std::process::id();
        let ring = round_ring(if cfg.ring_bytes == 0 {
            8 << 20
        } else {
            cfg.ring_bytes
        });
        let wakeup = u64::from(ring / 4);
        let cookie_cap = (cfg.cookie_owners.len() as u32)
            .max(1024)
            .next_power_of_two();

        let mut ebpf = EbpfLoader::new()
            .btf(Some(btf))
            // task-local storage (the syscalls in flight) has no typed
            // wrapper in aya; only the programs use it.
            .allow_unsupported_maps()
            .override_global("cfg_netns", &netns, true)
            .override_global("cfg_filter_port", &f_port, true)
            .override_global("cfg_filter_addr", &f_addr, true)
            .override_global("cfg_filter_pid", &f_pid, true)
            .override_global("cfg_filter_comm", &f_comm, true)
            .override_global("cfg_port_bits", &port_bits(&cfg.ports), true)
            .override_global("cfg_states", &cfg.states, true)
            .override_global("cfg_kfunc_cast", &kfunc_cast, true)
            .override_global("cfg_syscall_noop", &syscall_noop, true)
            .override_global("cfg_noop_all", &noop_all, true)
            .override_global("cfg_emit_only", &emit_only, true)
            .override_global("cfg_batch", &batch, true)
            .override_global("cfg_kernel_births", &kernel_births, true)
            .override_global("cfg_kernel_owners", &kernel_owners_flag, true)
            .override_global("cfg_emit", &emit, true)
            .override_global("cfg_self", &me, true)
            .override_global("cfg_drop_skip", &cfg.drop_skip, true)
            .override_global("cfg_wakeup_bytes", &wakeup, true)
            .map_max_entries("events", ring)
            .map_max_entries("cookie_owners", cookie_cap)
            .load(object)
            .map_err(|e| {
                if denied(&e) {
                    TraceError::Denied(chain(&e))
                } else {
                    TraceError::Load(chain(&e))
                }
            })?;

        fill_filters(&mut ebpf, cfg)?;
        if kernel_owners {
            seed_owners(&mut ebpf, cfg)?;
        }

        let mut skipped = Vec::new();
        let mut notes = Vec::new();
        if let Some(why) = unbatched {
            notes.push(format!(
                "events are written to the ring buffer one by one, not in per-CPU batches ({why}): \
                 each costs the ring buffer's lock, ~30 % more of the programs' time when busy"
            ));
        }
        if bpf_stats_enabled() {
            notes.push(
                "kernel.bpf_stats_enabled is 1: the kernel times every run of every BPF program \
                 (two clock reads each), which adds to what tracing costs; \
                 `sysctl kernel.bpf_stats_enabled=0` turns it off if nothing else needs it"
                    .to_string(),
            );
        }
        for p in PROBES {
            // State changes also keep births for the destroy summaries.
            let births = p.program == "ss_state" && emit & Kind::Destroy.bit() != 0;
            let wanted = (p.keeps_owners && kernel_owners)
                || births
                || p.kinds.iter().any(|k| emit & k.bit() != 0)
                || (p.program.starts_with("ss_batch_") && batch == 1);
            if !wanted {
                continue;
            }
            let result = if p.program.starts_with("ss_sc_") {
                attach_syscalls(&mut ebpf, btf, &p, &mut notes)
            } else if p.program.starts_with("ss_wait_") {
                attach_waits(&mut ebpf, &p)
            } else {
                attach(&mut ebpf, btf, &p)
            };
            match result {
                Ok(()) => {}
                Err(e) if denied(e.as_ref()) => return Err(TraceError::Denied(chain(e.as_ref()))),
                Err(e) if p.required => {
                    return Err(TraceError::Required {
                        event: p.event,
                        detail: chain(e.as_ref()),
                    });
                }
                Err(e) => skipped.push(Skipped {
                    event: p.event,
                    reason: first_line(&chain(e.as_ref())),
                }),
            }
        }

        let ring: RingBuf<MapData> = take_map(&mut ebpf, "events")?;
        let stats: PerCpuArray<MapData, u64> = take_map(&mut ebpf, "stats")?;
        let stage: PerCpuArray<MapData, Stage> = take_map(&mut ebpf, "stage")?;
        Ok(Tracer {
            ebpf: Some(ebpf),
            ring,
            stats,
            stage: (batch == 1).then_some(stage),
            skipped,
            notes,
        })
    }

    /// Wait up to `timeout` for records, then hand every available record
    /// to `f`. Returns how many were handed over. An interrupted wait
    /// (a signal) returns 0.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, TraceError> {
        let mut n = self.drain(&mut f);
        if n > 0 {
            return Ok(n);
        }
        let ts = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let fd = self.ring.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(0),
            Err(e) => return Err(TraceError::Poll(e.into())),
        }
        n += self.drain(&mut f);
        Ok(n)
    }

    fn drain(&mut self, f: &mut impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        // Bounded, so a flood cannot starve the caller's clock.
        while n < 65536 {
            let Some(item) = self.ring.next() else { break };
            n += split_record(&item, f);
        }
        n
    }

    /// Hand to `f` the events still waiting in the per-CPU batches, once
    /// the programs are detached ([`Detaching::wait`] returned): nothing
    /// adds to or writes them any more. Returns how many; 0 the second
    /// time, or when the programs are still attached.
    pub fn take_batches(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        if self.ebpf.is_some() {
            return 0;
        }
        let Some(stage) = self.stage.take() else {
            return 0;
        };
        let Ok(cpus) = stage.get(&0, 0) else {
            return 0;
        };
        cpus.iter().map(|s| staged_events(s, &mut f)).sum()
    }

    /// Detach and unload every program: nothing is written to the ring
    /// buffer after this (but for a program already running), while what
    /// it holds can still be read and the counters still be summed.
    pub fn detach(&mut self) {
        if let Some(d) = self.start_detach() {
            d.wait();
        }
    }

    /// [`Tracer::detach`] on a thread of its own, to be waited for with
    /// [`Detaching::wait`]. Detaching takes the kernel a while (each
    /// syscall tracepoint's perf event waits for RCU grace periods, one
    /// after the other: most of a second for the thirteen), which the
    /// caller may spend on the records it already holds. None when already
    /// detached.
    pub fn start_detach(&mut self) -> Option<Detaching> {
        let ebpf = self.ebpf.take()?;
        match std::thread::Builder::new()
            .name("sockscope-detach".into())
            .spawn(move || drop(ebpf))
        {
            Ok(h) => Some(Detaching(Some(h))),
            // No thread: the closure (and the Ebpf in it) was dropped,
            // here, which detached everything already.
            Err(_) => None,
        }
    }

    /// The kernel side's counters, summed over CPUs.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        let get = |i: u32| -> u64 { self.stats.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0) };
        for k in Kind::ALL {
            let i = k as u32;
            c.written[i as usize] = get(i);
            c.lost[i as usize] = get(abi::STAT_LOST + i);
            c.filtered[i as usize] = get(abi::STAT_FILTERED + i);
        }
        c
    }
}

/// Why events are not batched (None: they are): asked not to, a host
/// whose busy CPUs may not tick, a kernel without the flush tracepoints.
fn why_unbatched(env_off: bool, nohz_full: bool, flush_points: bool) -> Option<String> {
    if env_off {
        Some(format!("{ENV_BATCH}=0"))
    } else if nohz_full {
        Some("this host has nohz_full CPUs, whose batches no tick would write".to_string())
    } else if !flush_points {
        Some(
            "the kernel lacks timer:hrtimer_expire_entry or power:cpu_idle as BTF \
             tracepoints, which write the batches"
                .to_string(),
        )
    } else {
        None
    }
}

/// Whether /sys/devices/system/cpu/nohz_full lists any CPU (it holds a
/// CPU list, or nothing or "(null)" when there is none).
fn nohz_full_cpus(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s != "(null)"
}

/// Hand each event of a ring buffer record to `f`: the record itself, or
/// the events of a batch (bpf/event.h, struct ss_batch_head). Returns how
/// many were handed over; a batch whose count overruns the record is
/// handed over as one record, for the decoder to reject.
pub fn split_record(b: &[u8], f: &mut impl FnMut(&[u8])) -> usize {
    if b.len() >= BATCH_HEAD && b[1] == BATCH_KIND {
        let count = usize::from(u16::from_le_bytes([b[2], b[3]]));
        if count > 0 && b.len() >= BATCH_HEAD + count * EVENT_SIZE {
            for e in b[BATCH_HEAD..].chunks_exact(EVENT_SIZE).take(count) {
                f(e);
            }
            return count;
        }
    }
    f(b);
    1
}

/// The events a CPU's batch still holds (see [`Tracer::take_batches`]).
fn staged_events(s: &Stage, f: &mut impl FnMut(&[u8])) -> usize {
    let n = u32::from_le_bytes([s[STAGE_N], s[STAGE_N + 1], s[STAGE_N + 2], s[STAGE_N + 3]]);
    let n = (n as usize).min(BATCH_MAX);
    for e in s[STAGE_EVENTS..].chunks_exact(EVENT_SIZE).take(n) {
        f(e);
    }
    n
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.len() > 200 {
        let mut end = 200;
        while !l.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &l[..end])
    } else {
        l.to_string()
    }
}

fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    p: &Probe,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(p.program)
        .ok_or_else(|| format!("program {} is not in the object", p.program))?
        .try_into()?;
    prog.load(p.tracepoint, btf)?;
    prog.attach()?;
    Ok(())
}

/// The syscall programs: on the per-syscall tracepoints when tracefs is
/// there (only those nine syscalls run BPF), else on raw_syscalls (every
/// syscall does), with a note saying what that costs.
/// Whether the kernel accounts run time and count of every BPF program
/// (the sysctl, or a BPF_ENABLE_STATS fd someone holds, which shows in it).
fn bpf_stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|v| v.trim() == "1")
}

fn attach_syscalls(
    ebpf: &mut Ebpf,
    btf: &Btf,
    p: &Probe,
    notes: &mut Vec<String>,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let enter = p.program == "ss_sc_enter";
    let per_syscall = (|| -> Result<(), Box<dyn std::error::Error + 'static>> {
        let prog: &mut TracePoint = ebpf
            .program_mut(p.program)
            .ok_or_else(|| format!("program {} is not in the object", p.program))?
            .try_into()?;
        prog.load()?;
        let names: &[&str] = if enter { &ENTRY_SYSCALLS } else { &SYSCALLS };
        for name in names {
            let ev = format!("sys_{}_{name}", if enter { "enter" } else { "exit" });
            prog.attach("syscalls", &ev)?;
        }
        Ok(())
    })();
    let Err(e) = per_syscall else { return Ok(()) };
    let (prog, tp) = RAW_SYSCALLS[usize::from(!enter)];
    attach(
        ebpf,
        btf,
        &Probe {
            program: prog,
            tracepoint: tp,
            ..*p
        },
    )?;
    if enter {
        notes.push(format!(
            "the per-syscall tracepoints could not be used ({}): tracing syscalls on raw_syscalls instead, \
             which runs BPF on every syscall of the machine (about 10% of a busy server's throughput); \
             mount tracefs to avoid it: mount -t tracefs nodev /sys/kernel/tracing",
            first_line(&chain(e.as_ref()))
        ));
    }
    Ok(())
}

/// The wait programs on the per-syscall tracepoints of [`WAIT_SYSCALLS`]
/// (no fallback on raw_syscalls: every syscall of the machine would run
/// them); the syscalls this kernel or architecture lacks are skipped.
fn attach_waits(ebpf: &mut Ebpf, p: &Probe) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let enter = p.program == "ss_wait_enter";
    let prog: &mut TracePoint = ebpf
        .program_mut(p.program)
        .ok_or_else(|| format!("program {} is not in the object", p.program))?
        .try_into()?;
    prog.load()?;
    let mut attached = 0;
    let mut last_err = None;
    for name in WAIT_SYSCALLS {
        let ev = format!("sys_{}_{name}", if enter { "enter" } else { "exit" });
        match prog.attach("syscalls", &ev) {
            Ok(_) => attached += 1,
            Err(e) => last_err = Some(e),
        }
    }
    match (attached, last_err) {
        (0, Some(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// The port filter as the programs read it: bit `p % 64` of word `p / 64`.
pub fn port_bits(ports: &[u16]) -> [u64; 1024] {
    let mut bits = [0u64; 1024];
    for &p in ports {
        bits[usize::from(p >> 6)] |= 1 << (p & 63);
    }
    bits
}

fn fill_filters(ebpf: &mut Ebpf, cfg: &Config) -> Result<(), TraceError> {
    if !cfg.addrs.is_empty() {
        let mut m: LpmTrie<_, [u8; 16], u8> =
            LpmTrie::try_from(ebpf.map_mut("f_addrs").ok_or(missing("f_addrs"))?)
                .map_err(map_err("f_addrs"))?;
        for &(a, len) in &cfg.addrs {
            let (k, plen) = trie_key(a, len);
            m.insert(&Key::new(plen, k), 1, 0)
                .map_err(map_err("f_addrs"))?;
        }
    }
    if !cfg.pids.is_empty() {
        let mut m: BpfHash<_, u32, u8> =
            BpfHash::try_from(ebpf.map_mut("f_pids").ok_or(missing("f_pids"))?)
                .map_err(map_err("f_pids"))?;
        for &p in &cfg.pids {
            m.insert(p, 1, 0).map_err(map_err("f_pids"))?;
        }
    }
    if !cfg.comms.is_empty() {
        let mut m: BpfHash<_, [u8; 16], u8> =
            BpfHash::try_from(ebpf.map_mut("f_comms").ok_or(missing("f_comms"))?)
                .map_err(map_err("f_comms"))?;
        for c in &cfg.comms {
            m.insert(comm_key(c), 1, 0).map_err(map_err("f_comms"))?;
        }
    }
    Ok(())
}

fn missing(map: &'static str) -> TraceError {
    TraceError::Map {
        map,
        detail: "not in the object".into(),
    }
}

// enum ss_owner_src
const OWNER_SNAPSHOT: u8 = 4;

fn seed_owners(ebpf: &mut Ebpf, cfg: &Config) -> Result<(), TraceError> {
    if !cfg.cookie_owners.is_empty() {
        let mut m: BpfHash<_, u64, [u8; 32]> = BpfHash::try_from(
            ebpf.map_mut("cookie_owners")
                .ok_or(missing("cookie_owners"))?,
        )
        .map_err(map_err("cookie_owners"))?;
        for (cookie, o) in &cfg.cookie_owners {
            // A full map only costs attribution of old sockets.
            let _ = m.insert(*cookie, o.encode(OWNER_SNAPSHOT), 0);
        }
    }
    if !cfg.listeners.is_empty() {
        let mut m: BpfHash<_, [u8; 8], [u8; 40]> =
            BpfHash::try_from(ebpf.map_mut("listeners").ok_or(missing("listeners"))?)
                .map_err(map_err("listeners"))?;
        for (netns, port, o) in &cfg.listeners {
            let mut k = [0u8; 8];
            k[0..4].copy_from_slice(&netns.to_le_bytes());
            k[4..6].copy_from_slice(&port.to_le_bytes());
            let mut v = [0u8; 40];
            v[..32].copy_from_slice(&o.encode(OWNER_SNAPSHOT));
            let _ = m.insert(k, v, 0);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_proc_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let mask = effective_caps(status).unwrap();
        assert!(missing_caps(mask).is_empty());
        assert_eq!(missing_caps(0), vec!["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_caps(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert_eq!(
            missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON)),
            Vec::<&str>::new()
        );
        assert_eq!(missing_caps(1 << CAP_SYS_ADMIN), Vec::<&str>::new());
        assert_eq!(cap_names(0), "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN");
        assert_eq!(cap_names(1 << CAP_BPF), "CAP_BPF");
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }

    #[test]
    fn owner_record_layout() {
        let o = SeedOwner {
            pid: 0x01020304,
            fd: -1,
            comm: "a-very-long-command-name".into(),
        };
        let b = o.encode(4);
        assert_eq!(&b[0..4], &[4, 3, 2, 1]);
        assert_eq!(&b[4..8], &[0xff; 4]);
        assert_eq!(&b[8..23], b"a-very-long-com");
        assert_eq!(b[23], 0, "comm stays NUL-terminated");
        assert_eq!(b[24], 4);
    }

    #[test]
    fn port_filter_bitmap() {
        let b = port_bits(&[0, 63, 64, 8080, 65535]);
        assert_eq!(b[0], 1 | 1 << 63);
        assert_eq!(b[1], 1);
        assert_eq!(b[8080 / 64], 1 << (8080 % 64));
        assert_eq!(b[1023], 1 << 63);
        assert_eq!(b.iter().map(|w| w.count_ones()).sum::<u32>(), 5);
    }

    #[test]
    fn filter_keys() {
        let (k, l) = trie_key("10.1.0.0".parse().unwrap(), 16);
        assert_eq!(l, 112);
        assert_eq!(&k[10..14], &[0xff, 0xff, 10, 1]);
        let (k, l) = trie_key("::1".parse().unwrap(), 128);
        assert_eq!((k[15], l), (1, 128));
        assert_eq!(&comm_key("nginx")[..6], b"nginx\0");
        assert_eq!(round_ring(0), 4096);
        assert_eq!(round_ring(5 << 20), 8 << 20);
    }

    #[test]
    fn batches_split_into_their_events() {
        let ev = |i: u8| {
            let mut e = [0u8; EVENT_SIZE];
            e[0] = abi::EVENT_VERSION;
            e[1] = Kind::State as u8;
            e[8] = i;
            e
        };
        let split = |b: &[u8]| {
            let mut got = Vec::new();
            let n = split_record(b, &mut |e: &[u8]| got.push(e.to_vec()));
            assert_eq!(n, got.len());
            got
        };
        // One event alone: itself.
        assert_eq!(split(&ev(7)), vec![ev(7).to_vec()]);
        // A batch of three (the ring buffer pads records to 8 bytes;
        // nothing follows a batch's events but padding).
        let mut b = vec![abi::EVENT_VERSION, BATCH_KIND, 3, 0, 0, 0, 0, 0];
        for i in 1..=3 {
            b.extend_from_slice(&ev(i));
        }
        let got = split(&b);
        assert_eq!(got.len(), 3);
        assert!(got.iter().zip(1..=3).all(|(e, i)| e[..] == ev(i)[..]));
        // A count the record cannot hold, or 0: handed over whole, for
        // the decoder to reject (it is not an event's size).
        b[2] = 4;
        assert_eq!(split(&b), vec![b.clone()]);
        b[2] = 0;
        assert_eq!(split(&b), vec![b.clone()]);
        assert!(abi::RawEvent::decode(&b).is_err());
        // A CPU's batch as the map holds it: n at 16, events from 32.
        let mut s: Stage = [0u8; STAGE_SIZE];
        s[STAGE_N] = 2;
        s[0] = 1; // busy (never, once detached; not looked at)
        s[STAGE_EVENTS..STAGE_EVENTS + EVENT_SIZE].copy_from_slice(&ev(5));
        s[STAGE_EVENTS + EVENT_SIZE..STAGE_EVENTS + 2 * EVENT_SIZE].copy_from_slice(&ev(6));
        let mut got = Vec::new();
        assert_eq!(staged_events(&s, &mut |e: &[u8]| got.push(e[8])), 2);
        assert_eq!(got, vec![5, 6]);
        // A count past the batch's size reads only what it holds.
        s[STAGE_N] = 200;
        assert_eq!(staged_events(&s, &mut |_: &[u8]| {}), BATCH_MAX);
    }

    #[test]
    fn batches_unless_a_reason_says_otherwise() {
        assert_eq!(why_unbatched(false, false, true), None);
        let env = why_unbatched(true, true, false).unwrap();
        assert!(env.contains("SOCKSCOPE_TRACE_BATCH=0"), "{env}");
        let nohz = why_unbatched(false, true, true).unwrap();
        assert!(nohz.contains("nohz_full"), "{nohz}");
        let old = why_unbatched(false, false, false).unwrap();
        assert!(old.contains("hrtimer_expire_entry"), "{old}");
    }

    #[test]
    fn nohz_full_lists() {
        assert!(!nohz_full_cpus(""));
        assert!(!nohz_full_cpus("\n"));
        assert!(!nohz_full_cpus("(null)\n"));
        assert!(nohz_full_cpus("1-3\n"));
        assert!(nohz_full_cpus("2,5"));
    }

    #[test]
    fn every_probe_is_in_the_object() {
        // The program names are in the object's symbol table.
        let has = |name: &str| {
            OBJECT
                .windows(name.len() + 1)
                .any(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0)
        };
        assert!(!OBJECT.is_empty());
        for p in PROBES {
            assert!(has(p.program), "{} missing from the object", p.program);
        }
        for (p, _) in RAW_SYSCALLS {
            assert!(has(p), "{p} missing from the object");
        }
        assert!(!has("ss_no_such_program"));
    }
}

//! `sockscope export`: the socket health of a host as Prometheus metrics.
//!
//! Collection happens on scrape: there is no background polling, so an
//! exporter nobody scrapes costs nothing. One scrape runs at a time (a
//! mutex; a second scrape waits for the first). The report comes from
//! `sockscope::report::export`; this module only renders it with the
//! `prometheus-client` crate and serves it over HTTP.
//!
//! HTTP: requests are parsed with `httparse` (hyper's parser) on plain
//! std sockets, one thread per connection, at most [`MAX_CONNECTIONS`] at
//! once. Every connection has a deadline for its whole request head
//! (`--read-timeout`, so a client sending a byte a second is cut off) and
//! the head may not exceed [`MAX_REQUEST_BYTES`]. Reading a request never
//! holds the scrape lock, and the response is written after the lock is
//! released, so a slow or hostile client cannot stall collection for
//! others. tiny_http was the other candidate: it has neither a per
//! connection read timeout nor a bound on the request head (0.12), and
//! hyper needs an async runtime, which costs compile time and binary size
//! for one endpoint.

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sockscope::report::export::{self, ExportReport, ListenerSeries, Options};
use sockscope::report::labels::Platform;
use sockscope::source::netns::{self, NetnsTarget};
use sockscope_trace::portcount::{
    DropCount, HistKind, Histogram, PortCount, PortCounters, PortKind, SLOTS,
};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head (request line and headers) accepted.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Metrics (all gauges unless _total; their HELP text says what the kernel
counts):
  sockscope_listener_{accept_queue,backlog,syn_recv}_connections,
  sockscope_listener_reuseport_group_sockets
      per TCP listener: labels netns, addr, port, proto, process, pid, and
      container_id, runtime, pod_uid, qos_class, systemd_unit when the
      process's cgroup says so; pod_name and pod_namespace when the
      kubelet's pod directory (--kubelet-root) says so; container, and the
      pod's name and namespace, from the kubelet's container log links
      (--container-logs)
  sockscope_sockets{netns,proto,state}, sockscope_tcp_*_total
      (ListenOverflows, ListenDrops, TCPBacklogDrop, syncookies, RetransSegs,
      OutRsts, EstabResets, AttemptFails, ...), sockscope_sockstat_*:
      per network namespace
  sockscope_process_sockets{pid,process,state}: the --top processes; the
      rest are process=\"other\"
  sockscope_tcp_{retransmits,resets_sent,resets_received}_by_port_total
      {netns,port}: with BPF (--bpf; default when serving and allowed to
      load BPF programs), counted in a kernel map by programs on the tcp
      tracepoints while the exporter runs, read at scrape time; ports
      nothing listens on (clients' ports, closed ports) are port=\"other\"
  sockscope_tcp_drops_by_port_total{netns,port,reason}: with BPF, TCP
      packets the kernel dropped (tracepoint skb:kfree_skb), by local port
      (likewise) and the kernel's drop reason (NO_SOCKET, NETFILTER_DROP,
      TCP_CSUM, ...: names from the running kernel's BTF)
  sockscope_tcp_handshake_seconds, sockscope_tcp_connection_duration_seconds
      {netns,port}: with BPF, histograms per listener port (powers of two
      of microseconds): from the SYN's arrival (its first SYN-ACK) to the
      final ACK, and of the connections a listener accepted from
      ESTABLISHED to CLOSE; ports no listener holds any more are
      port=\"other\"
  sockscope_export_*: the exporter itself (folded series, scrape time)

Collection happens when Prometheus scrapes (no background polling), one
scrape at a time.

Examples:
  sockscope export                     serve on 127.0.0.1:9469/metrics
  sockscope export --listen :9469 --all-netns
                                       every namespace, on every address
  sockscope export --once | promtool check metrics
  sockscope export --json              the report as JSON, once

Exit status: 0 stopped by SIGINT/SIGTERM (or --once done), 2 bad usage or
the address is in use, 3 missing privilege, 4 output could not be
written.")]
pub struct ExportArgs {
    /// Address to serve /metrics on: ADDR:PORT, or :PORT for every address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9469", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Processes with series of their own; the rest are summed into process="other".
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Upper bound on the number of series; what does not fit is folded (and counted in sockscope_export_folded_total).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_series: u64,
    /// Seconds a client may take to send its request head before it is cut off.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub read_timeout: f64,
    /// Print the metrics once to stdout (Prometheus text format) and exit (no server).
    #[arg(long, conflicts_with_all = ["json", "jsonl"])]
    pub once: bool,
    // --json / --jsonl: print the report once and exit (no server).
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    #[command(flatten)]
    pub ns: crate::cli::NetnsArgs,
    /// Count TCP retransmits, resets and drops per local port with BPF programs (in kernel maps, read at scrape time). Default when the exporter may load BPF programs and serves (not with --once); an error if it cannot.
    #[arg(long, conflicts_with = "no_bpf")]
    pub bpf: bool,
    /// Do not load BPF programs (the per-port retransmit, reset and drop series are then absent).
    #[arg(long)]
    pub no_bpf: bool,
    /// The kubelet's root directory, for pod names and namespaces (pod_name, pod_namespace labels) read from DIR/pods/UID of the pods the cgroup paths name [default: /var/lib/kubelet, when it exists].
    #[arg(long, value_name = "DIR")]
    pub kubelet_root: Option<std::path::PathBuf>,
    /// The kubelet's container log links, POD_NAMESPACE_CONTAINER-ID.log, for the container label (and the pod's name and namespace as its metadata has them) [default: /var/log/containers, when it exists].
    #[arg(long, value_name = "DIR")]
    pub container_logs: Option<std::path::PathBuf>,
}

/// The kubelet's default root directory.
const KUBELET_ROOT: &str = "/var/lib/kubelet";
/// Where the kubelet links every container's log by default.
const CONTAINER_LOGS: &str = "/var/log/containers";

/// The container log links to read container names from: the directory
/// given (which must be one), else the default when this host has it.
fn container_logs(args: &ExportArgs) -> Result<Option<std::path::PathBuf>, Fail> {
    match &args.container_logs {
        Some(d) if d.is_dir() => Ok(Some(d.clone())),
        Some(d) => Err(Fail::usage(format!(
            "--container-logs {}: not a directory; give the directory of the kubelet's container log links (by default {CONTAINER_LOGS}), mounted into the exporter's container when it runs in one",
            d.display()
        ))),
        None => {
            let d = std::path::PathBuf::from(CONTAINER_LOGS);
            Ok(d.is_dir().then_some(d))
        }
    }
}

/// The kubelet root to read pod names from: the one given (which must be a
/// directory), else the default when this host has it.
fn kubelet_root(args: &ExportArgs) -> Result<Option<std::path::PathBuf>, Fail> {
    match &args.kubelet_root {
        Some(d) if d.is_dir() => Ok(Some(d.clone())),
        Some(d) => Err(Fail::usage(format!(
            "--kubelet-root {}: not a directory; give the kubelet's root directory (the one holding pods/UID, by default {KUBELET_ROOT}), mounted into the exporter's container when it runs in one",
            d.display()
        ))),
        None => {
            let d = std::path::PathBuf::from(KUBELET_ROOT);
            Ok(d.is_dir().then_some(d))
        }
    }
}

/// A socket that becomes readable on SIGINT or SIGTERM (signal-hook's
/// handler writes a byte to its peer); `None` if it cannot be set up.
fn stop_wakeup() -> Option<std::os::unix::net::UnixStream> {
    let (r, w) = std::os::unix::net::UnixStream::pair().ok()?;
    r.set_nonblocking(true).ok()?;
    w.set_nonblocking(true).ok()?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::low_level::pipe::register(sig, w.try_clone().ok()?).ok()?;
    }
    Some(r)
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    full.parse().map_err(|_| {
        format!(
            "'{s}' is not ADDR:PORT; use e.g. 127.0.0.1:9469, [::1]:9469 or :9469 (every address)"
        )
    })
}

/// What one exporter remembers between scrapes.
#[derive(Default)]
struct State {
    /// Cumulative folds: listeners, processes, namespaces.
    folded: [u64; 3],
    scrapes: u64,
}

struct Ctx {
    target: NetnsTarget,
    /// The BPF counters (attached while the exporter runs), if loaded.
    bpf: Option<Mutex<PortCounters>>,
    opts: Options,
    /// Where the kubelet keeps its pod directories, if it does here.
    kubelet_root: Option<std::path::PathBuf>,
    /// Where the kubelet links container logs, if it does here.
    container_logs: Option<std::path::PathBuf>,
    state: Mutex<State>,
    read_timeout: Duration,
}

impl Ctx {
    fn collect(&self) -> Result<ExportReport, Fail> {
        self.collect_ns().map(|(r, _)| r)
    }

    /// The report, and the namespaces read (inode, label).
    fn collect_ns(&self) -> Result<(ExportReport, Vec<(u64, String)>), Fail> {
        let namespaces = netns::open(&self.target).map_err(Fail::from)?;
        let label = self.target != NetnsTarget::Current;
        let ids = namespaces
            .iter()
            .map(|n| (n.id.inode, n.id.to_string()))
            .collect();
        export::collect(
            &namespaces,
            label,
            self.opts,
            self.kubelet_root.as_deref(),
            self.container_logs.as_deref(),
        )
        .map(|c| (c.report, ids))
        .map_err(Fail::from)
    }

    /// Collect and render, one at a time.
    fn scrape(&self) -> Result<String, Fail> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let t0 = Instant::now();
        let (r, ids) = self.collect_ns()?;
        let bpf = self.bpf.as_ref().map(|b| {
            let b = b.lock().unwrap_or_else(|p| p.into_inner());
            BpfCounts::new(
                &b.read(),
                &b.read_drops(),
                &b.read_histograms(),
                b.overflowed(),
                &ids,
                &r.listeners,
            )
        });
        st.scrapes += 1;
        st.folded[0] += r.folded.listeners;
        st.folded[1] += r.folded.processes;
        st.folded[2] += r.folded.namespaces;
        Ok(render(&r, &st, bpf.as_ref(), t0.elapsed()))
    }
}

type Labels = Vec<(String, String)>;

/// The BPF counters of one scrape, for the namespaces exported, labelled
/// like the other per-namespace series.
///
/// Cardinality: a port keeps a series of its own only while a listener of
/// the report holds it (the server side, which alerts are about); every
/// other port — clients' ephemeral ports, resets for ports nothing listens
/// on (a port scan touches them all) — is summed per namespace into
/// `port="other"`. So the per-port series are bounded by the listeners,
/// which `--max-series` already bounds. A port that stops listening moves
/// its count into `other`.
struct BpfCounts {
    /// (netns label, port or `other`, kind, count), sorted.
    counts: Vec<(String, String, PortKind, u64)>,
    /// (netns label, port or `other`, reason, count), sorted.
    drops: Vec<(String, String, String, u64)>,
    /// (netns label, port or `other`, kind) -> histogram, sorted.
    hists: BTreeMap<(String, String, HistKind), Histogram>,
    /// Events the kernel could not count (its map was full).
    overflowed: u64,
}

impl BpfCounts {
    fn new(
        read: &[PortCount],
        drops: &[DropCount],
        hists: &[Histogram],
        overflowed: u64,
        ids: &[(u64, String)],
        listeners: &[ListenerSeries],
    ) -> BpfCounts {
        let listening: HashSet<(&str, u16)> = listeners
            .iter()
            .filter_map(|l| Some((l.netns.as_str(), l.port.parse().ok()?)))
            .collect();
        // The namespace label and port label of a counter, None for a
        // namespace not exported.
        let place = |netns: u32, port: u16| -> Option<(String, String)> {
            let (_, label) = ids.iter().find(|(ino, _)| *ino == u64::from(netns))?;
            let port = if listening.contains(&(label.as_str(), port)) {
                port.to_string()
            } else {
                export::OTHER.to_string()
            };
            Some((label.clone(), port))
        };
        let mut sums: BTreeMap<(String, String, PortKind), u64> = BTreeMap::new();
        for c in read {
            if let Some((n, p)) = place(c.netns, c.port) {
                *sums.entry((n, p, c.kind)).or_default() += c.count;
            }
        }
        let mut drop_sums: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
        for d in drops {
            if let Some((n, p)) = place(d.netns, d.port) {
                *drop_sums.entry((n, p, d.reason.as_str())).or_default() += d.count;
            }
        }
        let mut hist_sums: BTreeMap<(String, String, HistKind), Histogram> = BTreeMap::new();
        for h in hists {
            if let Some((n, p)) = place(h.netns, h.port) {
                let e = hist_sums
                    .entry((n, p, h.kind))
                    .or_insert_with(|| Histogram {
                        slots: [0; SLOTS],
                        sum_ns: 0,
                        ..h.clone()
                    });
                for (a, b) in e.slots.iter_mut().zip(h.slots.iter()) {
                    *a += b;
                }
                e.sum_ns += h.sum_ns;
            }
        }
        let counts = sums
            .into_iter()
            .map(|((n, p, k), v)| (n, p, k, v))
            .collect();
        let drops = drop_sums
            .into_iter()
            .map(|((n, p, r), v)| (n, p, r.to_string(), v))
            .collect();
        BpfCounts {
            counts,
            drops,
            hists: hist_sums,
            overflowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_slots_become_cumulative_bounds_in_seconds() {
        let mut slots = [0u64; SLOTS];
        slots[0] = 1; // < 2 µs
        slots[3] = 2; // 8..16 µs
        slots[4] = 5; // 16..32 µs
        slots[18] = 1; // 0.262..0.524 s
        slots[40] = 1; // far beyond
        let b = buckets(&slots, 4..=20);
        assert_eq!(b.len(), 17 + 1);
        assert_eq!(b[0], (16e-6, 3), "below 16 µs: slots 0..4");
        assert_eq!(b[1], (32e-6, 5));
        let at = |s: f64| b.iter().find(|(le, _)| *le == s).map(|(_, n)| *n);
        assert_eq!(at(0.262144), Some(0));
        assert_eq!(at(0.524288), Some(1), "0.3 s is below 2^19 µs");
        assert_eq!(b.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 10);
    }
}

/// The BPF counters: (kind, metric name without _total, help).
const BPF_COUNTERS: [(PortKind, &str, &str); 3] = [
    (
        PortKind::Retransmit,
        "sockscope_tcp_retransmits_by_port",
        "TCP segments the kernel sent again (tracepoint tcp:tcp_retransmit_skb; attempts the kernel reports as failed are not counted), by the local port of the retransmitting socket when a listener holds that port, else port=\"other\"; counted in a BPF map since the exporter started.",
    ),
    (
        PortKind::ResetSent,
        "sockscope_tcp_resets_sent_by_port",
        "TCP resets sent (tracepoint tcp:tcp_send_reset), by local port: the resetting socket's port, or for a segment that arrived at a port with no socket, that port; ports no listener holds are port=\"other\"; counted in a BPF map since the exporter started.",
    ),
    (
        PortKind::ResetReceived,
        "sockscope_tcp_resets_received_by_port",
        "TCP resets received that reset a socket (tracepoint tcp:tcp_receive_reset), by the local port of that socket when a listener holds that port, else port=\"other\"; counted in a BPF map since the exporter started.",
    ),
];

/// The histograms: (kind, metric name, help, exponents k of the bucket
/// bounds 2^k microseconds).
const BPF_HISTOGRAMS: [(HistKind, &str, &str, std::ops::RangeInclusive<usize>); 2] = [
    (
        HistKind::Handshake,
        "sockscope_tcp_handshake_seconds",
        "Server-side TCP handshakes of connections to a listener port, observed when the connection is established (tracepoint sock:inet_sock_set_state, SYN-RECV to ESTABLISHED): from the first SYN-ACK the kernel sent (as the SYN came in) to the final ACK, SYN-ACK retransmits included (tcp:tcp_retransmit_synack); ports no listener holds are port=\"other\"; measured in a BPF map since the exporter started.",
        4..=23,
    ),
    (
        HistKind::Duration,
        "sockscope_tcp_connection_duration_seconds",
        "Lifetimes of TCP connections a listener accepted, from ESTABLISHED until the socket reached CLOSE (tracepoint sock:inet_sock_set_state), observed when they close, by the listener's port (port=\"other\" when no listener holds it any more); connections established before the exporter started are not timed; measured in a BPF map since the exporter started.",
        10..=35,
    ),
];

/// A histogram whose buckets are already counted (in the kernel): the
/// exposition's buckets, sum and count of each label set.
#[derive(Debug, Default)]
struct CountedHistograms(Vec<CountedHistogram>);

/// Labels, buckets (upper bound, count in it), sum, count.
type CountedHistogram = (Labels, Vec<(f64, u64)>, f64, u64);

impl prometheus_client::encoding::EncodeMetric for CountedHistograms {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        for (labels, buckets, sum, count) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    *sum, *count, buckets, None,
                )?;
        }
        Ok(())
    }
    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The exposition's buckets of log2 slots of microseconds: one bucket per
/// bound 2^k µs for k in `bounds` (non-cumulative counts: the encoder adds
/// them up), then +Inf. Slot s holds [2^s, 2^(s+1)) µs, so the values
/// below 2^k µs are the slots below k.
fn buckets(slots: &[u64; SLOTS], bounds: std::ops::RangeInclusive<usize>) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(bounds.clone().count() + 1);
    let mut from = 0;
    for k in bounds {
        let n = slots[from.min(SLOTS)..k.min(SLOTS)].iter().sum();
        out.push(((1u64 << k) as f64 / 1e6, n));
        from = k;
    }
    out.push((f64::INFINITY, slots[from.min(SLOTS)..].iter().sum()));
    out
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help.trim_end_matches('.'), f.clone());
    f
}

fn counter_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help.trim_end_matches('.'), f.clone());
    f
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn platform_labels(l: &mut Labels, p: &Platform) {
    for (k, v) in [
        ("container_id", &p.container_id),
        ("runtime", &p.runtime),
        ("pod_uid", &p.pod_uid),
        ("pod_name", &p.pod_name),
        ("pod_namespace", &p.pod_namespace),
        ("container", &p.container_name),
        ("qos_class", &p.qos),
        ("systemd_unit", &p.unit),
    ] {
        if let Some(v) = v {
            l.push(kv(k, v));
        }
    }
}

fn set(f: &Family<Labels, Gauge>, l: &Labels, v: impl TryInto<i64>) {
    f.get_or_create(l).set(v.try_into().unwrap_or(i64::MAX));
}

/// /proc/net/netstat and snmp counters exported: (key, metric name without
/// _total, help).
const COUNTERS: &[(&str, &str, &str)] = &[
    (
        "TcpExt.ListenOverflows",
        "sockscope_tcp_listen_overflows",
        "Times a listener's accept queue was full when a SYN or the final ACK of a handshake arrived, so the kernel dropped it (TcpExt.ListenOverflows, /proc/net/netstat).",
    ),
    (
        "TcpExt.ListenDrops",
        "sockscope_tcp_listen_drops",
        "Connection requests a listener dropped for any reason, overflows included (TcpExt.ListenDrops).",
    ),
    (
        "TcpExt.TCPBacklogDrop",
        "sockscope_tcp_backlog_drops",
        "Segments dropped because a socket's backlog (packets queued while the application held the socket lock) was over the receive buffer (TcpExt.TCPBacklogDrop).",
    ),
    (
        "TcpExt.TCPReqQFullDrop",
        "sockscope_tcp_syn_queue_full_drops",
        "SYNs dropped because the listener's SYN queue was full and syncookies were off (TcpExt.TCPReqQFullDrop).",
    ),
    (
        "TcpExt.TCPReqQFullDoCookies",
        "sockscope_tcp_syn_queue_full_syncookies",
        "SYNs answered with a syncookie because the listener's SYN queue was full (TcpExt.TCPReqQFullDoCookies).",
    ),
    (
        "TcpExt.SyncookiesSent",
        "sockscope_tcp_syncookies_sent",
        "SYN-ACKs sent carrying a syncookie (TcpExt.SyncookiesSent).",
    ),
    (
        "TcpExt.SyncookiesRecv",
        "sockscope_tcp_syncookies_received",
        "ACKs that carried a valid syncookie (TcpExt.SyncookiesRecv).",
    ),
    (
        "TcpExt.SyncookiesFailed",
        "sockscope_tcp_syncookies_failed",
        "ACKs whose syncookie did not validate (TcpExt.SyncookiesFailed).",
    ),
    (
        "TcpExt.TCPTimeouts",
        "sockscope_tcp_retransmit_timeouts",
        "Retransmission timer expiries (RTO) (TcpExt.TCPTimeouts).",
    ),
    (
        "TcpExt.TCPAbortOnMemory",
        "sockscope_tcp_aborts_on_memory",
        "Connections reset because the kernel was over its TCP memory or orphan limits (TcpExt.TCPAbortOnMemory).",
    ),
    (
        "TcpExt.TCPAbortOnTimeout",
        "sockscope_tcp_aborts_on_timeout",
        "Connections given up after too many retransmissions or probes (TcpExt.TCPAbortOnTimeout).",
    ),
    (
        "TcpExt.TCPMemoryPressures",
        "sockscope_tcp_memory_pressure_entries",
        "Times TCP entered memory pressure mode (net.ipv4.tcp_mem pressure threshold crossed) (TcpExt.TCPMemoryPressures).",
    ),
    (
        "Tcp.ActiveOpens",
        "sockscope_tcp_active_opens",
        "Connections moved from CLOSED to SYN-SENT: connect() calls (Tcp.ActiveOpens, /proc/net/snmp).",
    ),
    (
        "Tcp.PassiveOpens",
        "sockscope_tcp_passive_opens",
        "Connections moved from LISTEN to SYN-RECV: handshakes started by peers (Tcp.PassiveOpens).",
    ),
    (
        "Tcp.AttemptFails",
        "sockscope_tcp_attempt_fails",
        "Connection attempts that failed: SYN-SENT or SYN-RECV to CLOSED, or SYN-RECV back to LISTEN (Tcp.AttemptFails).",
    ),
    (
        "Tcp.EstabResets",
        "sockscope_tcp_established_resets",
        "Connections reset from ESTABLISHED or CLOSE-WAIT (Tcp.EstabResets).",
    ),
    (
        "Tcp.InSegs",
        "sockscope_tcp_received_segments",
        "TCP segments received, errors included (Tcp.InSegs).",
    ),
    (
        "Tcp.OutSegs",
        "sockscope_tcp_sent_segments",
        "TCP segments sent, retransmissions excluded (Tcp.OutSegs).",
    ),
    (
        "Tcp.RetransSegs",
        "sockscope_tcp_retransmitted_segments",
        "TCP segments retransmitted (Tcp.RetransSegs).",
    ),
    (
        "Tcp.OutRsts",
        "sockscope_tcp_sent_resets",
        "TCP segments sent with the RST flag (Tcp.OutRsts).",
    ),
    (
        "Udp.RcvbufErrors",
        "sockscope_udp_receive_buffer_errors",
        "UDP datagrams dropped because the socket's receive buffer was full (Udp.RcvbufErrors).",
    ),
];

/// /proc/net/sockstat values exported as gauges.
const SOCKSTAT: &[(&str, &str, &str)] = &[
    (
        "sockets.used",
        "sockscope_sockstat_sockets_used_sockets",
        "Sockets allocated, all families (/proc/net/sockstat sockets: used).",
    ),
    (
        "TCP.inuse",
        "sockscope_sockstat_tcp_inuse_sockets",
        "IPv4 TCP sockets in use, listeners included (/proc/net/sockstat TCP: inuse).",
    ),
    (
        "TCP.orphan",
        "sockscope_sockstat_tcp_orphan_sockets",
        "TCP sockets closed by their application that the kernel still finishes (TCP: orphan).",
    ),
    (
        "TCP.tw",
        "sockscope_sockstat_tcp_timewait_sockets",
        "TCP sockets in TIME-WAIT (TCP: tw).",
    ),
    (
        "TCP.alloc",
        "sockscope_sockstat_tcp_alloc_sockets",
        "TCP sockets allocated, any state (TCP: alloc).",
    ),
    (
        "TCP.mem",
        "sockscope_sockstat_tcp_memory_pages",
        "Pages the kernel has charged to TCP socket buffers; compared with net.ipv4.tcp_mem (TCP: mem). The kernel counts this for the whole host, not per namespace.",
    ),
    (
        "UDP.inuse",
        "sockscope_sockstat_udp_inuse_sockets",
        "IPv4 UDP sockets in use (UDP: inuse).",
    ),
    (
        "UDP.mem",
        "sockscope_sockstat_udp_memory_pages",
        "Pages charged to UDP socket buffers, whole host (UDP: mem).",
    ),
];

/// The exposition of one report (OpenMetrics text, what prometheus-client
/// writes).
fn render(r: &ExportReport, st: &State, bpf: Option<&BpfCounts>, took: Duration) -> String {
    let mut reg = Registry::default();

    let aq = gauge_family(
        &mut reg,
        "sockscope_listener_accept_queue_connections",
        "Connections the kernel has completed (three-way handshake done) that the application has not accept()ed yet: the listener's accept queue (sock_diag idiag_rqueue of the LISTEN socket).",
    );
    let bl = gauge_family(
        &mut reg,
        "sockscope_listener_backlog_connections",
        "The backlog given to listen(), capped by net.core.somaxconn (sock_diag idiag_wqueue). The kernel admits backlog+1 connections into the accept queue, then drops SYNs and counts ListenOverflows.",
    );
    let syn = gauge_family(
        &mut reg,
        "sockscope_listener_syn_recv_connections",
        "Half-open connections to the listener's address and port: SYN received, SYN-ACK sent, final ACK not seen yet (request sockets in SYN-RECV).",
    );
    let rp = gauge_family(
        &mut reg,
        "sockscope_listener_reuseport_group_sockets",
        "Listening sockets bound to the same address and port (an SO_REUSEPORT group); 1 when the listener is alone.",
    );
    for l in &r.listeners {
        let mut labels = vec![
            kv("netns", &l.netns),
            kv("addr", &l.addr),
            kv("port", &l.port),
            kv("proto", &l.proto),
        ];
        if let Some(p) = &l.process {
            labels.push(kv("process", p));
        }
        if let Some(p) = l.pid {
            labels.push(kv("pid", p));
        }
        platform_labels(&mut labels, &l.platform);
        if let Some(v) = l.accept_queue {
            set(&aq, &labels, v);
        }
        if let Some(v) = l.backlog {
            set(&bl, &labels, v);
        }
        set(&syn, &labels, l.syn_recv);
        if let Some(v) = l.reuseport_group {
            set(&rp, &labels, v);
        }
    }

    let sockets = gauge_family(
        &mut reg,
        "sockscope_sockets",
        "Sockets in the kernel's tables of the network namespace, by protocol (tcp, udp, raw, u_str, u_dgr, u_seq...) and state, from one sock_diag dump.",
    );
    let somax = gauge_family(
        &mut reg,
        "sockscope_somaxconn_connections",
        "net.core.somaxconn of the namespace: the cap on every listen() backlog.",
    );
    let counters: Vec<_> = COUNTERS
        .iter()
        .map(|(k, name, help)| (*k, counter_family(&mut reg, name, help)))
        .collect();
    let sockstat: Vec<_> = SOCKSTAT
        .iter()
        .map(|(k, name, help)| (*k, gauge_family(&mut reg, name, help)))
        .collect();
    for n in &r.namespaces {
        for (proto, states) in &n.sockets {
            for (state, count) in states {
                let l = vec![
                    kv("netns", &n.netns),
                    kv("proto", proto),
                    kv("state", state),
                ];
                set(&sockets, &l, *count);
            }
        }
        let l = vec![kv("netns", &n.netns)];
        if let Some(v) = n.somaxconn {
            set(&somax, &l, v);
        }
        for (k, f) in &counters {
            if let Some(v) = n.counters.get(k) {
                f.get_or_create(&l).inc_by(v.max(0) as u64);
            }
        }
        for (k, f) in &sockstat {
            if let Some(v) = n.counters.get(k) {
                set(f, &l, v);
            }
        }
    }

    let procs = gauge_family(
        &mut reg,
        "sockscope_process_sockets",
        "Sockets a process holds through its file descriptors (distinct sockets, found in /proc/PID/fd), by state; processes beyond --top are summed into process=\"other\". Sockets without a file (TIME-WAIT, not yet accepted) belong to no process.",
    );
    for p in &r.processes {
        for (state, count) in &p.by_state {
            let mut l = vec![kv("process", &p.process)];
            if let Some(pid) = p.pid {
                l.push(kv("pid", pid));
            }
            platform_labels(&mut l, &p.platform);
            l.push(kv("state", state));
            set(&procs, &l, *count);
        }
    }

    if let Some(b) = bpf {
        for (kind, name, help) in BPF_COUNTERS {
            let f = counter_family(&mut reg, name, help);
            for (netns, port, _, n) in b.counts.iter().filter(|c| c.2 == kind) {
                f.get_or_create(&vec![kv("netns", netns), kv("port", port)])
                    .inc_by(*n);
            }
        }
        let drops = counter_family(
            &mut reg,
            "sockscope_tcp_drops_by_port",
            "TCP packets the kernel dropped (tracepoint skb:kfree_skb), by the kernel's drop reason (enum skb_drop_reason of the running kernel, e.g. NO_SOCKET: no socket for the segment; NETFILTER_DROP: a firewall rule) and local port: the port of the packet's socket, else the destination port it arrived for, when a listener holds that port, else port=\"other\"; frees that lose no packet (SKB_CONSUMED, NOT_SPECIFIED, QUEUE_PURGE) are not counted; counted in a BPF map since the exporter started.",
        );
        for (netns, port, reason, n) in &b.drops {
            drops
                .get_or_create(&vec![
                    kv("netns", netns),
                    kv("port", port),
                    kv("reason", reason),
                ])
                .inc_by(*n);
        }
        for (kind, name, help, bounds) in BPF_HISTOGRAMS {
            let series = b
                .hists
                .iter()
                .filter(|((_, _, k), _)| *k == kind)
                .map(|((netns, port, _), h)| {
                    (
                        vec![kv("netns", netns), kv("port", port)],
                        buckets(&h.slots, bounds.clone()),
                        h.sum_ns as f64 / 1e9,
                        h.count(),
                    )
                })
                .collect();
            reg.register(name, help.trim_end_matches('.'), CountedHistograms(series));
        }
        let lost = counter_family(
            &mut reg,
            "sockscope_export_bpf_uncounted_events",
            "Retransmits, resets, drops and histogram observations the BPF programs could not count because their map was full (16384 keys for the counters and for the drops, 32768 histogram slots).",
        );
        lost.get_or_create(&vec![]).inc_by(b.overflowed);
    }

    let folded = counter_family(
        &mut reg,
        "sockscope_export_folded",
        "Label sets folded to keep within --max-series (kind=listener: merged into port=\"other\"; kind=process: summed into process=\"other\", also beyond --top; kind=netns: left out), summed over all scrapes.",
    );
    for (i, kind) in ["listener", "process", "netns"].into_iter().enumerate() {
        folded
            .get_or_create(&vec![kv("kind", kind)])
            .inc_by(st.folded[i]);
    }
    let folded_now = gauge_family(
        &mut reg,
        "sockscope_export_folded_series",
        "Series this scrape did not emit because of --max-series.",
    );
    set(&folded_now, &vec![], r.folded.series);
    let denied = gauge_family(
        &mut reg,
        "sockscope_export_owner_scan_denied_processes",
        "Processes whose fd table the exporter could not read (their sockets count for no process): give it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.",
    );
    set(&denied, &vec![], r.owner_scan_denied);
    let scrapes = counter_family(
        &mut reg,
        "sockscope_export_scrapes",
        "Scrapes served since the exporter started.",
    );
    scrapes.get_or_create(&vec![]).inc_by(st.scrapes);
    let dur = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(
        "sockscope_export_collect_seconds",
        "Wall time this scrape spent reading the kernel and building the report",
        dur.clone(),
    );
    dur.get_or_create(&vec![]).set(took.as_secs_f64());

    let mut s = String::new();
    encode(&mut s, &reg).expect("writing to a String cannot fail");
    s
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The same exposition in the Prometheus text format 0.0.4, for clients
/// that do not ask for OpenMetrics (and for promtool): a counter's HELP
/// and TYPE name the `_total` sample, and there is no `# EOF`.
fn to_prometheus_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 16 * counters.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((kind, rest)) = meta
            && let Some((name, tail)) = rest.split_once(' ')
            && counters.contains(name)
        {
            out.push_str(kind);
            out.push_str(name);
            out.push_str("_total ");
            out.push_str(tail);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8], head_only: bool) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if !head_only {
        let _ = stream.write_all(body);
    }
    let _ = stream.flush();
}

enum Head {
    Request {
        method: String,
        path: String,
        /// The client accepts OpenMetrics.
        openmetrics: bool,
    },
    Fail(&'static str),
    Gone,
}

/// Read a request head within the deadline and the size bound.
fn read_head(stream: &mut TcpStream, timeout: Duration) -> Head {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let mut n = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Head::Fail("408 Request Timeout");
        }
        match stream.read(&mut buf[n..]) {
            Ok(0) => return Head::Gone,
            Ok(k) => n += k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Head::Fail("408 Request Timeout");
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Head::Gone,
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(_)) => {
                let openmetrics = req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("accept")
                        && String::from_utf8_lossy(h.value).contains("application/openmetrics-text")
                });
                return Head::Request {
                    method: req.method.unwrap_or("").to_string(),
                    path: req.path.unwrap_or("").to_string(),
                    openmetrics,
                };
            }
            Ok(httparse::Status::Partial) if n < buf.len() => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Head::Fail("431 Request Header Fields Too Large");
            }
            Err(_) => return Head::Fail("400 Bad Request"),
        }
    }
}

fn serve(mut stream: TcpStream, ctx: &Ctx) {
    let _ = stream.set_nonblocking(false);
    let (method, path, openmetrics) = match read_head(&mut stream, ctx.read_timeout) {
        Head::Request {
            method,
            path,
            openmetrics,
        } => (method, path, openmetrics),
        Head::Fail(status) => {
            respond(&mut stream, status, "text/plain", status.as_bytes(), false);
            return;
        }
        Head::Gone => return,
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let body = b"only GET and HEAD\n";
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            body,
            false,
        );
        return;
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => match ctx.scrape() {
            Ok(body) if openmetrics => respond(
                &mut stream,
                "200 OK",
                OPENMETRICS,
                body.as_bytes(),
                head_only,
            ),
            Ok(body) => {
                let text = to_prometheus_text(&body);
                respond(
                    &mut stream,
                    "200 OK",
                    PROMETHEUS_TEXT,
                    text.as_bytes(),
                    head_only,
                )
            }
            Err(f) => {
                eprintln!("sockscope export: scrape failed: {}", f.message());
                let body = format!("scrape failed: {}\n", f.message());
                respond(
                    &mut stream,
                    "500 Internal Server Error",
                    "text/plain",
                    body.as_bytes(),
                    head_only,
                );
            }
        },
        "/" => {
            let body = b"sockscope export: socket health of this host. Metrics: /metrics\n";
            respond(&mut stream, "200 OK", "text/plain", body, head_only);
        }
        _ => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"try /metrics\n",
            head_only,
        ),
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, Fail> {
    TcpListener::bind(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Fail::usage(format!(
            "--listen {addr}: the address is in use (another exporter? see `sockscope ls -tlnp sport = :{}`); \
stop it or pick another port with --listen ADDR:PORT",
            addr.port()
        )),
        std::io::ErrorKind::PermissionDenied => Fail::privilege(format!(
            "--listen {addr}: not allowed to bind port {} (ports below 1024 need CAP_NET_BIND_SERVICE); \
pick a port above 1023, e.g. --listen 127.0.0.1:9469",
            addr.port()
        )),
        std::io::ErrorKind::AddrNotAvailable => Fail::usage(format!(
            "--listen {addr}: no interface of this host has that address; use 127.0.0.1, 0.0.0.0 or one from `ip addr`"
        )),
        _ => Fail::system(format!("--listen {addr}: {e}")),
    })
}

/// The BPF counters: with --bpf, or by default when serving, unless
/// --no-bpf. By default a kernel or privilege that does not allow them is
/// no error: their series are absent, and -v says why.
fn start_bpf(args: &ExportArgs, cli: &Cli) -> Result<Option<PortCounters>, Fail> {
    let wanted = args.bpf || !(args.no_bpf || args.once || args.out.structured());
    if !wanted {
        return Ok(None);
    }
    match PortCounters::start() {
        Ok(c) => {
            if cli.verbose {
                for s in &c.skipped {
                    eprintln!(
                        "sockscope export: not counting {} ({}): this kernel lacks it",
                        s.event, s.reason
                    );
                }
            }
            Ok(Some(c))
        }
        Err(e) if args.bpf => Err(Fail::from(e)),
        Err(e) => {
            if cli.verbose {
                eprintln!("sockscope export: per-port retransmit and reset counters are off: {e}");
            }
            Ok(None)
        }
    }
}

pub fn run(args: &ExportArgs, cli: &Cli) -> Result<u8, Fail> {
    if !(args.read_timeout > 0.0 && args.read_timeout.is_finite()) {
        return Err(Fail::usage(format!(
            "--read-timeout {}: give a positive number of seconds, e.g. --read-timeout 5",
            args.read_timeout
        )));
    }
    let kubelet_root = kubelet_root(args)?;
    let container_logs = container_logs(args)?;
    let bpf = start_bpf(args, cli)?;
    let ctx = Arc::new(Ctx {
        kubelet_root,
        container_logs,
        bpf: bpf.map(Mutex::new),
        target: args.ns.target(),
        opts: Options {
            top: args.top,
            max_series: usize::try_from(args.max_series).unwrap_or(usize::MAX),
        },
        state: Mutex::new(State::default()),
        read_timeout: Duration::from_secs_f64(args.read_timeout),
    });
    if args.out.structured() || args.once {
        let body = if args.out.structured() {
            let r = ctx.collect()?;
            let mut b = Vec::new();
            out::document(&mut b, args.out.format(), &r, false)
                .map_err(|e| Fail::system(e.to_string()))?;
            String::from_utf8(b).map_err(|e| Fail::system(e.to_string()))?
        } else {
            to_prometheus_text(&ctx.scrape()?)
        };
        return out::print(body.as_bytes());
    }
    // Fail early on a namespace that cannot be opened.
    netns::open(&ctx.target).map_err(Fail::from)?;
    let listener = bind(args.listen)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Fail::system(format!("--listen {}: {e}", args.listen)))?;
    crate::signals::install();
    eprintln!(
        "sockscope export: serving http://{}/metrics (collects on scrape; SIGINT or SIGTERM stops)",
        listener.local_addr().unwrap_or(args.listen)
    );
    // Idle means asleep: the loop waits in poll() without a timeout, and
    // SIGINT/SIGTERM wake it through a socket pair their handler writes to
    // (a signal delivered to a connection thread would not interrupt this
    // poll). Without the pair, the stop flag is looked at 4 times a second.
    let wake = stop_wakeup();
    let active = Arc::new(AtomicUsize::new(0));
    while !crate::signals::stop_requested() {
        use rustix::event::{PollFd, PollFlags};
        let quarter = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        };
        let rc = match &wake {
            Some(w) => {
                let mut pfd = [
                    PollFd::new(&listener, PollFlags::IN),
                    PollFd::new(w, PollFlags::IN),
                ];
                rustix::event::poll(&mut pfd, None)
                    .map(|_| usize::from(!pfd[0].revents().is_empty()))
                    .unwrap_or(0)
            }
            None => {
                let mut pfd = [PollFd::new(&listener, PollFlags::IN)];
                rustix::event::poll(&mut pfd, Some(&quarter)).unwrap_or(0)
            }
        };
        if rc == 0 {
            continue; // timeout, a signal or the wake-up: check for a stop
        }
        match listener.accept() {
            Ok((mut stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let body = b"too many connections\n";
                    respond(
                        &mut stream,
                        "503 Service Unavailable",
                        "text/plain",
                        body,
                        false,
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (ctx, done) = (Arc::clone(&ctx), Arc::clone(&active));
                let spawned = std::thread::Builder::new()
                    .name("export-conn".into())
                    .spawn(move || {
                        serve(stream, &ctx);
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of fds and the like: say so, and do not spin.
                eprintln!("sockscope export: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(FOUND)
}

//! `sockscope trace`: a live timeline of what the kernel does to each
//! connection, with the process behind it. Parses the arguments into a
//! session's options (kernel-side filters, user-space filter, output),
//! runs the session until Ctrl-C or --duration, and renders events,
//! diagrams and the closing summary with the trace crate's views.

use crate::cli::Cli;
use crate::{FOUND, Fail, NOTHING, out};
use clap::ValueEnum;
use sockscope::model::{Proto, State, StateSet};
use sockscope::query::{self, services::Services};
use sockscope::source::netns::{self, NetnsTarget};
use sockscope_trace::abi::Kind;
use sockscope_trace::event::Event;
use sockscope_trace::loader::Config;
use sockscope_trace::session::{Options, Session, Sink, Stats};
use sockscope_trace::tracefs;
use sockscope_trace::track::{Conn, Role, UserFilter};
use sockscope_trace::view::{diagram, summary, timeline};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TRACE_EXAMPLES: &str = "\
Examples:
  sockscope trace                      every TCP connection on the host, live
  sockscope trace --port 8080          one service (filtered in the kernel)
  sockscope trace --comm nginx --no-data
      nginx's connections without the reads and writes
  sockscope trace --netns-pid 1234 --diagram
      a sequence diagram per finished connection
  sockscope trace --port 5000 --svg /tmp/d --duration 10
      timeline, and SVG diagrams written to /tmp/d
  sockscope trace --jsonl | jq 'select(.kind == \"reset_received\")'

What is traced (tracepoints only; no kprobes):
  state       sock:inet_sock_set_state, every TCP transition; TIME-WAIT
              inferred from FIN-WAIT-2/CLOSING -> CLOSE and checked in the
              socket table
  retransmit  tcp:tcp_retransmit_skb, tcp:tcp_retransmit_synack
  reset       tcp:tcp_send_reset (with the kernel's reason),
              tcp:tcp_receive_reset
  destroy     tcp:tcp_destroy_sock: duration, bytes, retransmits (as tcplife)
  drop        skb:kfree_skb, TCP packets with a drop reason
  syscall     socket bind listen accept accept4 connect shutdown setsockopt
              close fcntl(F_SETFL) (syscalls:sys_enter_*/sys_exit_*;
              tracefs is mounted in a private mount namespace when the
              host has not mounted it)
  data        sock:sock_send_length / sock_recv_length: read, write, send*,
              recv*
  packet      net:net_dev_queue (out) and net:netif_receive_skb (in): each
              TCP segment at a device with flags, seq/ack (relative per
              connection), window, length, MSS/wscale/SACK options, interface,
              CPU and softirq; default only with --port, --addr or --pid
  wait        select/pselect6/poll/ppoll/epoll_wait/epoll_pwait(2) of the
              processes that own a traced socket (entry, and exit with the
              return value and time blocked), and sched:sched_wakeup of
              such a wait (CPU, and the packet that caused it with packet
              events on); default only with --port, --addr or --pid

Events are attributed to the process that owns the socket (state changes run
in softirq, where the running task is unrelated); a connection not accepted
yet shows its listener's owner. Connections older than the trace are
attributed from the socket and fd tables read at start.

Filters: --port, --addr, --pid, --comm, --state and --netns/--netns-pid are
applied in the kernel. FILTER (ss syntax, as for `ls`) is applied to each
connection in user space, e.g. `dport = :443 and comm = curl`.

Needs CAP_BPF and CAP_PERFMON (or root) and a kernel with BTF
(/sys/kernel/btf/vmlinux); without them: exit 3 and a message.
Exit status: 0 events shown, 1 none, 2 bad usage, 3 missing privilege or
kernel feature, 4 output could not be written.";

/// Classes of events (--events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventClass {
    State,
    Retransmit,
    Reset,
    Destroy,
    Drop,
    Syscall,
    Data,
    Packet,
    Wait,
}

impl EventClass {
    fn kinds(self) -> &'static [Kind] {
        match self {
            EventClass::State => &[Kind::State],
            EventClass::Retransmit => &[Kind::Retransmit, Kind::RetransmitSynack],
            EventClass::Reset => &[Kind::ResetSent, Kind::ResetReceived],
            EventClass::Destroy => &[Kind::Destroy],
            EventClass::Drop => &[Kind::Drop],
            EventClass::Syscall => &[Kind::Syscall],
            EventClass::Data => &[Kind::Send, Kind::Recv],
            EventClass::Packet => &[Kind::Packet],
            EventClass::Wait => &[Kind::Wait, Kind::Wake],
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = TRACE_EXAMPLES)]
pub struct TraceArgs {
    /// Only connections with this port at either end (number or service name; repeatable). Filtered in the kernel.
    #[arg(long = "port", value_name = "PORT")]
    pub port: Vec<String>,
    /// Only connections with an address in ADDR[/PREFIX] at either end (repeatable). Filtered in the kernel.
    #[arg(long = "addr", value_name = "ADDR[/PREFIX]")]
    pub addr: Vec<String>,
    /// Only sockets of this process (repeatable). Filtered in the kernel.
    #[arg(long = "pid", value_name = "PID")]
    pub pid: Vec<u32>,
    /// Only sockets of processes with this command name (repeatable). Filtered in the kernel.
    #[arg(long = "comm", value_name = "NAME")]
    pub comm: Vec<String>,
    /// Only events in, entering or leaving this state (established, syn-recv, fin-wait-1...; repeatable). Filtered in the kernel.
    #[arg(long = "state", value_name = "STATE")]
    pub state: Vec<String>,
    /// Only the network namespace /run/netns/NAME.
    #[arg(long, value_name = "NAME", conflicts_with = "netns_pid")]
    pub netns: Option<String>,
    /// Only the network namespace of process PID.
    #[arg(long, value_name = "PID")]
    pub netns_pid: Option<u32>,
    /// Event classes to show, comma-separated (default: all but packet and wait; those too with --port, --addr or --pid).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CLASS")]
    pub events: Vec<EventClass>,
    /// Leave out the data events (send/recv), the bulk of the volume on a busy host.
    #[arg(long)]
    pub no_data: bool,
    // --json: one document at the end, {"events": [...], "connections":
    // [...], "totals": {...}, "stats": {...}}; --jsonl: one object per event
    // as it happens, then one per connection and the stats.
    #[command(flatten)]
    pub out: out::OutputArgs,
    /// Instead of the timeline, a sequence diagram (peer | kernel | application) for each finished connection.
    #[arg(long, conflicts_with_all = ["json", "jsonl"])]
    pub diagram: bool,
    /// Also write each finished connection's diagram as an SVG file into DIR.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
    /// Stop after SECS seconds (default: at Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// No per-event output, only the summary at the end.
    #[arg(short = 'q', long, conflicts_with_all = ["json", "jsonl", "diagram"])]
    pub quiet: bool,
    /// Ring buffer size in MiB (rounded up to a power of two).
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub buffer_mb: u32,
    /// Do not read the socket and fd tables at start (connections older than the trace then show no owner until they make a syscall).
    #[arg(long)]
    pub no_snapshot: bool,
    /// Filter (ss syntax, as for `ls`) on each connection, applied in user space.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

fn parse_port(s: &str) -> Result<u16, Fail> {
    let t = s.trim_start_matches(':');
    if let Ok(p) = t.parse::<u16>() {
        return Ok(p);
    }
    Services::system().port(t, Some("tcp")).ok_or_else(|| {
        Fail::usage(format!(
            "--port {s}: not a port number or a service name in /etc/services"
        ))
    })
}

fn parse_addr(s: &str) -> Result<(IpAddr, u8), Fail> {
    let bad = || {
        Fail::usage(format!(
            "--addr {s}: expected an IPv4 or IPv6 address with an optional /PREFIX, e.g. 10.0.0.0/8 or ::1"
        ))
    };
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let a = a.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = a.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match p {
        Some(p) => p.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, len))
}

fn parse_states(names: &[String]) -> Result<u32, Fail> {
    let mut set = StateSet::EMPTY;
    for n in names {
        let s = query::state_group(n).ok_or_else(|| {
            Fail::usage(format!(
                "--state {n}: unknown state; use established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, \
                 time-wait, closed, close-wait, last-ack, listening, closing (or a group: connected, synchronized...)"
            ))
        })?;
        set = set.union(s);
    }
    // A TIME-WAIT is inferred from the close of a FIN-WAIT-2 or CLOSING
    // socket: asking for it means asking for those transitions.
    if set.contains(State::TimeWait) {
        set = set.union(StateSet::of(&[State::FinWait2, State::Closing]));
    }
    Ok(set.0)
}

fn netns_inode(args: &TraceArgs) -> Result<Option<(NetnsTarget, u32)>, Fail> {
    let target = if let Some(n) = &args.netns {
        NetnsTarget::Named(n.clone())
    } else if let Some(p) = args.netns_pid {
        NetnsTarget::Pid(p)
    } else {
        return Ok(None);
    };
    let ns = netns::open(&target).map_err(Fail::from)?;
    let ino = ns
        .first()
        .and_then(|n| u32::try_from(n.id.inode).ok())
        .ok_or_else(|| Fail::system("could not read the namespace's inode"))?;
    Ok(Some((target, ino)))
}

fn options(args: &TraceArgs) -> Result<Options, Fail> {
    let expr = if args.filter.is_empty() {
        None
    } else {
        Some(query::parse(&args.filter).map_err(|e| Fail::usage(e.to_string()))?)
    };
    let ports = args
        .port
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<Vec<_>, _>>()?;
    let addrs = args
        .addr
        .iter()
        .map(|a| parse_addr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let states = parse_states(&args.state)?;
    let mut kinds = 0u32;
    // Packet events cost every packet of the host a program run: part of
    // the default only when a filter narrows them to some connections.
    let narrowed = !args.port.is_empty() || !args.addr.is_empty() || !args.pid.is_empty();
    let classes: Vec<EventClass> = if args.events.is_empty() {
        EventClass::value_variants()
            .iter()
            .copied()
            .filter(|c| !matches!(c, EventClass::Packet | EventClass::Wait) || narrowed)
            .collect()
    } else {
        args.events.clone()
    };
    for c in classes {
        if args.no_data && c == EventClass::Data {
            continue;
        }
        for k in c.kinds() {
            kinds |= k.bit();
        }
    }
    if kinds == 0 {
        return Err(Fail::usage(
            "no event class left to show (--events and --no-data)",
        ));
    }
    if args.buffer_mb == 0 || args.buffer_mb > 1024 {
        return Err(Fail::usage("--buffer-mb takes 1 to 1024"));
    }
    let ns = netns_inode(args)?;
    Ok(Options {
        kernel: Config {
            netns: ns.as_ref().map(|n| n.1),
            ports: ports.clone(),
            addrs: addrs.clone(),
            pids: args.pid.clone(),
            comms: args.comm.clone(),
            states,
            kinds,
            ring_bytes: args.buffer_mb << 20,
            ..Config::default()
        },
        filter: UserFilter { ports, addrs, expr },
        keep_events: args.diagram || args.svg.is_some(),
        netns: ns.map(|n| n.0),
        snapshot: !args.no_snapshot,
        check_time_wait: true,
        // -q alone shows no event, only the summary (see `run`'s mode).
        lean: args.quiet
            && !matches!(args.out.format(), out::Format::Json | out::Format::Jsonl)
            && !args.diagram
            && args.svg.is_none(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Timeline,
    Jsonl,
    Json,
    Diagram,
    Quiet,
}

/// Where events go: stdout in the chosen form, SVG files, the summary.
/// Stdout is written by a thread of its own ([`out::Background`]), so that
/// a blocked reader cannot keep the trace from stopping.
struct Output {
    w: out::Background,
    mode: Mode,
    color: bool,
    svg: Option<PathBuf>,
    collector: summary::Collector,
    events: Vec<Event>,
    shown: u64,
    svg_error: Option<String>,
}

impl Output {
    fn json_line(&mut self, v: &impl serde::Serialize) -> io::Result<()> {
        out::line(&mut self.w, v)
    }

    /// A finished connection's diagram, SVG or JSON line, as asked.
    fn show_finished(&mut self, c: &Conn) -> io::Result<()> {
        let drawable =
            c.proto == Some(Proto::Tcp) && c.role != Role::Listener && !c.events.is_empty();
        if drawable && (self.mode == Mode::Diagram || self.svg.is_some()) {
            let d = diagram::build(c);
            if self.mode == Mode::Diagram {
                diagram::write_text(&mut self.w, &d, self.color)?;
            }
            if let Some(dir) = &self.svg {
                let path = dir.join(diagram::svg_name(c));
                if let Err(e) = std::fs::write(&path, diagram::svg(&d))
                    && self.svg_error.is_none()
                {
                    self.svg_error = Some(format!("writing {}: {e}", path.display()));
                }
            }
        }
        if self.mode == Mode::Jsonl {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                kind: &'static str,
                #[serde(flatten)]
                row: &'a summary::Row,
            }
            let row = summary::Row::of(c);
            self.json_line(&Line {
                kind: "connection",
                row: &row,
            })?;
        }
        Ok(())
    }
}

impl Sink for Output {
    fn event(&mut self, e: &Event) -> io::Result<()> {
        self.shown += 1;
        if self.w.abandoned() && matches!(self.mode, Mode::Timeline | Mode::Jsonl) {
            // Stopping with stdout stuck: count it, do not format it.
            self.w.skip();
            return Ok(());
        }
        match self.mode {
            Mode::Timeline => {
                if self.shown == 1 {
                    timeline::header(&mut self.w)?;
                }
                timeline::line(&mut self.w, e, self.color)?;
                self.w.item();
                Ok(())
            }
            Mode::Jsonl => {
                self.json_line(e)?;
                self.w.item();
                Ok(())
            }
            Mode::Json => {
                self.events.push(e.clone());
                Ok(())
            }
            Mode::Diagram | Mode::Quiet => Ok(()),
        }
    }

    fn finished(&mut self, c: Conn) -> io::Result<()> {
        // Counted also when its output fails.
        let r = self.show_finished(&c);
        self.collector.add(c);
        r
    }

    fn counted(&mut self, n: u64) {
        self.shown += n;
    }

    fn warn(&mut self, msg: &str) {
        let _ = self.w.flush();
        eprintln!("sockscope: {msg}");
    }

    fn tick(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

pub fn run(args: &TraceArgs, cli: &Cli) -> Result<u8, Fail> {
    // First, while the process still has one thread: unshare(CLONE_NEWNS)
    // is refused once there are more.
    let tracefs = tracefs::ensure();
    if cli.verbose {
        eprintln!("sockscope: {}", tracefs.describe());
    }
    let opts = options(args)?;
    if let Some(d) = &args.duration
        && !(d.is_finite() && *d > 0.0)
    {
        return Err(Fail::usage("--duration takes a positive number of seconds"));
    }
    if let Some(dir) = &args.svg {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail::usage(format!("--svg {}: {e}", dir.display())))?;
    }
    let stop = crate::signals::install();
    let mut session = Session::start(opts).map_err(Fail::from)?;
    for n in &session.notes {
        eprintln!("sockscope: {n}");
    }
    if cli.verbose {
        for n in &session.snapshot_notes {
            eprintln!("sockscope: {n}");
        }
    }
    let until = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    eprintln!(
        "sockscope: tracing TCP connections{}; {}",
        match (&args.netns, args.netns_pid) {
            (Some(n), _) => format!(" in network namespace {n}"),
            (None, Some(p)) => format!(" in the network namespace of pid {p}"),
            _ => String::new(),
        },
        match args.duration {
            Some(d) => format!("stopping after {d} s or at Ctrl-C"),
            None => "Ctrl-C to stop".into(),
        }
    );
    let mode = if args.out.format() == out::Format::Json {
        Mode::Json
    } else if args.out.format() == out::Format::Jsonl {
        Mode::Jsonl
    } else if args.diagram {
        Mode::Diagram
    } else if args.quiet {
        Mode::Quiet
    } else {
        Mode::Timeline
    };
    let mut w =
        out::Background::spawn(stop).map_err(|e| Fail::io("starting the output thread", &e))?;
    w.stop_at(until);
    let mut output = Output {
        w,
        mode,
        color: out::use_color(cli.color),
        svg: args.svg.clone(),
        collector: summary::Collector::default(),
        events: Vec::new(),
        shown: 0,
        svg_error: None,
    };
    let mut stats = match session.run(&mut output, stop, until) {
        Ok(s) => s,
        // The output failed (a closed pipe: quietly), not the trace.
        Err(e) if output.w.failed() => return out::ignore_broken_pipe(e),
        Err(e) => return Err(Fail::io("trace", &e)),
    };
    // The programs are detached (Session::run does it before its last
    // read); what is left is to hand over the output.
    drop(session);
    let code = if output.shown > 0 { FOUND } else { NOTHING };
    stats.events_unwritten = output.w.unwritten();
    let summary = finish(&mut output, &stats);
    let Output { w, svg_error, .. } = output;
    let done = w.finish();
    match (done.error, summary) {
        (Some(e), _) | (None, Err(e)) => return out::ignore_broken_pipe(e),
        (None, Ok(())) => {}
    }
    if !done.complete {
        // The reader is stuck: the closing counts go to stderr instead.
        stats.events_unwritten = done.unwritten;
        let mut text = Vec::new();
        let _ = summary::write_stats(&mut text, &stats);
        eprintln!(
            "sockscope: standard output was blocked when the trace stopped; gave up waiting for it"
        );
        for l in String::from_utf8_lossy(&text).lines() {
            eprintln!("sockscope: {l}");
        }
    }
    if let Some(e) = &svg_error {
        eprintln!("sockscope: {e}");
    }
    if stats.kernel_lost > 0 {
        eprintln!(
            "sockscope: {} events were lost (ring buffer full); see the warnings above for the filter that cuts the volume",
            stats.kernel_lost
        );
    }
    Ok(code)
}

fn finish(o: &mut Output, stats: &Stats) -> io::Result<()> {
    match o.mode {
        Mode::Json => {
            let rows: Vec<summary::Row> = o.collector.rows().collect();
            let doc = serde_json::json!({
                "events": o.events,
                "connections": rows,
                "totals": o.collector,
                "stats": stats,
            });
            out::document(&mut o.w, out::Format::Json, &doc, false)?;
            o.w.items(o.events.len() as u64);
            Ok(())
        }
        Mode::Jsonl => {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                kind: &'static str,
                #[serde(flatten)]
                stats: &'a Stats,
                totals: &'a summary::Collector,
            }
            o.json_line(&Line {
                kind: "stats",
                stats,
                totals: &o.collector.clone(),
            })
        }
        _ => o.collector.write(&mut o.w, stats),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_parsing() {
        assert_eq!(parse_port(":8080").unwrap(), 8080);
        assert_eq!(parse_port("22").unwrap(), 22);
        assert_eq!(parse_port("nosuchservice").unwrap_err().code(), 2);
        assert_eq!(
            parse_addr("10.0.0.0/8").unwrap(),
            ("10.0.0.0".parse().unwrap(), 8)
        );
        assert_eq!(parse_addr("[::1]").unwrap(), ("::1".parse().unwrap(), 128));
        assert_eq!(parse_addr("10.0.0.1/33").unwrap_err().code(), 2);
        assert_eq!(parse_addr("host").unwrap_err().code(), 2);
        let s = parse_states(&["time-wait".into()]).unwrap();
        assert_eq!(
            s,
            StateSet::of(&[State::TimeWait, State::FinWait2, State::Closing]).0
        );
        assert_eq!(
            parse_states(&["estab".into()]).unwrap(),
            State::Established.bit()
        );
        assert_eq!(parse_states(&["bogus".into()]).unwrap_err().code(), 2);
    }
}

//! `sockscope capture`: read a pcap/pcapng file or capture live, decode,
//! follow TCP conversations as Wireshark does, label packets with the owning
//! process, and print lines, a conversation table, flow diagrams or JSON.
//! The work is in the sockscope-capture crate; this module wires a source
//! (file or AF_PACKET ring) to the analysis and the chosen views.

use crate::cli::Cli;
use crate::{FOUND, Fail, NOTHING, out};
use sockscope::view::escape::Escaped;
use sockscope_capture::analysis::{Analyzer, Info};
use sockscope_capture::decode::{self, linktype};
use sockscope_capture::filter::{self, FileMatcher};
use sockscope_capture::live::{self, Capture};
use sockscope_capture::pcap::{PcapngWriter, Reader};
use sockscope_capture::procs::{Labeller, ProcsError};
use sockscope_capture::reasm::Reassembler;
use sockscope_capture::view::flow::FlowCollector;
use sockscope_capture::view::json::{self, Summary};
use sockscope_capture::view::line::{LineOptions, LineWriter};
use sockscope_capture::view::{Procs, conv};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CAPTURE_EXAMPLES: &str = "\
Examples:
  sockscope capture -i lo -c 20 port 8080
      20 packets on loopback, labelled with processes
  sockscope capture -i any -w out.pcapng tcp
      write pcapng; each packet's comment names its process
  sockscope capture -r trace.pcap
      tcpdump-like lines, Wireshark's relative seq/ack
  sockscope capture -r trace.pcap -S
      absolute sequence numbers
  sockscope capture -r trace.pcap --conv
      conversation table: bytes, RTT, retransmits, how it ended
  sockscope capture -r trace.pcap --flow 'host 10.0.0.2 and port 443'
  sockscope capture -r trace.pcap --svg flow.svg
  sockscope capture -r trace.pcap --jsonl | jq 'select(.tcp.analysis != [])'

  sockscope capture -r http-vlan.pcap 'vlan and tcp port 80'
  sockscope capture -r - 'tcp[tcpflags] & tcp-syn != 0' < trace.pcap
  sockscope capture -r overlay.pcap 'geneve 42 and tcp port 443'
      tests after geneve read the packet inside the tunnel

Filter (tcpdump's language): host ADDR, net ADDR/LEN, port N, portrange A-B,
  src / dst qualifiers, tcp, udp, icmp, icmp6, ip, ip6, arp, vlan [ID],
  mpls [LABEL], pppoes [SESSION], geneve [VNI], proto gre,
  ether host|src|dst MAC, broadcast, multicast, greater N, less N, proto N,
  byte tests (tcp[13] = 18, ip[8] < 64, len > 100), and / or / not, ( ).
  It is compiled to classic BPF: live it runs in the kernel, on files
  in sockscope.

Analysis labels are Wireshark's (tcp.analysis.*): [TCP Retransmission],
  [TCP Fast Retransmission], [TCP Spurious Retransmission],
  [TCP Out-Of-Order], [TCP Previous segment not captured],
  [TCP ACKed unseen segment], [TCP Dup ACK FRAME#N], [TCP ZeroWindow],
  [TCP ZeroWindowProbe], [TCP Window Full], [TCP Window Update],
  [TCP Keep-Alive].

Exit status: 0 packets shown, 1 none, 2 bad usage, filter or file,
3 missing privilege (live capture needs CAP_NET_RAW),
4 output could not be written.";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = CAPTURE_EXAMPLES)]
pub struct CaptureArgs {
    /// Capture live on this interface, or on every interface with `any` (the default).
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "read"
    )]
    pub interface: Option<String>,
    /// Read packets from a pcap or pcapng file instead of capturing.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Write the shown packets to a pcapng file (with a comment naming each packet's processes).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Stop after COUNT packets have been shown.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Stop after SECS seconds (live capture).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Bytes kept of each packet (live capture).
    #[arg(
        short = 's',
        long = "snaplen",
        value_name = "SNAPLEN",
        default_value_t = 262_144
    )]
    pub snaplen: u32,
    /// Absolute TCP sequence numbers (default: relative to each side's ISN, as Wireshark).
    #[arg(short = 'S', long = "absolute-seq")]
    pub absolute: bool,
    /// Print the conversation table instead of packet lines.
    #[arg(long)]
    pub conv: bool,
    /// Print a flow diagram per conversation instead of packet lines.
    #[arg(long)]
    pub flow: bool,
    /// Write the flow diagrams as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    // --json: one document, {"packets":[...],"conversations":[...],
    // "summary":{...}}; --jsonl: one object per line, packets, then
    // conversations, then a summary.
    #[command(flatten)]
    pub out: out::OutputArgs,
    /// Follow at most N conversations at once; beyond it the least recently
    /// used one is dropped (counted and reported) and a later packet of it
    /// starts a new stream.
    #[arg(long, value_name = "N", default_value_t = sockscope_capture::analysis::DEFAULT_MAX_TRACKED)]
    pub max_tracked: usize,
    /// Print packet lines even with -w, --conv or --flow.
    #[arg(long)]
    pub print: bool,
    /// Print the frame number before each line.
    #[arg(long)]
    pub number: bool,
    /// Do not label packets with processes on live capture.
    #[arg(long)]
    pub no_procs: bool,
    /// Filter expression (tcpdump syntax), e.g. `tcp port 8080 and not host 10.0.0.1`.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

/// How long a shown packet may wait for the read of the socket table that
/// may name its process. The read takes a few ms on a quiet host, but a
/// second or more where one process holds hundreds of thousands of fds or
/// the CPUs are busy; the packet loop goes on meanwhile (only printing
/// waits), and HOLD_MAX_BYTES bounds what is held.
const HOLD_MAX: Duration = Duration::from_secs(2);
/// Held packets beyond this many bytes are printed without waiting.
const HOLD_MAX_BYTES: usize = 16 << 20;

/// A shown packet waiting for its process labels.
struct Held {
    frame: u64,
    link: u32,
    ts_ns: u64,
    wire_len: u32,
    data: Vec<u8>,
    p: decode::Packet,
    info: Info,
    idx: Option<usize>,
    sampled: Vec<(decode::Quoted, Option<u32>)>,
    since: Instant,
}

/// Everything a packet goes through once it is read.
struct Pipeline {
    /// The filter for frames read from files (live frames were filtered by
    /// the kernel, with the same program generator).
    filter: FileMatcher,
    reasm: Reassembler,
    analyzer: Analyzer,
    lines: Option<LineWriter>,
    /// --json / --jsonl: where the records go.
    records: Option<out::Records>,
    flows: Option<FlowCollector>,
    writer: Option<PcapngWriter<BufWriter<File>>>,
    labeller: Option<Labeller>,
    labeller_warned: bool,
    /// Shown packets waiting for a process-label read (live capture).
    held: VecDeque<Held>,
    held_bytes: usize,
    /// Process labels per conversation number (client side as `src`).
    conv_procs: HashMap<usize, Procs>,
    /// Conversations that had at least one shown packet (only kept when
    /// the analyzer keeps summaries).
    conv_shown: Vec<bool>,
    out: BufWriter<io::StdoutLock<'static>>,
    /// Conversation summaries are needed (table, JSON, diagrams).
    keep_convs: bool,
    /// Frames the filter drops need no analysis when the filter can pass
    /// no frame of their conversation (file input, packet lines only:
    /// stream numbers are not printed).
    prune: bool,
    frame: u64,
    summary: Summary,
    count: Option<u64>,
    snaplen: u32,
    ifname: Option<String>,
}

impl Pipeline {
    /// Handle one packet (analysed whatever `shown` says, printed only when
    /// it is true); false once `-c` is reached.
    fn packet(
        &mut self,
        link: u32,
        ts_ns: u64,
        wire_len: u32,
        data: &[u8],
        shown: bool,
    ) -> io::Result<bool> {
        self.frame += 1;
        self.summary.packets_seen += 1;
        let mut p = decode::decode(link, data, ts_ns, wire_len);
        self.reasm.process(&mut p, data);
        if !shown && self.prune && !self.filter.filter().may_show_conversation_of(&p) {
            // No shown packet's analysis depends on this one.
            return Ok(true);
        }
        let (info, idx) = self.analyzer.process(self.frame, &p);
        // Headers sampled by sFlow take stream numbers too (after the
        // datagram's own UDP), as in Wireshark.
        let sampled: Vec<_> = decode::sflow_sampled(&p, data)
            .into_iter()
            .map(|h| {
                let s = self.analyzer.number_seen(&h);
                (h, s)
            })
            .collect();
        if !shown {
            return Ok(true);
        }
        self.summary.packets_shown += 1;
        if p.malformed.is_some() {
            self.summary.malformed += 1;
        }
        let (procs, wait) = match &mut self.labeller {
            Some(l) => {
                let (pr, wait, err) = l.label(&p);
                if let Some(e) = err {
                    self.warn_labels(&e);
                }
                (Some(pr), wait)
            }
            None => (None, false),
        };
        if wait || !self.held.is_empty() {
            // A read of the socket table that may name this packet's
            // process is under way: hold the packet (and, to keep the
            // order, those after it) until it is done, at most HOLD_MAX.
            self.held_bytes += data.len();
            self.held.push_back(Held {
                frame: self.frame,
                link,
                ts_ns,
                wire_len,
                data: data.to_vec(),
                p,
                info,
                idx,
                sampled,
                since: Instant::now(),
            });
            self.release(false)?;
        } else {
            let frame = self.frame;
            self.emit(
                frame, link, ts_ns, wire_len, data, &p, &info, idx, &sampled, procs,
            )?;
        }
        Ok(self.count.is_none_or(|c| self.summary.packets_shown < c))
    }

    fn warn_labels(&mut self, e: &ProcsError) {
        if !self.labeller_warned {
            self.labeller_warned = true;
            eprintln!("sockscope: process labels unavailable: {e}");
        }
    }

    /// Print the held packets whose label read is done, that waited
    /// HOLD_MAX, or (with `all`) every one; in capture order.
    fn release(&mut self, all: bool) -> io::Result<()> {
        if let Some(e) = self.labeller.as_mut().and_then(|l| l.poll()) {
            self.warn_labels(&e);
        }
        while let Some(h) = self.held.front() {
            let over = self.held_bytes > HOLD_MAX_BYTES;
            let due = all
                || over
                || h.since.elapsed() >= HOLD_MAX
                || self.labeller.as_mut().is_none_or(|l| !l.waiting(&h.p));
            if !due {
                break;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= h.data.len();
            let procs = self.labeller.as_ref().map(|l| l.both_of(&h.p));
            self.emit(
                h.frame, h.link, h.ts_ns, h.wire_len, &h.data, &h.p, &h.info, h.idx, &h.sampled,
                procs,
            )?;
        }
        Ok(())
    }

    /// At the end of a live capture: give the held packets' label reads
    /// their remaining time (at most HOLD_MAX), then print them.
    fn release_all(&mut self) -> io::Result<()> {
        while !self.held.is_empty() {
            self.release(false)?;
            if !self.held.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }

    /// Record and print one shown packet with its labels.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        frame: u64,
        link: u32,
        ts_ns: u64,
        wire_len: u32,
        data: &[u8],
        p: &decode::Packet,
        info: &Info,
        idx: Option<usize>,
        sampled: &[(decode::Quoted, Option<u32>)],
        procs: Option<Procs>,
    ) -> io::Result<()> {
        if let Some(i) = idx {
            if self.keep_convs {
                if self.conv_shown.len() <= i {
                    self.conv_shown.resize(i + 1, false);
                }
                self.conv_shown[i] = true;
            }
            if let Some(pr) = procs.as_ref().filter(|p| self.keep_convs && !p.is_empty()) {
                let from_client = match info {
                    Info::Tcp(t) => t.from_client,
                    Info::Udp { from_client, .. } => *from_client,
                    Info::Seen { .. } | Info::None => true,
                };
                let (c, s) = if from_client {
                    (&pr.src, &pr.dst)
                } else {
                    (&pr.dst, &pr.src)
                };
                let slot = self.conv_procs.entry(i).or_default();
                if slot.src.is_none() {
                    slot.src.clone_from(c);
                }
                if slot.dst.is_none() {
                    slot.dst.clone_from(s);
                }
            }
            if let Some(f) = &mut self.flows {
                f.add(i, frame, p, info);
            }
        }
        if let Some(w) = &mut self.lines {
            w.write(&mut self.out, frame, p, info, procs.as_ref())?;
        }
        if let Some(r) = &mut self.records {
            let mut j = json::packet(frame, p, info, procs.as_ref());
            j.sampled = json::sampled(sampled);
            r.record(&mut self.out, &j)?;
        }
        if let Some(w) = &mut self.writer {
            let iface = w.interface(link, self.snaplen, self.ifname.as_deref())?;
            let comment = procs
                .as_ref()
                .filter(|p| !p.is_empty())
                .map(|p| p.describe());
            w.packet(iface, ts_ns, wire_len, data, comment.as_deref())?;
        }
        Ok(())
    }

    /// Conversations, flows and the summary, after the last packet.
    fn finish(&mut self, args: &CaptureArgs) -> io::Result<()> {
        let convs = self.analyzer.conversations();
        self.summary.tcp_conversations = u64::from(self.analyzer.tcp_streams());
        self.summary.udp_flows = u64::from(self.analyzer.udp_streams());
        let tracking = self.analyzer.tracking();
        self.summary.max_tracked = tracking.max_tracked as u64;
        self.summary.conversations_evicted = tracking.evicted;
        let r = self.reasm.stats();
        self.summary.reassembled = r.reassembled;
        self.summary.fragments_dropped = r.dropped;
        let shown: Vec<usize> = (0..convs.len())
            .filter(|&i| self.conv_shown.get(i).copied().unwrap_or(false))
            .collect();
        let procs_of = |i: usize| self.conv_procs.get(&i).cloned();
        if let Some(r) = &mut self.records {
            r.field_list(&mut self.out, "conversations")?;
            for &i in &shown {
                let pr = procs_of(i).unwrap_or_default();
                let j = json::conversation(&convs[i], pr.src.as_ref(), pr.dst.as_ref());
                r.record(&mut self.out, &j)?;
            }
            let mut s = self.summary.clone();
            s.kind = "summary";
            r.field(&mut self.out, "summary", &s)?;
            r.close(&mut self.out)?;
        }
        let structured = self.records.is_some();
        if args.conv && !structured {
            let list: Vec<_> = shown.iter().map(|&i| &convs[i]).collect();
            let lookup = |n: usize| shown.get(n).and_then(|&i| procs_of(i));
            let show_procs = shown
                .iter()
                .any(|&i| procs_of(i).is_some_and(|p| !p.is_empty()));
            conv::write_table(&mut self.out, &list, &lookup, show_procs)?;
        }
        if let Some(f) = &self.flows {
            if args.flow && !structured {
                if args.conv {
                    writeln!(self.out)?;
                }
                f.write_text(&mut self.out, convs, &procs_of)?;
            }
            if let Some(path) = &args.svg {
                let file = File::create(path)?;
                let mut w = BufWriter::new(file);
                f.write_svg(&mut w, convs, &procs_of)?;
                w.flush()?;
            }
        }
        if let Some(w) = &mut self.writer {
            w.flush()?;
        }
        self.out.flush()
    }
}

/// A file name for messages: escaped, and `-` as "standard input".
fn shown_path(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        return "standard input".into();
    }
    Escaped(&path.display().to_string()).to_string()
}

pub fn run(args: &CaptureArgs, cli: &Cli) -> Result<u8, Fail> {
    let filter = filter::parse(&args.filter).map_err(|e| Fail::usage(e.to_string()))?;
    if args.count == Some(0) {
        return Err(Fail::usage("--count must be at least 1"));
    }
    if args.snaplen == 0 {
        return Err(Fail::usage("--snaplen must be at least 1"));
    }
    if let Some(d) = args.duration
        && !(d > 0.0 && d.is_finite())
    {
        return Err(Fail::usage(
            "--duration must be a number of seconds above 0",
        ));
    }
    if args.max_tracked == 0 {
        return Err(Fail::usage("--max-tracked must be at least 1"));
    }
    let structured = args.out.structured();
    let keep_convs = structured || args.conv || args.flow || args.svg.is_some();
    let want_lines =
        !structured && (args.print || (!args.conv && !args.flow && args.write.is_none()));
    let mut pipe = Pipeline {
        filter: FileMatcher::new(filter),
        reasm: Reassembler::new(),
        analyzer: Analyzer::with_limits(keep_convs, args.max_tracked),
        lines: want_lines.then(|| {
            LineWriter::new(LineOptions {
                absolute: args.absolute,
                numbered: args.number,
            })
        }),
        records: structured.then(|| out::Records::new(args.out.format())),
        flows: (args.flow || args.svg.is_some()).then(FlowCollector::new),
        writer: None,
        labeller: None,
        labeller_warned: false,
        held: VecDeque::new(),
        held_bytes: 0,
        conv_procs: HashMap::new(),
        keep_convs,
        prune: args.read.is_some() && !keep_convs,
        conv_shown: Vec::new(),
        out: BufWriter::with_capacity(1 << 20, io::stdout().lock()),
        frame: 0,
        summary: Summary {
            kind: "summary",
            ..Summary::default()
        },
        count: args.count,
        snaplen: args.snaplen,
        ifname: None,
    };
    if let Some(path) = &args.write {
        let f = File::create(path)
            .map_err(|e| Fail::usage(format!("{}: cannot create: {e}", shown_path(path))))?;
        let w = PcapngWriter::new(BufWriter::with_capacity(1 << 20, f), "sockscope")
            .map_err(|e| Fail::system(format!("{}: {e}", shown_path(path))))?;
        pipe.writer = Some(w);
    }
    if let Some(r) = &mut pipe.records
        && let Err(e) = r.field_list(&mut pipe.out, "packets")
    {
        return out::ignore_broken_pipe(e);
    }
    let result = match &args.read {
        Some(path) => read_file(&mut pipe, path, cli),
        None => capture_live(&mut pipe, args, cli),
    };
    let (deferred, live_stats) = match result {
        Ok(x) => (None, x),
        Err(Stop::Fail(f)) => return Err(f),
        Err(Stop::Io(e)) => return out::ignore_broken_pipe(e),
        Err(Stop::Late(f)) => (Some(f), None),
    };
    if let Some(s) = live_stats {
        pipe.summary.dropped_by_kernel = Some(s.dropped);
        pipe.summary.received_by_filter = Some(s.received);
    }
    if let Err(e) = pipe.finish(args) {
        return out::ignore_broken_pipe(e);
    }
    if pipe.summary.conversations_evicted > 0 {
        eprintln!(
            "sockscope: {} conversations were dropped from the analysis to follow newer ones \
             (--max-tracked {}); a later packet of one of them started a new stream. \
             Raise --max-tracked to follow more at once.",
            pipe.summary.conversations_evicted, pipe.summary.max_tracked
        );
    }
    if let Some(s) = live_stats {
        eprintln!(
            "{} packets captured\n{} packets received by filter\n{} packets dropped by kernel",
            pipe.summary.packets_shown, s.received, s.dropped
        );
    }
    if let Some(f) = deferred {
        return Err(f);
    }
    Ok(if pipe.summary.packets_shown > 0 {
        FOUND
    } else {
        NOTHING
    })
}

enum Stop {
    /// Fail before anything useful was printed.
    Fail(Fail),
    /// Writing output failed.
    Io(io::Error),
    /// Fail after printing what could be read (a truncated file).
    Late(Fail),
}

fn read_file(
    pipe: &mut Pipeline,
    path: &std::path::Path,
    cli: &Cli,
) -> Result<Option<live::Stats>, Stop> {
    // `-r -` reads standard input, as tcpdump does.
    let src: Box<dyn io::Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(|e| {
            Stop::Fail(Fail::usage(format!(
                "{}: {e}",
                Escaped(&path.display().to_string())
            )))
        })?)
    };
    let mut r = Reader::new(src).map_err(|e| Stop::Fail(Fail::from(e).about(shown_path(path))))?;
    let mut warned_link = false;
    loop {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => return Err(Stop::Late(Fail::from(e).about(shown_path(path)))),
        };
        if !warned_link && !linktype::supported(rec.link) {
            warned_link = true;
            eprintln!(
                "sockscope: {}: link type {} is not decoded; its packets are shown as malformed",
                shown_path(path),
                rec.link
            );
        }
        if cli.verbose && pipe.frame == 0 {
            eprintln!(
                "reading from file {}, link-type {}",
                shown_path(path),
                linktype::name(rec.link)
            );
        }
        // Records Wireshark numbers as frames but that carry no packet.
        pipe.frame += rec.other_records_before;
        let (link, ts, wl) = (rec.link, rec.ts_ns, rec.wire_len);
        let data = rec.data;
        let shown = pipe
            .filter
            .matches(link, data, wl)
            .map_err(|e| Stop::Late(Fail::usage(e.to_string())))?;
        match pipe.packet(link, ts, wl, data, shown) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Stop::Io(e)),
        }
    }
    Ok(None)
}

fn capture_live(
    pipe: &mut Pipeline,
    args: &CaptureArgs,
    cli: &Cli,
) -> Result<Option<live::Stats>, Stop> {
    let opts = live::Options {
        interface: args.interface.clone().unwrap_or_else(|| "any".into()),
        snaplen: args.snaplen,
        ..live::Options::default()
    };
    let mut cap =
        Capture::open(&opts, pipe.filter.filter()).map_err(|e| Stop::Fail(Fail::from(e)))?;
    pipe.ifname = Some(opts.interface.clone());
    if !args.no_procs {
        let mut l = Labeller::new();
        match l.refresh() {
            Ok(()) => pipe.labeller = Some(l),
            Err(e) => eprintln!("sockscope: process labels unavailable: {e}"),
        }
    }
    let stop = crate::signals::install();
    if cli.verbose {
        eprintln!(
            "sockscope: listening on {}, link-type {}, snapshot length {} bytes",
            Escaped(&cap.interface),
            linktype::name(cap.link),
            cap.snaplen
        );
    }
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    // The kernel filter already selected the packets.
    let link = cap.link;
    let mut io_err = None;
    // Frames as they come; on each idle tick, the held packets whose
    // process-label read is done.
    let res = cap.run_ticks(stop, deadline, |fr| {
        let r = match fr {
            Some(fr) => pipe.packet(link, fr.ts_ns, fr.wire_len, fr.data, true),
            None => pipe.release(false).map(|()| true),
        };
        match r {
            Ok(more) => more,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    });
    if let Some(e) = io_err.or_else(|| pipe.release_all().err()) {
        return Err(Stop::Io(e));
    }
    res.map_err(|e| Stop::Fail(Fail::system(e.to_string())))?;
    Ok(Some(cap.stats()))
}

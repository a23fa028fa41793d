//! The command line definition. Help text, completions and the man page are
//! all generated from these types.

use clap::{Args, Parser, Subcommand, ValueEnum};

const LS_EXAMPLES: &str = "\
Examples:
  sockscope ls -tlnp                  TCP listeners, numeric, with processes
  sockscope ls -tanp                  every TCP socket and who owns it
  sockscope ls -tnp state established '( dport = :443 or sport = :8080 )'
  sockscope ls -xp 'src /run/*'       UNIX sockets under /run, and owners
  sockscope ls -ap comm = nginx       everything nginx holds
  sockscope ls -tan --all-netns       TCP sockets of every network namespace
  sockscope ls -tan --json | jq '.[] | select(.recv_q > 0)'

Reading the columns:
  For a LISTEN socket, Recv-Q is the accept queue (connections the kernel has
  completed that the application has not accept()ed yet) and Send-Q is the
  backlog given to listen(), capped by net.core.somaxconn. For other sockets
  they are bytes not yet read by the application / not yet acknowledged by
  the peer. '-' means the source could not say (/proc never shows a
  listener's backlog).

Filter (ss syntax; quote it when it has * or parentheses):
  state NAME | exclude NAME
      established syn-sent syn-recv fin-wait-1 fin-wait-2 time-wait closed
      close-wait last-ack listening closing;
      groups: all connected synchronized bucket big
  sport|dport OP :PORT
      OP: = != < > <= >= (or eq ne lt gt le ge); names work too (:http)
  src|dst ADDR[/PREFIX][:PORT]
      127.0.0.1, 10.0.0.0/8, [::1]:80, *:22; for UNIX, src PATH (glob *)
  pid|uid|inode OP N, comm = NAME
  combined with and, or, not and ( ).

Exit status: 0 sockets shown, 1 nothing matched, 2 bad usage or filter,
3 missing privilege or kernel feature, 4 output could not be written.";

/// The heading of the options every command takes, apart from each
/// command's own.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "sockscope",
    version,
    about = "What is the Linux kernel doing with my sockets?",
    long_about = "sockscope shows the kernel's socket tables (TCP, UDP, RAW, UNIX; IPv4 and IPv6; \
every network namespace) joined to the processes and file descriptors that own each socket.\n\n\
Start with `sockscope ls -tanp`.",
    propagate_version = true
)]
pub struct Cli {
    /// When to colour output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorChoice::Auto,
        help_heading = GLOBAL
    )]
    pub color: ColorChoice,
    /// Say on stderr which kernel interfaces were used and any fallbacks.
    #[arg(short = 'v', long, global = true, help_heading = GLOBAL)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List sockets: the kernel's socket table joined to processes (like ss, with owners that are fast and exact).
    #[command(after_help = LS_EXAMPLES)]
    Ls(LsArgs),
    /// The chain from a port (or inode, PID/FD, UNIX path) to the kernel's row, the inode, every fd and the process.
    Who(crate::cmd::who::WhoArgs),
    /// A process's fd table, decoded: sockets as protocol, state and endpoints; pipes, files and anon inodes named.
    Proc(crate::cmd::procfd::ProcArgs),
    /// Listening sockets: accept queue against backlog, half-open connections, children, reuseport groups, listen counters.
    Listeners(crate::cmd::listeners::ListenersArgs),
    /// Socket counts by protocol and state, top processes, socket memory, and the kernel's TCP settings explained.
    Stats(crate::cmd::stats::StatsArgs),
    /// A live timeline of what the kernel does to each connection (state changes, retransmits, resets, drops) and the socket syscalls of the process behind it.
    Trace(crate::cmd::trace::TraceArgs),
    /// A live view of connections, processes, listeners and namespaces with rates (bytes/s, retransmits/s, accepted/s, overflows/s).
    Top(crate::cmd::top::TopArgs),
    /// Capture packets or read a pcap, decode TCP and follow conversations as Wireshark does, labelled with the owning process.
    Capture(crate::cmd::capture::CaptureArgs),
    /// A web server built from raw socket syscalls, and scripted experiments that make the kernel show its behaviour.
    Lab(crate::cmd::lab::LabArgs),
    /// Serve socket health as Prometheus metrics: listener queues, socket counts, the kernel's TCP counters, per process and container.
    Export(crate::cmd::export::ExportArgs),
    /// Print a shell completion script to stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Show a man page: on a terminal through `man -l -` (and $MANPAGER/$PAGER); into a pipe or file, its roff source.
    Man {
        /// The subcommand whose page to print (default: sockscope itself).
        subcommand: Option<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// TCP sockets.
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// UDP sockets.
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// RAW sockets.
    #[arg(short = 'w', long)]
    pub raw: bool,
    /// UNIX domain sockets.
    #[arg(short = 'x', long)]
    pub unix: bool,
    /// UDP-Lite sockets.
    #[arg(long)]
    pub udplite: bool,
    /// IPv4 only.
    #[arg(short = '4', long)]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Listening sockets only (LISTEN, and unconnected datagram sockets).
    #[arg(short = 'l', long, conflicts_with = "all")]
    pub listening: bool,
    /// Sockets in every state (default: all but LISTEN, UNCONN, TIME-WAIT, SYN-RECV, as ss).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Numeric ports; without it well-known ports are named from /etc/services.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Show the processes (command, pid, fd) that hold each socket.
    #[arg(short = 'p', long)]
    pub processes: bool,
    /// Extended: uid, inode, socket cookie, cgroup id.
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// Timers: kind, time to expiry, retransmits (ss -o).
    #[arg(short = 'o', long)]
    pub options: bool,
    /// TCP internals under each socket: rtt, rto, cwnd, ssthresh, mss, retransmits, bytes, rates, congestion algorithm (ss -i).
    #[arg(short = 'i', long)]
    pub info: bool,
    /// Socket memory under each socket (ss -m): skmem:(r,rb,t,tb,f,w,o,bl,d).
    #[arg(short = 'm', long)]
    pub memory: bool,
    /// Sort rows by: proto, state, local, peer, port, recv-q, send-q (largest first), pid, inode (default: the kernel's order, as ss, written as the kernel hands the rows over; a table's column widths are then measured on its first 4096 rows, and sorting holds the whole table in memory first).
    #[arg(long, value_name = "KEY", value_parser = parse_sort)]
    pub sort: Option<sockscope::query::sort::SortKey>,
    /// Do not print the header line.
    #[arg(short = 'H', long)]
    pub no_header: bool,
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
    #[command(flatten)]
    pub ns: NetnsArgs,
    /// Kernel interface to read: auto (netlink, /proc where netlink lacks a protocol), netlink, proc, bpf (TCP and UDP from BPF iterators where they load, else as auto). `-v` names the one used.
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,
    /// Filter expression (ss syntax), e.g. `state established dport = :443`. Options may come before or after it.
    #[arg(value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Source {
    #[default]
    Auto,
    Netlink,
    Proc,
    Bpf,
}

fn parse_sort(s: &str) -> Result<sockscope::query::sort::SortKey, String> {
    use sockscope::query::sort::SortKey;
    SortKey::parse(s).ok_or_else(|| {
        format!(
            "unknown sort key '{s}'; use one of: {}",
            SortKey::NAMES.join(", ")
        )
    })
}

/// Which network namespace(s) a command reads. Shared by every command that
/// looks at sockets.
#[derive(Args, Debug, Clone, Default)]
pub struct NetnsArgs {
    /// Read the network namespace /run/netns/NAME (as made by `ip netns add`).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["netns_pid", "all_netns"])]
    pub netns: Option<String>,
    /// Read the network namespace of process PID.
    #[arg(long, value_name = "PID", conflicts_with = "all_netns")]
    pub netns_pid: Option<u32>,
    /// Read every network namespace reachable from /proc/*/ns/net and /run/netns; rows are labelled.
    #[arg(long)]
    pub all_netns: bool,
}

impl NetnsArgs {
    pub fn target(&self) -> sockscope::source::netns::NetnsTarget {
        use sockscope::source::netns::NetnsTarget;
        if let Some(n) = &self.netns {
            NetnsTarget::Named(n.clone())
        } else if let Some(p) = self.netns_pid {
            NetnsTarget::Pid(p)
        } else if self.all_netns {
            NetnsTarget::All
        } else {
            NetnsTarget::Current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, subcommands included.
    fn all(c: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(c.clone());
        for s in c.get_subcommands() {
            all(s, out);
        }
    }

    /// clap wraps help text at the terminal's width (100 columns when not
    /// a terminal): an example line longer than a terminal would be broken
    /// in two, its tail landing under the commands. Keep every line of the
    /// examples and notes below the options within 79 columns.
    #[test]
    fn after_help_lines_fit_an_80_column_terminal() {
        let mut cmds = Vec::new();
        all(&Cli::command(), &mut cmds);
        let mut long = Vec::new();
        for c in &cmds {
            for text in [c.get_after_help(), c.get_after_long_help()]
                .into_iter()
                .flatten()
            {
                for l in text.to_string().lines() {
                    if l.chars().count() > 79 {
                        long.push(format!("{}: {l}", c.get_name()));
                    }
                }
            }
        }
        assert!(
            long.is_empty(),
            "lines over 79 columns:\n{}",
            long.join("\n")
        );
    }

    /// Global options are listed apart from each command's own.
    #[test]
    fn global_options_have_their_own_heading() {
        let mut c = Cli::command();
        c.build();
        let ls = c.find_subcommand("ls").expect("ls");
        for name in ["color", "verbose"] {
            let a = ls
                .get_arguments()
                .find(|a| a.get_id() == name)
                .unwrap_or_else(|| panic!("--{name} in ls"));
            assert_eq!(a.get_help_heading(), Some(GLOBAL), "--{name}");
        }
    }

    /// Every command that prints JSON takes --json and --jsonl from the one
    /// `OutputArgs` (same help, same meaning), and no command declares its
    /// own.
    #[test]
    fn every_json_output_is_the_shared_one() {
        let mut cmds = Vec::new();
        let mut root = Cli::command();
        root.build();
        all(&root, &mut cmds);
        let shared = clap::Command::new("x").args(
            <crate::out::OutputArgs as clap::Args>::augment_args(clap::Command::new("y"))
                .get_arguments()
                .cloned()
                .collect::<Vec<_>>(),
        );
        let help = |c: &clap::Command, id: &str| {
            c.get_arguments()
                .find(|a| a.get_id() == id)
                .map(|a| a.get_help().map(|h| h.to_string()))
        };
        let mut with_json = Vec::new();
        for c in &cmds {
            let json = help(c, "json");
            let jsonl = help(c, "jsonl");
            if json.is_none() && jsonl.is_none() {
                continue;
            }
            with_json.push(c.get_name().to_string());
            assert_eq!(json, help(&shared, "json"), "--json of {}", c.get_name());
            assert_eq!(jsonl, help(&shared, "jsonl"), "--jsonl of {}", c.get_name());
        }
        for name in [
            "ls",
            "who",
            "proc",
            "listeners",
            "stats",
            "trace",
            "top",
            "capture",
            "export",
            "list",
            "run",
        ] {
            assert!(with_json.iter().any(|n| n == name), "{name} has no --json");
        }
    }
}

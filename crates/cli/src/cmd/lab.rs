//! `sockscope lab`: the raw-syscall web server (`serve`) and the kernel
//! experiments (`list`, `run`). The work is in the sockscope-lab crate; this
//! module parses arguments, prints and maps results to exit codes.

use crate::cli::Cli;
use crate::{FOUND, Fail, out};
use sockscope::view::escape::EscapedBytes;
use sockscope_lab::serve::{self, Model};
use sockscope_lab::{report, scenario};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

const LAB_EXAMPLES: &str = "\
Examples:
  sockscope lab serve fork --root ./site
      the classic fork-per-connection server
  sockscope lab serve reuseport 4 --addr 0.0.0.0:8080
  sockscope lab serve single --trace-syscalls
      every syscall it makes, with arguments and results
  sockscope lab serve epoll --pause-accept --backlog 4
      listen but never accept: watch the accept queue fill
  sockscope lab list
  sockscope lab run backlog      a full accept queue, checked
  sockscope lab run syn-queue --json";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = LAB_EXAMPLES)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum LabCommand {
    /// Serve files over HTTP/1.1 with a server written on the socket syscalls.
    Serve(ServeArgs),
    /// List the scenarios `lab run` knows.
    List(ListArgs),
    /// Build a situation in a private network namespace, show what the kernel holds, check it.
    Run(RunArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelName {
    /// One process, one connection at a time.
    Single,
    /// A child process per connection (the classic fork-per-connection server).
    Fork,
    /// N processes sharing one listening socket, each an epoll loop.
    Prefork,
    /// N processes, each with its own SO_REUSEPORT listening socket.
    Reuseport,
    /// One process, nonblocking sockets, one epoll loop.
    Epoll,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Process model.
    #[arg(value_enum, default_value = "fork")]
    pub model: ModelName,
    /// Worker processes for prefork and reuseport (default: the number of CPUs).
    #[arg(value_name = "N")]
    pub workers: Option<usize>,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// listen(2) backlog: the accept queue holds backlog+1 connections (capped by net.core.somaxconn).
    #[arg(long, default_value_t = 511)]
    pub backlog: i32,
    /// Directory to serve (default: the current directory).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Listen but never accept, to watch the accept queue fill (`sockscope ls -tl`).
    #[arg(long)]
    pub pause_accept: bool,
    /// Print every syscall the server makes, with arguments, result and pid.
    #[arg(long)]
    pub trace_syscalls: bool,
    /// Seconds a client has to send a whole request, head and body (and an idle keep-alive connection is kept).
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub header_timeout: f64,
    /// Seconds a response may make no progress (the client reads nothing) before the connection is cut.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub send_timeout: f64,
    /// On SIGTERM, seconds the requests in flight have to finish before their connections are cut.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub grace: f64,
    /// Connections served at once per process (children at once for fork); more are answered 503.
    #[arg(long, default_value_t = 1024)]
    pub max_conns: usize,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The scenario (see `sockscope lab list`).
    pub scenario: String,
    #[command(flatten)]
    pub out: crate::out::OutputArgs,
}

pub fn run(args: &LabArgs, cli: &Cli) -> Result<u8, Fail> {
    match &args.command {
        LabCommand::Serve(a) => run_serve(a),
        LabCommand::List(a) => run_list(a),
        LabCommand::Run(a) => run_scenario(a, cli),
    }
}

fn model(a: &ServeArgs) -> Result<Model, Fail> {
    let n = a.workers;
    let cpus = || std::thread::available_parallelism().map_or(2, |n| n.get());
    let none = |m: Model| match n {
        Some(_) => Err(Fail::usage(format!(
            "the {} model takes no worker count (only prefork and reuseport do)",
            m.name()
        ))),
        None => Ok(m),
    };
    match a.model {
        ModelName::Single => none(Model::Single),
        ModelName::Fork => none(Model::Fork),
        ModelName::Epoll => none(Model::Epoll),
        ModelName::Prefork => Ok(Model::Prefork(n.unwrap_or_else(cpus))),
        ModelName::Reuseport => Ok(Model::Reuseport(n.unwrap_or_else(cpus))),
    }
}

/// A timeout option: seconds, above 0 and at most an hour.
fn secs(name: &str, v: f64) -> Result<Duration, Fail> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Fail::usage(format!(
            "{name} must be a number of seconds, above 0 and at most 3600"
        )))
    }
}

fn run_serve(a: &ServeArgs) -> Result<u8, Fail> {
    let header_timeout = secs("--header-timeout", a.header_timeout)?;
    let send_timeout = secs("--send-timeout", a.send_timeout)?;
    let grace = secs("--grace", a.grace)?;
    let cfg = serve::Config {
        model: model(a)?,
        addr: a.addr,
        backlog: a.backlog,
        root: a.root.clone(),
        pause_accept: a.pause_accept,
        trace: a.trace_syscalls,
        header_timeout,
        send_timeout,
        grace,
        max_conns: a.max_conns,
    };
    let name = cfg.model.name();
    let r = serve::serve(&cfg, |ready| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "sockscope lab serve: {name} model, pid {}, serving {} on http://{}/ (backlog {}{})",
            ready.pid,
            EscapedBytes(ready.root.as_os_str().as_bytes()),
            ready.addr,
            cfg.backlog,
            if cfg.pause_accept {
                ", never accepting"
            } else {
                ""
            }
        );
        let _ = out.flush();
    });
    r.map(|()| FOUND).map_err(Fail::from)
}

fn run_list(a: &ListArgs) -> Result<u8, Fail> {
    let mut out = std::io::stdout().lock();
    let r = if a.out.structured() {
        let v: Vec<_> = scenario::SCENARIOS
            .iter()
            .map(|s| serde_json::json!({"name": s.name, "summary": s.summary}))
            .collect();
        out::list(&mut out, a.out.format(), &v)
    } else {
        scenario::SCENARIOS
            .iter()
            .try_for_each(|s| writeln!(out, "{:<12} {}", s.name, s.summary))
            .and_then(|_| {
                writeln!(
                    out,
                    "\nRun one with `sockscope lab run NAME` (root: it makes a private network namespace)."
                )
            })
    };
    r.and_then(|_| out.flush())
        .map(|_| FOUND)
        .or_else(out::ignore_broken_pipe)
}

/// Exit status when the kernel disagreed with a scenario's expectations.
const DISAGREED: u8 = 1;

fn run_scenario(a: &RunArgs, _cli: &Cli) -> Result<u8, Fail> {
    let Some(info) = scenario::find(&a.scenario) else {
        let names: Vec<_> = scenario::SCENARIOS.iter().map(|s| s.name).collect();
        return Err(Fail::usage(format!(
            "no scenario named '{}'; there are: {}",
            a.scenario,
            names.join(", ")
        )));
    };
    let format = a.out.format();
    let json = a.out.structured();
    // The header waits for the first step, so that a run that cannot even
    // create its namespace prints only the error.
    let mut started = false;
    let mut sink = |s: &report::Step| {
        if !json {
            let mut out = std::io::stdout().lock();
            if !started {
                started = true;
                let _ = report::write_header(&mut out, info.name, info.summary);
            }
            let _ = report::write_step(&mut out, s);
            let _ = out.flush();
        }
    };
    // Ctrl-C (or SIGTERM) during a run waits until the run has cleaned up
    // (its namespace, nftables table, temporary socket file, child
    // processes) and its output is written: a few seconds at most. The
    // signal stays pending and takes effect when the mask is restored.
    crate::signals::deferred(|| finish_run(info.name, format, &mut sink))
}

fn finish_run(
    name: &str,
    format: out::Format,
    sink: &mut (dyn FnMut(&report::Step) + Send),
) -> Result<u8, Fail> {
    let r = scenario::run(name, sink).map_err(Fail::from)?;
    let mut out = std::io::stdout().lock();
    let written = if format != out::Format::Text {
        out::document(&mut out, format, &r, false)
    } else {
        report::write_summary(&mut out, &r)
    };
    let code = if r.ok { FOUND } else { DISAGREED };
    written
        .and_then(|_| out.flush())
        .map(|_| code)
        .or_else(out::ignore_broken_pipe)
}

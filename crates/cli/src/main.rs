//! The `sockscope` binary: parses arguments, runs a command, maps errors to
//! exit codes. Commands only compose library pieces.

// Unsafe code is fenced in sys.rs (libc calls nothing safe wraps).
#![deny(unsafe_code)]

mod cli;
mod cmd;
mod out;
mod signals;
mod sys;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// Why a command failed: the one error type of the binary. Each variant
/// carries the whole message (the problem and its fix); [`Fail::code`] is
/// the one place where a failure becomes an exit status. Errors of the
/// library crates come in through [`From`], by their
/// [`Kind`](sockscope::error::Kind).
#[derive(Debug)]
pub enum Fail {
    /// Bad usage: another argument fixes it.
    Usage(String),
    /// Input that cannot be read as what it should be.
    Input(String),
    /// A capability or root is needed.
    Privilege(String),
    /// The running kernel lacks a feature.
    KernelFeature(String),
    /// The system refused or failed at something else.
    System(String),
    /// The output could not be written ([`out::OUTPUT_FAILED`]).
    Output(String),
}

impl Fail {
    /// The exit status (README "Exit status"; the man page): 2 bad usage or
    /// input, 3 a missing privilege or kernel feature (or another system
    /// failure: the fix is on the system's side), 4 output not written.
    pub fn code(&self) -> u8 {
        match self {
            Fail::Usage(_) | Fail::Input(_) => 2,
            Fail::Privilege(_) | Fail::KernelFeature(_) | Fail::System(_) => 3,
            Fail::Output(_) => out::OUTPUT_FAILED,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fail::Usage(m)
            | Fail::Input(m)
            | Fail::Privilege(m)
            | Fail::KernelFeature(m)
            | Fail::System(m)
            | Fail::Output(m) => m,
        }
    }

    /// Bad usage or input: exit 2.
    pub fn usage(m: impl Into<String>) -> Fail {
        Fail::Usage(m.into())
    }
    /// Missing privilege: exit 3.
    pub fn privilege(m: impl Into<String>) -> Fail {
        Fail::Privilege(m.into())
    }
    /// Anything else that went wrong on the system's side: exit 3 too.
    pub fn system(m: impl Into<String>) -> Fail {
        Fail::System(m.into())
    }

    /// A failure of this kind with this message.
    pub fn of(kind: sockscope::error::Kind, message: String) -> Fail {
        use sockscope::error::Kind;
        match kind {
            Kind::Usage => Fail::Usage(message),
            Kind::Input => Fail::Input(message),
            Kind::Privilege => Fail::Privilege(message),
            Kind::KernelFeature => Fail::KernelFeature(message),
            Kind::System => Fail::System(message),
        }
    }

    /// A bare I/O error while doing `what`: its kind, and the general fix
    /// since an I/O error names none.
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Fail {
        let kind = sockscope::error::Kind::of_io(e);
        Fail::of(kind, format!("{what}: {e}; {}", kind.remedy()))
    }

    /// The same failure, its message prefixed with what it was about (a
    /// file name).
    pub fn about(self, what: impl std::fmt::Display) -> Fail {
        let m = format!("{what}: {}", self.message());
        match self {
            Fail::Usage(_) => Fail::Usage(m),
            Fail::Input(_) => Fail::Input(m),
            Fail::Privilege(_) => Fail::Privilege(m),
            Fail::KernelFeature(_) => Fail::KernelFeature(m),
            Fail::System(_) => Fail::System(m),
            Fail::Output(_) => Fail::Output(m),
        }
    }
}

impl<E: sockscope::error::Classify> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail::of(e.kind(), e.to_string())
    }
}

/// Exit codes (README) of a command that ran: 0 found, 1 nothing matched
/// (failures: [`Fail::code`]).
pub const FOUND: u8 = 0;
pub const NOTHING: u8 = 1;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        // Usage errors go to stderr (exit 2); --help and --version are
        // output like any other, written through the same path.
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let text = e.render();
            let text = if out::use_color(cli::ColorChoice::Auto) {
                text.ansi().to_string()
            } else {
                text.to_string()
            };
            return exit(out::print(text.as_bytes()));
        }
    };
    let result = match &args.command {
        cli::Command::Ls(ls) => cmd::ls::run(ls, &args),
        cli::Command::Who(a) => cmd::who::run(a, &args),
        cli::Command::Proc(a) => cmd::procfd::run(a, &args),
        cli::Command::Listeners(a) => cmd::listeners::run(a, &args),
        cli::Command::Stats(a) => cmd::stats::run(a, &args),
        cli::Command::Trace(a) => cmd::trace::run(a, &args),
        cli::Command::Top(a) => cmd::top::run(a, &args),
        cli::Command::Capture(a) => cmd::capture::run(a, &args),
        cli::Command::Lab(a) => cmd::lab::run(a, &args),
        cli::Command::Export(a) => cmd::export::run(a, &args),
        cli::Command::Completions { shell } => {
            // Generated into memory (clap_complete panics on a write
            // error), then written like any output.
            let mut c = cli::Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut c, "sockscope", &mut script);
            out::print(&script)
        }
        cli::Command::Man { subcommand } => cmd::man(subcommand.as_deref()),
    };
    exit(result)
}

/// The exit status of a command's result; errors are said on stderr.
fn exit(result: Result<u8, Fail>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("sockscope: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

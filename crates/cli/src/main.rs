//! The `sockscope` binary: parses arguments, runs a command, maps errors to
//! exit codes. Commands only compose library pieces.

mod cli;
mod cmd;
mod out;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// An error that ends the program with a given exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    /// Bad usage or input: exit 2.
    pub fn usage(m: impl Into<String>) -> Fail {
        Fail {
            code: 2,
            message: m.into(),
        }
    }
    /// Missing privilege or kernel feature: exit 3.
    pub fn privilege(m: impl Into<String>) -> Fail {
        Fail {
            code: 3,
            message: m.into(),
        }
    }
    /// Anything else that went wrong while reading the kernel: exit 3 too,
    /// since the fix is on the system side.
    pub fn system(m: impl Into<String>) -> Fail {
        Fail {
            code: 3,
            message: m.into(),
        }
    }
}

/// Exit codes (README): 0 found, 1 nothing matched (2 usage, 3 privilege
/// or kernel feature: [`Fail`]; 4 output not written: [`out::OUTPUT_FAILED`]).
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
            eprintln!("sockscope: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

//! Output plumbing: colour decision, and the one path by which every
//! command's output reaches stdout and its write errors become an exit
//! status.
//!
//! Every command writes through [`stdout`] (or hands finished bytes to
//! [`print`]) and passes the result of its writes to [`done`] /
//! [`ignore_broken_pipe`]. A reader that went away (`| head`: EPIPE) is not
//! an error: quiet exit 0. Any other failure to write (a full disk,
//! `> /dev/full`, an I/O error) is exit 4 with a message on stderr, so
//! that a script never mistakes lost output for a result (exit 3 is kept
//! for a missing privilege or kernel feature).

use crate::cli::ColorChoice;
use crate::{FOUND, Fail};
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

/// Output could not be written: exit 4 (README).
pub const OUTPUT_FAILED: u8 = 4;

/// Colour only on a terminal, and never when NO_COLOR is set (non-empty).
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Buffered stdout for a command's output; pass what writing it returned
/// to [`done`].
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// The error for output that could not be written (not a closed pipe).
pub fn write_failed(e: &io::Error) -> Fail {
    Fail {
        code: OUTPUT_FAILED,
        message: format!(
            "could not write the output: {e}; check where standard output goes (a full disk, /dev/full, a closed terminal)"
        ),
    }
}

/// A write error as an exit status: a reader of our output that went away
/// (`| head`) is a quiet exit 0, anything else exit 4.
pub fn ignore_broken_pipe(e: io::Error) -> Result<u8, Fail> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(FOUND)
    } else {
        Err(write_failed(&e))
    }
}

/// Flush `w` after the writes that gave `written`, and turn the outcome
/// into the command's exit status (`code` when everything was written).
pub fn done(written: io::Result<()>, w: &mut impl Write, code: u8) -> Result<u8, Fail> {
    written
        .and_then(|_| w.flush())
        .map(|_| code)
        .or_else(ignore_broken_pipe)
}

/// Write finished bytes (help, completions, a man page) to stdout.
pub fn print(bytes: &[u8]) -> Result<u8, Fail> {
    let mut w = io::stdout().lock();
    let r = w.write_all(bytes);
    done(r, &mut w, FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_pipe_is_quiet_success_other_errors_exit_4() {
        assert_eq!(
            ignore_broken_pipe(io::Error::from(io::ErrorKind::BrokenPipe)).unwrap(),
            FOUND
        );
        let f = ignore_broken_pipe(io::Error::from_raw_os_error(libc::ENOSPC)).unwrap_err();
        assert_eq!(f.code, 4);
        assert!(
            f.message.contains("could not write the output"),
            "{}",
            f.message
        );
    }
}

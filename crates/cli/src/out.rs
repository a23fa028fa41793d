//! Output plumbing: colour decision, buffered stdout, broken pipes.

use crate::cli::ColorChoice;
use crate::{FOUND, Fail};
use std::io::IsTerminal;

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

/// A reader of our output that went away (`| head`) is not an error.
pub fn ignore_broken_pipe(e: std::io::Error) -> Result<u8, Fail> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(FOUND)
    } else {
        Err(Fail::system(format!("writing output: {e}")))
    }
}

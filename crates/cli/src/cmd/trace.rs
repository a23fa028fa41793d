//! `sockscope trace` (being written).

use crate::Fail;
use crate::cli::Cli;

#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {}

pub fn run(_args: &TraceArgs, _cli: &Cli) -> Result<u8, Fail> {
    Err(Fail::system("sockscope trace is not built yet"))
}

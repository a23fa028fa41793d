//! `sockscope capture` (being written).

use crate::Fail;
use crate::cli::Cli;

#[derive(clap::Args, Debug, Clone)]
pub struct CaptureArgs {}

pub fn run(_args: &CaptureArgs, _cli: &Cli) -> Result<u8, Fail> {
    Err(Fail::system("sockscope capture is not built yet"))
}

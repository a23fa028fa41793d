//! `sockscope lab` (being written).

use crate::Fail;
use crate::cli::Cli;

#[derive(clap::Args, Debug, Clone)]
pub struct LabArgs {}

pub fn run(_args: &LabArgs, _cli: &Cli) -> Result<u8, Fail> {
    Err(Fail::system("sockscope lab is not built yet"))
}

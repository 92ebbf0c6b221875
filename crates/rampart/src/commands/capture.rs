//! `rampart capture`: record the enriched event stream (JSON lines) for
//! `rampart replay`.

use super::{RuntimeArgs, SelectArgs};
use agent::output::{EventPrinter, Format};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CaptureArgs {
    /// File to write (JSON lines, one enriched event each).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub async fn capture(args: CaptureArgs) -> Result<()> {
    // Events carry command lines and paths of the containers: owner-only.
    let file = super::files::create_private(&args.output)
        .with_context(|| format!("creating capture file {}", args.output.display()))?;
    let mut printer = EventPrinter::new(file, Format::Json);
    super::stream_selected(&args.select, &args.runtime, &mut printer).await
}

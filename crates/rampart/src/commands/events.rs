//! `rampart events`: stream, live, what processes in containers do.

use super::{RuntimeArgs, SelectArgs};
use agent::output::{EventPrinter, Format};
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct EventsArgs {
    /// Print JSON lines instead of readable text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub async fn events(args: EventsArgs) -> Result<()> {
    let format = if args.json { Format::Json } else { Format::Human };
    let mut printer = EventPrinter::new(std::io::stdout().lock(), format);
    super::stream_selected(&args.select, &args.runtime, &mut printer).await
}

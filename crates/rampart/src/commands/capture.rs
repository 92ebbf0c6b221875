//! `rampart capture`: record the enriched event stream (JSON lines, or the
//! binary form of `model::capture`) for `rampart replay`.

use super::{RuntimeArgs, SelectArgs};
use agent::output::{EventPrinter, Format};
use agent::pipeline::Consumer;
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct CaptureArgs {
    /// File to write (JSON lines, one enriched event each).
    #[arg(short, long)]
    output: PathBuf,
    /// Write the binary form instead of JSON lines: each container and
    /// process once, events by reference; `replay` reads it about five
    /// times faster (and reads both).
    #[arg(long)]
    binary: bool,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub async fn capture(args: CaptureArgs) -> Result<()> {
    // Events carry command lines and paths of the containers: owner-only.
    let file = super::files::create_private(&args.output)
        .with_context(|| format!("creating capture file {}", args.output.display()))?;
    if args.binary {
        let out = std::io::BufWriter::with_capacity(1 << 16, file);
        let mut writer = BinaryCapture(model::capture::Writer::new(out)?);
        return super::stream_selected(&args.select, &args.runtime, &mut writer).await;
    }
    let mut printer = EventPrinter::new(file, Format::Json);
    super::stream_selected(&args.select, &args.runtime, &mut printer).await
}

struct BinaryCapture<W: Write>(model::capture::Writer<W>);

impl<W: Write> Consumer for BinaryCapture<W> {
    fn event(&mut self, ev: &model::Event, _: &state::ProcessTable) -> std::io::Result<()> {
        self.0.write(ev)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

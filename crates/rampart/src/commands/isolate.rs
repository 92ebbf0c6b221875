//! `rampart isolate`: cut a container off the network in the kernel
//! (established connections too), keeping it running; `--release` undoes it.
//! Stored like a network policy, so it follows the container across restarts.

use super::netpolicy::{describe, StoreArgs};
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct IsolateArgs {
    /// The container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: String,
    /// Undo the isolation.
    #[arg(long)]
    release: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn isolate(args: IsolateArgs) -> Result<()> {
    let e = args.store.store().isolate(&args.container, !args.release).await?;
    println!("{}", describe(&e));
    Ok(())
}

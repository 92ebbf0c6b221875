//! `rampart freeze` and `rampart unfreeze` (one pair, one set of options):
//! stop or resume every process of a container with the cgroup freezer or the
//! runtime's pause.

use anyhow::{bail, Context, Result};
use clap::Args;
use respond::freezer::{self, FreezeOptions, Mechanism};
use respond::Target;
use std::time::Duration;

#[derive(Args)]
pub struct FreezeArgs {
    /// The container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: String,
    /// cgroup-v2, cgroup-v1 or runtime (default: the first that works, in
    /// that order).
    #[arg(long, value_name = "MECHANISM")]
    mechanism: Option<Mechanism>,
    /// Seconds to wait for the kernel to report the container frozen.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    #[command(flatten)]
    runtime: super::RuntimeArgs,
}

impl FreezeArgs {
    fn options(&self) -> FreezeOptions {
        FreezeOptions {
            mechanism: self.mechanism,
            timeout: Duration::from_secs(self.timeout.max(1)),
            docker_socket: self.runtime.docker_socket.clone(),
        }
    }
}

/// The running container `container` names, in any configured runtime.
async fn target(container: &str, runtimes: &super::RuntimeArgs) -> Result<Target> {
    let t = Target::resolve(&runtime::Runtimes::from_endpoints(&runtimes.endpoints()), container).await?;
    if !t.running() {
        bail!("container {} is not running", t.label());
    }
    Ok(t)
}

pub async fn freeze(args: FreezeArgs) -> Result<()> {
    let t = target(&args.container, &args.runtime).await?;
    let m = freezer::freeze(&t, &args.options()).await.with_context(|| format!("freezing {}", t.label()))?;
    println!("{}: frozen with the {}", t.label(), m.describe());
    Ok(())
}

pub async fn unfreeze(args: FreezeArgs) -> Result<()> {
    let t = target(&args.container, &args.runtime).await?;
    let done = freezer::thaw(&t, &args.options()).await.with_context(|| format!("thawing {}", t.label()))?;
    if done.is_empty() {
        println!("{}: was not frozen", t.label());
    } else {
        let how: Vec<&str> = done.iter().map(|m| m.describe()).collect();
        println!("{}: thawed ({})", t.label(), how.join(", "));
    }
    Ok(())
}

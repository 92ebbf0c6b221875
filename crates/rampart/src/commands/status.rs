//! `rampart status`: check this process's privileges, load the sensor and
//! report kernel features, hooks, runtimes and the features the privileges
//! leave off (run it where the agent runs, e.g. `docker exec` into its
//! container, to see what the agent has).

use super::RuntimeArgs;
use agent::pipeline;
use agent::privileges::Privileges;
use anyhow::Result;
use clap::Args;
use sensor::{HookState, SensorConfig};

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let privileges = Privileges::probe();
    if let Some(e) = privileges.core_error() {
        print_privileges(&privileges);
        anyhow::bail!(e);
    }
    let (containers, _watchers) = args.runtime.registry();
    let mut sensor = pipeline::SensorThread::start(SensorConfig::default()).await?;
    // Give the runtime clients up to 3 s to connect before reporting their health.
    for _ in 0..30 {
        if containers.status().runtimes.iter().all(|r| r.connected) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let runtimes = containers.status();
    sensor.stop().await;
    if args.json {
        let v = serde_json::json!({
            "sensor": sensor.status,
            "runtimes": runtimes,
            "privileges": privileges,
            "features_off": privileges.disabled(),
            "prevention": respond::notify::mechanisms(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_privileges(&privileges);
    println!("kernel features:");
    for f in &sensor.status.features {
        println!("  {:<28} {:<4} {}", f.name, if f.available { "yes" } else { "no" }, f.detail);
    }
    let attached = sensor.status.hooks.iter().filter(|h| matches!(h.state, HookState::Attached)).count();
    println!("prevention mechanisms:");
    for m in respond::notify::mechanisms() {
        println!("  {:<28} {:<4} {}", m.name, if m.available { "yes" } else { "no" }, m.detail);
    }
    println!("hooks: {attached}/{} attached", sensor.status.hooks.len());
    for h in &sensor.status.hooks {
        match &h.state {
            HookState::Attached => println!("  {:<52} attached", h.hook),
            HookState::Failed { reason } => println!("  {:<52} FAILED: {reason}", h.hook),
            HookState::Skipped { reason } => println!("  {:<52} skipped: {reason}", h.hook),
        }
    }
    println!("runtimes:");
    for r in &runtimes.runtimes {
        let health = if r.connected { "connected" } else { "unreachable" };
        let detail = r.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
        println!("  {:<15} {:<12} {:<36} {} containers{detail}", r.name, health, r.endpoint, r.containers);
    }
    Ok(())
}

fn print_privileges(p: &Privileges) {
    println!("privileges: (CapEff {:016x})", p.cap_eff);
    for n in &p.needs {
        let state = if n.met { "ok" } else { "MISSING" };
        println!("  {:<48} {:<7} {:<16} {}", n.what, state, n.feature.name(), n.detail);
    }
    let off = p.disabled();
    if off.is_empty() {
        println!("features off: none");
    } else {
        println!("features off:");
        for d in &off {
            println!("  {:<16} {}", d.feature.name(), d.reason());
        }
    }
}

//! `rampart netpolicy`: per-container network policy in the kernel, from the
//! command line.
//!
//! Policies and isolation are stored (RAMPART_NETPOLICY_DIR, default
//! /var/lib/rampart/netpolicy) and enforced in the kernel by pinned cgroup BPF
//! programs (RAMPART_NETPOLICY_PIN, default /sys/fs/bpf/rampart/netpolicy):
//! they stay in force after this command exits, and the agent re-applies them
//! when a container restarts.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use respond::{policy, Enforced, NetPolicyStore, StoreConfig};
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct StoreArgs {
    #[command(flatten)]
    runtime: super::RuntimeArgs,
    /// Policy store directory (default: $RAMPART_NETPOLICY_DIR or
    /// /var/lib/rampart/netpolicy).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// BPF pin directory (default: $RAMPART_NETPOLICY_PIN or
    /// /sys/fs/bpf/rampart/netpolicy).
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
}

impl StoreArgs {
    pub(super) fn store(&self) -> NetPolicyStore {
        let mut cfg = StoreConfig { endpoints: self.runtime.endpoints(), ..Default::default() };
        if let Some(d) = &self.store {
            cfg.dir = d.clone();
        }
        if let Some(d) = &self.pin_dir {
            cfg.pin_dir = d.clone();
        }
        NetPolicyStore::new(cfg)
    }
}

#[derive(Subcommand)]
pub enum NetpolicyCommand {
    /// Store a policy for a container and enforce it in the kernel now (and
    /// whenever the container restarts).
    Apply {
        /// The container (name or id prefix).
        #[arg(long, value_name = "NAME|ID")]
        container: String,
        /// The policy (YAML; see docs/ARCHITECTURE.md or `rampart profile`).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Validate a policy file (errors as file:line:column).
    Check {
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Stored policies, where they are attached, and denial counters.
    Show {
        #[arg(long, value_name = "NAME|ID")]
        container: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Limit a container's traffic in the kernel (token buckets, per second),
    /// keeping the rest of its policy; `--clear` lifts every limit.
    Rate {
        #[arg(long, value_name = "NAME|ID")]
        container: String,
        #[arg(long, value_name = "N")]
        egress_pps: Option<u64>,
        #[arg(long, value_name = "N")]
        ingress_pps: Option<u64>,
        #[arg(long, value_name = "N")]
        egress_bytes_per_sec: Option<u64>,
        #[arg(long, value_name = "N")]
        ingress_bytes_per_sec: Option<u64>,
        /// Lift every rate limit of the container.
        #[arg(long, conflicts_with_all = ["egress_pps", "ingress_pps", "egress_bytes_per_sec", "ingress_bytes_per_sec"])]
        clear: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Drop a container's policy and detach it (isolation, if any, stays).
    Remove {
        #[arg(long, value_name = "NAME|ID")]
        container: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enforce every stored policy on its container's current cgroup, detach
    /// what no stored container uses (the agent does this by itself).
    Reconcile {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(super) fn describe(e: &Enforced) -> String {
    let who = label(&e.container_name, &e.container_id);
    let what = match (e.has_policy, e.isolated) {
        (true, true) => "policy and isolation",
        (true, false) => "policy",
        (false, true) => "isolation",
        (false, false) => "nothing",
    };
    match &e.cgroup {
        Some(cg) => format!("{who}: {what} enforced on cgroup {} (id {})", cg.path, cg.id),
        None if !e.has_policy && !e.isolated => format!("{who}: no policy, no isolation: detached"),
        None => format!("{who}: {what} stored; the container does not run, it applies when it starts"),
    }
}

use respond::deny::feed::label;

pub async fn netpolicy(cmd: NetpolicyCommand) -> Result<()> {
    match cmd {
        NetpolicyCommand::Check { file } => {
            let p = respond::load_policy(&file)?;
            let c = p.compile().map_err(anyhow::Error::msg)?;
            println!(
                "ok: {} ({} egress prefixes, {} bind rules)",
                file.display(),
                c.prefixes.len(),
                c.bind.len()
            );
            Ok(())
        }
        NetpolicyCommand::Apply { container, file, json, store } => {
            let policy = respond::load_policy(&file)?;
            let e = store.store().apply(&container, policy).await?;
            print_enforced(&e, json)
        }
        NetpolicyCommand::Rate {
            container,
            egress_pps,
            ingress_pps,
            egress_bytes_per_sec,
            ingress_bytes_per_sec,
            clear,
            json,
            store,
        } => {
            let v = |n: Option<u64>| n.map(policy::RateValue::new).transpose().map_err(anyhow::Error::msg);
            let rate = policy::Rate {
                egress_pps: v(egress_pps)?,
                ingress_pps: v(ingress_pps)?,
                egress_bytes_per_sec: v(egress_bytes_per_sec)?,
                ingress_bytes_per_sec: v(ingress_bytes_per_sec)?,
            };
            if rate.is_none() && !clear {
                bail!("give at least one limit (--egress-pps, --ingress-pps, --egress-bytes-per-sec, --ingress-bytes-per-sec) or --clear");
            }
            let e = store.store().set_rate(&container, rate).await?;
            if !json {
                println!("rate: {}", rate.describe());
            }
            print_enforced(&e, json)
        }
        NetpolicyCommand::Remove { container, store } => {
            let e = store.store().remove(&container).await?;
            println!("{}", describe(&e));
            Ok(())
        }
        NetpolicyCommand::Reconcile { json, store } => {
            let r = store.store().reconcile().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                if r.recreated {
                    println!("kernel state (re)created");
                }
                for e in &r.enforced {
                    println!("{}", describe(e));
                }
                for n in &r.not_running {
                    println!("{n}: not running");
                }
                for f in &r.forgotten {
                    println!("{f}: container gone, policy dropped");
                }
                for cg in &r.detached {
                    println!("cgroup {cg}: detached (no stored container there)");
                }
                for e in &r.errors {
                    println!("error: {e}");
                }
            }
            if !r.errors.is_empty() {
                bail!("{} container(s) could not be reconciled", r.errors.len());
            }
            Ok(())
        }
        NetpolicyCommand::Show { container, json, store } => {
            let s = store.store();
            let list = s.show(container.as_deref())?;
            if let Some(q) = &container {
                if list.is_empty() {
                    bail!("no network policy or isolation stored for {q:?}");
                }
            }
            if json {
                let v = serde_json::json!({ "containers": list, "ring_buffer_lost": s.lost() });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("no network policies stored in {}", s.config().dir.display());
            }
            for st in &list {
                let r = &st.record;
                println!("{}", label(&r.container_name, &r.container_id));
                println!("  isolated: {}", if r.isolated { "yes" } else { "no" });
                match st.cgroup_id {
                    Some(id) => println!(
                        "  cgroup: {} (id {id}), {}/{} hooks attached{}",
                        r.cgroup_path,
                        st.attached_hooks,
                        respond::kernel::Hook::ALL.len(),
                        if st.kernel_flags.is_some() { "" } else { ", no policy in the kernel map" }
                    ),
                    None => println!("  cgroup: none (the container does not run)"),
                }
                if !st.denied.is_empty() {
                    let d: Vec<String> = respond::store::OPS
                        .iter()
                        .map(|op| format!("{op} {}", st.denied.get(op).copied().unwrap_or(0)))
                        .collect();
                    println!("  denied: {}", d.join(", "));
                }
                match &r.policy {
                    Some(p) => {
                        println!("  policy:");
                        for line in p.to_yaml().lines() {
                            println!("    {line}");
                        }
                    }
                    None => println!("  policy: none"),
                }
            }
            if let Some(lost) = s.lost().filter(|n| *n > 0) {
                println!("denial records lost (ring buffer full): {lost}");
            }
            Ok(())
        }
    }
}

fn print_enforced(e: &Enforced, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(e)?);
    } else {
        println!("{}", describe(e));
    }
    Ok(())
}

//! `rampart caps`: the capability sets of container processes, decoded, with
//! the dangerous ones flagged and, given a recording, compared with what the
//! workload was seen to need.

use anyhow::{Context, Result};
use clap::Args;
use model::names::{cap_name, dangerous_capability, CAPABILITIES};
use runtime::cgroupfs::cgroup_path_of_pid;
use runtime::{parse_cgroup_path, ContainerRegistry};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Args)]
pub struct CapsArgs {
    /// Only this container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// A recording (directory or recording.json) to compare the sets with.
    #[arg(long, value_name = "DIR")]
    recording: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: super::RuntimeArgs,
}

/// A process's capability sets, from /proc/<pid>/status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessCaps {
    pub pid: u32,
    pub name: String,
    pub uid: u32,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub bounding: Vec<String>,
}

/// Capability names of a hex mask such as `00000000a80425fb`.
pub fn decode_mask(hex: &str) -> Vec<String> {
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    (0..64u32).filter(|b| mask & (1u64 << b) != 0).map(cap_name).collect()
}

/// Parses the lines of /proc/<pid>/status that matter here.
pub fn parse_status(pid: u32, text: &str) -> ProcessCaps {
    let mut caps = ProcessCaps { pid, ..Default::default() };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key {
            "Name" => caps.name = value.to_string(),
            "Uid" => caps.uid = value.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0),
            "CapEff" => caps.effective = decode_mask(value),
            "CapPrm" => caps.permitted = decode_mask(value),
            "CapBnd" => caps.bounding = decode_mask(value),
            _ => {}
        }
    }
    caps
}

#[derive(Debug, Serialize)]
struct ContainerCaps {
    id: String,
    name: String,
    image: String,
    processes: Vec<ProcessCaps>,
    /// Dangerous capabilities in any process's effective or bounding set, with why.
    dangerous: BTreeMap<String, &'static str>,
    /// With a recording: held (bounding set) but never needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    unneeded: Option<Vec<String>>,
    /// With a recording: needed but not held.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<Vec<String>>,
}

pub async fn caps(args: CapsArgs) -> Result<()> {
    let registry = ContainerRegistry::with_endpoints(&args.runtime.endpoints());
    if let Err(e) = registry.refresh().await {
        eprintln!("rampart: warning: no runtime API answered ({e}); containers shown by id only");
    }
    let needed: Option<BTreeSet<String>> = match &args.recording {
        Some(p) => {
            let path = if p.is_dir() { p.join("recording.json") } else { p.clone() };
            let text = model::input::read_text(&path, model::input::limits::RECORDING)?;
            let rec: profile::Recording = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
            Some(rec.needed_capabilities().into_iter().collect())
        }
        None => None,
    };

    let mut by_container: BTreeMap<String, ContainerCaps> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Some(pid) = entry.ok().and_then(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        else {
            continue;
        };
        // Processes come and go, and some are unreadable: skip them.
        let Ok(path) = cgroup_path_of_pid(pid) else { continue };
        let Some(cg) = parse_cgroup_path(&path) else { continue };
        let container = registry.get(&cg.id);
        if let Some(q) = &args.container {
            if !container.as_ref().is_some_and(|c| c.matches(q)) && !cg.id.starts_with(q.as_str()) {
                continue;
            }
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let entry = by_container.entry(cg.id.clone()).or_insert_with(|| ContainerCaps {
            id: cg.id.clone(),
            name: container.as_ref().map(|c| c.name.trim_start_matches('/').to_string()).unwrap_or_default(),
            image: container.as_ref().map(|c| c.image.clone()).unwrap_or_default(),
            processes: Vec::new(),
            dangerous: BTreeMap::new(),
            unneeded: None,
            missing: None,
        });
        entry.processes.push(parse_status(pid, &status));
    }
    if let Some(q) = &args.container {
        anyhow::ensure!(!by_container.is_empty(), "no running process belongs to a container matching {q:?}");
    }
    for c in by_container.values_mut() {
        c.processes.sort_by_key(|p| p.pid);
        let held: BTreeSet<String> =
            c.processes.iter().flat_map(|p| p.bounding.iter().chain(&p.effective)).cloned().collect();
        for cap in &held {
            if let Some(why) = dangerous_capability(cap) {
                c.dangerous.insert(cap.clone(), why);
            }
        }
        if let Some(needed) = &needed {
            c.unneeded = Some(held.difference(needed).cloned().collect());
            c.missing = Some(needed.difference(&held).cloned().collect());
        }
    }

    if args.json {
        let list: Vec<&ContainerCaps> = by_container.values().collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for c in by_container.values() {
        let short: String = c.id.chars().take(12).collect();
        println!("{} ({short}) {}", if c.name.is_empty() { "?" } else { &c.name }, c.image);
        for p in &c.processes {
            let full = p.effective.len() == CAPABILITIES.len();
            let eff = if full { "ALL".to_string() } else { list(&p.effective) };
            println!("  pid {:<7} {:<16} uid {:<6} effective: {eff}", p.pid, p.name, p.uid);
            if p.permitted != p.effective {
                println!("  {:<37} permitted: {}", "", list(&p.permitted));
            }
            println!("  {:<37} bounding:  {}", "", list(&p.bounding));
        }
        for (cap, why) in &c.dangerous {
            println!("  ! {cap}: {why}");
        }
        if let (Some(unneeded), Some(missing)) = (&c.unneeded, &c.missing) {
            println!("  not needed per the recording (drop them): {}", list(unneeded));
            if !missing.is_empty() {
                println!("  needed per the recording but not held: {}", list(missing));
            }
        }
    }
    Ok(())
}

fn list(caps: &[String]) -> String {
    if caps.is_empty() {
        "(none)".into()
    } else {
        caps.iter().map(|c| c.trim_start_matches("CAP_")).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_decode() {
        // Docker's default set (0xa80425fb) as a container's root holds it.
        let text = "Name:\tsh\nUid:\t0\t0\t0\t0\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n";
        let p = parse_status(7, text);
        assert_eq!(p.name, "sh");
        assert_eq!(p.uid, 0);
        let mut docker: Vec<String> =
            model::names::DOCKER_DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
        docker.sort();
        let mut eff = p.effective.clone();
        eff.sort();
        assert_eq!(eff, docker);
        assert_eq!(decode_mask("0000000000200000"), vec!["CAP_SYS_ADMIN"]);
        assert!(decode_mask("0").is_empty());
    }
}

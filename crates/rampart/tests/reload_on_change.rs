//! `rampart run` reloads when its config or rule files change, without
//! SIGHUP: an editor's save (temporary file renamed over the rule file), a
//! broken edit (refused with file:line:col, the old rules keep firing), and a
//! Kubernetes ConfigMap update (the `..data` symlink swapped to a new
//! directory). Real agent, real dockerd, real containers; fails without root.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

fn rule(name: &str, path_prefix: &str) -> String {
    format!(
        "- rule: {name}\n  desc: test rule\n  condition: evt.type in (open, openat, openat2) and fd.name startswith {path_prefix}\n  output: \"{name} file=%fd.name\"\n  priority: WARNING\n"
    )
}

/// Writes `text` the way editors save: a temporary file renamed over `path`.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Counts the agent's "rules reloaded" lines so far.
fn reloads(agent: &Agent) -> usize {
    agent.stderr_text().matches("rules reloaded").count()
}

/// Waits for reload number `n` (1-based) to be said on stderr.
fn wait_reloads(agent: &Agent, n: usize, needle: &str) -> String {
    wait_until(&format!("{needle} #{n}"), Duration::from_secs(15), || {
        agent.stderr_text().matches(needle).count() >= n
    });
    agent.stderr_text()
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn an_edited_rule_file_is_reloaded_and_a_broken_edit_keeps_the_old_rules() {
    preflight();
    let dir = std::env::temp_dir().join(unique("watch"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("custom.yaml");
    std::fs::write(&file, rule("watch_a", "/tmp/watch-a")).unwrap();
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", dir.to_str().unwrap()]);
    wait_stderr(&agent, "reloading on change", Duration::from_secs(5));
    let c1 = Container::sh("watch1", &[], "echo x > /tmp/watch-a-1");
    agent.expect("alert watch_a", |v| is_alert_of(v, "watch_a", &c1.name));
    assert_eq!(reloads(&agent), 0, "nothing changed yet");

    // An editor's save: the new rule fires, without any signal.
    save_by_rename(&file, &rule("watch_b", "/tmp/watch-b"));
    let text = wait_reloads(&agent, 1, "rules reloaded");
    assert!(text.contains("config or rule files changed"), "{text}");
    let c2 = Container::sh("watch2", &[], "echo y > /tmp/watch-b-1");
    agent.expect("alert watch_b after the edit", |v| is_alert_of(v, "watch_b", &c2.name));

    // A broken edit in place: refused with its position, watch_b keeps firing.
    std::fs::write(
        &file,
        "- rule: broken\n  desc: d\n  condition: proc.nam = sh\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    let text = wait_reloads(&agent, 1, "reload refused");
    let expected = format!("{}:3:14", file.display());
    assert!(text.contains(&expected), "the refusal must point at {expected}:\n{text}");
    let refusal =
        agent.expect("the refusal as an internal alert", |v| alert_rule(v) == "Rules reload refused");
    assert!(refusal["output"].as_str().unwrap_or("").contains(&expected), "{refusal}");
    let c3 = Container::sh("watch3", &[], "echo y > /tmp/watch-b-2");
    agent.expect("alert watch_b after a refused edit", |v| is_alert_of(v, "watch_b", &c3.name));
    assert_eq!(reloads(&agent), 1, "a refused edit is not a reload");
    assert!(agent.is_running(), "a broken edit must not stop the agent");
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The layout kubelet gives a ConfigMap volume: each key is a symlink
/// `KEY -> ..data/KEY`, `..data` a symlink to a timestamped directory; an
/// update writes a new directory and renames a new `..data` over the old one.
struct ConfigMapDir {
    root: std::path::PathBuf,
    version: u32,
}

impl ConfigMapDir {
    fn new(root: &Path, files: &[(&str, String)]) -> ConfigMapDir {
        std::fs::create_dir_all(root).unwrap();
        let mut cm = ConfigMapDir { root: root.to_path_buf(), version: 0 };
        cm.update(files);
        for (key, _) in files {
            std::os::unix::fs::symlink(format!("..data/{key}"), root.join(key)).unwrap();
        }
        cm
    }

    fn update(&mut self, files: &[(&str, String)]) {
        self.version += 1;
        let dir = format!("..2026_12_05_{:02}", self.version);
        std::fs::create_dir(self.root.join(&dir)).unwrap();
        for (key, text) in files {
            std::fs::write(self.root.join(&dir).join(key), text).unwrap();
        }
        std::os::unix::fs::symlink(&dir, self.root.join("..data_tmp")).unwrap();
        std::fs::rename(self.root.join("..data_tmp"), self.root.join("..data")).unwrap();
    }
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn a_configmap_update_is_picked_up() {
    preflight();
    let root = std::env::temp_dir().join(unique("configmap"));
    // One ConfigMap holds the config (naming the rules directory) and the rules.
    let rules_dir = root.join("rules.d");
    let config = |default_rules: bool| {
        format!("rules:\n  default_rules: {default_rules}\n  paths: [{}]\n", rules_dir.display())
    };
    let conf = ConfigMapDir::new(&root.join("config"), &[("config.yaml", config(false))]);
    let mut rules = ConfigMapDir::new(&rules_dir, &[("custom.yaml", rule("cm_a", "/tmp/cm-a"))]);
    let config_file = root.join("config/config.yaml");
    let mut agent = Agent::start_run(&["--config", config_file.to_str().unwrap()]);
    let c1 = Container::sh("cm1", &[], "echo x > /tmp/cm-a-1");
    agent.expect("alert cm_a", |v| is_alert_of(v, "cm_a", &c1.name));

    rules.update(&[("custom.yaml", rule("cm_b", "/tmp/cm-b"))]);
    wait_reloads(&agent, 1, "rules reloaded");
    let c2 = Container::sh("cm2", &[], "echo x > /tmp/cm-a-2; echo y > /tmp/cm-b-1");
    agent.expect("alert cm_b after the ConfigMap update", |v| is_alert_of(v, "cm_b", &c2.name));
    c2.wait_ok(Duration::from_secs(30));
    agent.collect_for(Duration::from_millis(500));
    assert!(
        !agent.events.iter().any(|v| is_alert_of(v, "cm_a", &c2.name)),
        "the replaced rule still fired after the update"
    );

    // A broken config update is refused with its position, the rules stay.
    let mut conf = conf;
    conf.update(&[("config.yaml", "rules:\n  default_rule: true\n".to_string())]);
    let text = wait_reloads(&agent, 1, "reload refused");
    assert!(text.contains("config.yaml: 2:3") && text.contains("default_rule"), "{text}");
    let c3 = Container::sh("cm3", &[], "echo y > /tmp/cm-b-2");
    agent.expect("alert cm_b after a refused config", |v| is_alert_of(v, "cm_b", &c3.name));
    agent.stop();
    let _ = std::fs::remove_dir_all(&root);
}

/// The events of the container named `name` the agent evaluated so far
/// (`rampart_container_events_total`), if it has a series yet.
fn container_events(agent: &Agent, name: &str) -> Option<u64> {
    let label = format!("name=\"{name}\"");
    agent.metrics_text().lines().find_map(|l| {
        let rest = l.strip_prefix("rampart_container_events_total{")?;
        let (labels, value) = rest.split_once("} ")?;
        labels.contains(&label).then(|| value.trim().parse::<f64>().ok()).flatten().map(|v| v as u64)
    })
}

/// The in-kernel prefilter: a container's 20,000 opens never reach an agent
/// whose only rule is on unlink (the kernel drops syscall types no rule
/// uses at entry), while that rule still fires; a reload whose rules use
/// opens widens the filter, and an open rule then fires.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn types_no_rule_uses_never_reach_the_agent_and_a_reload_widens() {
    preflight();
    const OPENS: u64 = 20_000;
    let dir = std::env::temp_dir().join(unique("prefilter"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("custom.yaml");
    let unlink_rule = "- rule: pf_unlink\n  desc: d\n  condition: evt.type in (unlink, unlinkat) and fs.path.name startswith /tmp/pf-\n  output: \"pf_unlink %fs.path.name\"\n  priority: WARNING\n";
    std::fs::write(&file, unlink_rule).unwrap();
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--no-reload-on-change", "--rules", file.to_str().unwrap()]);
    wait_stderr(&agent, "sensor ready", Duration::from_secs(5));
    let script = format!(
        "echo x > /tmp/pf-a && rtest bench-open {OPENS} /tmp/pf-a && rm /tmp/pf-a && exec sleep 3600"
    );
    let a = Container::sh("pf-a", &[], &script);
    agent.expect("the unlink rule fires", |v| is_alert_of(v, "pf_unlink", &a.name));
    wait_until("the open loop's end", Duration::from_secs(60), || a.logs().contains("result op=open"));
    let mut seen = None;
    wait_until("container events in /metrics", Duration::from_secs(10), || {
        seen = container_events(&agent, &a.name);
        seen.is_some()
    });
    let seen = seen.unwrap();
    // Its shell, rtest and rm: execs, forks, exits, the unlink; not the opens.
    assert!(seen < OPENS / 10, "{seen} events of {} reached the agent: the opens were not filtered", a.name);

    // Rules on opens now: the reload widens what the kernel reports.
    let open_rule = "- rule: pf_open\n  desc: d\n  condition: evt.type in (open, openat) and fd.name = /tmp/pf-b\n  output: \"pf_open %fd.name\"\n  priority: WARNING\n";
    std::fs::write(&file, format!("{unlink_rule}{open_rule}")).unwrap();
    // SAFETY: kill with the pid of the agent this test spawned and still owns.
    unsafe { libc::kill(agent.pid as libc::pid_t, libc::SIGHUP) };
    wait_reloads(&agent, 1, "rules reloaded");
    let b = Container::sh(
        "pf-b",
        &[],
        &format!("echo x > /tmp/pf-b && rtest bench-open {OPENS} /tmp/pf-b && exec sleep 3600"),
    );
    agent.expect("the open rule fires after the reload", |v| is_alert_of(v, "pf_open", &b.name));
    wait_until("the open loop's end", Duration::from_secs(60), || b.logs().contains("result op=open"));
    wait_until("the opens reach the agent after the reload", Duration::from_secs(10), || {
        container_events(&agent, &b.name).is_some_and(|n| n >= OPENS)
    });
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rampart_feature_enabled{feature="FEATURE",...}` in `/metrics` of `addr`.
fn feature_enabled(addr: &str, feature: &str) -> Option<f64> {
    let text = http_get(addr, "/metrics").1;
    let prefix = format!("rampart_feature_enabled{{feature=\"{feature}\"");
    text.lines().filter(|l| l.starts_with(&prefix)).find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A feature off at start for want of something the host can give later
/// comes on at the next reload: here the network policy store, whose
/// directory cannot be made while a file stands in its place. Once the file
/// is gone, SIGHUP turns network policy on: stderr says so and `/metrics`
/// reports it on, with no reason left.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn a_reload_turns_on_a_feature_whose_need_appeared() {
    preflight();
    let np = Np::new("recheck");
    std::fs::write(&np.store, "a file where the store directory goes").unwrap();
    let agent = Agent::spawn_env(
        vec!["run".into(), "--json".into(), "--metrics-address=127.0.0.1:0".into()],
        StdoutMode::Parse,
        &np.env(),
    );
    let stderr = wait_stderr(&agent, "network_policy is off", Duration::from_secs(5));
    assert!(stderr.contains("writable policy store"), "{stderr}");
    let addr = agent.metrics_address();
    assert_eq!(feature_enabled(&addr, "network_policy"), Some(0.0));

    std::fs::remove_file(&np.store).unwrap();
    // SAFETY: kill(2) on the agent's pid, a child of this test still running.
    unsafe { libc::kill(agent.pid as libc::pid_t, libc::SIGHUP) };
    wait_stderr(&agent, "network_policy is on now", Duration::from_secs(15));
    wait_until("/metrics reports network policy on", Duration::from_secs(5), || {
        feature_enabled(&addr, "network_policy") == Some(1.0)
    });
    let text = http_get(&addr, "/metrics").1;
    assert!(text.contains("rampart_feature_enabled{feature=\"network_policy\",reason=\"\"} 1"), "{text}");
    agent.stop();
}

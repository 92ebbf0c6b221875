//! Against the real dockerd: resolve a running container of the test image
//! (`rampart-test:latest`) from its cgroup id, and follow Docker's events.
//!
//! Privileged (root and dockerd): ignored by a plain `cargo test`, run by
//! `scripts/test.sh` (`--include-ignored`); then it FAILS when dockerd is
//! unreachable (start it with `scripts/dockerd.sh start`), never skips.

use anyhow::{bail, Context, Result};
use model::Runtime;
use runtime::{
    find_cgroup2_mount, CgroupTree, CgroupTreeConfig, ContainerRegistry, DockerClient, RegistryConfig,
    Resolution, RuntimeClient, DEFAULT_DOCKER_SOCKET,
};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::IMAGE;

fn docker(args: &[&str]) -> Result<String> {
    testkit::docker_stdout(args).map_err(anyhow::Error::msg)
}

/// Removes the container even when the test panics.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn run_container(name: &str) -> Result<(ContainerGuard, String)> {
    let _ = docker(&["rm", "-f", name]);
    let id = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--label",
        "io.kubernetes.pod.name=p1",
        "--label",
        "io.kubernetes.pod.namespace=ns1",
        "--label",
        "rampart.test=1",
        IMAGE,
        "sleep",
        "60",
    ])?;
    Ok((ContainerGuard(name.to_string()), id))
}

/// The cgroup id of a container: inode of its init process's cgroup directory.
fn cgroup_id_of_container(name: &str) -> Result<(u64, String, u32)> {
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", name])?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).context("no cgroup v2 line")?.to_string();
    let root = find_cgroup2_mount()?;
    let ino = std::fs::metadata(root.join(path.trim_start_matches('/')))?.ino();
    Ok((ino, path, pid.parse()?))
}

fn registry() -> Result<ContainerRegistry> {
    let tree = Arc::new(CgroupTree::new(find_cgroup2_mount()?, CgroupTreeConfig::default()));
    let docker: Arc<dyn RuntimeClient> = Arc::new(DockerClient::with_socket(DEFAULT_DOCKER_SOCKET));
    let cfg = RegistryConfig {
        removal_grace: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(100),
        ..Default::default()
    };
    Ok(ContainerRegistry::new(cfg, Some(tree), vec![docker]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root and dockerd (scripts/test.sh runs it)"]
async fn resolves_a_real_docker_container() -> Result<()> {
    testkit::require_dockerd();
    testkit::test_image();
    let name = format!("rt-test-{}", std::process::id());
    let (_guard, id) = run_container(&name)?;
    let (cg, path, pid) = cgroup_id_of_container(&name)?;

    // A fresh registry, no background task: resolve goes id -> path -> inspect.
    let reg = registry()?;
    assert_eq!(reg.resolve_cached(cg), Resolution::Unknown);
    let c = reg.resolve(cg).await.context("container not resolved")?;
    assert_eq!(c.id, id);
    assert_eq!(c.runtime, Some(Runtime::Docker));
    assert_eq!(c.name, name);
    assert_eq!(c.image, IMAGE);
    assert!(c.image_id.starts_with("sha256:"), "{}", c.image_id);
    assert_eq!(c.labels.get("rampart.test").map(String::as_str), Some("1"));
    assert_eq!(c.pod_name.as_deref(), Some("p1"));
    assert_eq!(c.pod_namespace.as_deref(), Some("ns1"));
    assert_eq!(c.cgroup_path, path);
    assert!(c.upper_dir.as_deref().is_some_and(|u| u.ends_with("/diff")), "{:?}", c.upper_dir);
    assert!(matches!(reg.resolve_cached(cg), Resolution::Container(ref x) if x.name == name));
    assert_eq!(reg.find(&name).map(|x| x.id.clone()), Some(id.clone()));
    assert_eq!(reg.find(&id[..12]).map(|x| x.name.clone()), Some(name.clone()));

    // With the event's pid as a hint, no walk of the cgroup tree is needed.
    let reg = registry()?;
    let c = reg.resolve_for_pid(cg, pid).await.context("container not resolved from pid hint")?;
    assert_eq!((c.name.as_str(), c.cgroup_path.as_str()), (name.as_str(), path.as_str()));
    assert_eq!(reg.status().cgroup_tree.map(|t| t.walks), Some(0));
    // A host process's cgroup is host.
    let own_cg = {
        let text = std::fs::read_to_string("/proc/self/cgroup")?;
        let p = text.lines().find_map(|l| l.strip_prefix("0::")).context("no cgroup v2 line")?.to_string();
        std::fs::metadata(find_cgroup2_mount()?.join(p.trim_start_matches('/')))?.ino()
    };
    assert_eq!(reg.resolve_for_pid(own_cg, std::process::id()).await, None);
    assert_eq!(reg.resolve_cached(own_cg), Resolution::Host);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root and dockerd (scripts/test.sh runs it)"]
async fn follows_docker_events() -> Result<()> {
    testkit::require_dockerd();
    testkit::test_image();
    let reg = registry()?;
    let tasks = reg.spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reg.status().runtimes[0].connected {
        if Instant::now() > deadline {
            bail!("registry never connected: {:?}", reg.status());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Started after the watcher: known from the start event, cgroup mapped from
    // the init pid, before any resolve() call.
    let name = format!("rt-test-ev-{}", std::process::id());
    let (guard, id) = run_container(&name)?;
    let (cg, _, _) = cgroup_id_of_container(&name)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Resolution::Container(c) = reg.resolve_cached(cg) {
            assert_eq!(c.name, name);
            assert_eq!(c.pod_name.as_deref(), Some("p1"));
            break;
        }
        if Instant::now() > deadline {
            bail!("start event did not map cgroup {cg}: {:?}", reg.status());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = reg.status();
    assert!(st.runtimes[0].connected && st.runtimes[0].last_error.is_none(), "{st:?}");
    // rename is followed
    let renamed = format!("{name}-renamed");
    let _ = docker(&["rm", "-f", &renamed]);
    docker(&["rename", &name, &renamed])?;
    let mut guard = guard;
    guard.0 = renamed.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reg.find(&renamed).is_none() {
        if Instant::now() > deadline {
            bail!("rename not followed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // destroy: forgotten after the grace period
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(10);
    while reg.get(&id).is_some() || reg.resolve_cached(cg) != Resolution::Unknown {
        if Instant::now() > deadline {
            bail!("destroyed container not forgotten");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tasks.abort();
    Ok(())
}

//! Against the real dockerd: resolve a running container from its cgroup id.
//!
//! As root this test FAILS when dockerd is unreachable (start it with
//! `dockerd >/tmp/dockerd.log 2>&1 &`); as another user it is skipped.

use anyhow::{bail, Context, Result};
use model::Runtime;
use runtime::{
    find_cgroup2_mount, CgroupTree, CgroupTreeConfig, ContainerRegistry, DockerClient, RegistryConfig,
    Resolution, RuntimeClient, DEFAULT_DOCKER_SOCKET,
};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMAGE: &str = "rampart-dev:latest";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).output().context("running the docker CLI")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Build `rampart-dev:latest` (busybox-static rootfs, `docker import`) if missing.
fn ensure_image() -> Result<()> {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if docker(&["image", "inspect", IMAGE]).is_ok() {
        return Ok(());
    }
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        bail!("{IMAGE} is missing and /bin/busybox is not installed (apt-get install busybox-static)");
    }
    let dir = std::env::temp_dir().join(format!("rampart-rootfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    let list = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("tar -C {} -c . | docker import -c 'ENV PATH=/bin' - {IMAGE} >/dev/null", dir.display()))
        .status()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        bail!("docker import of the busybox rootfs failed");
    }
    Ok(())
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
async fn resolves_a_real_docker_container() -> Result<()> {
    if !is_root() {
        eprintln!("skipped: needs root and dockerd");
        return Ok(());
    }
    let client = DockerClient::with_socket(DEFAULT_DOCKER_SOCKET);
    if let Err(e) = client.list_containers().await {
        bail!("dockerd is unreachable as root ({e}); start it with `dockerd >/tmp/dockerd.log 2>&1 &`");
    }
    ensure_image()?;
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
async fn follows_docker_events() -> Result<()> {
    if !is_root() {
        eprintln!("skipped: needs root and dockerd");
        return Ok(());
    }
    let client = DockerClient::with_socket(DEFAULT_DOCKER_SOCKET);
    if let Err(e) = client.list_containers().await {
        bail!("dockerd is unreachable as root ({e}); start it with `dockerd >/tmp/dockerd.log 2>&1 &`");
    }
    ensure_image()?;
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

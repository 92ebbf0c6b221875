//! A cgroup that exists only for a moment still resolves afterwards: the
//! registry's watcher learns each new cgroup directory as it is created (a
//! container that exits within milliseconds is gone before its first event is
//! processed, and a removed directory cannot be found by walking the tree).
//! Privileged (root: it creates cgroups): ignored by a plain `cargo test`, run
//! by `scripts/test.sh` (`--include-ignored`); then it fails without root.

use runtime::{CgroupTree, ContainerRegistry, RegistryConfig};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
#[ignore = "privileged: needs root to create cgroups (scripts/test.sh runs it)"]
async fn a_removed_container_cgroup_still_resolves() {
    testkit::require_root();
    let tree = Arc::new(CgroupTree::discover().expect("a cgroup2 mount"));
    let registry = ContainerRegistry::new(RegistryConfig::default(), Some(tree.clone()), Vec::new());
    let tasks = registry.spawn();
    tokio::time::sleep(Duration::from_millis(300)).await; // the watcher's first walk

    let parent = format!("rampart-watch-{}", std::process::id());
    let id_hex: String = format!("{:016x}", std::process::id()).repeat(4);
    let child = format!("/{parent}/libpod-{id_hex}");
    let parent_dir = tree.root().join(&parent);
    let child_dir = tree.root().join(child.trim_start_matches('/'));
    std::fs::create_dir(&parent_dir).expect("mkdir parent cgroup");
    tokio::time::sleep(Duration::from_millis(100)).await; // the new parent gets its watch
    std::fs::create_dir(&child_dir).expect("mkdir container cgroup");
    let cgroup_id = std::fs::metadata(&child_dir).unwrap().ino();
    tokio::time::sleep(Duration::from_millis(50)).await; // a very short-lived container
    std::fs::remove_dir(&child_dir).expect("rmdir container cgroup");
    std::fs::remove_dir(&parent_dir).expect("rmdir parent cgroup");

    let c = registry.resolve(cgroup_id).await.expect("the removed container cgroup resolves");
    assert_eq!(c.id, id_hex);
    assert_eq!(c.runtime, Some(model::Runtime::Podman));
    assert_eq!(c.cgroup_path, child);
    tasks.abort();
}

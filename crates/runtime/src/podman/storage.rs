//! A podman container being started, from containers/storage's record on
//! disk: what an OCI hook needs while podman holds the container's lock (its
//! API's inspect and list both wait for that lock, so for the hook itself).
//!
//! podman's bundle is `<store>/<driver>-containers/<id>/userdata`, and the
//! store keeps every container's name and image in `containers.json` two
//! levels up (written atomically by rename). Labels and the pod are in
//! podman's own database only: rules scoped by them hold once the API
//! answers, after the start.

use super::NAME;
use crate::client::Discovered;
use model::input::{limits, read_bytes};
use model::{Container, Runtime};
use serde::Deserialize;
use std::path::Path;

/// Annotation podman puts in every spec it writes.
pub const MANAGER_ANNOTATION: &str = "io.container.manager";

/// Whether an OCI spec (config.json) was written by podman.
pub fn is_podman_spec(spec: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    serde_json::from_slice::<Spec>(spec)
        .is_ok_and(|s| s.annotations.get(MANAGER_ANNOTATION).is_some_and(|m| m == "libpod"))
}

#[derive(Deserialize)]
struct StoreRecord {
    #[serde(default)]
    id: String,
    #[serde(default)]
    names: Vec<String>,
    /// The image's id (a bare digest).
    #[serde(default)]
    image: String,
    /// podman's own JSON, as a string.
    #[serde(default)]
    metadata: String,
}

#[derive(Deserialize, Default)]
struct PodmanMetadata {
    #[serde(default, rename = "image-name")]
    image_name: String,
    #[serde(default)]
    name: String,
}

/// The container `id` whose bundle is `bundle`, as podman's store records it
/// (name, image, image id). The rest of what rules test comes from the spec.
pub fn starting_from_store(id: &str, bundle: &Path) -> Result<Discovered, String> {
    let in_layout = bundle.file_name().is_some_and(|f| f == "userdata")
        && bundle.parent().and_then(Path::file_name).is_some_and(|f| f == id);
    let store = bundle.parent().and_then(Path::parent).filter(|_| in_layout).ok_or_else(|| {
        format!("bundle {} is not in podman's layout (STORE/ID/userdata)", bundle.display())
    })?;
    let path = store.join("containers.json");
    let data = read_bytes(&path, limits::PODMAN_STORE).map_err(|e| e.to_string())?;
    container_from_store(id, &data)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .map(|container| Discovered { container, pid: None })
        .ok_or_else(|| format!("container {id} is not in {} ({NAME})", path.display()))
}

fn container_from_store(id: &str, data: &[u8]) -> Result<Option<Container>, String> {
    let records: Vec<StoreRecord> = serde_json::from_slice(data).map_err(|e| format!("not a store: {e}"))?;
    let Some(r) = records.into_iter().find(|r| r.id == id) else {
        return Ok(None);
    };
    let meta: PodmanMetadata = serde_json::from_str(&r.metadata).unwrap_or_default();
    let name = if meta.name.is_empty() { r.names.first().cloned().unwrap_or_default() } else { meta.name };
    let image_id = match r.image.as_str() {
        hex if crate::cgroup::is_hex64(hex) => format!("sha256:{hex}"),
        other => other.to_string(),
    };
    Ok(Some(Container {
        runtime: Some(Runtime::Podman),
        id: r.id,
        name,
        image: meta.image_name,
        image_id,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a368ef09e6162a42f01b7327406ca7cea25e5613270532660ba37ba7f51b6fd8";

    /// podman 4.3's record, as written during a start.
    fn store() -> String {
        format!(
            r#"[{{"id":"other","names":["x"]}},{{"id":"{ID}","names":["h20lab"],
            "image":"82db061e6af04d69992196fd6f1af51447e87a55b4b9bfc4702594eecd4e0655",
            "layer":"82082aef","metadata":"{{\"image-name\":\"localhost/rampart-test:latest\",\"image-id\":\"82db061e6af04d69992196fd6f1af51447e87a55b4b9bfc4702594eecd4e0655\",\"name\":\"h20lab\",\"created-at\":1796532969}}",
            "created":"2026-12-06T04:56:09.986500036Z","flags":{{"Volatile":true}}}}]"#
        )
    }

    #[test]
    fn reads_name_and_image_from_the_store() {
        let c = container_from_store(ID, store().as_bytes()).unwrap().unwrap();
        assert_eq!(c.runtime, Some(Runtime::Podman));
        assert_eq!((c.name.as_str(), c.image.as_str()), ("h20lab", "localhost/rampart-test:latest"));
        assert_eq!(c.image_id, "sha256:82db061e6af04d69992196fd6f1af51447e87a55b4b9bfc4702594eecd4e0655");
        assert!(container_from_store("nope", store().as_bytes()).unwrap().is_none());
        assert!(container_from_store(ID, b"{}").is_err());
    }

    #[test]
    fn finds_the_store_from_the_bundle_only_in_podmans_layout() {
        let dir = std::env::temp_dir().join(format!("rampart-podman-store-{}", std::process::id()));
        let bundle = dir.join(ID).join("userdata");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(dir.join("containers.json"), store()).unwrap();
        let d = starting_from_store(ID, &bundle).unwrap();
        assert_eq!(d.container.name, "h20lab");
        // Another container's bundle, or not podman's layout: not found.
        assert!(starting_from_store("other", &bundle).unwrap_err().contains("not in podman's layout"));
        assert!(starting_from_store(ID, &dir.join(ID)).unwrap_err().contains("not in podman's layout"));
        let elsewhere = dir.join("b").join(ID).join("userdata");
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert!(starting_from_store(ID, &elsewhere).unwrap_err().contains("containers.json"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recognises_podmans_spec() {
        assert!(is_podman_spec(br#"{"annotations":{"io.container.manager":"libpod"}}"#));
        assert!(!is_podman_spec(br#"{"annotations":{"io.container.manager":"cri-o"}}"#));
        assert!(!is_podman_spec(br#"{"ociVersion":"1.0.2"}"#));
        assert!(!is_podman_spec(b"[]"));
    }
}

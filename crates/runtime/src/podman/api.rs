//! libpod's answers as serde types: the fields rampart reads, with podman's
//! `null`s read as empty.

use super::*;

/// `null` and absent both mean the type's default (podman sends `null` for
/// empty lists and maps).
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /libpod/containers/{id}/json`, the fields rampart uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PodmanInspect {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// The image id (bare hex digest).
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    /// The image name the container was created from, as podman resolved it.
    #[serde(deserialize_with = "nullable")]
    pub image_name: String,
    /// Id of the pod the container belongs to (empty outside pods).
    #[serde(deserialize_with = "nullable")]
    pub pod: String,
    #[serde(deserialize_with = "nullable")]
    pub state: InspectState,
    #[serde(deserialize_with = "nullable")]
    pub config: InspectConfig,
    #[serde(deserialize_with = "nullable")]
    pub host_config: InspectHostConfig,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<InspectMount>,
    #[serde(deserialize_with = "nullable")]
    pub graph_driver: GraphDriver,
    /// Creation time, RFC 3339.
    #[serde(deserialize_with = "nullable")]
    pub created: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectState {
    pub running: bool,
    pub pid: i64,
    #[serde(deserialize_with = "nullable")]
    pub cgroup_path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectConfig {
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// podman 4 reports the entrypoint as one space-joined string, podman 5
    /// as a list; both are read as a list (4's split at spaces).
    #[serde(deserialize_with = "string_or_list")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::One(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Either::Many(v)) => v,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHostConfig {
    pub privileged: bool,
    #[serde(deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub pid_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub ipc_mode: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectMount {
    #[serde(deserialize_with = "nullable")]
    pub source: String,
    #[serde(deserialize_with = "nullable")]
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub propagation: String,
    #[serde(deserialize_with = "nullable")]
    pub mode: String,
    #[serde(deserialize_with = "nullable")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    #[serde(deserialize_with = "nullable")]
    pub data: BTreeMap<String, String>,
}

/// `GET /libpod/pods/{id}/json`, the fields rampart uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PodmanPod {
    #[serde(deserialize_with = "nullable")]
    pub id: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// One entry of `GET /libpod/containers/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ListEntry {
    #[serde(deserialize_with = "nullable")]
    pub(super) id: String,
}

/// One line of `GET /libpod/events?stream=true`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PodmanEvent {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub typ: String,
    #[serde(rename = "Action", deserialize_with = "nullable")]
    pub action: String,
    #[serde(rename = "Actor", deserialize_with = "nullable")]
    pub actor: EventActor,
    /// The older Docker-style copies of `Action` and `Actor.ID`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventActor {
    #[serde(rename = "ID", deserialize_with = "nullable")]
    pub id: String,
}

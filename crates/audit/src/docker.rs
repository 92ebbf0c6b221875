//! Docker Engine: `GET /containers/{id}/json` (bollard's type) to a [`Subject`].

use crate::config::{
    all_capabilities, apply_caps, default_capabilities, ContainerConfig, DeviceSpec, HostNamespaces,
    MacProfile, MountSpec, PortSpec, Resources, RestartPolicy, Seccomp, SourceKind, Subject, UserSpec,
};
use bollard::models::{ContainerInspectResponse, HostConfigCgroupnsModeEnum, MountPointTypeEnum, PortMap};
use std::path::PathBuf;

/// The audit subject of an inspected container. `rootfs` is set to
/// `/proc/<pid>/root` when the container runs (its init pid is known).
pub fn subject_from_inspect(resp: &ContainerInspectResponse) -> Subject {
    let host = resp.host_config.clone().unwrap_or_default();
    let cfg = resp.config.clone().unwrap_or_default();
    let opts: Vec<String> = host.security_opt.clone().unwrap_or_default();
    // Options are `key=value` (older daemons wrote `key:value`).
    let opt = |key: &str| -> Option<String> {
        opts.iter().find_map(|o| {
            let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
            (k == key).then(|| v.to_string())
        })
    };
    let privileged = host.privileged.unwrap_or(false);

    let user_text = cfg.user.clone().unwrap_or_default();
    let user = parse_user(&user_text);

    let no_new_privileges = match opt("no-new-privileges") {
        Some(v) => v.is_empty() || v == "true",
        None => false,
    };

    let cap_add = host.cap_add.clone().unwrap_or_default();
    let cap_drop = host.cap_drop.clone().unwrap_or_default();
    let capabilities =
        if privileged { all_capabilities() } else { apply_caps(default_capabilities(), &cap_add, &cap_drop) };

    let seccomp = match opt("seccomp") {
        _ if privileged => Seccomp::Unconfined,
        Some(v) if v == "unconfined" => Seccomp::Unconfined,
        // The daemon stores the profile's JSON text in place of the file name.
        Some(_) => Seccomp::Custom("custom profile (--security-opt seccomp=FILE)".into()),
        None => Seccomp::RuntimeDefault,
    };
    let apparmor = match (opt("apparmor").as_deref(), resp.app_armor_profile.as_deref().unwrap_or("")) {
        (Some("unconfined"), _) | (_, "unconfined") => MacProfile::Disabled,
        (_, "docker-default") => MacProfile::RuntimeDefault,
        (_, "") => MacProfile::None,
        (_, p) => MacProfile::Named(p.to_string()),
    };
    let selinux = match (opt("label").as_deref(), resp.process_label.as_deref().unwrap_or("")) {
        (Some("disable"), _) => MacProfile::Disabled,
        (_, "") => MacProfile::None,
        (_, l) => MacProfile::Named(l.to_string()),
    };

    let is_host = |m: &Option<String>| m.as_deref() == Some("host");
    let host_namespaces = HostNamespaces {
        pid: is_host(&host.pid_mode),
        ipc: is_host(&host.ipc_mode),
        uts: is_host(&host.uts_mode),
        network: is_host(&host.network_mode),
        user: is_host(&host.userns_mode),
        cgroup: host.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::HOST),
    };

    let mounts = resp
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let bind = m.typ == Some(MountPointTypeEnum::BIND);
            MountSpec {
                source: if bind {
                    m.source.clone().unwrap_or_default()
                } else {
                    m.name.clone().or(m.source.clone()).unwrap_or_default()
                },
                destination: m.destination.unwrap_or_default(),
                host_path: bind,
                read_only: !m.rw.unwrap_or(true),
                propagation: m.propagation.unwrap_or_default(),
            }
        })
        .collect();

    let devices = host
        .devices
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|d| DeviceSpec {
            host_path: d.path_on_host.unwrap_or_default(),
            container_path: d.path_in_container.unwrap_or_default(),
            permissions: d.cgroup_permissions.unwrap_or_default(),
        })
        .collect();

    let positive = |v: Option<i64>| v.filter(|n| *n > 0);
    let cpu = if let Some(n) = positive(host.nano_cpus) {
        Some(format!("{} cpus", n as f64 / 1e9))
    } else if let Some(q) = positive(host.cpu_quota) {
        Some(format!("quota {q}/{}", positive(host.cpu_period).unwrap_or(100_000)))
    } else if let Some(s) = positive(host.cpu_shares) {
        Some(format!("shares {s}"))
    } else {
        host.cpuset_cpus.clone().filter(|c| !c.is_empty()).map(|c| format!("cpuset {c}"))
    };
    let resources = Resources {
        memory_bytes: positive(host.memory).map(|m| m as u64),
        cpu,
        pids: positive(host.pids_limit),
    };

    // Actual bindings of a running container; the requested ones otherwise.
    let ports = match resp.network_settings.as_ref().and_then(|n| n.ports.as_ref()) {
        Some(p) if p.values().any(|b| b.as_ref().is_some_and(|b| !b.is_empty())) => ports_from(p),
        _ => host.port_bindings.as_ref().map(ports_from).unwrap_or_default(),
    };

    let restart = host.restart_policy.as_ref().map(|r| RestartPolicy {
        name: r.name.map(|n| n.to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| "no".into()),
        max_retries: r.maximum_retry_count.unwrap_or(0),
    });
    let health_check = Some(
        cfg.healthcheck
            .as_ref()
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE"),
    );
    let mut sysctls: Vec<(String, String)> = host.sysctls.clone().unwrap_or_default().into_iter().collect();
    sysctls.sort();
    let path_env =
        cfg.env.as_ref().and_then(|env| env.iter().find_map(|e| e.strip_prefix("PATH=").map(str::to_string)));

    let state = resp.state.as_ref();
    let pid = state.filter(|s| s.running == Some(true)).and_then(|s| s.pid).filter(|p| *p > 0);

    Subject {
        kind: SourceKind::Docker,
        name: resp.name.as_deref().unwrap_or("").trim_start_matches('/').to_string(),
        id: resp.id.clone(),
        pod: None,
        runtime_namespace: None,
        image: cfg.image.clone().unwrap_or_default(),
        location: None,
        rootfs: pid.map(|p| PathBuf::from(format!("/proc/{p}/root"))),
        k8s_list: "",
        config: ContainerConfig {
            user,
            user_text,
            run_as_non_root: false,
            privileged,
            no_new_privileges,
            capabilities,
            cap_add,
            cap_drop,
            seccomp,
            apparmor,
            selinux,
            selinux_violation: None,
            host_namespaces,
            mounts,
            devices,
            device_rules: host.device_cgroup_rules.clone().unwrap_or_default(),
            read_only_rootfs: host.readonly_rootfs.unwrap_or(false),
            // `systempaths=unconfined` is recorded as empty masked paths.
            unmasked_paths: opt("systempaths").as_deref() == Some("unconfined")
                || host.masked_paths.as_ref().is_some_and(|m| m.is_empty()),
            resources,
            pids_applicable: true,
            ports,
            host_ports_k8s: false,
            restart,
            health_check,
            sysctls,
            path_env,
        },
    }
}

/// Docker's `--user` text: `""` (the image's user, merged into the inspect
/// answer, so root when empty), `uid[:gid]`, `name[:group]`.
pub fn parse_user(text: &str) -> UserSpec {
    let user = text.split(':').next().unwrap_or("").trim();
    if user.is_empty() || user == "root" {
        return UserSpec::Uid(0);
    }
    match user.parse::<u32>() {
        Ok(uid) => UserSpec::Uid(uid),
        Err(_) => UserSpec::Name(user.to_string()),
    }
}

fn ports_from(map: &PortMap) -> Vec<PortSpec> {
    let mut out: Vec<PortSpec> = Vec::new();
    for (key, bindings) in map {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else { continue };
        for b in bindings.iter().flatten() {
            let p = PortSpec {
                host_ip: b.host_ip.clone().unwrap_or_default(),
                host_port: b.host_port.as_deref().unwrap_or("").parse().unwrap_or(0),
                container_port,
                protocol: proto.to_string(),
            };
            // dockerd publishes on 0.0.0.0 and :: for one -p: one finding.
            if !out.iter().any(|o| {
                o.container_port == p.container_port
                    && o.protocol == p.protocol
                    && o.host_port == p.host_port
                    && o.all_interfaces() == p.all_interfaces()
            }) {
                out.push(p);
            }
        }
    }
    out.sort_by(|a, b| {
        (a.container_port, &a.protocol, a.host_port).cmp(&(b.container_port, &b.protocol, b.host_port))
    });
    out
}

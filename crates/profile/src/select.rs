//! Which containers a recording follows, and naming the syscall numbers the
//! kernel recorded. Pure.

use crate::recording::Recording;
use model::Container;
use std::collections::{BTreeSet, HashSet};

/// Which containers are recorded.
pub struct Selection {
    /// Container ids named with --container (resolved at start).
    pub ids: BTreeSet<String>,
    pub images: Vec<String>,
    pub labels: Vec<(String, String)>,
    /// Command mode, `--name X` in the command: exactly that container.
    pub name: Option<String>,
    /// Command mode without a name: containers that existed before the command
    /// are not its own (a container someone else starts meanwhile would be
    /// taken for the command's; naming it avoids that).
    pub preexisting: Option<HashSet<String>>,
}

impl Selection {
    pub fn matches(&self, c: &Container) -> bool {
        self.ids.contains(&c.id)
            || self.images.iter().any(|i| image_matches(&c.image, i))
            || self.labels.iter().any(|(k, v)| c.labels.get(k) == Some(v))
            || match &self.name {
                Some(name) => c.name.trim_start_matches('/') == name,
                None => self.preexisting.as_ref().is_some_and(|pre| !pre.contains(&c.id)),
            }
    }
}

/// The `--name` a `docker run`-like command gives its container.
pub fn command_container_name(cmd: &[String]) -> Option<String> {
    let mut it = cmd.iter();
    while let Some(a) = it.next() {
        if a == "--name" {
            return it.next().cloned();
        }
        if let Some(n) = a.strip_prefix("--name=") {
            return Some(n.to_string());
        }
    }
    None
}

/// `nginx` matches `nginx`, `nginx:1.25` and `nginx@sha256:...`.
pub fn image_matches(image: &str, want: &str) -> bool {
    image == want
        || image.strip_prefix(want).is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
}

/// Adds the syscall names of the kernel's numbers to the recording.
pub fn name_syscalls(recording: &mut Recording, native_nrs: &[u32], compat_nrs: &[u32]) {
    use seccomp::{syscalls, Arch};
    let native = Arch::native();
    // The 32-bit ABI the native kernel runs compat tasks with.
    let compat = match native {
        Arch::X86_64 => Some(Arch::X86),
        Arch::Aarch64 => Some(Arch::Arm),
        _ => None,
    };
    let mut unknown = BTreeSet::new();
    let mut resolve = |arch: Option<Arch>, nrs: &[u32]| -> Vec<String> {
        let mut names = Vec::new();
        for &nr in nrs {
            match arch.and_then(|a| syscalls::name(a, nr)) {
                Some(n) => names.push(n.to_string()),
                None => {
                    unknown.insert(nr);
                }
            }
        }
        names
    };
    let native_names = resolve(Some(native), native_nrs);
    let compat_names = resolve(compat, compat_nrs);
    recording.add_syscalls(native_names, compat_names);
    recording.unknown_syscalls.extend(unknown);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_command_names() {
        assert!(image_matches("nginx:1.25", "nginx"));
        assert!(image_matches("nginx", "nginx"));
        assert!(!image_matches("nginx-proxy:1", "nginx"));
        let cmd = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_container_name(&cmd(&["docker", "run", "--name", "web", "img"])),
            Some("web".into())
        );
        assert_eq!(command_container_name(&cmd(&["docker", "run", "--name=web", "img"])), Some("web".into()));
        assert_eq!(command_container_name(&cmd(&["docker", "run", "img"])), None);
    }
}

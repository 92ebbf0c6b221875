//! Hardening: what a container really does ([`recording`]) turned into
//! least-privilege profiles — seccomp ([`seccomp_profile`]), capabilities
//! ([`caps`]), SELinux CIL ([`selinux`]) and the network allow-list
//! ([`network`]), and how `verify` replays a workload ([`verify`]). Pure code:
//! the recorder's kernel side is the sensor, and running containers to verify
//! profiles is the binary's job.

pub mod caps;
pub mod network;
pub mod recording;
pub mod seccomp_profile;
pub mod select;
pub mod selinux;
pub mod validate;
pub mod verify;

pub use caps::CapabilityProfile;
pub use recording::{Recorder, Recording};
pub use validate::ProfileError;

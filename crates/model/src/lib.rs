//! The owned event model of rampart.
//!
//! The sensor decodes raw kernel records into [`Event`]; everything after decode
//! (state, enrichment, rules, outputs, tests) sees only these types, never the
//! kernel ABI structs.

pub mod capture;
mod container;
mod event;
pub mod hash;
pub mod input;
pub mod names;
mod net;
pub mod packed;
mod priority;
mod process;
pub mod utc;

pub use container::{exposes_runtime_socket, Container, ContainerRates, Mount, Runtime};
pub use event::{
    Comm, DnsAnswer, Event, EventKind, EventType, ExecDetails, FlowPhase, FlowRecord, NetWindow, OpenFlags,
    ProcessCtx, UnknownEventType, UserNames,
};
pub use hash::fnv1a;
pub use net::SockAddr;
pub use priority::{Priority, UnknownPriority};
pub use process::{l4proto, tty_nr, Caps, ProcInfo, ProcSource, ProcessLookup, MAX_SOCKET_FDS};

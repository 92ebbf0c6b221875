//! The response engine: what rules ask for when they match, and doing it.
//!
//! `actions:` (a rampart extension of the rule format; Falco-style tooling
//! ignores the unknown key) names what to do when a rule matches: `kill` the
//! process (or its process group), `freeze`, `stop` or `isolate` its
//! container, `deny` a network destination in the kernel, or `{deny: {errno:
//! EPERM}}` a file open or exec through the seccomp agent ([`crate::notify`]).
//!
//! * [`plan`]: `actions:` and `dry_run:` deserialised into typed plans, every
//!   error with the rule file's position.
//! * [`guard`]: the protected list and the rate limit every action passes.
//! * [`responder`]: runs the actions and reports each as an alert with its
//!   outcome (done, failed, dry_run, refused, skipped).
//! * [`kernel`]: kill rules the kernel can test exactly, compiled into the
//!   sensor's in-kernel kill triggers and armed per container cgroup.
//!
//! What each action can prevent (docs/ARCHITECTURE.md): a kill from userspace
//! lands after the syscall that matched (its effects stay), a few ms late; a
//! kill in the kernel happens in the same syscall. `deny` blocks later
//! connections to the destination, not the one that matched; freeze stops
//! progress from then on; isolate drops packets of existing and new
//! connections.

pub mod guard;
pub mod kernel;
pub mod plan;
pub mod responder;

pub use guard::ResponseConfig;
pub use kernel::{ArmNow, ArmedCounts, KernelHandles, KernelPlan, KernelScope};
pub use plan::{plans, ActionKind, Plans, RulePlan};
pub use responder::{action_alert, ActionCounts, Outcome, Responder, ACTION_RULE};

#[cfg(test)]
pub(crate) mod testing {
    use model::{Container, Event, EventKind, ProcessCtx};
    use rules::Ruleset;
    use std::sync::Arc;

    /// A rule `R` on line 1 of `t.yaml`; its next key is on line 6.
    pub const BASE: &str =
        "- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n";

    pub fn ruleset(text: &str) -> Ruleset {
        let mut b = rules::RulesetBuilder::new();
        b.add_file("t.yaml", text);
        b.build().expect("rules load")
    }

    pub fn event(pid: u32, comm: &str, container: bool) -> Event {
        let mut ev = Event {
            ts_ns: 0,
            process: ProcessCtx { pid, comm: comm.into(), ..Default::default() },
            container: None,
            ret: None,
            syscall: None,
            kind: EventKind::Exit { code: 0, signal: 0, core_dumped: false },
        };
        if container {
            ev.container =
                Some(Arc::new(Container { id: "c".repeat(64), name: "web".into(), ..Default::default() }));
        }
        ev
    }
}

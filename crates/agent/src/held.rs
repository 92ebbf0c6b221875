//! Alerts held back until their container's runtime metadata arrives.
//!
//! The first events of a new container are enriched before its runtime has
//! answered an inspect: the registry asks with a short timeout so that the
//! event stream never waits long. An alert raised then would name neither the
//! container nor its image, the fields an operator reads first. Such alerts
//! wait here for at most [`MAX_HOLD`] while events keep flowing and responses
//! act at once; each is rendered when the metadata arrives (or its time is up)
//! with the process ancestry (and the container's rates) as they were at the
//! match.

use model::{ContainerRates, Event, ProcInfo, ProcessLookup};
use rules::{CompiledRule, Ruleset};
use runtime::ContainerRegistry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest an alert waits for its container's name and image.
pub const MAX_HOLD: Duration = Duration::from_secs(3);
/// Alerts held at once; beyond this an alert goes out without waiting (memory
/// stays bounded when a runtime stops answering during a container storm).
pub const MAX_HELD: usize = 4096;
/// Ancestors kept with a held alert (`proc.aname[N]` and friends).
const ANCESTRY_DEPTH: usize = 32;

/// One alert waiting for metadata: what rendering it later needs.
pub struct Held {
    pub ruleset: Arc<Ruleset>,
    pub rule: String,
    pub event: Event,
    pub event_num: u64,
    pub ancestry: Ancestry,
    since: Instant,
}

/// What rendering a held alert reads besides its event, copied at the match:
/// the process's parent chain and its container's rates.
#[derive(Debug, Default)]
pub struct Ancestry {
    pub procs: HashMap<u32, ProcInfo>,
    rates: Option<(String, ContainerRates)>,
}

impl ProcessLookup for Ancestry {
    fn process(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    fn container_rates(&self, container_id: &str) -> Option<ContainerRates> {
        self.rates.as_ref().filter(|(id, _)| id == container_id).map(|(_, r)| *r)
    }
}

impl Held {
    pub fn rule(&self) -> Option<&CompiledRule> {
        self.ruleset.get(&self.rule)
    }
}

/// The queue of held alerts, oldest first.
pub struct HeldAlerts {
    registry: ContainerRegistry,
    queue: VecDeque<Held>,
    max_hold: Duration,
}

impl HeldAlerts {
    pub fn new(registry: ContainerRegistry) -> Self {
        Self::with_max_hold(registry, MAX_HOLD)
    }

    pub fn with_max_hold(registry: ContainerRegistry, max_hold: Duration) -> Self {
        HeldAlerts { registry, queue: VecDeque::new(), max_hold }
    }

    /// Whether an alert on this event must wait: its container has no
    /// metadata yet, or alerts of the same container are already waiting
    /// (alerts of one container go out in order).
    pub fn must_hold(&self, ev: &Event) -> bool {
        let Some(c) = ev.container.as_ref() else { return false };
        if self.queue.len() >= MAX_HELD {
            return false;
        }
        !c.has_metadata()
            || self.queue.iter().any(|h| h.event.container.as_ref().is_some_and(|hc| hc.id == c.id))
    }

    pub fn hold(
        &mut self,
        ruleset: Arc<Ruleset>,
        rule: &CompiledRule,
        ev: &Event,
        event_num: u64,
        procs: Option<&dyn ProcessLookup>,
    ) {
        let rates = procs
            .zip(ev.container.as_ref())
            .and_then(|(p, c)| Some((c.id.clone(), p.container_rates(&c.id)?)));
        let ancestry = Ancestry { procs: procs.map(|p| ancestry_of(ev, p)).unwrap_or_default(), rates };
        self.queue.push_back(Held {
            ruleset,
            rule: rule.name.clone(),
            event: ev.clone(),
            event_num,
            ancestry,
            since: Instant::now(),
        });
    }

    /// Alerts waiting now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The alerts that may go out now (their container has metadata, or they
    /// waited long enough; all of them when `all`), oldest first, with the
    /// container as the registry knows it now.
    pub fn release(&mut self, now: Instant, all: bool) -> Vec<Held> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        // Holding times only grow along the queue and metadata is per
        // container, so one container's alerts leave in their order.
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for mut h in self.queue.drain(..) {
            let known = h
                .event
                .container
                .as_ref()
                .and_then(|c| self.registry.get(&c.id))
                .filter(|c| c.has_metadata());
            if all || known.is_some() || now.duration_since(h.since) >= self.max_hold {
                if let Some(c) = known {
                    h.event.container = Some(c);
                }
                out.push(h);
            } else {
                kept.push_back(h);
            }
        }
        self.queue = kept;
        out
    }
}

/// The event's parent chain, copied so that a later render sees it as it was.
fn ancestry_of(ev: &Event, procs: &dyn ProcessLookup) -> HashMap<u32, ProcInfo> {
    let mut out = HashMap::new();
    let mut pid = ev.process.pid;
    for _ in 0..ANCESTRY_DEPTH {
        let Some(p) = procs.process(pid) else { break };
        let next = p.ppid;
        out.insert(pid, p.clone());
        if next == 0 || next == pid || out.contains_key(&next) {
            break;
        }
        pid = next;
    }
    // The event's own parent, when the table has no entry for the event's pid.
    if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(ev.process.ppid) {
        if let Some(p) = procs.process(ev.process.ppid) {
            slot.insert(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Container, EventKind, ProcSource, ProcessCtx};
    use runtime::{Discovered, RegistryConfig};

    fn registry() -> ContainerRegistry {
        ContainerRegistry::new(RegistryConfig::default(), None, Vec::new())
    }

    fn ruleset() -> Arc<Ruleset> {
        let text = "- rule: R\n  desc: d\n  condition: evt.type = unlink\n  output: \"%container.name %proc.pname\"\n  priority: WARNING\n";
        let mut b = rules::RulesetBuilder::new();
        b.add_file("r.yaml", text);
        Arc::new(b.build().expect("rules load"))
    }

    fn event(container_id: &str, name: &str, ts: u64) -> Event {
        Event {
            ts_ns: ts,
            process: ProcessCtx { pid: 20, ppid: 10, tid: 20, comm: "rm".into(), ..Default::default() },
            container: Some(Arc::new(Container {
                id: container_id.into(),
                name: name.into(),
                ..Default::default()
            })),
            ret: Some(0),
            syscall: None,
            kind: EventKind::Unlink { path: "/x".into(), dir: false },
        }
    }

    fn proc(pid: u32, ppid: u32, comm: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            comm: comm.into(),
            exe: Arc::from(""),
            argv: Arc::from(Vec::new()),
            cmdline: Arc::from(""),
            cwd: Arc::from("/"),
            start_time_ns: 0,
            exited_at_ns: None,
            source: ProcSource::Event,
            ..Default::default()
        }
    }

    fn hold(held: &mut HeldAlerts, rs: &Arc<Ruleset>, ev: &Event, procs: &HashMap<u32, ProcInfo>) {
        let rule = rs.get("R").unwrap();
        held.hold(rs.clone(), rule, ev, 1, Some(procs));
    }

    #[test]
    fn waits_for_metadata_then_renders_with_it() {
        let reg = registry();
        let mut held = HeldAlerts::new(reg.clone());
        let rs = ruleset();
        let ev = event("c1", "", 1);
        assert!(held.must_hold(&ev));
        let mut procs = HashMap::new();
        procs.insert(10, proc(10, 1, "parent"));
        procs.insert(20, proc(20, 10, "rm"));
        hold(&mut held, &rs, &ev, &procs);
        assert!(held.release(Instant::now(), false).is_empty(), "no metadata yet, not timed out");
        // The process table moves on; the held copy does not.
        procs.clear();
        reg.upsert(Discovered {
            container: Container { id: "c1".into(), name: "web".into(), ..Default::default() },
            pid: None,
        });
        let out = held.release(Instant::now(), false);
        assert_eq!(out.len(), 1);
        let h = &out[0];
        assert_eq!(h.event.container.as_ref().unwrap().name, "web");
        let ctx = rules::EvalCtx { procs: Some(&h.ancestry), hostname: None, event_num: h.event_num };
        let (text, _) = h.rule().unwrap().render_output(&h.event, &ctx);
        assert_eq!(text, "web parent");
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn the_containers_rates_at_the_match_are_kept() {
        let mut b = rules::RulesetBuilder::new();
        b.add_file(
            "r.yaml",
            "- rule: R\n  desc: d\n  condition: evt.type = unlink\n  output: cpu=%container.cpu_share\n  priority: WARNING\n",
        );
        let rs = Arc::new(b.build().unwrap());
        let mut held = HeldAlerts::with_max_hold(registry(), Duration::ZERO);
        let procs = HashMap::new();
        let rates: HashMap<String, ContainerRates> =
            [("c1".to_string(), ContainerRates { cpu_percent: Some(97), ..Default::default() })].into();
        let lookup = crate::rates::WithRates { procs: &procs, rates: &rates };
        held.hold(rs.clone(), rs.get("R").unwrap(), &event("c1", "", 1), 1, Some(&lookup));
        drop(rates);
        let out = held.release(Instant::now(), false);
        let ctx = rules::EvalCtx { procs: Some(&out[0].ancestry), hostname: None, event_num: 1 };
        assert_eq!(out[0].rule().unwrap().render_output(&out[0].event, &ctx).0, "cpu=97");
    }

    #[test]
    fn times_out_and_keeps_one_containers_order() {
        let mut held = HeldAlerts::with_max_hold(registry(), Duration::from_millis(50));
        let rs = ruleset();
        let procs = HashMap::new();
        hold(&mut held, &rs, &event("c1", "", 1), &procs);
        // Same container, metadata now present on the event: still waits
        // behind the first alert.
        let later = event("c1", "web", 2);
        assert!(held.must_hold(&later));
        hold(&mut held, &rs, &later, &procs);
        // Other containers with metadata do not wait; the host never does.
        assert!(!held.must_hold(&event("c2", "db", 3)));
        let mut host = event("c2", "db", 3);
        host.container = None;
        assert!(!held.must_hold(&host));
        assert!(held.release(Instant::now(), false).is_empty());
        let out = held.release(Instant::now() + Duration::from_millis(60), false);
        assert_eq!(out.iter().map(|h| h.event.ts_ns).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn bounded_and_flushed_at_the_end() {
        let mut held = HeldAlerts::new(registry());
        let rs = ruleset();
        let procs = HashMap::new();
        for i in 0..MAX_HELD {
            hold(&mut held, &rs, &event("c1", "", i as u64), &procs);
        }
        assert!(!held.must_hold(&event("c9", "", 0)), "a full queue lets alerts go at once");
        assert_eq!(held.release(Instant::now(), true).len(), MAX_HELD);
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn ancestry_is_bounded_and_survives_cycles() {
        let mut procs = HashMap::new();
        for pid in 1..100u32 {
            procs.insert(pid, proc(pid, pid + 1, "p"));
        }
        procs.insert(100, proc(100, 99, "cycle"));
        let mut ev = event("c1", "", 1);
        ev.process.pid = 1;
        ev.process.ppid = 2;
        assert_eq!(ancestry_of(&ev, &procs).len(), ANCESTRY_DEPTH);
        procs.insert(5, proc(5, 4, "x"));
        procs.insert(4, proc(4, 5, "y"));
        ev.process.pid = 5;
        ev.process.ppid = 4;
        assert_eq!(ancestry_of(&ev, &procs).len(), 2);
    }
}

//! User-side event selection for `rampart events`: which container, which event
//! types, and whether host processes are shown.

use model::{Event, EventType};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Container name or id prefix; `None` shows every container.
    pub container: Option<String>,
    /// Event types to show; empty shows all.
    pub types: BTreeSet<EventType>,
    /// Also show processes that are not in a container.
    pub include_host: bool,
}

impl EventFilter {
    /// Parses a comma-separated `--type` list such as `exec,open,connect`.
    pub fn parse_types(list: &str) -> Result<BTreeSet<EventType>, model::UnknownEventType> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
    }

    pub fn wants_type(&self, t: EventType) -> bool {
        self.types.is_empty() || self.types.contains(&t)
    }

    /// Where the kernel may act for an agent watching what this filter
    /// accepts: the same container, and nothing when only some event types
    /// are looked at (a rule's other events would never reach userspace).
    pub fn kernel_scope(&self) -> respond::actions::KernelScope {
        respond::actions::KernelScope {
            container: self.container.clone(),
            every_event_type: self.types.is_empty(),
            arm_now: None,
        }
    }

    /// Decides on a fully enriched event.
    pub fn accepts(&self, ev: &Event) -> bool {
        if !self.wants_type(ev.event_type()) {
            return false;
        }
        match (&ev.container, &self.container) {
            (Some(c), Some(query)) => c.matches(query),
            (Some(_), None) => true,
            // A named container was asked for: host events never match it.
            (None, Some(_)) => false,
            (None, None) => self.include_host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Container, EventKind, ProcessCtx};
    use std::sync::Arc;

    fn event(container: Option<&str>, kind: EventKind) -> Event {
        Event {
            ts_ns: 0,
            process: ProcessCtx::default(),
            container: container.map(|name| {
                Arc::new(Container { id: format!("{name}-id"), name: name.into(), ..Default::default() })
            }),
            ret: None,
            syscall: None,
            kind,
        }
    }

    fn unshare() -> EventKind {
        EventKind::Unshare { flags: 0 }
    }

    #[test]
    fn host_events_need_include_host() {
        let f = EventFilter::default();
        assert!(f.accepts(&event(Some("web"), unshare())));
        assert!(!f.accepts(&event(None, unshare())));
        let f = EventFilter { include_host: true, ..Default::default() };
        assert!(f.accepts(&event(None, unshare())));
    }

    #[test]
    fn container_query_selects_by_name_or_id() {
        let f = EventFilter { container: Some("web".into()), include_host: true, ..Default::default() };
        assert!(f.accepts(&event(Some("web"), unshare())));
        assert!(!f.accepts(&event(Some("db"), unshare())));
        assert!(!f.accepts(&event(None, unshare())));
        let f = EventFilter { container: Some("db-i".into()), ..Default::default() };
        assert!(f.accepts(&event(Some("db"), unshare())));
    }

    #[test]
    fn type_list_parses_and_filters() {
        let types = EventFilter::parse_types("exec, open,,connect").unwrap();
        assert_eq!(types.len(), 3);
        let f = EventFilter { types, ..Default::default() };
        assert!(!f.accepts(&event(Some("web"), unshare())));
        let open = EventKind::Open {
            path: "/x".into(),
            flags: model::OpenFlags::from_raw(0),
            mode: 0,
            raw_path: None,
        };
        assert!(f.accepts(&event(Some("web"), open)));
        assert!(EventFilter::parse_types("exec,bogus").is_err());
    }
}

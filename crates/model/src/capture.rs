//! The binary capture format (`rampart capture --binary`), read by `replay`
//! next to JSON lines, about seven times faster to read.
//!
//! JSON lines repeat each event's container (~600 bytes) and process (~300
//! bytes) and cost a few µs per event to parse. Here a container or process
//! is written once, when first seen, into a table of the writer's, and each
//! event names its entries by index:
//!
//! ```text
//! file   = MAGIC record*
//! record = kind:u8 len:u32le payload[len]
//!   'N'  name        index:u32le  utf8
//!   'C'  container   index:u32le  value(Container)
//!   'P'  process     index:u32le  value(ProcessCtx)
//!   'E'  event       process:u32le container:u32le (NONE: host)
//!                    ts_ns:u64le ret:i64le has:u8 (1: ret, 2: syscall)
//!                    syscall:u32le (a name) value(EventKind)
//! ```
//!
//! Values are in [`crate::packed`]'s encoding: self-describing (the model's
//! optional fields may be left out, a newer writer's extra fields are
//! skipped), with field and variant names written once, as 'N' records, and
//! named by index. A table holds [`TABLE_ENTRIES`] entries; when it is full
//! the writer starts again from index 0, redefining entries before use, so a
//! capture of any length costs the reader bounded memory.
//!
//! Version 1 (magic ending in 1: no names, every value MessagePack with
//! field names, the event's own part one MessagePack map) is still read.
//!
//! The reader takes input from inside containers: each record is bounded
//! (`capture-line` limit), a record that does not decode or names an
//! undefined entry is skipped and reported with its byte offset, and the rest
//! is read. Only a broken frame (a length past the limit or past the end)
//! ends the read, as a reported error.

use crate::packed::{self, Names};
use crate::{Container, Event, EventKind, ProcessCtx};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// The first bytes of a binary capture this version writes.
pub const MAGIC: &[u8; 16] = b"rampart-capture\x02";
/// The magic without its last byte, the format's version.
const MAGIC_STEM: &[u8] = b"rampart-capture";
/// The format version [`Writer`] writes; [`Reader`] reads it and version 1.
pub const VERSION: u8 = 2;
/// Entries per table (names, containers, processes).
pub const TABLE_ENTRIES: usize = 4096;
/// Names one event can add at most (the model's field and variant names are
/// about 300 in all): the writer starts its tables again before one that
/// might not fit.
const NAMES_PER_EVENT: usize = 512;
/// A name's length at most (the model's longest is under 40 bytes): what a
/// hostile capture's names table can hold stays small.
const MAX_NAME: usize = 256;
/// The container index of a host process's event.
const NONE: u32 = u32::MAX;

const NAME: u8 = b'N';
const CONTAINER: u8 = b'C';
const PROCESS: u8 = b'P';
const EVENT: u8 = b'E';

const HAS_RET: u8 = 1;
const HAS_SYSCALL: u8 = 2;

/// Version 1's event tail (the rest are table entries).
#[derive(Deserialize)]
struct TailV1 {
    ts_ns: u64,
    ret: Option<i64>,
    #[serde(default, deserialize_with = "crate::names::de_syscall")]
    syscall: Option<Cow<'static, str>>,
    kind: EventKind,
}

/// One version 1 value (MessagePack), borrowed as it is read.
fn decode_v1<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let mut d = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    // An event nests a few levels; a hostile record's nesting costs stack.
    d.set_max_depth(packed::MAX_DEPTH);
    T::deserialize(&mut d).map_err(|e| e.to_string())
}

/// The writer's side of a table: what was written, by index.
struct Table<K> {
    index: HashMap<K, u32>,
}

impl<K: std::hash::Hash + Eq> Table<K> {
    fn new() -> Self {
        Table { index: HashMap::new() }
    }

    /// The entry's index, and whether it must be written first (the key is
    /// copied only then).
    fn entry<Q>(&mut self, key: &Q) -> (u32, bool)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(&i) = self.index.get(key) {
            return (i, false);
        }
        if self.index.len() >= TABLE_ENTRIES {
            self.index.clear();
        }
        let i = self.index.len() as u32;
        self.index.insert(key.to_owned(), i);
        (i, true)
    }
}

/// Writes events in the binary form; [`Writer::new`] writes the magic.
pub struct Writer<W: Write> {
    out: W,
    names: Names,
    /// Containers by their `Arc` (the registry shares one per container
    /// state); the `Arc` kept in the key so its address is not reused.
    containers: Table<ByAddress>,
    /// Processes by their encoding.
    processes: Table<Vec<u8>>,
    /// The current event's process, encoded.
    buf: Vec<u8>,
    /// The record being written.
    rec: Vec<u8>,
}

/// An `Arc<Container>` compared and hashed by address.
#[derive(Clone)]
struct ByAddress(Arc<Container>);

impl PartialEq for ByAddress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for ByAddress {}
impl std::hash::Hash for ByAddress {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(h)
    }
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(Writer {
            out,
            names: Names::default(),
            containers: Table::new(),
            processes: Table::new(),
            buf: Vec::new(),
            rec: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, ev: &Event) -> io::Result<()> {
        if self.names.len() + NAMES_PER_EVENT > TABLE_ENTRIES {
            // All tables start again: an entry's encoding names names by index.
            self.names.clear();
            self.containers = Table::new();
            self.processes = Table::new();
        }
        let container = match &ev.container {
            None => NONE,
            Some(c) => {
                let (i, new) = self.containers.entry(&ByAddress(c.clone()));
                if new {
                    self.record(CONTAINER, i, |buf, names| packed::to_vec(&**c, names, buf))?;
                }
                i
            }
        };
        self.buf.clear();
        packed::to_vec(&ev.process, &mut self.names, &mut self.buf).map_err(io::Error::other)?;
        let (process, new) = self.processes.entry(self.buf.as_slice());
        if new {
            let bytes = std::mem::take(&mut self.buf);
            self.record(PROCESS, process, |buf, _| {
                buf.extend_from_slice(&bytes);
                Ok(())
            })?;
            self.buf = bytes;
        }
        let syscall = ev.syscall.as_ref().map(|s| self.names.index(s));
        let has =
            if ev.ret.is_some() { HAS_RET } else { 0 } | if syscall.is_some() { HAS_SYSCALL } else { 0 };
        self.record(EVENT, process, |buf, names| {
            buf.extend_from_slice(&container.to_le_bytes());
            buf.extend_from_slice(&ev.ts_ns.to_le_bytes());
            buf.extend_from_slice(&ev.ret.unwrap_or(0).to_le_bytes());
            buf.push(has);
            buf.extend_from_slice(&syscall.unwrap_or(NONE).to_le_bytes());
            packed::to_vec(&ev.kind, names, buf)
        })
    }

    /// One record: kind, length, the index, then what `body` appends; the
    /// names it uses are defined first.
    fn record(
        &mut self,
        kind: u8,
        index: u32,
        body: impl FnOnce(&mut Vec<u8>, &mut Names) -> Result<(), packed::Error>,
    ) -> io::Result<()> {
        let mut rec = std::mem::take(&mut self.rec);
        rec.clear();
        rec.push(kind);
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(&index.to_le_bytes());
        let written = body(&mut rec, &mut self.names).map_err(io::Error::other).and_then(|()| {
            let len = u32::try_from(rec.len() - 5).map_err(|_| io::Error::other("record over 4 GiB"))?;
            rec[1..5].copy_from_slice(&len.to_le_bytes());
            for (i, name) in self.names.take_new() {
                self.out.write_all(&[NAME])?;
                self.out.write_all(&(4 + name.len() as u32).to_le_bytes())?;
                self.out.write_all(&i.to_le_bytes())?;
                self.out.write_all(name.as_bytes())?;
            }
            self.out.write_all(&rec)
        });
        self.rec = rec;
        written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// What the reader found at one record.
#[derive(Debug)]
pub enum Item {
    /// Boxed: an event is ~400 bytes, moved several times on its way out.
    Event(Box<Event>),
    /// A record skipped (does not decode, names an undefined entry, unknown
    /// kind): its byte offset and why. The read goes on.
    Skipped { offset: u64, why: String },
    /// The read cannot go on (a length past the limit or past the end of the
    /// input, or an I/O error): its byte offset and why. Nothing follows.
    Broken { offset: u64, why: String },
}

/// Reads a binary capture; the magic must have been read already (see
/// [`version`]).
pub struct Reader<R: Read> {
    input: R,
    version: u8,
    /// Byte offset of the next record.
    offset: u64,
    max_record: crate::input::Limit,
    /// Names by index, each as [`crate::names::syscall_name`] gives it (a
    /// syscall's name is shared, not copied, by the events naming it).
    names: Vec<Option<Cow<'static, str>>>,
    containers: Vec<Option<Arc<Container>>>,
    processes: Vec<Option<ProcessCtx>>,
    buf: Vec<u8>,
    done: bool,
}

/// The format version of a binary capture whose first bytes are `head`;
/// `None` when it is not one (then it may be JSON lines). A version past
/// [`VERSION`] is returned too, for the caller to refuse by name.
pub fn version(head: &[u8]) -> Option<u8> {
    match head.strip_prefix(MAGIC_STEM) {
        Some([v, ..]) if *v >= 1 => Some(*v),
        _ => None,
    }
}

impl<R: Read> Reader<R> {
    /// `input` positioned after the magic of format `version` (1 or
    /// [`VERSION`]); records over `max_record` are refused.
    pub fn new(input: R, version: u8, max_record: crate::input::Limit) -> Self {
        Reader {
            input,
            version,
            offset: MAGIC.len() as u64,
            max_record,
            names: Vec::new(),
            containers: Vec::new(),
            processes: Vec::new(),
            buf: Vec::new(),
            done: false,
        }
    }

    fn broken(&mut self, offset: u64, why: String) -> Option<Item> {
        self.done = true;
        Some(Item::Broken { offset, why })
    }

    /// Reads exactly `buf.len()` bytes; false at a clean end of input.
    fn fill(&mut self, len: usize) -> io::Result<bool> {
        self.buf.resize(len, 0);
        let mut got = 0;
        while got < len {
            match self.input.read(&mut self.buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Ok(false);
        }
        if got < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("input ends inside a record ({got} of {len} bytes)"),
            ));
        }
        Ok(true)
    }

    /// Index and the rest of a record's payload.
    fn split(payload: &[u8]) -> Result<(usize, &[u8]), String> {
        let (i, rest) = payload.split_first_chunk::<4>().ok_or("record shorter than its index")?;
        let i = u32::from_le_bytes(*i) as usize;
        if i >= TABLE_ENTRIES {
            return Err(format!("index {i} past the table's {TABLE_ENTRIES} entries"));
        }
        Ok((i, rest))
    }

    fn define<T>(table: &mut Vec<Option<T>>, i: usize, v: T) {
        if table.len() <= i {
            table.resize_with(i + 1, || None);
        }
        table[i] = Some(v);
    }

    /// The record's event, `None` for a definition.
    fn record(&mut self, kind: u8) -> Result<Option<Box<Event>>, String> {
        let buf = std::mem::take(&mut self.buf);
        let result = self.decode_record(kind, &buf);
        self.buf = buf;
        result
    }

    /// A container or process definition's value.
    fn value<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, String> {
        match self.version {
            1 => decode_v1(bytes),
            _ => packed::from_slice(bytes, &self.names).map_err(|e| e.to_string()),
        }
    }

    fn decode_record(&mut self, kind: u8, payload: &[u8]) -> Result<Option<Box<Event>>, String> {
        let (i, rest) = Self::split(payload)?;
        match kind {
            NAME if self.version >= 2 => {
                if rest.len() > MAX_NAME {
                    return Err(format!("name {i} of {} bytes, over {MAX_NAME}", rest.len()));
                }
                let name = std::str::from_utf8(rest).map_err(|e| format!("name {i}: {e}"))?;
                Self::define(&mut self.names, i, crate::names::syscall_name(name));
                Ok(None)
            }
            CONTAINER => {
                let c: Container = self.value(rest)?;
                Self::define(&mut self.containers, i, Arc::new(c));
                Ok(None)
            }
            PROCESS => {
                let p: ProcessCtx = self.value(rest)?;
                Self::define(&mut self.processes, i, p);
                Ok(None)
            }
            EVENT => {
                let (c, rest) = rest.split_first_chunk::<4>().ok_or("event record without its container")?;
                let c = u32::from_le_bytes(*c);
                let process = self.processes.get(i).and_then(Option::as_ref);
                let process = process.ok_or_else(|| format!("process {i} is not defined"))?.clone();
                let container = match c {
                    NONE => None,
                    c => {
                        let found = self.containers.get(c as usize).and_then(Option::as_ref);
                        Some(found.ok_or_else(|| format!("container {c} is not defined"))?.clone())
                    }
                };
                let (ts_ns, ret, syscall, kind) = match self.version {
                    1 => {
                        let t: TailV1 = decode_v1(rest)?;
                        (t.ts_ns, t.ret, t.syscall, t.kind)
                    }
                    _ => self.tail(rest)?,
                };
                Ok(Some(Box::new(Event { ts_ns, process, container, ret, syscall, kind })))
            }
            other => Err(format!("unknown record kind {other:#04x}")),
        }
    }

    /// An event's own part, after its indexes.
    #[allow(clippy::type_complexity)]
    fn tail(&self, rest: &[u8]) -> Result<(u64, Option<i64>, Option<Cow<'static, str>>, EventKind), String> {
        let cut = || "event record cut short".to_string();
        let (ts, rest) = rest.split_first_chunk::<8>().ok_or_else(cut)?;
        let (ret, rest) = rest.split_first_chunk::<8>().ok_or_else(cut)?;
        let (&has, rest) = rest.split_first().ok_or_else(cut)?;
        let (syscall, rest) = rest.split_first_chunk::<4>().ok_or_else(cut)?;
        let syscall = match has & HAS_SYSCALL {
            0 => None,
            _ => {
                let i = u32::from_le_bytes(*syscall);
                let name = self.names.get(i as usize).and_then(Option::as_ref);
                Some(name.ok_or_else(|| format!("name {i} is not defined"))?.clone())
            }
        };
        let ret = (has & HAS_RET != 0).then_some(i64::from_le_bytes(*ret));
        let kind = packed::from_slice(rest, &self.names).map_err(|e| e.0)?;
        Ok((u64::from_le_bytes(*ts), ret, syscall, kind))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.done {
                return None;
            }
            let offset = self.offset;
            let head = match self.fill(5) {
                Ok(true) => [self.buf[0], self.buf[1], self.buf[2], self.buf[3], self.buf[4]],
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => return self.broken(offset, e.to_string()),
            };
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as u64;
            if len > self.max_record.bytes {
                let l = self.max_record;
                let why = format!(
                    "record of {len} bytes, over the {} allowed (limit for {}; --input-limit {}=SIZE changes it)",
                    l.bytes, l.what, l.key
                );
                return self.broken(offset, why);
            }
            match self.fill(len as usize) {
                Ok(true) => {}
                Ok(false) if len == 0 => {}
                Ok(false) => return self.broken(offset, "input ends inside a record".into()),
                Err(e) => return self.broken(offset, e.to_string()),
            }
            self.offset += 5 + len;
            match self.record(head[0]) {
                Ok(Some(ev)) => return Some(Item::Event(ev)),
                Ok(None) => continue,
                Err(why) => return Some(Item::Skipped { offset, why }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpenFlags;

    fn event(n: u32, container: Option<Arc<Container>>) -> Event {
        Event {
            ts_ns: 1_000 + n as u64,
            process: ProcessCtx {
                pid: n % 3,
                tid: n % 3,
                comm: "sh".into(),
                exe: "/bin/sh".into(),
                ..Default::default()
            },
            container,
            ret: Some(3),
            syscall: Some(Cow::Borrowed("openat")),
            kind: EventKind::Open {
                path: format!("/etc/f{n}"),
                flags: OpenFlags::from_raw(0),
                mode: 0,
                raw_path: None,
            },
        }
    }

    fn container(id: &str) -> Arc<Container> {
        Arc::new(Container { id: id.into(), name: format!("n-{id}"), ..Default::default() })
    }

    fn write_all(events: &[Event]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
        w.out
    }

    fn read_all(bytes: &[u8]) -> Vec<Item> {
        let v = version(bytes).unwrap();
        Reader::new(&bytes[MAGIC.len()..], v, crate::input::limits::CAPTURE_LINE).collect()
    }

    fn events(items: Vec<Item>) -> Vec<Event> {
        items
            .into_iter()
            .map(|i| match i {
                Item::Event(e) => *e,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn events_come_back_as_written_with_each_entry_written_once() {
        let (a, b) = (container("a"), container("b"));
        let evs: Vec<Event> = (0..30)
            .map(|n| event(n, [Some(a.clone()), Some(b.clone()), None][n as usize % 3].clone()))
            .collect();
        let bytes = write_all(&evs);
        assert_eq!(events(read_all(&bytes)), evs);
        // Two containers, three processes: five definitions before 30 events,
        // and each name (fields, variants, the syscall) defined once.
        let (mut defs, mut names, mut at) = (0, vec![], MAGIC.len());
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
            match bytes[at] {
                NAME => names.push(String::from_utf8(bytes[at + 9..at + 5 + len].to_vec()).unwrap()),
                EVENT => {}
                _ => defs += 1,
            }
            at += 5 + len;
        }
        assert_eq!(defs, 5);
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names.iter().any(|n| n == "openat") && names.iter().any(|n| n == "path"), "{names:?}");
    }

    #[test]
    fn a_full_table_starts_again_and_redefines_its_entries() {
        let evs: Vec<Event> = (0..TABLE_ENTRIES as u32 + 10)
            .map(|n| {
                let mut e = event(n, Some(container(&n.to_string())));
                e.process.pid = n;
                e
            })
            .collect();
        let back = events(read_all(&write_all(&evs)));
        assert_eq!(back.len(), evs.len());
        assert_eq!(back.last(), evs.last());
        assert_eq!(back[TABLE_ENTRIES + 3].container.as_ref().unwrap().id, (TABLE_ENTRIES + 3).to_string());
    }

    #[test]
    fn a_bad_record_is_skipped_with_its_offset_and_the_rest_read() {
        let evs: Vec<Event> = (0..3).map(|n| event(n, None)).collect();
        let mut bytes = write_all(&evs);
        // Corrupt the second event's kind (the first byte of its value,
        // after the header, indexes, time, ret and syscall): that event is
        // skipped, with its offset.
        let mut at = MAGIC.len();
        let mut starts = vec![];
        while at < bytes.len() {
            starts.push(at);
            at += 5 + u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        }
        let second_event = *starts.iter().filter(|&&s| bytes[s] == EVENT).nth(1).unwrap();
        bytes[second_event + 34] = 0xc1; // no tag of the packed encoding
        let items = read_all(&bytes);
        assert!(
            matches!(&items[1], Item::Skipped { offset, .. } if *offset == second_event as u64),
            "{items:?}"
        );
        let got: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.ts_ns),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![evs[0].ts_ns, evs[2].ts_ns]);
    }

    #[test]
    fn version_1_nesting_past_the_limit_is_refused() {
        // Arrays of one element, nested `levels` deep, around a nil.
        let nested = |levels: usize| {
            let mut v = vec![0x91u8; levels];
            v.push(0xc0);
            v
        };
        assert!(decode_v1::<serde::de::IgnoredAny>(&nested(packed::MAX_DEPTH - 2)).is_ok());
        let e = decode_v1::<serde::de::IgnoredAny>(&nested(100)).unwrap_err();
        assert!(e.contains("depth"), "{e}");
    }

    #[test]
    fn undefined_entries_unknown_kinds_and_broken_frames() {
        let mut bytes = MAGIC.to_vec();
        // An event naming process 7, never defined.
        bytes.extend_from_slice(&[EVENT, 8, 0, 0, 0, 7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        // An unknown kind.
        bytes.extend_from_slice(&[b'Z', 4, 0, 0, 0, 0, 0, 0, 0]);
        // An index past the table.
        bytes.extend_from_slice(&[PROCESS, 4, 0, 0, 0, 0xff, 0xff, 0, 0]);
        // A length past the end.
        bytes.extend_from_slice(&[PROCESS, 100, 0, 0, 0, 1]);
        let items = read_all(&bytes);
        let whys: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
        assert_eq!(items.len(), 4, "{whys:?}");
        assert!(whys[0].contains("process 7 is not defined"), "{whys:?}");
        assert!(whys[1].contains("unknown record kind"), "{whys:?}");
        assert!(whys[2].contains("past the table"), "{whys:?}");
        assert!(matches!(&items[3], Item::Broken { why, .. } if why.contains("inside a record")), "{whys:?}");
        // A length over the cap ends the read before reading it.
        let mut big = MAGIC.to_vec();
        big.extend_from_slice(&[EVENT, 0xff, 0xff, 0xff, 0x7f]);
        let items: Vec<Item> =
            Reader::new(&big[MAGIC.len()..], VERSION, crate::input::limits::CAPTURE_LINE).collect();
        assert!(
            matches!(&items[..], [Item::Broken { why, .. }] if why.contains("--input-limit capture-line=SIZE")),
            "{items:?}"
        );
    }

    fn json_events(text: &str) -> Vec<Event> {
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Every kind of event: one of each type a real capture of the rules
    /// benchmark held, and the network kinds, an exec with its details and
    /// names, a container with its pod.
    fn every_kind() -> Vec<Event> {
        let mut evs = json_events(include_str!("../tests/data/capture-v1.jsonl"));
        evs.extend(json_events(include_str!("../tests/data/kinds.jsonl")));
        evs
    }

    #[test]
    fn every_kind_of_event_comes_back_as_written() {
        let evs = every_kind();
        assert_eq!(evs.len(), 34);
        assert_eq!(events(read_all(&write_all(&evs))), evs);
    }

    #[test]
    fn version_1_captures_are_still_read() {
        // Written by the version 1 writer (rampart before format 2) from
        // capture-v1.jsonl.
        let v1 = include_bytes!("../tests/data/capture-v1.bin");
        assert_eq!(version(v1), Some(1));
        assert_eq!(events(read_all(v1)), json_events(include_str!("../tests/data/capture-v1.jsonl")));
    }

    #[test]
    fn versions_are_told_by_the_magic() {
        assert_eq!(version(MAGIC), Some(VERSION));
        assert_eq!(version(b"rampart-capture\x03..."), Some(3));
        assert_eq!(version(b"rampart-capture"), None);
        assert_eq!(version(b"{\"ts_ns\":1}"), None);
    }

    #[test]
    fn a_full_names_table_starts_every_table_again() {
        // Unknown syscalls are names of their own: enough of them fill the
        // names table, and every table starts again.
        let c = container("c");
        let evs: Vec<Event> = (0..TABLE_ENTRIES as u32)
            .map(|n| {
                let mut e = event(n, Some(c.clone()));
                e.syscall = Some(Cow::Owned(format!("sys{n}")));
                e
            })
            .collect();
        let bytes = write_all(&evs);
        assert_eq!(events(read_all(&bytes)), evs);
        // The container was defined twice: once before the restart, once after.
        let (mut containers, mut at) = (0, MAGIC.len());
        while at < bytes.len() {
            containers += (bytes[at] == CONTAINER) as usize;
            at += 5 + u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        }
        assert_eq!(containers, 2);
    }

    #[test]
    fn names_are_checked() {
        let evs: Vec<Event> = (0..2).map(|n| event(n, None)).collect();
        let bytes = write_all(&evs);
        // A name that is not UTF-8: that record is skipped; the events that
        // use it then name an undefined name.
        let mut bad = bytes.clone();
        let first_name = MAGIC.len();
        assert_eq!(bad[first_name], NAME);
        bad[first_name + 9] = 0xff;
        let whys: Vec<String> = read_all(&bad)
            .iter()
            .filter_map(|i| match i {
                Item::Skipped { why, .. } => Some(why.clone()),
                _ => None,
            })
            .collect();
        assert!(whys[0].starts_with("name 0: invalid utf-8"), "{whys:?}");
        // A name too long to be one.
        let mut long = MAGIC.to_vec();
        long.extend_from_slice(&[NAME]);
        long.extend_from_slice(&(4 + 257u32).to_le_bytes());
        long.extend_from_slice(&[1, 0, 0, 0]);
        long.extend_from_slice(&[b'n'; 257]);
        let items = read_all(&long);
        assert!(
            matches!(&items[..], [Item::Skipped { why, .. }] if why == "name 1 of 257 bytes, over 256"),
            "{items:?}"
        );
        // Each process uses the name; each event then names a process that
        // was not defined.
        assert_eq!(
            whys[1..],
            [
                "name 0 is not defined",
                "process 0 is not defined",
                "name 0 is not defined",
                "process 1 is not defined"
            ]
        );
    }
}

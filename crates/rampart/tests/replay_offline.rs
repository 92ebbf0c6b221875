//! `rampart replay` rebuilds lineage from the capture alone: it never reads
//! the local /proc, whose pids are this machine's processes, not the
//! capture's. Offline: no root, no runtime.

use model::{Event, EventKind, OpenFlags, ProcessCtx};
use std::process::{Command, Stdio};

const RAMPART: &str = env!("CARGO_BIN_EXE_rampart");

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim().to_string()
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

fn ev(ts: u64, pid: u32, ppid: u32, comm: &str, kind: EventKind, syscall: &str) -> String {
    let e = Event {
        ts_ns: ts,
        process: ProcessCtx { pid, tid: pid, ppid, comm: comm.into(), ..Default::default() },
        container: None,
        ret: Some(0),
        syscall: Some(syscall.to_string().into()),
        kind,
    };
    serde_json::to_string(&e).unwrap()
}

#[test]
fn replay_never_names_local_processes() {
    // pids that exist here: this test, its parent, and pid 1
    let me = std::process::id();
    let parent = parent_of(me);
    let local: Vec<String> = [me, parent, 1]
        .iter()
        .map(|p| comm(*p))
        .filter(|c| !c.is_empty() && c != "capsh" && c != "capchild")
        .collect();
    let child = 3_999_123;
    let capture = [
        // a fork by a process the capture never saw start (it exists here)
        ev(
            1,
            me,
            parent,
            "capsh",
            EventKind::Fork { child_pid: child, child_tid: child, thread: false },
            "clone",
        ),
        ev(
            2,
            1,
            0,
            "capinit",
            EventKind::Fork { child_pid: 3_999_124, child_tid: 3_999_124, thread: false },
            "clone",
        ),
        ev(
            3,
            child,
            me,
            "capchild",
            EventKind::Open {
                path: "/etc/shadow".into(),
                flags: OpenFlags::from_raw(0),
                mode: 0,
                raw_path: None,
            },
            "openat",
        ),
        // an event of a pid that exists here, whose parent does too
        ev(
            4,
            me,
            parent,
            "capsh",
            EventKind::Open {
                path: "/etc/shadow".into(),
                flags: OpenFlags::from_raw(0),
                mode: 0,
                raw_path: None,
            },
            "openat",
        ),
    ]
    .join("\n");
    let dir = std::env::temp_dir().join(format!("rampart-replay-offline-{me}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.jsonl");
    std::fs::write(&file, capture + "\n").unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Lineage\n  desc: d\n  condition: evt.type = openat\n  \
         output: \"LINEAGE pid=%proc.pid name=%proc.name pname=%proc.pname a1=%proc.aname[1] a2=%proc.aname[2] \
         exe=%proc.exepath pexe=%proc.pexepath cmd=%proc.cmdline\"\n  priority: WARNING\n",
    )
    .unwrap();
    let o = Command::new(RAMPART)
        .args(["replay", "--no-default-rules", "--rules", rules.to_str().unwrap(), file.to_str().unwrap()])
        .env("RAMPART_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("LINEAGE")).collect();
    assert_eq!(lines.len(), 2, "{out}\n{err}");
    // the child's parent is known from the capture only by its pid: no name
    assert!(
        lines[0].contains(&format!("pid={child} name=capchild pname=<NA> a1=<NA> a2=<NA>")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!("pid={me} name=capsh pname=<NA> a1=<NA> a2=<NA> exe=<NA>")),
        "{}",
        lines[1]
    );
    for line in &lines {
        for name in &local {
            assert!(!line.contains(&format!("={name} ")), "local process {name:?} named in replay: {line}");
        }
        assert!(!line.contains("pexe=/"), "a local executable path: {line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

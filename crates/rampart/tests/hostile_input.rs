//! Hostile file inputs end with a clear error or a skipped line, never a hang
//! or an abort: FIFOs, devices, invalid bytes in captures and alerts files.
//! Offline: no root, no runtime.

use model::{Event, EventKind, OpenFlags, ProcessCtx};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RAMPART: &str = env!("CARGO_BIN_EXE_rampart");

/// Runs rampart, killing it after 60 s (a hang is the bug these tests catch).
fn rampart(args: &[&str]) -> Output {
    rampart_env(args, &[])
}

fn rampart_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(RAMPART)
        .args(args)
        .env("RAMPART_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rampart");
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("rampart {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn event(path: &str, ts: u64) -> Vec<u8> {
    let ev = Event {
        ts_ns: ts,
        process: ProcessCtx { pid: 7, tid: 7, comm: "sh".into(), ..Default::default() },
        container: None,
        ret: Some(3),
        syscall: Some("openat".into()),
        kind: EventKind::Open { path: path.into(), flags: OpenFlags::from_raw(0), mode: 0, raw_path: None },
    };
    serde_json::to_vec(&ev).unwrap()
}

#[test]
fn replay_refuses_devices_and_fifos_without_blocking() {
    let dir = tempfile_dir("replay-fifo");
    let fifo = dir.join("capture.fifo");
    mkfifo(&fifo);
    for (file, what) in [("/dev/zero", "is a character device"), (fifo.to_str().unwrap(), "is a fifo")] {
        let o = rampart(&["replay", "--no-default-rules", file]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains(&format!("{file} {what}, not a regular file")), "{err}");
    }
}

#[test]
fn replay_skips_an_invalid_line_and_replays_the_rest() {
    let dir = tempfile_dir("replay-bad-line");
    let file = dir.join("capture.jsonl");
    let mut bytes = event("/one", 1);
    bytes.extend_from_slice(b"\n{\"ts_ns\":\xff}\n");
    bytes.extend(event("/three", 3));
    bytes.push(b'\n');
    std::fs::write(&file, bytes).unwrap();
    let o = rampart(&["replay", "--no-default-rules", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("{}:2: skipped: invalid UTF-8 at column 10", file.display())), "{err}");
    assert!(err.contains("replayed 2 events (1 unreadable lines)"), "{err}");
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rules_check_refuses_a_fifo_in_a_rules_directory() {
    let dir = tempfile_dir("rules-fifo");
    mkfifo(&dir.join("b.yaml"));
    let o = rampart(&["rules", "check", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(out.contains("b.yaml is a fifo, not a regular file"), "{out}");
}

#[test]
fn input_limits_are_set_on_the_command_line_or_in_the_environment() {
    let dir = tempfile_dir("input-limit");
    let capture = dir.join("capture.jsonl");
    let mut bytes = event("/a-path-long-enough-to-pass-the-lowered-line-limit", 1);
    bytes.push(b'\n');
    std::fs::write(&capture, bytes).unwrap();
    let file = capture.to_str().unwrap();
    let skipped = format!(
        "{file}:1: skipped: line longer than 64 bytes (limit for capture lines; --input-limit capture-line=SIZE changes it)"
    );
    // Default: the line is read.
    let o = rampart(&["replay", "--no-default-rules", file]);
    assert!(stderr(&o).contains("replayed 1 events"), "{}", stderr(&o));
    // Lowered by the flag (after the subcommand too) or by the environment.
    let by_flag = rampart(&["replay", "--no-default-rules", "--input-limit", "capture-line=64", file]);
    let by_env =
        rampart_env(&["replay", "--no-default-rules", file], &[("RAMPART_INPUT_LIMITS", "capture-line=64B")]);
    for o in [by_flag, by_env] {
        let err = stderr(&o);
        assert!(err.contains(&skipped) && err.contains("replayed 0 events"), "{err}");
    }
    // The flag wins over the environment.
    let o = rampart_env(
        &["--input-limit", "capture-line=1MiB", "replay", "--no-default-rules", file],
        &[("RAMPART_INPUT_LIMITS", "capture-line=64")],
    );
    assert!(stderr(&o).contains("replayed 1 events"), "{}", stderr(&o));

    // A whole-file input over its limit is refused, naming the limit.
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, "- list: l\n  items: [a, b, c]\n").unwrap();
    let o = rampart(&[
        "--input-limit",
        "rules=16",
        "rules",
        "check",
        "--no-default-rules",
        rules.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(out.contains("is larger than 16 bytes (limit for rule files; --input-limit rules=SIZE"), "{out}");

    // A bad setting is an error before anything runs.
    for (setting, why) in [
        ("rule=1MiB", "unknown input limit 'rule' (known: rules, config,"),
        ("rules=lots", "'lots' is not a size"),
        ("rules=0", "must be at least 1 byte"),
    ] {
        let o = rampart(&["--input-limit", setting, "rules", "check", rules.to_str().unwrap()]);
        assert!(!o.status.success(), "{setting}");
        assert!(stderr(&o).contains(why), "{setting}: {}", stderr(&o));
    }
}

#[test]
fn yaml_the_parser_panics_on_is_a_positioned_error_and_no_panic_message() {
    // libyaml-safer 0.3.0 panics on a tag before ',' in a flow sequence
    // (found by the rules fuzz target).
    let dir = tempfile_dir("yaml-panic");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, "- list: l\n  items: [a, !b, c]\n").unwrap();
    let o = rampart(&["rules", "check", "--no-default-rules", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let at = format!("{}:2:11: invalid YAML: the YAML parser cannot read what follows", rules.display());
    assert!(out.contains(&at), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}

/// Deep nesting ahead of a control character: the character is a syntax
/// error that the serde readers report themselves, but they read everything
/// before it first, and deep nesting costs them quadratic time (the k8s fuzz
/// target's hang: 100 KB took 4.7 s, so these 600 KB would run past the
/// helper's 60 s). Every YAML input refuses the nesting with its position:
/// the agent config, a network policy, a Kubernetes manifest.
#[test]
fn deep_nesting_before_a_control_character_is_refused_at_once() {
    let dir = tempfile_dir("deep-then-control");
    let deep = |key: &str| format!("{key}: {}{}\n\u{1}\n", "[".repeat(300_000), "]".repeat(300_000));
    let config = dir.join("config.yaml");
    std::fs::write(&config, deep("alerts")).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, deep("egress")).unwrap();
    let manifest = dir.join("manifest.yaml");
    std::fs::write(&manifest, deep("spec")).unwrap();
    let capture = dir.join("empty.jsonl");
    std::fs::write(&capture, "").unwrap();
    for (args, file) in [
        (vec!["replay", "--config", config.to_str().unwrap(), capture.to_str().unwrap()], &config),
        (vec!["netpolicy", "check", "-f", policy.to_str().unwrap()], &policy),
        (vec!["audit", "--k8s", manifest.to_str().unwrap()], &manifest),
    ] {
        let o = rampart(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {err}");
        assert!(err.contains("nesting deeper than 64 levels"), "{args:?}: {err}");
        assert!(err.contains(&file.display().to_string()) && err.contains("1:"), "{args:?}: {err}");
    }
}

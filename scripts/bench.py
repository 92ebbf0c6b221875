#!/usr/bin/env python3
"""Overhead benchmark of rampart against no agent and against auditd.

Runs, inside containers of rampart-test:latest (tests/image), three loops that
time themselves (rtest bench-open / bench-exec / bench-connect), each several
times in each mode, interleaved within each repetition:

  none     no agent
  rampart  `rampart events --json > /dev/null` attached (one agent per run,
           so its summary gives that run's events seen and dropped)
  run      `rampart run` with the default rules, alerts to /dev/null (what a
           user deploys: sensor, enrichment, rules, outputs)
  floor    `rampart run` as `run`, with the floor build (--rampart-floor; cargo
           feature bench-floor, bpf/floor.h): the same programs attached,
           each returning at once. What the kernel charges for the hooks'
           invocation alone, the floor any design on these hooks pays
  record   `rampart record --image rampart-test:latest -o TMPDIR` attached (the
           events of `rampart` plus the recorder (enter_syscalls on every syscall entry))
  auditd   auditd running with rules on the same syscalls
           (open/openat/openat2, execve/execveat, connect), removed afterwards
  bpftrace Debian's bpftrace printing one line per open/exec/connect of the
           test image's containers (an opensnoop-style tracer), to /dev/null
  bpftrace_counts
           Debian's bpftrace counting every syscall per cgroup and syscall
           number (the job of sensor.syscall_counts), its maps printed at exit
  rampart_b, run_b
           `rampart` and `run` with the binary of --rampart-b (an A/B of two
           builds in one interleaved run); `run` with the config of --config-b

The agents run on the CPUs the loops are not pinned to (--agent-cpus).
--bpf-stats reports each agent BPF program's ns/run (kernel.bpf_stats_enabled,
which adds its own cost to every run); --startstop N times starts and stops
only.

Each rampart run also times its start (spawn to `sensor ready`) and its stop
(SIGINT to exit).

an iperf3 run: TCP throughput between two containers on a Docker network of
the bench's own (image rampart-iperf3:latest, tests/image/iperf3.sh), with no
agent and with `rampart events --json --flows` (flow accounting on),
interleaved; then a sustained run: a paced open loop at RATE events/s for SECS seconds with
rampart attached, reporting drops, the agent's peak RSS (VmHWM) and CPU; then the
live pipeline at saturation (--pipeline-opens): `rampart run` pinned to one CPU
and an unpaced open loop, reporting events per second of the agent's CPU time
(what one core sustains through decode, enrichment, rules and outputs), events
per second of wall time, the agent's CPU share and drops (A/B with --rampart-b).

Each timed loop also reports its own CPU time (the container's children's
utime + stime), which on a shared machine leaves out the time the loop waited
for its CPU; --workloads picks the loops.

Prints a table and writes JSON (default target/bench/results.json).
Run through scripts/bench.sh, which builds rampart in release first. Root only.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

IMAGE = "rampart-test:latest"
RTEST = "/usr/local/bin/rtest"
AUDIT_KEY = "rampart-bench"
AUDIT_RULES = [
    ["-S", "open,openat,openat2"],
    ["-S", "execve,execveat"],
    ["-S", "connect"],
]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def docker_bin():
    d = os.environ.get("DOCKER")
    if d:
        return d
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


# The timed loops run pinned to one CPU (set by main from --cpuset). On these
# VMs an idle second vCPU makes cross-CPU wakeups slow (fork+exec ran ~1.7x
# faster with *any* agent keeping the other vCPU busy), which would measure the
# hypervisor rather than the agent; pinned, the workload's CPU pays exactly the
# in-kernel cost and the agent's userspace runs on the other CPU.
CPUSET = []
BPF_STATS = False
# The agents run on the other CPUs (set by main): the loop's CPU then pays only
# the in-kernel work, not the agent's userspace competing for it.
AGENT_CPUS = set()


def pin_agent():
    if AGENT_CPUS:
        os.sched_setaffinity(0, AGENT_CPUS)


def cpu_list(text):
    """CPUs of a list like "0,2-3"."""
    cpus = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def bench_startstop(n, binaries):
    """Start (spawn to ready) and stop (SIGINT to exit) of `rampart run`, each
    binary in turn, idle and while a container opens files in a loop."""
    res = {}
    for busy in (False, True):
        name = f"rampart-bench-busy-{os.getpid()}"
        if busy:
            run([docker_bin(), "run", "-d", "--rm", "--name", name] + CPUSET +
                [IMAGE, RTEST, "bench-open", "2000000000"])
        try:
            for i in range(n):
                for label, b, config in binaries:
                    log(f"start/stop {label} {'busy' if busy else 'idle'} {i + 1}/{n}")
                    agent = Runner(b, config)
                    time.sleep(0.5)
                    st = agent.stop()
                    slot = res.setdefault(f"{label} {'busy' if busy else 'idle'}", {"start_s": [], "stop_s": []})
                    slot["start_s"].append(st["start_s"])
                    slot["stop_s"].append(st["stop_s"])
        finally:
            if busy:
                run([docker_bin(), "rm", "-f", name], check=False)
    for slot in res.values():
        for k in ("start_s", "stop_s"):
            slot[k.replace("_s", "_median_s")] = round(statistics.median(slot[k]), 3)
    return res


# rtest runs under the container's shell, which then prints its own
# /proc/PID/stat: its children's CPU time (cutime + cstime) is the loop's, in
# clock ticks. On a shared machine the loop's wall time also holds the time it
# waited for its CPU; its CPU time does not (softirq work done on its behalf,
# e.g. loopback packets, is in it).
CPU_WRAP = '%s "$@"; r=$?; echo "selfstat $(cat /proc/$$/stat)"; exit $r' % RTEST


def children_cpu_ns(out):
    m = re.search(r"^selfstat .*\)(.*)$", out, re.M)
    if not m:
        return None
    fields = m.group(1).split()
    return (int(fields[13]) + int(fields[14])) * 10**9 // os.sysconf("SC_CLK_TCK")


def in_container(args, name_hint, pinned=True):
    """Run rtest ARGS in a fresh container; return (loop ns, n, output, loop CPU ns)."""
    name = f"rampart-bench-{name_hint}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    t0 = time.monotonic()
    p = run([docker_bin(), "run", "--rm", "--name", name] + (CPUSET if pinned else []) +
            [IMAGE, "sh", "-c", CPU_WRAP, "rtest"] + args, check=False)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: rtest {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    m = re.search(r"result op=\S+ n=(\d+) ns=(\d+)", p.stdout)
    if not m:
        raise SystemExit(f"bench: no result line from rtest {' '.join(args)}:\n{p.stdout}")
    return int(m.group(2)), int(m.group(1)), wall, p.stdout, children_cpu_ns(p.stdout)


# --------------------------------------------------------------------------
# rampart
# --------------------------------------------------------------------------


def wait_programs_gone(ids, timeout=30):
    """Waits until the kernel has released the BPF programs `ids`. A stopped
    agent exits before its syscall tracepoints are released (they are let go
    in the background, RCU grace periods apart, doing nothing): until then
    every syscall still enters them, and the next mode measured would pay
    for the last one's hooks. Without bpftool: a fixed 8 s."""
    if not ids:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            live = {p["id"] for p in json.loads(run(["bpftool", "prog", "show", "-j"]).stdout)}
        except (OSError, subprocess.CalledProcessError, ValueError):
            time.sleep(8)
            return
        if not ids & live:
            return
        time.sleep(0.2)
    print(f"bench: {len(ids & live)} BPF programs of a stopped agent still loaded after {timeout} s", file=sys.stderr)


class Agent:
    def __init__(self, binary, args=("events", "--json")):
        self.errf = tempfile.NamedTemporaryFile(prefix="rampart-bench-", suffix=".stderr", delete=False)
        spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.errf,
            preexec_fn=pin_agent,
        )
        deadline = time.monotonic() + 60
        while True:
            text = self.stderr()
            if "rampart: sensor ready" in text:
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: rampart exited ({self.proc.returncode}) before ready:\n{text}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise SystemExit(f"bench: rampart not ready after 60 s:\n{text}")
            time.sleep(0.01)
        self.cpu0 = self.cpu_seconds()
        self.t0 = time.monotonic()
        self.start_s = self.t0 - spawned

    def stderr(self):
        with open(self.errf.name, errors="replace") as f:
            return f.read()

    def vm_hwm_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def prog_ids(self):
        """The agent's BPF programs: the prog_id of each of its BPF fds (programs and links)."""
        ids = set()
        fdinfo = f"/proc/{self.proc.pid}/fdinfo"
        try:
            fds = os.listdir(fdinfo)
        except OSError:
            return ids  # exited
        for fd in fds:
            try:
                with open(os.path.join(fdinfo, fd)) as f:
                    ids.update(int(l.split()[1]) for l in f if l.startswith("prog_id:"))
            except (OSError, ValueError, IndexError):
                pass
        return ids

    def bpf_stats(self):
        """ns per run of each of the agent's BPF programs (kernel.bpf_stats_enabled)."""
        try:
            progs = json.loads(run(["bpftool", "prog", "show", "-j"]).stdout)
        except (OSError, subprocess.CalledProcessError, ValueError):
            return {}
        ids = self.prog_ids()
        out = {}
        for p in progs:
            if p["id"] in ids and p.get("run_cnt"):
                out[p["name"]] = {"run_cnt": p["run_cnt"], "run_time_ns": p["run_time_ns"]}
        return out

    def stop(self, summary=True):
        progs = self.bpf_stats() if BPF_STATS else {}
        ids = self.prog_ids()
        hwm = self.vm_hwm_kib()
        cpu1 = self.cpu_seconds()
        elapsed = time.monotonic() - self.t0
        alive = self.proc.poll() is None
        stopping = time.monotonic()
        if alive:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        stop_s = time.monotonic() - stopping
        wait_programs_gone(ids)
        text = self.stderr()
        os.unlink(self.errf.name)
        m, summary_line = None, None
        for line in text.splitlines():
            mm = re.search(r"(\d+) events seen, (\d+) dropped", line)
            if mm:
                m = mm
                summary_line = line
        if not alive or rc != 0 or (summary and not m):
            raise SystemExit(f"bench: rampart ended badly (alive={alive}, rc={rc}):\n{text}")
        return {
            "seen": int(m.group(1)) if m else None,
            "dropped": int(m.group(2)) if m else None,
            "summary": summary_line.strip() if m else None,
            "vm_hwm_kib": hwm,
            "cpu_s": None if cpu1 is None or self.cpu0 is None else round(cpu1 - self.cpu0, 2),
            "agent_wall_s": round(elapsed, 2),
            "start_s": round(self.start_s, 3),
            "stop_s": round(stop_s, 3),
            "bpf_progs": progs,
        }


class Runner(Agent):
    """`rampart run` with the default rules: the whole agent as deployed."""

    def __init__(self, binary, config=None):
        super().__init__(binary, ["run", "--metrics-address", "off"] + (["--config", config] if config else []))


# An opensnoop-style tracer on the same syscalls: one printed line per event of
# the benchmark's containers (their comm is rtest or nop).
BPFTRACE_PROG = r"""
tracepoint:syscalls:sys_enter_open,tracepoint:syscalls:sys_enter_openat
/comm == "rtest"/ { @path[tid] = args->filename; }
tracepoint:syscalls:sys_exit_open,tracepoint:syscalls:sys_exit_openat
/@path[tid] != 0/ { printf("open %d %s %d\n", pid, str(@path[tid]), args->ret); delete(@path[tid]); }
tracepoint:syscalls:sys_enter_execve /comm == "rtest"/ { printf("exec %d %s\n", pid, str(args->filename)); }
tracepoint:syscalls:sys_enter_connect /comm == "rtest"/ { printf("connect %d %d\n", pid, args->fd); }
BEGIN { printf("ready\n"); }
"""

# The peer of sensor.syscall_counts: every syscall counted per cgroup and
# syscall number, as bpftrace's syscount one-liners do (Debian's bpftrace
# 0.17 has no raw tracepoints: this is the perf tracepoint path).
BPFTRACE_COUNTS_PROG = r"""
tracepoint:raw_syscalls:sys_enter { @[cgroup, args->id] = count(); }
BEGIN { printf("ready\n"); }
"""


class Bpftrace:
    def __init__(self, prog=BPFTRACE_PROG):
        self.prog = prog

    def __enter__(self):
        if not shutil.which("bpftrace"):
            raise SystemExit("bench: bpftrace is not installed (apt-get install bpftrace)")
        self.out = tempfile.NamedTemporaryFile(prefix="rampart-bench-bpftrace-", delete=False)
        self.proc = subprocess.Popen(["bpftrace", "-e", self.prog], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.out, text=True)
        # "Attaching N probes..." comes first, then the BEGIN probe's line.
        seen = []
        while len(seen) < 5:
            line = self.proc.stdout.readline()
            seen.append(line)
            if not line or "ready" in line:
                break
        if "ready" not in seen[-1]:
            raise SystemExit(f"bench: bpftrace did not start: {seen!r}")
        # Drain (and count) its output as a user's terminal or pipe would.
        self.lines = 0
        import threading

        def drain():
            for _ in self.proc.stdout:
                self.lines += 1
        self.t = threading.Thread(target=drain, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.t.join(timeout=5)
        os.unlink(self.out.name)
        return False


class Recorder(Agent):
    """`rampart record` of every container of the test image: the event hooks
    plus enter_syscalls (tp_btf sys_enter), which sets a bit per syscall in a per-cgroup bitmap."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="rampart-bench-record-")
        super().__init__(binary, ["record", "--image", IMAGE, "-o", self.dir])

    def stop(self):
        st = super().stop(summary=False)
        path = os.path.join(self.dir, "recording.json")
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError) as e:
            raise SystemExit(f"bench: rampart record wrote no usable {path}: {e}")
        shutil.rmtree(self.dir)
        if not rec.get("syscalls"):
            raise SystemExit(f"bench: rampart record saw no syscalls ({path})")
        st |= {"seen": rec["events"], "dropped": rec["events_lost"], "syscalls": len(rec["syscalls"])}
        return st


# --------------------------------------------------------------------------
# auditd
# --------------------------------------------------------------------------


def audit_status():
    out = run(["auditctl", "-s"]).stdout
    st = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            st[parts[0]] = parts[1]
    return st


class Auditd:
    """auditd with the benchmark's rules; undoes everything it changed on exit."""

    def __enter__(self):
        if not shutil.which("auditctl") or not shutil.which("auditd"):
            raise SystemExit("bench: auditd is not installed (apt-get install auditd, or scripts/setup.sh)")
        st = audit_status()
        self.prev_enabled = st.get("enabled", "0")
        self.prev_backlog = st.get("backlog_limit", "64")
        self.started = False
        if st.get("pid", "0") == "0":
            log("starting auditd")
            run(["auditd"])
            for _ in range(100):
                if audit_status().get("pid", "0") != "0":
                    break
                time.sleep(0.1)
            else:
                raise SystemExit("bench: auditd did not register with the kernel")
            self.started = True
        # A backlog large enough that bursts are queued, not dropped or waited on.
        run(["auditctl", "-b", "65536"])
        run(["auditctl", "-e", "1"])
        for r in AUDIT_RULES:
            run(["auditctl", "-a", "always,exit", "-F", "arch=b64", *r, "-k", AUDIT_KEY])
        self.lost0 = int(audit_status().get("lost", "0"))
        return self

    def lost(self):
        return int(audit_status().get("lost", "0")) - self.lost0

    def __exit__(self, *exc):
        for r in AUDIT_RULES:
            run(["auditctl", "-d", "always,exit", "-F", "arch=b64", *r, "-k", AUDIT_KEY], check=False)
        run(["auditctl", "-b", self.prev_backlog], check=False)
        if self.started:
            pid = audit_status().get("pid", "0")
            if pid != "0":
                os.kill(int(pid), signal.SIGTERM)
                for _ in range(100):
                    if not os.path.exists(f"/proc/{pid}"):
                        break
                    time.sleep(0.1)
        run(["auditctl", "-e", self.prev_enabled], check=False)
        return False


# --------------------------------------------------------------------------


IPERF3_IMAGE = "rampart-iperf3:latest"


def bench_iperf3(a, binary):
    """iperf3 TCP throughput between two containers, no agent vs rampart with
    flow accounting; returns the results dict."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    built = run([os.path.join(root, "tests", "image", "iperf3.sh")], check=False)
    if built.returncode != 0:
        raise SystemExit(f"bench: building {IPERF3_IMAGE} failed:\n{built.stderr}")
    d = docker_bin()
    tag = f"rampart-bench-iperf-{os.getpid()}"
    run([d, "network", "create", tag])
    server = f"{tag}-srv"
    res = {"seconds": a.iperf_secs, "modes": {"none": [], "rampart_flows": []}, "agent": []}
    try:
        run([d, "run", "-d", "--name", server, "--network", tag, IPERF3_IMAGE, "iperf3", "-s"])
        time.sleep(1)

        def once():
            p = run([d, "run", "--rm", "--network", tag, IPERF3_IMAGE, "iperf3", "-c", server,
                     "-t", str(a.iperf_secs), "--json"], check=False)
            if p.returncode != 0:
                raise SystemExit(f"bench: iperf3 client failed:\n{p.stdout}{p.stderr}")
            end = json.loads(p.stdout)["end"]
            return {"bps": end["sum_received"]["bits_per_second"],
                    "retransmits": end["sum_sent"].get("retransmits", 0)}

        once()  # warm-up
        for rep in range(a.iperf_reps):
            log(f"iperf3: none, run {rep + 1}/{a.iperf_reps}, {a.iperf_secs} s")
            res["modes"]["none"].append(once())
            log(f"iperf3: rampart (flows), run {rep + 1}/{a.iperf_reps}, {a.iperf_secs} s")
            agent = Agent(binary, ("events", "--json", "--flows"))
            try:
                res["modes"]["rampart_flows"].append(once())
            finally:
                res["agent"].append(agent.stop())
    finally:
        run([d, "rm", "-f", server], check=False)
        run([d, "network", "rm", tag], check=False)
    med = {k: statistics.median(s["bps"] for s in v) for k, v in res["modes"].items()}
    res["median_gbps"] = {k: round(v / 1e9, 2) for k, v in med.items()}
    res["ratio"] = round(med["rampart_flows"] / med["none"], 3) if med["none"] else None
    return res


def bench_pipeline(a, binaries):
    """The live pipeline at saturation: `rampart run` (decode, enrichment, the
    default rules, outputs) pinned to one CPU, fed by an unpaced open loop in
    a container on another. Events per second of the run's wall time are what
    the agent kept up with on the CPU share it got; events per second of the
    agent's own CPU time are what one core sustains (on a shared machine the
    agent does not get its whole CPU)."""
    agent_cpu = min(AGENT_CPUS) if AGENT_CPUS else None
    out = {}
    for i in range(a.pipeline_reps):
        for label, binary in binaries:
            log(f"pipeline {label}: {a.pipeline_opens:,} opens, `rampart run` on CPU {agent_cpu}, "
                f"run {i + 1}/{a.pipeline_reps}")
            res = out.setdefault(label, {"binary": binary, "opens": a.pipeline_opens, "agent_cpu": agent_cpu,
                                         "runs": []})
            pipeline_run(a, binary, agent_cpu, res)
    for res in out.values():
        for k in ("events_per_s", "events_per_cpu_s", "dropped", "agent_cpu_share"):
            vals = [r[k] for r in res["runs"] if r[k] is not None]
            res[f"median_{k}"] = statistics.median(vals) if vals else None
    return out


def pipeline_run(a, binary, agent_cpu, res):
    """One saturation run of `binary`, appended to res["runs"]."""
    saved = set(AGENT_CPUS)
    if agent_cpu is not None:
        AGENT_CPUS.clear()
        AGENT_CPUS.add(agent_cpu)
    try:
        agent = Runner(binary)
    finally:
        AGENT_CPUS.clear()
        AGENT_CPUS.update(saved)
    try:
        # One second's worth of slices, each far over what a core can
        # open: the loop runs unpaced until it has done them all.
        ns, done, _, _, _ = in_container(["paced-open", str(a.pipeline_opens), "1", "1"], "pipeline")
    finally:
        st = agent.stop()
    run_s = st["agent_wall_s"]
    res["runs"].append({
        "opens": done,
        "loop_s": round(ns / 1e9, 2),
        "agent_wall_s": run_s,
        "seen": st["seen"],
        "dropped": st["dropped"],
        "agent_cpu_s": st["cpu_s"],
        "events_per_s": round(st["seen"] / run_s) if run_s else None,
        "events_per_cpu_s": round(st["seen"] / st["cpu_s"]) if st["cpu_s"] else None,
        "agent_cpu_share": round(st["cpu_s"] / run_s, 2) if st["cpu_s"] and run_s else None,
        "vm_hwm_kib": st["vm_hwm_kib"],
    })


def workloads(a):
    every = [
        ("open", ["bench-open", str(a.open_n)], a.open_n, "open+read+close"),
        ("exec", ["bench-exec", str(a.exec_n)], a.exec_n, "fork+exec of a static nop"),
        ("connect", ["bench-connect", str(a.connect_n)], a.connect_n, "loopback connect+accept"),
    ]
    chosen = [w for w in a.workloads.split(",") if w]
    unknown = set(chosen) - {w[0] for w in every}
    if unknown:
        raise SystemExit(f"bench: unknown workload(s) {', '.join(sorted(unknown))}")
    return [w for w in every if w[0] in chosen]


def measure(w, slot):
    """One timed run of workload w, its wall and CPU time added to slot."""
    name, args, n, _ = w
    ns, got_n, _, _, cpu_ns = in_container(args, name)
    assert got_n == n
    slot["samples_ns"].append(ns)
    if cpu_ns is not None:
        slot.setdefault("cpu_samples_ns", []).append(cpu_ns)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rampart", default=None, help="rampart binary (default target/release/rampart)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--open-n", type=int, default=500_000,
                    help="open loop iterations (auditd makes each ~15x slower here)")
    ap.add_argument("--exec-n", type=int, default=5_000)
    ap.add_argument("--connect-n", type=int, default=20_000)
    ap.add_argument("--modes", default="none,floor,rampart,run,bpftrace,auditd")
    ap.add_argument("--workloads", default="open,exec,connect", help="the loops to time (comma-separated)")
    ap.add_argument("--sustained-rate", type=int, default=200_000)
    ap.add_argument("--sustained-secs", type=int, default=30)
    ap.add_argument("--sustained-workers", type=int, default=2,
                    help="processes sharing the paced rate (one core cannot open 200k/s here)")
    ap.add_argument("--no-sustained", action="store_true")
    ap.add_argument("--pipeline-opens", type=int, default=3_000_000,
                    help="opens of the live-pipeline saturation run (`rampart run` on one CPU); 0 skips it")
    ap.add_argument("--pipeline-reps", type=int, default=3)
    ap.add_argument("--iperf-secs", type=int, default=10, help="length of each iperf3 run")
    ap.add_argument("--iperf-reps", type=int, default=3)
    ap.add_argument("--no-iperf", action="store_true", help="skip the iperf3 throughput runs")
    ap.add_argument("--cpuset", default="0",
                    help="CPUs the timed loops are pinned to (docker --cpuset-cpus; '' for none)")
    ap.add_argument("--agent-cpus", default=None,
                    help="CPUs the agents run on (default: those not in --cpuset; '' for no pinning)")
    ap.add_argument("--rampart-b", default=None,
                    help="a second rampart binary for the modes rampart_b and run_b (A/B in one run)")
    ap.add_argument("--rampart-floor", default=None,
                    help="the floor build for the mode floor (default target/bench/rampart-floor; "
                         "scripts/bench.sh builds it)")
    ap.add_argument("--config-b", default=None,
                    help="a config file for `run` in the modes run_b and the B of --startstop (an A/B "
                         "of a setting, e.g. `sensor: {prefilter: false}`); --rampart-b defaults to "
                         "the A binary then")
    ap.add_argument("--config-a", default=None,
                    help="a config file for `run` in the mode run (e.g. to A/B two builds with the same "
                         "setting, with --rampart-b and --config-b)")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="turn on kernel.bpf_stats_enabled and report each BPF program's ns/run "
                         "(the stats add their own cost to every run)")
    ap.add_argument("--startstop", type=int, default=0,
                    help="time N starts and stops of `rampart run` (and of --rampart-b), idle and "
                         "with a busy container, interleaved; then exit")
    ap.add_argument("--out", default=None, help="JSON results (default target/bench/results.json)")
    a = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    binary = a.rampart or os.path.join(target, "release", "rampart")
    out_path = a.out or os.path.join(root, "target", "bench", "results.json")
    modes = [m for m in a.modes.split(",") if m]
    binary_b = a.rampart_b or (binary if a.config_b else None)
    a.rampart_floor = a.rampart_floor or os.path.join(target, "bench", "rampart-floor")
    if "floor" in modes and not os.access(a.rampart_floor, os.X_OK):
        raise SystemExit(f"bench: no floor build at {a.rampart_floor} (scripts/bench.sh builds it)")
    if any(m.endswith("_b") for m in modes) and not binary_b:
        raise SystemExit("bench: modes rampart_b and run_b need --rampart-b")
    if a.cpuset:
        CPUSET[:] = ["--cpuset-cpus", a.cpuset]
    if a.agent_cpus is not None:
        AGENT_CPUS.update(cpu_list(a.agent_cpus))
    elif a.cpuset:
        AGENT_CPUS.update(os.sched_getaffinity(0) - cpu_list(a.cpuset))
    global BPF_STATS
    BPF_STATS = a.bpf_stats
    if os.geteuid() != 0:
        raise SystemExit("bench: must run as root")
    need_agent = (any(m in modes for m in ("rampart", "run", "record")) or not a.no_sustained or not a.no_iperf
                  or a.pipeline_opens > 0)
    if need_agent and not os.access(binary, os.X_OK):
        raise SystemExit(f"bench: no rampart binary at {binary} (cargo build --release -p rampart)")

    if BPF_STATS:
        stats_was = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
    try:
        bench(a, modes, binary, binary_b, out_path)
    finally:
        if BPF_STATS:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(stats_was)


def bench(a, modes, binary, binary_b, out_path):
    results = {
        "machine": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
            "docker": run([docker_bin(), "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip(),
        },
        "config": vars(a) | {"rampart": binary},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workloads": {},
    }
    if a.startstop:
        binaries = [("A", binary, None)] + ([("B", binary_b, a.config_b)] if binary_b else [])
        results["startstop"] = bench_startstop(a.startstop, binaries)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(results, f, indent=2)
        for label, slot in results["startstop"].items():
            print(f"run {label}: start median {slot['start_median_s']:.2f} s {slot['start_s']}; "
                  f"stop median {slot['stop_median_s']:.2f} s {slot['stop_s']}")
        print(f"\nresults: {out_path}")
        return
    ws = workloads(a)
    for name, _, n, what in ws:
        results["workloads"][name] = {"n": n, "what": what, "modes": {}}

    for mode in modes:
        if mode not in ("none", "floor", "rampart", "run", "record", "auditd", "bpftrace", "bpftrace_counts",
                        "rampart_b", "run_b"):
            raise SystemExit(f"bench: unknown mode {mode}")
    # Modes are interleaved within each repetition (none, rampart, record,
    # auditd, then again) so that drift in the machine's speed hits every mode alike; one
    # discarded warm-up run per workload first fills caches.
    for w in ws:
        in_container(w[1], w[0] + "-warmup")
    for rep in range(a.reps):
        for w in ws:
            for mode in modes:
                log(f"{w[0]}: {mode}, run {rep + 1}/{a.reps}, {w[2]} ops")
                slot = results["workloads"][w[0]]["modes"].setdefault(mode, {"samples_ns": []})
                if mode == "none":
                    measure(w, slot)
                elif mode in ("floor", "rampart", "run", "record", "rampart_b", "run_b"):
                    kind = {"rampart_b": "rampart", "run_b": "run"}.get(mode, mode)
                    if mode == "run_b":
                        agent = Runner(binary_b, a.config_b)
                    elif mode == "floor":
                        agent = Runner(a.rampart_floor, a.config_a)
                    elif mode == "run":
                        agent = Runner(binary, a.config_a)
                    else:
                        agent = {"rampart": Agent, "run": Runner, "record": Recorder}[kind](
                            binary_b if mode.endswith("_b") else binary)
                    try:
                        measure(w, slot)
                    finally:
                        st = agent.stop()
                    acc = slot.setdefault("agent", {"seen": 0, "dropped": 0, "vm_hwm_kib": 0,
                                                    "start_s": [], "stop_s": []})
                    acc["seen"] += st["seen"]
                    acc["dropped"] += st["dropped"]
                    acc["start_s"].append(st["start_s"])
                    acc["stop_s"].append(st["stop_s"])
                    acc["vm_hwm_kib"] = max(acc["vm_hwm_kib"], st.get("vm_hwm_kib") or 0)
                    loop_s = sum(slot["samples_ns"]) / 1e9
                    acc["events_per_s"] = round(acc["seen"] / loop_s) if loop_s else None
                    for prog, v in st["bpf_progs"].items():
                        tot = acc.setdefault("bpf_progs", {}).setdefault(prog, {"run_cnt": 0, "run_time_ns": 0})
                        tot["run_cnt"] += v["run_cnt"]
                        tot["run_time_ns"] += v["run_time_ns"]
                        tot["ns_per_run"] = round(tot["run_time_ns"] / tot["run_cnt"], 1)
                    if "syscalls" in st:
                        acc["syscalls"] = max(acc.get("syscalls", 0), st["syscalls"])
                elif mode in ("bpftrace", "bpftrace_counts"):
                    with Bpftrace(BPFTRACE_COUNTS_PROG if mode == "bpftrace_counts" else BPFTRACE_PROG) as bt:
                        measure(w, slot)
                    slot["lines"] = slot.get("lines", 0) + bt.lines
                else:
                    with Auditd() as au:
                        lost0 = au.lost()
                        measure(w, slot)
                        slot["lost"] = slot.get("lost", 0) + au.lost() - lost0

    for w in results["workloads"].values():
        base = w["modes"].get("none")
        for m in w["modes"].values():
            m["median_ns"] = int(statistics.median(m["samples_ns"]))
            m["ns_per_op"] = round(m["median_ns"] / w["n"], 1)
            if m.get("cpu_samples_ns"):
                m["cpu_median_ns"] = int(statistics.median(m["cpu_samples_ns"]))
        if base:
            for m in w["modes"].values():
                m["ratio"] = round(m["median_ns"] / base["median_ns"], 2)
                if m.get("cpu_median_ns") and base.get("cpu_median_ns"):
                    m["cpu_ratio"] = round(m["cpu_median_ns"] / base["cpu_median_ns"], 2)

    if not a.no_iperf:
        results["iperf3"] = bench_iperf3(a, binary)

    if not a.no_sustained:
        rate, secs = a.sustained_rate, a.sustained_secs
        log(f"sustained: {rate} opens/s for {secs} s ({a.sustained_workers} workers), rampart attached")
        agent = Agent(binary)
        try:
            ns, done, _, out, _ = in_container(
                ["paced-open", str(rate), str(secs), str(a.sustained_workers)], "sustained", pinned=False)
        finally:
            st = agent.stop()
        achieved = re.search(r"achieved_rate=(\d+)", out)
        late = re.search(r"late_slices=(\d+)", out)
        results["sustained"] = {
            "target_rate": rate,
            "seconds": secs,
            "workers": a.sustained_workers,
            "opens": done,
            "achieved_rate": int(achieved.group(1)) if achieved else None,
            "late_slices": int(late.group(1)) if late else None,
            "agent": st,
        }

    if a.pipeline_opens > 0:
        results["pipeline"] = bench_pipeline(a, [("A", binary)] + ([("B", binary_b)] if binary_b else []))

    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(results, f, indent=2)
    print_table(results, modes)
    print(f"\nresults: {out_path}")


def fmt_ms(ns):
    return f"{ns / 1e6:,.0f}"


def print_table(r, modes):
    m = r["machine"]
    print(f"\nrampart benchmark: {m['cpu']} x{m['cpus']}, kernel {m['kernel']}, dockerd {m['docker']}; "
          f"median of {r['config']['reps']} runs, loop time inside the container\n")
    hdr = f"{'workload':<9}{'n':>10}"
    for mode in modes:
        hdr += f"{mode + ' ms':>13}{'ns/op':>12}"
        if mode != "none":
            hdr += f"{'x':>8}"
    hdr += f"{'rampart ev/s':>14}{'dropped':>9}{'audit lost':>11}"
    print(hdr)
    print("-" * len(hdr))
    for name, w in r["workloads"].items():
        line = f"{name:<9}{w['n']:>10,}"
        for mode in modes:
            d = w["modes"].get(mode)
            if not d:
                line += f"{'-':>13}{'-':>12}" + ("" if mode == "none" else f"{'-':>8}")
                continue
            line += f"{fmt_ms(d['median_ns']):>13}{d['ns_per_op']:>12,.0f}"
            if mode != "none":
                ratio = d.get("ratio")
                line += f"{(str(ratio) + 'x') if ratio else '-':>8}"
        ra = w["modes"].get("rampart", {}).get("agent")
        au = w["modes"].get("auditd")
        line += f"{(format(ra['events_per_s'], ',') if ra and ra['events_per_s'] is not None else '-'):>14}"
        line += f"{(format(ra['dropped'], ',') if ra else '-'):>9}"
        line += f"{(format(au['lost'], ',') if au else '-'):>11}"
        print(line)
    above = [(name, w["modes"]["run"]["median_ns"] / w["modes"]["floor"]["median_ns"])
             for name, w in r["workloads"].items() if "run" in w["modes"] and "floor" in w["modes"]]
    if above:
        print("run over floor (rampart's own work, the hooks' invocation left out): "
              + ", ".join(f"{name} {x:.2f}x" for name, x in above))
    for name, w in r["workloads"].items():
        cpu = [(mode, d) for mode, d in w["modes"].items() if d.get("cpu_median_ns")]
        if cpu:
            print(f"{name} CPU time/op (the loop's own, without waits for its CPU): " + ", ".join(
                f"{mode} {d['cpu_median_ns'] / w['n']:,.0f} ns" + (f" ({d['cpu_ratio']}x)" if d.get("cpu_ratio") and mode != "none" else "")
                for mode, d in cpu))
    ip = r.get("iperf3")
    if ip:
        g = ip["median_gbps"]
        drops = sum(x["dropped"] or 0 for x in ip["agent"])
        print(f"\niperf3 TCP between two containers ({ip['seconds']} s runs, median of "
              f"{len(ip['modes']['none'])}): no agent {g['none']} Gbit/s, rampart with flows "
              f"{g['rampart_flows']} Gbit/s, ratio {ip['ratio']}; rampart dropped {drops} events")
    s = r.get("sustained")
    if s:
        ag = s["agent"]
        hwm = f"{ag['vm_hwm_kib'] / 1024:.0f} MiB" if ag.get("vm_hwm_kib") else "?"
        cpu = f"{100 * ag['cpu_s'] / ag['agent_wall_s']:.0f}% of a core" if ag.get("cpu_s") is not None else "?"
        print(f"\nsustained: target {s['target_rate']:,} opens/s for {s['seconds']} s "
              f"({s['workers']} workers), achieved {s['achieved_rate'] or 0:,}/s ({s['opens']:,} opens); "
              f"rampart saw {ag['seen']:,}, dropped {ag['dropped']:,}, peak RSS {hwm}, CPU {cpu}")
    for label, pl in r.get("pipeline", {}).items():
        print(f"\nlive pipeline {label} (`rampart run`, default rules, pinned to CPU {pl['agent_cpu']}; an unpaced open "
              f"loop of {pl['opens']:,} opens; medians of {len(pl['runs'])}): "
              f"{pl['median_events_per_cpu_s']:,.0f} events per second of the agent's CPU time, "
              f"{pl['median_events_per_s']:,.0f} events/s of wall time with {pl['median_agent_cpu_share']:.0%} "
              f"of its CPU, {pl['median_dropped']:,} dropped")
        for x in pl["runs"]:
            print(f"  run: {x['seen']:,} seen, {x['dropped']:,} dropped in {x['agent_wall_s']} s, agent CPU "
                  f"{x['agent_cpu_s']} s: {x['events_per_cpu_s']:,}/CPU-s, {x['events_per_s']:,}/s")
    for name, w in r["workloads"].items():
        ra = w["modes"].get("rampart", {}).get("agent")
        if ra:
            print(f"rampart [{name}]: {ra['seen']:,} events seen, {ra['dropped']:,} dropped over "
                  f"{len(w['modes']['rampart']['samples_ns'])} runs, peak RSS {ra['vm_hwm_kib'] / 1024:.0f} MiB")
    for name, w in r["workloads"].items():
        for mode, d in w["modes"].items():
            progs = d.get("agent", {}).get("bpf_progs")
            if progs:
                busy = sorted(progs.items(), key=lambda kv: -kv[1]["run_time_ns"])[:6]
                print(f"bpf [{name}, {mode}]: " + ", ".join(
                    f"{p} {v['ns_per_run']:.0f} ns x {v['run_cnt']:,}" for p, v in busy))
    for mode in ("floor", "rampart", "run", "rampart_b", "run_b"):
        starts = [x for w in r["workloads"].values() for x in w["modes"].get(mode, {}).get("agent", {}).get("start_s", [])]
        stops = [x for w in r["workloads"].values() for x in w["modes"].get(mode, {}).get("agent", {}).get("stop_s", [])]
        if starts:
            print(f"{mode}: start (spawn to ready) median {statistics.median(starts):.2f} s, max {max(starts):.2f} s; "
                  f"stop (SIGINT to exit) median {statistics.median(stops):.2f} s, max {max(stops):.2f} s "
                  f"over {len(starts)} runs")
    for name, w in r["workloads"].items():
        rr = w["modes"].get("record", {}).get("agent")
        if rr:
            print(f"record [{name}]: {rr['seen']:,} events recorded, {rr['dropped']:,} lost, "
                  f"{rr['syscalls']} syscalls in the recording over "
                  f"{len(w['modes']['record']['samples_ns'])} runs, peak RSS {rr['vm_hwm_kib'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

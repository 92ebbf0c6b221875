//! Privileged tests of the kernel flow table (bpf/flows.bpf.c): loopback
//! traffic of this host with `include_host`, so no container is needed. The
//! container tests (iperf3 between two containers, attribution) are in
//! crates/rampart/tests/flows.rs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use sensor::flows::{FlowSource, FlowTable};
use sensor::FlowConfig;

/// One table at a time: each counts the other's traffic.
static SERIAL: Mutex<()> = Mutex::new(());

fn cgroup_root() -> std::path::PathBuf {
    runtime::find_cgroup2_mount().expect("a cgroup v2 hierarchy")
}

fn table(max_entries: u32) -> FlowTable {
    let cfg = FlowConfig { max_entries, ..Default::default() };
    FlowTable::start(&cfg, &cgroup_root(), true).expect("flow table loads and attaches")
}

#[test]
#[ignore = "privileged: needs root and BPF"]
fn loopback_tcp_flow_counts_payload_both_ways_and_sees_the_close() {
    tcp_flow_over("127.0.0.1");
}

#[test]
#[ignore = "privileged: needs root and BPF"]
fn loopback_tcp_flow_over_ipv6_too() {
    tcp_flow_over("::1");
}

fn tcp_flow_over(ip: &str) {
    testkit::require_root();
    testkit::require_bpf();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut flows = table(4096);
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let server_port = listener.local_addr().unwrap().port();
    const UP: usize = 3 * 1024 * 1024 + 17;
    const DOWN: usize = 100_003;
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![0u8; UP];
        s.read_exact(&mut got).unwrap();
        s.write_all(&vec![7u8; DOWN]).unwrap();
    });
    let mut c = TcpStream::connect((ip, server_port)).unwrap();
    let client_port = c.local_addr().unwrap().port();
    c.write_all(&vec![1u8; UP]).unwrap();
    let mut back = vec![0u8; DOWN];
    c.read_exact(&mut back).unwrap();
    drop(c);
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // Both sockets closed: the kernel took their flows out of the table and
    // sent their final counters on the ring of ended flows.
    let ended = flows.ended();
    let entries = flows.entries();
    let find = |local: u16, remote: u16| {
        ended
            .iter()
            .find(|(k, _)| {
                k.proto == 6 && k.local.1 == local && k.remote.1 == remote && k.local.0.to_string() == ip
            })
            .map(|(k, v)| (*k, *v))
            .unwrap_or_else(|| panic!("no ended flow {local}->{remote} in {ended:?}"))
    };
    let (ck, client) = find(client_port, server_port);
    let (_, server) = find(server_port, client_port);
    // Payload is exactly what the applications wrote (no loss on loopback).
    assert_eq!(client.payload_out, UP as u64, "{client:?}");
    assert_eq!(client.payload_in, DOWN as u64, "{client:?}");
    assert_eq!(server.payload_in, UP as u64, "{server:?}");
    assert_eq!(server.payload_out, DOWN as u64, "{server:?}");
    // IP bytes add at least 40 bytes of headers per segment.
    assert!(client.bytes_out >= client.payload_out + 40 * client.packets_out, "{client:?}");
    // One side's out is the other's in, but for the last packets of a close:
    // a TIME_WAIT socket is no full socket and its acks go out through the
    // kernel's control socket, so what it sends is not counted on egress and
    // what reaches it is not counted on ingress. At most two such packets.
    for (out, inn) in [(client, server), (server, client)] {
        assert!(out.bytes_out.abs_diff(inn.bytes_in) <= 2 * 80, "{out:?} {inn:?}");
        assert!(out.packets_out.abs_diff(inn.packets_in) <= 2, "{out:?} {inn:?}");
    }
    assert!(client.first_ns > 0 && client.last_ns >= client.first_ns);
    // Both sockets are closed (the client went through FIN_WAIT to CLOSE).
    assert!(client.closed_ns > 0, "client close not seen: {client:?}");
    assert!(server.closed_ns > 0, "server close not seen: {server:?}");
    assert!(client.state_changes >= 2, "{client:?}");
    assert!(
        entries.iter().all(|(k, _)| k.local.1 != client_port && k.remote.1 != client_port),
        "ended flows left in the table: {entries:?}"
    );
    assert!(flows.take(&ck).is_none(), "an ended flow is no longer in the table");
    assert_eq!(flows.stats().failed_inserts, 0);

    // An open flow stays in the table; taking it returns its counters and
    // removes it.
    let sink = UdpSocket::bind((ip, 0)).unwrap();
    let sender = UdpSocket::bind((ip, 0)).unwrap();
    sender.send_to(&[0u8; 100], sink.local_addr().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let port = sender.local_addr().unwrap().port();
    let (uk, _) = flows
        .entries()
        .into_iter()
        .find(|(k, _)| k.proto == 17 && k.local.1 == port)
        .unwrap_or_else(|| panic!("no open UDP flow from port {port}"));
    let taken = flows.take(&uk).expect("entry taken");
    assert_eq!(taken.payload_out, 100);
    assert!(flows.entries().iter().all(|(k, _)| *k != uk));
}

#[test]
#[ignore = "privileged: needs root and BPF"]
fn a_full_table_counts_what_it_could_not_hold() {
    testkit::require_root();
    testkit::require_bpf();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const MAX: u32 = 4;
    const FLOWS: usize = 64;
    let flows = table(MAX);
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = sink.local_addr().unwrap();
    // Each socket is a flow of its own (its own source port).
    let senders: Vec<UdpSocket> = (0..FLOWS).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for s in &senders {
        s.send_to(&[0u8; 100], dest).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let st = flows.stats();
    assert!(st.entries <= u64::from(MAX), "{st:?}");
    assert_eq!(st.max_entries, MAX);
    // Each datagram counts once on egress (its sender's flow) and once on
    // ingress (the sink's flow from that sender): at most MAX of the 2*FLOWS
    // flows found room, the rest are counted as failed inserts.
    let at_least = (2 * FLOWS) as u64 - u64::from(MAX);
    assert!(st.failed_inserts >= at_least, "{st:?}");
    assert!(st.lost_packets >= at_least, "{st:?}");
    // 100 bytes of payload + 8 UDP + 20 IP per datagram
    assert!(st.lost_bytes >= at_least * 128, "{st:?}");
}

#[test]
#[ignore = "privileged: needs root and BPF"]
fn a_pinned_table_is_readable_while_its_owner_runs_and_gone_after() {
    testkit::require_root();
    testkit::require_bpf();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = std::path::PathBuf::from(format!("/sys/fs/bpf/rampart-test-flows-{}", std::process::id()));
    let mut flows = table(64);
    flows.pin(&base).expect("pin under bpffs");
    let reader = sensor::flows::PinnedFlows::open(&base).expect("pinned table found");
    assert_eq!(reader.stats().max_entries, 64);
    // The reader sees the owner's switch of its per-flow table.
    assert!(reader.records_kept());
    flows.records().unwrap().set(false).unwrap();
    assert!(!reader.records_kept());
    // A directory named after a process that does not exist is skipped.
    std::fs::create_dir_all(base.join("999999999")).unwrap();
    drop(reader);
    drop(flows);
    assert!(!base.join(std::process::id().to_string()).exists(), "pins left behind");
    assert!(sensor::flows::PinnedFlows::open(&base).is_none());
    let _ = std::fs::remove_dir(base.join("999999999"));
    let _ = std::fs::remove_dir(&base);
}

/// This process's cgroup v2 id (the inode of its cgroup directory).
fn own_cgroup_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let line = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = line.lines().find_map(|l| l.strip_prefix("0::")).expect("a cgroup v2 line");
    std::fs::metadata(cgroup_root().join(path.trim_start_matches('/'))).unwrap().ino()
}

/// Bytes out, bytes in of this process's cgroup in the per-container counters.
fn own_traffic(flows: &FlowTable) -> (u64, u64) {
    let me = own_cgroup_id();
    flows
        .netstat()
        .into_iter()
        .find(|(cg, _)| *cg == me)
        .map_or((0, 0), |(_, s)| (s.counters.bytes[1], s.counters.bytes[0]))
}

/// A TCP exchange over loopback: `up` bytes one way, then closed; returns
/// the client's port.
fn exchange(up: usize) -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got.len()
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client_port = c.local_addr().unwrap().port();
    c.write_all(&vec![1u8; up]).unwrap();
    drop(c);
    assert_eq!(server.join().unwrap(), up);
    std::thread::sleep(Duration::from_millis(200));
    client_port
}

/// The per-flow table's switch (`fl_records`): off, a connection leaves no
/// entry and no ended record, while the per-container counters still count
/// its bytes (IP bytes on the wire, both ways: loopback); on again, the next
/// connection is in the table.
#[test]
#[ignore = "privileged: needs root and BPF"]
fn with_the_table_off_only_the_per_container_counters_count() {
    testkit::require_root();
    testkit::require_bpf();
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut flows = table(4096);
    let records = flows.records().expect("switch handle");
    assert!(records.is_on(), "the loader keeps the table");
    records.set(false).unwrap();
    assert!(!records.is_on());
    let _ = flows.ended();
    const UP: usize = 2 * 1024 * 1024 + 5;
    let (out0, in0) = own_traffic(&flows);
    let port = exchange(UP);
    let (out1, in1) = own_traffic(&flows);
    let has = |flows: &mut FlowTable| {
        let ended = flows.ended();
        let open = flows.entries();
        ended
            .iter()
            .chain(open.iter())
            .any(|(k, _)| k.proto == 6 && (k.local.1 == port || k.remote.1 == port))
    };
    assert!(!has(&mut flows), "a flow of port {port} counted with the table off");
    // Our cgroup sent and received the upload (client and server are both
    // this process), each segment's headers once.
    let (sent, received) = (out1 - out0, in1 - in0);
    eprintln!("with the table off: {sent} bytes out, {received} in for {UP} of payload");
    assert!(sent >= UP as u64 + 40 && received >= UP as u64 + 40, "{sent} {received}");
    assert!(sent < UP as u64 * 11 / 10 && received < UP as u64 * 11 / 10, "{sent} {received}");

    records.set(true).unwrap();
    let port = exchange(1000);
    let ended = flows.ended();
    assert!(
        ended.iter().any(|(k, v)| k.proto == 6 && k.local.1 == port && v.payload_out == 1000),
        "the table on again: no ended flow of port {port} in {ended:?}"
    );
}

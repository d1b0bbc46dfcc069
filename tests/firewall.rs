//! `IPAddressAllow=` and `IPAddressDeny=`: on a socket unit they drop what
//! arrives on its listeners from a denied peer (a filter on the socket,
//! which a user flint can set too); on a service they filter the sockets
//! the service opens itself (programs on its cgroup, which needs root).

mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Flint, Tree};
use socket2::{Domain, Socket, Type};

/// Connects from `src` to `dst`:`port` and reads what the service writes:
/// `Ok(text)`, or the error (a peer whose `SYN` is dropped times out).
fn from(src: &str, dst: &str, port: u16) -> Result<String, std::io::ErrorKind> {
    let dst: IpAddr = dst.parse().expect("address");
    let src: IpAddr = src.parse().expect("address");
    let domain = if dst.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::new(src, 0).into()).expect("bind");
    s.connect_timeout(
        &SocketAddr::new(dst, port).into(),
        Duration::from_millis(1500),
    )
    .map_err(|e| e.kind())?;
    let mut s = std::net::TcpStream::from(s);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    Ok(out)
}

#[test]
fn a_socket_units_lists_drop_what_arrives_from_a_denied_peer() {
    let tree = Tree::new();
    let yes = common::free_dual_port();
    let no = common::free_dual_port();
    // Dual-stack listeners: IPv4 peers arrive as IPv4 packets, IPv6 ones
    // as IPv6; the allow list wins over `any`.
    tree.write(
        "fw-yes.socket",
        &format!(
            "[Socket]\nListenStream={yes}\nAccept=yes\nIPAddressDeny=any\nIPAddressAllow=127.0.0.1 ::1\n"
        ),
    );
    tree.write(
        "fw-yes@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo accepted\n",
    );
    // Accept=no: the service accepts on the listener it is passed, whose
    // filter the accepted connections inherit. A deny list alone: what it
    // does not name passes.
    tree.write(
        "fw-no.socket",
        &format!("[Socket]\nListenStream={no}\nIPAddressDeny=127.0.0.3/32 127.0.0.2\n"),
    );
    tree.write(
        "fw-no.service",
        "[Service]\nExecStart=/usr/bin/python3 -c \"import socket\\n\
s = socket.socket(fileno=3)\\n\
while True:\\n c, _ = s.accept(); c.sendall(b'service'); c.close()\"\n",
    );
    let mut flint = Flint::run_until(&tree, &["fw-yes.socket", "fw-no.socket"], "running");
    assert_eq!(
        from("127.0.0.1", "127.0.0.1", yes),
        Ok("accepted\n".into()),
        "{}",
        flint.log()
    );
    assert_eq!(
        from("127.0.0.2", "127.0.0.1", yes),
        Err(std::io::ErrorKind::TimedOut),
        "{}",
        flint.log()
    );
    let v6 = Socket::new(Domain::IPV6, Type::STREAM, None)
        .and_then(|s| s.bind(&"[::1]:0".parse::<SocketAddr>().expect("address").into()))
        .is_ok();
    if v6 {
        assert_eq!(from("::1", "::1", yes), Ok("accepted\n".into()));
    }
    assert_eq!(from("127.0.0.1", "127.0.0.1", no), Ok("service".into()));
    assert_eq!(
        from("127.0.0.2", "127.0.0.1", no),
        Err(std::io::ErrorKind::TimedOut)
    );
    assert_eq!(from("127.0.0.4", "127.0.0.1", no), Ok("service".into()));
    // Only the allowed peers started instances.
    let log = flint.log();
    assert!(log.contains("fw-yes@"), "{log}");
    assert!(!log.contains("127.0.0.2"), "{log}");
    flint.stop();
}

/// What the probe prints per target: `HOST:PORT ok`, or the error's name
/// (`timeout` when nothing answers: a dropped `SYN`).
const CONNECT_PROBE: &str = r#"import errno, socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(':', 1)
    host = host.strip('[]')
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.5)
    try:
        s.connect((host, int(port)))
        print(target, "ok", flush=True)
    except socket.timeout:
        print(target, "timeout", flush=True)
    except OSError as e:
        print(target, errno.errorcode.get(e.errno, str(e)), flush=True)
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", ("127.0.0.1", int(sys.argv[1].rsplit(':', 1)[1])))
    print("udp ok", flush=True)
except OSError as e:
    print("udp", errno.errorcode.get(e.errno, str(e)), flush=True)
"#;

#[test]
fn a_services_lists_filter_the_sockets_it_opens() {
    if !common::require_root("attaching programs to a cgroup")
        || !common::require("python3", "the probe")
    {
        return;
    }
    let tree = Tree::new();
    // Listeners of the test's own on two loopback addresses.
    let one = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = one.local_addr().expect("address").port();
    let Ok(_two) = std::net::TcpListener::bind(("127.0.0.2", port)) else {
        eprintln!("SKIP: 127.0.0.2:{port} is taken");
        return;
    };
    let probe = tree.write("probe.py", CONNECT_PROBE);
    let targets = format!("127.0.0.1:{port} 127.0.0.2:{port}");
    tree.write(
        "open.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {} {targets}\n",
            probe.display()
        ),
    );
    tree.write(
        "closed.service",
        &format!(
            "[Service]\nType=oneshot\nIPAddressDeny=any\nIPAddressAllow=127.0.0.2\nExecStart=/usr/bin/python3 {} {targets}\n",
            probe.display()
        ),
    );
    let run = |unit: &str| -> (Vec<String>, String) {
        let log = common::run_unit_to_end(common::flint_run(tree.path(), &[unit]), unit);
        let out = common::unit_output(&log, unit)
            .iter()
            .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
            .collect();
        (out, log)
    };
    assert_eq!(run("open.service").0, ["ok", "ok", "ok"]);
    let (closed, log) = run("closed.service");
    if log.contains("IP addresses are not restricted") {
        assert!(!common::in_ci(), "{log}");
        eprintln!("SKIP: flint could not attach its programs here:\n{log}");
        return;
    }
    // The egress program drops the SYN to 127.0.0.1 (TCP retries until
    // the probe's timeout) and refuses the datagram at once.
    assert_eq!(closed, ["timeout", "ok", "EPERM"], "{log}");
}

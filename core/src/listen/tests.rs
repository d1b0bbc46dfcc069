//! Listener tests against real sockets on loopback and in temporary
//! directories; options are read back with getsockopt.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicU32, Ordering};

use super::options::getsockopt_int;
use super::*;

fn inet(s: &str) -> SocketAddress {
    SocketAddress::Inet(s.parse().expect("test address"))
}

fn local_addr(fd: BorrowedFd<'_>) -> SocketAddr {
    let sock = socket2::SockRef::from(&fd);
    sock.local_addr()
        .expect("getsockname")
        .as_socket()
        .expect("inet")
}

fn sockopt(fd: BorrowedFd<'_>, level: i32, name: i32) -> i32 {
    getsockopt_int(fd, level, name).expect("getsockopt")
}

fn fd_flags(fd: BorrowedFd<'_>) -> (bool, bool) {
    // SAFETY: F_GETFL/F_GETFD on a valid fd touch no memory.
    let (fl, fdfl) = unsafe {
        (
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
        )
    };
    (fl & libc::O_NONBLOCK != 0, fdfl & libc::FD_CLOEXEC != 0)
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn assert_listening_stream(l: &Listener) {
    let fd = l.fd.as_fd();
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), 1);
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);
    assert_eq!(fd_flags(fd), (true, true), "nonblocking and cloexec");
}

#[test]
fn tcp_v4_and_v6_loopback_listen_with_backlog() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let opts = SocketOptions {
            backlog: 7,
            ..SocketOptions::default()
        };
        let l = open(&ListenKind::Stream(inet(addr)), &opts).expect("open");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_listening_stream(&l);
        let bound = local_addr(l.fd.as_fd());
        assert_ne!(bound.port(), 0);
        TcpStream::connect(bound).expect("connect");

        // `ss` shows a listener's backlog as Send-Q.
        match std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{}", bound.port())])
            .output()
        {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let send_q = text.split_whitespace().nth(2);
                assert_eq!(send_q, Some("7"), "{text}");
            }
            _ => eprintln!("skipping the backlog check: ss is not available"),
        }
    }
}

#[test]
fn dual_stack_listener_takes_ipv4_unless_ipv6_only() {
    let both = SocketOptions {
        bind_ipv6_only: BindIpv6Only::Both,
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Stream(inet("[::]:0")), &both).expect("open");
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        0
    );
    let port = local_addr(l.fd.as_fd()).port();
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("IPv4 client on [::]");

    let only = SocketOptions {
        bind_ipv6_only: BindIpv6Only::Ipv6Only,
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Stream(inet("[::]:0")), &only).expect("open");
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        1
    );
    let port = local_addr(l.fd.as_fd()).port();
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());

    let default = open(
        &ListenKind::Stream(inet("[::]:0")),
        &SocketOptions::default(),
    )
    .expect("open");
    let sysctl = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").expect("sysctl");
    assert_eq!(
        sockopt(default.fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).to_string(),
        sysctl.trim()
    );
}

#[test]
fn udp_listener_is_bound_but_not_listening() {
    let l = open(
        &ListenKind::Datagram(inet("127.0.0.1:0")),
        &SocketOptions::default(),
    )
    .expect("open");
    let fd = l.fd.as_fd();
    assert_eq!(
        sockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE),
        libc::SOCK_DGRAM
    );
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), 0);
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    client.send_to(b"ping", local_addr(fd)).expect("send");
    let server = UdpSocket::from(l.fd);
    server.set_nonblocking(false).expect("blocking");
    let mut buf = [0u8; 8];
    let (n, _) = server.recv_from(&mut buf).expect("recv");
    assert_eq!(&buf[..n], b"ping");
}

#[test]
fn unix_socket_gets_mode_and_parent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/sock");
    let opts = SocketOptions {
        socket_mode: 0o600,
        directory_mode: 0o750,
        ..SocketOptions::default()
    };
    let l = open(
        &ListenKind::Stream(SocketAddress::Unix(path.clone())),
        &opts,
    )
    .expect("open");
    assert_listening_stream(&l);
    let meta = std::fs::metadata(&path).expect("node");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    for parent in [dir.path().join("a"), dir.path().join("a/b")] {
        let mode = std::fs::metadata(&parent)
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750 & !0o022, "{}", parent.display());
    }
    UnixStream::connect(&path).expect("connect");

    // A mode wider than the umask allows is still applied exactly.
    let path = dir.path().join("wide");
    let opts = SocketOptions {
        socket_mode: 0o666,
        ..SocketOptions::default()
    };
    let _l = open(
        &ListenKind::Stream(SocketAddress::Unix(path.clone())),
        &opts,
    )
    .expect("open");
    let mode = std::fs::metadata(&path).expect("node").permissions().mode();
    assert_eq!(mode & 0o7777, 0o666);
}

#[test]
fn stale_unix_node_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("first bind"));
    assert!(path.exists());
    let l = open(
        &ListenKind::Stream(SocketAddress::Unix(path.clone())),
        &SocketOptions::default(),
    )
    .expect("open over a stale node");
    UnixStream::connect(&path).expect("connect");
    drop(l);
}

#[test]
fn abstract_socket_listens() {
    use std::os::linux::net::SocketAddrExt;
    let name = unique("flint-test");
    let l = open(
        &ListenKind::Stream(SocketAddress::Abstract(name.clone().into_bytes())),
        &SocketOptions::default(),
    )
    .expect("open");
    assert_listening_stream(&l);
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
    UnixStream::connect_addr(&addr).expect("connect");
    assert_eq!(
        l.kind.to_string(),
        format!("@{name}"),
        "listeners display as systemd prints them"
    );
}

#[test]
fn seqpacket_and_unix_datagram() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seq");
    let l = open(
        &ListenKind::SequentialPacket(SocketAddress::Unix(path)),
        &SocketOptions::default(),
    )
    .expect("open");
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE),
        libc::SOCK_SEQPACKET
    );
    assert_listening_stream(&l);

    let path = dir.path().join("dgram");
    let l = open(
        &ListenKind::Datagram(SocketAddress::Unix(path.clone())),
        &SocketOptions::default(),
    )
    .expect("open");
    let client = UnixDatagram::unbound().expect("client");
    client.send_to(b"x", &path).expect("send");
    let mut buf = [0u8; 2];
    let server = UnixDatagram::from(l.fd);
    assert_eq!(server.recv(&mut buf).expect("recv"), 1);
}

#[test]
fn fifo_is_created_opened_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/fifo");
    let opts = SocketOptions {
        socket_mode: 0o640,
        pipe_size: Some(1 << 16),
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Fifo(path.clone()), &opts).expect("open");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let meta = std::fs::metadata(&path).expect("fifo");
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(fd_flags(l.fd.as_fd()), (true, true));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("writer")
        .write_all(b"hi")
        .expect("write");
    let mut buf = [0u8; 2];
    std::fs::File::from(l.fd)
        .read_exact(&mut buf)
        .expect("read");
    assert_eq!(&buf, b"hi");

    // Reopening the same FIFO works; another mode is refused, like systemd.
    open(&ListenKind::Fifo(path.clone()), &opts).expect("reopen");
    let other = SocketOptions {
        socket_mode: 0o600,
        ..SocketOptions::default()
    };
    let err = open(&ListenKind::Fifo(path), &other).expect_err("mode mismatch");
    assert!(
        matches!(err, ListenError::ModeOrOwnerMismatch { .. }),
        "{err}"
    );

    let file = dir.path().join("plain");
    std::fs::write(&file, b"").expect("file");
    let err = open(&ListenKind::Fifo(file), &SocketOptions::default()).expect_err("not a fifo");
    assert!(matches!(err, ListenError::NotFifo { .. }), "{err}");
}

#[test]
fn special_files_must_be_regular_or_character_devices() {
    let l = open(
        &ListenKind::Special("/dev/null".into()),
        &SocketOptions::default(),
    )
    .expect("open /dev/null");
    // SAFETY: F_GETFL on a valid fd.
    let fl = unsafe { libc::fcntl(l.fd.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(fl & libc::O_ACCMODE, libc::O_RDONLY);
    let writable = SocketOptions {
        writable: true,
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Special("/dev/null".into()), &writable).expect("open");
    // SAFETY: F_GETFL on a valid fd.
    let fl = unsafe { libc::fcntl(l.fd.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(fl & libc::O_ACCMODE, libc::O_RDWR);

    let dir = tempfile::tempdir().expect("tempdir");
    let err = open(
        &ListenKind::Special(dir.path().to_path_buf()),
        &SocketOptions::default(),
    )
    .expect_err("directory");
    assert!(matches!(err, ListenError::NotSpecial { .. }), "{err}");
}

#[test]
fn netlink_and_message_queue_listeners() {
    let l = open(
        &ListenKind::Netlink {
            family: "route".into(),
            group: 1,
        },
        &SocketOptions::default(),
    )
    .expect("netlink route");
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN),
        libc::AF_NETLINK
    );
    let err = open(
        &ListenKind::Netlink {
            family: "nope".into(),
            group: 0,
        },
        &SocketOptions::default(),
    )
    .expect_err("unknown family");
    assert!(matches!(err, ListenError::NetlinkFamily(_)));

    let name = format!("/{}", unique("flint-test-mq"));
    let kind = ListenKind::MessageQueue(name.clone());
    let opts = SocketOptions {
        socket_mode: 0o600,
        mq_max_messages: Some(4),
        mq_message_size: Some(128),
        ..SocketOptions::default()
    };
    let l = open(&kind, &opts).expect("mqueue");
    // SAFETY: mq_attr is plain data; mq_getattr fills it from our queue fd.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: mq_getattr writes only into `attr`.
    let r = unsafe { libc::mq_getattr(l.fd.as_raw_fd(), &raw mut attr) };
    assert_eq!(r, 0);
    assert_eq!((attr.mq_maxmsg, attr.mq_msgsize), (4, 128));
    remove_nodes(&kind, &opts);
    let c_name = CString::new(name).expect("name");
    // SAFETY: mq_unlink reads the name; ENOENT proves remove_nodes worked.
    assert_eq!(unsafe { libc::mq_unlink(c_name.as_ptr()) }, -1);
    assert!(matches!(
        open(&ListenKind::MessageQueue("no-slash".into()), &opts),
        Err(ListenError::MessageQueueName(_))
    ));
}

#[test]
fn symlinks_point_to_the_node_and_replace_only_with_remove_on_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let link = dir.path().join("links/alias.sock");
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"").expect("file");
    let mut opts = SocketOptions {
        symlinks: vec![link.clone(), blocked.clone()],
        ..SocketOptions::default()
    };
    let kind = ListenKind::Stream(SocketAddress::Unix(path.clone()));
    let l = open(&kind, &opts).expect("open");
    assert_eq!(std::fs::read_link(&link).expect("link"), path);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("blocked"), "{:?}", l.warnings);
    UnixStream::connect(&link).expect("connect through the link");
    drop(l);

    opts.remove_on_stop = true;
    let l = open(&kind, &opts).expect("reopen");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(std::fs::read_link(&blocked).expect("replaced"), path);

    remove_nodes(&kind, &opts);
    assert!(!path.exists() && !link.exists() && !blocked.exists());
    assert!(std::fs::symlink_metadata(&link).is_err());
}

#[test]
fn fifo_nodes_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fifo");
    let kind = ListenKind::Fifo(path.clone());
    let _l = open(&kind, &SocketOptions::default()).expect("open");
    remove_nodes(&kind, &SocketOptions::default());
    assert!(std::fs::symlink_metadata(&path).is_err());
}

#[test]
fn options_are_visible_through_getsockopt() {
    let opts = SocketOptions {
        keep_alive: true,
        keep_alive_time: Some(Duration::from_secs(42)),
        keep_alive_interval: Some(Duration::from_secs(7)),
        keep_alive_probes: Some(3),
        no_delay: true,
        receive_buffer: Some(65536),
        send_buffer: Some(32768),
        reuse_port: true,
        priority: Some(4),
        ip_ttl: Some(33),
        defer_accept: Some(Duration::from_secs(5)),
        tcp_congestion: Some("reno".into()),
        bind_ipv6_only: BindIpv6Only::Ipv6Only,
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Stream(inet("[::1]:0")), &opts).expect("open");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let fd = l.fd.as_fd();
    let sol = libc::SOL_SOCKET;
    let tcp = libc::IPPROTO_TCP;
    assert_eq!(sockopt(fd, sol, libc::SO_KEEPALIVE), 1);
    assert_eq!(sockopt(fd, tcp, libc::TCP_KEEPIDLE), 42);
    assert_eq!(sockopt(fd, tcp, libc::TCP_KEEPINTVL), 7);
    assert_eq!(sockopt(fd, tcp, libc::TCP_KEEPCNT), 3);
    assert_eq!(sockopt(fd, tcp, libc::TCP_NODELAY), 1);
    assert_eq!(sockopt(fd, sol, libc::SO_RCVBUF), 2 * 65536);
    assert_eq!(sockopt(fd, sol, libc::SO_SNDBUF), 2 * 32768);
    assert_eq!(sockopt(fd, sol, libc::SO_REUSEPORT), 1);
    assert_eq!(sockopt(fd, sol, libc::SO_PRIORITY), 4);
    assert_eq!(sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS), 33);
    assert_eq!(sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY), 1);
    assert!(sockopt(fd, tcp, libc::TCP_DEFER_ACCEPT) > 0);
    let sock = socket2::SockRef::from(&fd);
    let congestion = sock.tcp_congestion().expect("congestion");
    assert!(congestion.starts_with(b"reno\0"), "{congestion:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let unix_opts = SocketOptions {
        pass_credentials: true,
        pass_rights: false,
        ..SocketOptions::default()
    };
    let l = open(
        &ListenKind::Stream(SocketAddress::Unix(dir.path().join("u"))),
        &unix_opts,
    )
    .expect("open");
    assert_eq!(sockopt(l.fd.as_fd(), sol, libc::SO_PASSCRED), 1);
    if l.warnings.is_empty() {
        assert_eq!(sockopt(l.fd.as_fd(), sol, 83), 0, "SO_PASSRIGHTS");
    }
}

#[test]
fn option_failures_are_warnings_not_errors() {
    let opts = SocketOptions {
        tcp_congestion: Some("flint-no-such-algorithm".into()),
        ..SocketOptions::default()
    };
    let l = open(&ListenKind::Stream(inet("127.0.0.1:0")), &opts).expect("still opens");
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("TCP_CONGESTION"), "{:?}", l.warnings);
}

#[test]
fn accepted_connections_get_the_connection_options() {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let _client = TcpStream::connect(server.local_addr().expect("addr")).expect("connect");
    let (conn, _) = server.accept().expect("accept");
    let opts = SocketOptions {
        keep_alive: true,
        no_delay: true,
        ip_ttl: Some(17),
        ..SocketOptions::default()
    };
    let warnings = apply_accepted_options(conn.as_fd(), &opts);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        sockopt(conn.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        1
    );
    assert_eq!(
        sockopt(conn.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY),
        1
    );
    assert_eq!(sockopt(conn.as_fd(), libc::IPPROTO_IP, libc::IP_TTL), 17);
}

#[test]
fn bind_to_an_address_in_use_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = open(
        &ListenKind::Stream(SocketAddress::Inet(addr)),
        &SocketOptions::default(),
    )
    .expect_err("address in use");
    assert!(matches!(&err, ListenError::Bind { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("in use"), "{text}");
}

#[test]
fn socket_user_and_group_own_the_node() {
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping socket_user_and_group_own_the_node: needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("owned");
    let opts = SocketOptions {
        socket_user: Some(65534),
        socket_group: Some(65533),
        ..SocketOptions::default()
    };
    let _l = open(
        &ListenKind::Stream(SocketAddress::Unix(path.clone())),
        &opts,
    )
    .expect("open");
    let meta = std::fs::metadata(&path).expect("node");
    assert_eq!((meta.uid(), meta.gid()), (65534, 65533));
}

#[test]
fn update_applies_options_in_place_and_keeps_the_fd() {
    let kind = ListenKind::Stream(inet("127.0.0.1:0"));
    let old = SocketOptions::default();
    let l = open(&kind, &old).expect("listen");
    let addr = local_addr(l.fd.as_fd());
    let new = SocketOptions {
        keep_alive: true,
        backlog: 16,
        bind_to_device: Some("lo".into()),
        ..SocketOptions::default()
    };
    let warnings = update(l.fd.as_fd(), &kind, &old, &new);
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        1
    );
    assert!(
        warnings.iter().any(|w| w.contains("BindToDevice=")),
        "{warnings:?}"
    );
    let back = update(l.fd.as_fd(), &kind, &new, &old);
    assert_eq!(
        sockopt(l.fd.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
    assert!(back.iter().all(|w| w.contains("BindToDevice=")), "{back:?}");
    // Still the same listener, still listening.
    assert_eq!(local_addr(l.fd.as_fd()), addr);
    std::net::TcpStream::connect(addr).expect("connect after update");
}

#[test]
fn update_changes_the_mode_of_a_unix_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock");
    let kind = ListenKind::Stream(SocketAddress::Unix(path.clone()));
    let old = SocketOptions::default();
    let l = open(&kind, &old).expect("listen");
    let new = SocketOptions {
        socket_mode: 0o600,
        ..SocketOptions::default()
    };
    assert!(update(l.fd.as_fd(), &kind, &old, &new).is_empty());
    let mode = std::fs::metadata(&path).expect("node").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn accept_errors_of_one_connection_leave_the_listener_accepting() {
    use nix::errno::Errno;
    // A peer that resets or abandons its connection before it is taken, or
    // a network error pending on it, concerns that connection only
    // (systemd's ERRNO_IS_ACCEPT_AGAIN, and a firewall's EPERM).
    for e in [
        Errno::EAGAIN,
        Errno::EINTR,
        Errno::ECONNABORTED,
        Errno::ECONNRESET,
        Errno::ECONNREFUSED,
        Errno::ETIMEDOUT,
        Errno::EPROTO,
        Errno::ENETDOWN,
        Errno::ENETUNREACH,
        Errno::EHOSTUNREACH,
        Errno::EHOSTDOWN,
        Errno::ENONET,
        Errno::ENOPROTOOPT,
        Errno::EOPNOTSUPP,
        Errno::EPERM,
    ] {
        assert!(accept_again(e), "{e}");
    }
    // The listener itself is broken, or flint is out of resources.
    for e in [
        Errno::EBADF,
        Errno::EINVAL,
        Errno::ENOTSOCK,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::ENOBUFS,
        Errno::ENOMEM,
    ] {
        assert!(!accept_again(e), "{e}");
    }
}

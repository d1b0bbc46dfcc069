//! Real clients of the socket-activation protocol under `flint run`: a C
//! program built against libsystemd (`sd_listen_fds_with_names()`,
//! `sd_is_socket*()`), Python reading `LISTEN_FDS` with `socket.fromfd`, and
//! the `listenfd` crate. Each client reports how many fds it received, their
//! names and kinds, and whether `LISTEN_PID` named it; the tests check that
//! for `Accept=no` and `Accept=yes` (inetd and fd-3 styles), TCP, UDP, unix
//! and FIFO listeners, several sockets feeding one service and named fds.
//! Last, the fd probe runs under `systemd-socket-activate` and under flint
//! and the two records are compared where that tool agrees with systemd.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use common::{Flint, Tree, exchange, free_port, free_udp_port, install_probe, wait_for};

/// The libsystemd client. Modes: `accept` (accept one connection on a
/// listening TCP fd and write the report there), `fd3` (write it to fd 3,
/// the connection), `stdout` (inetd style).
const C_CLIENT: &str = r#"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

static void kind(int fd, char *out, size_t n) {
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    static const char *tn[] = {"stream", "dgram", "seqpacket"};
    if (sd_is_fifo(fd, NULL) > 0) { snprintf(out, n, "fifo"); return; }
    for (int i = 0; i < 3; i++) {
        const char *fam = NULL;
        if (sd_is_socket_inet(fd, AF_INET, types[i], -1, 0) > 0) fam = "inet";
        else if (sd_is_socket_inet(fd, AF_INET6, types[i], -1, 0) > 0) fam = "inet6";
        else if (sd_is_socket_unix(fd, types[i], -1, NULL, 0) > 0) fam = "unix";
        if (fam) {
            int l = sd_is_socket(fd, AF_UNSPEC, types[i], 1) > 0;
            snprintf(out, n, "%s/%s%s", fam, tn[i], l ? "/listen" : "");
            return;
        }
    }
    snprintf(out, n, "other");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "stdout";
    char **names = NULL;
    int n = sd_listen_fds_with_names(0, &names);
    char buf[8192], k[64];
    size_t len = 0;
    len += snprintf(buf + len, sizeof buf - len,
                    "{\"client\":\"libsystemd\",\"pid_ok\":%s,\"n\":%d,\"names\":[",
                    n > 0 ? "true" : "false", n);
    for (int i = 0; i < n; i++)
        len += snprintf(buf + len, sizeof buf - len, "%s\"%s\"", i ? "," : "", names[i]);
    len += snprintf(buf + len, sizeof buf - len, "],\"kinds\":[");
    struct pollfd pfds[16];
    int npfds = 0;
    for (int i = 0; i < n; i++) {
        kind(3 + i, k, sizeof k);
        len += snprintf(buf + len, sizeof buf - len, "%s\"%s\"", i ? "," : "", k);
        if (npfds < 16 && sd_is_socket_inet(3 + i, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
            pfds[npfds].fd = 3 + i;
            pfds[npfds].events = POLLIN;
            npfds++;
        }
    }
    kind(0, k, sizeof k);
    len += snprintf(buf + len, sizeof buf - len, "],\"stdin\":\"%s\"}\n", k);
    int out = 1;
    if (strcmp(mode, "accept") == 0) {
        if (poll(pfds, npfds, 10000) <= 0) return 2;
        for (int i = 0; i < npfds; i++)
            if (pfds[i].revents & POLLIN) { out = accept(pfds[i].fd, NULL, NULL); break; }
    } else if (strcmp(mode, "fd3") == 0) {
        out = 3;
    }
    if (write(out, buf, len) != (ssize_t) len) return 3;
    return 0;
}
"#;

/// The Python client: `socket.fromfd` on each passed fd; the same modes.
const PY_CLIENT: &str = r#"
import json, os, select, socket, stat, sys
mode = sys.argv[1] if len(sys.argv) > 1 else "stdout"
pid_ok = os.environ.get("LISTEN_PID") == str(os.getpid())
n = int(os.environ.get("LISTEN_FDS", "0")) if pid_ok else 0
names = os.environ.get("LISTEN_FDNAMES", "").split(":") if n else []
socks = {}
def kind(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return "closed"
    if stat.S_ISFIFO(st.st_mode):
        return "fifo"
    if not stat.S_ISSOCK(st.st_mode):
        return "other"
    # fromfd dups the fd; the real family and type come from the kernel.
    s = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
    fam = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}[s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)]
    typ = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}[s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)]
    listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    s.close()
    if fam != "unix" and typ == "stream" and listening:
        socks[fd] = socket.fromfd(fd, socket.AF_INET6 if fam == "inet6" else socket.AF_INET, socket.SOCK_STREAM)
    return fam + "/" + typ + ("/listen" if listening else "")
report = {"client": "python", "pid_ok": pid_ok, "n": n, "names": names,
          "kinds": [kind(3 + i) for i in range(n)], "stdin": kind(0)}
data = (json.dumps(report) + "\n").encode()
out = 1
if mode == "accept":
    ready, _, _ = select.select(list(socks.values()), [], [], 10)
    conn, _ = ready[0].accept()
    out = conn.fileno()
elif mode == "fd3":
    out = 3
os.write(out, data)
"#;

/// Where the clients are built, once per test process.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("flint-protocol-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The C client, compiled with gcc against libsystemd; `None` (with the
/// reason printed) when the tool chain is missing outside CI.
fn c_client() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if !common::require("gcc", "builds the libsystemd client")
            || !common::require("pkg-config", "finds libsystemd")
        {
            return None;
        }
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "libsystemd"])
            .output()
            .expect("run pkg-config");
        if !flags.status.success() {
            assert!(!common::in_ci(), "libsystemd-dev is missing in CI");
            eprintln!("SKIP: libsystemd-dev is missing (pkg-config libsystemd failed)");
            return None;
        }
        let src = work_dir().join("client.c");
        let bin = work_dir().join("sd-client");
        std::fs::write(&src, C_CLIENT).unwrap();
        let flags = String::from_utf8_lossy(&flags.stdout).to_string();
        let out = Command::new("gcc")
            .arg("-O1")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .args(flags.split_whitespace())
            .output()
            .expect("run gcc");
        assert!(
            out.status.success(),
            "gcc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(bin)
    })
    .clone()
}

/// A client of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Libsystemd,
    Python,
    Listenfd,
}

const CLIENTS: [Client; 3] = [Client::Libsystemd, Client::Python, Client::Listenfd];

/// The `[Service]` lines that run `client` in `mode`; `None` to skip.
fn service_lines(client: Client, mode: &str) -> Option<String> {
    match client {
        Client::Libsystemd => c_client().map(|bin| format!("ExecStart={} {mode}\n", bin.display())),
        Client::Python => {
            let path = work_dir().join("client.py");
            if !path.exists() {
                std::fs::write(&path, PY_CLIENT).unwrap();
            }
            Some(format!(
                "ExecStart=/usr/bin/python3 {} {mode}\n",
                path.display()
            ))
        }
        // This test binary is the listenfd client: see `listenfd_client_helper`.
        Client::Listenfd => Some(format!(
            "Environment=FLINT_LISTENFD_CLIENT={mode}\nExecStart={} --exact listenfd_client_helper --test-threads=1 --quiet\n",
            std::env::current_exe().unwrap().display()
        )),
    }
}

fn parse(text: &str, what: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: bad report {text:?}: {e}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Reads a report that the client writes on a unix connection.
fn exchange_unix(path: &Path) -> String {
    let mut s = wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(path).ok()
    })
    .expect("connect unix");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn accept_no_several_listeners_reach_every_client_with_their_names() {
    for client in CLIENTS {
        let Some(exec) = service_lines(client, "accept") else {
            continue;
        };
        let tree = Tree::new();
        let (tcp, udp) = (free_port(), free_udp_port());
        let sock = tree.path().join("run/x.sock");
        let fifo = tree.path().join("run/x.fifo");
        tree.write(
            "x.socket",
            &format!(
                "[Socket]\nListenStream=127.0.0.1:{tcp}\nListenDatagram=127.0.0.1:{udp}\nListenStream={}\nListenFIFO={}\nFileDescriptorName=web\n",
                sock.display(),
                fifo.display()
            ),
        );
        tree.write("x.service", &format!("[Service]\n{exec}"));
        let _flint = Flint::run(&tree, &["x.socket"]);
        let r = parse(&exchange(tcp, b""), &format!("{client:?}"));
        assert_eq!(r["pid_ok"], true, "{client:?}: LISTEN_PID names the client");
        assert_eq!(r["n"], 4, "{client:?}: {r}");
        assert_eq!(
            strs(&r["names"]),
            ["web", "web", "web", "web"],
            "{client:?}"
        );
        assert_eq!(
            strs(&r["kinds"]),
            [
                "inet/stream/listen",
                "inet/dgram",
                "unix/stream/listen",
                "fifo"
            ],
            "{client:?}: fds in Listen*= order"
        );
    }
}

#[test]
fn several_sockets_feed_one_service_through_service_and_sockets() {
    for client in CLIENTS {
        let Some(exec) = service_lines(client, "accept") else {
            continue;
        };
        let tree = Tree::new();
        let (port_a, port_b, port_c) = (free_port(), free_udp_port(), common::free_dual_port());
        // a and b name the service with Service=; the service names c with Sockets=.
        tree.write(
            "a.socket",
            &format!(
                "[Socket]\nListenStream=127.0.0.1:{port_a}\nService=multi.service\nFileDescriptorName=alpha\n"
            ),
        );
        tree.write(
            "b.socket",
            &format!("[Socket]\nListenDatagram=127.0.0.1:{port_b}\nService=multi.service\n"),
        );
        tree.write(
            "c.socket",
            &format!("[Socket]\nListenStream=[::1]:{port_c}\nFileDescriptorName=gamma\n"),
        );
        tree.write(
            "multi.service",
            &format!("[Service]\nSockets=c.socket\n{exec}"),
        );
        let _flint = Flint::run(&tree, &["a.socket", "b.socket"]);
        let r = parse(&exchange(port_a, b""), &format!("{client:?}"));
        assert_eq!(r["pid_ok"], true, "{client:?}");
        assert_eq!(r["n"], 3, "{client:?}: every socket's fds: {r}");
        // The order between socket units is undefined in systemd; services use names.
        let mut by_name: Vec<(String, String)> = strs(&r["names"])
            .into_iter()
            .zip(strs(&r["kinds"]))
            .collect();
        by_name.sort();
        assert_eq!(
            by_name,
            [
                ("alpha".to_string(), "inet/stream/listen".to_string()),
                ("b.socket".to_string(), "inet/dgram".to_string()),
                ("gamma".to_string(), "inet6/stream/listen".to_string()),
            ],
            "{client:?}"
        );
        // Traffic on the socket that only Sockets= ties to the service starts it too.
        let mut s = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("::1", port_c)).ok()
        })
        .expect("connect [::1]");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let r = parse(&text, &format!("{client:?} via c.socket"));
        assert_eq!(r["n"], 3, "{client:?}: {r}");
    }
}

#[test]
fn accept_yes_fd3_style_gives_each_client_one_named_connection() {
    for client in CLIENTS {
        let Some(exec) = service_lines(client, "fd3") else {
            continue;
        };
        let tree = Tree::new();
        let tcp = free_port();
        let path = tree.path().join("run/y.sock");
        tree.write(
            "y.socket",
            &format!("[Socket]\nListenStream=127.0.0.1:{tcp}\nAccept=yes\n"),
        );
        tree.write(
            "u.socket",
            &format!(
                "[Socket]\nListenStream={}\nAccept=yes\nFileDescriptorName=conn-u\n",
                path.display()
            ),
        );
        tree.write("y@.service", &format!("[Service]\n{exec}"));
        tree.write("u@.service", &format!("[Service]\n{exec}"));
        let _flint = Flint::run(&tree, &["y.socket", "u.socket"]);
        for round in 0..2 {
            let r = parse(&exchange(tcp, b""), &format!("{client:?} tcp {round}"));
            assert_eq!(r["pid_ok"], true, "{client:?}");
            assert_eq!(r["n"], 1, "{client:?}: {r}");
            assert_eq!(strs(&r["names"]), ["connection"], "{client:?}");
            assert_eq!(strs(&r["kinds"]), ["inet/stream"], "{client:?}");
        }
        let r = parse(&exchange_unix(&path), &format!("{client:?} unix"));
        assert_eq!(r["n"], 1, "{client:?}: {r}");
        // FileDescriptorName= applies to Accept=yes connections (systemd v257+).
        assert_eq!(strs(&r["names"]), ["conn-u"], "{client:?}");
        assert_eq!(strs(&r["kinds"]), ["unix/stream"], "{client:?}");
    }
}

#[test]
fn accept_yes_inetd_style_passes_the_connection_on_stdin_without_listen_fds() {
    for client in [Client::Libsystemd, Client::Python] {
        let Some(exec) = service_lines(client, "stdout") else {
            continue;
        };
        let tree = Tree::new();
        let tcp = free_port();
        tree.write(
            "i.socket",
            &format!("[Socket]\nListenStream=127.0.0.1:{tcp}\nAccept=yes\n"),
        );
        tree.write(
            "i@.service",
            &format!("[Service]\nStandardInput=socket\n{exec}"),
        );
        let _flint = Flint::run(&tree, &["i.socket"]);
        let r = parse(&exchange(tcp, b""), &format!("{client:?}"));
        assert_eq!(r["n"], 0, "{client:?}: no LISTEN_FDS in inetd style: {r}");
        assert_eq!(r["stdin"], "inet/stream", "{client:?}");
    }
}

/// The listenfd client, run by flint as this very test binary with
/// `FLINT_LISTENFD_CLIENT=<mode>`; a no-op in a normal test run.
#[test]
fn listenfd_client_helper() {
    let Ok(mode) = std::env::var("FLINT_LISTENFD_CLIENT") else {
        return;
    };
    listenfd_client(&mode);
    std::process::exit(0);
}

fn accepts_connections(fd: i32) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap();
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut v).cast(),
            &raw mut len,
        )
    };
    r == 0 && v != 0
}

fn listenfd_client(mode: &str) {
    // listenfd also accepts a missing LISTEN_PID; this client insists on it.
    let pid_ok = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let n = if pid_ok { fds.len() } else { 0 };
    let mut kinds = Vec::new();
    let mut listeners = Vec::new();
    for i in 0..n {
        let suffix = |fd: i32| {
            if accepts_connections(fd) {
                "/listen"
            } else {
                ""
            }
        };
        let kind = if let Ok(Some(l)) = fds.take_tcp_listener(i) {
            let fam = if l.local_addr().is_ok_and(|a| a.is_ipv6()) {
                "inet6"
            } else {
                "inet"
            };
            let fd = l.into_raw_fd();
            if accepts_connections(fd) {
                listeners.push(fd);
            }
            format!("{fam}/stream{}", suffix(fd))
        } else if let Ok(Some(u)) = fds.take_udp_socket(i) {
            let fam = if u.local_addr().is_ok_and(|a| a.is_ipv6()) {
                "inet6"
            } else {
                "inet"
            };
            let _ = u.into_raw_fd();
            format!("{fam}/dgram")
        } else if let Ok(Some(l)) = fds.take_unix_listener(i) {
            let fd = l.into_raw_fd();
            format!("unix/stream{}", suffix(fd))
        } else if let Ok(Some(fd)) = fds.take_raw_fd(i) {
            // SAFETY: fstat writes into a zeroed stat of the right size.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above; fd is one of the passed fds.
            let ok = unsafe { libc::fstat(fd, &raw mut st) } == 0;
            if ok && st.st_mode & libc::S_IFMT == libc::S_IFIFO {
                "fifo".to_string()
            } else {
                "other".to_string()
            }
        } else {
            "other".to_string()
        };
        kinds.push(kind);
    }
    let report = serde_json::json!({
        "client": "listenfd", "pid_ok": pid_ok, "n": n,
        "names": if n > 0 { names } else { Vec::new() }, "kinds": kinds,
    });
    let text = format!("{report}\n");
    let out: std::fs::File = match mode {
        "accept" => {
            let mut pfds: Vec<libc::pollfd> = listeners
                .iter()
                .map(|fd| libc::pollfd {
                    fd: *fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: pfds is a valid array of its length.
            let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 10_000) };
            assert!(r > 0, "no connection arrived");
            let fd = pfds
                .iter()
                .find(|p| p.revents & libc::POLLIN != 0)
                .unwrap()
                .fd;
            // SAFETY: fd is a listening TCP socket this process owns.
            let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            let (conn, _) = l.accept().unwrap();
            std::fs::File::from(std::os::fd::OwnedFd::from(conn))
        }
        // SAFETY: fd 3 is the connection flint passed; the process exits
        // right after writing.
        _ => unsafe { std::fs::File::from_raw_fd(3) },
    };
    let mut out = out;
    out.write_all(text.as_bytes()).unwrap();
}

/// What the probe saw, reduced to what must agree between two managers:
/// the protocol variables, whether `LISTEN_PID` is the probe, and per fd
/// (≥ 3, and 0/1 in inetd style) its kind and flags.
fn normalize(r: &Value, inetd: bool) -> Value {
    let env = &r["env"];
    let mut fds = serde_json::Map::new();
    for (fd, info) in r["fds"].as_object().unwrap() {
        let n: u32 = fd.parse().unwrap();
        if n >= 3 || (inetd && n <= 1) {
            let mut i = info.clone();
            i.as_object_mut().unwrap().remove("local");
            fds.insert(fd.clone(), i);
        }
    }
    serde_json::json!({
        "LISTEN_FDS": env.get("LISTEN_FDS"),
        "LISTEN_FDNAMES": env.get("LISTEN_FDNAMES"),
        "listen_pid_is_self": env.get("LISTEN_PID").map(|p| p.as_str() == Some(&r["pid"].to_string())),
        "fds": fds,
    })
}

fn read_report(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// One comparison case: `systemd-socket-activate` options and the flint unit
/// lines, both for listeners on `port` (and a unix path), and how to trigger.
struct Case {
    name: &'static str,
    ssa_args: Vec<String>,
    socket: String,
    service_extra: &'static str,
    inetd: bool,
    datagram: bool,
}

fn trigger(case: &Case, port: u16) {
    if case.datagram {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    } else {
        let mut s = common::connect(port);
        let _ = s.write_all(b"hi\n");
    }
}

/// Runs the probe under `systemd-socket-activate` and returns its record.
fn under_ssa(case: &Case, probe: &Path, out: &Path, port: u16) -> Value {
    under_tool(
        Command::new("systemd-socket-activate"),
        case,
        probe,
        out,
        port,
    )
    .0
}

/// Runs the probe under `tool` (systemd-socket-activate's command line)
/// and returns its record and the tool's pid.
fn under_tool(mut tool: Command, case: &Case, probe: &Path, out: &Path, port: u16) -> (Value, u32) {
    let mut child = tool
        .args(&case.ssa_args)
        .arg("/usr/bin/python3")
        .arg(probe)
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let mut err = child.stderr.take().unwrap();
    let mut listening = String::new();
    let mut byte = [0u8; 1];
    // It prints "Listening on ..." per listener once they are open.
    let wanted = case.ssa_args.iter().filter(|a| a.starts_with("-l")).count();
    while listening.matches("Listening on").count() < wanted
        && err.read(&mut byte).unwrap_or(0) == 1
    {
        listening.push(char::from(byte[0]));
    }
    trigger(case, port);
    let record = wait_for(Duration::from_secs(15), || read_report(out));
    let pid = child.id();
    let _ = child.kill();
    let _ = child.wait();
    let record = record.unwrap_or_else(|| {
        panic!(
            "{}: no record under {}: {listening}",
            case.name,
            tool.get_program().display()
        )
    });
    (record, pid)
}

#[test]
fn systemd_socket_activate_and_flint_give_the_same_fds_and_variables() {
    if !common::require(
        "systemd-socket-activate",
        "the reference for the comparison",
    ) {
        return;
    }
    let port_of = |c: &Case| -> u16 {
        c.ssa_args
            .iter()
            .find_map(|a| a.strip_prefix("-l127.0.0.1:"))
            .unwrap()
            .parse()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2, p3, p4) = (free_port(), free_udp_port(), free_port(), free_port());
    let unix_a = dir.path().join("a.sock");
    let cases = [
        Case {
            name: "accept=no, TCP and unix, named",
            ssa_args: vec![
                format!("-l127.0.0.1:{p1}"),
                format!("-l{}", unix_a.display()),
                "--fdname=web:web".into(),
            ],
            socket: format!(
                "ListenStream=127.0.0.1:{p1}\nListenStream={{dir}}/b.sock\nFileDescriptorName=web\n"
            ),
            service_extra: "",
            inetd: false,
            datagram: false,
        },
        Case {
            name: "accept=no, datagram",
            ssa_args: vec![
                "--datagram".into(),
                format!("-l127.0.0.1:{p2}"),
                "--fdname=dg".into(),
            ],
            socket: format!("ListenDatagram=127.0.0.1:{p2}\nFileDescriptorName=dg\n"),
            service_extra: "",
            inetd: false,
            datagram: true,
        },
        Case {
            name: "accept=yes, fd 3",
            ssa_args: vec![
                "--accept".into(),
                format!("-l127.0.0.1:{p3}"),
                "--fdname=connection".into(),
            ],
            socket: format!("ListenStream=127.0.0.1:{p3}\nAccept=yes\n"),
            service_extra: "",
            inetd: false,
            datagram: false,
        },
        Case {
            name: "accept=yes, inetd",
            ssa_args: vec![
                "--accept".into(),
                "--inetd".into(),
                format!("-l127.0.0.1:{p4}"),
            ],
            socket: format!("ListenStream=127.0.0.1:{p4}\nAccept=yes\n"),
            service_extra: "StandardInput=socket\n",
            inetd: true,
            datagram: false,
        },
    ];
    for case in &cases {
        let port = port_of(case);
        let ssa_out = dir.path().join(format!("ssa-{port}.jsonl"));
        let probe_tree = Tree::new();
        let probe = install_probe(&probe_tree);
        let reference = normalize(&under_ssa(case, &probe, &ssa_out, port), case.inetd);

        // The same listeners on the same port under flint, after the tool is gone.
        let tree = Tree::new();
        let out = tree.path().join("flint.jsonl");
        let accept = case.socket.contains("Accept=yes");
        let socket_text = case
            .socket
            .replace("{dir}", &tree.path().display().to_string());
        tree.write("cmp.socket", &format!("[Socket]\n{socket_text}"));
        let service = if accept {
            "cmp@.service"
        } else {
            "cmp.service"
        };
        tree.write(
            service,
            &format!(
                "[Service]\n{}ExecStart=/usr/bin/python3 {} {}\n",
                case.service_extra,
                probe.display(),
                out.display()
            ),
        );
        let _flint = Flint::run(&tree, &["cmp.socket"]);
        trigger(case, port);
        let got = wait_for(Duration::from_secs(15), || read_report(&out))
            .unwrap_or_else(|| panic!("{}: no record under flint", case.name));
        let got = normalize(&got, case.inetd);
        assert_eq!(
            got, reference,
            "{}: flint differs from systemd-socket-activate",
            case.name
        );
        assert!(
            got["fds"].as_object().is_some_and(|m| !m.is_empty()),
            "{}: the probe saw the passed fds",
            case.name
        );
    }
}

/// A record as the tool's child sees it, for an exact comparison: the
/// whole environment (`LISTEN_PID` as whether it is the process's own pid;
/// `LISTEN_PIDFDID`, which flint adds where the kernel has pidfd ids and
/// systemd 252 does not, left out), every fd, the open-file limit and the
/// parent-death signal.
fn whole(r: &Value) -> Value {
    let mut env = r["env"].as_object().cloned().unwrap_or_default();
    let pid = env.remove("LISTEN_PID");
    env.remove("LISTEN_PIDFDID");
    serde_json::json!({
        "env": env,
        "listen_pid_is_self": pid.map(|p| p.as_str() == Some(&r["pid"].to_string())),
        "fds": r["fds"],
        "nofile": r["nofile"],
        "pdeathsig": r["pdeathsig"],
    })
}

fn cases_for_the_tool(dir: &Path) -> Vec<(Case, u16)> {
    let (p1, p2, p3, p4, p5) = (
        free_port(),
        free_udp_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let case = |name, args: Vec<String>, inetd, datagram| Case {
        name,
        ssa_args: args,
        socket: String::new(),
        service_extra: "",
        inetd,
        datagram,
    };
    vec![
        (
            case(
                "TCP and unix, named, a variable set and one passed on",
                vec![
                    format!("-l127.0.0.1:{p1}"),
                    format!("--listen={}", dir.join("a.sock").display()),
                    "--fdname=web:unix".into(),
                    "-EFOO=bar".into(),
                    "--setenv=HOME".into(),
                ],
                false,
                false,
            ),
            p1,
        ),
        (
            case(
                "datagram, one name for the fd",
                vec![
                    "-d".into(),
                    format!("-l127.0.0.1:{p2}"),
                    "--fdname=dg".into(),
                ],
                false,
                true,
            ),
            p2,
        ),
        (
            case(
                "accept, fd 3",
                vec![
                    "-a".into(),
                    format!("-l127.0.0.1:{p3}"),
                    "--fdname=connection".into(),
                ],
                false,
                false,
            ),
            p3,
        ),
        (
            case(
                "accept, inetd",
                vec![
                    "--accept".into(),
                    "--inetd".into(),
                    format!("-l127.0.0.1:{p4}"),
                ],
                true,
                false,
            ),
            p4,
        ),
        (
            case(
                "inetd without accept, one listener",
                vec!["--inetd".into(), format!("-l127.0.0.1:{p5}")],
                true,
                false,
            ),
            p5,
        ),
    ]
}

/// A soft open-file limit above 1024 for the tools to start with (as a
/// shell with `ulimit -n 4096` gives them), where the hard limit allows one.
fn raised_nofile() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0
        || limit.rlim_max <= 1024
    {
        return None;
    }
    limit.rlim_cur = limit.rlim_max.min(4096);
    Some(limit)
}

fn with_raised_nofile(mut tool: Command) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some(limit) = raised_nofile() {
        // SAFETY: setrlimit is async-signal-safe and reads a struct that
        // the closure owns; nothing else runs between fork and exec.
        unsafe {
            tool.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    tool
}

#[test]
fn flint_socket_activate_gives_the_command_what_systemd_socket_activate_gives_it() {
    if !common::require(
        "systemd-socket-activate",
        "the reference for the comparison",
    ) {
        return;
    }
    let tree = Tree::new();
    let probe = install_probe(&tree);
    let link = tree.path().join("systemd-socket-activate");
    std::os::unix::fs::symlink(common::flint_bin(), &link).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (case, port) in cases_for_the_tool(dir.path()) {
        let (reference, ssa_pid) = under_tool(
            with_raised_nofile(Command::new("systemd-socket-activate")),
            &case,
            &probe,
            &dir.path().join(format!("ssa-{port}.jsonl")),
            port,
        );
        let _ = std::fs::remove_file(dir.path().join("a.sock"));
        // flint by both of its names: the subcommand and the link.
        // Children of --accept end with the tool and start from a soft
        // open-file limit of 1024, the tool's own raised one or not.
        let accept = case.ssa_args.iter().any(|a| a == "-a" || a == "--accept");
        if accept {
            assert_eq!(reference["pdeathsig"], libc::SIGTERM, "{}", case.name);
            if raised_nofile().is_some() {
                assert_eq!(reference["nofile"][0], 1024, "{}", case.name);
            }
        }
        for tool in [
            {
                let mut c = Command::new(common::flint_bin());
                c.arg("socket-activate");
                c
            },
            Command::new(&link),
        ] {
            let tool = with_raised_nofile(tool);
            let program = tool.get_program().to_owned();
            let out = dir
                .path()
                .join(format!("flint-{port}-{}.jsonl", program.len()));
            let (got, flint_pid) = under_tool(tool, &case, &probe, &out, port);
            let _ = std::fs::remove_file(dir.path().join("a.sock"));
            assert_eq!(
                whole(&got),
                whole(&reference),
                "{} ({}): flint differs from systemd-socket-activate",
                case.name,
                program.display()
            );
            // Without --accept the tool becomes the command.
            assert_eq!(got["pid"] == flint_pid, !accept, "{}: {got}", case.name);
            assert_eq!(reference["pid"] == ssa_pid, !accept, "{}", case.name);
        }
    }
    // Refusals, in the tool's words, exit 1.
    for (args, message) in [
        (
            vec!["-d", "-a", "-l", "1234", "true"],
            "The --datagram and --accept options may not be combined.",
        ),
        (
            vec!["true"],
            "No sockets to listen on specified or passed in.",
        ),
        (
            vec!["-l", "127.0.0.1:99999", "true"],
            "Failed to open '127.0.0.1:99999'",
        ),
    ] {
        let out = Command::new(&link)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// `OpenFile=` (systemd 253, as in its TEST-77-OPENFILE): the files and the
/// unix socket flint opens for the main process follow the socket in
/// `LISTEN_FDS`, named as systemd names them, read-only or read-write,
/// blocking; a `graceful` one that is missing is skipped, and one without
/// `graceful` fails the start with 202/FDS. As root, the service runs as
/// `nobody` and still reads a file only root may open.
#[test]
fn open_file_passes_files_and_a_socket_after_the_listeners() {
    let tree = Tree::new();
    let dir = tree.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let open_dat = dir.join("open.dat");
    let file_dat = dir.join("test-77-file.dat");
    std::fs::write(&open_dat, "Open\n").unwrap();
    std::fs::write(&file_dat, "File\n").unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        use std::os::unix::fs::PermissionsExt;
        // The service's user reaches its script, not the data files.
        for d in [tree.path(), dir.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for f in [&open_dat, &file_dat] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    // A unix stream server that greets whoever connects.
    let sock_path = dir.join("server.sock");
    let server = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let greeter = std::thread::spawn(move || {
        let (mut c, _) = server.accept().unwrap();
        c.write_all(b"Socket\n").unwrap();
        // read-only: flint shut the service's side for writing.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        rest
    });
    let script = tree.path().join("service.py");
    std::fs::write(
        &script,
        r#"
import fcntl, json, os, socket
fd7 = os.path.exists("/proc/self/fd/7")
lfd = socket.socket(fileno=3)
conn, _ = lfd.accept()
def line(fd):
    return os.read(fd, 100).decode()
r = {"pid_ok": os.environ.get("LISTEN_PID") == str(os.getpid()),
     "fds": os.environ.get("LISTEN_FDS"), "names": os.environ.get("LISTEN_FDNAMES"),
     "open": line(4), "file": line(5), "socket": line(6),
     "blocking": all(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK == 0 for fd in (4, 5, 6)),
     "fd7": fd7}
try:
    os.write(4, b"x")
    r["open_writable"] = True
except OSError:
    r["open_writable"] = False
os.write(5, b"written\n")
conn.sendall((json.dumps(r) + "\n").encode())
conn.close()
"#,
    )
    .unwrap();
    let port = free_port();
    tree.write(
        "of.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    let user = if root { "User=nobody\n" } else { "" };
    tree.write(
        "of.service",
        &format!(
            "[Service]\n{user}OpenFile={}:open:read-only\nOpenFile={}\n\
             OpenFile={}/missing.dat:gone:read-only,graceful\nOpenFile={}:sock:read-only\n\
             ExecStart=/usr/bin/python3 {}\n",
            open_dat.display(),
            file_dat.display(),
            dir.display(),
            sock_path.display(),
            script.display()
        ),
    );
    let flint = Flint::run(&tree, &["of.socket"]);
    let r = parse(&exchange(port, b""), &flint.log());
    assert_eq!(r["pid_ok"], true, "{r}");
    assert_eq!(r["fds"], "4", "{r}");
    assert_eq!(r["names"], "of.socket:open:test-77-file.dat:sock", "{r}");
    assert_eq!(r["open"], "Open\n", "{r}");
    assert_eq!(r["file"], "File\n", "{r}");
    assert_eq!(r["socket"], "Socket\n", "{r}");
    assert_eq!(r["blocking"], true, "{r}");
    assert_eq!(r["fd7"], false, "the graceful missing file is skipped: {r}");
    assert_eq!(r["open_writable"], false, "{r}");
    // The second file was opened read-write: written after what was read.
    assert_eq!(
        std::fs::read_to_string(&file_dat).unwrap(),
        "File\nwritten\n",
        "{}",
        flint.log()
    );
    assert!(greeter.join().unwrap().is_empty());
    drop(flint);

    // Without graceful, a missing file fails the start with 202/FDS.
    tree.write(
        "missing.service",
        &format!(
            "[Service]\nType=oneshot\nOpenFile={}/missing.dat\nExecStart=/bin/true\n",
            dir.display()
        ),
    );
    let log = common::run_unit_to_end(
        common::flint_run(tree.path(), &["missing.service"]),
        "missing.service",
    );
    assert!(
        log.contains("missing.service: Failed with result 'exit-code'"),
        "{log}"
    );
    assert!(log.contains("202"), "{log}");
    assert!(log.contains("missing.dat"), "{log}");
    // A bad value is reported and ignored, as systemd does.
    tree.write(
        "bad.service",
        "[Service]\nType=oneshot\nOpenFile=relative:x\nOpenFile=/a:b:read-only,append\nExecStart=/bin/true\n",
    );
    let out = Command::new(common::flint_bin())
        .args(["check", "--unit-dir"])
        .arg(tree.path())
        .arg("bad.service")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Failed to parse OpenFile= setting, ignoring: relative:x"),
        "{text}"
    );
    assert!(text.contains("ignoring: /a:b:read-only,append"), "{text}");
}

/// `PassPIDFD=` (`SO_PASSPIDFD`, Linux 6.5) and `AcceptFileDescriptors=no`
/// (`SO_PASSRIGHTS` off, Linux 6.16) reach the socket the service gets, as
/// systemd 258 sets them; the defaults leave both as the kernel has them.
#[test]
fn pass_pidfd_and_accept_file_descriptors_reach_the_passed_socket() {
    // Whether this kernel knows both options.
    let probe = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let known = |opt: i32| {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on an fd we own, with a pointer to a live int.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&probe),
                libc::SOL_SOCKET,
                opt,
                (&raw const one).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap(),
            ) == 0
        }
    };
    if !known(76) || !known(83) {
        eprintln!("SKIP: this kernel has no SO_PASSPIDFD or SO_PASSRIGHTS");
        return;
    }
    let tree = Tree::new();
    let script = tree.path().join("opts.py");
    std::fs::write(
        &script,
        "import json, socket\ns = socket.socket(fileno=3)\n\
         r = {'pidfd': s.getsockopt(socket.SOL_SOCKET, 76), 'rights': s.getsockopt(socket.SOL_SOCKET, 83)}\n\
         c, _ = s.accept()\nc.sendall((json.dumps(r) + '\\n').encode())\n",
    )
    .unwrap();
    for (name, settings, pidfd, rights) in [
        ("set", "PassPIDFD=yes\nAcceptFileDescriptors=no\n", 1, 0),
        ("plain", "", 0, 1),
    ] {
        let path = tree.path().join(format!("{name}.sock"));
        tree.write(
            &format!("{name}.socket"),
            &format!("[Socket]\nListenStream={}\n{settings}", path.display()),
        );
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nExecStart=/usr/bin/python3 {}\n",
                script.display()
            ),
        );
        let flint = Flint::run(&tree, &[&format!("{name}.socket")]);
        let r = parse(&exchange_unix(&path), &flint.log());
        assert_eq!(r["pidfd"], pidfd, "{name}: {r}\n{}", flint.log());
        assert_eq!(r["rights"], rights, "{name}: {r}\n{}", flint.log());
    }
}

/// `flint socket-activate --accept` says on stderr what
/// `systemd-socket-activate --accept` says for one connection, line for
/// line (pids and ports aside): "Listening on …", "Communication attempt
/// on fd 3.", "Connection from …", "Spawned …", "Execing …", "Child …
/// died with code 0".
#[test]
fn socket_activate_says_what_systemd_socket_activate_says() {
    if !common::require(
        "systemd-socket-activate",
        "the reference for the comparison",
    ) {
        return;
    }
    let run = |tool: &mut Command| -> Vec<String> {
        let port = free_port();
        let mut child = tool
            .args([
                "-l",
                &format!("127.0.0.1:{port}"),
                "--accept",
                "--inetd",
                "/bin/echo",
                "hi",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the tool");
        let err = child.stderr.take().unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let mut next = || {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{:?}: no more lines", tool.get_program()));
            lines.push(line.clone());
            line
        };
        while !next().starts_with("Listening on") {}
        let mut s = common::connect(port);
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi\n");
        while !next().contains("died with code") {}
        let _ = child.kill();
        let _ = child.wait();
        drop(lines_rx);
        let _ = reader.join();
        // Pids and ports differ from run to run.
        let mut shapes: Vec<String> = lines
            .iter()
            .map(|l| {
                l.split(' ')
                    .map(|w| {
                        let bare = w.trim_end_matches(['.', ',']);
                        if bare.chars().all(|c| c.is_ascii_digit()) && bare.len() > 1 {
                            w.replace(bare, "N")
                        } else if let Some((host, p)) = bare.rsplit_once(':')
                            && p.chars().all(|c| c.is_ascii_digit())
                        {
                            w.replace(bare, &format!("{host}:P"))
                        } else {
                            w.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        // The child says "Execing" under systemd's tool, so its place
        // among the parent's lines varies.
        shapes.sort();
        shapes
    };
    let ssa = run(&mut Command::new("systemd-socket-activate"));
    let mut flint_cmd = Command::new(common::flint_bin());
    flint_cmd.arg("socket-activate");
    let flint = run(&mut flint_cmd);
    assert_eq!(flint, ssa);
}

/// `UnsetEnvironment=` is the last step, also for the variables flint sets
/// itself, as systemd's: Debian's `foot-server@.service` unsets
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` (so that its terminals'
/// shells do not inherit them), and its socket still comes as fd 3.
#[test]
fn unset_environment_removes_the_listen_variables_and_keeps_the_fds() {
    let tree = Tree::new();
    let (flint, control) = common::run_with_control(&tree);
    let report = |name: &str, unset: &str| {
        let sock = tree.path().join(format!("{name}.sock"));
        let out = tree.path().join(format!("{name}.out"));
        tree.write(
            &format!("{name}.socket"),
            &format!("[Socket]\nListenStream={}\n", sock.display()),
        );
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=oneshot\nUnsetEnvironment={unset}\n\
                 ExecStart=/bin/sh -c 'env > {o}.tmp; echo \"pid=$$$$\" >> {o}.tmp; \
                 test -S /proc/self/fd/3 || test -e /proc/self/fd/3 && echo fd3 >> {o}.tmp; \
                 mv {o}.tmp {o}'\n",
                o = out.display()
            ),
        );
        let (code, text) = common::ctl(&control, &["start", &format!("{name}.socket")]);
        assert_eq!(code, 0, "{text}\n{}", flint.log());
        let _client = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&out).ok()
        })
        .unwrap_or_else(|| panic!("{name}.service wrote nothing\n{}", flint.log()))
    };
    let all = report("all", "LISTEN_PID LISTEN_FDS LISTEN_FDNAMES LISTEN_PIDFDID");
    assert!(!all.contains("LISTEN_"), "{all}");
    assert!(all.contains("fd3\n"), "{all}");
    // Only LISTEN_PIDFDID: LISTEN_PID stays, the pid that execs.
    let some = report("some", "LISTEN_PIDFDID");
    assert!(!some.contains("LISTEN_PIDFDID="), "{some}");
    let pid = some
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap_or_else(|| panic!("{some}"));
    assert!(some.contains(&format!("LISTEN_PID={pid}\n")), "{some}");
    assert!(some.contains("LISTEN_FDS=1\n"), "{some}");
}

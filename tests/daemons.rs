//! Real Debian daemons run by `flint run` from their own, unmodified unit
//! files, each answering a real client: uuidd, tang, micro-httpd, saned,
//! gpsd, chasquid, snmptrapd, cups, atftpd, dbus-daemon (the system bus),
//! mariadb (named sockets from two socket units), OpenSSH's sshd (a real
//! login), tinysshd (a key exchange per connection), cockpit (five socket
//! units, one started per connection through another's service) and avahi
//! (`Type=dbus` on a bus that flint socket-activates), gophernicus and
//! nyancat-server (inetd style), rsyslog (systemd's `syslog.socket` through
//! the `syslog.service` alias, `Type=notify`, the sender's credentials),
//! systemd-journal-remote (an upload received on the socket from inside
//! `PrivateNetwork=yes`), fcgiwrap (a socket owned by www-data), mpd
//! (`Type=notify`, two listeners), libvirtd (three socket units matched by
//! name), GnuPG's user units (`flint run --user`: four named sockets into
//! one gpg-agent, and dirmngr), the user bus (`systemctl --user
//! set-environment` reaching flint, dconf activated on the bus), rpcbind (five fixed listeners, in a network
//! namespace of its own), dovecot (IMAP and IMAPS on four listeners,
//! `Type=notify`, in its sandbox), systemd-hostnamed (started through
//! D-Bus activation, flint as `org.freedesktop.systemd1` on the bus it
//! runs), systemd-journald (a log stream kept
//! across its crash in flint's fd store), systemd-udevd (a netlink and a
//! sequential-packet socket unit, a uevent handled) and systemd-networkd
//! (started by a route netlink message, a link configured), and
//! PostgreSQL (`postgresql.service` on the system's own tree starting the
//! cluster that Debian's `postgresql-generator` links to it), beanstalkd
//! (a job queued and reserved), dicod (the DICT protocol per connection)
//! and PgBouncer (`psql` on its unix and TCP listeners, a reload and a
//! clean stop). The unit files are
//! copied from /lib/systemd/system into a temporary tree; drop-ins only move
//! ports and paths (and give a daemon its configuration), as an
//! administrator would. Missing daemons skip with the reason, except in CI
//! (`CI` set), where `scripts/install-test-deps.sh` installs them and a
//! missing one fails. The daemons switch to their own users, so the tests
//! need root.

mod common;

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Flint, Tree, free_port, wait_for};

const SYSTEM_UNITS: &str = "/lib/systemd/system";

/// Whether the daemon's binary and unit files are there and we are root.
fn ready(binary: &str, units: &[&str], why: &str) -> bool {
    if !common::require(binary, why) {
        return false;
    }
    for u in units {
        if !common::require(&format!("{SYSTEM_UNITS}/{u}"), why) {
            return false;
        }
    }
    common::require_root("the daemon's unit switches to its own user")
}

/// A unit tree the daemon's user can traverse, holding copies of `units`.
fn tree_with(units: &[&str]) -> Tree {
    let tree = Tree::new();
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for u in units {
        let text = std::fs::read_to_string(Path::new(SYSTEM_UNITS).join(u)).unwrap();
        tree.write(u, &text);
    }
    tree
}

/// Creates `dir` in the tree, owned by `user`.
fn owned_dir(tree: &Tree, dir: &str, user: &str) -> std::path::PathBuf {
    let p = tree.path().join(dir);
    std::fs::create_dir_all(&p).unwrap();
    run("chown", &["-R", user, p.to_str().unwrap()]);
    p
}

/// Removes a directory the test made outside its tree.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a setup or client command, bounded by `timeout`, and returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("20")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// flint for a daemon whose paths or ports are fixed, in namespaces of its
/// own: `unshare` with `ns` (`-m` for a mount namespace, `-n` for a
/// network namespace), the shell steps of `setup` there, then `flint run
/// --unit-dir TREE UNITS`.
fn flint_in_namespaces(tree: &Tree, ns: &[&str], setup: &str, units: &[&str]) -> Flint {
    let mut cmd = Command::new("unshare");
    cmd.args(ns)
        .args(["--propagation", "private", "sh", "-c"])
        .arg(format!(
            // (And a directory for transient units, systemd-run's.)
            "{setup} && exec {} run --unit-dir {} --unit-dir {} {}",
            common::flint_bin().display(),
            tree.path().display(),
            tree.path().join("transient").display(),
            units.join(" ")
        ));
    Flint::run_command_until(cmd, "unit(s) running")
}

/// The shell steps that give a network namespace its own sysfs (read-only
/// as in a container with `read_only`), the host's cgroups moved into it.
fn own_sysfs(tree: &Tree, read_only: bool) -> String {
    format!(
        "mkdir {cg} && mount --rbind /sys/fs/cgroup {cg} && \
         mount -t sysfs {ro} sysfs /sys && mount --move {cg} /sys/fs/cgroup",
        cg = tree.path().join("cgroup").display(),
        ro = if read_only { "-o ro" } else { "" }
    )
}

/// Debian's `tool` (`systemctl`, `systemd-run`) with `args` in flint's
/// mount namespace, where it takes flint for systemd (and in a UTF-8
/// locale): whether it succeeded, and its output and errors.
fn systemd_tool(flint: &Flint, tool: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["SYSTEMD_IGNORE_CHROOT=1", "LANG=C.UTF-8", tool];
    all.extend_from_slice(args);
    inside(flint, &["-m"], "env", &all)
}

/// `program` in flint's namespaces (`nsenter` with `ns`: `-m`, `-n`),
/// bounded by a timeout, its stdin empty and its output piped.
fn nsenter(flint: &Flint, ns: &[&str], program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "nsenter", "-t", &flint.child.id().to_string()])
        .args(ns)
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `program args` in flint's namespaces: whether it succeeded, and
/// its output and errors.
fn inside(flint: &Flint, ns: &[&str], program: &str, args: &[&str]) -> (bool, String) {
    let out = nsenter(flint, ns, program).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The pid flint logged for a process it started: the number after
/// `started` (a unit and its program, `"x.service: started /usr/bin/x"`)
/// in the last such line.
fn started_pid(log: &str, started: &str) -> Option<u32> {
    let needle = format!("{started} (pid ");
    let at = log.rfind(&needle)? + needle.len();
    log[at..].split(')').next()?.parse().ok()
}

/// Checks that flint started `unit` once (`why`: for what it served).
fn assert_started_once(flint: &Flint, unit: &str, why: &str) {
    let log = flint.log();
    assert_eq!(
        log.matches(&format!("{unit}: started")).count(),
        1,
        "{why}:\n{log}"
    );
}

fn curl(url: &str) -> String {
    run("curl", &["-sS", "--fail", "--max-time", "15", url])
}

/// The uid a running process runs as.
fn uid_of(pid: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn uid_of_user(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
        .uid
        .as_raw()
}

#[test]
fn uuidd_serves_uuids_on_its_activated_socket() {
    let units = ["uuidd.socket", "uuidd.service"];
    if !ready("/usr/sbin/uuidd", &units, "uuid-runtime") {
        return;
    }
    let tree = tree_with(&units);
    let path = tree.path().join("run/uuidd/request");
    tree.write(
        "uuidd.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", path.display()),
    );
    let _flint = Flint::run(&tree, &["uuidd.socket"]);
    // uuidd's own client asks the daemon for a time-based UUID.
    let uuid = run("uuidd", &["-s", path.to_str().unwrap(), "-t"]);
    assert!(
        uuid.trim().len() == 36 && uuid.trim().chars().filter(|c| *c == '-').count() == 4,
        "not a UUID: {uuid:?}"
    );
    // The protocol's GETPID request (op 0) names the daemon that answered.
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(&[0]).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(reply.len() > 4, "short GETPID reply {reply:?}");
    let pid = String::from_utf8_lossy(&reply[4..])
        .trim_end_matches('\0')
        .to_string();
    assert_eq!(
        uid_of(&pid),
        Some(uid_of_user("uuidd")),
        "the daemon (pid {pid}) runs as User=uuidd"
    );
}

#[test]
fn tang_answers_adv_per_connection() {
    let units = ["tangd.socket", "tangd@.service"];
    if !ready("/usr/libexec/tangd", &units, "tang") {
        return;
    }
    let tree = tree_with(&units);
    let keys = owned_dir(&tree, "keys", "root");
    run("/usr/libexec/tangd-keygen", &[keys.to_str().unwrap()]);
    run("chown", &["-R", "_tang:_tang", keys.to_str().unwrap()]);
    let port = free_port();
    tree.write(
        "tangd.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "tangd@.service.d/keys.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/libexec/tangd {}\n",
            keys.display()
        ),
    );
    let _flint = Flint::run(&tree, &["tangd.socket"]);
    for _ in 0..3 {
        let adv: serde_json::Value =
            serde_json::from_str(&curl(&format!("http://127.0.0.1:{port}/adv"))).unwrap();
        assert!(adv["payload"].is_string(), "a JWS advertisement: {adv}");
        assert!(
            adv["signature"].is_string() || adv["signatures"].is_array(),
            "a signed advertisement: {adv}"
        );
    }
}

#[test]
fn micro_httpd_serves_a_page_inetd_style() {
    let units = ["micro-httpd.socket", "micro-httpd@.service"];
    if !ready("/usr/sbin/micro-httpd", &units, "micro-httpd") {
        return;
    }
    let tree = tree_with(&units);
    let www = owned_dir(&tree, "www", "root");
    std::fs::write(
        www.join("index.html"),
        "hello from micro-httpd under flint\n",
    )
    .unwrap();
    std::fs::set_permissions(&www, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        www.join("index.html"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let port = free_port();
    tree.write(
        "micro-httpd.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "micro-httpd@.service.d/root.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=-/usr/sbin/micro-httpd {}\n",
            www.display()
        ),
    );
    let _flint = Flint::run(&tree, &["micro-httpd.socket"]);
    for _ in 0..3 {
        let page = curl(&format!("http://127.0.0.1:{port}/index.html"));
        assert_eq!(page, "hello from micro-httpd under flint\n");
    }
}

#[test]
fn saned_answers_the_sane_net_handshake_per_connection() {
    // sane-utils' saned: `Accept=yes`, the connection as fd 3 (it finds it
    // through LISTEN_FDS), `User=saned`, `StandardInput=null` and its
    // output appended to a file. The client is the first call of the SANE
    // network protocol (sanei_wire: 4-byte big-endian words): SANE_NET_INIT
    // with the client's version and no user name; saned answers with a
    // status and its own version. Debian's net backend cannot name a port
    // other than 6566, so the handshake is spoken here.
    let units = ["saned.socket", "saned@.service"];
    if !ready("/usr/sbin/saned", &units, "sane-utils") {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    let output = tree.path().join("saned.log");
    tree.write(
        "saned.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "saned@.service.d/log.conf",
        &format!(
            "[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\n",
            output.display()
        ),
    );
    let flint = Flint::run(&tree, &["saned.socket"]);
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut init = Vec::new();
        init.extend_from_slice(&0u32.to_be_bytes()); // SANE_NET_INIT
        init.extend_from_slice(&((1u32 << 24) | 3).to_be_bytes()); // version 1.0.3
        init.extend_from_slice(&0u32.to_be_bytes()); // no user name
        s.write_all(&init).unwrap();
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("no answer from saned: {e}\n{}", flint.log()));
        let status = u32::from_be_bytes(reply[..4].try_into().unwrap());
        let version = u32::from_be_bytes(reply[4..].try_into().unwrap());
        assert_eq!(status, 0, "SANE_STATUS_GOOD\n{}", flint.log());
        assert_eq!(version >> 24, 1, "a SANE 1 server: {version:#x}");
    }
    // Each connection had its own instance, named as systemd names it
    // (flint logs a start once the spawn is back, which may be after the
    // instance answered).
    let started = wait_for(Duration::from_secs(10), || {
        (flint.log().matches("started /usr/sbin/saned").count() >= 3).then_some(())
    });
    let log = flint.log();
    assert!(started.is_some(), "{log}");
    assert!(
        log.contains(&format!("-127.0.0.1:{port}-127.0.0.1:")),
        "{log}"
    );
}

/// Sends `request` on a stream and returns what arrives within a few
/// seconds (gpsd keeps the connection open).
fn ask(mut s: impl Read + Write, request: &[u8]) -> String {
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.ends_with(b"\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn gpsd_answers_on_ipv4_ipv6_and_its_unix_control_socket() {
    let units = ["gpsd.socket", "gpsd.service"];
    if !ready("/usr/sbin/gpsd", &units, "gpsd") {
        return;
    }
    let tree = tree_with(&units);
    let port = common::free_dual_port();
    let control = tree.path().join("run/gpsd.sock");
    // The same three listeners, in the same order, on a free port and path.
    tree.write(
        "gpsd.socket.d/port.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream={}\nListenStream=[::1]:{port}\nListenStream=127.0.0.1:{port}\n",
            control.display()
        ),
    );
    // gpsd.service is Type=forking without PIDFile=: flint follows the
    // daemon it leaves behind (GuessMainPID=) and stops it with flint.
    let mut flint = Flint::run(&tree, &["gpsd.socket"]);
    for host in ["127.0.0.1", "::1"] {
        let s = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect((host, port)).ok()
        })
        .expect("connect to gpsd");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reply = ask(s, b"?VERSION;\n");
        assert!(
            reply.contains("\"class\":\"VERSION\""),
            "gpsd on {host} answered {reply:?}"
        );
    }
    let s = std::os::unix::net::UnixStream::connect(&control).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = ask(s, b"?/dev/flint-test-no-such-device\n");
    assert!(
        reply.contains("OK") || reply.contains("ERROR"),
        "the control socket answered {reply:?}"
    );
    let main = wait_for(Duration::from_secs(5), || {
        let log = flint.log();
        let at = log.find("gpsd.service: main pid is ")?;
        log[at + "gpsd.service: main pid is ".len()..]
            .split_whitespace()
            .next()?
            .parse::<i32>()
            .ok()
    })
    .expect("flint found gpsd's main pid");
    assert!(
        flint.stop().is_some_and(|s| s.success()),
        "flint stops cleanly"
    );
    let gone = wait_for(Duration::from_secs(5), || {
        (!std::path::Path::new(&format!("/proc/{main}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "the forked gpsd was stopped with flint");
}

#[test]
fn chasquid_gets_three_named_sockets_and_answers_on_each() {
    let units = [
        "chasquid-smtp.socket",
        "chasquid-submission.socket",
        "chasquid-submission_tls.socket",
        "chasquid.service",
    ];
    if !ready("/usr/bin/chasquid", &units, "chasquid")
        || !common::require("openssl", "makes chasquid's certificate")
    {
        return;
    }
    let tree = tree_with(&units);
    let conf = owned_dir(&tree, "conf", "root");
    let data = owned_dir(&tree, "data", "root");
    std::fs::create_dir_all(conf.join("certs/localhost")).unwrap();
    std::fs::create_dir_all(conf.join("domains/localhost")).unwrap();
    std::fs::write(
        conf.join("chasquid.conf"),
        format!(
            "hostname: \"localhost\"\ndata_dir: \"{}\"\nmail_delivery_agent_bin: \"/bin/true\"\nmail_log_path: \"{}/mail.log\"\n",
            data.display(),
            data.display()
        ),
    )
    .unwrap();
    let certs = conf.join("certs/localhost");
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            certs.join("privkey.pem").to_str().unwrap(),
            "-out",
            certs.join("fullchain.pem").to_str().unwrap(),
        ],
    );
    run(
        "chown",
        &["-R", "chasquid:chasquid", conf.to_str().unwrap()],
    );
    run(
        "chown",
        &["-R", "chasquid:chasquid", data.to_str().unwrap()],
    );
    let (smtp, submission, tls) = (free_port(), free_port(), free_port());
    for (unit, port) in [
        ("chasquid-smtp", smtp),
        ("chasquid-submission", submission),
        ("chasquid-submission_tls", tls),
    ] {
        tree.write(
            &format!("{unit}.socket.d/port.conf"),
            &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
        );
    }
    let log = data.join("chasquid.log");
    tree.write(
        "chasquid.service.d/config.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/bin/chasquid -config_dir={} -logfile={}\n",
            conf.display(),
            log.display()
        ),
    );
    let _flint = Flint::run(
        &tree,
        &[
            "chasquid-smtp.socket",
            "chasquid-submission.socket",
            "chasquid-submission_tls.socket",
        ],
    );
    for port in [smtp, submission] {
        let mut s = common::connect(port);
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut banner = [0u8; 64];
        let n = s.read(&mut banner).unwrap();
        let banner = String::from_utf8_lossy(&banner[..n]).to_string();
        assert!(
            banner.starts_with("220 localhost ESMTP chasquid"),
            "port {port}: {banner:?}"
        );
    }
    // Submission over TLS: the banner arrives inside the TLS session.
    let script = format!(
        "import socket, ssl\nc = ssl.create_default_context()\nc.check_hostname = False\nc.verify_mode = ssl.CERT_NONE\ns = c.wrap_socket(socket.create_connection(('127.0.0.1', {tls}), timeout=15))\nprint(s.recv(64).decode())\n"
    );
    let banner = run("python3", &["-c", &script]);
    assert!(
        banner.starts_with("220 localhost ESMTP chasquid"),
        "TLS port: {banner:?}"
    );
    // chasquid found each socket by its FileDescriptorName=.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for kind in [
        "(SMTP, via systemd)",
        "(submission, via systemd)",
        "(submission+TLS, via systemd)",
    ] {
        assert!(text.contains(kind), "chasquid log lacks {kind}:\n{text}");
    }
}

#[test]
fn snmptrapd_receives_traps_over_udp_and_udp6() {
    let units = ["snmptrapd.socket", "snmptrapd.service"];
    if !ready("/usr/sbin/snmptrapd", &units, "snmptrapd")
        || !common::require("snmptrap", "the trap sender (snmp)")
    {
        return;
    }
    let tree = tree_with(&units);
    let conf = owned_dir(&tree, "conf", "root");
    std::fs::write(conf.join("snmptrapd.conf"), "authCommunity log public\n").unwrap();
    run("chown", &["-R", "Debian-snmp", conf.to_str().unwrap()]);
    let port = {
        let mut found = None;
        for _ in 0..100 {
            let p = common::free_udp_port();
            if std::net::UdpSocket::bind(("::1", p)).is_ok() {
                found = Some(p);
                break;
            }
        }
        found.expect("a UDP port free on 127.0.0.1 and ::1")
    };
    tree.write(
        "snmptrapd.socket.d/port.conf",
        &format!("[Socket]\nListenDatagram=\nListenDatagram=127.0.0.1:{port}\nListenDatagram=[::1]:{port}\n"),
    );
    let traps = conf.join("traps.log");
    tree.write(
        "snmptrapd.service.d/port.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/sbin/snmptrapd -C -c {} -Lf {} -f udp:127.0.0.1:{port} udp6:[::1]:{port}\n",
            conf.join("snmptrapd.conf").display(),
            traps.display()
        ),
    );
    let _flint = Flint::run(&tree, &["snmptrapd.socket"]);
    for (target, value) in [
        (format!("udp:127.0.0.1:{port}"), "424242"),
        (format!("udp6:[::1]:{port}"), "434343"),
    ] {
        // The first trap activates the daemon; send until it is logged.
        let logged = wait_for(Duration::from_secs(20), || {
            run(
                "snmptrap",
                &[
                    "-v",
                    "2c",
                    "-c",
                    "public",
                    &target,
                    "",
                    "1.3.6.1.4.1.8072.2.3.0.1",
                    "1.3.6.1.4.1.8072.2.3.2.1",
                    "i",
                    value,
                ],
            );
            std::thread::sleep(Duration::from_millis(300));
            std::fs::read_to_string(&traps)
                .ok()
                .filter(|t| t.contains(value))
        });
        assert!(
            logged.is_some(),
            "snmptrapd did not log the trap via {target}"
        );
    }
}

#[test]
fn rsyslog_gets_the_syslog_socket_through_its_alias_and_the_senders_credentials() {
    // systemd's syslog.socket starts syslog.service, which is rsyslog
    // through the alias `systemctl enable rsyslog` links.
    let units = ["syslog.socket", "rsyslog.service"];
    if !ready("/usr/sbin/rsyslogd", &units, "rsyslog") || !common::require("logger", "logger") {
        return;
    }
    let tree = tree_with(&units);
    std::os::unix::fs::symlink("rsyslog.service", tree.path().join("syslog.service")).unwrap();
    let dir = owned_dir(&tree, "log", "root");
    let sock = dir.join("syslog");
    let out = dir.join("messages");
    tree.write(
        "syslog.socket.d/path.conf",
        &format!(
            "[Socket]\nListenDatagram=\nListenDatagram={}\n",
            sock.display()
        ),
    );
    // rsyslog takes the passed socket whose path is its SysSock.Name, and
    // with UsePIDFromSystem logs the sender's pid from the SCM_CREDENTIALS
    // that PassCredentials=yes has the kernel attach (0 without them).
    std::fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imuxsock\" SysSock.Name=\"{s}\" SysSock.UsePIDFromSystem=\"on\")\n\
             *.* action(type=\"omfile\" file=\"{o}\")\n",
            d = dir.display(),
            s = sock.display(),
            o = out.display()
        ),
    )
    .unwrap();
    tree.write(
        "rsyslog.service.d/conf.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/sbin/rsyslogd -n -iNONE -f {}\n",
            dir.join("rsyslog.conf").display()
        ),
    );
    let flint = Flint::run(&tree, &["syslog.socket"]);
    // The first datagram starts rsyslogd (Type=notify) and is not lost;
    // its sender claims pid 4242, the kernel knows better.
    let sent = Command::new("logger")
        .args([
            "-d",
            "-u",
            sock.to_str().unwrap(),
            "--id=4242",
            "-t",
            "probe",
            "first message",
        ])
        .status()
        .unwrap();
    assert!(sent.success());
    let logged = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("first message"))
    })
    .unwrap_or_else(|| panic!("rsyslogd did not log the first datagram\n{}", flint.log()));
    let line = logged
        .lines()
        .find(|l| l.contains("first message"))
        .unwrap();
    let pid: u32 = line
        .split("probe[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    assert!(pid != 4242 && pid != 0, "{line}");
    assert!(
        flint.log().contains("rsyslog.service: ready"),
        "{}",
        flint.log()
    );
}

#[test]
fn journal_remote_receives_an_upload_on_its_socket_from_its_private_network() {
    // systemd-journal-remote as Debian ships it: ProtectSystem=strict,
    // PrivateTmp=, PrivateNetwork=yes (the activated socket is the only way
    // in), LogsDirectory=, User=systemd-journal-remote, a watchdog. The
    // drop-ins move the port and the logs directory and serve plain HTTP
    // (`--listen-http=-3` instead of HTTPS, which needs a certificate).
    let units = [
        "systemd-journal-remote.socket",
        "systemd-journal-remote.service",
    ];
    if !ready(
        "/lib/systemd/systemd-journal-remote",
        &units,
        "systemd-journal-remote",
    ) || !common::require("journalctl", "systemd: reads what was received")
    {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    let logs = format!("flint-test-journal-remote-{port}");
    let _cleanup = RemoveOnDrop(Path::new("/var/log").join(&logs));
    tree.write(
        "systemd-journal-remote.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "systemd-journal-remote.service.d/http.conf",
        &format!(
            "[Service]\nLogsDirectory=\nLogsDirectory={logs}\nExecStart=\n\
             ExecStart=/lib/systemd/systemd-journal-remote --listen-http=-3 --output=/var/log/{logs}/\n"
        ),
    );
    let flint = Flint::run(&tree, &["systemd-journal-remote.socket"]);
    let entry = tree.path().join("entry.export");
    std::fs::write(
        &entry,
        "__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=uploaded through flint\nSYSLOG_IDENTIFIER=probe\n_HOSTNAME=flint-test\n\n",
    )
    .unwrap();
    let answer = run(
        "curl",
        &[
            "-sS",
            "--fail",
            "--max-time",
            "15",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/vnd.fdo.journal",
            "--data-binary",
            &format!("@{}", entry.display()),
            &format!("http://127.0.0.1:{port}/upload"),
        ],
    );
    assert!(answer.contains("OK"), "{answer}\n{}", flint.log());
    // The entry is in the journal file the service wrote as its user.
    let dir = Path::new("/var/log").join(&logs);
    let stored = wait_for(Duration::from_secs(20), || {
        let out = Command::new("journalctl")
            .args(["-D", dir.to_str().unwrap(), "-o", "cat"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("uploaded through flint")
            .then_some(())
    });
    assert!(stored.is_some(), "{}", flint.log());
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        .expect("a journal file");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        file.metadata().unwrap().uid(),
        uid_of_user("systemd-journal-remote")
    );
    // The service answered from a network namespace of its own.
    let log = flint.log();
    let pid = started_pid(
        &log,
        "systemd-journal-remote.service: started /lib/systemd/systemd-journal-remote",
    )
    .expect("started");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(theirs, ours, "PrivateNetwork=yes");
}

#[test]
fn cups_type_notify_gets_ready_and_serves_http_on_its_socket() {
    let units = ["cups.socket", "cups.service"];
    if !ready("/usr/sbin/cupsd", &units, "cups") {
        return;
    }
    let tree = tree_with(&units);
    let sock = tree.path().join("cups.sock");
    // Only the socket's path moves, as an administrator's drop-in would.
    tree.write(
        "cups.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", sock.display()),
    );
    let flint = Flint::run(&tree, &["cups.socket"]);
    let s = std::os::unix::net::UnixStream::connect(&sock).expect("connect to cups.sock");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reply = ask(s, b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
    assert!(
        reply.starts_with("HTTP/1.0 200 OK"),
        "cupsd answered {reply:?}"
    );
    wait_for(Duration::from_secs(10), || {
        flint.log().contains("cups.service: ready").then_some(())
    })
    .expect("cupsd reported READY=1 through NOTIFY_SOCKET");
    assert!(
        flint
            .log()
            .contains("cups.service: status: Scheduler is running"),
        "{}",
        flint.log()
    );
}

/// One TFTP read (RFC 1350, octet mode) of `file` from 127.0.0.1:`port`:
/// the first DATA block, acknowledged.
fn tftp_get(port: u16, file: &str) -> Option<Vec<u8>> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(file.as_bytes());
    rrq.push(0);
    rrq.extend_from_slice(b"octet");
    rrq.push(0);
    s.send_to(&rrq, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    if n < 4 || buf[..2] != [0, 3] {
        return None;
    }
    let _ = s.send_to(&[0, 4, buf[2], buf[3]], from);
    Some(buf[4..n].to_vec())
}

#[test]
fn atftpd_runs_under_a_dynamic_user_and_serves_a_file() {
    let units = ["atftpd.socket", "atftpd.service"];
    if !ready("/usr/sbin/in.tftpd", &units, "atftpd (DynamicUser=yes)") {
        return;
    }
    let tree = tree_with(&units);
    // Outside /tmp: DynamicUser= implies PrivateTmp=, so under flint, as
    // under systemd, the daemon sees a /tmp of its own.
    let root = Path::new("/srv").join(format!("flint-tftp-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let _cleanup = RemoveOnDrop(root.clone());
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("hello.txt"), "served by a dynamic user\n").unwrap();
    std::fs::set_permissions(
        root.join("hello.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let port = common::free_udp_port();
    // As an administrator would: a drop-in moves the port and the root.
    tree.write(
        "atftpd.socket.d/port.conf",
        &format!("[Socket]\nListenDatagram=\nListenDatagram=127.0.0.1:{port}\n"),
    );
    tree.write(
        "atftpd.service.d/options.conf",
        &format!(
            "[Service]\nEnvironmentFile=\nEnvironment=\"OPTIONS=--port {port} --tftpd-timeout 30 --no-multicast --logfile - {}\"\n",
            root.display()
        ),
    );
    let flint = Flint::run(&tree, &["atftpd.socket"]);
    let got = wait_for(Duration::from_secs(20), || tftp_get(port, "hello.txt"));
    assert_eq!(
        got.as_deref(),
        Some(&b"served by a dynamic user\n"[..]),
        "{}",
        flint.log()
    );
    // The daemon runs as a uid of systemd's dynamic range, with no entry
    // in /etc/passwd.
    let pid = wait_for(Duration::from_secs(10), || {
        run("pgrep", &["-f", &format!("in.tftpd --port {port}")])
            .lines()
            .next()
            .map(str::to_string)
    })
    .expect("in.tftpd runs");
    let uid = uid_of(&pid).expect("uid");
    assert!(
        (61_184..=65_519).contains(&uid),
        "in.tftpd runs as uid {uid}, not a dynamic one"
    );
    assert!(
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .is_none()
    );
}

#[test]
fn dbus_daemon_serves_the_system_bus_on_its_activated_socket() {
    let units = ["dbus.socket", "dbus.service"];
    if !ready("/usr/bin/dbus-daemon", &units, "dbus")
        || !common::require("/usr/bin/dbus-send", "dbus-bin")
    {
        return;
    }
    let tree = tree_with(&units);
    let sock = tree.path().join("system_bus_socket");
    tree.write(
        "dbus.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", sock.display()),
    );
    let flint = Flint::run(&tree, &["dbus.socket"]);
    // `--address=systemd:` makes dbus-daemon take the bus socket from
    // LISTEN_FDS; the client finds the bus where the drop-in moved it.
    let ask_bus = |method: &str, args: &[&str]| {
        let out = Command::new("timeout")
            .args(["20", "dbus-send", "--system", "--print-reply"])
            .arg("--dest=org.freedesktop.DBus")
            .arg("/org/freedesktop/DBus")
            .arg(format!("org.freedesktop.DBus.{method}"))
            .args(args)
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", sock.display()),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dbus-send {method}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            flint.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let names = ask_bus("ListNames", &[]);
    assert!(names.contains("\"org.freedesktop.DBus\""), "{names}");
    wait_for(Duration::from_secs(10), || {
        flint.log().contains("dbus.service: ready").then_some(())
    })
    .expect("dbus-daemon reported READY=1 (Type=notify)");
    // The bus runs as the pid flint started (LISTEN_PID was that pid),
    // under the user its configuration names.
    let reply = ask_bus(
        "GetConnectionUnixProcessID",
        &["string:org.freedesktop.DBus"],
    );
    let pid = reply
        .split_whitespace()
        .skip_while(|w| *w != "uint32")
        .nth(1)
        .expect("a pid in the reply")
        .to_string();
    assert!(
        flint.log().contains(&format!(
            "dbus.service: started /usr/bin/dbus-daemon (pid {pid})"
        )),
        "{reply}\n{}",
        flint.log()
    );
    assert_eq!(uid_of(&pid), Some(uid_of_user("messagebus")));
}

/// A tree with `units` and the alias systemd-hostnamed gets its bus name
/// through, `dbus-org.freedesktop.hostname1.service`.
fn hostnamed_tree(units: &[&str]) -> Tree {
    let tree = tree_with(units);
    std::os::unix::fs::symlink(
        "systemd-hostnamed.service",
        tree.path().join("dbus-org.freedesktop.hostname1.service"),
    )
    .unwrap();
    tree
}

/// Asks `org.freedesktop.hostname1` for the host name on the system bus
/// of flint's mount namespace (`busctl`), and checks the answer.
fn assert_hostname_over_the_bus(flint: &Flint) {
    let (ok, out) = inside(
        flint,
        &["-m"],
        "busctl",
        &[
            "--system",
            "--timeout=15",
            "get-property",
            "org.freedesktop.hostname1",
            "/org/freedesktop/hostname1",
            "org.freedesktop.hostname1",
            "Hostname",
        ],
    );
    let host = nix::unistd::gethostname().unwrap();
    assert!(
        ok && out.trim() == format!("s \"{}\"", host.to_string_lossy()),
        "{out}\n{}",
        flint.log()
    );
}

#[test]
fn dbus_activation_starts_hostnamed_through_flint_as_through_systemd() {
    // Debian's dbus.service runs `dbus-daemon --systemd-activation`: for a
    // bus name whose .service file names a unit (`SystemdService=`), the
    // bus daemon asks org.freedesktop.systemd1 to start it. flint takes
    // that name once the bus is up and starts systemd-hostnamed (Type=dbus
    // by its BusName=, in its sandbox) through the alias
    // dbus-org.freedesktop.hostname1.service, as systemd does. The bus's
    // path is fixed, so flint runs in a mount namespace with its own /run.
    let units = ["dbus.socket", "dbus.service", "systemd-hostnamed.service"];
    if !ready("/usr/bin/dbus-daemon", &units, "dbus")
        || !common::require("/lib/systemd/systemd-hostnamed", "systemd: hostnamed")
        || !common::require("busctl", "systemd: the bus client")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
    {
        return;
    }
    let tree = hostnamed_tree(&units);
    tree.write("forged.service", "[Service]\nExecStart=/bin/true\n");
    tree.write("slow.service", "[Service]\nExecStart=/bin/sleep 2\n");
    tree.write(
        "long.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sleep 30\n",
    );
    tree.write("spare.socket", "[Socket]\nListenStream=/run/spare.sock\n");
    tree.write("spare.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "fails.service",
        "[Service]\nExecStart=/bin/sh -c 'sleep 1; exit 3'\n",
    );
    // timedated's bus name is started by a unit that fails.
    tree.write(
        "dbus-org.freedesktop.timedate1.service",
        "[Service]\nBusName=org.freedesktop.timedate1\nExecStart=/bin/false\n",
    );
    let mut flint = flint_in_namespaces(
        &tree,
        &["-m"],
        // /run/systemd/system: systemctl's system scope talks to the bus
        // only where that says systemd runs.
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system /run/dbus",
        &["dbus.socket"],
    );
    let busctl = |args: &[&str]| {
        let mut all = vec!["--system"];
        all.extend_from_slice(args);
        inside(&flint, &["-m"], "busctl", &all)
    };
    // The first call starts the bus (its socket) and, through the bus,
    // hostnamed, which answers it.
    assert_hostname_over_the_bus(&flint);
    // flint's log is read on a thread of the test: wait for the lines
    // rather than look once.
    assert!(
        flint.wait_log("dbus.service: flint is org.freedesktop.systemd1 on its bus"),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("systemd-hostnamed.service: started /lib/systemd/systemd-hostnamed"),
        "{}",
        flint.log()
    );
    // A bus name whose unit is not in the tree fails at once with the
    // reason, not at the bus daemon's activation timeout.
    let started = std::time::Instant::now();
    let (ok, out) = busctl(&[
        "get-property",
        "org.freedesktop.locale1",
        "/org/freedesktop/locale1",
        "org.freedesktop.locale1",
        "Locale",
    ]);
    assert!(!ok && out.contains("not found"), "{out}\n{}", flint.log());
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    // So does one whose unit fails to start.
    let started = std::time::Instant::now();
    let (ok, out) = busctl(&[
        "get-property",
        "org.freedesktop.timedate1",
        "/org/freedesktop/timedate1",
        "org.freedesktop.timedate1",
        "Timezone",
    ]);
    assert!(
        !ok && out.contains("failed with result 'exit-code'"),
        "{out}\n{}",
        flint.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    // What systemctl reads is answered on the system bus (a unit's path,
    // its properties); what it would change is refused there to any user
    // but root (systemd asks polkit about the others); the rest gets an
    // error, not silence.
    let (ok, out) = busctl(&[
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "GetUnit",
        "s",
        "dbus.service",
    ]);
    assert!(
        ok && out.contains("/org/freedesktop/systemd1/unit/dbus_2eservice"),
        "{out}"
    );
    // Introspection (busctl introspect and tree, gdbus, proxies): the
    // manager's methods, the units as nodes, a unit's properties typed.
    let (ok, out) = busctl(&[
        "introspect",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
    ]);
    assert!(
        ok && out.lines().any(|l| {
            l.split_whitespace().take(4).collect::<Vec<_>>() == [".StartUnit", "method", "ss", "o"]
        }),
        "{out}\n{}",
        flint.log()
    );
    let (ok, out) = busctl(&["tree", "--list", "org.freedesktop.systemd1"]);
    assert!(
        ok && out.contains("/org/freedesktop/systemd1/unit/dbus_2eservice\n"),
        "{out}\n{}",
        flint.log()
    );
    let (ok, out) = busctl(&[
        "introspect",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1/unit/dbus_2eservice",
        "org.freedesktop.systemd1.Unit",
    ]);
    assert!(
        ok && out.contains(".ActiveState") && out.contains("property"),
        "{out}"
    );
    // Calls of the manager as nobody on the system bus.
    let as_nobody = |method: &str, signature: &str, args: &[&str]| {
        let mut all = vec![
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "busctl",
            "--system",
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            method,
            signature,
        ];
        all.extend_from_slice(args);
        inside(&flint, &["-m"], "setpriv", &all)
    };
    let (ok, out) = as_nobody("StopUnit", "ss", &["dbus.service", "replace"]);
    // (The bus's own policy may refuse it before flint sees it.)
    assert!(
        !ok && (out.contains("flint changes units only") || out.contains("Access denied")),
        "{out}"
    );
    // Unit files (cockpit's services page): any user reads their state,
    // only root changes them.
    let (ok, out) = as_nobody("GetUnitFileState", "s", &["fails.service"]);
    assert!(ok && out == "s \"static\"\n", "{out}\n{}", flint.log());
    let (ok, out) = as_nobody("ListUnitFilesByPatterns", "asas", &["0", "1", "slow.*"]);
    assert!(ok && out.contains("/slow.service\" \"static\""), "{out}");
    let (ok, out) = as_nobody(
        "EnableUnitFiles",
        "asbb",
        &["1", "slow.service", "false", "false"],
    );
    assert!(
        !ok && (out.contains("flint changes units only") || out.contains("Access denied")),
        "{out}"
    );
    // A job method answers with the job's number that ListJobs and the
    // unit's Job show and CancelJob takes.
    let manager = |args: &[&str]| {
        let mut all = vec![
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
        ];
        all.extend_from_slice(args);
        busctl(&all)
    };
    let (ok, out) = manager(&["StartUnit", "ss", "long.service", "replace"]);
    let id = out
        .trim()
        .strip_prefix("o \"/org/freedesktop/systemd1/job/")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(ok, "{out}");
    let (ok, out) = manager(&["ListJobs"]);
    assert!(
        ok && out.contains(&format!(" {id} \"long.service\" \"start\"")),
        "{id}: {out}\n{}",
        flint.log()
    );
    let (ok, out) = manager(&["CancelJob", "u", &id]);
    assert!(ok, "{out}\n{}", flint.log());
    let (ok, out) = manager(&["ListJobs"]);
    assert!(ok && !out.contains("long.service"), "{out}");
    let (ok, out) = busctl(&[
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "PowerOff",
    ]);
    // (flint is no init here: refused, and it keeps running.)
    assert!(
        !ok && out.contains("Refusing to poweroff: flint is not this system's init"),
        "{out}"
    );
    // Root's systemctl changes units through the bus (cockpit's
    // socket factory starts its sockets so), and `--wait` waits for the
    // unit's end, which flint signals to subscribers (PropertiesChanged).
    let systemctl = |args: &[&str]| systemd_tool(&flint, "systemctl", args);
    // Returned once the unit ended, not once it started.
    let (ok, out) = systemctl(&["start", "--wait", "slow.service"]);
    assert!(ok, "{out}\n{}", flint.log());
    let (_, state) = systemctl(&["is-active", "slow.service"]);
    assert_eq!(state, "inactive\n", "{}", flint.log());
    let (ok, out) = systemctl(&["start", "--wait", "fails.service"]);
    assert!(!ok, "{out}\n{}", flint.log());
    let (_, state) = systemctl(&["is-active", "fails.service"]);
    assert_eq!(state, "failed\n", "{}", flint.log());
    // Debian's systemd-run --wait goes through the bus: the transient
    // service's start pins it (systemd's AddRef), its changes are
    // signalled to systemd-run, which reports the end and exits with the
    // service's status.
    let (ok, out) = systemd_tool(
        &flint,
        "systemd-run",
        &[
            "--wait",
            "-p",
            "Environment=CODE=3",
            "/bin/sh",
            "-c",
            "sleep 1; exit $CODE",
        ],
    );
    assert!(
        !ok && out.contains("Finished with result: exit-code")
            && out.contains("Main processes terminated with: code=exited/status=3"),
        "{out}\n{}",
        flint.log()
    );
    // A socket's changes are signalled too: `--wait` on a socket returns
    // once it is stopped.
    let mut waiting = nsenter(&flint, &["-m"], "env")
        .args([
            "SYSTEMD_IGNORE_CHROOT=1",
            "systemctl",
            "start",
            "--wait",
            "spare.socket",
        ])
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || {
            (systemctl(&["is-active", "spare.socket"]).1 == "active\n").then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    let (ok, out) = systemctl(&["stop", "spare.socket"]);
    assert!(ok, "{out}\n{}", flint.log());
    let ended = wait_for(Duration::from_secs(10), || waiting.try_wait().unwrap());
    let _ = waiting.kill();
    let _ = waiting.wait();
    assert!(
        ended.is_some_and(|s| s.success()),
        "systemctl --wait did not see the socket stop: {ended:?}\n{}",
        flint.log()
    );
    // An activation request that does not come from the bus daemon itself
    // starts nothing (any client may send the signal).
    let (sent, out) = inside(
        &flint,
        &["-m"],
        "dbus-send",
        &[
            "--system",
            "--type=signal",
            "--dest=org.freedesktop.systemd1",
            "/org/freedesktop/DBus",
            "org.freedesktop.systemd1.Activator.ActivationRequest",
            "string:forged.service",
        ],
    );
    assert!(sent, "{out}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!flint.log().contains("forged.service"), "{}", flint.log());
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

#[test]
fn dbus_activation_waits_for_a_bus_daemon_that_listens_late() {
    // A bus daemon started without a socket unit binds its socket itself,
    // after flint saw it start: flint tries again, for about ten seconds,
    // instead of leaving D-Bus activation off. The bus daemon here starts
    // one second late (a wrapper sleeps, then execs dbus-daemon).
    let units = ["systemd-hostnamed.service"];
    if !ready("/usr/bin/dbus-daemon", &units, "dbus")
        || !common::require("/lib/systemd/systemd-hostnamed", "systemd: hostnamed")
        || !common::require("busctl", "systemd: the bus client")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
        || !common::require("python3", "the late bus daemon's wrapper")
    {
        return;
    }
    let tree = hostnamed_tree(&units);
    let late = tree.write(
        "late-bus.py",
        "import os, sys, time\ntime.sleep(1)\n\
         os.execv('/usr/bin/dbus-daemon', ['dbus-daemon', '--system', '--nofork', '--nopidfile'] + sys.argv[1:])\n",
    );
    tree.write(
        "dbus.service",
        &format!(
            "[Service]
ExecStart=/usr/bin/python3 {} --systemd-activation
",
            late.display()
        ),
    );
    let flint = flint_in_namespaces(
        &tree,
        &["-m"],
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd /run/dbus",
        &["dbus.service"],
    );
    let taken = common::wait_for(Duration::from_secs(15), || {
        flint
            .log()
            .contains("dbus.service: flint is org.freedesktop.systemd1 on its bus")
            .then_some(())
    });
    assert!(taken.is_some(), "{}", flint.log());
    assert_hostname_over_the_bus(&flint);
}

#[test]
fn dovecot_answers_imap_and_imaps_on_its_four_listeners_in_its_sandbox() {
    // dovecot.socket as Debian ships it: 0.0.0.0 and [::] on 143 and 993
    // with BindIPv6Only=ipv6-only; dovecot.service `Type=notify` with
    // `PrivateTmp=`, `ProtectSystem=full` and `ExecStop=doveadm stop`.
    // dovecot matches the fds it gets to the ports of its configuration,
    // so the ports stay and flint runs in a network and mount namespace of
    // its own (with its own /run), which the clients join.
    let units = ["dovecot.socket", "dovecot.service"];
    if !ready("/usr/sbin/dovecot", &units, "dovecot")
        || !common::require("/usr/lib/dovecot/imap", "dovecot-imapd: the IMAP server")
        || !common::require("nsenter", "util-linux: joins flint's namespaces")
        || !common::require("ip", "iproute2: brings up the namespace's loopback")
        || !common::require("openssl", "the IMAPS client")
    {
        return;
    }
    let tree = tree_with(&units);
    let mut flint = flint_in_namespaces(
        &tree,
        &["-n", "-m"],
        "ip link set lo up && mount -t tmpfs tmpfs /run",
        &["dovecot.socket"],
    );
    let inside = |program: &str, args: &[&str], input: &str| {
        let mut child = nsenter(&flint, &["-n", "-m"], program)
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let imap = |host: &str| {
        inside(
            "python3",
            &[
                "-c",
                "import socket, sys\n\
                 s = socket.create_connection((sys.argv[1], 143), timeout=15)\n\
                 f = s.makefile('rb')\n\
                 print(f.readline().decode().strip())\n\
                 s.sendall(b'a LOGOUT\\r\\n')\n\
                 print(f.readline().decode().strip())\n\
                 print(f.readline().decode().strip())",
                host,
            ],
            "",
        )
    };
    for host in ["127.0.0.1", "::1"] {
        let answer = imap(host);
        assert!(
            answer.contains("Dovecot") && answer.contains("ready"),
            "IMAP over {host}: {answer}\n{}",
            flint.log()
        );
        assert!(answer.contains("a OK Logout completed"), "{answer}");
    }
    // IMAPS on 993: a TLS handshake, then dovecot's greeting.
    let tls = inside(
        "openssl",
        &["s_client", "-connect", "127.0.0.1:993", "-quiet"],
        "a LOGOUT\r\n",
    );
    assert!(tls.contains("Dovecot"), "IMAPS: {tls}\n{}", flint.log());
    assert!(flint.wait_log("dovecot.service: ready"), "{}", flint.log());
    assert_started_once(
        &flint,
        "dovecot.service",
        "one dovecot for the four listeners",
    );
    // Its sandbox: a /tmp of its own and a read-only /etc.
    let main = wait_for(Duration::from_secs(10), || {
        started_pid(&flint.log(), "dovecot.service: started /usr/sbin/dovecot")
    })
    .expect("dovecot's pid");
    let mounts = std::fs::read_to_string(format!("/proc/{main}/mountinfo")).unwrap();
    let tmp = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/tmp"))
        .unwrap_or_else(|| panic!("no /tmp mount in dovecot's namespace:\n{mounts}"));
    assert!(tmp.contains("systemd-private-"), "{tmp}");
    let etc = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/etc"))
        .unwrap_or_else(|| panic!("no /etc mount in dovecot's namespace:\n{mounts}"));
    assert!(
        etc.split(' ').nth(5).is_some_and(|o| o.starts_with("ro")),
        "{etc}"
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
    assert!(
        flint.log().contains("status: Dovecot stopped"),
        "{}",
        flint.log()
    );
}

#[test]
fn mariadb_gets_its_named_sockets_from_two_socket_units_and_answers() {
    let units = ["mariadb.socket", "mariadb-extra.socket", "mariadb.service"];
    if !ready("/usr/sbin/mariadbd", &units, "mariadb-server")
        || !common::require("/usr/bin/mariadb", "mariadb-client")
    {
        return;
    }
    let tree = tree_with(&units);
    let (main, extra) = (
        tree.path().join("mysqld.sock"),
        tree.path().join("extra.sock"),
    );
    let port = free_port();
    let tag = std::process::id();
    // Paths, abstract names and the port move; the rest is Debian's own:
    // SocketUser=mysql, SocketMode=777, FileDescriptorName=extra on the
    // second socket unit, Service=mariadb.service, Type=notify, User=mysql,
    // ExecStartPost=!/etc/mysql/debian-start.
    tree.write(
        "mariadb.socket.d/place.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream=@flint-mariadb-{tag}\nListenStream={}\nListenStream=127.0.0.1:{port}\n",
            main.display()
        ),
    );
    tree.write(
        "mariadb-extra.socket.d/place.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream=@flint-mariadb-extra-{tag}\nListenStream={}\n",
            extra.display()
        ),
    );
    // The pid file's directory comes from Debian's own tmpfiles.d
    // (mariadb.conf: `d /run/mysqld 0755 mysql root -`), which `--tmpfiles`
    // applies before the units start, as systemd does at boot.
    let _ = std::fs::remove_dir_all("/run/mysqld");
    let mut flint = Flint::run_args(
        &[
            "run".as_ref(),
            "--tmpfiles".as_ref(),
            "--unit-dir".as_ref(),
            tree.path().as_os_str(),
            "mariadb.socket".as_ref(),
            "mariadb-extra.socket".as_ref(),
        ],
        &[],
    );
    let meta = std::fs::metadata("/run/mysqld").expect("--tmpfiles made /run/mysqld");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid()),
        (0o755, uid_of_user("mysql")),
        "as mariadb.conf asks"
    );
    let query = |sock: &Path| {
        run(
            "mariadb",
            &[
                "--protocol=socket",
                &format!("--socket={}", sock.display()),
                "-uroot",
                "-N",
                "-e",
                "select 6*7",
            ],
        )
    };
    assert_eq!(query(&main).trim(), "42");
    assert_eq!(query(&extra).trim(), "42");
    let log = flint.log();
    for want in [
        format!("Using systemd activated unix socket {}", main.display()),
        format!(
            "Using systemd activated unix socket {} (extra)",
            extra.display()
        ),
        format!("Using systemd activated socket host 127.0.0.1 port {port}"),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    assert!(
        wait_for(Duration::from_secs(30), || {
            flint.log().contains("mariadb.service: ready").then_some(())
        })
        .is_some(),
        "mariadbd reported READY=1\n{}",
        flint.log()
    );
    let mode = std::fs::metadata(&main).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o777, "SocketMode=777");
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

/// `ssh` with a key of the tree, batch mode, no host key records; returns
/// the exit status, stdout and stderr.
fn ssh(port: u16, key: &Path, command: &str) -> (bool, String, String) {
    let out = Command::new("timeout")
        .args(["30", "ssh", "-p", &port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            command,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh client key in the tree: the private key's path.
fn client_key(tree: &Tree) -> std::path::PathBuf {
    let key = tree.path().join("client-key");
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    key
}

#[test]
fn openssh_server_socket_activated_logs_a_client_in() {
    let units = ["ssh.socket", "ssh.service"];
    if !ready("/usr/sbin/sshd", &units, "openssh-server")
        || !common::require("ssh", "openssh-client")
    {
        return;
    }
    if !Path::new("/etc/ssh/ssh_host_ed25519_key").exists() {
        // What the package's postinst does on a machine that has none.
        run("ssh-keygen", &["-A"]);
    }
    let tree = tree_with(&units);
    let key = client_key(&tree);
    let keys = tree.path().join("authorized_keys");
    std::fs::copy(key.with_extension("pub"), &keys).unwrap();
    let port = free_port();
    tree.write(
        "ssh.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    // The administrator's options through the unit's own $SSHD_OPTS: a
    // second EnvironmentFile= overrides /etc/default/ssh's empty value.
    let env = tree.path().join("ssh.env");
    std::fs::write(
        &env,
        format!(
            "SSHD_OPTS=\"-o AuthorizedKeysFile={} -o StrictModes=no\"\n",
            keys.display()
        ),
    )
    .unwrap();
    tree.write(
        "ssh.service.d/keys.conf",
        &format!("[Service]\nEnvironmentFile={}\n", env.display()),
    );
    let flint = Flint::run(&tree, &["ssh.socket"]);
    // Type=notify with Accept=no: the first connection starts sshd on the
    // listening socket (Debian's sshd takes it from LISTEN_FDS), the second
    // is served by the same daemon.
    for n in 0..2 {
        let (ok, out, err) = ssh(port, &key, "echo in; echo $SSH_CONNECTION");
        assert!(ok, "login {n}: {err}\n{}", flint.log());
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("in"), "{out}");
        let conn = lines.next().unwrap_or_default();
        assert!(
            conn.starts_with("127.0.0.1 ") && conn.ends_with(&format!(" 127.0.0.1 {port}")),
            "SSH_CONNECTION {conn:?}"
        );
    }
    let log = flint.log();
    assert_eq!(
        log.matches("ssh.service: started /usr/sbin/sshd").count(),
        1,
        "one sshd for both logins\n{log}"
    );
    assert!(log.contains("ssh.service: ready"), "{log}");
}

#[test]
fn tinysshd_runs_a_key_exchange_per_connection() {
    let units = ["tinysshd.socket", "tinysshd@.service"];
    if !ready("/usr/sbin/tinysshd", &units, "tinysshd") || !common::require("ssh", "openssh-client")
    {
        return;
    }
    let tree = tree_with(&units);
    let keydir = tree.path().join("sshkeydir");
    let port = free_port();
    tree.write(
        "tinysshd.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    // The host keys move into the tree; the unit's own ExecStartPre= makes
    // them at the first connection.
    tree.write(
        "tinysshd@.service.d/keys.conf",
        &format!(
            "[Service]\nExecStartPre=\nExecStartPre=-/usr/sbin/tinysshd-makekey -q {k}\nExecStart=\nExecStart=/usr/sbin/tinysshd ${{TINYSSHDOPTS}} -- {k}\n",
            k = keydir.display()
        ),
    );
    let key = client_key(&tree);
    let flint = Flint::run(&tree, &["tinysshd.socket"]);
    // The key is not authorised for root: the key exchange and the user
    // authentication ran over the connection (inetd style, stdin and
    // stdout), and the server refused the key.
    for n in 0..2 {
        let (ok, _, err) = ssh(port, &key, "true");
        assert!(
            !ok && err.contains("Permission denied (publickey)"),
            "connection {n}: {err}\n{}",
            flint.log()
        );
    }
    assert!(
        keydir.join("ed25519.pk").exists(),
        "ExecStartPre= made the host key\n{}",
        flint.log()
    );
    let log = flint.log();
    assert_eq!(
        log.matches("started /usr/sbin/tinysshd").count(),
        2,
        "one tinysshd per connection\n{log}"
    );
}

#[test]
fn cockpit_serves_its_page_through_cockpit_tls_and_an_activated_cockpit_ws() {
    let units = [
        "cockpit.socket",
        "cockpit.service",
        "cockpit-motd.service",
        "cockpit-wsinstance-http.socket",
        "cockpit-wsinstance-http.service",
        "cockpit-wsinstance-https-factory.socket",
        "cockpit-wsinstance-https-factory@.service",
        "cockpit-wsinstance-https@.socket",
        "cockpit-wsinstance-https@.service",
        "system-cockpithttps.slice",
    ];
    if !ready("/usr/lib/cockpit/cockpit-tls", &units, "cockpit-ws") {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    tree.write(
        "cockpit.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    // cockpit-tls finds its instances under /run/cockpit/wsinstance (built
    // in), so those sockets stay where the units put them.
    let mut flint = Flint::run(&tree, &["cockpit.socket"]);
    // The connection starts cockpit.service (ExecStartPre=+ makes its
    // certificate as root, RuntimeDirectory=, User=cockpit-ws), whose
    // Requires= starts two more socket units; cockpit-tls hands the plain
    // HTTP connection to the http instance socket, which starts cockpit-ws
    // as User=cockpit-wsinstance.
    let page = curl(&format!("http://127.0.0.1:{port}/"));
    assert!(
        page.contains("<html") && page.contains("is_cockpit_client"),
        "cockpit's page: {page}\n{}",
        flint.log()
    );
    let log = flint.log();
    for want in [
        "cockpit.service: started /usr/lib/cockpit/cockpit-tls",
        "cockpit-wsinstance-http.service: started /usr/lib/cockpit/cockpit-ws",
    ] {
        assert!(log.contains(want), "{want}\n{log}");
    }
    let mode = std::fs::metadata("/run/cockpit/wsinstance/http.sock")
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "SocketMode=0600");
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
    // The socket's ExecStopPost= ran and cockpit.service's
    // RuntimeDirectory= went with it.
    assert_eq!(
        std::fs::read_link("/run/cockpit/motd").ok(),
        Some(std::path::PathBuf::from("inactive.motd")),
        "{}",
        flint.log()
    );
    assert!(!Path::new("/run/cockpit/tls").exists(), "{}", flint.log());
}

#[test]
fn avahi_is_started_once_its_name_is_on_a_bus_that_flint_activates() {
    let units = [
        "dbus.socket",
        "dbus.service",
        "avahi-daemon.socket",
        "avahi-daemon.service",
    ];
    if !ready("/usr/sbin/avahi-daemon", &units, "avahi-daemon")
        || !common::require("/usr/bin/dbus-send", "dbus-bin")
    {
        return;
    }
    // avahi refuses to start while its pid file names a live process. One
    // left by an avahi killed earlier (no boot empties /run here) may name
    // a process that took the pid since: that file is stale.
    let pid_file = Path::new("/run/avahi-daemon/pid");
    if let Ok(pid) = std::fs::read_to_string(pid_file) {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", pid.trim()));
        if comm.map_or(true, |c| c.trim() != "avahi-daemon") {
            let _ = std::fs::remove_file(pid_file);
        }
    }
    let tree = tree_with(&units);
    let bus = tree.path().join("system_bus_socket");
    let address = format!("unix:path={}", bus.display());
    let avahi = tree.path().join("avahi.sock");
    tree.write(
        "dbus.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", bus.display()),
    );
    tree.write(
        "avahi-daemon.socket.d/path.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream={}\n",
            avahi.display()
        ),
    );
    tree.write(
        "avahi-daemon.service.d/bus.conf",
        &format!("[Service]\nEnvironment=DBUS_SYSTEM_BUS_ADDRESS={address}\n"),
    );
    // Ordered after avahi: asks the bus whether avahi's name is there.
    let seen = tree.path().join("seen");
    tree.write(
        "after.service",
        &format!(
            "[Unit]\nWants=avahi-daemon.service\nAfter=avahi-daemon.service\n\
             [Service]\nType=oneshot\nExecStart=/bin/sh -c 'dbus-send --bus={address} \
             --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
             org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Avahi > {}'\n",
            seen.display()
        ),
    );
    // Type=dbus, BusName=org.freedesktop.Avahi: flint asks the system bus
    // (here where the drop-in moved it), and its own connection is what
    // starts dbus.service.
    let flint = Flint::run_env(
        &tree,
        &["dbus.socket", "avahi-daemon.socket", "after.service"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", Path::new(&address))],
    );
    let answer = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|s| s.contains("boolean"))
    })
    .unwrap_or_else(|| panic!("after.service did not run\n{}", flint.log()));
    assert!(
        answer.contains("boolean true"),
        "after.service ran before avahi had its name: {answer}\n{}",
        flint.log()
    );
    assert!(
        flint.wait_log("avahi-daemon.service: org.freedesktop.Avahi is on the bus"),
        "{}",
        flint.log()
    );
    // avahi's own socket protocol, on the socket flint passed it.
    let mut s = std::os::unix::net::UnixStream::connect(&avahi).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"RESOLVE-ADDRESS 127.0.0.1\n").unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(s).read_line(&mut line);
    assert!(
        line.starts_with('+') || line.starts_with('-'),
        "an answer from avahi: {line:?}\n{}",
        flint.log()
    );
}

#[test]
fn gophernicus_serves_a_menu_and_a_file_per_connection_as_its_user() {
    // `Accept=yes`, `StandardInput=socket`, `User=_gophernicus`,
    // `SuccessExitStatus=1`, `$OPTIONS` from an optional EnvironmentFile.
    let units = ["gophernicus.socket", "gophernicus@.service"];
    if !ready("/usr/sbin/gophernicus", &units, "gophernicus") {
        return;
    }
    let tree = tree_with(&units);
    let root = owned_dir(&tree, "gopher", "root");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = root.join("hello.txt");
    std::fs::write(&file, "hello from gophernicus under flint\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = free_port();
    tree.write(
        "gophernicus.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    // Where /etc/default/gophernicus would point it.
    tree.write(
        "gophernicus@.service.d/root.conf",
        &format!(
            "[Service]\nEnvironmentFile=\nEnvironment=\"OPTIONS=-r {} -h flint.test\"\n",
            root.display()
        ),
    );
    let flint = Flint::run(&tree, &["gophernicus.socket"]);
    let menu = common::exchange(port, b"\r\n");
    assert!(
        menu.lines()
            .any(|l| l.starts_with("0hello.txt") && l.contains("\t/hello.txt\tflint.test\t")),
        "the root menu lists the file: {menu:?}\n{}",
        flint.log()
    );
    let text = common::exchange(port, b"/hello.txt\r\n");
    // Text files travel with CRLF line ends (RFC 1436).
    assert_eq!(text, "hello from gophernicus under flint\r\n");
    let missing = common::exchange(port, b"/no-such-file\r\n");
    assert!(missing.contains("not found"), "an error: {missing:?}");
    // Three instances, each ended successfully (the last one after it
    // answered the missing selector).
    let ended = wait_for(Duration::from_secs(10), || {
        (flint.log().matches("Deactivated successfully").count() == 3).then_some(())
    });
    assert!(ended.is_some(), "{}", flint.log());
    assert!(
        !flint.log().contains("Failed with result"),
        "no instance failed:\n{}",
        flint.log()
    );
}

#[test]
fn nyancat_server_speaks_telnet_on_each_connection() {
    // `Accept=true` with both `StandardInput=socket` and
    // `StandardOutput=socket`, `User=nobody`, an `ExecStart=-` command that
    // runs until the peer goes away.
    let units = ["nyancat-server.socket", "nyancat-server@.service"];
    if !ready("/usr/bin/nyancat-server", &units, "nyancat-server") {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    tree.write(
        "nyancat-server.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    let flint = Flint::run(&tree, &["nyancat-server.socket"]);
    for _ in 0..2 {
        let mut s = common::connect(port);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while seen.len() < 16384 && !String::from_utf8_lossy(&seen).contains("Nyan") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        // Telnet option negotiation (IAC ...) first, then the animation.
        assert_eq!(seen.first(), Some(&0xff), "telnet IAC first: {seen:?}");
        assert!(
            String::from_utf8_lossy(&seen).contains("Nyan"),
            "the animation's title: {:?}\n{}",
            String::from_utf8_lossy(&seen),
            flint.log()
        );
    }
    let pid = wait_for(Duration::from_secs(5), || {
        started_pid(&flint.log(), "started /usr/bin/nyancat-server")
    })
    .expect("flint logged the instance's pid");
    // The instance ends when its peer has gone.
    let gone = wait_for(Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(
        gone.is_some(),
        "nyancat-server {pid} ended with its connection"
    );
}

/// One FastCGI request (responder role) for `script` on the unix socket at
/// `path`; returns what the application wrote to its stdout.
fn fastcgi_get(path: &Path, script: &Path) -> String {
    fn record(kind: u8, content: &[u8]) -> Vec<u8> {
        let mut r = vec![1, kind, 0, 1];
        r.extend_from_slice(&u16::try_from(content.len()).unwrap().to_be_bytes());
        r.extend_from_slice(&[0, 0]);
        r.extend_from_slice(content);
        r
    }
    let mut params = Vec::new();
    for (k, v) in [
        ("SCRIPT_FILENAME", script.to_str().unwrap()),
        ("REQUEST_METHOD", "GET"),
        ("QUERY_STRING", ""),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ] {
        params.push(u8::try_from(k.len()).unwrap());
        params.push(u8::try_from(v.len()).unwrap());
        params.extend_from_slice(k.as_bytes());
        params.extend_from_slice(v.as_bytes());
    }
    let mut request = record(1, &[0, 1, 0, 0, 0, 0, 0, 0]); // BEGIN_REQUEST, responder
    request.extend(record(4, &params)); // PARAMS
    request.extend(record(4, &[]));
    request.extend(record(5, &[])); // STDIN, empty
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect to fcgiwrap");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(&request).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let mut stdout = Vec::new();
    let mut at = 0;
    while at + 8 <= reply.len() {
        let kind = reply[at + 1];
        let len = usize::from(u16::from_be_bytes([reply[at + 4], reply[at + 5]]));
        let pad = usize::from(reply[at + 6]);
        let content = &reply[at + 8..(at + 8 + len).min(reply.len())];
        match kind {
            6 => stdout.extend_from_slice(content), // STDOUT
            3 => break,                             // END_REQUEST
            _ => {}
        }
        at += 8 + len + pad;
    }
    String::from_utf8_lossy(&stdout).into_owned()
}

#[test]
fn fcgiwrap_runs_a_cgi_script_on_its_socket_owned_by_www_data() {
    // `SocketUser=`/`SocketGroup=`/`SocketMode=` on the listener, and an
    // `Accept=no` service running as `User=www-data`.
    let units = ["fcgiwrap.socket", "fcgiwrap.service"];
    if !ready("/usr/sbin/fcgiwrap", &units, "fcgiwrap") {
        return;
    }
    let tree = tree_with(&units);
    let sock = tree.path().join("fcgiwrap.socket");
    tree.write(
        "fcgiwrap.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", sock.display()),
    );
    let script = tree.path().join("hello.cgi");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho \"user=$(id -un)\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let flint = Flint::run(&tree, &["fcgiwrap.socket"]);
    let meta = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), uid_of_user("www-data"), "SocketUser=www-data");
    assert_eq!(
        meta.gid(),
        nix::unistd::Group::from_name("www-data")
            .unwrap()
            .unwrap()
            .gid
            .as_raw(),
        "SocketGroup=www-data"
    );
    assert_eq!(meta.mode() & 0o7777, 0o660, "SocketMode=0660");
    for _ in 0..2 {
        let out = fastcgi_get(&sock, &script);
        assert!(
            out.contains("Content-Type: text/plain") && out.contains("user=www-data"),
            "the script's output through fcgiwrap: {out:?}\n{}",
            flint.log()
        );
    }
    assert_started_once(&flint, "fcgiwrap.service", "one fcgiwrap for both requests");
}

#[test]
fn mpd_type_notify_greets_on_its_unix_and_tcp_sockets() {
    // Two listeners, one of them under %t, `PassCredentials=`, `Backlog=`,
    // `KeepAlive=`, and `Type=notify` (mpd --systemd).
    let units = ["mpd.socket", "mpd.service"];
    if !ready("/usr/bin/mpd", &units, "mpd") {
        return;
    }
    let tree = tree_with(&units);
    let sock = tree.path().join("mpd.sock");
    let port = free_port();
    tree.write(
        "mpd.socket.d/where.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream={}\nListenStream=127.0.0.1:{port}\n",
            sock.display()
        ),
    );
    let flint = Flint::run(&tree, &["mpd.socket"]);
    let s = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("connect to mpd over TCP");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut greeting = String::new();
    std::io::BufReader::new(s).read_line(&mut greeting).unwrap();
    assert!(
        greeting.starts_with("OK MPD "),
        "mpd over TCP: {greeting:?}\n{}",
        flint.log()
    );
    assert!(
        flint.wait_log("mpd.service: ready"),
        "mpd reported READY=1:\n{}",
        flint.log()
    );
    let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = ask(s, b"ping\n");
    assert!(reply.starts_with("OK MPD "), "mpd over unix: {reply:?}");
    assert_started_once(&flint, "mpd.service", "one mpd for both sockets");
}

#[test]
fn libvirtd_finds_its_three_sockets_by_name_and_answers_on_each() {
    // libvirtd.socket, libvirtd-ro.socket and libvirtd-admin.socket all
    // name `Service=libvirtd.service`; libvirtd matches the fds it is given
    // to its servers by their names in LISTEN_FDNAMES (the socket units'
    // names) and is `Type=notify`. Its `Requires=virtlogd.socket` and
    // `virtlockd.socket` are started with it.
    let units = [
        "libvirtd.socket",
        "libvirtd-ro.socket",
        "libvirtd-admin.socket",
        "libvirtd.service",
        "virtlogd.socket",
        "virtlogd-admin.socket",
        "virtlogd.service",
        "virtlockd.socket",
        "virtlockd-admin.socket",
        "virtlockd.service",
    ];
    if !ready("/usr/sbin/libvirtd", &units, "libvirt-daemon-system")
        || !common::require("virt-admin", "libvirt-clients: the admin client")
    {
        return;
    }
    let tree = tree_with(&units);
    let run_dir = tree.path().join("run");
    let path = |name: &str| run_dir.join(name);
    for (unit, sock) in [
        ("libvirtd", "libvirt-sock"),
        ("libvirtd-ro", "libvirt-sock-ro"),
        ("libvirtd-admin", "libvirt-admin-sock"),
        ("virtlogd", "virtlogd-sock"),
        ("virtlogd-admin", "virtlogd-admin-sock"),
        ("virtlockd", "virtlockd-sock"),
        ("virtlockd-admin", "virtlockd-admin-sock"),
    ] {
        tree.write(
            &format!("{unit}.socket.d/path.conf"),
            &format!(
                "[Socket]\nListenStream=\nListenStream={}\n",
                path(sock).display()
            ),
        );
    }
    let mut flint = Flint::run(
        &tree,
        &[
            "libvirtd.socket",
            "libvirtd-ro.socket",
            "libvirtd-admin.socket",
        ],
    );
    let uri = |scheme: &str, sock: &str| {
        format!(
            "{scheme}+unix:///system?socket={}",
            path(sock).to_str().unwrap()
        )
    };
    // The admin server lists libvirtd's servers: the connection reached the
    // admin socket and libvirtd knew it as such.
    let servers = run(
        "virt-admin",
        &["-c", &uri("libvirtd", "libvirt-admin-sock"), "srv-list"],
    );
    assert!(
        servers.contains("admin") && servers.contains("libvirtd"),
        "virt-admin srv-list: {servers:?}\n{}",
        flint.log()
    );
    // The read-only socket, read-only.
    let ro = uri("qemu", "libvirt-sock-ro");
    let answer = run("virsh", &["-r", "-c", &ro, "uri"]);
    assert_eq!(answer.trim(), ro);
    // The read-write socket.
    let rw = uri("qemu", "libvirt-sock");
    let answer = run("virsh", &["-c", &rw, "uri"]);
    assert_eq!(answer.trim(), rw);
    assert!(flint.wait_log("libvirtd.service: ready"), "{}", flint.log());
    assert!(
        flint.log().contains("virtlogd.socket: listening on")
            && flint.log().contains("virtlockd.socket: listening on"),
        "libvirtd's Requires= sockets were started:\n{}",
        flint.log()
    );
    assert_started_once(
        &flint,
        "libvirtd.service",
        "one libvirtd for the three sockets",
    );
    assert!(
        flint.stop().is_some_and(|s| s.success()),
        "flint stops cleanly"
    );
    // RemoveOnStop=yes on libvirtd.socket only.
    assert!(
        !path("libvirt-sock").exists(),
        "libvirtd.socket's RemoveOnStop=yes"
    );
    assert!(
        path("libvirt-sock-ro").exists(),
        "libvirtd-ro.socket keeps its file"
    );
}

#[test]
fn the_user_bus_comes_up_at_once_and_activates_dconf_through_flint() {
    // Debian's user dbus.socket runs `systemctl --user set-environment
    // DBUS_SESSION_BUS_ADDRESS=...` in its ExecStartPost=. systemctl finds
    // flint on $XDG_RUNTIME_DIR/systemd/private instead of falling back to
    // the bus flint is about to start (which held the hook up until its
    // timeout), and the units started later get the variable. On that bus
    // dconf (Type=dbus) is started through D-Bus activation.
    const USER_UNITS: &str = "/usr/lib/systemd/user";
    let units = ["dbus.socket", "dbus.service", "dconf.service"];
    for u in units {
        if !common::require(
            &format!("{USER_UNITS}/{u}"),
            "dbus-user-session, dconf-service",
        ) {
            return;
        }
    }
    if !common::require("busctl", "systemd: the bus client")
        || !common::require("systemctl", "systemd: the manager client")
    {
        return;
    }
    let tree = Tree::new();
    for u in units {
        tree.write(
            &format!("units/{u}"),
            &std::fs::read_to_string(Path::new(USER_UNITS).join(u)).unwrap(),
        );
    }
    let runtime = tree.path().join("runtime");
    let home = tree.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let unit_dir = tree.path().join("units");
    let args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--user".as_ref(),
        "--unit-dir".as_ref(),
        unit_dir.as_os_str(),
        "dbus.socket".as_ref(),
    ];
    // "unit(s) running" comes once the socket's ExecStartPost= is done.
    let flint = Flint::run_args(&args, &[("XDG_RUNTIME_DIR", &runtime), ("HOME", &home)]);
    let address = format!("unix:path={}", runtime.join("bus").display());
    assert!(
        flint.log().contains(&format!(
            "environment for units started from now on: DBUS_SESSION_BUS_ADDRESS={address}"
        )),
        "{}",
        flint.log()
    );
    let out = Command::new("timeout")
        .args(["20", "busctl", "--user", "call", "ca.desrt.dconf"])
        .args([
            "/ca/desrt/dconf/Writer/user",
            "org.freedesktop.DBus.Peer",
            "Ping",
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        flint.log()
    );
    // The answer can come before flint's held log line reaches the pipe.
    let needle = "dconf.service: started /usr/libexec/dconf-service";
    flint.wait_log(needle);
    let log = flint.log();
    let pid = started_pid(&log, needle).unwrap_or_else(|| panic!("{log}"));
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == format!("DBUS_SESSION_BUS_ADDRESS={address}").as_bytes()),
        "the variable set through systemctl reaches dconf"
    );
    // dbus-update-activation-environment --systemd asks systemd on the bus.
    if common::require("dbus-update-activation-environment", "dbus-bin") {
        let out = Command::new("timeout")
            .args(["20", "dbus-update-activation-environment", "--systemd"])
            .arg("FLINT_TEST_VAR=from the bus")
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            flint
                .wait_log("environment for units started from now on: FLINT_TEST_VAR=from the bus"),
            "{}",
            flint.log()
        );
    }
    // systemctl's jobs are flint's: a unit that is not there is refused
    // at once, as systemd refuses it (exit 5).
    let out = Command::new("timeout")
        .args(["20", "systemctl", "--user", "start", "nothing.service"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("SYSTEMD_IGNORE_CHROOT", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(5)
            && String::from_utf8_lossy(&out.stderr)
                .contains("Failed to start nothing.service: Unit nothing.service not found."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gpg_agent_user_units_map_four_named_sockets_and_dirmngr_answers() {
    // GnuPG's own user units, under `flint run --user`: four socket units
    // with `FileDescriptorName=` std/ssh/extra/browser start one
    // `gpg-agent --supervised`, which assigns the fds by those names;
    // `%t` is $XDG_RUNTIME_DIR and `DirectoryMode=0700` makes %t/gnupg.
    const USER_UNITS: &str = "/usr/lib/systemd/user";
    let units = [
        "gpg-agent.socket",
        "gpg-agent-ssh.socket",
        "gpg-agent-extra.socket",
        "gpg-agent-browser.socket",
        "gpg-agent.service",
        "dirmngr.socket",
        "dirmngr.service",
    ];
    for (program, why) in [
        ("/usr/bin/gpg-agent", "gpg-agent"),
        ("/usr/bin/dirmngr", "dirmngr"),
        (
            "ssh-add",
            "openssh-client: speaks to the agent's ssh socket",
        ),
    ] {
        if !common::require(program, why) {
            return;
        }
    }
    for u in &units {
        if !common::require(&format!("{USER_UNITS}/{u}"), "gpg-agent and dirmngr") {
            return;
        }
    }
    let tree = Tree::new();
    for u in &units {
        tree.write(
            &format!("units/{u}"),
            &std::fs::read_to_string(Path::new(USER_UNITS).join(u)).unwrap(),
        );
    }
    let runtime = tree.path().join("runtime");
    let home = tree.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let unit_dir = tree.path().join("units");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--user".as_ref(),
        "--unit-dir".as_ref(),
        unit_dir.as_os_str(),
    ];
    args.extend(
        units
            .iter()
            .filter(|u| u.ends_with(".socket"))
            .map(|u| std::ffi::OsStr::new(*u)),
    );
    let flint = Flint::run_args(&args, &[("XDG_RUNTIME_DIR", &runtime), ("HOME", &home)]);
    let gnupg = runtime.join("gnupg");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&gnupg).unwrap().mode() & 0o7777,
        0o700,
        "DirectoryMode=0700"
    );
    let std_sock = gnupg.join("S.gpg-agent");
    let s = std::os::unix::net::UnixStream::connect(&std_sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut s = std::io::BufReader::new(s);
    let mut line = String::new();
    s.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("OK Pleased"),
        "the Assuan greeting: {line:?}"
    );
    // The agent says which path it serves each socket kind on: the fd it
    // took as `std` and as `ssh` are the ones flint named so.
    let mut ask_agent = |request: &str| {
        s.get_mut().write_all(request.as_bytes()).unwrap();
        let mut data = String::new();
        loop {
            let mut l = String::new();
            if s.read_line(&mut l).unwrap_or(0) == 0 || l.starts_with("OK") || l.starts_with("ERR")
            {
                break;
            }
            data.push_str(l.trim_start_matches("D ").trim_end());
        }
        data
    };
    assert_eq!(
        ask_agent("GETINFO socket_name\n"),
        std_sock.display().to_string()
    );
    assert_eq!(
        ask_agent("GETINFO ssh_socket_name\n"),
        gnupg.join("S.gpg-agent.ssh").display().to_string()
    );
    // The ssh-agent protocol on the ssh socket.
    let out = Command::new("timeout")
        .args(["20", "ssh-add", "-l"])
        .env("SSH_AUTH_SOCK", gnupg.join("S.gpg-agent.ssh"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("The agent has no identities"),
        "ssh-add -l through the agent's ssh socket: {said:?}\n{}",
        flint.log()
    );
    // dirmngr, its own socket and service.
    let d = std::os::unix::net::UnixStream::connect(gnupg.join("S.dirmngr")).unwrap();
    d.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut d = std::io::BufReader::new(d);
    // Comment lines (`# Home: ...`) come before the greeting.
    let mut greeting = String::new();
    while greeting.is_empty() || greeting.starts_with('#') {
        greeting.clear();
        if d.read_line(&mut greeting).unwrap_or(0) == 0 {
            break;
        }
    }
    assert!(
        greeting.starts_with("OK Dirmngr"),
        "dirmngr's greeting: {greeting:?}\n{}",
        flint.log()
    );
    assert_started_once(
        &flint,
        "gpg-agent.service",
        "one gpg-agent for the four sockets",
    );
}

#[test]
fn rpcbind_answers_on_its_five_fixed_listeners_in_a_private_network() {
    // rpcbind.socket exactly as Debian ships it: /run/rpcbind.sock, TCP and
    // UDP on 0.0.0.0:111 and on [::]:111 with BindIPv6Only=ipv6-only, and
    // rpcbind.service `Type=notify` with `$OPTIONS` from the environment.
    // Port 111 and /run/rpcbind.sock are fixed (the clients know no other),
    // so flint runs in a network and mount namespace of its own, with its
    // own /run, and the clients join it.
    let units = ["rpcbind.socket", "rpcbind.service"];
    if !ready("/sbin/rpcbind", &units, "rpcbind")
        || !common::require("rpcinfo", "rpcbind: the client")
        || !common::require("nsenter", "util-linux: joins flint's namespaces")
        || !common::require("ip", "iproute2: brings up the namespace's loopback")
    {
        return;
    }
    let tree = tree_with(&units);
    let mut flint = flint_in_namespaces(
        &tree,
        &["-n", "-m"],
        "ip link set lo up && mount -t tmpfs tmpfs /run",
        &["rpcbind.socket"],
    );
    let rpcinfo = |args: &[&str]| inside(&flint, &["-n", "-m"], "rpcinfo", args).1;
    // Over IPv4 TCP (what starts rpcbind), then the unix socket, then UDP
    // over IPv6 and IPv4.
    let over_tcp = rpcinfo(&["-p", "127.0.0.1"]);
    for proto in ["tcp", "udp"] {
        assert!(
            over_tcp
                .lines()
                .any(|l| l.contains("100000") && l.contains(proto) && l.contains("portmapper")),
            "rpcinfo -p 127.0.0.1: {over_tcp}\n{}",
            flint.log()
        );
    }
    let over_unix = rpcinfo(&["-p"]);
    assert!(over_unix.contains("portmapper"), "rpcinfo -p: {over_unix}");
    for (transport, host) in [("udp6", "::1"), ("udp", "127.0.0.1"), ("tcp6", "::1")] {
        let answer = rpcinfo(&["-T", transport, host, "100000", "4"]);
        assert!(
            answer.contains("ready and waiting"),
            "rpcinfo -T {transport} {host}: {answer}\n{}",
            flint.log()
        );
    }
    assert!(flint.wait_log("rpcbind.service: ready"), "{}", flint.log());
    assert_started_once(
        &flint,
        "rpcbind.service",
        "one rpcbind for the five listeners",
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

#[test]
fn udevd_takes_its_netlink_and_seqpacket_sockets_and_handles_a_uevent() {
    // systemd-udevd as Debian's udev ships it: a netlink socket unit
    // (`ListenNetlink=kobject-uevent 1`, `ReceiveBuffer=128M`), a control
    // socket unit (`ListenSequentialPacket=/run/udev/control`), one
    // `Type=notify` service with `Sockets=` naming both, a watchdog, a
    // system call filter and `IPAddressDeny=any`. Its paths are fixed, so
    // flint runs in a network and mount namespace of its own, with its own
    // /run and a sysfs of that network namespace (the host's cgroups moved
    // into it); the uevents udevd sees are those of the namespace's
    // devices.
    let units = [
        "systemd-udevd-kernel.socket",
        "systemd-udevd-control.socket",
        "systemd-udevd.service",
    ];
    if !ready("/lib/systemd/systemd-udevd", &units, "udev")
        || !common::require("udevadm", "udev: the client")
        || !common::require("nsenter", "util-linux: joins flint's namespaces")
        || !common::require("ip", "iproute2: makes a device in the namespace")
    {
        return;
    }
    let tree = tree_with(&units);
    let mut flint = flint_in_namespaces(
        &tree,
        &["-n", "-m"],
        &format!("mount -t tmpfs tmpfs /run && {}", own_sysfs(&tree, false)),
        &[
            "systemd-udevd-control.socket",
            "systemd-udevd-kernel.socket",
        ],
    );
    let inside = |program: &str, args: &[&str]| inside(&flint, &["-n", "-m"], program, args);
    // The control socket starts udevd, which answers once it is ready.
    let (pinged, out) = inside("udevadm", &["control", "--ping", "--timeout=15"]);
    assert!(pinged, "udevadm control --ping: {out}\n{}", flint.log());
    assert!(
        flint.wait_log("systemd-udevd.service: ready"),
        "{}",
        flint.log()
    );
    // A new device's uevent reaches udevd through the netlink socket flint
    // holds: udevd runs its rules and records the device.
    let (made, out) = inside("ip", &["link", "add", "flintbr0", "type", "bridge"]);
    assert!(made, "ip link add: {out}");
    let recorded = wait_for(Duration::from_secs(20), || {
        let (_, out) = inside(
            "udevadm",
            &["info", "--query=property", "/sys/class/net/flintbr0"],
        );
        (out.contains("USEC_INITIALIZED=") && out.contains("ID_NET_DRIVER=bridge")).then_some(out)
    });
    assert!(
        recorded.is_some(),
        "udevd did not record the bridge: {}\n{}",
        inside("udevadm", &["info", "/sys/class/net/flintbr0"]).1,
        flint.log()
    );
    assert_started_once(
        &flint,
        "systemd-udevd.service",
        "one udevd for both sockets",
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

#[test]
fn journald_keeps_a_log_stream_across_its_crash_through_the_fd_store() {
    // systemd-journald as Debian's systemd ships it: a datagram and a
    // stream socket, /dev/log's datagram socket (two socket units, with
    // credentials, security labels and timestamps passed) into one
    // Type=notify service with FileDescriptorStoreMax=4224, Restart=always,
    // a watchdog and its sandbox. Its paths are fixed, so flint runs in a
    // mount namespace of its own with its own /run; the drop-in leaves out
    // the /dev/log link, which would be the host's.
    let units = [
        "systemd-journald.socket",
        "systemd-journald-dev-log.socket",
        "systemd-journald.service",
    ];
    if !ready("/lib/systemd/systemd-journald", &units, "systemd-journald")
        || !common::require("systemd-cat", "systemd: writes a log stream")
        || !common::require("logger", "logger")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
    {
        return;
    }
    let tree = tree_with(&units);
    tree.write(
        "systemd-journald-dev-log.socket.d/no-link.conf",
        "[Socket]\nSymlinks=\n",
    );
    let mut flint = flint_in_namespaces(
        &tree,
        &["-m"],
        "mount -t tmpfs tmpfs /run",
        &["systemd-journald.socket", "systemd-journald-dev-log.socket"],
    );
    let inside = |args: &[&str]| {
        let mut cmd = nsenter(&flint, &["-m"], args[0]);
        cmd.args(&args[1..]);
        cmd
    };
    let journal = || {
        let out = inside(&["journalctl", "-D", "/run/log/journal", "-o", "cat"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let logged = |text: &str| {
        wait_for(Duration::from_secs(20), || {
            journal().contains(text).then_some(())
        })
        .is_some()
    };
    // A datagram on /dev/log's socket starts journald.
    let sent = inside(&[
        "logger",
        "-u",
        "/run/systemd/journal/dev-log",
        "-t",
        "probe",
        "via dev-log",
    ])
    .status()
    .unwrap();
    assert!(sent.success());
    assert!(logged("via dev-log"), "{}", flint.log());
    // A log stream that stays open: its first line now, its second once
    // journald has crashed and been restarted.
    let go = tree.path().join("go");
    let mut stream = inside(&[
        "sh",
        "-c",
        &format!(
            "(echo 'stream line one'; i=0; while [ ! -e {go} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
             echo 'stream line two') | systemd-cat -t longlived",
            go = go.display()
        ),
    ])
    .spawn()
    .unwrap();
    assert!(logged("stream line one"), "{}", flint.log());
    let log = flint.log();
    let journald = started_pid(
        &log,
        "systemd-journald.service: started /lib/systemd/systemd-journald",
    )
    .expect("started");
    // SAFETY: kill(2) of the journald flint started for this test.
    unsafe {
        libc::kill(journald.cast_signed(), libc::SIGKILL);
    }
    let restarted = wait_for(Duration::from_secs(20), || {
        (flint
            .log()
            .matches("systemd-journald.service: ready")
            .count()
            >= 2)
            .then_some(())
    });
    assert!(restarted.is_some(), "{}", flint.log());
    // The stream's connection was in flint's fd store: the new journald
    // took it back and reads on.
    std::fs::write(&go, "").unwrap();
    assert!(logged("stream line two"), "{}\n{}", journal(), flint.log());
    let done = wait_for(Duration::from_secs(20), || stream.try_wait().ok().flatten());
    if done.is_none() {
        let _ = stream.kill();
        let _ = stream.wait();
    }
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

#[test]
fn networkd_is_started_by_a_route_netlink_message_and_configures_a_link() {
    // systemd-networkd as Debian's systemd ships it: `ListenNetlink=route
    // 1361` (the link, address and route groups), `ExecStart=!!` with
    // `User=systemd-network` and ambient capabilities, Type=notify, its
    // sandbox. It runs in a network and mount namespace of its own, with
    // its own /run (where its .network file is) and that namespace's sysfs,
    // read-only as in a container, so that it does not wait for udev.
    let units = ["systemd-networkd.socket", "systemd-networkd.service"];
    if !ready("/lib/systemd/systemd-networkd", &units, "systemd-networkd")
        || !common::require("nsenter", "util-linux: joins flint's namespaces")
        || !common::require("ip", "iproute2: makes and reads a link")
    {
        return;
    }
    let tree = tree_with(&units);
    tree.write(
        "10-flint.network",
        "[Match]\nName=flintbr0\n[Network]\nAddress=10.77.0.1/24\nConfigureWithoutCarrier=yes\n",
    );
    let mut flint = flint_in_namespaces(
        &tree,
        &["-n", "-m"],
        &format!(
            "mount -t tmpfs tmpfs /run && {} && mkdir -p /run/systemd/network && \
             cp {}/10-flint.network /run/systemd/network/",
            own_sysfs(&tree, true),
            tree.path().display()
        ),
        &["systemd-networkd.socket"],
    );
    let ip = |args: &[&str]| inside(&flint, &["-n", "-m"], "ip", args).1;
    assert!(
        !flint.log().contains("systemd-networkd.service: started"),
        "{}",
        flint.log()
    );
    // The new link's RTM_NEWLINK reaches flint's netlink socket and starts
    // networkd, which takes the socket and configures the link.
    let made = ip(&["link", "add", "flintbr0", "type", "bridge"]);
    assert!(made.trim().is_empty(), "ip link add: {made}");
    let configured = wait_for(Duration::from_secs(20), || {
        ip(&["-4", "addr", "show", "flintbr0"])
            .contains("inet 10.77.0.1/24")
            .then_some(())
    });
    assert!(configured.is_some(), "{}\n{}", ip(&["addr"]), flint.log());
    assert!(
        flint.wait_log("systemd-networkd.service: ready"),
        "{}",
        flint.log()
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
}

#[test]
fn redis_runs_from_its_hardened_unit_in_its_sandbox() {
    // redis-server.service as Debian ships it: Type=notify, User=redis,
    // ProtectSystem=strict, PrivateDevices=, ProtectProc=invisible,
    // NoExecPaths=/ with ExecPaths=, MemoryDenyWriteExecute=,
    // RestrictAddressFamilies=, SystemCallFilter=@system-service minus
    // @privileged @resources, ... A drop-in moves the port, as an
    // administrator would.
    let units = ["redis-server.service"];
    if !ready("/usr/bin/redis-server", &units, "redis-server")
        || !common::require("/etc/redis/redis.conf", "redis-server's configuration")
    {
        return;
    }
    let tree = tree_with(&units);
    let port = common::free_port();
    tree.write(
        "redis-server.service.d/port.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/bin/redis-server /etc/redis/redis.conf --supervised systemd --daemonize no --port {port}\n"
        ),
    );
    let mut flint = Flint::run_until(&tree, &["redis-server.service"], "job start");
    // Type=notify: "ready" once redis says READY=1.
    assert!(
        wait_for(Duration::from_secs(20), || flint
            .log()
            .contains("redis-server.service: ready")
            .then_some(()))
        .is_some(),
        "{}",
        flint.log()
    );
    let answer = common::exchange(port, b"PING\r\nSET flint works\r\nGET flint\r\nQUIT\r\n");
    assert_eq!(
        answer,
        "+PONG\r\n+OK\r\n$5\r\nworks\r\n+OK\r\n",
        "{}",
        flint.log()
    );
    // What the sandbox gave it, read from the host.
    let pid = flint
        .log()
        .lines()
        .find_map(|l| {
            l.split("started /usr/bin/redis-server (pid ")
                .nth(1)?
                .split(')')
                .next()
                .map(str::to_string)
        })
        .expect("redis's pid in the log");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for want in ["NoNewPrivs:\t1", "Seccomp:\t2", "CapBnd:\t0000000000000000"] {
        assert!(status.contains(want), "{want} missing:\n{status}");
    }
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /proc ") && l.contains("hidepid=invisible")),
        "{mounts}"
    );
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" / ") && l.contains(" ro,")),
        "{mounts}"
    );
    flint.stop();
}

/// The clusters `pg_lsclusters -h` lists: version, name, port, status.
fn pg_clusters() -> Vec<(String, String, String, String)> {
    run("pg_lsclusters", &["-h"])
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 4).then(|| (w[0].into(), w[1].into(), w[2].into(), w[3].into()))
        })
        .collect()
}

#[test]
fn postgresql_service_starts_the_clusters_its_generator_finds() {
    // Debian's postgresql.service is an ExecStart=/bin/true wrapper: what
    // it starts is what postgresql-generator links into
    // postgresql.service.wants/ (every cluster whose start.conf says
    // auto). `flint run postgresql.service` on the system's own tree, the
    // generator run as systemd runs it, in a network namespace of its own
    // so that the cluster's fixed port is private.
    let generator = "/usr/lib/systemd/system-generators/postgresql-generator";
    if !ready(
        "/usr/bin/pg_ctlcluster",
        &["postgresql.service", "postgresql@.service"],
        "postgresql",
    ) || !common::require(generator, "postgresql-common's generator")
        || !common::require("/usr/bin/psql", "postgresql-client")
        || !common::require("unshare", "util-linux: a network namespace")
        || !common::require("ip", "iproute2: the namespace's loopback")
        || !common::require("runuser", "util-linux: psql as postgres")
    {
        return;
    }
    let clusters = pg_clusters();
    if clusters.iter().any(|c| c.3 != "down") {
        eprintln!("skipping: a PostgreSQL cluster is running on this host");
        return;
    }
    // One the generator links: its start.conf says auto (or is absent).
    let auto = |(version, name, _, _): &&(String, String, String, String)| {
        std::fs::read_to_string(format!("/etc/postgresql/{version}/{name}/start.conf")).map_or(
            true,
            |text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    == Some("auto")
            },
        )
    };
    let Some((version, name, port, _)) = clusters.iter().find(auto).cloned() else {
        eprintln!(
            "skipping: no PostgreSQL cluster that starts by itself \
             (pg_createcluster makes one)"
        );
        return;
    };
    // Should the test fail with the cluster up, it is stopped all the same.
    struct StopCluster(String, String);
    impl Drop for StopCluster {
        fn drop(&mut self) {
            if pg_clusters()
                .iter()
                .any(|c| (&c.0, &c.1) == (&self.0, &self.1) && c.3 != "down")
            {
                let _ = Command::new("pg_ctlcluster")
                    .args([&self.0, &self.1, "stop", "-m", "fast"])
                    .stdin(Stdio::null())
                    .status();
            }
        }
    }
    let _stop = StopCluster(version.clone(), name.clone());
    let tree = Tree::new();
    let gens = tree.path().join("generators");
    std::fs::create_dir(&gens).unwrap();
    std::os::unix::fs::symlink(generator, gens.join("postgresql-generator")).unwrap();
    // flint's runtime directory, where the generators' output goes.
    let control = tree.path().join("flint/control");
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c"])
        .arg(format!(
            "ip link set lo up && exec {} run --tmpfiles --control {} postgresql.service",
            common::flint_bin().display(),
            control.display()
        ))
        .env("SYSTEMD_GENERATOR_PATH", &gens);
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    let instance = format!("postgresql@{version}-{name}.service");
    assert!(
        tree.path()
            .join(format!(
                "flint/generator/postgresql.service.wants/{instance}"
            ))
            .exists(),
        "{}",
        flint.log()
    );
    assert!(
        flint.wait_log("postgresql.service: started /bin/true"),
        "{}",
        flint.log()
    );
    let (code, status) = common::ctl(&control, &["is-active", &instance]);
    assert_eq!((code, status.trim()), (0, "active"), "{}", flint.log());
    // A client over the cluster's socket.
    let answer = run(
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            "psql",
            "-h",
            "/run/postgresql",
            "-p",
            &port,
            "-tAc",
            "select 6 * 7",
        ],
    );
    assert_eq!(answer.trim(), "42", "{}", flint.log());
    flint.stop();
    assert!(
        pg_clusters().iter().all(|c| c.3 == "down"),
        "the cluster stops with flint:\n{}",
        flint.log()
    );
}

/// pcscd (PC/SC smart cards) from its own units: the socket is made with
/// `SocketMode=0666`, and the daemon, started by the first connection,
/// answers pcsc-lite's version handshake (`CMD_VERSION`) on it.
#[test]
fn pcscd_answers_the_pcsc_version_handshake_on_its_activated_socket() {
    let units = ["pcscd.socket", "pcscd.service"];
    if !ready("/usr/sbin/pcscd", &units, "pcscd") {
        return;
    }
    let tree = tree_with(&units);
    let path = tree.path().join("run/pcscd/pcscd.comm");
    tree.write(
        "pcscd.socket.d/path.conf",
        &format!("[Socket]\nListenStream=\nListenStream={}\n", path.display()),
    );
    let flint = Flint::run(&tree, &["pcscd.socket"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o666, "SocketMode=0666");
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // struct rxHeader { u32 size; u32 command } (CMD_VERSION = 0x11), then
    // struct version_struct { i32 major; i32 minor; u32 rv }, as the client
    // library sends it.
    let mut request = Vec::new();
    for word in [12u32, 0x11, 4, 4, 0] {
        request.extend_from_slice(&word.to_le_bytes());
    }
    s.write_all(&request).unwrap();
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("no version reply: {e}\n{}", flint.log()));
    let word = |i: usize| u32::from_le_bytes(reply[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(word(0), 4, "the protocol's major version: {reply:?}");
    assert_eq!(word(2), 0, "SCARD_S_SUCCESS: {reply:?}");
    // flint's line about the start may reach its log after pcscd answered.
    assert!(flint.wait_log("pcscd.service: started"), "{}", flint.log());
}

/// systemd-journal-gatewayd from its own hardened unit (`DynamicUser=`,
/// `PrivateNetwork=`, `MemoryDenyWriteExecute=`, ...): started by the first
/// HTTP request on its socket, it answers from its private network with
/// its page and, where the machine has an id, this boot's id.
#[test]
fn journal_gatewayd_answers_http_on_its_socket_from_its_sandbox() {
    let units = [
        "systemd-journal-gatewayd.socket",
        "systemd-journal-gatewayd.service",
    ];
    if !ready(
        "/lib/systemd/systemd-journal-gatewayd",
        &units,
        "systemd-journal-remote",
    ) {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    tree.write(
        "systemd-journal-gatewayd.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    let flint = Flint::run(&tree, &["systemd-journal-gatewayd.socket"]);
    let page = curl(&format!("http://127.0.0.1:{port}/browse"));
    assert!(page.contains("<html"), "{page}\n{}", flint.log());
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    if machine_id.trim().is_empty() {
        eprintln!("no /etc/machine-id: /machine answers only where the machine has an id");
    } else {
        let machine = curl(&format!("http://127.0.0.1:{port}/machine"));
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
            .replace('-', "");
        assert!(
            machine.contains(&format!("\"boot_id\" : \"{boot_id}\"")),
            "{machine}"
        );
    }
    assert!(
        flint
            .log()
            .contains("systemd-journal-gatewayd.service: started"),
        "{}",
        flint.log()
    );
}

/// beanstalkd from its own units: it takes the socket flint passes (its
/// `-l`/`-p` from `/etc/default/beanstalkd` then ignored, as under
/// systemd), runs as `User=beanstalkd`, and a client's job goes in and
/// comes out again.
#[test]
fn beanstalkd_queues_a_job_on_its_activated_socket() {
    let units = ["beanstalkd.socket", "beanstalkd.service"];
    if !ready("/usr/bin/beanstalkd", &units, "beanstalkd") {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    tree.write(
        "beanstalkd.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    let flint = Flint::run(&tree, &["beanstalkd.socket"]);
    let s = common::connect(port);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = || {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        l
    };
    w.write_all(b"put 0 0 30 5\r\nhello\r\n").unwrap();
    assert_eq!(line(), "INSERTED 1\r\n", "{}", flint.log());
    w.write_all(b"reserve-with-timeout 5\r\n").unwrap();
    assert_eq!(line(), "RESERVED 1 5\r\n");
    assert_eq!(line(), "hello\r\n");
    w.write_all(b"stats\r\n").unwrap();
    let header = line();
    let len: usize = header
        .strip_prefix("OK ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{header}"));
    let mut body = vec![0u8; len + 2];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8_lossy(&body);
    let pid = body
        .lines()
        .find_map(|l| l.strip_prefix("pid: "))
        .unwrap_or_else(|| panic!("{body}"))
        .trim()
        .to_owned();
    assert_eq!(uid_of(&pid), Some(uid_of_user("beanstalkd")), "{body}");
    // flint's line about the start may reach its log after the answer.
    assert!(
        flint.wait_log("beanstalkd.service: started"),
        "{}",
        flint.log()
    );
}

/// GNU dico's dicod, inetd style (`Accept=yes`, `StandardInput=socket`,
/// `--inetd`): each connection of the `dict` client gets an instance of
/// its own that answers the DICT protocol, named as systemd names it.
#[test]
fn dicod_answers_the_dict_client_per_connection() {
    let units = ["dicod.socket", "dicod@.service"];
    if !ready("/usr/bin/dicod", &units, "dicod") || !common::require("/usr/bin/dict", "dict") {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    tree.write(
        "dicod.socket.d/port.conf",
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    let flint = Flint::run(&tree, &["dicod.socket"]);
    for _ in 0..3 {
        let info = run("dict", &["-h", "127.0.0.1", "-p", &port.to_string(), "-I"]);
        assert!(info.contains("dicod"), "{info}\n{}", flint.log());
    }
    // (flint's lines may reach its log after the client's answer.)
    assert!(
        flint.wait_log(&format!("dicod@2-127.0.0.1:{port}-127.0.0.1:")),
        "{}",
        flint.log()
    );
}

/// PgBouncer from its own units (`Type=notify`, `User=postgres`, a unix
/// and a TCP listener, `ExecReload=` with `$MAINPID`, `KillSignal=SIGINT`),
/// its configuration given by a drop-in: `psql` is answered on both
/// listeners, a reload reaches the daemon, and a stop ends it cleanly.
#[test]
fn pgbouncer_answers_psql_on_its_unix_and_tcp_sockets() {
    let units = ["pgbouncer.socket", "pgbouncer.service"];
    if !ready("/usr/sbin/pgbouncer", &units, "pgbouncer")
        || !common::require("/usr/bin/psql", "postgresql-client")
    {
        return;
    }
    let tree = tree_with(&units);
    let port = free_port();
    let sock = owned_dir(&tree, "sock", "postgres");
    let config = tree.path().join("pgbouncer.ini");
    let users = tree.path().join("users.txt");
    std::fs::write(&users, "\"pgbouncer\" \"\"\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "[databases]\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir = {}\nauth_type = trust\nauth_file = {}\n\
             admin_users = pgbouncer\nlogfile =\npidfile =\n",
            sock.display(),
            users.display()
        ),
    )
    .unwrap();
    for f in [&config, &users] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    tree.write(
        "pgbouncer.socket.d/port.conf",
        &format!(
            "[Socket]\nListenStream=\nListenStream={}/.s.PGSQL.{port}\nListenStream=127.0.0.1:{port}\n",
            sock.display()
        ),
    );
    tree.write(
        "pgbouncer.service.d/config.conf",
        &format!(
            "[Service]\nExecStart=\nExecStart=/usr/sbin/pgbouncer {}\n",
            config.display()
        ),
    );
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &["--control", control.to_str().unwrap(), "pgbouncer.socket"],
    );
    let port_text = port.to_string();
    let psql = |host: &str, query: &str| {
        run(
            "psql",
            &[
                "-h",
                host,
                "-p",
                &port_text,
                "-U",
                "pgbouncer",
                "pgbouncer",
                "-tA",
                "-c",
                query,
            ],
        )
    };
    let version = psql("127.0.0.1", "SHOW VERSION;");
    assert!(
        version.starts_with("PgBouncer "),
        "{version}\n{}",
        flint.log()
    );
    let lists = psql(sock.to_str().unwrap(), "SHOW LISTS;");
    assert!(lists.contains("databases|"), "{lists}");
    assert!(
        flint.wait_log("pgbouncer.service: ready"),
        "{}",
        flint.log()
    );
    let (code, _) = common::ctl(&control, &["reload", "pgbouncer.service"]);
    assert_eq!(code, 0, "{}", flint.log());
    assert!(flint.wait_log("got SIGHUP"), "{}", flint.log());
    let (code, _) = common::ctl(&control, &["stop", "pgbouncer.service"]);
    assert_eq!(code, 0, "{}", flint.log());
    assert!(
        flint.wait_log("pgbouncer.service: stopped (exited with status 0)"),
        "SIGINT ends it cleanly: {}",
        flint.log()
    );
}

/// Where `/run/systemd/system` says systemd runs (a container set up so),
/// a system flint serves `/run/systemd/private`, so that root's systemctl
/// talks to it with no bus at all, as to systemd (cockpit.socket's
/// `ExecStartPost=` runs `systemctl show`).
#[test]
fn roots_systemctl_reaches_a_system_flint_on_its_private_socket() {
    if !common::require("systemctl", "systemd: the client of the private socket")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
    {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a mount namespace with its own /run needs root");
        return;
    }
    let tree = Tree::new();
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write("other.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "sysinit.target",
        "[Unit]\nDescription=System Initialization\n",
    );
    tree.write("shutdown.target", "[Unit]\nDescription=System Shutdown\n");
    let flint = flint_in_namespaces(
        &tree,
        &["-m"],
        "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system",
        &["keep.service"],
    );
    let systemctl = |args: &[&str]| systemd_tool(&flint, "systemctl", args);
    let (ok, out) = systemctl(&["is-active", "keep.service"]);
    assert!(ok && out == "active\n", "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["start", "other.service"]);
    assert!(ok, "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["is-active", "other.service"]);
    assert!(ok && out == "active\n", "{out}\n{}", flint.log());
    // The early boot a running system has reached is active, as under
    // systemd (Debian's invoke-rc.d asks where no runlevel is recorded);
    // the shutdown is not.
    let (ok, out) = systemctl(&["is-active", "sysinit.target", "shutdown.target"]);
    assert!(ok && out == "active\ninactive\n", "{out}\n{}", flint.log());
}

/// Where a system flint runs (`/run/systemd/system` exists), Debian's
/// systemctl does `enable`, `disable`, `is-enabled`, `list-unit-files`,
/// `set-default` and `get-default` through the manager's API
/// (`EnableUnitFiles`, ...), as it does under systemd, not on its own: the
/// links are made in flint's configuration directory, the answers say what
/// changed, and a refusal has systemd's words.
#[test]
fn roots_systemctl_enables_and_disables_unit_files_through_a_system_flint() {
    if !common::require("systemctl", "systemd: the client of the private socket")
        || !common::require("systemd-run", "systemd: sends transient units")
        || !common::require("python3", "a client of a socket")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
    {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "skipped: a mount namespace with its own /run and /etc/systemd/system needs root"
        );
        return;
    }
    let tree = Tree::new();
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    tree.write(
        "web.service",
        "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n",
    );
    tree.write("plain.service", "[Service]\nExecStart=/bin/true\n");
    tree.write("custom.target", "[Unit]\nDescription=custom\n");
    // The tree is the system's configuration directory in flint's mount
    // namespace, as an administrator's /etc/systemd/system.
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && \
             mount --bind {} /etc/systemd/system && \
             exec {} run --unit-dir /etc/systemd/system --unit-dir /run/systemd/transient \
             keep.service",
            tree.path().display(),
            common::flint_bin().display(),
        ));
    let flint = Flint::run_command_until(cmd, "unit(s) running");
    let systemctl = |args: &[&str]| systemd_tool(&flint, "systemctl", args);
    let wants = tree.path().join("multi-user.target.wants/web.service");
    let (ok, out) = systemctl(&["is-enabled", "web.service"]);
    assert!(!ok && out == "disabled\n", "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["enable", "web.service"]);
    assert!(
        ok && out.contains(
            "Created symlink /etc/systemd/system/multi-user.target.wants/web.service \
             → /etc/systemd/system/web.service."
        ),
        "{out}\n{}",
        flint.log()
    );
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        Path::new("/etc/systemd/system/web.service")
    );
    let (ok, out) = systemctl(&["is-enabled", "web.service"]);
    assert!(ok && out == "enabled\n", "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["list-unit-files", "--no-legend", "web*", "plain*"]);
    assert!(ok, "{out}\n{}", flint.log());
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().any(|r| r[..2] == ["web.service", "enabled"]),
        "{out}"
    );
    assert!(
        rows.iter().any(|r| r[..2] == ["plain.service", "static"]),
        "{out}"
    );
    // A unit without [Install]: told so, nothing changed.
    let (ok, out) = systemctl(&["enable", "plain.service"]);
    assert!(ok && out.contains("have no installation config"), "{out}");
    // A unit that is nowhere: systemd's error of the call.
    let (ok, out) = systemctl(&["enable", "nope.service"]);
    assert!(
        !ok && out.contains("Failed to enable unit: Unit file nope.service does not exist."),
        "{out}"
    );
    let (ok, out) = systemctl(&["disable", "web.service"]);
    assert!(
        ok && out.contains("Removed \"/etc/systemd/system/multi-user.target.wants/web.service\"."),
        "{out}\n{}",
        flint.log()
    );
    assert!(wants.symlink_metadata().is_err());
    // enable --now: the links, flint's daemon-reload, then the start.
    let (ok, out) = systemctl(&["enable", "--now", "web.service"]);
    assert!(ok, "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["is-active", "web.service"]);
    assert!(ok && out == "active\n", "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["show", "-p", "UnitFileState", "web.service"]);
    assert!(ok && out == "UnitFileState=enabled\n", "{out}");
    let (ok, out) = systemctl(&["set-default", "custom.target"]);
    assert!(
        ok && out.contains("/etc/systemd/system/default.target"),
        "{out}"
    );
    let (ok, out) = systemctl(&["get-default"]);
    assert!(ok && out == "custom.target\n", "{out}\n{}", flint.log());
    // A unit that is down shows no tasks or memory, also where its cgroup
    // is made ahead of its socket's next start.
    tree.write("sock.socket", "[Socket]\nListenStream=/run/sock.sock\n");
    tree.write(
        "sock.service",
        "[Service]\nExecStart=/usr/bin/python3 -c 'import socket; \
         socket.socket(fileno=3).accept()[0].close()'\n",
    );
    let (ok, out) = systemctl(&["start", "sock.socket"]);
    assert!(ok, "{out}\n{}", flint.log());
    let (ok, out) = inside(
        &flint,
        &["-m"],
        "python3",
        &[
            "-c",
            "import socket; socket.socket(socket.AF_UNIX).connect('/run/sock.sock')",
        ],
    );
    assert!(ok, "{out}");
    // It took the connection and ended.
    assert!(
        wait_for(Duration::from_secs(10), || {
            (systemctl(&["show", "-p", "SubState", "sock.service"]).1 == "SubState=dead\n")
                .then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    let (_, out) = systemctl(&["show", "-p", "TasksCurrent,MemoryCurrent", "sock.service"]);
    assert_eq!(
        out,
        "MemoryCurrent=[not set]\nTasksCurrent=[not set]\n",
        "{}",
        flint.log()
    );
    // `systemctl status PID` (GetUnitByPID) finds the unit of a process.
    let (ok, out) = systemctl(&["show", "-p", "MainPID", "--value", "keep.service"]);
    assert!(ok, "{out}");
    let main = out.trim().to_string();
    let (_, out) = systemctl(&["status", "--no-pager", &main]);
    assert!(out.contains("keep.service"), "{out}\n{}", flint.log());
    // Where flint has cgroups, status draws the unit's processes under
    // its "CGroup:" line (`ControlGroup=`, `GetUnitProcesses`).
    let (_, group) = systemctl(&["show", "-p", "ControlGroup", "--value", "keep.service"]);
    if group.trim().is_empty() {
        eprintln!("(no cgroups for flint here: no CGroup: line to check)");
    } else {
        let (_, out) = systemctl(&["status", "--no-pager", "keep.service"]);
        assert!(
            out.contains(&format!("CGroup: {}\n", group.trim()))
                && out.contains(&format!("└─{main} /bin/sleep 1000")),
            "{out}\n{}",
            flint.log()
        );
        // Without a unit: the machine's processes (the root slice's),
        // flint's units' among them.
        let (_, out) = systemctl(&["status", "--no-pager"]);
        assert!(
            !out.contains("Failed to dump process list")
                && out.contains(&format!("{main} /bin/sleep 1000")),
            "{out}\n{}",
            flint.log()
        );
    }
    let (ok, out) = systemctl(&["status", "--no-pager", "1"]);
    assert!(
        !ok && out.contains("does not belong to any loaded unit"),
        "{out}"
    );
    // The environment calls change the system manager's block, which
    // services get (not flint's own process environment).
    let (ok, out) = systemctl(&["set-environment", "FROM_SYSTEMCTL=yes"]);
    assert!(ok, "{out}\n{}", flint.log());
    let (ok, out) = systemctl(&["show-environment"]);
    assert!(
        ok && out.contains("FROM_SYSTEMCTL=yes\n") && !out.contains("FLINT_LOG="),
        "{out}\n{}",
        flint.log()
    );
    // Debian's systemd-run sends its transient unit the same way
    // (StartTransientUnit): the service runs with what it was given.
    let (ok, out) = systemd_tool(
        &flint,
        "systemd-run",
        &[
            "--unit=hello",
            "-E",
            "FOO=bar baz",
            "-p",
            "Nice=7",
            "/bin/sh",
            "-c",
            "echo \"$FOO $(cut -d' ' -f19 /proc/self/stat) $FROM_SYSTEMCTL\" > /run/hello.out",
        ],
    );
    assert!(
        ok && out.contains("Running as unit: hello.service"),
        "{out}\n{}",
        flint.log()
    );
    let written = wait_for(Duration::from_secs(10), || {
        let (ok, text) = inside(&flint, &["-m"], "cat", &["/run/hello.out"]);
        ok.then_some(text)
    });
    assert_eq!(
        written.as_deref(),
        Some("bar baz 7 yes\n"),
        "{}",
        flint.log()
    );
    // Ended, it is collected (its file goes): told as transient, with no
    // call for a daemon-reload.
    assert!(
        wait_for(Duration::from_secs(10), || {
            (systemctl(&["show", "-p", "SubState", "hello.service"]).1 == "SubState=dead\n")
                .then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    let (_, status) = systemctl(&["status", "--no-pager", "hello.service"]);
    assert!(
        status.contains("Transient: yes") && !status.contains("changed on disk"),
        "{status}\n{}",
        flint.log()
    );
    // A timer with its service; what flint cannot run is refused with
    // the reason.
    let (ok, out) = systemd_tool(
        &flint,
        "systemd-run",
        &["--on-active=1h", "--unit=later", "/bin/true"],
    );
    assert!(
        ok && out.contains("Running timer as unit: later.timer"),
        "{out}"
    );
    let (ok, out) = systemctl(&["is-active", "later.timer"]);
    assert!(ok && out == "active\n", "{out}\n{}", flint.log());
    let (ok, out) = systemd_tool(&flint, "systemd-run", &["--scope", "/bin/true"]);
    assert!(!ok && out.contains("not scope units"), "{out}");
}

/// As a container's init (PID 1, `/run/systemd/system` present), Debian's
/// `systemctl poweroff` (a start of `poweroff.target` over the private
/// socket, logind being absent) stops flint's units in order and ends
/// flint; `--force` (the manager's `PowerOff`) ends it without the stops.
#[test]
fn debians_systemctl_poweroff_ends_a_flint_that_is_a_containers_init() {
    if !common::require("systemctl", "systemd: the client of the private socket")
        || !common::require("nsenter", "util-linux: joins flint's namespace")
        || !common::require("unshare", "util-linux: a PID namespace whose init flint is")
    {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a PID namespace with its own /run needs root");
        return;
    }
    for force in [false, true] {
        let tree = Tree::new();
        let stops = tree.path().join("stops");
        tree.write(
            "a.service",
            &format!(
                "[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sh -c 'echo stopped >> {}; kill $MAINPID'\n",
                stops.display()
            ),
        );
        let mut flint = flint_in_namespaces(
            &tree,
            &["--pid", "--fork", "--mount", "--mount-proc"],
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system",
            &["a.service"],
        );
        let args: &[&str] = if force {
            &["--force", "poweroff"]
        } else {
            &["poweroff"]
        };
        let (ok, out) = systemd_tool(&flint, "systemctl", args);
        let Some(status) = flint.wait_end() else {
            panic!(
                "flint did not end: systemctl {args:?}: {ok} {out}\n{}",
                flint.log()
            );
        };
        assert_eq!(status.code(), Some(0), "{out}\n{}", flint.log());
        // (Without a bus it says "Failed to connect to bus" first, as
        // against systemd in such a container, then takes the private
        // socket.)
        assert!(ok, "systemctl {args:?}: {out}\n{}", flint.log());
        let stopped = std::fs::read_to_string(&stops).unwrap_or_default();
        assert_eq!(
            stopped,
            if force { "" } else { "stopped\n" },
            "force {force}: {}",
            flint.log()
        );
    }
}

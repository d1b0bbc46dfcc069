//! The sandbox settings that take namespaces, under `flint run`, beyond
//! what systemd's own test-execute units check (`tests/execute.rs`): which
//! paths `ProtectSystem=` leaves writable, a private `/tmp` shared by the
//! commands of one run and gone when it ends, a host mount that stays
//! read-only below a writable path, a service without network serving on
//! the socket flint passes it, `ProtectHome=`, `InaccessiblePaths=`,
//! `ProtectHostname=`, what `DynamicUser=` implies, a missing path
//! failing the start with 226/NAMESPACE, and `RemoveIPC=`. They need root.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Flint, Tree, free_port, unit_output as output, wait_for};

fn ready(why: &str) -> bool {
    common::require_root(why)
}

/// A tree whose directories every user may traverse (the tests' services
/// read their scripts and probe paths below it).
fn open_tree() -> Tree {
    let tree = Tree::new();
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tree
}

/// Runs the oneshot `unit` to its end and returns flint's log.
fn run_to_end(tree: &Tree, unit: &str) -> String {
    common::run_unit_to_end(common::flint_run(tree.path(), &[unit]), unit)
}

/// A probe that prints `W PATH` or `R PATH` for each path (`test -w`, which
/// sees a read-only mount).
fn writable_probe(paths: &[&str]) -> String {
    format!(
        "/bin/sh -c 'for p in {}; do if test -w \"$$p\"; then echo \"W $$p\"; else echo \"R $$p\"; fi; done'",
        paths.join(" ")
    )
}

#[test]
fn protect_system_strict_leaves_writable_only_the_listed_paths_and_the_units_directories() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let rw = tree.path().join("rw");
    std::fs::create_dir(&rw).unwrap();
    let state = format!("flint-sandbox-{}", std::process::id());
    let t = tree.path().display();
    let probe = writable_probe(&[
        "/usr",
        "/etc",
        "/var",
        "/run",
        "/tmp",
        &t.to_string(),
        &format!("{t}/rw"),
        &format!("/var/lib/{state}"),
        &format!("/run/{state}"),
        "/dev/shm",
        "/proc/sys/kernel/domainname",
    ]);
    tree.write(
        "strict.service",
        &format!(
            "[Service]\nType=oneshot\nProtectSystem=strict\nReadWritePaths={t}/rw\nStateDirectory={state}\nRuntimeDirectory={state}\nExecStart={probe}\n"
        ),
    );
    let log = run_to_end(&tree, "strict.service");
    let got = output(&log, "strict.service");
    let want: Vec<String> = [
        ("R", "/usr".to_string()),
        ("R", "/etc".into()),
        ("R", "/var".into()),
        ("R", "/run".into()),
        ("R", "/tmp".into()),
        ("R", t.to_string()),
        ("W", format!("{t}/rw")),
        ("W", format!("/var/lib/{state}")),
        ("W", format!("/run/{state}")),
        ("W", "/dev/shm".into()),
        ("W", "/proc/sys/kernel/domainname".into()),
    ]
    .iter()
    .map(|(m, p)| format!("{m} {p}"))
    .collect();
    assert_eq!(got, want, "{log}");
    let _ = std::fs::remove_dir_all(format!("/var/lib/{state}"));

    // full: /usr and /etc; yes: /usr only.
    for (level, etc) in [("full", "R"), ("yes", "W")] {
        let name = format!("{level}.service");
        tree.write(
            &name,
            &format!(
                "[Service]\nType=oneshot\nProtectSystem={level}\nExecStart={}\n",
                writable_probe(&["/usr", "/etc", "/var"])
            ),
        );
        let log = run_to_end(&tree, &name);
        assert_eq!(
            output(&log, &name),
            ["R /usr".to_string(), format!("{etc} /etc"), "W /var".into()],
            "{log}"
        );
    }
}

#[test]
fn a_private_tmp_is_shared_by_the_commands_of_a_run_and_removed_when_it_ends() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let unit = format!("privtmp-{}.service", std::process::id());
    std::fs::write("/tmp/flint-host-visible", "").unwrap();
    tree.write(
        &unit,
"[Service]\nType=oneshot\nPrivateTmp=yes\n\
             ExecStartPre=/bin/sh -c 'echo from-pre > /tmp/marker; echo var > /var/tmp/marker'\n\
             ExecStart=/bin/sh -c 'cat /tmp/marker /var/tmp/marker; stat -c %%a /tmp; test -e /tmp/flint-host-visible && echo host-tmp-seen || echo host-tmp-hidden; sleep 3'\n"
    );
    let mut flint = Flint::run_until(&tree, &[&unit], "job start");
    // The tree is in the host's /tmp, which the service does not see: it
    // tells through its output that it got this far.
    assert!(flint.wait_log("host-tmp-"), "{}", flint.log());
    // While it runs: systemd's names, the service's files inside.
    let private = |base: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(base)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("systemd-private-") && n.contains(&unit))
            })
            .collect()
    };
    let dirs = private("/tmp");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("tmp/marker")).unwrap(),
        "from-pre\n"
    );
    assert_eq!(private("/var/tmp").len(), 1);
    assert!(flint.wait_log(&format!("{unit}: Deactivated successfully")));
    let log = flint.log();
    assert_eq!(
        output(&log, &unit),
        ["from-pre", "var", "1777", "host-tmp-hidden"],
        "{log}"
    );
    // Removed in the background once the run is over.
    let gone = wait_for(Duration::from_secs(10), || {
        (private("/tmp").is_empty() && private("/var/tmp").is_empty()).then_some(())
    });
    assert!(gone.is_some(), "{:?}", private("/tmp"));
    flint.stop();
    let _ = std::fs::remove_file("/tmp/flint-host-visible");
}

#[test]
fn a_read_only_host_mount_below_a_writable_path_stays_read_only() {
    if !ready("mount namespaces")
        || !common::require(
            "unshare",
            "util-linux: a mount namespace for the test's own mounts",
        )
    {
        return;
    }
    let tree = open_tree();
    let rw = tree.path().join("rw");
    std::fs::create_dir_all(rw.join("ro")).unwrap();
    let r = rw.display();
    tree.write(
        "nested.service",
        &format!(
            "[Service]\nType=oneshot\nProtectSystem=strict\nReadWritePaths={r}\nExecStart={}\n",
            writable_probe(&[&r.to_string(), &format!("{r}/ro"), "/usr"])
        ),
    );
    // The read-only tmpfs exists only in the namespace flint runs in.
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o ro tmpfs {r}/ro && exec {} run --unit-dir {} nested.service",
            common::flint_bin().display(),
            tree.path().display()
        ));
    let mut flint = Flint::run_command_until(cmd, "job start");
    assert!(
        flint.wait_log("nested.service: Deactivated successfully"),
        "{}",
        flint.log()
    );
    let log = flint.log();
    assert_eq!(
        output(&log, "nested.service"),
        [format!("W {r}"), format!("R {r}/ro"), "R /usr".into()],
        "{log}"
    );
    flint.stop();
}

#[test]
fn a_service_without_network_serves_on_the_socket_flint_passes_it() {
    if !ready("network namespaces") || !common::require("python3", "the service") {
        return;
    }
    let tree = open_tree();
    let port = free_port();
    tree.write(
        "isolated.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\n"),
    );
    tree.write(
        "isolated.service",
        "[Service]\nPrivateNetwork=yes\nExecStart=/usr/bin/python3 -c 'import os, socket; \
         s = socket.socket(fileno=3); c, _ = s.accept(); \
         names = \" \".join(n for _, n in socket.if_nameindex()); \
         c.sendall((os.readlink(\"/proc/self/ns/net\") + \" \" + names + chr(10)).encode()); \
         c.close()'\n",
    );
    let flint = Flint::run(&tree, &["isolated.socket"]);
    let mut s = common::connect(port);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut words = answer.split_whitespace();
    let ns = words.next().unwrap_or_default();
    assert!(ns.starts_with("net:["), "{answer}\n{}", flint.log());
    assert_ne!(Path::new(ns), host_ns, "{answer}");
    assert_eq!(words.collect::<Vec<_>>(), ["lo"], "{answer}");
}

#[test]
fn the_commands_of_a_run_share_its_network_and_ipc_namespaces() {
    if !ready("network namespaces")
        || !common::require("python3", "the service")
        || !common::require("ipcmk", "making a message queue")
    {
        return;
    }
    let tree = open_tree();
    let port = free_port();
    // ExecStartPre= makes a message queue, ExecStart= sees it and serves on
    // the run's loopback, ExecStop= reaches it there, as under systemd.
    tree.write(
        "shared.service",
        &format!(
            "[Service]\nPrivateNetwork=yes\nPrivateIPC=yes\n\
             ExecStartPre=/bin/sh -c 'readlink /proc/self/ns/net /proc/self/ns/ipc; ipcmk -Q >/dev/null'\n\
             ExecStart=/usr/bin/python3 -c 'import os, socket; \
             print(os.readlink(\"/proc/self/ns/net\"), os.readlink(\"/proc/self/ns/ipc\")); \
             print(\"queues\", len(open(\"/proc/sysvipc/msg\").readlines()) - 1, flush=True); \
             s = socket.create_server((\"127.0.0.1\", {port})); c, _ = s.accept(); c.sendall(b\"from-main\" + bytes([10])); c.close(); \
             import time; time.sleep(30)'\n\
             ExecStop=/usr/bin/python3 -c 'import os, socket; \
             print(os.readlink(\"/proc/self/ns/net\"), os.readlink(\"/proc/self/ns/ipc\")); \
             print(socket.create_connection((\"127.0.0.1\", {port}), timeout=5).makefile().readline().strip(), flush=True)'\n\
             ExecStopPost=+/bin/sh -c 'echo $(readlink /proc/self/ns/net /proc/self/ns/ipc)'\n"
        ),
    );
    let mut flint = Flint::run_until(&tree, &["shared.service"], "job start");
    assert!(flint.wait_log("queues"), "{}", flint.log());
    flint.stop();
    let log = flint.log();
    let out = output(&log, "shared.service");
    assert_eq!(out.len(), 7, "{log}");
    // ExecStartPre='s two lines (one per link), then the others' one.
    let namespaces = format!("{} {}", out[0], out[1]);
    assert!(
        out[0].starts_with("net:[") && out[1].starts_with("ipc:["),
        "{log}"
    );
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(Path::new(&out[0]), host_net, "{log}");
    assert_eq!(out[2], namespaces, "ExecStart= elsewhere: {log}");
    assert_eq!(out[3], "queues 1", "{log}");
    assert_eq!(out[4], namespaces, "ExecStop= elsewhere: {log}");
    assert_eq!(out[5], "from-main", "{log}");
    // A `+` command runs without the sandbox but in the run's namespaces.
    assert_eq!(out[6], namespaces, "ExecStopPost=+ elsewhere: {log}");
}

#[test]
fn protect_home_and_inaccessible_paths_hide_what_they_name() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let secret = tree.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let s = secret.display();
    tree.write(
        "hidden.service",
        &format!(
            "[Service]\nType=oneshot\nProtectHome=yes\nInaccessiblePaths={s}\n\
             ExecStart=/bin/sh -c 'stat -c \"%%a %%F\" /root {s}; cat {s}; echo end'\n"
        ),
    );
    let log = run_to_end(&tree, "hidden.service");
    assert_eq!(
        output(&log, "hidden.service"),
        ["0 directory", "0 regular empty file", "end"],
        "{log}"
    );
    tree.write(
        "home-ro.service",
        &format!(
            "[Service]\nType=oneshot\nProtectHome=read-only\nExecStart={}\n",
            writable_probe(&["/root"])
        ),
    );
    let log = run_to_end(&tree, "home-ro.service");
    assert_eq!(output(&log, "home-ro.service"), ["R /root"], "{log}");
}

#[test]
fn protect_hostname_keeps_the_hosts_name_from_the_service() {
    if !ready("UTS namespaces") || !common::require("hostname", "the service") {
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let tree = open_tree();
    // A UTS namespace of its own, and sethostname() refused (EPERM), as
    // systemd does both.
    tree.write(
        "uts.service",
        "[Service]\nType=oneshot\nProtectHostname=yes\nExecStart=/bin/sh -c 'hostname flint-uts-test 2>/dev/null && echo changed || echo refused; readlink /proc/self/ns/uts'\n",
    );
    let log = run_to_end(&tree, "uts.service");
    let out = output(&log, "uts.service");
    assert_eq!(out.first().map(String::as_str), Some("refused"), "{log}");
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_ne!(out.get(1).map(Path::new), Some(host_uts.as_path()), "{log}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
}

/// A probe of what the seccomp settings refuse: each line is a name and
/// `ok` or the errno's name.
const SECCOMP_PROBE: &str = r#"import ctypes, errno, mmap, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        f()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def c(name, r):
    print(name, "ok" if r != -1 else errno.errorcode.get(ctypes.get_errno()))
t("inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
t("unix", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
t("wx-mmap", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC))
t("rw-mmap", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_READ))
t("fifo", lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)))
t("suid", lambda: os.chmod(sys.argv[1], 0o4755))
c("personality-query", libc.personality(0xffffffff))
c("personality-linux32", libc.personality(0x0008))
c("adjtimex-query", libc.adjtimex(ctypes.create_string_buffer(512)))
status = open("/proc/self/status").read().split("\n")
print(" ".join(l.replace(":\t", "=") for l in status if l.startswith(("NoNewPrivs", "Seccomp:"))))
"#;

#[test]
fn the_seccomp_settings_refuse_what_they_name_and_nothing_else() {
    if !ready("switching users and changing the scheduler")
        || !common::require("python3", "the probe")
    {
        return;
    }
    let tree = open_tree();
    let probe = tree.write("probe.py", SECCOMP_PROBE);
    let target = tree.write("target", "");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
    let settings = "RestrictAddressFamilies=AF_UNIX AF_INET\nMemoryDenyWriteExecute=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\nProtectClock=yes\n";
    let exec = format!(
        "ExecStart=/usr/bin/python3 {} {}\n",
        probe.display(),
        target.display()
    );
    tree.write("plain.service", &format!("[Service]\nType=oneshot\n{exec}"));
    tree.write(
        "filtered.service",
        &format!("[Service]\nType=oneshot\n{settings}{exec}"),
    );
    tree.write(
        "filtered-user.service",
        &format!("[Service]\nType=oneshot\nUser=nobody\n{settings}{exec}"),
    );
    // Without the settings, root may do all of it.
    let log = run_to_end(&tree, "plain.service");
    assert_eq!(
        output(&log, "plain.service"),
        [
            "inet6 ok",
            "unix ok",
            "wx-mmap ok",
            "rw-mmap ok",
            "fifo ok",
            "suid ok",
            "personality-query ok",
            "personality-linux32 ok",
            "adjtimex-query ok",
            "NoNewPrivs=0 Seccomp=0",
        ],
        "{log}"
    );
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
    let log = run_to_end(&tree, "filtered.service");
    assert_eq!(
        output(&log, "filtered.service"),
        [
            "inet6 EAFNOSUPPORT",
            "unix ok",
            "wx-mmap EPERM",
            "rw-mmap ok",
            "fifo EPERM",
            "suid EPERM",
            "personality-query ok",
            "personality-linux32 EPERM",
            "adjtimex-query EPERM",
            // Root keeps CAP_SYS_ADMIN: no no-new-privileges implied.
            "NoNewPrivs=0 Seccomp=2",
        ],
        "{log}"
    );
    // Another user: the filters imply no-new-privileges; the user may not
    // chmod the root's file nor change the scheduler anyway, so those two
    // are EPERM either way.
    let log = run_to_end(&tree, "filtered-user.service");
    let out = output(&log, "filtered-user.service");
    assert_eq!(
        out.first().map(String::as_str),
        Some("inet6 EAFNOSUPPORT"),
        "{log}"
    );
    assert!(out.contains(&"wx-mmap EPERM".to_string()), "{log}");
    assert_eq!(
        out.last().map(String::as_str),
        Some("NoNewPrivs=1 Seccomp=2"),
        "{log}"
    );
}

/// Ways around a filter that it must close: a `setns()` into several kinds
/// at once through a pidfd, `openat2()` (whose flags and mode a filter
/// cannot read), and the x32 ABI's numbers for the same calls.
const SECCOMP_EVASION_PROBE: &str = r#"import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def c(name, r):
    print(name, "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno()), flush=True)
pid = os.pidfd_open(os.getpid())
c("setns-net-uts", libc.setns(pid, 0x40000000 | 0x04000000))
c("setns-uts", libc.setns(pid, 0x04000000))
how = (ctypes.c_uint64 * 3)(os.O_RDONLY, 0, 0)
c("openat2", libc.syscall(437, -100, b"/etc/hostname", ctypes.byref(how), 24))
c("minus-one", libc.syscall(-1))
print("x32", flush=True)
c("x32-getpid", libc.syscall(0x40000000 | 39))
"#;

#[test]
fn seccomp_filters_close_combined_flags_openat2_and_other_abis() {
    if !ready("joining namespaces") || !common::require("python3", "the probe") {
        return;
    }
    let tree = open_tree();
    let probe = tree.write("probe.py", SECCOMP_EVASION_PROBE);
    let exec = format!("ExecStart=/usr/bin/python3 {}\n", probe.display());
    tree.write("plain.service", &format!("[Service]\nType=oneshot\n{exec}"));
    tree.write(
        "filtered.service",
        &format!("[Service]\nType=oneshot\nRestrictNamespaces=uts\nRestrictSUIDSGID=yes\n{exec}"),
    );
    let log = run_to_end(&tree, "plain.service");
    let plain = output(&log, "plain.service");
    assert_eq!(
        plain[..5],
        [
            "setns-net-uts ok",
            "setns-uts ok",
            "openat2 ok",
            "minus-one ENOSYS",
            "x32"
        ],
        "{log}"
    );
    let log = run_to_end(&tree, "filtered.service");
    let out = output(&log, "filtered.service");
    // The uts namespace alone may be joined; with net beside it, not.
    // openat2() is refused. An x32 call, which no rule written with x86-64
    // numbers would match, ends the process (SIGSYS) as a call of another
    // architecture does.
    assert_eq!(
        out,
        [
            "setns-net-uts EPERM",
            "setns-uts ok",
            "openat2 EPERM",
            // -1 (what a tracer skipping a call leaves) is no other ABI's.
            "minus-one ENOSYS",
            "x32"
        ],
        "{log}"
    );
    if cfg!(target_arch = "x86_64") {
        assert!(log.contains("killed by signal 31"), "{log}");
    }
}

#[test]
fn dynamic_user_implies_a_read_only_system_and_a_private_tmp() {
    if !ready("switching to a dynamic user") {
        return;
    }
    let tree = open_tree();
    let open = tree.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write("/tmp/flint-dynamic-host-visible", "").unwrap();
    let state = format!("flint-dynamic-{}", std::process::id());
    tree.write(
        "dyn.service",
        &format!(
            "[Service]\nType=oneshot\nDynamicUser=yes\nStateDirectory={state}\n\
             ProtectSystem=full\n\
             ExecStart={}\n\
             ExecStart=/bin/sh -c 'test -e /tmp/flint-dynamic-host-visible && echo host-tmp-seen || echo host-tmp-hidden'\n\
             ExecStart=/bin/sh -c 'grep ^NoNewPrivs: /proc/self/status | tr -d \"\\t\"; touch /var/lib/{state}/f; chmod 4755 /var/lib/{state}/f 2>/dev/null && echo suid-made || echo suid-refused'\n",
            writable_probe(&[&open.display().to_string(), "/tmp", &format!("/var/lib/{state}")])
        ),
    );
    let log = run_to_end(&tree, "dyn.service");
    // ProtectSystem=full is made strict; no-new-privileges and
    // RestrictSUIDSGID= come with the dynamic user.
    assert_eq!(
        output(&log, "dyn.service"),
        [
            format!("R {}", open.display()),
            "W /tmp".into(),
            format!("W /var/lib/{state}"),
            "host-tmp-hidden".into(),
            "NoNewPrivs:1".into(),
            "suid-refused".into(),
        ],
        "{log}"
    );
    let _ = std::fs::remove_file(format!("/var/lib/{state}"));
    let _ = std::fs::remove_dir_all(format!("/var/lib/private/{state}"));
    let _ = std::fs::remove_file("/tmp/flint-dynamic-host-visible");
}

/// A dynamic user's `StateDirectory=` lives below the host's 0700
/// `/var/lib/private`, its usual path a link there, so that no user who
/// gets the uid later can reach it; in the service's namespace
/// `/var/lib/private` holds its own directories only. A public directory
/// of an earlier run without `DynamicUser=` is moved there (systemd's
/// `setup_exec_directory()`).
#[test]
fn a_dynamic_users_state_is_below_private_and_only_its_own_is_seen() {
    if !ready("switching to a dynamic user") {
        return;
    }
    let tree = open_tree();
    let name = format!("flint-dynpriv-{}", std::process::id());
    let other = format!("/var/lib/private/flint-other-{}", std::process::id());
    std::fs::create_dir_all(&other).unwrap();
    std::fs::create_dir_all(format!("/var/lib/{name}/old")).unwrap();
    std::fs::write(format!("/var/lib/{name}/old/kept"), "kept\n").unwrap();
    tree.write(
        "dyn.service",
        &format!(
            "[Service]\nType=oneshot\nDynamicUser=yes\nStateDirectory={name}/old\n\
             ExecStart=/bin/sh -c 'cat $$STATE_DIRECTORY/kept; echo new > $$STATE_DIRECTORY/new; ls /var/lib/private'\n"
        ),
    );
    let log = run_to_end(&tree, "dyn.service");
    let link = std::fs::read_link(format!("/var/lib/{name}/old"));
    let written = std::fs::read_to_string(format!("/var/lib/private/{name}/old/new"));
    // Without DynamicUser= again, the directory moves back, and is the
    // new user's, files and all.
    tree.write(
        "plain.service",
        &format!(
            "[Service]\nType=oneshot\nUser=nobody\nStateDirectory={name}/old\n\
             ExecStart=/bin/sh -c 'cat $$STATE_DIRECTORY/new && echo more >> $$STATE_DIRECTORY/new'\n"
        ),
    );
    let plain_log = run_to_end(&tree, "plain.service");
    let back = std::fs::symlink_metadata(format!("/var/lib/{name}/old")).map(|m| m.is_dir());
    let again = std::fs::read_to_string(format!("/var/lib/{name}/old/new"));
    let cleanup = || {
        let _ = std::fs::remove_dir_all(format!("/var/lib/{name}"));
        let _ = std::fs::remove_dir_all(format!("/var/lib/private/{name}"));
        let _ = std::fs::remove_dir_all(&other);
    };
    let seen = output(&log, "dyn.service");
    let private = std::fs::metadata("/var/lib/private").map(|m| m.permissions().mode() & 0o7777);
    cleanup();
    assert_eq!(output(&plain_log, "plain.service"), ["new"], "{plain_log}");
    assert_eq!(back.ok(), Some(true), "{plain_log}");
    assert_eq!(seen, ["kept".to_string(), name.clone()], "{log}");
    assert_eq!(private.ok(), Some(0o700));
    assert_eq!(
        link.ok().as_deref(),
        Some(Path::new(&format!("../private/{name}/old")))
    );
    assert_eq!(written.ok().as_deref(), Some("new\n"));
    assert_eq!(again.ok().as_deref(), Some("new\nmore\n"), "{plain_log}");
}

/// A link where a unit's directory should be fails the start, as under
/// systemd: root never changes the mode or owner of what it names.
#[test]
fn a_link_in_place_of_a_units_directory_fails_its_start() {
    if !ready("directories below /var/lib") {
        return;
    }
    let tree = open_tree();
    let target = tree.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = format!("flint-link-{}", std::process::id());
    std::os::unix::fs::symlink(&target, format!("/var/lib/{name}")).unwrap();
    tree.write(
        "l.service",
        &format!(
            "[Service]\nType=oneshot\nUser=nobody\nStateDirectory={name}\nExecStart=/bin/true\n"
        ),
    );
    let log = run_to_end(&tree, "l.service");
    let meta = std::fs::metadata(&target).unwrap();
    let _ = std::fs::remove_file(format!("/var/lib/{name}"));
    assert!(log.contains("l.service: Failed with result"), "{log}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700), "{log}");
}

#[test]
fn a_missing_path_fails_the_start_with_namespace_and_a_dash_lets_it_go() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    tree.write(
        "missing.service",
        "[Service]\nType=oneshot\nReadOnlyPaths=/nonexistent-flint-path\nExecStart=/bin/true\n",
    );
    let log = run_to_end(&tree, "missing.service");
    assert!(log.contains("226"), "{log}");
    // The error names the mount step that failed, as systemd names the path.
    assert!(
        log.lines()
            .any(|l| l.contains("failed to start") && l.contains("/nonexistent-flint-path")),
        "{log}"
    );
    assert!(log.contains("missing.service: Failed with result"), "{log}");
    tree.write(
        "optional.service",
        "[Service]\nType=oneshot\nReadOnlyPaths=-/nonexistent-flint-path\nExecStart=/bin/true\n",
    );
    let log = run_to_end(&tree, "optional.service");
    assert!(
        log.contains("optional.service: Deactivated successfully"),
        "{log}"
    );
}

#[test]
fn accept_yes_instances_each_get_a_private_tmp_that_goes_with_them() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let port = free_port();
    let name = format!("ptmp{}", std::process::id());
    tree.write(
        &format!("{name}.socket"),
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        &format!("{name}@.service"),
        "[Service]\nStandardInput=socket\nPrivateTmp=yes\nExecStart=/bin/sh -c 'ls -A /tmp | wc -l; touch /tmp/mine'\n",
    );
    let flint = Flint::run(&tree, &[&format!("{name}.socket")]);
    for _ in 0..10 {
        let mut s = common::connect(port);
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer.trim(),
            "0",
            "each instance starts with an empty /tmp"
        );
    }
    let leftover = || {
        std::fs::read_dir("/tmp")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(&name))
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(10), || (leftover() == 0).then_some(())).is_some(),
        "{} private directories left\n{}",
        leftover(),
        flint.log()
    );
}

#[test]
fn a_socket_units_own_commands_run_in_its_sandbox() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let port = free_port();
    let marker = format!("/tmp/flint-socket-host-visible-{}", std::process::id());
    std::fs::write(&marker, "").unwrap();
    tree.write(
        "boxed.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{port}\nPrivateTmp=yes\nProtectSystem=strict\n\
             ExecStartPre=/bin/sh -c 'test -e {marker} && echo host-tmp-seen || echo host-tmp-hidden; {}'\n",
            writable_probe(&["/usr"]).trim_start_matches("/bin/sh -c '").trim_end_matches('\'')
        ),
    );
    tree.write("boxed.service", "[Service]\nExecStart=/bin/true\n");
    let flint = Flint::run(&tree, &["boxed.socket"]);
    let log = flint.log();
    assert_eq!(
        output(&log, "boxed.socket"),
        ["host-tmp-hidden", "R /usr"],
        "{log}"
    );
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn private_devices_leave_the_pseudo_devices_and_a_working_pty() {
    if !ready("mount namespaces") || !common::require("python3", "the pty check") {
        return;
    }
    let tree = open_tree();
    tree.write(
        "devs.service",
        "[Service]\nType=oneshot\nPrivateDevices=yes\n\
         ExecStart=/bin/sh -c 'echo $$(ls /dev); readlink /dev/char/1:3; echo hi > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c; test -w /dev/shm && echo shm-ok'\n\
         ExecStart=/usr/bin/python3 -c 'import os; m, s = os.openpty(); print(\"pty\", os.ttyname(s).startswith(\"/dev/pts/\"))'\n",
    );
    let log = run_to_end(&tree, "devs.service");
    let out = output(&log, "devs.service");
    assert_eq!(out.len(), 6, "{log}");
    let listed: Vec<&str> = out[0].split_whitespace().collect();
    // As systemd 252's `mount_private_dev()`: no /dev/net/tun, and the
    // `/dev/char/MAJ:MIN` links of the nodes it keeps.
    let allowed = [
        "char",
        "fd",
        "full",
        "hugepages",
        "log",
        "mqueue",
        "null",
        "ptmx",
        "pts",
        "random",
        "shm",
        "stderr",
        "stdin",
        "stdout",
        "tty",
        "urandom",
        "zero",
    ];
    for name in [
        "char", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
        "tty", "urandom", "zero",
    ] {
        assert!(listed.contains(&name), "/dev lacks {name}: {listed:?}");
    }
    for name in &listed {
        assert!(allowed.contains(name), "/dev has {name}: {listed:?}");
    }
    assert_eq!(
        out[1..],
        ["../null", "null-ok", "4", "shm-ok", "pty True"],
        "{log}"
    );
}

#[test]
fn private_devices_without_cap_mknod_mount_the_hosts_ptmx() {
    if !ready("mount namespaces")
        || !common::require("setpriv", "dropping CAP_MKNOD from flint")
        || !Path::new("/dev/ptmx").exists()
        || std::fs::symlink_metadata("/dev/ptmx").is_ok_and(|m| m.file_type().is_symlink())
    {
        return;
    }
    let tree = open_tree();
    tree.write(
        "ptmx.service",
        "[Service]\nType=oneshot\nPrivateDevices=yes\n\
         ExecStart=/bin/sh -c 'test -c /dev/ptmx && echo ptmx-char; grep -c \" /dev/ptmx \" /proc/self/mountinfo'\n",
    );
    // With CAP_MKNOD the node is made in the new /dev.
    let log = run_to_end(&tree, "ptmx.service");
    assert_eq!(output(&log, "ptmx.service"), ["ptmx-char", "0"], "{log}");
    // Without it (a user namespace, a container), the host's node is
    // mounted there instead, as systemd does; the start does not fail.
    let mut cmd = std::process::Command::new("setpriv");
    let flint_cmd = common::flint_run(tree.path(), &["ptmx.service"]);
    cmd.args(["--inh-caps=-mknod", "--bounding-set=-mknod", "--"])
        .arg(flint_cmd.get_program())
        .args(flint_cmd.get_args());
    let log = common::run_unit_to_end(cmd, "ptmx.service");
    assert_eq!(output(&log, "ptmx.service"), ["ptmx-char", "1"], "{log}");
}

#[test]
fn protect_proc_and_proc_subset_mount_a_proc_of_its_own() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    tree.write(
        "proc.service",
        "[Service]\nType=oneshot\nUser=nobody\nProtectProc=invisible\nProcSubset=pid\nProtectKernelTunables=yes\n\
         ExecStart=/bin/sh -c 'grep \" /proc \" /proc/self/mountinfo | grep -o \"hidepid=invisible,subset=pid\"; \
         test -e /proc/sys && echo sys || echo no-sys; ls /proc | grep -c \"^1$\"; test -e /proc/self/status && echo self'\n",
    );
    let log = run_to_end(&tree, "proc.service");
    // Another user's processes (pid 1's) are invisible, the kernel's files
    // gone with subset=pid; the service's own process is there.
    assert_eq!(
        output(&log, "proc.service"),
        ["hidepid=invisible,subset=pid", "no-sys", "0", "self"],
        "{log}"
    );
    // The host's /proc is as it was.
    assert!(Path::new("/proc/sys").exists());
}

#[test]
fn kernel_tunables_stay_read_only_where_procfs_cannot_be_mounted() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    tree.write(
        "tunables.service",
        "[Service]\nType=oneshot\nProcSubset=pid\nProtectKernelTunables=yes\n\
         ExecStart=/bin/sh -c 'test -e /proc/sys && echo sys || echo no-sys; \
         grep -c \" /proc/sys ro,\" /proc/self/mountinfo; grep -c \" /proc/irq ro,\" /proc/self/mountinfo'\n",
    );
    // In a user namespace of its own, without a pid namespace of its own,
    // flint may not mount a procfs (EPERM): the host's /proc stays, with
    // the kernel's files that subset=pid would have hidden, so
    // ProtectKernelTunables= makes them read-only there, as systemd does.
    let flint_cmd = common::flint_run(tree.path(), &["tunables.service"]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "--"])
        .arg(flint_cmd.get_program())
        .args(flint_cmd.get_args());
    let log = common::run_unit_to_end(cmd, "tunables.service");
    assert_eq!(output(&log, "tunables.service"), ["sys", "1", "1"], "{log}");
}

#[test]
fn a_covered_mount_is_not_taken_for_a_mount_point() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    tree.write(
        "cgroups.service",
        "[Service]\nType=oneshot\nProtectControlGroups=yes\nProtectKernelTunables=yes\n\
         ExecStart=/bin/sh -c 'grep -c \" /sys/fs/cgroup ro,\" /proc/self/mountinfo'\n",
    );
    // flint started where sysfs was mounted again over /sys, as `ip netns
    // exec` does for a network namespace: the cgroup mounts of the old sysfs
    // are still listed in mountinfo, but /sys/fs/cgroup is now a plain
    // directory of the new sysfs. ProtectControlGroups= makes that
    // directory read-only (a bind mount onto itself first) instead of
    // failing the start with EINVAL on a mount that is not there.
    let flint_cmd = common::flint_run(tree.path(), &["cgroups.service"]);
    let words: Vec<String> = std::iter::once(flint_cmd.get_program())
        .chain(flint_cmd.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap()))
        .collect();
    let script = format!("mount -t sysfs sysfs /sys && exec {}", words.join(" "));
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--net",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]);
    let log = common::run_unit_to_end(cmd, "cgroups.service");
    assert_eq!(output(&log, "cgroups.service"), ["1"], "{log}");
}

#[test]
fn a_root_directory_gets_the_api_file_systems() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    // An empty root with the host's /usr bound in (as NixOS's confinement
    // binds the store), and the usual links into it.
    let root = tree.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for (link, to) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        if Path::new("/").join(link).is_symlink() {
            std::os::unix::fs::symlink(to, root.join(link)).unwrap();
        }
    }
    if !root.join("bin").is_symlink() {
        eprintln!("SKIP: /bin is not a link into /usr here (a merged /usr is assumed)");
        return;
    }
    tree.write(
        "rooted.service",
        &format!(
            "[Service]\nType=oneshot\nRootDirectory={}\nBindReadOnlyPaths=/usr\n\
             ExecStart=/bin/sh -c 'test -r /proc/self/status && echo proc; test -c /dev/null && echo dev; \
             test -d /sys/kernel && echo sys; grep -c \" /run \" /proc/self/mountinfo; \
             echo x > /run/probe && echo run-writable'\n",
            root.display()
        ),
    );
    let log = run_to_end(&tree, "rooted.service");
    assert_eq!(
        output(&log, "rooted.service"),
        ["proc", "dev", "sys", "1", "run-writable"],
        "{log}"
    );
    // MountAPIVFS=no: the root as it is.
    tree.write(
        "bare.service",
        &format!(
            "[Service]\nType=oneshot\nRootDirectory={}\nMountAPIVFS=no\nBindReadOnlyPaths=/usr\n\
             ExecStart=/bin/sh -c 'test -r /proc/self/status && echo proc || echo no-proc'\n",
            root.display()
        ),
    );
    let log = run_to_end(&tree, "bare.service");
    assert_eq!(output(&log, "bare.service"), ["no-proc"], "{log}");
    // NixOS's confinement: an empty tmpfs as the root, with only what the
    // service needs bound in, its own /dev and the API file systems.
    let empty = tree.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    tree.write(
        "confined.service",
        &format!(
            "[Service]\nType=oneshot\nRootDirectory={}\nTemporaryFileSystem=/\nPrivateMounts=yes\n\
             MountAPIVFS=yes\nPrivateDevices=yes\nBindReadOnlyPaths=/usr /lib /lib64\n\
             ExecStart=/usr/bin/sh -c 'echo $(/usr/bin/ls /); test -c /dev/null && echo dev'\n",
            empty.display()
        ),
    );
    let log = run_to_end(&tree, "confined.service");
    assert_eq!(
        output(&log, "confined.service"),
        ["dev lib lib64 proc run sys usr", "dev"],
        "{log}"
    );
    // Nothing was made in the host's tree but the mount points.
    assert!(!root.join("run/probe").exists());
}

#[test]
fn what_a_service_with_private_mounts_mounts_stays_its_own() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let dir = Path::new("/run").join(format!("flint-private-mounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    tree.write(
        "mounter.service",
        &format!(
            "[Service]\nType=oneshot\nPrivateMounts=yes\nExecStart=/bin/sh -c 'mount -t tmpfs tmpfs {d} && grep -c \" {d} \" /proc/self/mountinfo'\n"
        ),
    );
    let log = run_to_end(&tree, "mounter.service");
    assert_eq!(output(&log, "mounter.service"), ["1"], "{log}");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(&format!(" {d} ")), "{host}");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn a_flint_without_privileges_loads_the_filters_and_skips_the_namespaces() {
    if !ready("runs flint as another user (nobody)")
        || !common::require("setpriv", "runs flint as another user")
        || !common::require("python3", "the probe")
    {
        return;
    }
    let tree = open_tree();
    let run = tree.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(65534), Some(65534)).unwrap();
    let probe = tree.write("probe.py", SECCOMP_PROBE);
    let target = tree.write("target", "");
    tree.write(
        "unprivileged.service",
        &format!(
            "[Service]\nType=oneshot\nRestrictAddressFamilies=AF_UNIX AF_INET\nPrivateTmp=yes\n\
             ExecStart=/usr/bin/python3 {} {}\n\
             ExecStart=/bin/sh -c 'test -e {} && echo host-tmp-seen || echo host-tmp-hidden'\n\
             ExecStart=/bin/sh -c 'echo oom=$$(cat /proc/self/oom_score_adj)'\n",
            probe.display(),
            target.display(),
            target.display()
        ),
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::flint_bin())
        .args(["run", "--user", "--control"])
        .arg(run.join("control"))
        .arg("--unit-dir")
        .arg(tree.path())
        .arg("unprivileged.service")
        .env("HOME", &run)
        .env("XDG_RUNTIME_DIR", &run);
    let mut flint = Flint::run_command_until(cmd, "job start");
    assert!(
        flint.wait_log("unprivileged.service: Deactivated successfully"),
        "{}",
        flint.log()
    );
    let log = flint.log();
    let out = output(&log, "unprivileged.service");
    // The filter is there, with no-new-privileges, which an unprivileged
    // process needs to load it; the private /tmp is not (the tree, under
    // the host's /tmp, stays visible).
    assert_eq!(
        out.first().map(String::as_str),
        Some("inet6 EAFNOSUPPORT"),
        "{log}"
    );
    assert!(out.contains(&"NoNewPrivs=1 Seccomp=2".to_string()), "{log}");
    assert!(out.contains(&"host-tmp-seen".to_string()), "{log}");
    // A manager that is not root runs its services at its own
    // oom_score_adj plus 100, as systemd's user manager.
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        out.last().map(String::as_str),
        Some(format!("oom={}", (own + 100).min(1000)).as_str()),
        "{log}"
    );
    flint.stop();
}

#[test]
fn a_service_under_a_usual_system_call_filter_runs_and_is_refused_the_privileged_calls() {
    if !ready("mount(2) as root") || !common::require("python3", "the service") {
        return;
    }
    let tree = open_tree();
    // What NixOS modules and hardened Debian units commonly set.
    tree.write(
        "filtered.service",
        "[Service]\nType=oneshot\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\n\
         SystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\n\
         ExecStart=/usr/bin/python3 -c 'import ctypes, errno, os, socket, tempfile; \
         libc = ctypes.CDLL(None, use_errno=True); \
         s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.close(); \
         f = tempfile.TemporaryFile(); f.write(b\"x\"); f.close(); \
         r = libc.mount(b\"none\", b\"/mnt\", b\"tmpfs\", 0, None); \
         print(\"mount\", errno.errorcode.get(ctypes.get_errno()) if r else \"ok\"); \
         print(\"uname\", os.uname().sysname)'\n",
    );
    let log = run_to_end(&tree, "filtered.service");
    assert_eq!(
        output(&log, "filtered.service"),
        ["mount EPERM", "uname Linux"],
        "{log}"
    );
}

#[test]
fn no_exec_paths_stop_programs_outside_the_exec_paths() {
    if !ready("mount namespaces") {
        return;
    }
    let tree = open_tree();
    let script = tree.write("script.sh", "#!/bin/sh\necho ran\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Everything noexec but /usr (where the shell and its libraries are).
    tree.write(
        "noexec.service",
        &format!(
            "[Service]\nType=oneshot\nNoExecPaths=/\nExecPaths=/usr\n\
             ExecStart=/usr/bin/sh -c '{} 2>/dev/null || echo refused; /usr/bin/true && echo usr-runs'\n",
            script.display()
        ),
    );
    let log = run_to_end(&tree, "noexec.service");
    assert_eq!(
        output(&log, "noexec.service"),
        ["refused", "usr-runs"],
        "{log}"
    );
}

/// The ids `ipcmk` printed (`Shared memory id: N` and so on), in order.
fn ipc_ids(lines: &[String]) -> Vec<(String, i32)> {
    lines
        .iter()
        .filter_map(|l| {
            let (what, id) = l.rsplit_once(" id: ")?;
            Some((what.to_string(), id.trim().parse().ok()?))
        })
        .collect()
}

/// Whether `/proc/sysvipc/FILE` lists the id (the second column).
fn sysv_listed(file: &str, id: i32) -> bool {
    std::fs::read_to_string(format!("/proc/sysvipc/{file}")).is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
    })
}

#[test]
fn remove_ipc_takes_the_users_ipc_objects_when_the_service_ends() {
    if !ready("creating IPC objects as another user") || !common::require("ipcmk", "util-linux") {
        return;
    }
    let tree = open_tree();
    let shm_file = format!("flint-removeipc-{}", std::process::id());
    let script = format!(
        "ipcmk -M 4096 && ipcmk -S 1 && ipcmk -Q && : > /dev/shm/{shm_file}.$1 && echo made"
    );
    for (unit, remove) in [("keeps.service", "no"), ("removes.service", "yes")] {
        tree.write(
            unit,
            &format!(
                "[Service]\nType=oneshot\nUser=nobody\nRemoveIPC={remove}\nExecStart=/bin/sh -c '{script}' sh {unit}\n"
            ),
        );
    }
    let kinds = [
        ("Shared memory", "shm"),
        ("Semaphore", "sem"),
        ("Message queue", "msg"),
    ];
    let listed = |ids: &[(String, i32)]| -> Vec<bool> {
        ids.iter()
            .map(|(what, id)| {
                let file = kinds
                    .iter()
                    .find(|(w, _)| what.ends_with(w))
                    .map_or("shm", |(_, f)| f);
                sysv_listed(file, *id)
            })
            .collect()
    };
    let run = |unit: &str| -> Vec<(String, i32)> {
        let log = run_to_end(&tree, unit);
        let out = output(&log, unit);
        assert!(out.iter().any(|l| l == "made"), "{log}");
        let ids = ipc_ids(&out);
        assert_eq!(ids.len(), 3, "{log}");
        ids
    };
    let file = |unit: &str| Path::new("/dev/shm").join(format!("{shm_file}.{unit}"));
    // RemoveIPC=yes: everything the user owns goes once the unit ended
    // (off flint's event loop, so a moment later).
    let ids = run("removes.service");
    let removed = wait_for(Duration::from_secs(5), || {
        (listed(&ids) == [false, false, false]).then_some(())
    });
    assert!(removed.is_some(), "RemoveIPC=yes left {ids:?}");
    assert!(
        !file("removes.service").exists(),
        "RemoveIPC=yes left /dev/shm/{shm_file}.removes.service"
    );
    // RemoveIPC=no: they stay.
    let ids = run("keeps.service");
    std::thread::sleep(Duration::from_millis(500));
    let kept = listed(&ids);
    let kept_file = file("keeps.service").exists();
    for (what, id) in &ids {
        let flag = match kinds.iter().find(|(w, _)| what.ends_with(w)) {
            Some((_, "sem")) => "-s",
            Some((_, "msg")) => "-q",
            _ => "-m",
        };
        let _ = Command::new("ipcrm").args([flag, &id.to_string()]).status();
    }
    let _ = std::fs::remove_file(file("keeps.service"));
    assert_eq!(kept, [true, true, true], "RemoveIPC=no removed {ids:?}");
    assert!(kept_file);
}

#[test]
fn private_users_maps_root_and_the_services_user_and_nothing_else() {
    if !ready("making a user namespace") || !common::require("python3", "the probe") {
        return;
    }
    let tree = open_tree();
    // A file of a user the namespace does not map: it shows as nobody.
    let stranger = tree.path().join("stranger");
    std::fs::write(&stranger, "x").unwrap();
    std::os::unix::fs::chown(&stranger, Some(4321), Some(4321)).unwrap();
    let probe = tree.write(
        "probe.py",
        &format!(
            r#"import os, socket
for f in ("uid_map", "gid_map"):
    for line in open("/proc/self/" + f):
        print(f, " ".join(line.split()))
print("setgroups", open("/proc/self/setgroups").read().strip())
print("ids", os.getuid(), os.getgid(), *sorted(os.getgroups()))
st = os.stat("{}")
print("stranger", st.st_uid, st.st_gid)
try:
    socket.sethostname(socket.gethostname())
    print("sethostname ok")
except OSError as e:
    print("sethostname", e.errno)
"#,
            stranger.display()
        ),
    );
    tree.write(
        "nobody.service",
        &format!(
            "[Service]\nType=oneshot\nPrivateUsers=yes\nUser=nobody\nSupplementaryGroups=adm\n\
             ExecStart=/usr/bin/python3 {}\n",
            probe.display()
        ),
    );
    tree.write(
        "root.service",
        &format!(
            "[Service]\nType=oneshot\nPrivateUsers=yes\n\
             ExecStartPre=+/bin/sh -c 'echo plus $(cat /proc/self/uid_map)'\n\
             ExecStart=/usr/bin/python3 {}\n",
            probe.display()
        ),
    );
    let nobody = output(&run_to_end(&tree, "nobody.service"), "nobody.service");
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .ok()
        .flatten()
        .map_or(65534, |g| g.gid.as_raw());
    assert_eq!(
        nobody,
        [
            "uid_map 0 0 1".to_string(),
            "uid_map 65534 65534 1".into(),
            "gid_map 0 0 1".into(),
            format!("gid_map {nogroup} {nogroup} 1"),
            "setgroups deny".into(),
            // The groups: nobody's, and adm (4), which is not mapped.
            format!("ids 65534 {nogroup} {}", {
                let mut g = [nogroup, 65534];
                g.sort_unstable();
                format!("{} {}", g[0], g[1])
            }),
            "stranger 65534 65534".into(),
            "sethostname 1".into(),
        ]
    );
    let root = output(&run_to_end(&tree, "root.service"), "root.service");
    assert_eq!(
        root,
        [
            // The `+` command runs outside the namespace.
            "plus 0 0 4294967295",
            "uid_map 0 0 1",
            "gid_map 0 0 1",
            "setgroups deny",
            "ids 0 0",
            "stranger 65534 65534",
            // root inside, but the host's hostname is not its to set.
            "sethostname 1",
        ]
    );
}

/// The kernel log's audit records of seccomp's `SECCOMP_RET_LOG` for `pid`
/// (`type=1326 ... pid=PID ... syscall=NR ... code=0x7ffc0000`): the
/// system call numbers, or `None` when the log cannot be read.
fn logged_calls(pid: &str) -> Option<Vec<u32>> {
    let out = Command::new("dmesg").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let pid = format!(" pid={pid} ");
    Some(
        text.lines()
            .filter(|l| {
                l.contains("type=1326") && l.contains(&pid) && l.contains("code=0x7ffc0000")
            })
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("syscall="))
                    .and_then(|n| n.parse().ok())
            })
            .collect(),
    )
}

#[test]
fn system_call_log_has_the_kernel_log_the_listed_calls() {
    if !ready("reading the kernel log") || !common::require("dmesg", "the kernel log") {
        return;
    }
    let tree = open_tree();
    // `uname` is system call 63 on x86-64.
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIP: the test names x86-64 system call numbers");
        return;
    }
    tree.write(
        "listed.service",
        "[Service]\nType=oneshot\nSystemCallLog=uname\nExecStart=/bin/sh -c 'echo $$$$; exec /bin/uname'\n",
    );
    tree.write(
        "others.service",
        "[Service]\nType=oneshot\nSystemCallLog=~uname\nExecStart=/bin/sh -c 'echo $$$$; exec /bin/uname'\n",
    );
    let pid_of = |unit: &str| -> String {
        let log = run_to_end(&tree, unit);
        output(&log, unit).first().cloned().unwrap_or_default()
    };
    // The kernel rate-limits its audit lines (other tests' seccomp kills
    // are logged too): a few tries, a few seconds apart.
    let mut listed = None;
    for attempt in 0..4 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(6));
        }
        let pid = pid_of("listed.service");
        let Some(calls) = wait_for(Duration::from_secs(2), || {
            logged_calls(&pid).filter(|c| !c.is_empty())
        }) else {
            if logged_calls(&pid).is_none() {
                eprintln!("SKIP: the kernel log cannot be read here");
                return;
            }
            continue;
        };
        listed = Some(calls);
        break;
    }
    let Some(listed) = listed else {
        assert!(
            !common::in_ci(),
            "no audit record of uname() after four runs"
        );
        eprintln!("SKIP: no audit record (audit off in this kernel?)");
        return;
    };
    // Only the listed call is logged.
    assert!(listed.iter().all(|n| *n == 63), "{listed:?}");
    // `~`: every call but the listed one (the exec itself, 59, among them).
    // (Retried as above: the kernel's rate limit may hide a whole run's
    // lines while other seccomp filters log.)
    let mut others = Vec::new();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_secs(6));
        let pid = pid_of("others.service");
        if let Some(calls) = wait_for(Duration::from_secs(2), || {
            logged_calls(&pid).filter(|c| !c.is_empty())
        }) {
            others = calls;
            break;
        }
    }
    assert!(!others.contains(&63), "{others:?}");
    // The exec and the rest of uname's calls; none at all means nothing
    // was logged (only the kernel's rate limit could hide them all).
    assert!(
        !others.is_empty() || !common::in_ci(),
        "SystemCallLog=~uname logged nothing"
    );
}

/// Prints the session keyring's owner, whether the user keyring is linked
/// in, and whether the `invocation_id` key holds `$INVOCATION_ID`
/// (x86-64 system call numbers).
const KEYRING_PROBE: &str = r#"import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def keyctl(*a):
    return libc.syscall(250, *[ctypes.c_long(x) if isinstance(x, int) else x for x in a])
ring = keyctl(0, -3, 0)
buf = ctypes.create_string_buffer(256)
n = keyctl(6, ring, buf, 256)
desc = buf.raw[:max(n - 1, 0)].decode().split(";")
user = keyctl(0, -4, 1)
n = keyctl(11, ring, buf, 256)
linked = user in struct.unpack("%di" % (max(n, 0) // 4), buf.raw[:max(n, 0) - max(n, 0) % 4])
key = libc.syscall(249, b"user", b"invocation_id", None, ctypes.c_long(0))
if key >= 0:
    n = keyctl(11, key, buf, 16)
    key = buf.raw[:n].hex() == os.environ["INVOCATION_ID"]
else:
    key = "none"
print(desc[0], desc[1], desc[2], desc[4], "linked" if linked else "unlinked", "key", key)
"#;

#[test]
fn keyring_mode_gives_each_service_a_session_keyring_of_its_users() {
    if !ready("running a service as another user") || !common::require("python3", "the probe") {
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIP: the probe names x86-64 system call numbers");
        return;
    }
    let tree = open_tree();
    let probe = tree.write("probe.py", KEYRING_PROBE);
    for (unit, mode) in [
        ("default.service", ""),
        ("shared.service", "KeyringMode=shared\n"),
        ("inherit.service", "KeyringMode=inherit\n"),
    ] {
        tree.write(
            unit,
            &format!(
                "[Service]\nType=oneshot\nUser=nobody\n{mode}ExecStart=/usr/bin/python3 {}\n",
                probe.display()
            ),
        );
    }
    let run = |unit: &str| output(&run_to_end(&tree, unit), unit);
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .ok()
        .flatten()
        .map_or(65534, |g| g.gid.as_raw());
    // private (a system manager's default): a new `_ses` keyring, the
    // service's, with the invocation id in it.
    assert_eq!(
        run("default.service"),
        [format!("keyring 65534 {nogroup} _ses unlinked key True")]
    );
    assert_eq!(
        run("shared.service"),
        [format!("keyring 65534 {nogroup} _ses linked key True")]
    );
    // inherit: flint's own session keyring (or, where flint has none, the
    // kernel's per-user fallback `_uid_ses.UID`), no new one and no
    // invocation id.
    let inherit = run("inherit.service");
    assert_eq!(inherit.len(), 1);
    assert!(
        !inherit[0].starts_with(&format!("keyring 65534 {nogroup} _ses ")),
        "{inherit:?}"
    );
    assert!(inherit[0].ends_with("key none"), "{inherit:?}");
}

/// A private /tmp kept for a restart that never comes (flint stopped
/// while the service waited for it) goes with flint.
#[test]
fn a_private_tmp_kept_for_a_restart_goes_when_flint_stops() {
    if !ready("PrivateTmp= needs a mount namespace") {
        return;
    }
    let tree = open_tree();
    let unit = format!("waits-{}.service", std::process::id());
    tree.write(
        &unit,
        "[Service]\nPrivateTmp=yes\nRestart=always\nRestartSec=1h\n\
         ExecStart=/bin/sh -c 'echo x > /tmp/left; exit 1'\n",
    );
    let leftovers = || -> Vec<String> {
        ["/tmp", "/var/tmp"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("systemd-private-") && n.contains(&unit))
            .collect()
    };
    let mut flint = Flint::run(&tree, &[unit.as_str()]);
    assert!(flint.wait_log("scheduling restart"), "{}", flint.log());
    assert_eq!(
        leftovers().len(),
        2,
        "kept for the restart\n{}",
        flint.log()
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
    assert_eq!(leftovers(), Vec::<String>::new(), "{}", flint.log());
}

/// `JoinsNamespaceOf=`, as the namespace example of
/// systemd-socket-proxyd(8): a server with `PrivateNetwork=` listens on
/// its own loopback, and the proxy a socket starts joins its network
/// namespace (and its private /tmp) to reach it. A unit that the server's
/// own `JoinsNamespaceOf=` names gets the same (the inverse is implied).
#[test]
fn joins_namespace_of_shares_the_network_and_tmp_of_a_running_unit() {
    if !ready("network namespaces") || !common::require("python3", "the server") {
        return;
    }
    let Some(proxyd) = [
        "/usr/lib/systemd/systemd-socket-proxyd",
        "/lib/systemd/systemd-socket-proxyd",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists()) else {
        eprintln!("SKIP: systemd-socket-proxyd (package systemd) is not installed");
        return;
    };
    let tree = open_tree();
    let (inner, outer) = (free_port(), free_port());
    tree.write(
        "backend.service",
        &format!(
            "[Unit]\nJoinsNamespaceOf=checker.service\n\
             [Service]\nPrivateNetwork=yes\nPrivateTmp=yes\n\
             ExecStart=/usr/bin/python3 -c 'import socket; open(\"/tmp/marker\", \"w\").write(\"backend\"); \
             s = socket.create_server((\"127.0.0.1\", {inner})); \
             [(c.sendall(b\"hello from the backend\"), c.close()) for c, _ in iter(s.accept, None)]'\n"
        ),
    );
    tree.write(
        "proxy.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{outer}\n"),
    );
    tree.write(
        "proxy.service",
        &format!(
            "[Unit]\nRequires=backend.service\nAfter=backend.service\nJoinsNamespaceOf=backend.service\n\
             [Service]\nPrivateNetwork=yes\nPrivateTmp=yes\nExecStart={proxyd} 127.0.0.1:{inner}\n"
        ),
    );
    tree.write(
        "checker.service",
        "[Service]\nType=oneshot\nPrivateNetwork=yes\nPrivateTmp=yes\n\
         ExecStart=/bin/sh -c 'echo seen $$(readlink /proc/self/ns/net) $$(cat /tmp/marker)'\n",
    );
    let control = tree.path().join("control");
    let flint = Flint::run(
        &tree,
        &[
            "--control",
            control.to_str().unwrap(),
            "proxy.socket",
            "backend.service",
        ],
    );
    let mut answer = String::new();
    let served = wait_for(Duration::from_secs(15), || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", outer)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        answer.clear();
        let _ = s.read_to_string(&mut answer);
        answer.contains("hello from the backend").then_some(())
    });
    assert!(served.is_some(), "{answer:?}\n{}", flint.log());
    let backend = common::main_pid(&control, "backend.service").expect("the backend runs");
    let backend_net = std::fs::read_link(format!("/proc/{backend}/ns/net")).unwrap();
    assert_ne!(
        backend_net,
        std::fs::read_link("/proc/self/ns/net").unwrap(),
        "the backend has a network of its own"
    );
    let (code, out) = common::ctl(&control, &["start", "checker.service"]);
    assert_eq!(code, 0, "{out}\n{}", flint.log());
    let log = flint.log();
    assert_eq!(
        output(&log, "checker.service"),
        [format!("seen {} backend", backend_net.display())],
        "{log}"
    );
}

//! flint started by other inits and supervisors, with the service files of
//! `dist/` as they are shipped: runit's `runsv`, s6's `s6-supervise` (its
//! readiness through `notification-fd` and `flint run --notify-fd`),
//! OpenRC's `openrc-run` with `supervise-daemon`, a sysvinit script with
//! `start-stop-daemon`, and flint as PID 1 of a PID namespace. Each is
//! pointed at the binary under test and a temporary unit tree through its
//! settings file (`conf`, `conf.d`, `/etc/default`), serves connections,
//! reloads on SIGHUP (a socket added to the tree opens) and stops cleanly:
//! flint exits 0 and its listeners close.

mod common;

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Flint, Tree, exchange, flint_bin, free_port, require, require_root, wait_for};

/// The repository's `dist/` directory.
fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// An `Accept=yes` echo service on 127.0.0.1:`port`: `NAME.socket` and
/// `NAME@.service`, answering `hello from NAME`.
fn echo_units(tree: &Tree, name: &str, port: u16) {
    tree.write(
        &format!("{name}.socket"),
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        &format!("{name}@.service"),
        &format!("[Service]\nExecStart=/bin/echo hello from {name}\nStandardInput=socket\n"),
    );
}

/// Waits (bounded) until the echo service on `port` answers.
fn served(port: u16, name: &str) -> bool {
    let want = format!("hello from {name}\n");
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()?;
        (exchange(port, b"") == want).then_some(())
    })
    .is_some()
}

/// Waits (bounded) until nothing listens on `port` any more.
fn closed(port: u16) -> bool {
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    })
    .is_some()
}

/// `spawn()`, retried while the program is "Text file busy": a script this
/// test just wrote can still be open for writing in a child that another
/// test thread forked meanwhile (until that child's exec closes it).
trait SpawnRetry {
    fn spawn_retry(&mut self) -> std::io::Result<std::process::Child>;
}

impl SpawnRetry for Command {
    fn spawn_retry(&mut self) -> std::io::Result<std::process::Child> {
        let mut tries = 0;
        loop {
            match self.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }
}

/// Runs a command to its end (at most `limit`), its stdout and stderr in a
/// file: daemons it starts may keep them open. Returns the exit code (-1
/// for a signal) and the output.
fn run_for(cmd: &mut Command, limit: Duration) -> (i32, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file);
    let mut child = cmd
        .spawn_retry()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_exit(&mut child, limit);
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not finish within {limit:?}; output:\n{text}");
    };
    eprintln!("$ {cmd:?} -> {status}\n{text}");
    (status.code().unwrap_or(-1), text)
}

/// Waits (bounded) for a child to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    wait_for(limit, || child.try_wait().ok().flatten())
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started (or read from its
    // supervisor) and a valid signal number.
    unsafe {
        libc::kill(pid.cast_signed(), sig);
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid.cast_signed(), 0) == 0 }
}

/// A process a supervisor started (flint, or supervise-daemon), killed
/// when dropped if a failed test left it running.
#[derive(Default)]
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|p| alive(*p)) {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// A supervisor process (runsv, s6-supervise) stopped when dropped, and the
/// flint it started killed if a failed test left it running.
struct Supervisor {
    child: Child,
    flint_pid: KillOnDrop,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.flint_pid));
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), libc::SIGTERM);
            if wait_exit(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// The pid of flint's process whose command line is `run` with this
/// control socket (the supervisors' own pid reports differ in format).
fn flint_pid(control: &Path) -> Option<u32> {
    let want = control.to_str()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"flint"))
            && args.get(1) == Some(&&b"run"[..])
            && args
                .windows(2)
                .any(|w| w[0] == b"--control" && w[1] == want.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

/// A settings file shared by the runit, s6 and sysvinit scripts.
fn settings(flint: &Path, units: &Path, control: &Path, extra: &str) -> String {
    format!(
        "FLINT='{}'\nFLINT_UNIT_PATH='{}'\nFLINT_OPTS='--control {}'\nFLINT_LOG=debug\n{extra}",
        flint.display(),
        units.display(),
        control.display()
    )
}

#[test]
fn runit_runsv_runs_reloads_and_stops_flint() {
    if !(require("runsv", "runit supervises flint")
        && require("sv", "runit's control tool")
        && require("svlogd", "runit's logger"))
    {
        return;
    }
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    let tmp = tempfile::tempdir().expect("tempdir");
    // The service directory links the scripts of dist/ as they are and
    // adds ./conf, as an admin would.
    let sv = tmp.path().join("flint");
    std::fs::create_dir_all(sv.join("log")).unwrap();
    let src = dist().join("runit/flint");
    for f in ["run", "finish", "log/run"] {
        std::os::unix::fs::symlink(src.join(f), sv.join(f)).unwrap();
    }
    let control = tmp.path().join("control");
    let logdir = tmp.path().join("log");
    std::fs::write(
        sv.join("conf"),
        settings(
            &flint_bin(),
            tree.path(),
            &control,
            &format!("FLINT_LOGDIR='{}'\n", logdir.display()),
        ),
    )
    .unwrap();
    let child = Command::new("runsv")
        .arg(&sv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_retry()
        .expect("spawn runsv");
    let mut runsv = Supervisor {
        child,
        flint_pid: KillOnDrop::default(),
    };
    let log = || std::fs::read_to_string(logdir.join("current")).unwrap_or_default();
    assert!(
        served(port, "first"),
        "flint under runsv serves; log:\n{}",
        log()
    );
    runsv.flint_pid = KillOnDrop(flint_pid(&control));
    let (code, out) = run_for(
        Command::new("sv").arg("status").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("run: "), "sv status: {out}");
    assert!(out.contains("run: log:"), "svlogd runs: {out}");

    // `sv reload` is SIGHUP: a socket added to the tree opens.
    echo_units(&tree, "second", port2);
    let (code, out) = run_for(
        Command::new("sv").arg("reload").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    assert!(served(port2, "second"), "sv reload; log:\n{}", log());
    assert!(served(port, "first"));

    let (code, out) = run_for(
        Command::new("sv").args(["-w", "20", "down"]).arg(&sv),
        Duration::from_secs(25),
    );
    assert_eq!(code, 0, "sv down: {out}");
    assert!(out.starts_with("ok: down: "), "sv down: {out}");
    assert!(
        closed(port) && closed(port2),
        "listeners closed after sv down"
    );
    let finished = wait_for(Duration::from_secs(10), || {
        let l = log();
        (l.contains("flint: stopped") && l.contains("flint: exited 0")).then_some(())
    });
    assert!(finished.is_some(), "finish saw exit 0; log:\n{}", log());
    assert!(
        !log().contains('\u{1b}'),
        "no terminal colours in a log file"
    );
    let (code, out) = run_for(
        Command::new("sv").arg("status").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("down: "), "stays down: {out}");

    // `sv exit` ends runsv (and its logger).
    let (code, out) = run_for(
        Command::new("sv").arg("exit").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    let status = wait_exit(&mut runsv.child, Duration::from_secs(10));
    assert!(status.is_some(), "runsv exits after sv exit");
}

#[test]
fn s6_waits_for_flint_readiness_and_stops_it() {
    if !(require("s6-supervise", "s6 supervises flint")
        && require("s6-svwait", "s6's readiness wait")
        && require("s6-svc", "s6's control tool")
        && require("s6-svstat", "s6's status tool")
        && require("s6-svok", "tells whether s6-supervise runs"))
    {
        return;
    }
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let sv = tmp.path().join("flint");
    std::fs::create_dir_all(&sv).unwrap();
    let src = dist().join("s6/flint");
    for f in ["run", "finish", "notification-fd", "type"] {
        std::os::unix::fs::symlink(src.join(f), sv.join(f)).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(sv.join("type")).unwrap(),
        "longrun\n"
    );
    // flint starts only once the test opens the gate, so "up" (the
    // process runs) and "ready" (flint wrote to notification-fd) differ
    // for as long as the test likes. The gate gives up after 20 s.
    let gate = tmp.path().join("gate");
    let wrapper = tmp.path().join("flint-after-gate");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\nexec '{}' \"$@\"\n",
            gate.display(),
            flint_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let control = tmp.path().join("control");
    std::fs::write(
        sv.join("conf"),
        settings(&wrapper, tree.path(), &control, ""),
    )
    .unwrap();
    let out_path = tmp.path().join("s6.log");
    let out = File::create(&out_path).unwrap();
    let child = Command::new("s6-supervise")
        .arg(&sv)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn_retry()
        .expect("spawn s6-supervise");
    let mut s6 = Supervisor {
        child,
        flint_pid: KillOnDrop::default(),
    };
    let log = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let svwait = |flag: &str| {
        Command::new("s6-svwait")
            .args([flag, "-t", "20000"])
            .arg(&sv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn_retry()
            .expect("spawn s6-svwait")
    };
    let svstat = |fields: &str| {
        run_for(
            Command::new("s6-svstat").args(["-o", fields]).arg(&sv),
            Duration::from_secs(10),
        )
        .1
        .trim()
        .to_owned()
    };

    // s6-svwait needs a listening s6-supervise (s6-svok tells).
    let listening = wait_for(Duration::from_secs(10), || {
        Command::new("s6-svok")
            .arg(&sv)
            .status()
            .ok()
            .filter(ExitStatus::success)
    });
    assert!(listening.is_some(), "s6-supervise runs; log:\n{}", log());
    let mut up = svwait("-u");
    let status = wait_exit(&mut up, Duration::from_secs(21)).expect("s6-svwait -u ends");
    assert!(status.success(), "flint's run script is up");
    let mut ready = svwait("-U");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ready.try_wait().unwrap().is_none(),
        "s6-svwait -U returned before flint was ready"
    );
    assert_eq!(svstat("up,ready"), "true false");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    let opened = Instant::now();
    File::create(&gate).unwrap();
    let status = wait_exit(&mut ready, Duration::from_secs(21)).expect("s6-svwait -U ends");
    assert!(status.success(), "flint became ready; log:\n{}", log());
    // Ready means listening: one attempt, no retry.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("listening once ready");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert_eq!(answer, "hello from first\n");
    eprintln!("ready {:?} after the gate opened", opened.elapsed());
    assert_eq!(svstat("up,ready"), "true true");
    s6.flint_pid = KillOnDrop(flint_pid(&control));

    // `s6-svc -h` is SIGHUP: a socket added to the tree opens.
    echo_units(&tree, "second", port2);
    let (code, out) = run_for(
        Command::new("s6-svc").arg("-h").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    assert!(served(port2, "second"), "s6-svc -h; log:\n{}", log());

    let (code, out) = run_for(
        Command::new("s6-svc").arg("-d").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    let mut down = svwait("-D");
    let status = wait_exit(&mut down, Duration::from_secs(21)).expect("s6-svwait -D ends");
    assert!(status.success(), "flint went down; log:\n{}", log());
    assert_eq!(svstat("up,exitcode"), "false 0", "log:\n{}", log());
    assert!(
        closed(port) && closed(port2),
        "listeners closed after s6-svc -d"
    );
    let finished = wait_for(Duration::from_secs(5), || {
        log().contains("flint: exited 0").then_some(())
    });
    assert!(finished.is_some(), "finish ran; log:\n{}", log());
    assert!(log().contains("flint: stopped"), "{}", log());

    let (code, out) = run_for(
        Command::new("s6-svc").arg("-x").arg(&sv),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    let status = wait_exit(&mut s6.child, Duration::from_secs(10));
    assert!(status.is_some(), "s6-supervise exits after s6-svc -x");
}

/// Reads `r` to its end in a thread; each chunk and then the end (an empty
/// chunk) arrive on the channel.
fn reader(mut r: File) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            let n = r.read(&mut buf).unwrap_or(0);
            if tx.send(buf[..n].to_vec()).is_err() || n == 0 {
                return;
            }
        }
    });
    rx
}

/// Starts `flint run` with stderr captured, as [`Flint`] has it.
fn spawn_flint(cmd: &mut Command) -> Flint {
    cmd.env("FLINT_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn_retry().expect("spawn flint");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut r = std::io::BufReader::new(stderr);
        while std::io::BufRead::read_line(&mut r, &mut text).unwrap_or(0) > 0 {
            eprint!("[flint] {text}");
            sink.lock().unwrap().push_str(&text);
            text.clear();
        }
    });
    Flint { child, log }
}

#[test]
fn notify_fd_says_ready_once_listening_and_is_closed() {
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    echo_units(&tree, "second", port2);
    // A service started with the sockets: it must not inherit the
    // notification pipe (else the supervisor would never see EOF).
    tree.write("holder.service", "[Service]\nExecStart=/bin/sleep 60\n");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two new fds, both close-on-exec, into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and owned here alone.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
    };
    let wfd = fds[1];
    let mut cmd = Command::new(flint_bin());
    cmd.arg("run")
        .arg("--unit-dir")
        .arg(tree.path())
        .arg("--control")
        .arg(tmp.path().join("control"))
        .args([
            "--notify-fd",
            "3",
            "first.socket",
            "second.socket",
            "holder.service",
        ]);
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl,
    // which are async-signal-safe; it puts the pipe's write end on fd 3
    // without close-on-exec, as s6-supervise does.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if wfd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut flint = spawn_flint(&mut cmd);
    drop(w);
    let rx = reader(r);
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a readiness line within 20 s");
    assert_eq!(first, b"\n", "log:\n{}", flint.log());
    // Ready means listening: one attempt on each socket, no retry.
    for (p, name) in [(port, "first"), (port2, "second")] {
        TcpStream::connect(("127.0.0.1", p)).expect("listening once ready");
        assert_eq!(exchange(p, b""), format!("hello from {name}\n"));
    }
    let end = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the pipe is closed after the newline");
    assert!(end.is_empty(), "nothing after the newline: {end:?}");
    assert!(
        flint.child.try_wait().unwrap().is_none(),
        "flint still runs"
    );
    assert!(flint.wait_log("holder.service"), "{}", flint.log());
    let status = flint.stop().expect("flint exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", flint.log());
    assert!(closed(port) && closed(port2));
}

#[test]
fn sighup_switches_to_the_tree_on_disk_and_sigterm_exits_zero() {
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    let tmp = tempfile::tempdir().expect("tempdir");
    // No unit named: every socket unit of the tree, then and after SIGHUP.
    let mut flint = spawn_flint(
        Command::new(flint_bin())
            .arg("run")
            .arg("--unit-dir")
            .arg(tree.path())
            .arg("--control")
            .arg(tmp.path().join("control")),
    );
    assert!(flint.wait_log("unit(s) running"), "{}", flint.log());
    assert!(served(port, "first"));
    assert!(TcpStream::connect(("127.0.0.1", port2)).is_err());

    echo_units(&tree, "second", port2);
    signal(flint.child.id(), libc::SIGHUP);
    assert!(
        served(port2, "second"),
        "SIGHUP opened second.socket; log:\n{}",
        flint.log()
    );
    assert!(served(port, "first"), "first.socket still answers");
    assert!(flint.log().contains("SIGHUP"), "{}", flint.log());

    // A socket removed from the tree closes on the next SIGHUP.
    std::fs::remove_file(tree.path().join("first.socket")).unwrap();
    signal(flint.child.id(), libc::SIGHUP);
    assert!(
        closed(port),
        "SIGHUP closed first.socket; log:\n{}",
        flint.log()
    );
    assert!(served(port2, "second"));

    let status = flint.stop().expect("flint exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", flint.log());
    assert!(closed(port2), "listener closed after SIGTERM");
}

/// Every script of `dist/` parses (`sh -n`), and passes shellcheck where
/// it is installed.
#[test]
fn dist_scripts_parse() {
    let scripts = [
        "openrc/flint",
        "runit/flint/run",
        "runit/flint/finish",
        "runit/flint/log/run",
        "s6/flint/run",
        "s6/flint/finish",
        "sysvinit/flint",
    ];
    for s in scripts {
        let path = dist().join(s);
        let (code, out) = run_for(
            Command::new("sh").arg("-n").arg(&path),
            Duration::from_secs(10),
        );
        assert_eq!(code, 0, "sh -n {s}: {out}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "{s} is executable");
    }
    // The settings files are shell too (openrc-run and the sysvinit
    // script source them).
    for f in ["openrc/flint.confd", "sysvinit/flint.default"] {
        let (code, out) = run_for(
            Command::new("sh").arg("-n").arg(dist().join(f)),
            Duration::from_secs(10),
        );
        assert_eq!(code, 0, "sh -n {f}: {out}");
    }
    assert_eq!(
        std::fs::read_to_string(dist().join("s6/flint/notification-fd")).unwrap(),
        "3\n"
    );
    if require("shellcheck", "lints the scripts of dist/") {
        let (code, out) = run_for(
            Command::new("shellcheck")
                .args(["-s", "sh"])
                .args(scripts.iter().map(|s| dist().join(s))),
            Duration::from_secs(30),
        );
        assert_eq!(code, 0, "shellcheck:\n{out}");
    }
}

/// OpenRC's own view of the init script: its description, commands and
/// dependencies, as `openrc-run` reads them (no root needed).
#[test]
fn openrc_reads_the_init_script() {
    if !require("openrc-run", "OpenRC reads dist/openrc/flint") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = install_openrc(tmp.path(), "");
    let (code, out) = run_for(Command::new(&script).arg("depend"), Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    let deps: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        deps,
        ["need localmount", "use net", "after firewall"],
        "{out}"
    );
    let (code, out) = run_for(
        Command::new(&script).arg("describe"),
        Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("reload: Switch to the unit tree on disk"),
        "{out}"
    );
}

/// Copies the OpenRC script into `DIR/init.d` (openrc-run resolves a link
/// to its target and would look for `conf.d` beside that) with `conf` as
/// `DIR/conf.d/flint`; returns the script's path.
fn install_openrc(dir: &Path, conf: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("init.d")).unwrap();
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let script = dir.join("init.d/flint");
    std::fs::copy(dist().join("openrc/flint"), &script).unwrap();
    std::fs::write(dir.join("conf.d/flint"), conf).unwrap();
    script
}

/// The OpenRC script started, reloaded and stopped for real: each command
/// runs in a private mount namespace with a fresh `/run` and OpenRC's
/// state directory (`/run/openrc`, kept in the temporary directory) as if
/// OpenRC had booted the machine; the host's `/run` is left alone.
#[test]
fn openrc_supervise_daemon_runs_reloads_and_stops_flint() {
    if !(require("openrc-run", "OpenRC runs dist/openrc/flint")
        && require("supervise-daemon", "OpenRC's supervisor")
        && require("unshare", "a private /run for OpenRC's state")
        && require_root("a mount namespace, so OpenRC's state stays out of the host's /run"))
    {
        return;
    }
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("openrc");
    for d in [
        "daemons",
        "exclusive",
        "failed",
        "hotplugged",
        "inactive",
        "options",
        "scheduled",
        "started",
        "starting",
        "stopping",
        "tmp",
        "wasinactive",
    ] {
        std::fs::create_dir_all(state.join(d)).unwrap();
    }
    std::fs::write(state.join("softlevel"), "default\n").unwrap();
    let control = tmp.path().join("control");
    let logfile = tmp.path().join("flint.log");
    let script = install_openrc(
        tmp.path(),
        &format!(
            "FLINT='{}'\nFLINT_UNIT_PATH='{}'\nFLINT_OPTS='--control {}'\nFLINT_LOG=debug\nerror_log='{}'\npidfile='{}'\n",
            flint_bin().display(),
            tree.path().display(),
            control.display(),
            logfile.display(),
            tmp.path().join("supervise-daemon.pid").display(),
        ),
    );
    let rc = |action: &str| {
        run_for(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-ec"])
                .arg(
                    "mount -t tmpfs flint-test /run; mkdir /run/openrc; \
                     mount --bind \"$1\" /run/openrc; exec \"$2\" --nodeps \"$3\"",
                )
                .arg("sh")
                .arg(&state)
                .arg(&script)
                .arg(action),
            Duration::from_secs(30),
        )
    };
    let log = || std::fs::read_to_string(&logfile).unwrap_or_default();
    let supervisor_pid = || {
        std::fs::read_to_string(tmp.path().join("supervise-daemon.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
    };
    let (code, out) = rc("start");
    // Should the test fail, supervise-daemon goes first (it would start
    // flint again), then flint: locals drop in reverse order.
    let mut guard = KillOnDrop::default();
    let _supervisor = KillOnDrop(supervisor_pid());
    assert_eq!(code, 0, "start: {out}\nlog:\n{}", log());
    assert!(served(port, "first"), "log:\n{}", log());
    guard.0 = flint_pid(&control);
    assert!(
        supervisor_pid().is_some_and(alive),
        "supervise-daemon writes its pid file"
    );
    let (code, out) = rc("status");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("started"), "{out}");

    echo_units(&tree, "second", port2);
    let (code, out) = rc("reload");
    assert_eq!(code, 0, "reload: {out}");
    assert!(served(port2, "second"), "reload; log:\n{}", log());

    let (code, out) = rc("stop");
    assert_eq!(code, 0, "stop: {out}\nlog:\n{}", log());
    assert!(closed(port) && closed(port2), "listeners closed after stop");
    assert!(log().contains("flint: stopped"), "log:\n{}", log());
    let (code, out) = rc("status");
    assert_eq!(code, 3, "stopped: {out}");
    let gone = wait_for(Duration::from_secs(10), || {
        guard.0.is_none_or(|p| !alive(p)).then_some(())
    });
    assert!(gone.is_some(), "flint is gone after stop");
}

#[test]
fn sysvinit_script_starts_reloads_and_stops_flint() {
    if !require(
        "start-stop-daemon",
        "the sysvinit script starts flint with it",
    ) {
        return;
    }
    let tree = Tree::new();
    let (port, port2) = (free_port(), free_port());
    echo_units(&tree, "first", port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let control = tmp.path().join("control");
    let logfile = tmp.path().join("flint.log");
    let pidfile = tmp.path().join("flint.pid");
    let defaults = tmp.path().join("defaults");
    std::fs::write(
        &defaults,
        settings(
            &flint_bin(),
            tree.path(),
            &control,
            &format!(
                "FLINT_LOGFILE='{}'\nPIDFILE='{}'\n",
                logfile.display(),
                pidfile.display()
            ),
        ),
    )
    .unwrap();
    let script = dist().join("sysvinit/flint");
    let init = |action: &str| {
        run_for(
            Command::new(&script)
                .arg(action)
                .env("FLINT_DEFAULTS", &defaults),
            Duration::from_secs(30),
        )
    };
    let log = || std::fs::read_to_string(&logfile).unwrap_or_default();
    let mut guard = KillOnDrop::default();

    let (code, out) = init("status");
    assert_eq!(code, 3, "not running yet: {out}");
    let (code, out) = init("start");
    assert_eq!(code, 0, "start: {out}\nlog:\n{}", log());
    assert!(served(port, "first"), "log:\n{}", log());
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    guard.0 = Some(pid);
    assert_eq!(flint_pid(&control), Some(pid), "the pid file names flint");
    let (code, out) = init("status");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("running (pid {pid})")), "{out}");
    let (code, out) = init("start");
    assert_eq!(code, 0, "a second start: {out}");
    assert!(out.contains("already running"), "{out}");

    echo_units(&tree, "second", port2);
    let (code, out) = init("reload");
    assert_eq!(code, 0, "reload: {out}");
    assert!(served(port2, "second"), "reload; log:\n{}", log());

    let (code, out) = init("stop");
    assert_eq!(code, 0, "stop: {out}");
    assert!(closed(port) && closed(port2), "listeners closed after stop");
    assert!(log().contains("flint: stopped"), "log:\n{}", log());
    assert!(!pidfile.exists(), "stop removes the pid file");
    let (code, out) = init("status");
    assert_eq!(code, 3, "{out}");
    let (code, out) = init("stop");
    assert_eq!(code, 0, "stopping a stopped flint: {out}");

    // A tree with nothing to run: flint refuses (exit 2), and start says so.
    let empty = Tree::new();
    std::fs::write(
        &defaults,
        settings(
            &flint_bin(),
            empty.path(),
            &control,
            &format!(
                "FLINT_LOGFILE='{}'\nPIDFILE='{}'\n",
                logfile.display(),
                pidfile.display()
            ),
        ),
    )
    .unwrap();
    let (code, out) = init("start");
    assert_eq!(code, 1, "start with nothing to run: {out}");
    assert!(out.contains("exited at once"), "{out}");
    assert!(log().contains("no socket units found"), "log:\n{}", log());
}

/// flint as PID 1 of a PID namespace, as in a container: it serves, and
/// SIGTERM (what `docker stop` sends) makes it stop and exit 0.
#[test]
fn flint_as_pid_1_stops_on_sigterm() {
    if !(require("unshare", "a PID namespace")
        && require_root("a PID namespace of its own, as a container has"))
    {
        return;
    }
    let tree = Tree::new();
    let port = free_port();
    echo_units(&tree, "first", port);
    // An orphan for PID 1 to reap: the shell exits before its sleep does.
    tree.write(
        "orphan.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c '/bin/sleep 0.2 &'\n",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let control = tmp.path().join("control");
    let mut ns = spawn_flint(
        Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc"])
            .arg(flint_bin())
            .arg("run")
            .arg("--unit-dir")
            .arg(tree.path())
            .arg("--control")
            .arg(&control)
            .args(["first.socket", "orphan.service"]),
    );
    assert!(ns.wait_log("unit(s) running"), "{}", ns.log());
    assert!(served(port, "first"), "{}", ns.log());
    let pid = flint_pid(&control).expect("flint's pid outside the namespace");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or_default()
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(nspid, "1", "flint is PID 1 in its namespace");
    assert!(ns.wait_log("orphan.service"), "{}", ns.log());
    // The orphaned sleep, a child of PID 1 once its shell exited, is gone
    // (not left a zombie) once it is over.
    let reaped = wait_for(Duration::from_secs(5), || {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .all(|c| {
                std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default() != "sleep\n"
            })
            .then_some(())
    });
    assert!(reaped.is_some(), "PID 1 reaps orphans");
    signal(pid, libc::SIGTERM);
    let status = wait_exit(&mut ns.child, Duration::from_secs(20)).expect("flint exits");
    assert_eq!(status.code(), Some(0), "log:\n{}", ns.log());
    assert!(ns.log().contains("flint: stopped"), "{}", ns.log());
    assert!(closed(port));
}

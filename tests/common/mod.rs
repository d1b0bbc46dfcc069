//! Shared helpers for the integration tests: a running `flint` in a
//! temporary unit tree, free loopback ports, bounded waits, and a probe
//! program that reports what an activated process received.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `flint` binary under test.
pub fn flint_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flint"))
}

/// A unit tree in a temporary directory.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` (may contain `/` for drop-in dirs) with `text`.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// Whether `port` was not handed out before in this test process: the
/// kernel may give the same free port to two `bind(:0)` calls once the
/// first is released, and two tests (or two listeners of one test) must
/// never share one.
fn first_use(port: u16) -> bool {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if given.contains(&port) {
        return false;
    }
    given.push(port);
    true
}

/// A free TCP port on 127.0.0.1 (bound and released), never the same
/// twice in one test process.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if first_use(port) {
            return port;
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `flint run`; stopped with SIGTERM when dropped.
pub struct Flint {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Flint {
    /// Starts `flint run --unit-dir DIR UNITS...` and waits until it logs
    /// that its units are running.
    pub fn run(tree: &Tree, units: &[&str]) -> Flint {
        Flint::run_env(tree, units, &[])
    }

    /// Like [`Flint::run`], with extra environment variables for flint.
    pub fn run_env(tree: &Tree, units: &[&str], env: &[(&str, &Path)]) -> Flint {
        Flint::run_dir(tree.path(), units, env)
    }

    /// Like [`Flint::run_env`], with units from any directory.
    pub fn run_dir(dir: &Path, units: &[&str], env: &[(&str, &Path)]) -> Flint {
        let mut cmd = Command::new(flint_bin());
        cmd.arg("run").arg("--unit-dir").arg(dir).args(units);
        Flint::start(cmd, env)
    }

    /// Starts `flint ARGS...` (a `run` command line) and waits until it
    /// logs that its units are running.
    pub fn run_args(args: &[&std::ffi::OsStr], env: &[(&str, &Path)]) -> Flint {
        let mut cmd = Command::new(flint_bin());
        cmd.args(args);
        Flint::start(cmd, env)
    }

    /// Like [`Flint::run`], waiting for `needle` in the log instead (for
    /// units whose start is not over yet).
    pub fn run_until(tree: &Tree, units: &[&str], needle: &str) -> Flint {
        Flint::run_dir_until(tree.path(), units, needle)
    }

    /// Like [`Flint::run_until`], with units from any directory.
    pub fn run_dir_until(dir: &Path, units: &[&str], needle: &str) -> Flint {
        let mut cmd = Command::new(flint_bin());
        cmd.arg("run").arg("--unit-dir").arg(dir).args(units);
        Flint::start_until(cmd, &[], needle)
    }

    /// Starts flint from a prepared command line (`flint_bin()` with its
    /// arguments) and waits for `needle` in its log.
    pub fn run_command_until(cmd: Command, needle: &str) -> Flint {
        Flint::start_until(cmd, &[], needle)
    }

    fn start(cmd: Command, env: &[(&str, &Path)]) -> Flint {
        Flint::start_until(cmd, env, "unit(s) running")
    }

    fn start_until(mut cmd: Command, env: &[(&str, &Path)], needle: &str) -> Flint {
        cmd.env("FLINT_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawn flint");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[flint] {line}");
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let f = Flint { child, log };
        let ok = wait_for(Duration::from_secs(20), || {
            f.log().contains(needle).then_some(())
        });
        assert!(ok.is_some(), "flint did not start; log:\n{}", f.log());
        f
    }

    /// Waits (bounded) until flint's log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        wait_for(Duration::from_secs(15), || {
            self.log().contains(needle).then_some(())
        })
        .is_some()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id().cast_signed(), libc::SIGTERM);
        }
        wait_for(Duration::from_secs(20), || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Waits (bounded) for flint to end by itself, and its exit status.
    pub fn wait_end(&mut self) -> Option<std::process::ExitStatus> {
        wait_for(Duration::from_secs(20), || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// The number of open fds of the flint process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map_or(0, std::iter::Iterator::count)
    }
}

impl Drop for Flint {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.stop();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects to 127.0.0.1:port, retrying for up to 10 s.
/// `flint run --unit-dir DIR UNITS...`, to be started with
/// [`run_unit_to_end`] or [`Flint::run_command_until`] (after adding to it).
pub fn flint_run(dir: &Path, units: &[&str]) -> Command {
    let mut cmd = Command::new(flint_bin());
    cmd.arg("run").arg("--unit-dir").arg(dir).args(units);
    cmd
}

/// Starts flint from `cmd`, waits (at most 20 s) until `unit` has ended,
/// deactivated or failed, stops flint and returns its log.
pub fn run_unit_to_end(cmd: Command, unit: &str) -> String {
    let mut flint = Flint::run_command_until(cmd, "job start");
    let ended = wait_for(Duration::from_secs(20), || {
        let log = flint.log();
        (log.contains(&format!("{unit}: Deactivated successfully"))
            || log.contains(&format!("{unit}: Failed with result")))
        .then_some(())
    });
    let log = flint.log();
    flint.stop();
    assert!(ended.is_some(), "{unit} did not end:\n{log}");
    log
}

/// The lines a unit's processes wrote, from flint's log (`UNIT[PID]: line`).
pub fn unit_output(log: &str, unit: &str) -> Vec<String> {
    let marker = format!("{unit}[");
    log.lines()
        .filter_map(|l| {
            let at = l.find(&marker)?;
            Some(l[at + marker.len()..].split_once("]: ")?.1.to_string())
        })
        .collect()
}

pub fn connect(port: u16) -> TcpStream {
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("connect")
}

/// Sends `input`, half-closes, and reads everything the peer sends (bounded by 20 s).
pub fn exchange(port: u16, input: &[u8]) -> String {
    let mut s = connect(port);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(input).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A probe program (Python) that reports, as one JSON object, what the
/// process received: pid, environment, and for fds 0..64 the socket type,
/// whether it listens, O_NONBLOCK and FD_CLOEXEC. Where it writes: the path
/// in its first argument, or, with `-`, the socket on fd 3 / stdout.
pub const PROBE: &str = r#"
import json, os, socket, stat, sys, fcntl, resource, ctypes
def fdinfo(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    info = {"nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK),
            "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)}
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=fd)
        info["type"] = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}.get(s.type, str(s.type))
        info["family"] = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}.get(s.family, str(s.family))
        info["listening"] = bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        try:
            info["local"] = str(s.getsockname())
        except OSError:
            pass
        s.detach()
    elif stat.S_ISFIFO(st.st_mode):
        info["type"] = "fifo"
    else:
        info["type"] = "other"
    return info
def pdeathsig():
    v = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0)  # PR_GET_PDEATHSIG
    return v.value
report = {"pid": os.getpid(), "env": dict(os.environ),
          "fds": {str(fd): i for fd in range(64) if (i := fdinfo(fd)) is not None},
          "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
          "pdeathsig": pdeathsig()}
out = sys.argv[1] if len(sys.argv) > 1 else "-"
text = json.dumps(report) + "\n"
if out == "-":
    os.write(1, text.encode())
else:
    with open(out, "a") as f:
        f.write(text)
"#;

/// Writes the probe into the tree and returns its path.
pub fn install_probe(tree: &Tree) -> PathBuf {
    tree.write("probe.py", PROBE)
}

/// Whether the tests run in CI, where every tool the install script
/// provides must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `program` (a path or a name in `PATH`) can be run. When it
/// cannot, the test says why it skips; in CI, where
/// `scripts/install-test-deps.sh` installs it, that is a failure instead.
pub fn require(program: &str, why: &str) -> bool {
    let found = if program.contains('/') {
        Path::new(program).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).exists()))
    };
    if !found {
        assert!(
            !in_ci(),
            "{program} is missing ({why}); scripts/install-test-deps.sh installs it in CI"
        );
        eprintln!("SKIP: {program} is missing ({why}); run scripts/install-test-deps.sh");
    }
    found
}

/// Whether the test runs as root; when not, says why the test skips.
pub fn require_root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            !in_ci(),
            "CI runs the tests as root, and this one needs it ({why})"
        );
        eprintln!("SKIP: needs root ({why})");
    }
    root
}

/// A free UDP port on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        if first_use(port) {
            return port;
        }
    }
}

/// A port free on both 127.0.0.1 and ::1 (for units listening on both).
pub fn free_dual_port() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if TcpListener::bind(("::1", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// Runs `flint ctl --control CONTROL ARGS...`: exit code, stdout, stderr.
pub fn ctl_split(control: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(flint_bin())
        .arg("ctl")
        .arg("--control")
        .arg(control)
        .args(args)
        .output()
        .expect("run flint ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `flint run` with its control socket at `TREE/control` and, to keep it
/// running, a `keep.service` that sleeps; the control socket's path.
pub fn run_with_control(tree: &Tree) -> (Flint, PathBuf) {
    let control = tree.path().join("control");
    tree.write("keep.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let flint = Flint::run(
        tree,
        &[
            "--control",
            control.to_str().expect("utf-8 path"),
            "keep.service",
        ],
    );
    (flint, control)
}

/// `flint ctl switch DIR [--dry-run]`, which must succeed quietly; its
/// standard output.
pub fn switch(control: &Path, dir: &Path, dry_run: bool) -> String {
    let mut args = vec!["switch", dir.to_str().expect("utf-8 path")];
    if dry_run {
        args.push("--dry-run");
    }
    let (code, out, err) = ctl_split(control, &args);
    assert_eq!(code, 0, "switch to {} failed: {out}{err}", dir.display());
    assert!(err.is_empty(), "switch to {}: {err}", dir.display());
    out
}

/// Like [`ctl_split`], with stdout and stderr in one string.
pub fn ctl(control: &Path, args: &[&str]) -> (i32, String) {
    let (code, out, err) = ctl_split(control, args);
    (code, format!("{out}{err}"))
}

/// The inode of the socket listening on 127.0.0.1:`port`, from
/// `/proc/net/tcp`.
pub fn listener_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9).map(|s| (*s).to_string()))
            .flatten()
    })
}

/// The fd number and `socket:[inode]` of the listener on 127.0.0.1:`port`
/// in process `pid`'s `/proc/PID/fd`, if it holds one: a listener that was
/// never reopened keeps both.
pub fn listener_fd(pid: u32, port: u16) -> Option<(u32, String)> {
    let link = format!("socket:[{}]", listener_inode(port)?);
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(e.path()).ok()?.to_str()? == link).then_some(fd)
        })
        .map(|fd| (fd, link))
}

/// [`listener_fd`], which must exist.
pub fn held_listener(pid: u32, port: u16) -> (u32, String) {
    listener_fd(pid, port).unwrap_or_else(|| panic!("process {pid} holds no listener on {port}"))
}

/// A FIFO standing in for a terminal (`TTYPath=` with
/// `StandardOutput=tty`): a command's open of it, in its child before exec,
/// waits until [`StuckTty::release`] opens a reader, as an exec from a
/// stuck network file system would wait. Then the open completes and, a
/// FIFO being no terminal, the command fails.
pub struct StuckTty(PathBuf);

impl StuckTty {
    pub fn new(tree: &Tree) -> StuckTty {
        let path = tree.path().join("tty");
        let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success(), "mkfifo {}", path.display());
        StuckTty(path)
    }

    /// The settings that make a unit's commands open it.
    pub fn settings(&self) -> String {
        format!("TTYPath={}\nStandardOutput=tty\n", self.0.display())
    }

    /// Opens a reader (kept open while the returned file lives).
    pub fn release(&self) -> std::fs::File {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.0)
            .expect("open the FIFO")
    }
}

/// Writes `hello.socket` (`Accept=yes` on 127.0.0.1:`port`) whose instances
/// answer "hello\n".
pub fn hello_socket(tree: &Tree, port: u16) {
    tree.write(
        "hello.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n"),
    );
    tree.write(
        "hello@.service",
        "[Service]\nStandardInput=socket\nExecStart=/bin/echo hello\n",
    );
}

/// `other.socket` (`Accept=yes`, a unix socket in the tree) answers each
/// connection with `answered`: the unit that shows flint still serves.
pub fn answering_socket(tree: &Tree) -> std::path::PathBuf {
    let other = tree.path().join("other.sock");
    tree.write(
        "other.socket",
        &format!("[Socket]\nListenStream={}\nAccept=yes\n", other.display()),
    );
    tree.write(
        "other@.service",
        "[Service]\nStandardOutput=socket\nExecStart=/bin/echo answered\n",
    );
    other
}

/// Three connections to [`answering_socket`] are answered.
pub fn assert_answers(other: &Path, flint: &Flint) {
    for _ in 0..3 {
        let mut c = std::os::unix::net::UnixStream::connect(other).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{e}: {}", flint.log()));
        assert_eq!(text, "answered\n", "the other socket still answers");
    }
}

/// A cgroup of its own for a systemd manager a test starts as root. systemd
/// takes the cgroup it starts in as its root and moves every process of
/// that cgroup into its `init.scope`: started in the machine's root cgroup,
/// it would move every process of the machine (and later tests inherit
/// that cgroup, whose v1 `cpu` hierarchy has no real-time budget).
/// [`OwnCgroup::shell_lines`] moves the shell that starts systemd into the
/// new cgroup; dropping it removes what was made below it, in every
/// hierarchy.
pub struct OwnCgroup {
    pub name: String,
}

impl OwnCgroup {
    pub fn new(label: &str) -> OwnCgroup {
        OwnCgroup {
            name: format!("flint-test-{label}-{}", std::process::id()),
        }
    }

    /// Shell lines that move the shell (`$$`) into the cgroup, in the
    /// hierarchies systemd keeps its processes in (the unified one, and
    /// `name=systemd` beside v1 controllers).
    pub fn shell_lines(&self) -> String {
        format!(
            "for h in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do\n\
             \x20 if [ -f \"$h/cgroup.procs\" ]; then mkdir -p \"$h/{n}\" && echo $$ > \"$h/{n}/cgroup.procs\" || true; fi\n\
             done\n",
            n = self.name
        )
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        fn remove_tree(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        remove_tree(&e.path());
                    }
                }
            }
            // The last processes may still be leaving: a few tries.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            roots.extend(entries.flatten().map(|e| e.path()));
        }
        for root in roots {
            let dir = root.join(&self.name);
            if dir.is_dir() {
                remove_tree(&dir);
            }
        }
    }
}

/// systemd's manager, for the tests that run it as their reference; `None`
/// (said, and never in CI, which installs it) where it is not installed.
pub fn systemd_manager() -> Option<PathBuf> {
    let found = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(!in_ci(), "CI installs systemd");
        eprintln!("skipped: no systemd here");
    }
    found
}

/// Where the distribution keeps systemd's user units.
pub const USER_UNIT_DIRS: [&str; 2] = ["/usr/lib/systemd/user", "/lib/systemd/user"];

/// The user units a user manager needs to start and to exit.
pub const USER_MANAGER_UNITS: [&str; 5] = [
    "basic.target",
    "default.target",
    "exit.target",
    "systemd-exit.service",
    "shutdown.target",
];

/// Copies systemd's user units `names` into `dir` (made first): the only
/// units a reference user manager reads besides the test's, so that it
/// starts quickly and realizes no controller.
pub fn copy_user_units(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for t in names {
        for base in USER_UNIT_DIRS {
            if std::fs::copy(Path::new(base).join(t), dir.join(t)).is_ok() {
                break;
            }
        }
    }
}

/// Shell lines that start systemd's user manager `systemd` in the
/// background (with `XDG_RUNTIME_DIR=/run/user/0`) and wait, at most 10 s,
/// until its private socket listens.
pub fn start_user_manager(systemd: &Path) -> String {
    format!(
        "{} --user >/dev/null 2>&1 &\n\
         i=0; while [ ! -S /run/user/0/systemd/private ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n",
        systemd.display()
    )
}

/// The link `TREE/bin/NAME` to flint (flint called by a front's name),
/// made on first use.
pub fn link_as(tree: &Tree, name: &str) -> PathBuf {
    let link = tree.path().join("bin").join(name);
    if !link.exists() {
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(flint_bin(), &link).unwrap();
    }
    link
}

/// The main pid of `unit` in the flint on `control`, if it runs.
pub fn main_pid(control: &Path, unit: &str) -> Option<u64> {
    let (_, text) = ctl(control, &["--json", "status", unit]);
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    v["units"][0]["main_pid"].as_u64()
}

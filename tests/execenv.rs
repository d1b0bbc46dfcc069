//! The execution environment under `flint run`: scheduling, CPU affinity,
//! I/O priority, timer slack, coredump filter, personality and secure bits
//! as the service sees them in `/proc` and through the syscalls that read
//! them back; `StandardInput=tty` on a pseudo-terminal the test creates;
//! `StandardInput=fd:NAME` on a socket unit's FIFO; `file:` on an `AF_UNIX`
//! socket; and systemd's exit codes when the kernel refuses a setting. The
//! units used are also checked with systemd's own parser.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use common::{Flint, Tree, answering_socket, assert_answers, require, require_root, wait_for};

/// Reports what the process got, as one JSON object written to argv[1].
const REPORT: &str = r#"
import ctypes, json, os, subprocess, sys
pid = os.getpid()
stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
libc = ctypes.CDLL(None)
report = {
    "pid": pid,
    "nice": int(stat[16]),
    "tty_nr": int(stat[4]),
    "session": int(stat[3]),
    "affinity": sorted(os.sched_getaffinity(0)),
    "policy": os.sched_getscheduler(0),
    "priority": os.sched_getparam(0).sched_priority,
    "ionice": subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True).stdout.strip(),
    "timerslack": int(open("/proc/self/timerslack_ns").read()),
    "coredump": open("/proc/self/coredump_filter").read().strip(),
    "oom": int(open("/proc/self/oom_score_adj").read()),
    "machine": os.uname().machine,
    "securebits": libc.prctl(27, 0, 0, 0, 0),
    "capeff": status["CapEff"].strip(),
    "env": dict(os.environ),
}
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(report, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"#;

/// Waits (bounded) for the report the service writes.
fn report(path: &Path) -> Json {
    let text = wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(path).ok()
    })
    .expect("the service wrote its report");
    serde_json::from_str(&text).expect("report is JSON")
}

/// A oneshot service that runs the report program with `settings`.
fn report_unit(tree: &Tree, settings: &str) -> (String, std::path::PathBuf) {
    let py = tree.write("report.py", REPORT);
    let out = tree.path().join("report.json");
    (
        format!(
            "[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {} {}\n{settings}",
            py.display(),
            out.display()
        ),
        out,
    )
}

/// Settings an unprivileged manager may apply too.
const UNPRIVILEGED: &str = "Nice=7\nIOSchedulingClass=idle\nCPUAffinity=0\n\
    CPUSchedulingPolicy=batch\nCPUSchedulingResetOnFork=yes\nTimerSlackNSec=70us\n\
    CoredumpFilter=default private-dax\nOOMScoreAdjust=500\n";

#[test]
fn scheduling_affinity_and_process_settings_reach_the_service() {
    if !require("/usr/bin/python3", "the service reports through Python")
        || !require(
            "ionice",
            "the service reads its I/O priority with util-linux's ionice",
        )
    {
        return;
    }
    let tree = Tree::new();
    let personality = if cfg!(target_arch = "x86_64") {
        "Personality=x86\n"
    } else {
        ""
    };
    let (text, out) = report_unit(&tree, &format!("{UNPRIVILEGED}{personality}"));
    tree.write("p.service", &text);
    let flint = Flint::run(&tree, &["p.service"]);
    let r = report(&out);
    // The nice level survives the policy change that comes before it.
    assert_eq!(r["nice"], 7, "{r}");
    assert_eq!(r["ionice"], "idle", "{r}");
    assert_eq!(r["affinity"], serde_json::json!([0]), "{r}");
    // SCHED_BATCH | SCHED_RESET_ON_FORK
    assert_eq!(r["policy"], 3 | 0x4000_0000, "{r}");
    assert_eq!(r["timerslack"], 70_000, "{r}");
    // default (0x33) and private-dax (0x80)
    assert_eq!(r["coredump"], "000000b3", "{r}");
    assert_eq!(r["oom"], 500, "{r}");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(r["machine"], "i686", "{r}");
    }
    let env = &r["env"];
    assert_eq!(env["SYSTEMD_EXEC_PID"], r["pid"].to_string(), "{r}");
    assert_eq!(env["USER"], "root", "{r}");
    assert!(env.get("TERM").is_none(), "{r}");
    assert!(flint.wait_log("p.service: Deactivated successfully."));
}

#[test]
fn realtime_scheduling_negative_nice_and_secure_bits_as_root() {
    if !require_root("real-time policies, negative nice levels and secure bits need privileges")
        || !require("/usr/bin/python3", "the service reports through Python")
        || !require(
            "ionice",
            "the service reads its I/O priority with util-linux's ionice",
        )
    {
        return;
    }
    // A v1 `cpu` cgroup without a real-time budget (`cpu.rt_runtime_us`
    // 0, as in some containers) refuses SCHED_FIFO even to root, under
    // systemd as under flint.
    let probe = std::process::Command::new("chrt")
        .args(["-f", "10", "/bin/true"])
        .output();
    if probe.as_ref().is_ok_and(|o| !o.status.success()) {
        eprintln!(
            "skipped: this cgroup gives no real-time budget (chrt -f 10 fails: {})",
            String::from_utf8_lossy(&probe.unwrap().stderr).trim()
        );
        return;
    }
    let tree = Tree::new();
    let (text, out) = report_unit(
        &tree,
        "CPUSchedulingPolicy=fifo\nCPUSchedulingPriority=10\nIOSchedulingClass=realtime\n\
         IOSchedulingPriority=3\nNice=-5\nOOMScoreAdjust=-200\nSecureBits=noroot\n",
    );
    tree.write("rt.service", &text);
    let _flint = Flint::run(&tree, &["rt.service"]);
    let r = report(&out);
    assert_eq!(r["policy"], 1, "{r}");
    assert_eq!(r["priority"], 10, "{r}");
    assert_eq!(r["ionice"], "realtime: prio 3", "{r}");
    assert_eq!(r["nice"], -5, "{r}");
    // Lowering the OOM score needs CAP_SYS_RESOURCE, which containers often
    // drop; like systemd, flint then skips it instead of failing.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    // CAP_SYS_RESOURCE is capability 24.
    let sys_resource = cap_eff & (1 << 24) != 0;
    assert_eq!(r["oom"], if sys_resource { -200 } else { 0 }, "{r}");
    // SECBIT_NOROOT: root gained no capabilities from exec.
    assert_eq!(r["securebits"], 1, "{r}");
    assert_eq!(r["capeff"], "0000000000000000", "{r}");
}

#[test]
fn refused_settings_fail_with_systemds_exit_codes() {
    let tree = Tree::new();
    let units = [
        // SCHED_FIFO needs a priority of at least 1.
        (
            "sched.service",
            "CPUSchedulingPolicy=fifo\nCPUSchedulingPriority=0\n",
            "setting up CPU scheduling failed",
            214,
        ),
        // An empty CPU set: systemd keeps it and the kernel refuses it.
        (
            "affinity.service",
            "CPUAffinity=3-1\n",
            "setting up CPU affinity failed",
            215,
        ),
        // A class number the kernel does not define.
        (
            "ioprio.service",
            "IOSchedulingClass=5\n",
            "setting up IO scheduling priority failed",
            211,
        ),
    ];
    for (name, settings, _, _) in &units {
        tree.write(
            name,
            &format!("[Service]\nType=oneshot\nExecStart=/bin/true\n{settings}"),
        );
    }
    let names: Vec<&str> = units.iter().map(|u| u.0).collect();
    let flint = Flint::run(&tree, &names);
    for (name, _, what, code) in units {
        assert!(
            flint.wait_log(&format!("{name}: Failed with result 'exit-code'.")),
            "{name} fails; log:\n{}",
            flint.log()
        );
        let log = flint.log();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{name}:")) && l.contains("failed to start"))
            .unwrap_or_default();
        assert!(
            line.contains(what) && line.contains(&format!("exited with status {code}")),
            "{name}: {line}"
        );
    }
}

/// A pseudo-terminal: the master, the slave (kept open so the master reads
/// do not end) and the slave's path.
fn pty() -> (std::fs::File, std::fs::File, String) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new fds; name, termios and size may be null.
    let r = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    let path = std::fs::read_link(format!("/proc/self/fd/{slave}"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // SAFETY: both fds were just created by openpty and are owned here.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
            path,
        )
    }
}

/// Reads the master until `want` appeared (or 20 s passed); returns all.
fn read_until(master: &mut std::fs::File, seen: &mut String, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(want) {
        if Instant::now() > deadline {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on our own fd with a pollfd on our stack.
        if unsafe { libc::poll(&raw mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    true
}

/// `tty_nr` as `/proc/PID/stat` prints it for the terminal at `path`.
fn tty_nr(path: &str) -> u64 {
    let rdev = std::fs::metadata(path).unwrap().rdev();
    let (major, minor) = (u64::from(libc::major(rdev)), u64::from(libc::minor(rdev)));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

fn tty_unit(path: &str) -> String {
    format!(
        "[Service]\nType=oneshot\nStandardInput=tty\nTTYPath={path}\nTTYReset=yes\n\
         ExecStart=/bin/sh -c 'echo ready; read line; \
         echo \"got=$$line ctty=$$(cut -d\" \" -f7 /proc/$$$$/stat) sid=$$(cut -d\" \" -f6 /proc/$$$$/stat) pid=$$$$ term=$$TERM\"; \
         stty -a; echo done; read ack'\n"
    )
}

#[test]
fn standard_input_tty_is_the_controlling_terminal_and_output_goes_to_it() {
    let tree = Tree::new();
    let (mut master, slave, path) = pty();
    // Leave the terminal raw, as a crashed program would; TTYReset= fixes it.
    // SAFETY: tcgetattr/tcsetattr on our own slave fd, termios on the stack.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &raw mut t), 0);
        libc::cfmakeraw(&raw mut t);
        assert_eq!(
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &raw const t),
            0
        );
    }
    tree.write("t.service", &tty_unit(&path));
    let flint = Flint::run(&tree, &["t.service"]);
    let mut seen = String::new();
    assert!(
        read_until(&mut master, &mut seen, "ready\r\n"),
        "{seen:?}\n{}",
        flint.log()
    );
    master.write_all(b"hello\n").unwrap();
    assert!(read_until(&mut master, &mut seen, "done"), "{seen:?}");
    // Only now may the service end: at its stop flint resets the terminal
    // (`TTYReset=`), which flushes what the test has not read yet, as
    // systemd's reset does.
    master.write_all(b"ack\n").unwrap();
    let line = seen
        .lines()
        .find(|l| l.starts_with("got="))
        .expect("the service answered");
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("got="), "hello");
    assert_eq!(
        field("ctty=").parse::<u64>().unwrap(),
        tty_nr(&path),
        "{line}"
    );
    assert_eq!(field("sid="), field("pid="), "{line}");
    assert_eq!(field("term="), "vt220", "{line}");
    // Canonical mode and echo are back on (the echo of "hello" proves it too).
    assert!(
        seen.contains(" icanon ") && !seen.contains("-icanon"),
        "{seen}"
    );
    assert!(flint.wait_log("t.service: Deactivated successfully."));
    drop(slave);
}

#[test]
fn standard_output_and_error_tty_without_a_terminal_input() {
    let tree = Tree::new();
    let (mut master, _slave, path) = pty();
    tree.write(
        "o.service",
        &format!(
            "[Service]\nType=oneshot\nStandardOutput=tty\nStandardError=tty\nTTYPath={path}\n\
             ExecStart=/bin/sh -c 'echo out; echo err >&2; echo ctty=$$(cut -d\" \" -f7 /proc/$$$$/stat) end'\n"
        ),
    );
    let _flint = Flint::run(&tree, &["o.service"]);
    let mut seen = String::new();
    assert!(read_until(&mut master, &mut seen, " end"), "{seen:?}");
    assert!(seen.contains("out\r\nerr\r\nctty=0 end"), "{seen:?}");
}

/// Writes "hi" into the FIFO at `fifo` and returns the line the service
/// then writes to `out`.
fn feed_and_read(fifo: &Path, out: &Path) -> String {
    let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    w.write_all(b"hi\n").unwrap();
    wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(out)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .expect("the service read the FIFO and answered")
}

#[test]
fn standard_input_fd_name_reads_the_socket_units_fifo() {
    let tree = Tree::new();
    let fifo = tree.path().join("feed");
    let out = tree.path().join("out");
    tree.write(
        "f.socket",
        &format!(
            "[Socket]\nListenFIFO={}\nFileDescriptorName=feed\n",
            fifo.display()
        ),
    );
    tree.write(
        "f.service",
        &format!(
            "[Service]\nStandardInput=fd:feed\nStandardOutput=file:{}\n\
             ExecStart=/bin/sh -c 'read line; echo \"got $$line names=$$LISTEN_FDNAMES\"'\n",
            out.display()
        ),
    );
    let _flint = Flint::run(&tree, &["f.socket"]);
    assert_eq!(feed_and_read(&fifo, &out), "got hi names=feed\n");
}

/// A FIFO named by `StandardInput=file:` (or an output) that nobody has
/// open yet: opening it must not hold up flint, which keeps answering its
/// other sockets, and the service reads what a writer sends later.
#[test]
fn a_fifo_without_a_writer_holds_up_only_its_service() {
    let tree = Tree::new();
    let fifo = tree.path().join("in.fifo");
    let out_fifo = tree.path().join("out.fifo");
    let out = tree.path().join("out");
    for f in [&fifo, &out_fifo] {
        nix::unistd::mkfifo(f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let reader = tree.path().join("reader.sock");
    tree.write(
        "reader.socket",
        &format!("[Socket]\nListenStream={}\n", reader.display()),
    );
    tree.write(
        "reader.service",
        &format!(
            "[Service]\nStandardInput=file:{}\nStandardOutput=file:{}\n\
             ExecStart=/bin/sh -c 'read line; echo \"got $$line\" > {}'\n",
            fifo.display(),
            out_fifo.display(),
            out.display()
        ),
    );
    let other = answering_socket(&tree);
    let flint = Flint::run(&tree, &["reader.socket", "other.socket"]);
    // Starts reader.service, whose input and output are FIFOs no one opened.
    let _trigger = std::os::unix::net::UnixStream::connect(&reader).unwrap();
    assert!(
        flint.wait_log("reader.service: started"),
        "the service starts: {}",
        flint.log()
    );
    assert_answers(&other, &flint);
    assert_eq!(feed_and_read(&fifo, &out), "got hi\n");
}

#[test]
fn an_environment_file_that_blocks_holds_up_only_its_service() {
    // systemd reads EnvironmentFile= in the forked child; flint reads it on
    // the spawn's thread. A FIFO without a writer (as a file on a hung
    // network file system) holds up that service's start, not the others.
    let tree = Tree::new();
    let env_fifo = tree.path().join("env.fifo");
    nix::unistd::mkfifo(&env_fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let seen = tree.path().join("seen");
    tree.write(
        "waits.service",
        &format!(
            "[Service]\nEnvironmentFile={}\nExecStart=/bin/sh -c 'echo \"$$FROM_FIFO\" > {}; exec sleep 1000'\n",
            env_fifo.display(),
            seen.display()
        ),
    );
    let other = answering_socket(&tree);
    let flint = Flint::run(&tree, &["waits.service", "other.socket"]);
    assert_answers(&other, &flint);
    assert!(
        !flint.log().contains("waits.service: started"),
        "{}",
        flint.log()
    );
    // Once the file can be read, the service starts with what it says.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&env_fifo)
        .unwrap();
    w.write_all(b"FROM_FIFO=written later\n").unwrap();
    drop(w);
    let text = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .unwrap_or_else(|| panic!("waits.service did not start: {}", flint.log()));
    assert_eq!(text, "written later\n");
}

#[test]
fn standard_output_file_connects_to_an_af_unix_socket() {
    let tree = Tree::new();
    let sock = tree.path().join("sink");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    tree.write(
        "u.service",
        &format!(
            "[Service]\nType=oneshot\nStandardOutput=file:{}\nExecStart=/bin/echo through the socket\n",
            sock.display()
        ),
    );
    let _flint = Flint::run(&tree, &["u.service"]);
    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    assert_eq!(text, "through the socket\n");
}

/// systemd's parser accepts every unit used above without a warning, and
/// its test-mode dump holds the values `flint show` prints.
#[test]
fn systemd_reads_the_units_as_flint_does() {
    if !require("systemd-analyze", "systemd's parser is the oracle") {
        return;
    }
    let tree = Tree::new();
    let (report, _) = report_unit(
        &tree,
        &format!(
            "{UNPRIVILEGED}CPUAffinity=2-3\nIOSchedulingPriority=5\nSecureBits=noroot keep-caps\n"
        ),
    );
    let units = [
        ("p.service", report),
        (
            "rt.service",
            "[Service]\nExecStart=/bin/true\nCPUSchedulingPolicy=fifo\nCPUSchedulingPriority=10\n\
             IOSchedulingClass=realtime\nIOSchedulingPriority=3\nNice=-5\n"
                .to_string(),
        ),
        ("t.service", tty_unit("/dev/pts/9")),
        (
            "o.service",
            "[Service]\nExecStart=/bin/true\nStandardOutput=tty\nStandardError=tty\n\
             TTYPath=/dev/tty9\nTTYVHangup=yes\nTTYVTDisallocate=yes\n"
                .to_string(),
        ),
        (
            "f.socket",
            "[Socket]\nListenFIFO=/run/flint-test-feed\nFileDescriptorName=feed\n".to_string(),
        ),
        (
            "f.service",
            "[Service]\nStandardInput=fd:feed\nStandardOutput=file:/tmp/out\nExecStart=/bin/true\n"
                .to_string(),
        ),
    ];
    for (name, text) in &units {
        tree.write(name, text);
    }
    for (name, _) in &units {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(tree.path().join(name))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(name) || l.contains("ignoring"))
            .collect();
        assert!(
            out.status.success() && complaints.is_empty(),
            "systemd-analyze verify {name}: {stderr}"
        );
    }
    // The dump of systemd's test mode, for the values.
    let systemd = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(systemd) = systemd else {
        eprintln!("SKIP: dump comparison: systemd's binary is not installed");
        return;
    };
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(tree.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, _) in &units {
        std::fs::set_permissions(
            tree.path().join(name),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    tree.write(
        "test.target",
        "[Unit]\nWants=p.service rt.service o.service\n",
    );
    std::fs::set_permissions(
        tree.path().join("test.target"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", systemd]);
        c
    } else {
        Command::new(systemd)
    };
    let dump = cmd
        .args(["--test", "--system", "--unit=test.target", "--no-pager"])
        .env("SYSTEMD_UNIT_PATH", tree.path())
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let block = |unit: &str| -> Vec<(String, String)> {
        dump.split("-> Unit ")
            .find(|b| b.starts_with(&format!("{unit}:")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let dump_key = |k: &'static str| match k {
        "IOSchedulingPriority" => "IOPriority",
        "SecureBits" => "Secure Bits",
        k => k,
    };
    let mut compared = 0;
    for unit in ["p.service", "rt.service", "o.service"] {
        let sd = block(unit);
        assert!(!sd.is_empty(), "no dump for {unit}:\n{dump}");
        let show = Command::new(common::flint_bin())
            .args(["show", "--unit-dir"])
            .arg(tree.path())
            .arg(unit)
            .output()
            .unwrap();
        let show: Json = serde_json::from_slice(&show.stdout).expect("flint show prints JSON");
        let service = &show["settings"]["Service"];
        for key in [
            "Nice",
            "IOSchedulingClass",
            "IOSchedulingPriority",
            "CPUSchedulingPolicy",
            "CPUSchedulingPriority",
            "CPUSchedulingResetOnFork",
            "CPUAffinity",
            "TimerSlackNSec",
            "CoredumpFilter",
            "OOMScoreAdjust",
            "SecureBits",
            "TTYVHangup",
            "TTYVTDisallocate",
        ] {
            let Some(v) = service.get(key) else { continue };
            let flint = match &v["value"] {
                Json::String(s) => s.clone(),
                Json::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                other => other.to_string(),
            };
            let systemd = sd
                .iter()
                .find(|(k, _)| k == dump_key(key))
                .map(|(_, v)| v.clone());
            assert_eq!(Some(flint), systemd, "{unit} {key}; flint show: {v}");
            compared += 1;
        }
    }
    assert!(compared >= 18, "only {compared} values compared");
}

/// The `Cap*:` lines of /proc/PID/status a service wrote to `path`, by name.
fn capabilities(path: &Path) -> Option<std::collections::HashMap<String, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let caps: std::collections::HashMap<String, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((
                k.trim().to_string(),
                u64::from_str_radix(v.trim(), 16).ok()?,
            ))
        })
        .collect();
    (caps.len() == 5).then_some(caps)
}

#[test]
fn ambient_capabilities_and_the_bounding_set_reach_the_service() {
    if !require_root("switching users and changing capability sets need privileges") {
        return;
    }
    // kresd@.service: User=knot-resolver with AmbientCapabilities=
    // CAP_NET_BIND_SERVICE binds port 53. The service sees exactly what
    // systemd gives it: the ambient capability effective after the user
    // switch, and the bounding set cut to the named capabilities.
    let tree = Tree::new();
    let (dropped, root) = (tree.path().join("user"), tree.path().join("root"));
    std::fs::set_permissions(
        tree.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    tree.write(
        "user.service",
        &format!(
            "[Service]\nType=oneshot\nUser=nobody\n\
             AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW\nAmbientCapabilities=~CAP_NET_RAW\n\
             CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_CHOWN\n\
             ExecStart=/bin/sh -c 'grep ^Cap /proc/self/status > {}'\n",
            dropped.display()
        ),
    );
    tree.write(
        "root.service",
        &format!(
            "[Service]\nType=oneshot\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n\
             CapabilityBoundingSet=~CAP_SYS_ADMIN\n\
             ExecStart=/bin/sh -c 'grep ^Cap /proc/self/status > {}'\n",
            root.display()
        ),
    );
    let flint = Flint::run(&tree, &["user.service", "root.service"]);
    let user = wait_for(Duration::from_secs(10), || capabilities(&dropped))
        .unwrap_or_else(|| panic!("no capabilities from user.service\n{}", flint.log()));
    let bind = 1u64 << 10;
    let chown = 1u64 << 0;
    assert_eq!(user["CapAmb"], bind, "{user:?}");
    assert_eq!(user["CapEff"], bind, "{user:?}");
    assert_eq!(user["CapPrm"], bind, "{user:?}");
    assert_eq!(user["CapInh"], bind, "{user:?}");
    assert_eq!(user["CapBnd"], bind | chown, "{user:?}");
    let root = wait_for(Duration::from_secs(10), || capabilities(&root))
        .unwrap_or_else(|| panic!("no capabilities from root.service\n{}", flint.log()));
    let sys_admin = 1u64 << 21;
    assert_eq!(root["CapAmb"], bind, "{root:?}");
    assert_eq!(root["CapBnd"] & sys_admin, 0, "{root:?}");
    assert_ne!(root["CapBnd"] & chown, 0, "{root:?}");
}

/// `PermissionsStartOnly=yes` (Debian's `tor@default.service`): the
/// commands besides `ExecStart=` run as if prefixed with `+`: as root, with
/// the whole bounding set (tor's `ExecStartPre=` chowns its run directory
/// to its user with a bounding set without `CAP_CHOWN`; here a chown to
/// another user); the main process as `User=`, within the bounding set.
/// Without it, every command is.
#[test]
fn permissions_start_only_runs_the_other_commands_fully_privileged() {
    if !require_root("User=nobody and a chown to it") {
        return;
    }
    let tree = Tree::new();
    std::fs::set_permissions(
        tree.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = tree.path();
    for (name, extra) in [("only", "PermissionsStartOnly=yes\n"), ("all", "")] {
        tree.write(
            &format!("{name}.service"),
            &format!(
                "[Service]\nType=oneshot\nUser=nobody\n{extra}\
                 CapabilityBoundingSet=CAP_SETUID CAP_SETGID\n\
                 ExecStartPre=-/bin/sh -c 'id -u > {d}/{name}.pre; mkdir -p {d}/{name}.dir && chown 1:1 {d}/{name}.dir && echo ok >> {d}/{name}.pre'\n\
                 ExecStart=/bin/sh -c 'id -u > {d}/{name}.main'\n\
                 ExecStartPost=/bin/sh -c 'id -u > {d}/{name}.post'\n",
                d = out.display()
            ),
        );
    }
    let flint = Flint::run(&tree, &["only.service", "all.service"]);
    let read = |f: &str| {
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(out.join(f))
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| panic!("no {f}\n{}", flint.log()))
    };
    let nobody = read("only.main");
    assert_ne!(nobody.trim(), "0");
    assert_eq!(read("only.pre"), "0\nok\n", "{}", flint.log());
    assert_eq!(read("only.post").trim(), "0");
    assert_eq!(read("all.main"), nobody);
    assert_eq!(read("all.pre").trim(), nobody.trim(), "{}", flint.log());
    assert_eq!(read("all.post"), nobody);
}

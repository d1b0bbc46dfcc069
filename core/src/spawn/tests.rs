//! Spawn tests: each starts `/bin/sh -c` with a script that inspects its own
//! process through `/proc/$$` and reports on stdout, which the test reads
//! through a pipe.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use super::*;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("test strings have no NUL")
}

fn sh(script: &str) -> ExecPlan {
    ExecPlan::new(cstr("/bin/sh"), vec![cstr("sh"), cstr("-c"), cstr(script)])
}

/// Runs `plan` with stdout on a pipe; returns what it printed and how it ended.
fn run(mut plan: ExecPlan) -> (String, ExitStatus) {
    let (mut reader, writer) = io::pipe().expect("pipe");
    plan.stdout = Stdio::Fd(writer.as_raw_fd());
    let child = spawn(&plan).expect("spawn");
    drop(writer);
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("read child output");
    let status = child.wait_blocking().expect("wait");
    (out, status)
}

fn run_ok(plan: ExecPlan) -> String {
    let (out, status) = run(plan);
    assert_eq!(status, ExitStatus::Exited(0), "output: {out}");
    out
}

/// `flags:` of /proc/PID/fdinfo/N lines as printed by `grep -H`, keyed by fd.
fn fdinfo_flags(out: &str) -> Vec<(String, u32)> {
    out.lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(":flags:")?;
            let fd = path.rsplit('/').next()?.to_string();
            let flags = u32::from_str_radix(rest.trim(), 8).ok()?;
            Some((fd, flags))
        })
        .collect()
}

fn flags_of(flags: &[(String, u32)], fd: &str) -> u32 {
    flags
        .iter()
        .find(|(f, _)| f == fd)
        .map_or_else(|| panic!("no fdinfo for fd {fd} in {flags:?}"), |(_, v)| *v)
}

const O_CLOEXEC_BIT: u32 = 0o2_000_000;
const O_NONBLOCK_BIT: u32 = 0o4000;

fn read_all(mut reader: io::PipeReader) -> String {
    let mut s = String::new();
    reader.read_to_string(&mut s).expect("read");
    s
}

#[test]
fn fds_arrive_at_3_in_order_without_cloexec() {
    let (ra, wa) = io::pipe().expect("pipe");
    let (rb, wb) = io::pipe().expect("pipe");
    let mut plan =
        sh("echo one >&3; echo two >&4; grep -H flags /proc/$$/fdinfo/3 /proc/$$/fdinfo/4");
    plan.fds = vec![
        PassFd {
            fd: wa.as_raw_fd(),
            nonblocking: None,
        },
        PassFd {
            fd: wb.as_raw_fd(),
            nonblocking: None,
        },
    ];
    let out = run_ok(plan);
    drop((wa, wb));
    assert_eq!(read_all(ra), "one\n");
    assert_eq!(read_all(rb), "two\n");
    let flags = fdinfo_flags(&out);
    assert_eq!(flags_of(&flags, "3") & O_CLOEXEC_BIT, 0, "{out}");
    assert_eq!(flags_of(&flags, "4") & O_CLOEXEC_BIT, 0, "{out}");
}

/// Two sources that sit exactly on each other's target slots (source `a`
/// goes to fd `b` and source `b` to fd `a`): a naive dup2 loop would
/// overwrite one before copying it.
#[test]
fn overlapping_sources_are_swapped_correctly() {
    let (ra, wa) = io::pipe().expect("pipe");
    let (rb, wb) = io::pipe().expect("pipe");
    let dup_high = |fd: RawFd, min: RawFd| -> OwnedFd {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we own.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
        assert!(new >= 0, "fcntl: {}", io::Error::last_os_error());
        // SAFETY: `new` is a fresh fd owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(new) }
    };
    let a = dup_high(wa.as_raw_fd(), 100);
    let b = dup_high(wb.as_raw_fd(), a.as_raw_fd() + 1);
    drop((wa, wb));
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let (a_fd, b_fd) = (a.as_raw_fd(), b.as_raw_fd());
    let count = usize::try_from(b_fd - 2).expect("positive");
    let mut fds = vec![
        PassFd {
            fd: null.as_raw_fd(),
            nonblocking: None,
        };
        count
    ];
    let slot = |fd: RawFd| usize::try_from(fd - 3).expect("fd above 3");
    fds[slot(a_fd)].fd = b_fd;
    fds[slot(b_fd)].fd = a_fd;
    let mut plan = sh(&format!(
        "echo to_fd_a > /proc/$$/fd/{a_fd}; echo to_fd_b > /proc/$$/fd/{b_fd}; ls /proc/$$/fd; true"
    ));
    plan.fds = fds;
    let listed = run_ok(plan);
    let expected: Vec<String> = (0..count + 3).map(|fd| fd.to_string()).collect();
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_by_key(|fd| fd.parse::<usize>().unwrap_or(usize::MAX));
    assert_eq!(listed, expected);
    drop((a, b));
    assert_eq!(read_all(ra), "to_fd_b\n", "fd a must carry source b");
    assert_eq!(read_all(rb), "to_fd_a\n", "fd b must carry source a");
}

#[test]
fn every_other_fd_is_closed() {
    // A pipe without CLOEXEC, as a careless library would leave one.
    let mut raw = [-1; 2];
    // SAFETY: pipe writes two new fds into `raw`.
    assert_eq!(unsafe { libc::pipe(raw.as_mut_ptr()) }, 0);
    // SAFETY: both fds are fresh and owned by nobody else.
    let leaked = unsafe { [OwnedFd::from_raw_fd(raw[0]), OwnedFd::from_raw_fd(raw[1])] };
    let (_r, w) = io::pipe().expect("pipe");
    let mut plan = sh("ls /proc/$$/fd; true");
    plan.fds = vec![PassFd {
        fd: w.as_raw_fd(),
        nonblocking: None,
    }];
    plan.stderr = Stdio::Null;
    let out = run_ok(plan);
    assert_eq!(out, "0\n1\n2\n3\n", "leaked fds {leaked:?}");
}

#[test]
fn nonblocking_flag_is_set_per_fd_and_stdio_sockets_are_made_blocking() {
    let (s1, _p1) = UnixStream::pair().expect("socketpair");
    let (s2, _p2) = UnixStream::pair().expect("socketpair");
    let (s3, _p3) = UnixStream::pair().expect("socketpair");
    s2.set_nonblocking(true).expect("nonblocking");
    s3.set_nonblocking(true).expect("nonblocking");
    let mut plan = sh("grep -H flags /proc/$$/fdinfo/0 /proc/$$/fdinfo/3 /proc/$$/fdinfo/4");
    plan.fds = vec![
        PassFd {
            fd: s1.as_raw_fd(),
            nonblocking: Some(true),
        },
        PassFd {
            fd: s2.as_raw_fd(),
            nonblocking: Some(false),
        },
    ];
    plan.stdin = Stdio::Fd(s3.as_raw_fd());
    let out = run_ok(plan);
    let flags = fdinfo_flags(&out);
    assert_ne!(flags_of(&flags, "3") & O_NONBLOCK_BIT, 0, "{out}");
    assert_eq!(flags_of(&flags, "4") & O_NONBLOCK_BIT, 0, "{out}");
    assert_eq!(flags_of(&flags, "0") & O_NONBLOCK_BIT, 0, "{out}");
}

#[test]
fn listen_pid_is_the_pid_that_execs_the_service() {
    let mut plan = sh("echo $$; tr '\\0' '\\n' < /proc/$$/environ");
    plan.env = vec![cstr("FOO=bar"), cstr("LISTEN_PID=1"), cstr("LISTEN_FDS=1")];
    plan.listen_pid_slot = true;
    let mut plan_with_stdout = plan.clone();
    let (mut reader, writer) = io::pipe().expect("pipe");
    plan_with_stdout.stdout = Stdio::Fd(writer.as_raw_fd());
    let child = spawn(&plan_with_stdout).expect("spawn");
    drop(writer);
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("read");
    let mut lines = out.lines();
    let pid = lines.next().expect("pid line");
    assert_eq!(pid, child.pid.to_string());
    let env: Vec<&str> = lines.collect();
    assert_eq!(
        &env[..3],
        ["FOO=bar", "LISTEN_FDS=1", &format!("LISTEN_PID={pid}")]
    );

    // LISTEN_PIDFDID is there exactly when pidfds carry stable inode ids.
    // SAFETY: statfs is plain data; fstatfs writes only into it.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on our own pidfd.
    let on_pidfs = unsafe { libc::fstatfs(child.pidfd.as_raw_fd(), &raw mut fs) } == 0
        && fs.f_type == 0x5049_4446;
    if on_pidfs {
        let ino = std::fs::File::from(child.pidfd.try_clone().expect("dup"))
            .metadata()
            .expect("fstat")
            .ino();
        assert_eq!(env[3..], [format!("LISTEN_PIDFDID={ino}")]);
    } else {
        assert_eq!(env.len(), 3, "{env:?}");
    }
    assert_eq!(child.wait_blocking().expect("wait"), ExitStatus::Exited(0));
}

#[test]
fn environment_is_exactly_as_given() {
    let mut plan = sh("tr '\\0' '\\n' < /proc/$$/environ");
    plan.env = vec![cstr("A=1"), cstr("B=two words"), cstr("LISTEN_PID=7")];
    let out = run_ok(plan);
    assert_eq!(out, "A=1\nB=two words\nLISTEN_PID=7\n");
}

#[test]
fn working_directory_and_umask_are_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plan = sh("readlink /proc/$$/cwd; umask");
    plan.cwd = Some(cstr(dir.path().to_str().expect("utf-8 tempdir")));
    plan.umask = 0o027;
    let out = run_ok(plan);
    let canonical = dir.path().canonicalize().expect("canonical");
    assert_eq!(out, format!("{}\n0027\n", canonical.display()));
}

#[test]
fn rlimit_nofile_is_applied() {
    let mut plan = sh("grep 'Max open files' /proc/$$/limits");
    plan.rlimits = vec![(libc::RLIMIT_NOFILE.cast_signed(), 321, 654)];
    let out = run_ok(plan);
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[3..5], ["321", "654"], "{out}");
}

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map_or_else(|| panic!("no {name} in {status}"), |v| v.trim().to_string())
}

fn sigmask(status: &str, name: &str) -> u64 {
    u64::from_str_radix(&status_field(status, name), 16).expect("hex mask")
}

#[test]
fn sigpipe_is_ignored_by_default_and_the_mask_is_empty() {
    let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
    let out = run_ok(sh("exec cat /proc/self/status"));
    assert_ne!(sigmask(&out, "SigIgn:") & sigpipe_bit, 0, "{out}");
    assert_eq!(sigmask(&out, "SigBlk:"), 0, "{out}");

    let mut plan = sh("exec cat /proc/self/status");
    plan.ignore_sigpipe = false;
    let out = run_ok(plan);
    assert_eq!(sigmask(&out, "SigIgn:") & sigpipe_bit, 0, "{out}");
}

#[test]
fn child_leads_a_new_session() {
    let stat_fields = |out: &str| -> (String, String) {
        let f: Vec<&str> = out.split_whitespace().collect();
        (f[0].to_string(), f[5].to_string())
    };
    let (pid, sid) = stat_fields(&run_ok(sh("cat /proc/$$/stat")));
    assert_eq!(pid, sid);

    let mut plan = sh("cat /proc/$$/stat");
    plan.new_session = false;
    let (pid, sid) = stat_fields(&run_ok(plan));
    assert_ne!(pid, sid);
}

#[test]
fn stdin_null_is_dev_null() {
    let out = run_ok(sh("readlink /proc/$$/fd/0"));
    assert_eq!(out, "/dev/null\n");
}

#[test]
fn nice_oom_score_and_no_new_privileges_are_applied() {
    let mut plan = sh("cut -d' ' -f19 /proc/$$/stat; cat /proc/$$/oom_score_adj; \
                      grep NoNewPrivs /proc/$$/status");
    plan.nice = Some(7);
    plan.oom_score_adjust = Some(300);
    plan.no_new_privileges = true;
    let out = run_ok(plan);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "7");
    assert_eq!(lines[1], "300");
    assert_eq!(lines[2].split_whitespace().nth(1), Some("1"), "{out}");
}

#[test]
fn exec_of_a_missing_file_reports_enoent_and_203() {
    let plan = ExecPlan::new(cstr("/nonexistent/flint-test"), vec![cstr("x")]);
    let err = spawn(&plan).expect_err("must fail");
    assert!(
        matches!(
            err,
            SpawnError::Child {
                step: ChildStep::Exec,
                errno: libc::ENOENT
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), Some(203));
    assert!(err.to_string().contains("executing the program"), "{err}");
}

#[test]
fn bad_working_directory_reports_200_unless_optional() {
    let mut plan = sh("exit 0");
    plan.cwd = Some(cstr("/nonexistent/flint-dir"));
    let err = spawn(&plan).expect_err("must fail");
    assert!(
        matches!(
            err,
            SpawnError::Child {
                step: ChildStep::Chdir,
                errno: libc::ENOENT
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), Some(200));

    plan.cwd_optional = true;
    assert_eq!(run(plan).1, ExitStatus::Exited(0));
}

#[test]
fn bad_limit_reports_205() {
    let mut plan = sh("exit 0");
    plan.rlimits = vec![(libc::RLIMIT_NOFILE.cast_signed(), 100, 10)];
    let err = spawn(&plan).expect_err("soft above hard must fail");
    assert_eq!(err.exit_code(), Some(205), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
}

#[test]
fn bad_fd_reports_202() {
    let mut plan = sh("exit 0");
    plan.fds = vec![PassFd {
        fd: 1_000_000,
        nonblocking: None,
    }];
    let err = spawn(&plan).expect_err("must fail");
    assert_eq!(err.exit_code(), Some(202), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EBADF));
}

#[test]
fn exit_status_and_signals_are_reported() {
    let (_, status) = run(sh("exit 42"));
    assert_eq!(status, ExitStatus::Exited(42));

    let child = spawn(&sh("exec sleep 30")).expect("spawn");
    assert_eq!(child.try_wait().expect("try_wait"), None);
    child.send_signal(libc::SIGKILL).expect("kill");
    assert_eq!(
        child.wait_blocking().expect("wait"),
        ExitStatus::Signaled {
            signal: libc::SIGKILL,
            core_dumped: false
        }
    );
}

#[tokio::test]
async fn wait_through_tokio() {
    let child = spawn(&sh("sleep 0.1; exit 3")).expect("spawn");
    assert_eq!(child.wait().await.expect("wait"), ExitStatus::Exited(3));
}

#[test]
fn user_group_and_supplementary_groups_are_switched() {
    // SAFETY: geteuid has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping user_group_and_supplementary_groups_are_switched: needs root");
        return;
    }
    let mut plan = sh("exec cat /proc/self/status");
    plan.uid = Some(65534);
    plan.gid = Some(65533);
    plan.groups = Some(vec![65532, 65531]);
    let out = run_ok(plan);
    let ids = |name| {
        status_field(&out, name)
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("Uid:"), ["65534"; 4]);
    assert_eq!(ids("Gid:"), ["65533"; 4]);
    assert_eq!(ids("Groups:"), ["65531", "65532"]);

    // Without an explicit list, root's supplementary groups are not kept.
    let mut plan = sh("exec cat /proc/self/status");
    plan.uid = Some(65534);
    let out = run_ok(plan);
    assert_eq!(status_field(&out, "Groups:"), "");
}

#[test]
fn write_entry_formats_without_allocating() {
    let mut buf = [0xffu8; 40];
    assert!(child::write_entry(&mut buf, b"LISTEN_PID=", 0));
    assert_eq!(&buf[..13], b"LISTEN_PID=0\0");
    assert!(child::write_entry(&mut buf, b"LISTEN_PID=", u64::MAX));
    assert_eq!(&buf[..32], b"LISTEN_PID=18446744073709551615\0");
    let mut small = [0u8; 12];
    assert!(!child::write_entry(&mut small, b"LISTEN_PID=", 12));
}

#[test]
fn child_steps_round_trip_and_map_to_systemd_exit_codes() {
    for step in ChildStep::ALL {
        assert_eq!(ChildStep::from_wire(step as u32), Some(step));
        assert!((200..=243).contains(&step.exit_code()));
    }
    assert_eq!(ChildStep::Setuid.exit_code_name(), "USER");
    assert_eq!(ChildStep::Groups.exit_code(), 216);
}

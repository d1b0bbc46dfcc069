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
fn signals_flint_ignores_are_not_ignored_in_the_service() {
    // Two signals outside the usual set, ignored in flint: the child must
    // find them through flint's dispositions and put them back.
    let signals = [libc::SIGURG, libc::SIGRTMIN() + 6];
    let set = |handler: libc::sighandler_t| {
        super::child::changing_dispositions(|| {
            for signal in signals {
                // SAFETY: sigaction is plain data; all-zero plus the handler
                // is a valid action. SIG_IGN and SIG_DFL run no code.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = handler;
                    assert_eq!(
                        libc::sigaction(signal, &raw const action, std::ptr::null_mut()),
                        0
                    );
                }
            }
        });
    };
    // Both ways of cloning: clone3() has the kernel put the handlers back
    // (the child resets only what is ignored), clone() leaves them all to
    // the child.
    let _one = CLONE3_FALLBACK_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut seen = Vec::new();
    for fallback in [false, true] {
        FORCE_CLONE3_FALLBACK.store(fallback, std::sync::atomic::Ordering::SeqCst);
        set(libc::SIG_IGN);
        seen.push(run_ok(sh("exec cat /proc/self/status")));
        set(libc::SIG_DFL);
    }
    FORCE_CLONE3_FALLBACK.store(false, std::sync::atomic::Ordering::SeqCst);
    for out in seen {
        let ignored = sigmask(&out, "SigIgn:");
        for signal in signals {
            assert_eq!(
                ignored & (1u64 << (signal - 1)),
                0,
                "signal {signal}: {out}"
            );
        }
        assert_ne!(ignored & (1u64 << (libc::SIGPIPE - 1)), 0, "{out}");
        assert_eq!(sigmask(&out, "SigCgt:"), 0, "{out}");
    }
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
    // Read-only as stdin, write-only as stderr (systemd's open_null_as()).
    let mut plan = sh("grep flags /proc/$$/fdinfo/0 /proc/$$/fdinfo/2");
    plan.stderr = Stdio::Null;
    let out = run_ok(plan);
    let access = |fd: u8| {
        out.lines()
            .find(|l| l.contains(&format!("fdinfo/{fd}:")))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|f| u32::from_str_radix(f, 8).ok())
            .map(|f| f & 3)
    };
    assert_eq!(access(0), Some(0), "{out}");
    assert_eq!(access(2), Some(1), "{out}");
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
                errno: libc::ENOENT,
                ..
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
                errno: libc::ENOENT,
                ..
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

#[test]
fn scheduling_affinity_io_priority_timer_slack_and_coredump_filter_are_applied() {
    let mut plan = sh(
        "cut -d' ' -f19 /proc/$$/stat; grep '^policy' /proc/$$/sched; \
                      grep Cpus_allowed_list /proc/$$/status; ionice -p $$; \
                      cat /proc/$$/timerslack_ns /proc/$$/coredump_filter",
    );
    plan.cpu_sched = Some(CpuSched {
        policy: libc::SCHED_BATCH as u32,
        priority: 0,
        reset_on_fork: true,
    });
    // sched_setattr() resets the nice level: it must come first.
    plan.nice = Some(5);
    plan.cpu_affinity = Some(vec![1]);
    plan.ioprio = Some(3 << 13); // idle, level 0
    plan.timer_slack_nsec = Some(70_000);
    plan.coredump_filter = Some(0x3f);
    let out = run_ok(plan);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "5", "{out}");
    // SCHED_BATCH | SCHED_RESET_ON_FORK as /proc shows it.
    assert!(
        lines[1].ends_with(" 3") || lines[1].ends_with(" 1073741827"),
        "{out}"
    );
    assert!(lines[2].ends_with("\t0"), "{out}");
    assert_eq!(lines[3], "idle", "{out}");
    assert_eq!(lines[4], "70000", "{out}");
    assert_eq!(lines[5], "0000003f", "{out}");
}

/// The child is made on the spawning thread's CPU alone (`cpu.rs`); what
/// it execs has the CPUs the spawning thread had, and so has the thread,
/// whichever way the child is cloned. A unit's `CPUAffinity=` wins.
#[test]
fn a_child_without_cpu_affinity_has_the_spawners_cpus() {
    let _one = CLONE3_FALLBACK_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::thread::spawn(|| {
        let own = || {
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .unwrap()
                .to_owned()
        };
        let before = own();
        // Other tests spawn beside this one: every spawn of this test is
        // pinned, as after a quiet spell.
        super::cpu::ALWAYS.store(true, std::sync::atomic::Ordering::SeqCst);
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            eprintln!("one CPU: a child left on one CPU would look the same here");
        } else {
            assert!(super::cpu::Here::pin().is_some(), "the spawner is pinned");
            assert_eq!(own(), before, "and puts its CPUs back");
        }
        for fallback in [false, true] {
            FORCE_CLONE3_FALLBACK.store(fallback, std::sync::atomic::Ordering::SeqCst);
            let out = run_ok(sh("grep Cpus_allowed_list: /proc/$$/status"));
            assert_eq!(out.trim_end(), before, "the service's CPUs ({fallback})");
            assert_eq!(own(), before, "the spawning thread's CPUs ({fallback})");
        }
        FORCE_CLONE3_FALLBACK.store(false, std::sync::atomic::Ordering::SeqCst);
        super::cpu::ALWAYS.store(false, std::sync::atomic::Ordering::SeqCst);
        // The lowest CPU this thread may run on, as the unit's one CPU.
        let first: u32 = before
            .trim_start_matches("Cpus_allowed_list:\t")
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap();
        if first < 64 {
            let mut plan = sh("grep Cpus_allowed_list: /proc/$$/status");
            plan.cpu_affinity = Some(vec![1 << first]);
            assert_eq!(
                run_ok(plan).trim_end(),
                format!("Cpus_allowed_list:\t{first}"),
                "the unit's CPUAffinity="
            );
        }
    })
    .join()
    .unwrap();
}

#[test]
#[cfg(target_arch = "x86_64")]
fn personality_of_the_secondary_architecture() {
    let mut plan = sh("uname -m");
    plan.personality = Some(0x0008); // PER_LINUX32
    assert_eq!(run_ok(plan), "i686\n");
}

#[test]
fn process_attribute_failures_carry_systemds_exit_codes() {
    let fail = |plan: ExecPlan, step: ChildStep, code: i32| {
        let err = spawn(&plan).expect_err("must fail");
        assert!(
            matches!(err, SpawnError::Child { step: s, .. } if s == step),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), Some(code));
    };
    // SCHED_FIFO needs a priority of at least 1.
    let mut plan = sh("exit 0");
    plan.cpu_sched = Some(CpuSched {
        policy: libc::SCHED_FIFO as u32,
        priority: 0,
        reset_on_fork: false,
    });
    fail(plan, ChildStep::CpuScheduling, 214);
    // An empty CPU set (`CPUAffinity=3-1`).
    let mut plan = sh("exit 0");
    plan.cpu_affinity = Some(vec![0]);
    fail(plan, ChildStep::CpuAffinity, 215);
    // An I/O scheduling class the kernel does not know.
    let mut plan = sh("exit 0");
    plan.ioprio = Some(5 << 13);
    fail(plan, ChildStep::IoPriority, 211);
    // Secure bits the kernel does not define.
    let mut plan = sh("exit 0");
    plan.secure_bits = Some(1 << 20);
    fail(plan, ChildStep::SecureBits, 213);
    assert_eq!(ChildStep::TimerSlack.exit_code(), 212);
    assert_eq!(ChildStep::Personality.exit_code(), 230);
    assert_eq!(ChildStep::CoredumpFilter.exit_code_name(), "LIMITS");
    assert_eq!(ChildStep::TtyOwner.exit_code(), 208);
}

#[test]
fn unchanged_secure_bits_need_no_privilege() {
    let mut plan = sh("exit 0");
    plan.secure_bits = Some(0);
    run_ok(plan);
}

#[test]
fn pid_variables_hold_the_pid_that_execs() {
    let mut plan = sh("echo $$ $SYSTEMD_EXEC_PID $WATCHDOG_PID");
    plan.pid_vars = vec![cstr("SYSTEMD_EXEC_PID"), cstr("WATCHDOG_PID")];
    let out = run_ok(plan);
    let pids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(pids.len(), 3, "{out}");
    assert!(pids.iter().all(|p| *p == pids[0]), "{out}");
}

/// A pseudo-terminal: the master, an open slave and the slave's path.
pub(crate) fn pty() -> (std::fs::File, std::fs::File, String) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new fds; the name, termios and winsize
    // arguments may be null.
    let r = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", io::Error::last_os_error());
    let path = std::fs::read_link(format!("/proc/self/fd/{slave}"))
        .expect("slave path")
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

/// Reads the master until `want` appeared or 10 s passed.
fn read_master(master: &mut std::fs::File, want: &str) -> String {
    let fd = master.as_raw_fd();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&out).contains(want) && std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on our own fd with a pollfd on our stack.
        if unsafe { libc::poll(&raw mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tty_plan(script: &str, path: &str, mode: TtyAcquire) -> ExecPlan {
    let mut plan = sh(script);
    plan.tty_path = Some(cstr(path));
    plan.stdin = Stdio::TtyInput(mode);
    plan.stdout = Stdio::SameAsStdin;
    plan.stderr = Stdio::SameAsStdout;
    plan
}

#[test]
fn tty_input_becomes_the_controlling_terminal() {
    let (mut master, _slave, path) = pty();
    let plan = tty_plan(
        "echo ctty=$(cut -d' ' -f7 /proc/$$/stat) sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$; \
         readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2",
        &path,
        TtyAcquire::Try,
    );
    let child = spawn(&plan).expect("spawn");
    let out = read_master(&mut master, "/fd/2");
    let out = out + &read_master(&mut master, &format!("{path}\r\n{path}\r\n{path}"));
    assert_eq!(
        child.wait_blocking().unwrap(),
        ExitStatus::Exited(0),
        "{out}"
    );
    let rdev = std::fs::metadata(&path).unwrap().rdev();
    // tty_nr of /proc/PID/stat: minor in bits 0-7 and 20-31, major in 8-15.
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let tty_nr = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    assert!(out.contains(&format!("ctty={tty_nr} ")), "{out}");
    let pid = child.pid;
    assert!(out.contains(&format!("sid={pid} pid={pid}")), "{out}");
    assert_eq!(out.matches(path.as_str()).count(), 3, "{out}");
}

#[test]
fn tty_fail_refuses_and_tty_waits_for_a_terminal_held_by_another_session() {
    let (mut master, _slave, path) = pty();
    let holder = spawn(&tty_plan("echo held; sleep 1", &path, TtyAcquire::Try)).expect("spawn");
    read_master(&mut master, "held");
    let err = spawn(&tty_plan("exit 0", &path, TtyAcquire::Try)).expect_err("held elsewhere");
    assert!(
        matches!(
            err,
            SpawnError::Child {
                step: ChildStep::Stdin,
                errno: libc::EPERM,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), Some(208));
    // `tty` waits until the holder's session closes the terminal.
    let started = std::time::Instant::now();
    let waiter = spawn(&tty_plan("echo mine", &path, TtyAcquire::Wait)).expect("spawn");
    assert_eq!(holder.wait_blocking().unwrap(), ExitStatus::Exited(0));
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert!(read_master(&mut master, "mine").contains("mine"));
    assert_eq!(waiter.wait_blocking().unwrap(), ExitStatus::Exited(0));
}

#[test]
fn tty_output_is_write_only_and_never_the_controlling_terminal() {
    let (mut master, _slave, path) = pty();
    let mut plan = sh("echo ctty=$(cut -d' ' -f7 /proc/$$/stat); grep flags /proc/$$/fdinfo/1");
    plan.tty_path = Some(cstr(&path));
    plan.stdout = Stdio::TtyOutput;
    let child = spawn(&plan).expect("spawn");
    let out = read_master(&mut master, "flags:");
    let out = out + &read_master(&mut master, "\n");
    assert_eq!(child.wait_blocking().unwrap(), ExitStatus::Exited(0));
    assert!(out.contains("ctty=0"), "{out}");
    let flags = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .expect("flags");
    assert_eq!(flags & 0o3, libc::O_WRONLY as u32, "{out}");
}

#[test]
fn terminal_reset_hangup_disallocate_and_owner() {
    let (mut master, slave, path) = pty();
    // Leave the terminal in raw mode, as a crashed program would.
    // SAFETY: tcgetattr/tcsetattr on our own slave fd with a termios on the stack.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &raw mut t), 0);
        libc::cfmakeraw(&raw mut t);
        assert_eq!(
            libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &raw const t),
            0
        );
    }
    let mut plan = tty_plan("stty -a; echo done", &path, TtyAcquire::Try);
    plan.tty_reset = TtyReset {
        reset: true,
        vhangup: true,
        vt_disallocate: true,
        vt: None,
        keyboard_mode: 3,
    };
    plan.tty_owner = Some(65534);
    let child = spawn(&plan).expect("spawn");
    let out = read_master(&mut master, "done");
    assert_eq!(
        child.wait_blocking().unwrap(),
        ExitStatus::Exited(0),
        "{out}"
    );
    // Cleared (not a virtual console), then sane settings again.
    assert!(out.starts_with("\x1b[r\x1b[H\x1b[3J"), "{out:?}");
    assert!(out.contains(" icanon ") && out.contains(" echo "), "{out}");
    // The hangup took the terminal away from our earlier fd.
    let mut old = &slave;
    assert!(std::io::Write::write(&mut old, b"x").is_err());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.uid(), 65534);
        assert_eq!(meta.mode() & 0o7777, 0o620);
    }
}

/// Makes `clone_child` take the path of kernels without `clone3()`.
pub(super) static FORCE_CLONE3_FALLBACK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Held by the tests that set [`FORCE_CLONE3_FALLBACK`], one at a time.
static CLONE3_FALLBACK_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A fresh cgroup below this process's own, where that can be written.
fn scratch_cgroup() -> Option<std::path::PathBuf> {
    let dir = crate::cgroup::own_directory()
        .ok()?
        .join(format!("flint-spawn-test-{}", std::process::id()));
    std::fs::create_dir(&dir).ok()?;
    Some(dir)
}

#[test]
fn the_child_starts_in_its_cgroup_with_clone3_and_without() {
    let Some(dir) = scratch_cgroup() else {
        eprintln!("SKIP: no writable cgroup v2 directory (needs root and the unified hierarchy)");
        return;
    };
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let _one = CLONE3_FALLBACK_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut seen = Vec::new();
    // clone3(), clone3() failing, and clone() after a failure that will
    // not change.
    for (fallback, missing) in [(false, false), (true, false), (false, true)] {
        FORCE_CLONE3_FALLBACK.store(fallback, std::sync::atomic::Ordering::SeqCst);
        super::CLONE3_MISSING.store(missing, std::sync::atomic::Ordering::SeqCst);
        let mut plan = sh("cat /proc/self/cgroup; sh -c 'cat /proc/self/cgroup'");
        plan.cgroup = Some(cstr(dir.to_str().unwrap()));
        seen.push(run_ok(plan));
    }
    FORCE_CLONE3_FALLBACK.store(false, std::sync::atomic::Ordering::SeqCst);
    super::CLONE3_MISSING.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = std::fs::remove_dir(&dir);
    for out in seen {
        let unified: Vec<&str> = out.lines().filter(|l| l.starts_with("0::")).collect();
        assert_eq!(unified.len(), 2, "{out}");
        assert!(
            unified.iter().all(|l| l.ends_with(&format!("/{name}"))),
            "the process and its child are in the cgroup: {out}"
        );
    }
}

#[test]
fn the_pid_is_noted_as_the_child_is_created_and_unknown_without_clone3() {
    use std::sync::atomic::{AtomicI32, Ordering};
    // Held for the whole test: another test forcing the fallback meanwhile
    // would leave the first spawn's pid unknown.
    let _one = CLONE3_FALLBACK_TESTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The child tells the pid it sees; it must be the one noted.
    let slot = AtomicI32::new(NO_CHILD_YET);
    let (mut reader, writer) = io::pipe().expect("pipe");
    let mut plan = sh("echo $$");
    plan.stdout = Stdio::Fd(writer.as_raw_fd());
    let child = spawn_noting_pid(&plan, Some(&slot)).expect("spawn");
    drop(writer);
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("read");
    assert_eq!(child.wait_blocking().unwrap(), ExitStatus::Exited(0));
    assert_eq!(slot.load(Ordering::Acquire), child.pid);
    assert_eq!(out.trim(), child.pid.to_string());

    // Where clone3() cannot be used, the slot says so: when it fails, and
    // for every spawn after a failure that will not change.
    for way in [&FORCE_CLONE3_FALLBACK, &super::CLONE3_MISSING] {
        way.store(true, Ordering::SeqCst);
        let slot = AtomicI32::new(NO_CHILD_YET);
        let child = spawn_noting_pid(&sh("exit 0"), Some(&slot));
        way.store(false, Ordering::SeqCst);
        let child = child.expect("spawn");
        assert_eq!(child.wait_blocking().unwrap(), ExitStatus::Exited(0));
        assert_eq!(slot.load(Ordering::Acquire), CHILD_UNKNOWN);
    }
}

#[test]
fn ended_processes_are_described_as_systemctl_does() {
    assert_eq!(
        ExitStatus::Exited(1).systemd_words(),
        "code=exited, status=1/FAILURE"
    );
    assert_eq!(
        ExitStatus::Exited(0).systemd_words(),
        "code=exited, status=0/SUCCESS"
    );
    assert_eq!(
        ExitStatus::Exited(42).systemd_words(),
        "code=exited, status=42"
    );
    assert_eq!(
        ExitStatus::Exited(3).systemd_words(),
        "code=exited, status=3"
    );
    assert_eq!(
        ExitStatus::Exited(203).systemd_words(),
        "code=exited, status=203/EXEC"
    );
    let killed = ExitStatus::Signaled {
        signal: 1,
        core_dumped: false,
    };
    assert_eq!(killed.systemd_words(), "code=killed, signal=HUP");
    let dumped = ExitStatus::Signaled {
        signal: 11,
        core_dumped: true,
    };
    assert_eq!(dumped.systemd_words(), "code=dumped, signal=SEGV");
    for s in [ExitStatus::Exited(3), killed, dumped] {
        let [code, value] = s.cld();
        assert_eq!(ExitStatus::from_cld(code, value), Some(s));
    }
    assert_eq!(ExitStatus::from_cld(0, 0), None);
}

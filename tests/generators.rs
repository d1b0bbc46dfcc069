//! Unit generators under `flint run`: what they write is searched where
//! systemd searches its generators' output, they run again at a reload,
//! systemd's own are left out unless asked for (all of them, or with
//! `init`, PID 1's default, those of an init's scripts), a masked one
//! never runs, a failing one is reported, and a system flint runs them
//! with the file system read-only but for their output and `/run`.

mod common;

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Flint, Tree, ctl, require, require_root, wait_for};

fn script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A tree with units in `units/`, generators in `high/` and `low/`
/// (searched in that order) and flint's runtime directory `rt/`.
struct Setup {
    tree: Tree,
}

impl Setup {
    fn new() -> Setup {
        let tree = Tree::new();
        let t = tree.path().display().to_string();
        let units = tree.path().join("units");
        std::fs::create_dir_all(&units).unwrap();
        std::fs::create_dir_all(tree.path().join("rt")).unwrap();
        let unit = |name: &str, text: &str| std::fs::write(units.join(name), text).unwrap();
        let oneshot = |cmd: &str| {
            format!("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '{cmd}'\n")
        };
        unit("main.service", &oneshot("true"));
        unit(
            "inst@.service",
            &oneshot(&format!("echo %i >> {t}/started")),
        );
        unit("over.service", &oneshot(&format!("echo units >> {t}/over")));
        unit("late.service", &oneshot(&format!("echo units >> {t}/late")));
        unit("bogus.service", &oneshot(&format!("echo ran >> {t}/bogus")));
        // As postgresql-generator: a link in a .wants/ directory for every
        // instance its configuration names; an early unit that overrides
        // the administrator's and a late one that does not.
        script(
            &tree.path().join("low/inst-generator"),
            &format!(
                "#!/bin/sh\n\
                 echo \"run $SYSTEMD_SCOPE $# $(basename \"$1\") $(basename \"$2\") $(basename \"$3\")\"\n\
                 mkdir -p \"$1/main.service.wants\"\n\
                 for i in $(cat {t}/instances); do\n\
                   ln -s {t}/units/inst@.service \"$1/main.service.wants/inst@$i.service\"\n\
                 done\n\
                 printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/sh -c \"echo early >> {t}/over\"\\n' > \"$2/over.service\"\n\
                 printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/sh -c \"echo late >> {t}/late\"\\n' > \"$3/late.service\"\n\
                 if touch {t}/outside 2>/dev/null; then echo outside writable; else echo outside read-only; fi\n\
                 if touch \"$1/inside\" 2>/dev/null; then echo inside writable; fi\n\
                 rm -f \"$1/inside\"\n"
            ),
        );
        // systemd's own: left out by default.
        script(
            &tree.path().join("low/systemd-bogus-generator"),
            &format!(
                "#!/bin/sh\nmkdir -p \"$1/main.service.wants\"\n\
                 ln -s {t}/units/bogus.service \"$1/main.service.wants/bogus.service\"\n"
            ),
        );
        // Masked in the directory searched first.
        script(
            &tree.path().join("low/masked-generator"),
            &format!("#!/bin/sh\necho ran > {t}/masked\n"),
        );
        std::fs::create_dir_all(tree.path().join("high")).unwrap();
        std::os::unix::fs::symlink("/dev/null", tree.path().join("high/masked-generator")).unwrap();
        script(
            &tree.path().join("high/failing-generator"),
            "#!/bin/sh\necho about to fail >&2\nexit 4\n",
        );
        std::fs::write(tree.path().join("instances"), "a b\n").unwrap();
        Setup { tree }
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.tree.path().join(p)
    }

    /// flint's runtime directory (`rt/flint`) holds its control socket.
    fn control(&self) -> std::path::PathBuf {
        self.path("rt/flint/control")
    }

    fn run(&self, extra: &[&str]) -> Flint {
        let control = self.control();
        self.run_with(Some(&control), extra, &[])
    }

    /// `flint run` on the units with the control socket at `control` (the
    /// default one with `None`) and more of the environment.
    fn run_with(&self, control: Option<&Path>, extra: &[&str], env: &[(&str, &Path)]) -> Flint {
        let units = self.path("units");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("run"),
            OsStr::new("--unit-dir"),
            units.as_os_str(),
        ];
        if let Some(control) = control {
            args.extend([OsStr::new("--control"), control.as_os_str()]);
        }
        args.extend(extra.iter().map(OsStr::new));
        args.extend(["main.service", "over.service", "late.service"].map(OsStr::new));
        let gens = format!(
            "{}:{}",
            self.path("high").display(),
            self.path("low").display()
        );
        let mut env = env.to_vec();
        env.push(("SYSTEMD_GENERATOR_PATH", Path::new(&gens)));
        Flint::run_args(&args, &env)
    }
}

/// How many times the instance generator has run, from flint's log.
fn runs(flint: &Flint) -> usize {
    flint
        .log()
        .matches("generator inst-generator: run ")
        .count()
}

fn started(setup: &Setup, want: &str) -> bool {
    wait_for(Duration::from_secs(15), || {
        let mut got: Vec<String> = read(&setup.path("started"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        got.sort();
        (got.join(" ") == want).then_some(())
    })
    .is_some()
}

#[test]
fn generators_write_units_flint_runs_and_run_again_at_every_reload() {
    let setup = Setup::new();
    let flint = setup.run(&["--generators", "packages"]);
    assert!(started(&setup, "a b"), "{}", flint.log());
    let log = flint.log();
    // Arguments and environment as systemd gives them.
    assert!(
        log.contains(
            "generator inst-generator: run system 3 generator generator.early generator.late"
        ),
        "{log}"
    );
    // The early output ranks above the unit directories, the late below.
    assert!(
        wait_for(Duration::from_secs(10), || {
            (read(&setup.path("over")) == "early\n" && read(&setup.path("late")) == "units\n")
                .then_some(())
        })
        .is_some(),
        "over: {:?} late: {:?}\n{log}",
        read(&setup.path("over")),
        read(&setup.path("late"))
    );
    // A failing generator is reported with what it printed; the others
    // count.
    assert!(
        log.contains("generator failing-generator: about to fail"),
        "{log}"
    );
    assert!(
        log.contains("generator failing-generator: failed (exit status 4)"),
        "{log}"
    );
    // Masked, and systemd's own: not run (their output would be there
    // before flint read the tree).
    assert!(!setup.path("masked").exists(), "{log}");
    assert!(
        !setup
            .path("rt/flint/generator/main.service.wants/bogus.service")
            .exists(),
        "{log}"
    );
    assert!(!setup.path("bogus").exists(), "{log}");
    // The output may be written, and, where flint can make the sandbox, only
    // that and /run.
    assert!(
        log.contains("generator inst-generator: inside writable"),
        "{log}"
    );
    if nix::unistd::geteuid().is_root() {
        assert!(
            log.contains("generator inst-generator: outside read-only"),
            "{log}"
        );
        assert!(!setup.path("outside").exists());
    } else {
        eprintln!("skipping the sandbox check: it needs root (mount namespaces)");
    }

    // daemon-reload: the generators run again on the new configuration, and
    // the newly wanted instance starts.
    std::fs::write(setup.path("instances"), "a b c\n").unwrap();
    let control = setup.control();
    let (code, out) = ctl(&control, &["switch"]);
    assert_eq!(code, 0, "{out}");
    assert!(started(&setup, "a b c"), "{}", flint.log());
    // The log is read by a thread of its own: wait for the line.
    wait_for(Duration::from_secs(10), || {
        (runs(&flint) >= 2).then_some(())
    });
    assert_eq!(runs(&flint), 2, "{}", flint.log());
    // A unit the generator no longer writes is gone from the tree.
    std::fs::write(setup.path("instances"), "a\n").unwrap();
    let (code, out) = ctl(&control, &["switch"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !setup
            .path("rt/flint/generator/main.service.wants/inst@b.service")
            .exists()
    );
    assert!(
        setup
            .path("rt/flint/generator/main.service.wants/inst@a.service")
            .exists()
    );

    // A second flint on the same control socket finds it taken and leaves
    // the first one's output alone.
    let second = setup.run(&["--generators", "packages"]);
    assert!(
        second.wait_log("the unit generators do not run"),
        "{}",
        second.log()
    );
    assert_eq!(runs(&second), 0, "{}", second.log());
    assert!(
        setup
            .path("rt/flint/generator/main.service.wants/inst@a.service")
            .exists()
    );
    // Nor does it search that output (inst@a would start a second time),
    // or run them at a reload.
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(second.child.id().cast_signed(), libc::SIGHUP);
    }
    assert!(
        second.wait_log("switching to the unit tree on disk"),
        "{}",
        second.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs(&second), 0, "{}", second.log());
    assert!(started(&setup, "a b c"), "{}", second.log());
    drop(second);
    drop(flint);
}

#[test]
fn generators_are_chosen_by_the_flag_and_none_run_for_a_unit_dir_by_default() {
    // --unit-dir alone: no generator runs, nothing is written.
    let setup = Setup::new();
    let mut flint = setup.run(&[]);
    assert!(
        wait_for(Duration::from_secs(10), || {
            (read(&setup.path("over")) == "units\n").then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    assert!(!flint.log().contains("generator "), "{}", flint.log());
    assert!(!setup.path("rt/flint/generator").exists());
    assert!(!setup.path("started").exists());
    flint.stop();

    // all: systemd's own run too. With the control socket in a directory
    // that is not flint's, the output goes beside it under its name, and
    // `generator*` directories there are not flint's to empty.
    let setup = Setup::new();
    let foreign = setup.path("rt/generator/keep.service");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, "[Service]\nExecStart=/bin/true\n").unwrap();
    let control = setup.path("rt/ctl");
    let flint = setup.run_with(Some(&control), &["--generators", "all"], &[]);
    assert!(started(&setup, "a b"), "{}", flint.log());
    assert!(
        flint
            .log()
            .contains("generator inst-generator: run system 3 ctl.generator ctl.generator.early ctl.generator.late"),
        "{}",
        flint.log()
    );
    assert!(
        setup
            .path("rt/ctl.generator/main.service.wants/bogus.service")
            .exists()
    );
    assert!(foreign.exists(), "{}", flint.log());
    assert!(
        wait_for(Duration::from_secs(10), || {
            (read(&setup.path("bogus")) == "ran\n").then_some(())
        })
        .is_some(),
        "{}",
        flint.log()
    );
    assert!(!setup.path("masked").exists());
}

/// `init` (the default of a system flint that is PID 1): systemd's
/// generator of `/etc/init.d` scripts runs beside the packages', its unit
/// starts from the `.wants/` link it writes, and systemd's others stay out.
#[test]
fn the_init_selection_runs_the_sysv_generator_and_no_other_of_systemds() {
    let setup = Setup::new();
    let t = setup.path("").display().to_string();
    // As systemd-sysv-generator: a unit for a script, wanted by a target,
    // in the late directory.
    script(
        &setup.path("low/systemd-sysv-generator"),
        &format!(
            "#!/bin/sh\n\
             printf '[Unit]\\nSourcePath=/etc/init.d/legacy\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/sh -c \"echo ran $${{SYSTEMCTL_SKIP_REDIRECT:-redirected}} >> {t}/legacy\"\\n' > \"$3/legacy.service\"\n\
             mkdir -p \"$3/main.service.wants\"\n\
             ln -s ../legacy.service \"$3/main.service.wants/legacy.service\"\n\
             echo made legacy.service\n"
        ),
    );
    let flint = setup.run(&["--generators", "init"]);
    assert!(started(&setup, "a b"), "{}", flint.log());
    assert!(
        wait_for(Duration::from_secs(10), || {
            // Told that Debian's LSB hook is not to send the script to
            // systemctl (flint is not PID 1 here).
            (read(&setup.path("legacy")) == "ran 1\n").then_some(())
        })
        .is_some(),
        "{:?}\n{}",
        read(&setup.path("legacy")),
        flint.log()
    );
    // The script it comes from, as systemctl's `Loaded:` line names it.
    let (_, shown) = common::ctl(
        &setup.control(),
        &["show", "-p", "SourcePath", "legacy.service"],
    );
    assert_eq!(shown.trim(), "SourcePath=/etc/init.d/legacy");
    assert!(
        flint
            .log()
            .contains("generator systemd-sysv-generator: made legacy.service"),
        "{}",
        flint.log()
    );
    assert!(!setup.path("bogus").exists(), "{}", flint.log());
    assert!(
        !setup
            .path("rt/flint/generator/main.service.wants/bogus.service")
            .exists()
    );
}

/// `--watch` with generators: a reload the tree refuses runs them once,
/// not again and again because they rewrote their output, and the mended
/// tree is switched to.
#[test]
fn watch_runs_the_generators_once_for_a_refused_tree() {
    let setup = Setup::new();
    let flint = setup.run(&["--generators", "packages", "--watch"]);
    assert!(started(&setup, "a b"), "{}", flint.log());
    assert_eq!(runs(&flint), 1, "{}", flint.log());
    // No ExecStart=: the new tree does not load.
    std::fs::write(
        setup.path("units/late.service"),
        "[Service]\nType=oneshot\n",
    )
    .unwrap();
    assert!(
        flint.wait_log("the new unit tree does not load; nothing was changed"),
        "{}",
        flint.log()
    );
    // --watch polls once a second; several polls go by.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(runs(&flint), 2, "{}", flint.log());
    // Mended, with a new instance: switched to, generators run once more.
    std::fs::write(setup.path("instances"), "a b c\n").unwrap();
    std::fs::write(
        setup.path("units/late.service"),
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    )
    .unwrap();
    assert!(started(&setup, "a b c"), "{}", flint.log());
    wait_for(Duration::from_secs(10), || {
        (runs(&flint) >= 3).then_some(())
    });
    assert_eq!(runs(&flint), 3, "{}", flint.log());
}

/// A user flint runs the user generators with `SYSTEMD_SCOPE=user`, its
/// output in `$XDG_RUNTIME_DIR/flint/`.
#[test]
fn a_user_flint_runs_generators_in_its_runtime_directory() {
    let setup = Setup::new();
    let rt = setup.path("rt");
    let flint = setup.run_with(
        None,
        &["--user", "--generators", "packages"],
        &[("XDG_RUNTIME_DIR", &rt)],
    );
    assert!(started(&setup, "a b"), "{}", flint.log());
    assert!(
        flint.log().contains(
            "generator inst-generator: run user 3 generator generator.early generator.late"
        ),
        "{}",
        flint.log()
    );
    assert!(
        setup
            .path("rt/flint/generator/main.service.wants/inst@a.service")
            .exists()
    );
    // No sandbox for a user flint: it may write where its user may.
    assert!(
        flint
            .log()
            .contains("generator inst-generator: outside writable"),
        "{}",
        flint.log()
    );
}

/// The shell script that, in a mount namespace of the test's own, hides
/// every directory of the system's search path, the init scripts and
/// `/run` and the tmpfiles.d directories (a second tmpfs where `/lib` is
/// `/usr/lib` is skipped), makes
/// `/etc/rc.local` non-executable, runs `setup`, installs
/// `/etc/init.d/legacy` (an LSB script that runs `prelude`, then `start`
/// or `stop`) with its `/etc/rc[2-5].d` links, and becomes flint with
/// `flint_args`.
fn legacy_system(
    tree: &Tree,
    prelude: &str,
    start: &str,
    stop: &str,
    setup: &str,
    flint_args: &str,
) -> String {
    let script = tree.write(
        "legacy",
        &format!(
            "#!/bin/sh\n\
             ### BEGIN INIT INFO\n\
             # Provides:          legacy\n\
             # Required-Start:    $local_fs\n\
             # Required-Stop:     $local_fs\n\
             # Default-Start:     2 3 4 5\n\
             # Default-Stop:      0 1 6\n\
             # Short-Description: a script without a native unit\n\
             ### END INIT INFO\n\
             {prelude}\n\
             case \"$1\" in\n\
               start) {start} ;;\n\
               stop) {stop} ;;\n\
             esac\n\
             exit 0\n"
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "set -e\n\
         for d in /etc/flint/system /etc/systemd/system.control /run \
                  /etc/systemd/system /etc/systemd/system.attached \
                  /usr/local/lib/systemd/system /usr/lib/systemd/system \
                  /lib/systemd/system /etc/init.d /etc/rc2.d /etc/rc3.d \
                  /etc/rc4.d /etc/rc5.d /etc/tmpfiles.d /usr/local/lib/tmpfiles.d \
                  /usr/lib/tmpfiles.d /lib/tmpfiles.d; do\n\
           if [ -d \"$d\" ] && ! mountpoint -q \"$d\"; then mount -t tmpfs tmpfs \"$d\"; fi\n\
         done\n\
         if [ -e /etc/rc.local ]; then mount --bind /dev/null /etc/rc.local; fi\n\
         {setup}\n\
         cp '{script}' /etc/init.d/legacy\n\
         for n in 2 3 4 5; do\n\
           if [ -d /etc/rc$n.d ]; then ln -s ../init.d/legacy /etc/rc$n.d/S01legacy; fi\n\
         done\n\
         exec '{flint}' {flint_args}\n",
        script = script.display(),
        flint = common::flint_bin().display(),
    )
}

/// flint as PID 1 (a container's init) runs systemd's own
/// `systemd-sysv-generator` by default: an `/etc/init.d` script with
/// `/etc/rc[2-5].d` links and no native unit starts, and is stopped with
/// flint. Empty file systems in a mount namespace of the test's own hide
/// the system's unit directories, init scripts and `/run`.
#[test]
fn as_pid_1_flint_starts_an_init_script_through_systemds_sysv_generator() {
    let sysv = "/usr/lib/systemd/system-generators/systemd-sysv-generator";
    // What the host's layout gives or not (no package brings the runlevel
    // links, and systemd may drop its SysV compatibility): a skip.
    let missing = [sysv, "/etc/init.d", "/etc/rc2.d"]
        .into_iter()
        .find(|p| !Path::new(p).exists());
    if let Some(p) = missing {
        eprintln!("SKIP: {p} is missing (systemd's SysV compatibility)");
        return;
    }
    if !(require("unshare", "a PID and a mount namespace")
        && require_root(
            "a PID namespace whose PID 1 is flint, and mounts that hide the system's units",
        ))
    {
        return;
    }
    let tree = Tree::new();
    let out = tree.path().join("out");
    let control = tree.path().join("control");
    // And a tmpfiles.d line, which flint as PID 1 on the system's search
    // path carries out first, as systemd-tmpfiles-setup.service at boot.
    let inner = legacy_system(
        &tree,
        "",
        &format!(
            "echo \"started by $(cat /proc/1/comm)$(test -d /run/flint-made && echo ' with tmpfiles')\" > {}",
            out.display()
        ),
        &format!("echo stopped >> {}", out.display()),
        "echo 'd /run/flint-made 0755 root root -' > /etc/tmpfiles.d/flint.conf",
        &format!("run --control '{}'", control.display()),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child=SIGTERM",
        "--mount",
        "--propagation",
        "private",
        "--mount-proc",
        "sh",
        "-c",
        &inner,
    ]);
    for var in ["SYSTEMD_UNIT_PATH", "SYSTEMD_GENERATOR_PATH"] {
        cmd.env_remove(var);
    }
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    assert!(
        flint.wait_log("legacy.service: started /etc/init.d/legacy"),
        "{}",
        flint.log()
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            (read(&out) == "started by flint with tmpfiles\n").then_some(())
        })
        .is_some(),
        "{:?}\n{}",
        read(&out),
        flint.log()
    );
    // Stopped once started: a stop during the start skips ExecStop=, as
    // under systemd.
    assert!(
        flint.wait_log("legacy.service: job start finished"),
        "{}",
        flint.log()
    );
    // unshare blocks SIGTERM while it waits: flint, its one child, gets
    // it, through a handle taken before its command line is checked.
    let unshare = flint.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
    let pid: i32 = children.trim().parse().expect("flint, unshare's one child");
    // SAFETY: pidfd_open makes a new fd, which `OwnedFd` then owns.
    let pidfd = unsafe {
        std::os::fd::OwnedFd::from_raw_fd(
            i32::try_from(libc::syscall(libc::SYS_pidfd_open, pid, 0)).unwrap(),
        )
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(common::flint_bin().as_os_str().as_bytes()),
        "{pid} is flint"
    );
    // SAFETY: pidfd_send_signal on our fd with no siginfo.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGTERM,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(sent, 0, "SIGTERM to flint");
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
    assert!(
        wait_for(Duration::from_secs(10), || {
            read(&out).ends_with("stopped\n").then_some(())
        })
        .is_some(),
        "{:?}\n{}",
        read(&out),
        flint.log()
    );
}

/// A system flint that is not PID 1 (`--generators init` beside another
/// init, `/run/systemd/system` present) runs an `/etc/init.d` script that
/// sources Debian's `/lib/lsb/init-functions`: the LSB hook there sends a
/// script whose parent is not PID 1 to `systemctl start` of its own unit,
/// which would wait for the very job running the script; flint's script
/// runs as under systemd, and so does its stop.
#[test]
fn an_init_script_of_a_flint_that_is_not_pid_1_is_not_sent_back_to_systemctl() {
    let sysv = "/usr/lib/systemd/system-generators/systemd-sysv-generator";
    let hook = "/lib/lsb/init-functions.d/40-systemd";
    let missing = [sysv, hook, "/etc/init.d", "/etc/rc2.d"]
        .into_iter()
        .find(|p| !Path::new(p).exists());
    if let Some(p) = missing {
        eprintln!("SKIP: {p} is missing (systemd's SysV compatibility)");
        return;
    }
    if !(require("unshare", "a mount namespace")
        && require("systemctl", "the LSB hook asks it for the unit's state")
        && require_root("mounts that hide the system's units and make /run/systemd/system"))
    {
        return;
    }
    let tree = Tree::new();
    let out = tree.path().join("out");
    let control = tree.path().join("control");
    let inner = legacy_system(
        &tree,
        ". /lib/lsb/init-functions",
        &format!("echo started > {}", out.display()),
        &format!("echo stopped >> {}", out.display()),
        "mkdir -p /run/systemd/system",
        &format!("run --generators init --control '{}'", control.display()),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &inner]);
    for var in ["SYSTEMD_UNIT_PATH", "SYSTEMD_GENERATOR_PATH"] {
        cmd.env_remove(var);
    }
    let mut flint = Flint::run_command_until(cmd, "unit(s) running");
    assert!(
        wait_for(Duration::from_secs(20), || {
            (read(&out) == "started\n").then_some(())
        })
        .is_some(),
        "the script ran its start itself: {:?}\n{}",
        read(&out),
        flint.log()
    );
    assert!(
        flint.wait_log("legacy.service: job start finished, result=Done"),
        "{}",
        flint.log()
    );
    assert!(flint.stop().is_some_and(|s| s.success()), "{}", flint.log());
    assert!(
        read(&out).ends_with("stopped\n"),
        "{:?}\n{}",
        read(&out),
        flint.log()
    );
}

//! flint called `systemd-run`: a command becomes a transient service (or a
//! timer and its service) of the running flint, `--wait` reports its end
//! and exits with its status, a name that runs is refused; and the same
//! command lines under systemd 252's own `systemd-run --user` give the
//! service the same arguments and environment and print the same lines.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Flint, Tree, flint_bin, wait_for};

/// Runs the link with `args` against the flint on `control`: exit code,
/// stdout, stderr.
fn systemd_run(tree: &Tree, control: &Path, args: &[&str]) -> (i32, String, String) {
    outcome(
        Command::new(common::link_as(tree, "systemd-run"))
            .args(args)
            .env("FLINT_CONTROL", control),
    )
}

/// Runs `cmd` with no stdin: exit code, stdout, stderr.
fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `flint run` with a control socket of its own, an idle service, and a
/// transient directory in its search path: flint, the control socket, the
/// transient directory.
fn flint_with_transient_dir(tree: &Tree) -> (Flint, std::path::PathBuf, std::path::PathBuf) {
    let units = tree.path().join("units");
    let transient = tree.path().join("transient");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("idle.service"),
        "[Service]\nExecStart=/bin/sleep 1000\n",
    )
    .unwrap();
    let control = tree.path().join("control");
    let mut cmd = Command::new(flint_bin());
    cmd.args([
        "run",
        "--control",
        control.to_str().unwrap(),
        "idle.service",
    ])
    .env(
        "SYSTEMD_UNIT_PATH",
        format!("{}:{}", units.display(), transient.display()),
    );
    (
        Flint::run_command_until(cmd, "unit(s) running"),
        control,
        transient,
    )
}

/// A shell command line with flint's systemd-run first in `PATH`, against
/// the flint on `control`, bounded by 30 s: exit code, stdout, stderr.
fn shell(tree: &Tree, control: &Path, script: &str) -> (i32, String, String) {
    let bin = common::link_as(tree, "systemd-run");
    outcome(
        Command::new("timeout")
            .args(["30", "sh", "-c", script])
            .env("FLINT_CONTROL", control)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", bin.parent().unwrap().display()),
            ),
    )
}

/// The lines systemd-run prints, without the measured ones.
fn fixed_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Service runtime: ") && !l.starts_with("CPU time consumed: "))
        .collect()
}

/// The probe: prints each argument in brackets (and `$Y`) into `OUT`.
const PROBE: &str =
    r#"for a; do printf "[%s]" "$a"; done > "$OUT"; printf "{%s}" "$Y" >> "$OUT"; exit 4"#;

#[test]
fn a_command_runs_as_a_transient_service_and_wait_reports_its_end() {
    let tree = Tree::new();
    let (flint, control, transient) = flint_with_transient_dir(&tree);
    let out = tree.path().join("out");
    let out_env = format!("OUT={}", out.display());

    // --wait: the service's end, and its exit status as systemd-run's.
    let (code, _, err) = systemd_run(
        &tree,
        &control,
        &[
            "--unit=probe",
            "--wait",
            "-p",
            "Environment=X=1",
            "-E",
            "Y=2",
            "-E",
            &out_env,
            "sh",
            "-c",
            PROBE,
            "zero",
            "$X",
            "${X}",
            "%n",
            "a$X",
            "$$",
            "two words",
        ],
    );
    assert_eq!(code, 4, "{err}\n{}", flint.log());
    assert_eq!(
        fixed_lines(&err),
        [
            "Running as unit: probe.service",
            "Finished with result: exit-code",
            "Main processes terminated with: code=exited/status=4",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "[1][1][%n][a$X][$][two words]{2}"
    );
    // A failed transient service is kept, as systemd keeps it.
    assert!(transient.join("probe.service").is_file());
    // The same name again, once it has ended; ended well, its file goes
    // (systemd's garbage collection), and so does a failed one's with -G.
    let (code, _, err) = systemd_run(&tree, &control, &["-u", "probe", "--wait", "-q", "true"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!transient.join("probe.service").exists());
    let (code, _, _) = systemd_run(
        &tree,
        &control,
        &["-u", "gone", "-G", "--wait", "-q", "false"],
    );
    assert_eq!(code, 1);
    assert!(!transient.join("gone.service").exists());
    let (code, _, _) = systemd_run(&tree, &control, &["-u", "kept", "--wait", "-q", "false"]);
    assert_eq!(code, 1);
    assert!(transient.join("kept.service").exists());

    // Without --wait: started and left running, under a name of its own.
    let (code, _, err) = systemd_run(&tree, &control, &["sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    let name = err
        .trim()
        .strip_prefix("Running as unit: ")
        .unwrap_or_else(|| panic!("{err}"))
        .to_owned();
    assert!(
        name.starts_with("run-r") && name.ends_with(".service"),
        "{name}"
    );
    let (_, status) = common::ctl(&control, &["is-active", &name]);
    assert_eq!(status.trim(), "active");
    assert!(transient.join(&name).is_file());
    // A name that runs is refused, and it keeps running.
    let (code, _, err) = systemd_run(&tree, &control, &["--unit", &name, "true"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "Failed to start transient service unit: Unit {name} was already loaded or has a fragment file.\n"
        )
    );
    // A name of the unit tree's is no transient unit's.
    let (code, _, err) = systemd_run(&tree, &control, &["-u", "idle", "true"]);
    assert_eq!(code, 1, "{err}");

    // A timer and its service.
    let ticked = tree.path().join("ticked");
    let (code, _, err) = systemd_run(
        &tree,
        &control,
        &[
            "--on-active=1",
            "-u",
            "tick",
            "touch",
            ticked.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "Running timer as unit: tick.timer\nWill run service as unit: tick.service\n"
    );
    assert!(!ticked.exists(), "not before its time");
    wait_for(Duration::from_secs(10), || ticked.exists().then_some(()))
        .unwrap_or_else(|| panic!("the timer never ran its service: {}", flint.log()));
    // Once elapsed (systemd-run's timers do not remain), the names can be
    // used again, and the old files go.
    let again = tree.path().join("again");
    let reused = wait_for(Duration::from_secs(10), || {
        let (code, _, err) = systemd_run(
            &tree,
            &control,
            &[
                "--on-active=1",
                "-u",
                "tick",
                "-q",
                "touch",
                again.to_str().unwrap(),
            ],
        );
        (code == 0).then_some(err)
    });
    assert_eq!(reused.as_deref(), Some(""), "{}", flint.log());
    wait_for(Duration::from_secs(10), || again.exists().then_some(()))
        .unwrap_or_else(|| panic!("the timer never ran again: {}", flint.log()));
    // A timer for a unit that is there needs no command.
    let (code, _, err) = systemd_run(&tree, &control, &["--on-active=30", "-u", "idle"]);
    assert_eq!(code, 0, "{err}");
    assert!(transient.join("idle.timer").is_file());
    assert!(!transient.join("idle.service").exists());

    // What flint has no counterpart for, and a command that is nowhere.
    let (code, _, err) = systemd_run(&tree, &control, &["--scope", "true"]);
    assert_eq!(code, 1);
    assert!(err.contains("--scope: flint runs services"), "{err}");
    let (code, _, err) = systemd_run(&tree, &control, &["no-such-command-anywhere"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Failed to find executable no-such-command-anywhere: No such file or directory\n"
        )
    );
}

/// `--pipe`: every command of the service (its `ExecStartPre=` too) runs
/// on the caller's stdin, stdout and stderr, whatever its own `Standard*=`
/// settings say; systemd-run waits and exits with the service's status;
/// flint lets go of the caller's fds once the service has ended, so the
/// pipeline it is in ends, also after a failure.
#[test]
fn pipe_runs_the_service_on_the_callers_standard_io() {
    let tree = Tree::new();
    let (flint, control, transient) = flint_with_transient_dir(&tree);
    let run = |script: &str| {
        // Into files: a pipe that flint kept open would hold its reader
        // (and a reader of the test's own pipe) forever.
        let (out, err) = (tree.path().join("stdout"), tree.path().join("stderr"));
        let (code, _, _) = shell(
            &tree,
            &control,
            &format!("{{ {script}; }} >{} 2>{}", out.display(), err.display()),
        );
        (
            code,
            std::fs::read_to_string(out).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default(),
        )
    };
    let (code, out, err) = run(
        "printf 'one\\ntwo\\n' | systemd-run -u piped -P -p StandardOutput=null \
         -p 'ExecStartPre=/bin/echo pre' sh -c 'read a; echo \"got $a\"; cat; echo to-err >&2; exit 7'",
    );
    assert_eq!(code, 7, "{err}\n{}", flint.log());
    assert_eq!(out, "pre\ngot one\ntwo\n");
    // (The service's line and systemd-run's own come in either order.)
    let mut lines: Vec<&str> = err.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["Running as unit: piped.service", "to-err"]);
    // A failed service, kept as systemd keeps it, lets go of the pipe: the
    // reader behind it sees the end.
    let (code, out, err) =
        run("systemd-run -u failing -P sh -c 'echo partial; exit 1' | (cat; echo end)");
    assert_eq!((code, out.as_str()), (0, "partial\nend\n"), "{err}");
    assert!(transient.join("failing.service").is_file());
    // So does one whose service never ran: a condition that fails, a
    // command that cannot run, a user that is nowhere.
    for how in [
        "-p ConditionPathExists=/no/such/path true",
        "-p ExecStartPre=/no/such/program true",
        "-p User=no-such-user-here true",
    ] {
        let (code, out, err) = run(&format!("systemd-run -P {how} | (cat; echo end)"));
        assert_eq!((code, out.as_str()), (0, "end\n"), "{how}: {err}");
    }
    // --wait adds the report; -q keeps systemd-run's own lines away.
    let (code, out, err) = run("echo in | systemd-run -P -q --wait tr a-z A-Z");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "IN\n", ""));
    let (code, _, err) = run("systemd-run -P --wait true");
    assert_eq!(code, 0);
    assert!(err.contains("\nFinished with result: success\n"), "{err}");
    let (code, _, err) = run("systemd-run --pipe --no-block true");
    assert_eq!(
        (code, err.as_str()),
        (1, "--pty/--pipe is not compatible with --no-block.\n")
    );
    // A request that asks for the caller's stdio without passing it is
    // refused, and flint goes on.
    let answer = flint::control::call(
        &control,
        &serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "transient", "stdio": "pipe",
            "units": [{"name": "bare.service", "text": "[Service]\nExecStart=/bin/true\n"}]}),
    )
    .unwrap();
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(!transient.join("bare.service").exists());
    let (_, status) = common::ctl(&control, &["is-active", "idle.service"]);
    assert_eq!(status.trim(), "active");
}

/// `--pty`: the service runs on a pseudo terminal (its stdin, stdout and
/// stderr are that terminal, and it is the service's controlling one),
/// whose output systemd-run carries to its own stdout; systemd-run exits
/// with the service's status. `--shell` runs `$SHELL` so, in the caller's
/// directory, and reports its end.
#[test]
fn pty_runs_the_service_on_a_terminal_carried_to_the_caller() {
    let tree = Tree::new();
    let (flint, control, transient) = flint_with_transient_dir(&tree);
    let run = |args: &[&str], shell: &str| {
        outcome(
            Command::new("timeout")
                .arg("30")
                .arg(common::link_as(&tree, "systemd-run"))
                .args(args)
                .env("FLINT_CONTROL", &control)
                .env("SHELL", shell)
                .env("TERM", "vt220")
                .current_dir(tree.path()),
        )
    };
    // The controlling terminal (`/dev/tty` opens) is the one named in the
    // unit, and $TERM is the caller's.
    let (code, out, err) = run(
        &[
            "-u",
            "onpty",
            "-t",
            "sh",
            "-c",
            "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo \"tty $(tty) $TERM\" && echo x >/dev/tty; exit 6",
        ],
        "/bin/false",
    );
    assert_eq!(code, 6, "{err}\n{}", flint.log());
    let unit = std::fs::read_to_string(transient.join("onpty.service")).unwrap();
    let path = unit
        .lines()
        .find_map(|l| l.strip_prefix("TTYPath="))
        .unwrap_or_else(|| panic!("{unit}"));
    assert!(path.starts_with("/dev/pts/"), "{unit}");
    assert_eq!(out, format!("tty {path} vt220\r\nx\r\n"));
    assert_eq!(
        err,
        "Running as unit: onpty.service\nPress ^] three times within 1s to disconnect TTY.\n"
    );
    // --shell: $SHELL, here a script, run on a terminal in this directory.
    let script = tree.path().join("shell.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"in $(pwd)\"\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out, err) = run(&["-S", "-u", "sh1"], script.to_str().unwrap());
    assert_eq!(code, 0, "{err}\n{}", flint.log());
    assert_eq!(out, format!("in {}\r\n", tree.path().display()));
    assert!(err.contains("\nFinished with result: success\n"), "{err}");
    // Ended well and collected: the file is gone.
    assert!(!transient.join("sh1.service").exists());

    // Through a shell: input the service never reads waits in systemd-run
    // (more than a terminal's buffer) while its output (more than the
    // terminal's buffer too) goes on; `^]` three
    // times in a row lets go of the terminal, and of the service unless
    // systemd-run waits for its end.
    let piped = |script: &str| shell(&tree, &control, script);
    // (The terminal echoes what is typed, as any terminal does.)
    let (code, out, err) =
        piped("yes | head -c 300000 | systemd-run -t -q sh -c 'sleep 0.3; seq 1 100000'");
    let tail = &out[out.len().saturating_sub(200)..];
    assert!(
        code == 0 && out.ends_with("\n100000\r\n"),
        "{code} {err} {tail:?}"
    );
    // (Let go at once, not after the 60 s the service sleeps; the service
    // then gets the hang-up of its terminal, as under systemd.)
    let (code, _, err) = piped("printf '\\035\\035\\035' | systemd-run -t -q -u away sleep 60");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = piped(
        "printf '\\035\\035\\035' | systemd-run -t -u away2 --wait sh -c 'sleep 0.5; exit 3'",
    );
    // With --wait it reports the end: the hang-up (a clean end for a
    // service, as systemd counts SIGHUP).
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Main processes terminated with: code=killed/status=HUP"),
        "{err}"
    );
    // Another byte between them starts the count over.
    let (code, _, err) =
        piped("printf '\\035x\\035\\035' | systemd-run -t -q -u stays sh -c 'sleep 0.5; exit 4'");
    assert_eq!(code, 4, "{err}");
}

/// The same systemd-run command lines under systemd 252's user manager
/// (with its user bus, which `--wait` needs) and under `flint run --user`:
/// the service gets the same arguments and environment (`$X` as a word of
/// its own expanded and split, `${X}` expanded, `$X` inside a word and
/// `%n` kept, `$$` a dollar, an unknown variable's word gone), and the
/// same lines and exit codes come back.
#[test]
fn systemd_runs_of_systemd_and_of_flint_give_the_service_the_same() {
    if !common::require_root("a mount namespace with a fresh /run for systemd's user manager") {
        return;
    }
    let Some(systemd) = common::systemd_manager() else {
        return;
    };
    let have = |name: &str| {
        common::USER_UNIT_DIRS
            .iter()
            .any(|d| Path::new(d).join(name).exists())
    };
    if !have("dbus.socket") || Command::new("busctl").arg("--version").output().is_err() {
        assert!(!common::in_ci(), "CI installs dbus-user-session");
        eprintln!("skipped: no user bus units (dbus-user-session) here");
        return;
    }
    let tree = Tree::new();
    let home = tree.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let targets = tree.path().join("targets");
    common::copy_user_units(
        &targets,
        &[
            &common::USER_MANAGER_UNITS[..],
            &["sockets.target", "dbus.socket", "dbus.service"],
        ]
        .concat(),
    );
    std::fs::write(
        targets.join("idle.service"),
        "[Service]\nExecStart=/bin/sleep 1000\n",
    )
    .unwrap();
    let out = tree.path().join("out");
    let lines = [
        format!(
            "systemd-run --user --unit=probe --wait -p Environment=X=1 -E Y=2 -E OUT={} /bin/sh -c '{PROBE}' zero '$X' '${{X}}' '%n' 'a$X' '$X %n' '$$' '\\$X' 'two words'",
            out.display()
        ),
        "systemd-run --user --unit=ok --wait /bin/true".to_owned(),
        "systemd-run --user --unit=ok --wait -p Environment=A=1 /bin/true".to_owned(),
        "systemd-run --user --unit=slow /bin/sleep 30".to_owned(),
        "systemd-run --user --unit=slow /bin/sleep 30".to_owned(),
        // --pipe: the caller's stdin, stdout and stderr, and its status.
        format!(
            "echo piped | systemd-run --user --unit=pipe1 -P /bin/sh -c 'cat; exit 3' >{}",
            out.display()
        ),
        format!(
            "systemd-run --user --unit=pipe2 -P -q --wait /bin/sh -c 'echo out; echo to-err >&2' >{}",
            out.display()
        ),
        format!(
            "systemd-run --user --unit=pipe3 --pipe --wait /bin/sh -c 'read a; echo \"[$a]\"' <{} >{}",
            targets.join("idle.service").display(),
            out.display()
        ),
        "systemd-run --user --pipe --no-block /bin/true".to_owned(),
        // --pty: the service on a terminal that systemd-run carries over.
        format!(
            "systemd-run --user --unit=pty1 -t /bin/sh -c '[ -t 0 ] && [ -t 2 ] && echo \"on a tty\"; exit 4' >{}",
            out.display()
        ),
        format!(
            "systemd-run --user --unit=pty2 --pty --wait -q /bin/echo one two >{}",
            out.display()
        ),
        format!(
            "systemd-run --user --unit=pty3 -t -q /bin/printf 'no end' >{}",
            out.display()
        ),
        "systemd-run --user -S true".to_owned(),
        "systemd-run --user -t --no-block true".to_owned(),
        // A pipeline behind a failed service ends.
        format!(
            "timeout 10 sh -c 'systemd-run --user --unit=pipe4 -P /bin/sh -c \"echo a; exit 1\" | cat >{}'",
            out.display()
        ),
    ];
    let mut script_lines = String::new();
    for (i, l) in lines.iter().enumerate() {
        use std::fmt::Write as _;
        let _ = writeln!(
            script_lines,
            "{l} 2>>\"$T/err\"; echo \"rc=$?\" >>\"$T/err\"; cp \"{o}\" \"$T/out{i}\" 2>/dev/null; rm -f \"{o}\"",
            o = out.display()
        );
    }
    let run = |label: &str, start: &str, stop: &str| -> (String, Vec<String>) {
        let dir = tree.path().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        let own = common::OwnCgroup::new(&format!("run-{label}"));
        let script = format!(
            "mount -t tmpfs tmpfs /run\nmkdir -p /run/user/0 /run/systemd/system\nchmod 700 /run/user/0\n\
             T={dir}\n{cgroup}{start}\n{script_lines}{stop}\n",
            dir = dir.display(),
            cgroup = own.shell_lines(),
        );
        let status = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", "/run/user/0")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus")
            .env("SYSTEMD_UNIT_PATH", &targets)
            .env(
                "PATH",
                format!(
                    "{}:/usr/bin:/bin",
                    tree.path().join(label).join("bin").display()
                ),
            )
            .env_remove("FLINT_CONTROL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .status()
            .unwrap();
        drop(own);
        assert!(
            status.success(),
            "{label}: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
        let outs = (0..lines.len())
            .map(|i| std::fs::read_to_string(dir.join(format!("out{i}"))).unwrap_or_default())
            .collect();
        (err, outs)
    };
    let (want_err, want_outs) = run(
        "systemd",
        &format!(
            "{}systemctl --user start dbus.socket\n\
             j=0; while ! busctl --user status org.freedesktop.systemd1 2>/dev/null | grep -q '^PID='; do [ $j -lt 100 ] || break; sleep 0.1; j=$((j+1)); done",
            common::start_user_manager(&systemd)
        ),
        "systemctl --user exit; wait",
    );
    // flint: its own systemd-run first in PATH, the transient directory
    // where systemd keeps it.
    let bin = tree.path().join("flint/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(flint_bin(), bin.join("systemd-run")).unwrap();
    let (got_err, got_outs) = run(
        "flint",
        &format!(
            "SYSTEMD_UNIT_PATH=\"$SYSTEMD_UNIT_PATH:/run/user/0/systemd/transient\" {} run --user --notify-fd 3 idle.service 3>\"$T/ready\" 2>\"$T/flint.log\" &\n\
             flint=$!\n\
             i=0; while [ ! -s \"$T/ready\" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
            flint_bin().display()
        ),
        "kill $flint; wait $flint",
    );
    assert_eq!(got_outs, want_outs, "what the services printed");
    assert!(want_outs[0].starts_with("[1][1][%n]"), "{want_outs:?}");
    assert_eq!(
        fixed_lines(&got_err),
        fixed_lines(&want_err),
        "systemd-run's lines; flint's log:\n{}",
        std::fs::read_to_string(tree.path().join("flint/flint.log")).unwrap_or_default()
    );
}

//! `flint check` and `flint show` on unit trees written for the test, as a
//! user runs them.

mod common;

use std::process::Command;

use common::{Tree, flint_bin};

fn flint(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(flint_bin())
        .args(args)
        .output()
        .expect("run flint");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_unit_reports_file_and_line_and_the_rest_still_loads() {
    let tree = Tree::new();
    let bad = tree.write(
        "bad.service",
        "[Unit]\nDescription=x\n[Service\nExecStart=/bin/true\n",
    );
    tree.write(
        "good.service",
        "[Service]\nExecStart=/bin/true\nFrobnicate=yes\n",
    );
    let dir = tree.path().to_str().unwrap();
    let (code, _, err) = flint(&["check", "--unit-dir", dir, "bad.service", "good.service"]);
    assert_eq!(
        code, 1,
        "a unit that fails to load makes check exit 1:\n{err}"
    );
    assert!(
        err.contains(&format!("{}:3:", bad.display())),
        "error names file:line:\n{err}"
    );
    assert!(
        err.contains("Unknown key 'Frobnicate' in section [Service], ignoring."),
        "{err}"
    );
    let (code, _, err) = flint(&["check", "--unit-dir", dir, "good.service"]);
    assert_eq!(code, 0, "warnings alone do not fail the check:\n{err}");
}

/// Beyond a unit's own files, `flint check` reports what
/// `systemd-analyze verify` does: a start job that cannot be made (a unit
/// required directly or through another does not load), a socket whose
/// service does not load (its own name, `Service=`, an `Accept=yes`
/// template), a command that is not an executable file (a `-` command is
/// not looked at). The same lines and exit status as systemd-analyze's,
/// compared where it is installed.
#[test]
fn check_reports_what_systemd_analyze_verify_reports_beyond_the_file() {
    let tree = Tree::new();
    std::os::unix::fs::symlink("/dev/null", tree.path().join("k.service")).unwrap();
    std::os::unix::fs::symlink("/dev/null", tree.path().join("masked.service")).unwrap();
    tree.write("k.socket", "[Socket]\nListenStream=127.0.0.1:19053\n");
    tree.write("m.socket", "[Socket]\nListenStream=127.0.0.1:19054\n");
    tree.write(
        "t.socket",
        "[Socket]\nListenStream=127.0.0.1:19055\nAccept=yes\n",
    );
    tree.write(
        "u.socket",
        "[Socket]\nListenStream=127.0.0.1:19056\nAccept=yes\n",
    );
    tree.write("u@.service", "[Service]\nExecStart=/bin/true\n");
    tree.write(
        "s.socket",
        "[Socket]\nListenStream=127.0.0.1:19057\nService=zz.service\nExecStartPre=/no/such\n",
    );
    tree.write(
        "r.service",
        "[Unit]\nRequires=masked.service\n[Service]\nExecStart=-/no/a\nExecStartPre=nosuchcmd\nExecStop=true\nExecStartPost=/etc/passwd\nExecReload=/usr\n",
    );
    tree.write(
        "q.service",
        "[Unit]\nRequires=r.service\n[Service]\nExecStart=/bin/true\n",
    );
    tree.write(
        "w.service",
        "[Unit]\nWants=gone.service\nRequires=u@1.service\n[Service]\nExecStart=sh\n",
    );
    // Only the first command of a setting is looked at; a Requisite='s own
    // requirements are not followed.
    tree.write(
        "two.service",
        "[Service]\nExecStartPre=/bin/true\nExecStartPre=/no/second\nExecStart=/bin/true\n",
    );
    tree.write(
        "rs.service",
        "[Unit]\nRequisite=q.service\n[Service]\nExecStart=/bin/true\n",
    );
    let dir = tree.path().to_str().unwrap();
    let cases: [(&str, &[&str]); 10] = [
        (
            "k.socket",
            &["k.socket: service k.service not loaded, socket cannot be started."],
        ),
        (
            "m.socket",
            &["m.socket: service m.service not loaded, socket cannot be started."],
        ),
        (
            "t.socket",
            &["t.socket: service t@internal.service not loaded, socket cannot be started."],
        ),
        ("u.socket", &[]),
        (
            "s.socket",
            &[
                "s.socket: service zz.service not loaded, socket cannot be started.",
                "s.socket: Command /no/such is not executable: No such file or directory",
            ],
        ),
        (
            "r.service",
            &[
                "r.service: Failed to create r.service/start: Unit masked.service is masked.",
                "r.service: Command nosuchcmd is not executable: No such file or directory",
                "r.service: Command /etc/passwd is not executable: Permission denied",
                "r.service: Command /usr is not executable: Is a directory",
            ],
        ),
        (
            "q.service",
            &["q.service: Failed to create q.service/start: Unit masked.service is masked."],
        ),
        ("w.service", &[]),
        ("two.service", &[]),
        ("rs.service", &[]),
    ];
    let analyze = common::require("systemd-analyze", "the reference for `flint check`");
    for (unit, want) in cases {
        let (code, _, err) = flint(&["check", "--unit-dir", dir, unit]);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines, want, "flint check {unit}");
        assert_eq!(
            code,
            i32::from(!want.is_empty()),
            "flint check {unit}: {err}"
        );
        if analyze {
            let out = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(tree.path().join(unit))
                .env("SYSTEMD_UNIT_PATH", format!("{dir}:"))
                .env("SYSTEMD_LOG_COLOR", "0")
                .output()
                .expect("run systemd-analyze");
            let theirs = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(err, theirs, "systemd-analyze verify {unit}");
            assert_eq!(
                code,
                out.status.code().unwrap_or(-1),
                "exit status of {unit}"
            );
        }
    }
    // A unit directory that is the base itself, or below `private/`.
    tree.write(
        "sd.service",
        "[Service]\nExecStart=/bin/true\nStateDirectory=.\nStateDirectory=private/x\nStateDirectory=private\nStateDirectory=ok\n",
    );
    let (code, _, err) = flint(&["check", "--unit-dir", dir, "sd.service"]);
    let p = tree.path().join("sd.service");
    let p = p.display();
    assert_eq!(
        err,
        format!(
            "{p}:3: StateDirectory= path is not normalized, ignoring: .\n\
             {p}:4: StateDirectory= path can't be 'private', ignoring assignment: private/x\n\
             {p}:5: StateDirectory= path can't be 'private', ignoring assignment: private\n"
        )
    );
    assert_eq!(code, 0);
    // syslog is read as journal, with systemd's notice (and exit 0).
    tree.write(
        "so.service",
        "[Service]\nExecStart=/bin/true\nStandardOutput=syslog+console\nStandardError=syslog\n",
    );
    let (code, _, err) = flint(&["check", "--unit-dir", dir, "so.service"]);
    let path = tree.path().join("so.service");
    assert_eq!(
        err,
        format!(
            "{p}:3: Standard output type syslog+console is obsolete, automatically updating to journal+console. \
             Please update your unit file, and consider removing the setting altogether.\n\
             {p}:4: Standard output type syslog is obsolete, automatically updating to journal. \
             Please update your unit file, and consider removing the setting altogether.\n",
            p = path.display()
        )
    );
    assert_eq!(code, 0);
    let (_, shown, _) = flint(&["show", "--unit-dir", dir, "so.service"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("show's JSON");
    let settings = &shown["settings"]["Service"];
    assert_eq!(
        settings["StandardOutput"]["value"], "journal+console",
        "{shown}"
    );
    assert_eq!(settings["StandardError"]["value"], "journal", "{shown}");
}

#[test]
fn load_time_refusals_match_systemd() {
    let tree = Tree::new();
    tree.write("dg.socket", "[Socket]\nListenDatagram=5353\nAccept=yes\n");
    tree.write("dg@.service", "[Service]\nExecStart=/bin/true\n");
    tree.write("none.socket", "[Socket]\nAccept=no\n");
    tree.write(
        "two.service",
        "[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n",
    );
    tree.write("rel.service", "[Service]\nExecStart=bin/true\n");
    let dir = tree.path().to_str().unwrap();
    for (unit, message) in [
        (
            "dg.socket",
            "Unit configured for accepting sockets, but sockets are non-accepting. Refusing.",
        ),
        ("none.socket", "Unit has no Listen setting"),
        (
            "two.service",
            "Service has more than one ExecStart= setting",
        ),
        (
            "rel.service",
            "Neither a valid executable name nor an absolute path",
        ),
    ] {
        let (code, _, err) = flint(&["check", "--unit-dir", dir, unit]);
        assert_eq!(code, 1, "{unit} must be refused:\n{err}");
        assert!(
            err.contains(message),
            "{unit}: expected {message:?} in:\n{err}"
        );
    }
}

#[test]
fn show_applies_dropins_resets_and_specifiers_and_keeps_x_sections() {
    let tree = Tree::new();
    let frag = tree.write(
        "web@.socket",
        "[Unit]\nDescription=web for %i\n[Socket]\nListenStream=8080\nListenStream=[::1]:9090\nAccept=true\nBacklog=0x10\n[X-Policy]\nPlugin=/p.wasm\n",
    );
    let dropin = tree.write("web@.socket.d/override.conf", "[Socket]\nListenStream=\nListenStream=127.0.0.1:8081\nKeepAlive=on\nTriggerLimitIntervalSec=1min 30s\n");
    let dir = tree.path().to_str().unwrap();
    let (code, out, err) = flint(&["show", "--unit-dir", dir, "web@blue.socket"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], "web@blue.socket");
    assert_eq!(v["fragment"], frag.to_str().unwrap());
    assert_eq!(v["dropins"][0], dropin.to_str().unwrap());
    let unit = &v["settings"]["Unit"];
    assert_eq!(unit["Description"]["value"], "web for blue");
    let s = &v["settings"]["Socket"];
    let listens = s["Listen"].as_array().unwrap();
    assert_eq!(
        listens.len(),
        1,
        "the empty assignment in the drop-in reset the list: {listens:?}"
    );
    assert_eq!(listens[0]["value"]["address"], "127.0.0.1:8081");
    assert_eq!(listens[0]["file"], dropin.to_str().unwrap());
    assert_eq!(listens[0]["line"], 3);
    assert_eq!(s["Accept"]["value"], true);
    assert_eq!(s["Backlog"]["value"], 16);
    assert_eq!(s["KeepAlive"]["value"], true);
    assert_eq!(s["TriggerLimitIntervalSec"]["value"]["usec"], 90_000_000);
    assert_eq!(v["extra"]["X-Policy"]["Plugin"][0]["value"], "/p.wasm");
}

#[test]
fn units_of_types_flint_does_not_run_say_so() {
    // proc-fs-nfsd.mount: every key of [Mount] is systemd's to read; check
    // says once that flint does not run .mount units instead of calling
    // each key unknown, and `flint run` says why it will not run one. A
    // .path unit (cups.path) is checked key by key, as flint runs it.
    let tree = Tree::new();
    tree.write(
        "proc-fs-nfsd.mount",
        "[Unit]\nDescription=NFSD configuration filesystem\n[Mount]\nWhat=nfsd\nWhere=/proc/fs/nfsd\nType=nfsd\n",
    );
    tree.write(
        "cups.path",
        "[Unit]\nDescription=CUPS Scheduler\n[Path]\nPathExists=/var/cache/cups/org.cups.cupsd\nPathExsts=/x\n[Install]\nWantedBy=multi-user.target\n",
    );
    let dir = tree.path().to_str().unwrap();
    let (code, out, err) = flint(&["check", "--unit-dir", dir, "proc-fs-nfsd.mount"]);
    let text = format!("{out}{err}");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("flint does not run .mount units; [Mount] is not checked"),
        "{text}"
    );
    assert!(!text.contains("Unknown key"), "{text}");
    let (code, out, err) = flint(&["check", "--unit-dir", dir, "cups.path"]);
    let text = format!("{out}{err}");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Unknown key 'PathExsts' in section [Path], ignoring."),
        "{text}"
    );
    assert!(!text.contains("does not run"), "{text}");

    let control = tree.path().join("control");
    let (code, out, err) = flint(&[
        "run",
        "--unit-dir",
        dir,
        "--control",
        control.to_str().unwrap(),
        "proc-fs-nfsd.mount",
    ]);
    let text = format!("{out}{err}");
    assert_eq!(code, 2, "{text}");
    // The control socket it made is gone with it.
    assert!(!control.exists(), "{text}");
    assert!(
        text.contains("proc-fs-nfsd.mount: flint runs socket, service, timer and path units")
            && text.contains(".mount units are not supported"),
        "{text}"
    );
    assert!(text.contains("no named unit could be started"), "{text}");
}

/// `flint condition` prints and exits as `systemd-analyze condition`: the
/// conditions tested last written first, each with its verdict, until one
/// that does not trigger fails; asserts before conditions; what systemd
/// cannot parse refused, a relative path ignored with its warning, an
/// empty value resetting the list.
#[test]
fn condition_says_what_systemd_analyze_condition_says() {
    if !common::require("systemd-analyze", "the reference for `flint condition`") {
        return;
    }
    let sets: &[&[&str]] = &[
        &[
            "ConditionPathExists=/etc",
            "ConditionPathExists=!/etc/passwd",
            "ConditionPathExists=|/x",
            "ConditionPathExists=|/etc",
        ],
        &[
            "ConditionPathExists=|/x",
            "ConditionPathExists=|!/etc",
            "ConditionHost=|nothere",
        ],
        &["AssertPathExists=/nonexistent", "ConditionPathExists=/etc"],
        &["AssertPathExists=/etc"],
        &[
            "AssertUser=root",
            "AssertGroup=root",
            "ConditionArchitecture=x86-64",
        ],
        &["ConditionBogus=1"],
        &["ConditionPathExists=relative"],
        &[
            "ConditionPathExists=/x",
            "ConditionPathExists=",
            "ConditionPathExists=/etc",
        ],
        &["ConditionHost="],
        &[" ConditionPathExists=/"],
        // Specifiers, expanded for a unit named test.service.
        &[
            "ConditionPathExists=/tmp/%n",
            "ConditionHost=%H",
            "ConditionEnvironment=!%p",
            "ConditionPathExists=/%Z",
        ],
        // What systemd cannot evaluate: "Couldn't determine result",
        // failed (negated too).
        &["ConditionCapability=CAP_NOPE"],
        &["ConditionCapability=!CAP_NOPE"],
        &["ConditionACPower=perhaps"],
        &["ConditionFirstBoot=maybe"],
        &["ConditionCPUs=4K"],
        &["ConditionMemory=>"],
        &["ConditionKernelVersion=>=5 <="],
        &["ConditionOSRelease=ID=debian VERSION"],
        // (A word after one that failed is never looked at.)
        &["ConditionOSRelease=ID=nosuchos VERSION"],
        &["ConditionKernelVersion=>=99 <="],
        &["ConditionCPUPressure=101%"],
        &["ConditionMemoryPressure=10%/2min"],
        // Expanded before a path's check, then simplified.
        &[
            "ConditionPathExists=%T/./x//y/",
            "ConditionPathIsDirectory=%T",
            "ConditionPathExists=%n",
        ],
        &[
            "ConditionKernelVersion=>=1",
            "ConditionVirtualization=!container",
            "ConditionCPUs=>0",
            "ConditionFirstBoot=no",
            "ConditionCPUFeature=sse2",
            "ConditionCapability=CAP_CHOWN",
            "ConditionUser=root",
            "ConditionEnvironment=!NOPE_NOT_SET",
            "ConditionPathIsEncrypted=/",
            "ConditionMemory=>1M",
            "ConditionOSRelease=ID=debian",
            "ConditionControlGroupController=memory",
            "ConditionMemoryPressure=100%",
        ],
        &[
            "ConditionPathIsEncrypted=!/",
            "ConditionACPower=true",
            "ConditionNeedsUpdate=/etc",
        ],
    ];
    for set in sets {
        let run = |program: &std::path::Path, first: &[&str]| {
            let out = Command::new(program)
                .args(first)
                .args(*set)
                .env_remove("NOPE_NOT_SET")
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let want = run(std::path::Path::new("systemd-analyze"), &["condition"]);
        let got = run(&common::flint_bin(), &["condition"]);
        assert_eq!(got, want, "{set:?}");
    }
    // A unit's own (`--unit=`), read from its file.
    let tree = Tree::new();
    tree.write(
        "x.service",
        "[Unit]\nConditionPathExists=/etc\nConditionPathExists=|/x\nConditionHost=|nothere\n\
         ConditionPathExists=|/etc\nAssertPathExists=!/nonexistent\n[Service]\nExecStart=/bin/true\n",
    );
    tree.write(
        "x.service.d/10-more.conf",
        "[Unit]\nConditionPathExists=|/y\nConditionKernelCommandLine=|nothing-such\n",
    );
    let want = Command::new("systemd-analyze")
        .args(["condition", "--unit=x.service"])
        .env("SYSTEMD_UNIT_PATH", tree.path())
        .output()
        .unwrap();
    let got = Command::new(common::flint_bin())
        .args(["condition", "--unit-dir"])
        .arg(tree.path())
        .args(["--unit", "x.service"])
        .output()
        .unwrap();
    assert_eq!(got.status.code(), want.status.code());
    assert_eq!(
        String::from_utf8_lossy(&got.stderr),
        String::from_utf8_lossy(&want.stderr)
    );
    assert!(
        String::from_utf8_lossy(&got.stderr).contains("x.service: ConditionPathExists=|/x failed.")
    );
}

//! Unit generators under `flint run`: what they write is searched where
//! systemd searches its generators' output, they run again at a reload,
//! systemd's own are left out unless asked for, a masked one never runs, a
//! failing one is reported, and a system flint runs them with the file
//! system read-only but for their output and `/run`.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Flint, Tree, ctl, wait_for};

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

    fn run(&self, extra: &[&str]) -> Flint {
        let units = self.path("units");
        let control = self.path("rt/control");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("run"),
            OsStr::new("--unit-dir"),
            units.as_os_str(),
            OsStr::new("--control"),
            control.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        args.extend(["main.service", "over.service", "late.service"].map(OsStr::new));
        let gens = format!(
            "{}:{}",
            self.path("high").display(),
            self.path("low").display()
        );
        Flint::run_args(&args, &[("SYSTEMD_GENERATOR_PATH", Path::new(&gens))])
    }
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
            .path("rt/generator/main.service.wants/bogus.service")
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
    let control = setup.path("rt/control");
    let (code, out) = ctl(&control, &["switch"]);
    assert_eq!(code, 0, "{out}");
    assert!(started(&setup, "a b c"), "{}", flint.log());
    // The log is read by a thread of its own: wait for the line.
    let runs = || {
        flint
            .log()
            .matches("generator inst-generator: run system")
            .count()
    };
    wait_for(Duration::from_secs(10), || (runs() >= 2).then_some(()));
    assert_eq!(runs(), 2, "{}", flint.log());
    // A unit the generator no longer writes is gone from the tree.
    std::fs::write(setup.path("instances"), "a\n").unwrap();
    let (code, out) = ctl(&control, &["switch"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !setup
            .path("rt/generator/main.service.wants/inst@b.service")
            .exists()
    );
    assert!(
        setup
            .path("rt/generator/main.service.wants/inst@a.service")
            .exists()
    );
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
    assert!(!setup.path("rt/generator").exists());
    assert!(!setup.path("started").exists());
    flint.stop();

    // all: systemd's own run too.
    let setup = Setup::new();
    let flint = setup.run(&["--generators", "all"]);
    assert!(started(&setup, "a b"), "{}", flint.log());
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

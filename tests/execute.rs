//! systemd's own executor tests under `flint run`: the units of systemd's
//! `test/test-execute/` directory, unmodified, with the setup its
//! `src/test/test-execute.c` performs before each (files in /tmp, variables
//! in the manager's environment). Each unit must end the way test-execute.c
//! expects it to end under systemd.
//!
//! The units are not part of this repository: `scripts/fetch-systemd-tests.sh`
//! obtains them from the Debian source package of the installed systemd and
//! caches them under `target/systemd-source/`. Without them (no network, no
//! apt) the test skips, except in CI where it fails. It needs root, as the
//! units switch users and groups and write to /run and /tmp.
//!
//! Units that share files in /tmp run one after the other in a lane; lanes
//! run in parallel, each step in its own `flint run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Flint, in_ci, require_root, wait_for};

/// How a unit must end under flint, as test-execute.c expects under systemd.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Every command exits 0 (or the unit is skipped by `ExecCondition=` when
    /// the string is given, which must then appear in flint's log).
    Success(Option<&'static str>),
    /// The unit fails with this result; the main process' status, as flint
    /// logs it, contains the second string.
    Failed(&'static str, &'static str),
}

/// One `flint run` of some units after a setup.
struct Step {
    units: &'static [(&'static str, Expect)],
    /// Variables in flint's own environment (`PassEnvironment=` reads them).
    env: &'static [(&'static str, &'static str)],
    setup: fn(),
}

const OK: Expect = Expect::Success(None);

/// Killed by the seccomp filter (`SIGSYS`).
const SIGSYS: Expect = Expect::Failed("signal", "killed by signal 31");

/// The manager environment test-execute.c sets for the `PassEnvironment=` tests.
const PASS_VARS: &[(&str, &str)] = &[
    ("VAR1", "word1 word2"),
    ("VAR2", "word3"),
    ("VAR3", "$word 5 6"),
    ("VAR4", "new\nline"),
    ("VAR5", "passwordwithbackslashes"),
];
const PASS_VARS_AND_PATH: &[(&str, &str)] = &[
    ("VAR1", "word1 word2"),
    ("VAR2", "word3"),
    ("VAR3", "$word 5 6"),
    ("VAR4", "new\nline"),
    ("VAR5", "passwordwithbackslashes"),
    ("PATH", "/usr"),
];

/// The environment file of test-execute.c's `test_exec_environmentfile`.
const ENV_FILE: &str = "VAR1='word1 word2'\nVAR2=word3 \n# comment1\n\n; comment2\n ; # comment3\nline without an equal\nVAR3='$word 5 6'\nVAR4='new\nline'\nVAR5=password\\with\\backslashes";

fn no_setup() {}

fn setup_workingdirectory() {
    std::fs::create_dir_all("/tmp/test-exec_workingdirectory").unwrap();
}

fn setup_environmentfile() {
    std::fs::write("/tmp/test-exec_environmentfile.conf", ENV_FILE).unwrap();
    std::fs::write(
        "/tmp/test-exec_execsearchpath_environmentfile.conf",
        ENV_FILE,
    )
    .unwrap();
    std::fs::write(
        "/tmp/test-exec_execsearchpath_environmentfile-set.conf",
        format!("{ENV_FILE}\nPATH=/usr"),
    )
    .unwrap();
}

fn setup_execsearchpath() {
    std::fs::create_dir_all("/tmp/test-exec_execsearchpath").unwrap();
    let to = Path::new("/tmp/test-exec_execsearchpath/ls_temp");
    std::fs::copy("/bin/ls", to).unwrap();
}

fn remove_execsearchpath() {
    let _ = std::fs::remove_dir_all("/tmp/test-exec_execsearchpath");
}

/// The units run, in lanes; a lane's steps run in order.
fn lanes() -> Vec<Vec<Step>> {
    let mut lanes = vec![
        vec![Step {
            units: &[
                // test_exec_environment
                ("exec-environment-no-substitute.service", OK),
                ("exec-environment.service", OK),
                ("exec-environment-multiple.service", OK),
                ("exec-environment-empty.service", OK),
                // test_exec_unsetenvironment
                ("exec-unsetenvironment.service", OK),
                // test_exec_specifier, test_exec_execsearchpath_specifier
                ("exec-specifier.service", OK),
                ("exec-specifier@foo-bar.service", OK),
                ("exec-specifier-interpolation.service", OK),
                ("exec-execsearchpath-unit-specifier.service", OK),
                // test_exec_execsearchpath_environment
                ("exec-execsearchpath-environment.service", OK),
                ("exec-execsearchpath-environment-path-set.service", OK),
                // test_exec_ignoresigpipe
                ("exec-ignoresigpipe-yes.service", OK),
                (
                    "exec-ignoresigpipe-no.service",
                    Expect::Failed("signal", "killed by signal 13"),
                ),
                // test_exec_basic
                ("exec-basic.service", OK),
                // test_exec_condition
                (
                    "exec-condition-failed.service",
                    Expect::Failed("exit-code", "exited with status 255"),
                ),
                (
                    "exec-condition-skip.service",
                    Expect::Success(Some("ExecCondition= is false, skipping")),
                ),
                // test_exec_standardinput
                ("exec-standardinput-data.service", OK),
                ("exec-standardinput-file.service", OK),
                ("exec-standardinput-file-cat.service", OK),
                // test_exec_user, test_exec_group (Debian's nobody group is
                // "nogroup"), test_exec_supplementarygroups
                ("exec-user.service", OK),
                ("exec-user-nobody.service", OK),
                ("exec-group.service", OK),
                ("exec-group-nogroup.service", OK),
                ("exec-supplementarygroups.service", OK),
                ("exec-supplementarygroups-single-group.service", OK),
                ("exec-supplementarygroups-single-group-user.service", OK),
                (
                    "exec-supplementarygroups-multiple-groups-default-group-user.service",
                    OK,
                ),
                (
                    "exec-supplementarygroups-multiple-groups-withgid.service",
                    OK,
                ),
                (
                    "exec-supplementarygroups-multiple-groups-withuid.service",
                    OK,
                ),
                // test_exec_capabilityboundingset (capsh, libcap2-bin)
                ("exec-capabilityboundingset-simple.service", OK),
                ("exec-capabilityboundingset-reset.service", OK),
                ("exec-capabilityboundingset-merge.service", OK),
                ("exec-capabilityboundingset-invert.service", OK),
                // test_exec_privatedevices (what it does to the bounding
                // set), test_exec_protectkernelmodules,
                // test_exec_protectkernellogs
                ("exec-privatedevices-yes-capability-mknod.service", OK),
                ("exec-privatedevices-no-capability-mknod.service", OK),
                ("exec-privatedevices-yes-capability-sys-rawio.service", OK),
                ("exec-privatedevices-no-capability-sys-rawio.service", OK),
                ("exec-protectkernelmodules-no-capabilities.service", OK),
                ("exec-protectkernelmodules-yes-capabilities.service", OK),
                ("exec-protectkernellogs-no-capabilities.service", OK),
                ("exec-protectkernellogs-yes-capabilities.service", OK),
                // test_exec_ambientcapabilities
                ("exec-ambientcapabilities.service", OK),
                ("exec-ambientcapabilities-merge.service", OK),
                ("exec-ambientcapabilities-nobody.service", OK),
                ("exec-ambientcapabilities-merge-nobody.service", OK),
                // test_exec_runtimedirectory
                ("exec-runtimedirectory.service", OK),
                ("exec-runtimedirectory-mode.service", OK),
                ("exec-runtimedirectory-owner.service", OK),
                ("exec-runtimedirectory-owner-nogroup.service", OK),
                // test_exec_oomscoreadjust (the negative one only outside
                // containers; flint runs it everywhere as root may lower it)
                ("exec-oomscoreadjust-positive.service", OK),
                // test_exec_workingdirectory
                ("exec-workingdirectory.service", OK),
                ("exec-workingdirectory-trailing-dot.service", OK),
                // test_exec_environmentfile,
                // test_exec_execsearchpath_environment_files
                ("exec-environmentfile.service", OK),
                ("exec-execsearchpath-environmentfile.service", OK),
                ("exec-execsearchpath-environmentfile-set.service", OK),
            ],
            env: &[],
            setup: || {
                setup_workingdirectory();
                setup_environmentfile();
            },
        }],
        // test_exec_passenvironment: the variables are in the manager's
        // environment, then absent.
        vec![
            Step {
                units: &[
                    ("exec-passenvironment.service", OK),
                    ("exec-passenvironment-repeated.service", OK),
                    ("exec-passenvironment-empty.service", OK),
                    ("exec-execsearchpath-passenvironment.service", OK),
                ],
                env: PASS_VARS,
                setup: no_setup,
            },
            Step {
                units: &[("exec-execsearchpath-passenvironment-set.service", OK)],
                env: PASS_VARS_AND_PATH,
                setup: no_setup,
            },
            Step {
                units: &[("exec-passenvironment-absent.service", OK)],
                env: &[],
                setup: no_setup,
            },
        ],
        // test_exec_execsearchpath: found, then gone (203/EXEC under systemd).
        vec![
            Step {
                units: &[("exec-execsearchpath.service", OK)],
                env: &[],
                setup: setup_execsearchpath,
            },
            Step {
                units: &[(
                    "exec-execsearchpath.service",
                    Expect::Failed("exit-code", "exited with status 203"),
                )],
                env: &[],
                setup: remove_execsearchpath,
            },
        ],
        // test_exec_umask: both use /tmp/test-exec-umask.
        vec![
            Step {
                units: &[("exec-umask-default.service", OK)],
                env: &[],
                setup: no_setup,
            },
            Step {
                units: &[("exec-umask-0177.service", OK)],
                env: &[],
                setup: no_setup,
            },
        ],
        // test_exec_standardoutput*: all use the same two files.
        vec![
            Step {
                units: &[("exec-standardoutput-file.service", OK)],
                env: &[],
                setup: no_setup,
            },
            Step {
                units: &[("exec-standardoutput-append.service", OK)],
                env: &[],
                setup: no_setup,
            },
            Step {
                units: &[("exec-standardoutput-truncate.service", OK)],
                env: &[],
                setup: no_setup,
            },
        ],
    ];
    lanes.extend(namespace_lanes());
    // test_exec_ioschedulingclass: realtime only outside containers.
    lanes.push(vec![Step {
        units: &[
            ("exec-ioschedulingclass-none.service", OK),
            ("exec-ioschedulingclass-idle.service", OK),
            ("exec-ioschedulingclass-best-effort.service", OK),
        ],
        env: &[],
        setup: no_setup,
    }]);
    if !in_container() {
        lanes.push(vec![Step {
            units: &[("exec-ioschedulingclass-realtime.service", OK)],
            env: &[],
            setup: no_setup,
        }]);
    }
    // test_exec_cpuaffinity: the third needs CPUs 1 and 2.
    if usable_cpus().contains(&0) {
        lanes.push(vec![Step {
            units: &[
                ("exec-cpuaffinity1.service", OK),
                ("exec-cpuaffinity2.service", OK),
            ],
            env: &[],
            setup: no_setup,
        }]);
    }
    if usable_cpus().contains(&1) && usable_cpus().contains(&2) {
        lanes.push(vec![Step {
            units: &[("exec-cpuaffinity3.service", OK)],
            env: &[],
            setup: no_setup,
        }]);
    }
    if cfg!(target_arch = "x86_64") {
        // test_exec_personality runs only the host's own personality.
        lanes.push(vec![Step {
            units: &[("exec-personality-x86-64.service", OK)],
            env: &[],
            setup: no_setup,
        }]);
    }
    lanes
}

fn setup_privatetmp() {
    std::fs::write("/tmp/test-exec_privatetmp", "").unwrap();
}

fn setup_bindpaths() {
    std::fs::create_dir_all("/tmp/test-exec-bindpaths").unwrap();
    std::fs::create_dir_all("/tmp/test-exec-bindreadonlypaths").unwrap();
}

/// Whether this system lets root make mount namespaces (test-execute.c's
/// `can_unshare`); without them the units below would end otherwise.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["-m", "-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The units of the namespace tests (test_exec_privatetmp,
/// test_exec_privatedevices,
/// test_exec_privatenetwork, test_exec_protecthome,
/// test_exec_protectkernelmodules, test_exec_readonlypaths,
/// test_exec_readwritepaths, test_exec_inaccessiblepaths,
/// test_exec_bindpaths, test_exec_temporaryfilesystem,
/// test_exec_umask_namespace), expected as test-execute.c expects them where it
/// can unshare.
fn namespace_lanes() -> Vec<Vec<Step>> {
    if !can_unshare() {
        assert!(
            !in_ci(),
            "CI must allow mount and network namespaces (unshare -m -n)"
        );
        eprintln!("skipped the namespace units: this system refuses `unshare -m -n`");
        return Vec::new();
    }
    let mut lanes = vec![
        vec![Step {
            units: &[
                ("exec-privatetmp-yes.service", OK),
                ("exec-privatetmp-no.service", OK),
                ("exec-privatetmp-disabled-by-prefix.service", OK),
            ],
            env: &[],
            setup: setup_privatetmp,
        }],
        vec![Step {
            units: &[
                ("exec-protecthome-tmpfs-vs-protectsystem-strict.service", OK),
                ("exec-readwritepaths-mount-propagation.service", OK),
                ("exec-inaccessiblepaths-sys.service", OK),
                ("exec-inaccessiblepaths-mount-propagation.service", OK),
                ("exec-readonlypaths.service", OK),
                ("exec-readonlypaths-with-bindpaths.service", OK),
                ("exec-readonlypaths-mount-propagation.service", OK),
            ],
            env: &[],
            setup: no_setup,
        }],
        // test_exec_temporaryfilesystem, test_exec_umask_namespace (the
        // first two use the same file in /tmp).
        vec![
            Step {
                units: &[
                    ("exec-temporaryfilesystem-options.service", OK),
                    ("exec-temporaryfilesystem-ro.service", OK),
                    ("exec-temporaryfilesystem-usr.service", OK),
                    ("exec-umask-namespace.service", OK),
                    // test_exec_noexecpaths
                    ("exec-noexecpaths-simple.service", OK),
                ],
                env: &[],
                setup: no_setup,
            },
            Step {
                units: &[("exec-temporaryfilesystem-rw.service", OK)],
                env: &[],
                setup: no_setup,
            },
        ],
        // Both use /tmp/thisisasimpletest.
        vec![
            Step {
                units: &[("exec-readonlypaths-simple.service", OK)],
                env: &[],
                setup: no_setup,
            },
            Step {
                units: &[("exec-bindpaths.service", OK)],
                env: &[],
                setup: setup_bindpaths,
            },
        ],
    ];
    // test_exec_systemcallfilter, test_exec_systemcallerrornumber (the
    // python3 units exit with the errno uname() got), and the system user
    // units of test_exec_user.
    lanes.push(vec![Step {
        units: &[
            ("exec-systemcallfilter-not-failing.service", OK),
            ("exec-systemcallfilter-not-failing2.service", OK),
            ("exec-systemcallfilter-not-failing3.service", OK),
            ("exec-systemcallfilter-failing.service", SIGSYS),
            ("exec-systemcallfilter-failing2.service", SIGSYS),
            ("exec-systemcallfilter-failing3.service", SIGSYS),
            (
                "exec-systemcallfilter-with-errno-name.service",
                Expect::Failed("exit-code", "exited with status 84"),
            ),
            (
                "exec-systemcallfilter-with-errno-number.service",
                Expect::Failed("exit-code", "exited with status 255"),
            ),
            (
                "exec-systemcallfilter-with-errno-multi.service",
                Expect::Failed("exit-code", "exited with status 84"),
            ),
            (
                "exec-systemcallfilter-with-errno-in-allow-list.service",
                Expect::Failed("exit-code", "exited with status 84"),
            ),
            (
                "exec-systemcallfilter-override-error-action.service",
                SIGSYS,
            ),
            (
                "exec-systemcallfilter-override-error-action2.service",
                Expect::Failed("exit-code", "exited with status 84"),
            ),
            (
                "exec-systemcallerrornumber-name.service",
                Expect::Failed("exit-code", "exited with status 13"),
            ),
            (
                "exec-systemcallerrornumber-number.service",
                Expect::Failed("exit-code", "exited with status 255"),
            ),
            ("exec-systemcallfilter-system-user.service", OK),
            ("exec-systemcallfilter-system-user-nobody.service", OK),
        ],
        env: &[],
        setup: no_setup,
    }]);
    // test_exec_restrictnamespaces: unshare(1) refused where the unit
    // restricts the namespace (exit status 1).
    lanes.push(vec![Step {
        units: &[
            ("exec-restrictnamespaces-no.service", OK),
            (
                "exec-restrictnamespaces-yes.service",
                Expect::Failed("exit-code", "exited with status 1"),
            ),
            ("exec-restrictnamespaces-mnt.service", OK),
            (
                "exec-restrictnamespaces-mnt-deny-list.service",
                Expect::Failed("exit-code", "exited with status 1"),
            ),
            ("exec-restrictnamespaces-merge-and.service", OK),
            ("exec-restrictnamespaces-merge-or.service", OK),
            ("exec-restrictnamespaces-merge-all.service", OK),
        ],
        env: &[],
        setup: no_setup,
    }]);
    if Command::new("ip").arg("-V").output().is_ok() {
        lanes.push(vec![Step {
            units: &[("exec-privatenetwork-yes.service", OK)],
            env: &[],
            setup: no_setup,
        }]);
    }
    if !in_container() {
        lanes.push(vec![Step {
            units: &[
                ("exec-privatedevices-yes.service", OK),
                ("exec-privatedevices-no.service", OK),
                ("exec-privatedevices-disabled-by-prefix.service", OK),
                ("exec-privatedevices-yes-with-group.service", OK),
            ],
            env: &[],
            setup: no_setup,
        }]);
        lanes.push(vec![Step {
            units: &[(
                "exec-protectkernelmodules-yes-mount-propagation.service",
                OK,
            )],
            env: &[],
            setup: no_setup,
        }]);
    }
    lanes
}

/// Units of test/test-execute/ not run, and why. Every unit there is either
/// run above or listed here.
const SKIPPED: &[(&str, &str)] = &[
    // Run by namespace_lanes() where root may unshare (in CI always).
    ("exec-privatetmp", "run above where namespaces may be made"),
    (
        "exec-privatenetwork",
        "run above where namespaces may be made and ip is there",
    ),
    ("exec-protecthome", "run above where namespaces may be made"),
    (
        "exec-readonlypaths",
        "run above where namespaces may be made",
    ),
    (
        "exec-readwritepaths",
        "run above where namespaces may be made",
    ),
    (
        "exec-inaccessiblepaths",
        "run above where namespaces may be made",
    ),
    ("exec-bindpaths", "run above where namespaces may be made"),
    (
        "exec-temporaryfilesystem",
        "run above where namespaces may be made",
    ),
    (
        "exec-umask-namespace",
        "run above where namespaces may be made",
    ),
    (
        "exec-protectkernelmodules-yes-mount-propagation",
        "run above where namespaces may be made, outside containers",
    ),
    (
        "exec-ambientcapabilities-nfsnobody",
        "not this system's nobody user",
    ),
    (
        "exec-ambientcapabilities-merge-nfsnobody",
        "not this system's nobody user",
    ),
    (
        "exec-cpuaffinity",
        "test-execute.c skips them without CPU 0 (all), or CPUs 1 and 2 (the third)",
    ),
    ("exec-dynamicuser", "DynamicUser="),
    ("exec-group-nfsnobody", "not this system's nobody group"),
    (
        "exec-group-nobody",
        "not this system's nobody group (nogroup)",
    ),
    ("exec-user-nfsnobody", "not this system's nobody user"),
    (
        "exec-systemcallfilter-system-user-nfsnobody",
        "not this system's nobody user",
    ),
    (
        "exec-runtimedirectory-owner-nfsnobody",
        "not this system's nobody group",
    ),
    (
        "exec-runtimedirectory-owner-nobody",
        "not this system's nobody group (nogroup)",
    ),
    (
        "exec-ioschedulingclass-realtime",
        "skipped by test-execute.c in containers",
    ),
    ("exec-mount-apivfs", "mount namespaces (MountAPIVFS=)"),
    ("exec-noexecpaths", "run above where namespaces may be made"),
    (
        "exec-oomscoreadjust-negative",
        "skipped by test-execute.c in containers",
    ),
    ("exec-personality-", "another architecture's personality"),
    (
        "exec-privatedevices-yes",
        "run above where namespaces may be made, outside containers",
    ),
    (
        "exec-privatedevices-no",
        "run above where namespaces may be made, outside containers",
    ),
    (
        "exec-privatedevices-disabled-by-prefix",
        "run above where namespaces may be made, outside containers",
    ),
    (
        "exec-restrictnamespaces",
        "run above where namespaces may be made",
    ),
    (
        "exec-specifier-credentials-dir",
        "credentials (LoadCredential=)",
    ),
];

/// Whether the tests run in a container, where test-execute.c skips some
/// units (`detect_container()`).
fn in_container() -> bool {
    if let Ok(out) = Command::new("systemd-detect-virt")
        .arg("--container")
        .output()
    {
        return out.status.success();
    }
    Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists()
}

/// The CPUs this process may run on (`Cpus_allowed_list`).
fn usable_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default();
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(lo), Ok(hi)) = (lo.parse::<u32>(), hi.parse::<u32>()) {
            cpus.extend(lo..=hi);
        }
    }
    cpus
}

/// The directory holding `test/test-execute` and `src/test`, fetched (or
/// found in the cache) by the fetch script; `None` when it cannot be had.
fn systemd_tests() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("scripts/fetch-systemd-tests.sh");
    let out = Command::new(&script).output();
    let tree = match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            PathBuf::from(text.lines().last().unwrap_or_default().trim())
        }
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr).into_owned();
            return skip_or_fail(&format!("{} failed: {why}", script.display()));
        }
        Err(e) => return skip_or_fail(&format!("{} did not run: {e}", script.display())),
    };
    if tree.join("test/test-execute/exec-basic.service").is_file() {
        Some(tree)
    } else {
        skip_or_fail(&format!("{} has no test/test-execute", tree.display()))
    }
}

fn skip_or_fail(why: &str) -> Option<PathBuf> {
    assert!(
        !in_ci(),
        "systemd's test-execute units are needed in CI: {why}"
    );
    eprintln!("SKIP: systemd's test-execute units are not available ({why})");
    None
}

/// Runs one step and returns what went wrong, one entry per unit.
fn run_step(dir: &Path, step: &Step) -> Vec<String> {
    (step.setup)();
    let names: Vec<&str> = step.units.iter().map(|(u, _)| *u).collect();
    let env: Vec<(&str, &Path)> = step.env.iter().map(|(k, v)| (*k, Path::new(*v))).collect();
    let mut flint = Flint::run_dir(dir, &names, &env);
    let ended = |log: &str, unit: &str| {
        log.contains(&format!("{unit}: Deactivated successfully."))
            || log.contains(&format!("{unit}: Failed with result"))
    };
    let all = wait_for(Duration::from_mins(1), || {
        let log = flint.log();
        names.iter().all(|u| ended(&log, u)).then_some(())
    });
    let _ = flint.stop();
    let log = flint.log();
    let mut problems = Vec::new();
    if all.is_none() {
        for u in names.iter().filter(|u| !ended(&log, u)) {
            problems.push(format!("{u}: did not end"));
        }
    }
    for (unit, expect) in step.units {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("{unit}:")) || l.contains(&format!("{unit}[")))
            .collect();
        let has = |s: &str| lines.iter().any(|l| l.contains(s));
        let ok = match expect {
            Expect::Success(skip) => {
                has(&format!("{unit}: Deactivated successfully."))
                    && !has("Failed with result")
                    && skip.is_none_or(&has)
            }
            Expect::Failed(result, status) => {
                // Where the host's core_pattern pipes cores to a program
                // (systemd-coredump), the kernel dumps whatever RLIMIT_CORE
                // says: a signal that dumps then ends in 'core-dump', as
                // under systemd.
                has(&format!("{unit}: Failed with result '{result}'.")) && has(status)
                    || *result == "signal"
                        && has(&format!("{unit}: Failed with result 'core-dump'."))
                        && has(&format!("{status} (core dumped)"))
            }
        };
        if !ok {
            problems.push(format!(
                "{unit}: expected {expect:?}; its log:\n  {}",
                lines.join("\n  ")
            ));
        }
    }
    problems
}

#[test]
fn systemd_test_execute_units() {
    if !require_root("the units switch users and groups and write to /run") {
        return;
    }
    let Some(tree) = systemd_tests() else {
        return;
    };
    let dir = tree.join("test/test-execute");
    let lanes = lanes();

    // Every unit of the directory is either run or skipped with a reason.
    let run: Vec<&str> = lanes
        .iter()
        .flatten()
        .flat_map(|s| s.units.iter().map(|(u, _)| *u))
        .collect();
    let mut unaccounted = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".service") else {
            continue;
        };
        let covered = run.iter().any(|u| {
            u.trim_end_matches(".service") == stem || (stem.ends_with('@') && u.starts_with(stem))
        }) || SKIPPED.iter().any(|(p, _)| stem.starts_with(p));
        if !covered {
            unaccounted.push(name);
        }
    }
    assert!(
        unaccounted.is_empty(),
        "units neither run nor skipped: {unaccounted:?}"
    );

    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter()
            .map(|lane| {
                let dir = &dir;
                s.spawn(move || {
                    lane.iter()
                        .flat_map(|step| run_step(dir, step))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("lane panicked"))
            .collect()
    });
    for f in [
        "/tmp/test-exec_environmentfile.conf",
        "/tmp/test-exec_execsearchpath_environmentfile.conf",
        "/tmp/test-exec_execsearchpath_environmentfile-set.conf",
        "/tmp/test-exec-umask",
        "/tmp/test-exec-standardoutput-output",
        "/tmp/test-exec-standardoutput-expected",
    ] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all("/tmp/test-exec_workingdirectory");
    remove_execsearchpath();
    eprintln!("ran {} units, skipped {} groups", run.len(), SKIPPED.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

//! `systemctl set-property`: each setting a drop-in of its own, written as
//! systemd 252 writes it (compared with systemd's own user manager), and
//! applied at once to the running service's cgroup.

mod common;

use common::main_pid;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Flint, Tree, flint_bin, wait_for};

/// The file of `controller`'s cgroup of `pid` that holds `v1` (cgroup v1)
/// or `v2` (the unified hierarchy).
fn cgroup_file(pid: u64, controller: &str, v1: &str, v2: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        if list.split(',').any(|c| c == controller) {
            return Some(PathBuf::from(format!(
                "/sys/fs/cgroup/{controller}{path}/{v1}"
            )));
        }
    }
    let unified = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    Some(PathBuf::from(format!("{root}{unified}/{v2}")))
}

/// flint running `s.service` of `tree` in a cgroup of its own, with a
/// control socket: flint, the socket, the service's pid; `None` (the test
/// skips, saying why) where flint can make no cgroups.
fn run_in_cgroup(tree: &Tree) -> Option<(Flint, PathBuf, u64)> {
    let control = tree.path().join("control");
    let flint = Flint::run(tree, &["--control", control.to_str().unwrap(), "s.service"]);
    if !flint.log().contains("a cgroup per service under") {
        assert!(!common::in_ci(), "CI runs flint where it can make cgroups");
        eprintln!("skipped: flint has no cgroups here:\n{}", flint.log());
        return None;
    }
    let pid = wait_for(Duration::from_secs(10), || main_pid(&control, "s.service"))
        .unwrap_or_else(|| panic!("s.service never ran: {}", flint.log()));
    Some((flint, control, pid))
}

#[test]
fn set_property_writes_drop_ins_and_the_running_service_takes_them() {
    if !common::require_root("a cgroup of its own for the service") {
        return;
    }
    let tree = Tree::new();
    tree.write("s.service", "[Service]\nExecStart=/bin/sleep 1000\n");
    let Some((flint, control, pid)) = run_in_cgroup(&tree) else {
        return;
    };
    let run = |args: &[&str]| {
        let out = Command::new(flint_bin())
            .arg("set-property")
            .arg("--unit-dir")
            .arg(tree.path())
            .args(["--control", control.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["s", "MemoryMax=100M", "TasksMax=20"]);
    assert_eq!(code, Some(0), "{err}\n{}", flint.log());
    assert_eq!(
        std::fs::read_to_string(tree.path().join("s.service.d/50-MemoryMax.conf")).unwrap(),
        "# This is a drop-in unit file extension, created via \"systemctl set-property\"\n\
         # or an equivalent operation. Do not edit.\n[Service]\nMemoryMax=104857600\n"
    );
    assert!(tree.path().join("s.service.d/50-TasksMax.conf").is_file());
    // The running process's cgroups have the limits now.
    let holds = |controller: &str, v1: &str, v2: &str, want: &str| {
        wait_for(Duration::from_secs(5), || {
            let f = cgroup_file(pid, controller, v1, v2)?;
            (std::fs::read_to_string(&f).ok()?.trim() == want).then_some(())
        })
        .is_some()
    };
    let shown = |controller: &str, v1: &str, v2: &str| {
        let f = cgroup_file(pid, controller, v1, v2);
        format!("{f:?}: {:?}", f.as_ref().map(std::fs::read_to_string))
    };
    assert!(
        holds("memory", "memory.limit_in_bytes", "memory.max", "104857600"),
        "{}\n{}",
        shown("memory", "memory.limit_in_bytes", "memory.max"),
        flint.log()
    );
    assert!(
        holds("pids", "pids.max", "pids.max", "20"),
        "{}",
        shown("pids", "pids.max", "pids.max")
    );
    assert_eq!(main_pid(&control, "s.service"), Some(pid), "not restarted");
    // What systemd refuses, refused.
    let (code, err) = run(&["s", "Nice=5"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "Failed to set unit properties on s.service: Cannot set property Nice, or unknown property.\n"
    );
    let (code, err) = run(&["nothere", "MemoryMax=1M"]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(1),
            "Failed to set unit properties on nothere.service: Unit nothere.service not found.\n"
        )
    );
    // systemctl's command line (flint's system scope, whose control
    // directory is not in this tree), refused for a unit it cannot find.
    let out = Command::new(common::link_as(&tree, "systemctl"))
        .args(["set-property", "s", "MemoryMax=200M"])
        .env("FLINT_CONTROL", &control)
        .env("SYSTEMD_UNIT_PATH", tree.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A new limit replaces the old one in place.
    let (code, err) = run(&["s.service", "MemoryMax=200M"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        holds("memory", "memory.limit_in_bytes", "memory.max", "209715200"),
        "{}",
        shown("memory", "memory.limit_in_bytes", "memory.max")
    );
    // A share, then bytes again: the one written last holds (the other
    // form's file goes).
    let (code, err) = run(&["s.service", "MemoryMax=50%", "MemoryMax=150M"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !tree
            .path()
            .join("s.service.d/50-MemoryMaxScale.conf")
            .exists()
    );
    assert!(
        holds("memory", "memory.limit_in_bytes", "memory.max", "157286400"),
        "{}",
        shown("memory", "memory.limit_in_bytes", "memory.max")
    );
    // A reset: the cgroup has no limit again.
    let (code, err) = run(&["s.service", "MemoryMax=", "TasksMax="]);
    assert_eq!(code, Some(0), "{err}");
    let unlimited = |controller: &str, v1: &str, v2: &str| {
        wait_for(Duration::from_secs(5), || {
            let f = cgroup_file(pid, controller, v1, v2)?;
            let v = std::fs::read_to_string(&f).ok()?;
            let v = v.trim();
            (v == "max" || v.parse::<u64>().is_ok_and(|n| n > 1 << 40)).then_some(())
        })
        .is_some()
    };
    assert!(
        unlimited("memory", "memory.limit_in_bytes", "memory.max"),
        "{}\n{}",
        shown("memory", "memory.limit_in_bytes", "memory.max"),
        flint.log()
    );
    assert_eq!(main_pid(&control, "s.service"), Some(pid), "not restarted");
}

/// `set-property` of a slice reaches the slice's cgroup at once, above the
/// running service placed in it, which keeps running.
#[test]
fn set_property_of_a_slice_reaches_its_cgroup_while_its_service_runs() {
    if !common::require_root("cgroups for the slice and its service") {
        return;
    }
    let tree = Tree::new();
    tree.write("box.slice", "[Slice]\nTasksMax=100\nMemoryMax=300M\n");
    tree.write(
        "s.service",
        "[Service]\nSlice=box.slice\nExecStart=/bin/sleep 1000\n",
    );
    let Some((flint, control, pid)) = run_in_cgroup(&tree) else {
        return;
    };
    // The slice's file: beside its service's cgroup directory.
    let slice_file = |controller: &str, v1: &str, v2: &str| {
        let f = cgroup_file(pid, controller, v1, v2)?;
        let name = f.file_name()?.to_owned();
        let service_dir = f.parent()?;
        assert!(
            service_dir.ends_with("s.service") && service_dir.parent()?.ends_with("box.slice"),
            "{f:?}"
        );
        Some(service_dir.parent()?.join(name))
    };
    let holds = |controller: &str, v1: &str, v2: &str, want: &str| {
        wait_for(Duration::from_secs(5), || {
            let f = slice_file(controller, v1, v2)?;
            (std::fs::read_to_string(&f).ok()?.trim() == want).then_some(())
        })
        .is_some()
    };
    assert!(
        holds("pids", "pids.max", "pids.max", "100"),
        "{:?}",
        slice_file("pids", "pids.max", "pids.max")
    );
    let out = Command::new(flint_bin())
        .arg("set-property")
        .arg("--unit-dir")
        .arg(tree.path())
        .args(["--control", control.to_str().unwrap()])
        .args(["box.slice", "TasksMax=7", "MemoryMax=200M"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.path().join("box.slice.d/50-TasksMax.conf").is_file());
    assert!(
        holds("pids", "pids.max", "pids.max", "7"),
        "{:?}\n{}",
        slice_file("pids", "pids.max", "pids.max")
            .map(|f| std::fs::read_to_string(f).unwrap_or_default()),
        flint.log()
    );
    assert!(
        holds("memory", "memory.limit_in_bytes", "memory.max", "209715200"),
        "{}",
        flint.log()
    );
    assert_eq!(main_pid(&control, "s.service"), Some(pid), "not restarted");
}

/// The same `set-property` command lines under systemd 252's user manager
/// and under `flint set-property --user`: the same drop-ins, byte for
/// byte (but a `TasksMax=` share, which systemd 252 writes as a tenth of
/// itself), and the same refusals.
#[test]
fn set_property_writes_what_systemds_writes() {
    if !common::require_root("a mount namespace with a fresh /run for systemd's user manager") {
        return;
    }
    let Some(systemd) = common::systemd_manager() else {
        return;
    };
    let tree = Tree::new();
    let home = tree.path().join("home");
    let units = tree.path().join("units");
    common::copy_user_units(&units, &common::USER_MANAGER_UNITS);
    std::fs::write(
        units.join("s.service"),
        "[Service]\nExecStart=/bin/sleep 1000\n",
    )
    .unwrap();
    let lines = [
        "set-property s.service MemoryMax=100M CPUQuota=50% TasksMax=20 CPUWeight=200 MemoryHigh=10%",
        "set-property --runtime s.service MemoryLow=1K",
        "set-property s.service CPUQuota=150.5% MemorySwapMax=1G CPUShares=512 CPUQuotaPeriodSec=10ms",
        "set-property s.service MemoryAccounting=yes CPUAccounting=0 MemoryMin=0 IOWeight=20",
        "set-property s.service MemoryMax=infinity MemoryLimit=1G",
        "set-property s.service Nice=5",
        "set-property s.service MemoryMax=lots",
        "set-property s.service Bogus=1",
        "set-property nothere.service MemoryMax=1M",
    ];
    let run = |label: &str,
               systemctl: &str,
               start: &str,
               stop: &str|
     -> (String, Vec<(String, String)>) {
        let dir = tree.path().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_dir_all(home.join(".config/systemd/user.control"));
        let own = common::OwnCgroup::new(&format!("setprop-{label}"));
        let mut script = format!(
            "mount -t tmpfs tmpfs /run\nmkdir -p /run/user/0 /run/systemd/system\nchmod 700 /run/user/0\nT={}\n{}{start}\n",
            dir.display(),
            own.shell_lines()
        );
        for l in lines {
            let _ = writeln!(
                script,
                "{systemctl} --user {l} 2>>\"$T/err\"; echo \"rc=$?\" >>\"$T/err\""
            );
        }
        script.push_str(
            "[ -d \"$HOME/.config/systemd/user.control\" ] && cp -r \"$HOME/.config/systemd/user.control\" \"$T/persistent\"\n\
             [ -d /run/user/0/systemd/user.control ] && cp -r /run/user/0/systemd/user.control \"$T/runtime\"\n",
        );
        script.push_str(stop);
        let status = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", "/run/user/0")
            .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
            .env_remove("FLINT_CONTROL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .status()
            .unwrap();
        drop(own);
        assert!(status.success(), "{label}");
        let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "conf") {
                    let rel = p.strip_prefix(&dir).unwrap().display().to_string();
                    files.push((rel, std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        files.sort();
        (err, files)
    };
    let (want_err, want_files) = run(
        "systemd",
        "systemctl",
        &format!(
            "{}systemctl --user start s.service",
            common::start_user_manager(&systemd)
        ),
        "systemctl --user exit; wait\n",
    );
    let link = common::link_as(&tree, "systemctl");
    let (got_err, got_files) = run(
        "flint",
        &link.display().to_string(),
        &format!(
            "{} run --user --notify-fd 3 s.service 3>\"$T/ready\" 2>\"$T/flint.log\" &\nflint=$!\n\
             i=0; while [ ! -s \"$T/ready\" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
            flint_bin().display()
        ),
        "kill $flint; wait $flint\n",
    );
    assert!(!want_files.is_empty(), "systemd wrote nothing: {want_err}");
    assert_eq!(got_files, want_files, "the drop-ins");
    assert_eq!(got_err, want_err, "the messages and exit codes");
}

//! Golden tests of `flint ctl switch --dry-run`: a running `flint run`
//! (no unit names, so the units come from the tree's `.wants/` links) is
//! switched through the generations under `tests/golden/switch/genN/`, which
//! exercise every hint NixOS's `switch-to-configuration` reads. For each
//! generation the dry run must print the hand-checked `genN.plan` and change
//! nothing; the switch itself must print the same lines and do what they
//! say (new main PIDs, `ExecReload=` run, units stopped or left alone,
//! listeners kept or moved).
//!
//! The trees hold placeholders: `@STATE@` (a directory for the files
//! `ExecReload=` touches) and `@PORT_*@` (free loopback ports). Set
//! `FLINT_BLESS=1` to rewrite the `.plan` files from the dry runs; check the
//! difference by hand before committing it.

mod common;

use common::{listener_fd, listener_inode};

use common::ctl_split as ctl;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use common::{Flint, Tree, free_port, switch, wait_for};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/switch")
}

fn bless() -> bool {
    std::env::var_os("FLINT_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Copies the golden tree `generation` to `root/generation`, with the
/// placeholders replaced; symlinks (the `.wants/` links) are copied as
/// links.
fn materialize(generation: &str, root: &Path, vars: &[(&str, String)]) -> PathBuf {
    fn copy(from: &Path, to: &Path, vars: &[(&str, String)]) {
        std::fs::create_dir_all(to).unwrap();
        let mut entries: Vec<_> = std::fs::read_dir(from)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for src in entries {
            let dst = to.join(src.file_name().unwrap());
            let meta = std::fs::symlink_metadata(&src).unwrap();
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
            } else if meta.is_dir() {
                copy(&src, &dst, vars);
            } else {
                let mut text = std::fs::read_to_string(&src).unwrap();
                for (key, value) in vars {
                    text = text.replace(key, value);
                }
                assert!(
                    !text.contains("@PORT") && !text.contains("@STATE@"),
                    "{}: a placeholder is left",
                    src.display()
                );
                std::fs::write(&dst, text).unwrap();
            }
        }
    }
    let dir = root.join(generation);
    copy(&golden_dir().join(generation), &dir, vars);
    dir
}

/// The dry run of `generation` must print `generation.plan` (or, with
/// `FLINT_BLESS=1`, rewrites it).
fn check_plan(generation: &str, plan: &str) {
    let path = golden_dir().join(format!("{generation}.plan"));
    if bless() {
        std::fs::write(&path, plan).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FLINT_BLESS=1 writes it)", path.display()));
    assert_eq!(
        plan,
        want,
        "the dry run differs from {} (FLINT_BLESS=1 rewrites it once checked)",
        path.display()
    );
}

/// Every unit of the running flint, by name, from `flint ctl --json status`.
fn status(control: &Path) -> BTreeMap<String, Json> {
    let (_, out, err) = ctl(control, &["--json", "status"]);
    let answer: Json =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("status: {e}: {out}{err}"));
    answer["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| (u["name"].as_str().expect("name").to_string(), u.clone()))
        .collect()
}

/// `(state, main PID)` of `name`; `("absent", None)` when flint does not
/// know it.
fn unit(units: &BTreeMap<String, Json>, name: &str) -> (String, Option<u64>) {
    units.get(name).map_or(("absent".into(), None), |u| {
        (
            u["state"].as_str().unwrap_or("?").to_string(),
            u["main_pid"].as_u64(),
        )
    })
}

/// The main PIDs of the running services.
fn pids(units: &BTreeMap<String, Json>) -> BTreeMap<String, u64> {
    units
        .iter()
        .filter_map(|(name, u)| Some((name.clone(), u["main_pid"].as_u64()?)))
        .collect()
}

/// Waits (bounded) until `check` holds for the status of every unit.
fn wait_status(control: &Path, what: &str, check: impl Fn(&BTreeMap<String, Json>) -> bool) {
    let mut last = BTreeMap::new();
    let ok = wait_for(Duration::from_secs(15), || {
        last = status(control);
        check(&last).then_some(())
    });
    assert!(ok.is_some(), "{what}; status: {last:#?}");
}

/// One request: connect, read everything. `None` on refusal or reset.
fn ask(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The long-running services wanted by gen1's `multi-user.target`.
const GEN1_SERVICES: &[&str] = &[
    "description.service",
    "disabled.service",
    "keep-on-removal.service",
    "norestart.service",
    "nostop.service",
    "only-manual.service",
    "refuse-stop.service",
    "reload-if-changed.service",
    "reload-triggers.service",
    "removed.service",
    "restart-triggers.service",
    "wanted-activated.service",
];

#[test]
fn dry_runs_match_the_golden_plans_and_switches_do_what_they_print() {
    let tree = Tree::new();
    let control = tree.path().join("control");
    let state = tree.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let [lazy, kept, moved, moved_new, activated, wanted, orphan] = [(); 7].map(|()| free_port());
    let vars = [
        ("@STATE@", state.to_str().unwrap().to_string()),
        ("@PORT_LAZY@", lazy.to_string()),
        ("@PORT_KEPT@", kept.to_string()),
        ("@PORT_MOVED_NEW@", moved_new.to_string()),
        ("@PORT_MOVED@", moved.to_string()),
        ("@PORT_ACTIVATED@", activated.to_string()),
        ("@PORT_WANTED@", wanted.to_string()),
        ("@PORT_ORPHAN@", orphan.to_string()),
    ];
    let gens: Vec<PathBuf> = ["gen1", "gen2", "gen3", "gen4"]
        .iter()
        .map(|g| materialize(g, tree.path(), &vars))
        .collect();

    let flint = Flint::run_dir(&gens[0], &["--control", control.to_str().unwrap()], &[]);
    let pid = flint.child.id();
    // Three socket-activated services run (started by hand, with their
    // sockets' fds); lazy.service stays inactive.
    let started_by_hand = ["moved.service", "activated.service", "orphan.service"];
    let mut args = vec!["start"];
    args.extend(started_by_hand);
    let (code, out, err) = ctl(&control, &args);
    assert_eq!(code, 0, "{out}{err}");
    wait_status(&control, "gen1 is running", |u| {
        GEN1_SERVICES
            .iter()
            .chain(&started_by_hand)
            .all(|n| unit(u, n).0 == "active" && unit(u, n).1.is_some())
    });
    let gen1 = status(&control);
    assert_eq!(unit(&gen1, "lazy.service").0, "inactive");
    let pids1 = pids(&gen1);
    let kept_fd = listener_fd(pid, kept).expect("kept.socket listens");
    let activated_fd = listener_fd(pid, activated).expect("activated.socket listens");
    let lazy_fd = listener_fd(pid, lazy).expect("lazy.socket listens");
    assert!(listener_fd(pid, moved).is_some(), "moved.socket listens");
    let wanted_fd = listener_fd(pid, wanted).expect("wanted-activated.socket listens");
    assert!(listener_fd(pid, orphan).is_some(), "orphan.socket listens");

    // gen2: the hints of services.
    let dry = switch(&control, &gens[1], true);
    check_plan("gen2", &dry);
    assert_eq!(pids(&status(&control)), pids1, "a dry run changes nothing");
    assert!(!state.join("reload-if-changed.reloaded").exists());
    assert!(!state.join("reload-triggers.reloaded").exists());
    let applied = switch(&control, &gens[1], false);
    assert_eq!(applied, dry, "the switch did not do what its dry run said");
    wait_status(&control, "gen2 applied", |u| {
        let restarted = |n: &str| {
            let (s, p) = unit(u, n);
            s == "active" && p.is_some() && p != pids1.get(n).copied()
        };
        restarted("restart-triggers.service")
            && restarted("nostop.service")
            && unit(u, "new.service").0 == "active"
            && unit(u, "new.service").1.is_some()
            && unit(u, "removed.service").0 == "inactive"
            && ["reload-if-changed.service", "reload-triggers.service"]
                .iter()
                .all(|n| unit(u, n).0 == "active")
    });
    assert!(
        wait_for(Duration::from_secs(10), || (state
            .join("reload-if-changed.reloaded")
            .exists()
            && state.join("reload-triggers.reloaded").exists())
        .then_some(()))
        .is_some(),
        "ExecReload= did not run"
    );
    let gen2 = status(&control);
    for n in [
        "description.service",
        "keep-on-removal.service",
        "norestart.service",
        "only-manual.service",
        "refuse-stop.service",
        "reload-if-changed.service",
        "reload-triggers.service",
        "moved.service",
        "activated.service",
    ] {
        assert_eq!(
            unit(&gen2, n),
            ("active".into(), pids1.get(n).copied()),
            "{n}"
        );
    }
    assert_eq!(unit(&gen2, "lazy.service"), ("inactive".into(), None));
    assert_eq!(
        gen2["description.service"]["description"], "description, second generation",
        "the new Description= applies without a restart"
    );
    let pids2 = pids(&gen2);

    // gen3: sockets and a socket-activated service.
    let dry = switch(&control, &gens[2], true);
    check_plan("gen3", &dry);
    assert_eq!(pids(&status(&control)), pids2, "a dry run changes nothing");
    assert!(
        listener_fd(pid, moved_new).is_none(),
        "a dry run opens nothing"
    );
    let applied = switch(&control, &gens[2], false);
    assert_eq!(applied, dry, "the switch did not do what its dry run said");
    wait_status(&control, "gen3 applied", |u| {
        let (s, p) = unit(u, "moved.service");
        s == "active"
            && p.is_some()
            && p != pids2.get("moved.service").copied()
            && unit(u, "activated.service").0 == "inactive"
    });
    let gen3 = status(&control);
    for (name, p) in &pids2 {
        if name != "moved.service" && name != "activated.service" {
            assert_eq!(unit(&gen3, name), ("active".into(), Some(*p)), "{name}");
        }
    }
    assert_eq!(
        listener_fd(pid, kept),
        Some(kept_fd),
        "kept.socket's listener"
    );
    assert_eq!(ask(kept).as_deref(), Some("kept\n"));
    assert_eq!(
        listener_fd(pid, activated),
        Some(activated_fd),
        "activated.socket keeps listening while its service is stopped"
    );
    assert_eq!(gen3["activated.socket"]["state"], "active");
    assert_eq!(
        listener_fd(pid, lazy),
        Some(lazy_fd),
        "lazy.socket's listener"
    );
    assert!(
        wait_for(Duration::from_secs(5), || listener_inode(moved)
            .is_none()
            .then_some(()))
        .is_some(),
        "moved.socket's old address is closed"
    );
    assert!(
        listener_fd(pid, moved_new).is_some(),
        "moved.socket listens on its new address"
    );

    let pids3 = pids(&gen3);

    // gen4: units no longer wanted whose files stay, removed triggers,
    // socket-activated services the tree wants or whose socket is gone.
    std::fs::remove_file(state.join("reload-triggers.reloaded")).unwrap();
    let dry = switch(&control, &gens[3], true);
    check_plan("gen4", &dry);
    assert_eq!(pids(&status(&control)), pids3, "a dry run changes nothing");
    let applied = switch(&control, &gens[3], false);
    assert_eq!(applied, dry, "the switch did not do what its dry run said");
    wait_status(&control, "gen4 applied", |u| {
        ["wanted-activated.service", "orphan.service"]
            .iter()
            .all(|n| {
                let (s, p) = unit(u, n);
                s == "active" && p.is_some() && p != pids3.get(*n).copied()
            })
    });
    let gen4 = status(&control);
    for (name, p) in &pids3 {
        if name != "wanted-activated.service" && name != "orphan.service" {
            assert_eq!(unit(&gen4, name), ("active".into(), Some(*p)), "{name}");
        }
    }
    assert_eq!(
        listener_fd(pid, wanted),
        Some(wanted_fd),
        "wanted-activated.socket keeps listening while its service restarts"
    );
    assert!(
        wait_for(Duration::from_secs(5), || listener_inode(orphan)
            .is_none()
            .then_some(()))
        .is_some(),
        "orphan.socket was removed and closes"
    );
    assert!(
        !state.join("reload-triggers.reloaded").exists(),
        "removed X-Reload-Triggers= reloaded"
    );

    // The running units match gen4 now.
    assert_eq!(
        switch(&control, &gens[3], true),
        "nothing to do: the running units match the tree\n"
    );
}

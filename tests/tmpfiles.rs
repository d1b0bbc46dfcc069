//! `flint tmpfiles` against systemd's own `systemd-tmpfiles` (the oracle):
//! the same configuration applied below two fresh roots must give the same
//! tree (types, modes, owners, link targets, file contents), for a
//! configuration written to exercise each line type and for the machine's
//! own tmpfiles.d. Then the exit codes, and `flint run --tmpfiles` making
//! the directory a real unit expects before it starts.

mod common;

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use common::{Flint, Tree, wait_for};

/// `find`'s view of a tree: one sorted line per node.
fn listing(root: &Path) -> String {
    let out = Command::new("find")
        .arg(".")
        .args(["-printf", "%y %m %u %g %p -> %l\n"])
        .current_dir(root)
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let mut text = lines.join("\n");
    // Regular files' contents too.
    for l in &lines {
        if let Some(p) = l.strip_prefix("f ").and_then(|r| r.split(' ').nth(3)) {
            let content = std::fs::read_to_string(root.join(p)).unwrap_or_default();
            let _ = write!(text, "\n{p}: {content:?}");
        }
    }
    text
}

/// Two roots holding `config` (and the machine's users and groups).
fn roots(config: &[(&str, &str)]) -> (Tree, Tree) {
    let make = || {
        let t = Tree::new();
        for (path, text) in config {
            t.write(path, text);
        }
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        for f in ["passwd", "group"] {
            std::fs::copy(Path::new("/etc").join(f), t.path().join("etc").join(f)).unwrap();
        }
        t
    };
    (make(), make())
}

fn oracle() -> bool {
    common::require("systemd-tmpfiles", "systemd: the oracle")
        && common::require_root("owners are set as in the configuration")
}

fn flint_tmpfiles(args: &[&str]) -> std::process::Output {
    Command::new(common::flint_bin())
        .arg("tmpfiles")
        .args(args)
        .output()
        .unwrap()
}

fn compare(config: &[(&str, &str)], extra: &[&str]) {
    let (a, b) = roots(config);
    let sd = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(format!("--root={}", a.path().display()))
        .args(extra)
        .output()
        .unwrap();
    let mut args = vec!["--create", "--root", b.path().to_str().unwrap()];
    args.extend(extra);
    let fl = flint_tmpfiles(&args);
    assert_eq!(
        listing(a.path()),
        listing(b.path()),
        "systemd-tmpfiles (left; {}) and flint tmpfiles (right; {}) differ",
        String::from_utf8_lossy(&sd.stderr),
        String::from_utf8_lossy(&fl.stderr)
    );
}

#[test]
fn each_line_type_gives_what_systemd_tmpfiles_gives() {
    if !oracle() {
        return;
    }
    let conf = "\
# directories, parents, owners, modes
d /run/app/sub 0750 daemon daemon -
D /run/cache 0700 - - -
d /var/lib/app :0710 - :daemon
v /var/lib/sub 0755
# files and their content
f /run/app/pid 0644 - - - 42\\n
f /run/app/empty
F /run/app/trunc 0600 - - - new
f~ /run/app/b64 - - - - aGVsbG8K
w /run/app/pid - - - - not-written-twice
# links, FIFOs, copies
L /run/app/link - - - - ../app/pid
L /run/app/default
p /run/app/fifo 0620 daemon -
C /run/copy - - - - /usr/share/factory-test
# adjustments of what exists
z /run/app 0711 - -
Z /run/cache ~0755 daemon -
e /run/app/* 0701
# duplicates: the first line wins
d /run/dup 0700
d /run/dup 0755
# boot only
d! /run/boot-only
";
    compare(
        &[
            ("usr/lib/tmpfiles.d/app.conf", conf),
            ("usr/share/factory-test/a/b.txt", "copied\n"),
        ],
        &[],
    );
    compare(
        &[("etc/tmpfiles.d/x.conf", "d! /run/boot-only 0701\n")],
        &["--boot"],
    );
}

#[test]
fn the_machines_own_tmpfiles_d_gives_what_systemd_tmpfiles_gives() {
    if !oracle() {
        return;
    }
    let mut config: Vec<(String, String)> = Vec::new();
    for dir in ["usr/lib/tmpfiles.d", "etc/tmpfiles.d"] {
        let Ok(entries) = std::fs::read_dir(Path::new("/").join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                config.push((format!("{dir}/{}", e.file_name().to_string_lossy()), text));
            }
        }
    }
    assert!(
        config.len() >= 5 || !common::in_ci(),
        "the machine has tmpfiles.d files"
    );
    let refs: Vec<(&str, &str)> = config
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    compare(&refs, &[]);
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let t = Tree::new();
    let good = t.write(
        "good.conf",
        &format!("d {}/made 0700\n", t.path().display()),
    );
    let out = flint_tmpfiles(&[good.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(t.path().join("made").is_dir());
    let bad = t.write("bad.conf", "d /ok\ny /what\n");
    let out = flint_tmpfiles(&["--prefix", "/nonexistent-prefix", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.conf:2: unknown line type 'y'"),
        "{out:?}"
    );
    std::fs::write(t.path().join("file"), "").unwrap();
    let blocked = t.write(
        "blocked.conf",
        &format!("d {}/file/sub\n", t.path().display()),
    );
    let out = flint_tmpfiles(&[blocked.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(73), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("blocked.conf:1:"),
        "{out:?}"
    );
}

#[test]
fn run_with_tmpfiles_creates_what_a_unit_expects_before_starting_it() {
    // In a private mount namespace with its own /run, so that the
    // configuration below reaches flint as /run/tmpfiles.d would.
    if !common::require_root("a private /run needs a mount namespace")
        || !common::require("unshare", "util-linux")
    {
        return;
    }
    let tree = Tree::new();
    let seen = tree.path().join("seen");
    tree.write(
        "probe.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'stat -c \"%%a %%U\" /run/flint-tmpfiles-probe > {}'\n",
            seen.display()
        ),
    );
    // `--tmpfiles` never removes: the `r` line must leave the file alone
    // (with --remove it would go, and `D /tmp` would empty /tmp).
    let keep = tree.write("keep", "");
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir /run/tmpfiles.d && \
         echo 'd /run/flint-tmpfiles-probe 0710 daemon - -' > /run/tmpfiles.d/probe.conf && \
         echo 'r {}' >> /run/tmpfiles.d/probe.conf && \
         exec {} run --tmpfiles --unit-dir {} probe.service",
        keep.display(),
        common::flint_bin().display(),
        tree.path().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let flint = Flint::run_command_until(cmd, "unit(s) running");
    let got = wait_for(std::time::Duration::from_secs(20), || {
        std::fs::read_to_string(&seen)
            .ok()
            .filter(|s| !s.is_empty())
    })
    .unwrap_or_else(|| panic!("probe.service did not run:\n{}", flint.log()));
    assert_eq!(got.trim(), "710 daemon", "{}", flint.log());
    assert!(flint.log().contains("tmpfiles: "), "{}", flint.log());
    assert!(keep.exists(), "flint run --tmpfiles removed nothing");
}

#[test]
fn user_lines_expand_the_users_directories_as_systemd_tmpfiles_does() {
    // `--user`: ~/.config/user-tmpfiles.d, with %h, %t (XDG_RUNTIME_DIR)
    // and %C resolved for the user. systemd-tmpfiles --user is the oracle:
    // the same configuration for two homes gives the same trees. (%S is
    // left out: flint's user %S is ~/.local/state, as current systemd has
    // it, where the installed systemd 252 used ~/.config; see the README.)
    if !common::require("systemd-tmpfiles", "systemd: the oracle") {
        return;
    }
    let conf =
        "d %t/app 0700\nf %h/marker 0600 - - - hi\nd %C/app-cache 0750\nL %h/link - - - - %t/app\n";
    let run_in = |tool: &mut Command, home: &Tree| {
        std::fs::create_dir_all(home.path().join("runtime")).unwrap();
        home.write(".config/user-tmpfiles.d/app.conf", conf);
        tool.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path().join("runtime"))
            .output()
            .unwrap()
    };
    let (a, b) = (Tree::new(), Tree::new());
    let sd = run_in(
        Command::new("systemd-tmpfiles").args(["--user", "--create"]),
        &a,
    );
    let fl = run_in(
        Command::new(common::flint_bin()).args(["tmpfiles", "--user", "--create"]),
        &b,
    );
    assert!(fl.status.success(), "{fl:?}");
    // The trees differ only in where they are.
    let listing_of = |t: &Tree| listing(t.path()).replace(t.path().to_str().unwrap(), "HOME");
    assert_eq!(
        listing_of(&a),
        listing_of(&b),
        "systemd-tmpfiles --user (left; {}) and flint tmpfiles --user (right; {}) differ",
        String::from_utf8_lossy(&sd.stderr),
        String::from_utf8_lossy(&fl.stderr)
    );
    assert!(b.path().join("runtime/app").is_dir());
    assert_eq!(
        std::fs::read_to_string(b.path().join("marker")).unwrap(),
        "hi"
    );
}

/// `flint tmpfiles --root ROOT ARGS... ROOT/t.conf` run through `sh` with
/// `umask 077`, returning the exit code and stderr.
fn flint_in(root: &Path, conf: &str, args: &str) -> (Option<i32>, String) {
    std::fs::write(root.join("t.conf"), conf).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077; exec {} tmpfiles --root {} {args} {}",
            common::flint_bin().display(),
            root.display(),
            root.join("t.conf").display()
        ))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn links_and_mounts_do_not_lead_flint_tmpfiles_astray() {
    if !common::require_root("owners and a mount") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    let outside = Tree::new();
    let root = Tree::new();
    let r = root.path();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    std::fs::create_dir_all(r.join("etc")).unwrap();
    for f in ["passwd", "group"] {
        std::fs::copy(Path::new("/etc").join(f), r.join("etc").join(f)).unwrap();
    }

    // An absolute link inside the root stays inside the root.
    std::fs::create_dir_all(r.join("var")).unwrap();
    symlink(outside.path(), r.join("var/away")).unwrap();
    let (code, err) = flint_in(r, "d /var/away/made 0700\n", "");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !outside.path().join("made").exists(),
        "nothing made outside the root"
    );
    assert!(
        r.join(outside.path().strip_prefix("/").unwrap())
            .join("made")
            .is_dir()
    );

    // f+ does not write through a link.
    std::fs::write(r.join("target"), "keep").unwrap();
    symlink("/target", r.join("link")).unwrap();
    let (code, _) = flint_in(r, "f+ /link - - - - new\n", "");
    assert_eq!(code, Some(73));
    assert_eq!(std::fs::read_to_string(r.join("target")).unwrap(), "keep");

    // A link in daemon's directory to root's file: no unsafe transition.
    std::fs::create_dir_all(r.join("srv/daemon-owned")).unwrap();
    std::fs::create_dir_all(r.join("etc2")).unwrap();
    std::fs::write(r.join("etc2/shadow"), "").unwrap();
    std::fs::set_permissions(
        r.join("etc2/shadow"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let daemon = nix::unistd::User::from_name("daemon").unwrap().unwrap().uid;
    nix::unistd::chown(&r.join("srv/daemon-owned"), Some(daemon), None).unwrap();
    symlink("/etc2", r.join("srv/daemon-owned/sub")).unwrap();
    let (code, err) = flint_in(r, "z /srv/daemon-owned/sub/shadow 0644 daemon daemon\n", "");
    assert_eq!(code, Some(73), "{err}");
    assert!(err.contains("unsafe transition"), "{err}");
    assert_eq!(mode(&r.join("etc2/shadow")), 0o600);
    assert_eq!(std::fs::metadata(r.join("etc2/shadow")).unwrap().uid(), 0);

    // --remove: D empties the directory, not what a link names, and not a
    // file system mounted below it.
    std::fs::create_dir_all(r.join("real/keep")).unwrap();
    symlink("/real", r.join("dlink")).unwrap();
    std::fs::create_dir_all(r.join("tmp/m")).unwrap();
    std::fs::write(r.join("tmp/gone"), "").unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(r.join("tmp/m"))
        .status()
        .unwrap()
        .success();
    if mounted {
        std::fs::write(r.join("tmp/m/stays"), "").unwrap();
    }
    let (code, err) = flint_in(r, "D /dlink\nD /tmp 1777\n", "--remove");
    if mounted {
        let still = r.join("tmp/m/stays").exists();
        let _ = Command::new("umount").arg(r.join("tmp/m")).status();
        assert!(still, "the mounted file system was left alone");
    }
    assert_eq!(code, Some(0), "{err}");
    assert!(r.join("real/keep").exists(), "D did not follow the link");
    assert!(!r.join("tmp/gone").exists());

    // Removal comes before creation; parents are 0755 whatever the umask;
    // a chown does not cost the set-id bits; /var/run is /run.
    std::fs::create_dir_all(r.join("x/old")).unwrap();
    let (code, err) = flint_in(
        r,
        "R /x\nd /x\nd /p1/p2/leaf 0700\nf /suid 4750 root daemon\nd /var/run/legacy\n",
        "--create --remove",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(r.join("x").is_dir() && !r.join("x/old").exists());
    assert_eq!(mode(&r.join("p1")), 0o755);
    assert_eq!(mode(&r.join("p1/p2")), 0o755);
    assert_eq!(mode(&r.join("p1/p2/leaf")), 0o700);
    assert_eq!(mode(&r.join("suid")), 0o4750);
    assert!(r.join("run/legacy").is_dir());

    // Configuration errors: nothing made, exit 65.
    let (code, err) = flint_in(
        r,
        "d /nobody-here 0700 no-such-user-xyz\nd /w/../x\nd /aged - - - 10dd\n",
        "",
    );
    assert_eq!(code, Some(65), "{err}");
    assert!(!r.join("nobody-here").exists());
    assert!(
        err.contains("unknown user")
            && err.contains("not normalized")
            && err.contains("invalid age"),
        "{err}"
    );
}

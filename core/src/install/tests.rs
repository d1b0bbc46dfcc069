//! The cases of `[Install]` handling that are easy to get wrong, each in a
//! fresh tree below a temporary root. Expected links and messages are what
//! `systemctl --root` (systemd 252) does with the same files; the
//! `install` integration test compares the two directly.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::unit::loader::SearchPath;

/// A root directory with units in `/usr/lib/systemd/system`.
struct Root {
    _dir: tempfile::TempDir,
    lp: LookupPaths,
}

impl Root {
    fn new(units: &[(&str, &str)]) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let search = SearchPath::system_with(&|_| None, None);
        let lp = LookupPaths::system_from(Some(dir.path()), &search).unwrap();
        let r = Root { _dir: dir, lp };
        for (name, text) in units {
            r.write(&format!("usr/lib/systemd/system/{name}"), text);
        }
        r
    }

    fn path(&self) -> &Path {
        self.lp.root.as_deref().unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn symlink(&self, rel: &str, target: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    /// Every symlink below `/etc/systemd/system`: relative path → target.
    fn links(&self) -> BTreeMap<String, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for de in rd.flatten() {
                let p = de.path();
                let ft = de.file_type().unwrap();
                if ft.is_symlink() {
                    let rel = p.strip_prefix(base).unwrap().display().to_string();
                    let t = std::fs::read_link(&p).unwrap().display().to_string();
                    out.insert(rel, t);
                } else if ft.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
        let base = self.path().join("etc/systemd/system");
        let mut out = BTreeMap::new();
        walk(&base, &base, &mut out);
        out
    }

    fn enable(&self, names: &[&str]) -> Outcome {
        enable(&self.lp, &strings(names), Options::default())
    }

    fn disable(&self, names: &[&str]) -> Outcome {
        disable(&self.lp, &strings(names), Options::default())
    }

    fn state(&self, name: &str) -> Result<UnitFileState, InstallError> {
        unit_file_state(&self.lp, name)
    }

    /// The messages of `o`, with the root shown as `R`.
    fn messages(&self, o: &Outcome, verb: &str) -> Vec<String> {
        let root = self.path().display().to_string();
        o.messages(verb, true)
            .into_iter()
            .map(|m| m.text.replace(&root, "R"))
            .collect()
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn links(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

const SVC: &str = "[Service]\nExecStart=/bin/true\n";

fn unit(install: &str) -> String {
    format!("{SVC}[Install]\n{install}")
}

#[test]
fn plain_unit_wanted_by_and_alias() {
    let r = Root::new(&[(
        "ssh.service",
        &unit("WantedBy=multi-user.target\nAlias=sshd.service\n"),
    )]);
    let o = r.enable(&["ssh.service"]);
    assert_eq!(o.result, Ok(1));
    assert_eq!(
        r.links(),
        links(&[
            ("sshd.service", "/usr/lib/systemd/system/ssh.service"),
            (
                "multi-user.target.wants/ssh.service",
                "/usr/lib/systemd/system/ssh.service"
            ),
        ])
    );
    assert_eq!(
        r.messages(&o, "enable"),
        [
            "Created symlink R/etc/systemd/system/sshd.service → /usr/lib/systemd/system/ssh.service.",
            "Created symlink R/etc/systemd/system/multi-user.target.wants/ssh.service → /usr/lib/systemd/system/ssh.service.",
            "Unit R/usr/lib/systemd/system/ssh.service is added as a dependency to a non-existent unit multi-user.target.",
        ]
    );
    assert_eq!(r.state("ssh.service"), Ok(UnitFileState::Enabled));
    assert_eq!(r.state("sshd.service"), Ok(UnitFileState::Alias));

    // Disabling by the alias removes every link of the unit, and the
    // directory that became empty.
    let o = r.disable(&["sshd.service"]);
    assert_eq!(o.result, Ok(0));
    assert!(r.links().is_empty());
    assert!(
        !r.path()
            .join("etc/systemd/system/multi-user.target.wants")
            .exists()
    );
    assert_eq!(r.state("ssh.service"), Ok(UnitFileState::Disabled));
    assert_eq!(r.state("sshd.service"), Err(InstallError::NotFound));
}

#[test]
fn already_enabled_changes_nothing() {
    let r = Root::new(&[("a.service", &unit("WantedBy=multi-user.target\n"))]);
    assert_eq!(r.enable(&["a.service"]).changes.len(), 2);
    let before = r.links();
    let o = r.enable(&["a.service"]);
    assert_eq!(o.result, Ok(1), "still counts as having install rules");
    assert!(
        !o.changes.iter().any(Change::is_modification),
        "{:?}",
        o.changes
    );
    assert_eq!(r.links(), before);
}

#[test]
fn template_needs_an_instance_or_default_instance() {
    let r = Root::new(&[
        ("serial-getty@.service", &unit("WantedBy=getty.target\n")),
        (
            "getty@.service",
            &unit("WantedBy=getty.target\nDefaultInstance=tty1\n"),
        ),
    ]);
    // No DefaultInstance: the template alone cannot be enabled.
    let o = r.enable(&["serial-getty@.service"]);
    assert_eq!(o.result, Err(InstallError::NotTemplate));
    assert_eq!(
        r.messages(&o, "enable"),
        [
            "Failed to enable serial-getty@.service, destination unit getty.target is a non-template unit."
        ]
    );
    assert!(r.links().is_empty());

    // An instance links by its own name to the template's file.
    r.enable(&["serial-getty@ttyS0.service"]).result.unwrap();
    // DefaultInstance= makes the template enable as that instance.
    r.enable(&["getty@.service"]).result.unwrap();
    r.enable(&["getty@tty5.service"]).result.unwrap();
    assert_eq!(
        r.links(),
        links(&[
            (
                "getty.target.wants/serial-getty@ttyS0.service",
                "/usr/lib/systemd/system/serial-getty@.service"
            ),
            (
                "getty.target.wants/getty@tty1.service",
                "/usr/lib/systemd/system/getty@.service"
            ),
            (
                "getty.target.wants/getty@tty5.service",
                "/usr/lib/systemd/system/getty@.service"
            ),
        ])
    );
    assert_eq!(r.state("getty@.service"), Ok(UnitFileState::Enabled));
    assert_eq!(r.state("getty@tty5.service"), Ok(UnitFileState::Enabled));
    assert_eq!(r.state("getty@tty2.service"), Ok(UnitFileState::Disabled));
    // Enabled only through an instance: "indirect".
    assert_eq!(
        r.state("serial-getty@.service"),
        Ok(UnitFileState::Indirect)
    );

    // Disabling an instance removes only its link; disabling the template
    // removes every instance.
    r.disable(&["getty@tty5.service"]).result.unwrap();
    assert!(
        r.links()
            .contains_key("getty.target.wants/getty@tty1.service")
    );
    assert!(
        !r.links()
            .contains_key("getty.target.wants/getty@tty5.service")
    );
    r.disable(&["getty@.service", "serial-getty@.service"])
        .result
        .unwrap();
    assert!(r.links().is_empty());
}

#[test]
fn specifiers_in_install_values() {
    let r = Root::new(&[(
        "t@.service",
        &unit(
            "WantedBy=%i.target %n.target %N.target %p.target %j.target\n\
             Alias=t-%i@.service\nDefaultInstance=foo\n",
        ),
    )]);
    r.enable(&["t@.service"]).result.unwrap();
    r.enable(&["t@bar.service"]).result.unwrap();
    let t = "/usr/lib/systemd/system/t@.service";
    assert_eq!(
        r.links(),
        links(&[
            ("t-foo@.service", t),
            ("foo.target.wants/t@foo.service", t),
            ("t@foo.service.target.wants/t@foo.service", t),
            ("t@foo.target.wants/t@foo.service", t),
            ("t.target.wants/t@foo.service", t),
            // The alias of an instance is the instance of the alias.
            ("t-bar@bar.service", t),
            ("bar.target.wants/t@bar.service", t),
            ("t@bar.service.target.wants/t@bar.service", t),
            ("t@bar.target.wants/t@bar.service", t),
            ("t.target.wants/t@bar.service", t),
        ])
    );

    // Specifiers the install code does not know fail the link.
    let r = Root::new(&[("u.service", &unit("WantedBy=%I.target\n"))]);
    let o = r.enable(&["u.service"]);
    assert_eq!(o.result, Err(InstallError::BadSpecifier));
    assert_eq!(
        r.messages(&o, "enable"),
        ["Failed to enable unit, invalid specifier in \"%I.target\"."]
    );
    // %m reads the root's machine id, and fails without one.
    let r = Root::new(&[("m.service", &unit("WantedBy=m-%m.target\n"))]);
    assert_eq!(
        r.enable(&["m.service"]).result,
        Err(InstallError::Unresolvable)
    );
    r.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    r.enable(&["m.service"]).result.unwrap();
    assert!(
        r.links()
            .contains_key("m-0123456789abcdef0123456789abcdef.target.wants/m.service")
    );
}

#[test]
fn alias_of_a_template_is_followed_with_the_instance() {
    let r = Root::new(&[(
        "getty@.service",
        &unit("WantedBy=getty.target\nDefaultInstance=tty1\n"),
    )]);
    r.symlink("usr/lib/systemd/system/autovt@.service", "getty@.service");
    // The alias's instance is carried to the unit it leads to.
    r.enable(&["autovt@tty3.service"]).result.unwrap();
    // The alias template enables the real template (its DefaultInstance).
    r.enable(&["autovt@.service"]).result.unwrap();
    let g = "/usr/lib/systemd/system/getty@.service";
    assert_eq!(
        r.links(),
        links(&[
            ("getty.target.wants/getty@tty3.service", g),
            ("getty.target.wants/getty@tty1.service", g),
        ])
    );
    assert_eq!(r.state("autovt@.service"), Ok(UnitFileState::Alias));
    assert_eq!(r.state("autovt@tty3.service"), Ok(UnitFileState::Enabled));
}

#[test]
fn masked_units() {
    let r = Root::new(&[
        (
            "cups.service",
            &unit("WantedBy=multi-user.target\nAlso=cups.socket\n"),
        ),
        (
            "cups.socket",
            "[Socket]\nListenStream=631\n[Install]\nWantedBy=sockets.target\n",
        ),
    ]);
    let o = mask(&r.lp, &strings(&["cups.socket"]), Options::default());
    assert_eq!(o.result, Ok(0));
    assert_eq!(
        r.messages(&o, "mask"),
        ["Created symlink R/etc/systemd/system/cups.socket → /dev/null."]
    );
    assert_eq!(r.state("cups.socket"), Ok(UnitFileState::Masked));

    // Enabling a masked unit is an error.
    let o = r.enable(&["cups.socket"]);
    assert_eq!(o.result, Err(InstallError::Masked));
    assert_eq!(
        r.messages(&o, "enable"),
        ["Failed to enable unit, unit R/etc/systemd/system/cups.socket is masked."]
    );
    // A masked unit pulled in by Also= is skipped with a notice.
    let o = r.enable(&["cups.service"]);
    assert_eq!(o.result, Ok(2));
    assert!(
        r.messages(&o, "enable")
            .contains(&"Unit R/etc/systemd/system/cups.socket is masked, ignoring.".to_owned())
    );
    assert!(!r.links().contains_key("sockets.target.wants/cups.socket"));

    // Masking over a unit file in /etc is refused; --force does not help.
    r.write("etc/systemd/system/local.service", SVC);
    let o = mask(
        &r.lp,
        &strings(&["local.service"]),
        Options {
            force: true,
            ..Options::default()
        },
    );
    assert_eq!(o.result, Err(InstallError::Exists));

    // Unmask removes the link, twice is fine, and a masked name that no
    // file provides can be masked and unmasked too.
    let o = unmask(&r.lp, &strings(&["cups.socket"]), Options::default());
    assert_eq!(
        r.messages(&o, "unmask"),
        ["Removed \"R/etc/systemd/system/cups.socket\"."]
    );
    assert_eq!(
        unmask(&r.lp, &strings(&["cups.socket"]), Options::default()).changes,
        []
    );
    assert_eq!(r.state("cups.socket"), Ok(UnitFileState::Disabled));
    mask(&r.lp, &strings(&["nothere.service"]), Options::default())
        .result
        .unwrap();
    assert_eq!(r.state("nothere.service"), Ok(UnitFileState::Masked));
    assert_eq!(
        r.enable(&["nothere.service"]).result,
        Err(InstallError::Masked)
    );
    unmask(&r.lp, &strings(&["nothere.service"]), Options::default())
        .result
        .unwrap();
    assert_eq!(r.state("nothere.service"), Err(InstallError::NotFound));
}

#[test]
fn also_chains_with_cycles_are_enabled_once() {
    let r = Root::new(&[
        (
            "c1.service",
            &unit("WantedBy=multi-user.target\nAlso=c2.service\n"),
        ),
        (
            "c2.service",
            &unit("WantedBy=multi-user.target\nAlso=c3.service\n"),
        ),
        (
            "c3.service",
            &unit("Also=c1.service c3.service missing.service\n"),
        ),
    ]);
    let o = r.enable(&["c3.service"]);
    // c3 itself has nothing to link; c1 and c2 each count once.
    assert_eq!(o.result, Ok(2));
    assert_eq!(
        r.messages(&o, "enable")
            .iter()
            .filter(|m| m.starts_with("Created symlink"))
            .count(),
        2
    );
    assert!(
        r.messages(&o, "enable")
            .contains(&"Failed to enable auxiliary unit missing.service, ignoring.".to_owned())
    );
    assert_eq!(
        r.links().keys().cloned().collect::<Vec<_>>(),
        [
            "multi-user.target.wants/c1.service",
            "multi-user.target.wants/c2.service"
        ]
    );
    // Only Also=: "indirect".
    assert_eq!(r.state("c3.service"), Ok(UnitFileState::Indirect));
    // Disabling any of them disables the whole cycle.
    let o = r.disable(&["c2.service"]);
    assert_eq!(o.result, Ok(0));
    assert!(r.links().is_empty());
}

#[test]
fn unit_not_found() {
    let r = Root::new(&[("a.service", &unit("WantedBy=multi-user.target\n"))]);
    let o = r.enable(&["a.service", "nothere.service"]);
    assert_eq!(o.result, Err(InstallError::NotFound));
    assert_eq!(
        r.messages(&o, "enable"),
        ["Failed to enable unit, unit nothere.service does not exist."]
    );
    // Nothing is enabled when one name is missing.
    assert!(r.links().is_empty());
    assert_eq!(r.state("nothere.service"), Err(InstallError::NotFound));
    // disable reports it but succeeds, as systemctl does.
    let o = r.disable(&["nothere.service"]);
    assert_eq!(o.result, Ok(0));
    assert_eq!(
        r.messages(&o, "disable"),
        ["Failed to disable unit, unit nothere.service does not exist."]
    );
    // A dangling alias.
    r.symlink("usr/lib/systemd/system/gone-alias.service", "gone.service");
    assert_eq!(r.state("gone-alias.service"), Err(InstallError::Dangling));
    assert_eq!(
        check_names(&r.lp, &strings(&["gone-alias.service"])),
        Err(InstallError::Dangling)
    );
}

#[test]
fn static_linked_and_self_alias_units() {
    let r = Root::new(&[
        ("static.service", SVC),
        ("foo.service", &unit("WantedBy=multi-user.target\n")),
    ]);
    let o = r.enable(&["static.service"]);
    assert_eq!(o.result, Ok(0), "no installation config");
    assert_eq!(r.state("static.service"), Ok(UnitFileState::Static));

    // A unit file outside the search path is linked in by path.
    r.write("opt/lnk.service", &unit("WantedBy=multi-user.target\n"));
    r.enable(&["/opt/lnk.service"]).result.unwrap();
    assert_eq!(
        r.links().get("lnk.service").map(String::as_str),
        Some("/opt/lnk.service")
    );
    assert_eq!(r.state("lnk.service"), Ok(UnitFileState::Enabled));
    r.disable(&["lnk.service"]).result.unwrap();
    assert!(r.links().is_empty());

    // A link in /etc to the same name in /usr/lib is refused.
    r.symlink(
        "etc/systemd/system/foo.service",
        "/usr/lib/systemd/system/foo.service",
    );
    let o = r.enable(&["foo.service"]);
    assert_eq!(o.result, Err(InstallError::Loop));
    assert_eq!(
        r.messages(&o, "enable"),
        ["Failed to enable unit, refusing to operate on linked unit file foo.service."]
    );
}

#[test]
fn install_section_of_drop_ins() {
    let r = Root::new(&[("dd.service", &unit("WantedBy=a.target\n"))]);
    r.write(
        "usr/lib/systemd/system/dd.service.d/x.conf",
        "[Install]\nWantedBy=b.target\nAlias=dd2.service\n",
    );
    // An empty assignment in a later drop-in resets the list.
    r.write(
        "etc/systemd/system/dd.service.d/y.conf",
        "[Install]\nWantedBy=\nRequiredBy=c.target\n",
    );
    r.enable(&["dd.service"]).result.unwrap();
    let d = "/usr/lib/systemd/system/dd.service";
    assert_eq!(
        r.links(),
        links(&[("dd2.service", d), ("c.target.requires/dd.service", d)])
    );
}

#[test]
fn upheld_by_links_into_upholds() {
    let r = Root::new(&[("u.service", &unit("UpheldBy=multi-user.target\n"))]);
    r.enable(&["u.service"]).result.unwrap();
    assert_eq!(
        r.links(),
        links(&[(
            "multi-user.target.upholds/u.service",
            "/usr/lib/systemd/system/u.service"
        )])
    );
    assert_eq!(r.state("u.service"), Ok(UnitFileState::Enabled));
}

#[test]
fn reenable_resets_the_links() {
    let r = Root::new(&[("a.service", &unit("WantedBy=one.target\n"))]);
    r.enable(&["a.service"]).result.unwrap();
    r.write(
        "usr/lib/systemd/system/a.service",
        &unit("WantedBy=two.target\n"),
    );
    let o = reenable(&r.lp, &strings(&["a.service"]), Options::default());
    assert_eq!(o.result, Ok(1));
    assert_eq!(
        r.links().keys().cloned().collect::<Vec<_>>(),
        ["two.target.wants/a.service"]
    );
}

#[test]
fn flints_own_directory_is_searched_first() {
    let r = Root::new(&[(
        "s.socket",
        "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n",
    )]);
    r.write(
        "etc/flint/system/s.socket",
        "[Socket]\nListenStream=2\n[Install]\nWantedBy=multi-user.target\n",
    );
    r.enable(&["s.socket"]).result.unwrap();
    // flint's copy wins and needs no link of its own: it is on the search
    // path.
    assert_eq!(
        r.links(),
        links(&[(
            "multi-user.target.wants/s.socket",
            "/etc/flint/system/s.socket"
        )])
    );
}

#[test]
fn user_scope_paths() {
    let env = |k: &str| match k {
        "HOME" => Some("/home/u".to_owned()),
        "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_owned()),
        _ => None,
    };
    let lp = LookupPaths::user_with(&env, None);
    assert_eq!(lp.scope, Scope::User);
    assert_eq!(
        lp.persistent_config,
        Path::new("/home/u/.config/systemd/user")
    );
    assert_eq!(
        lp.runtime_config.as_deref(),
        Some(Path::new("/run/user/1000/systemd/user"))
    );
    assert!(lp.search_path.contains(&lp.persistent_config));
    assert!(
        lp.search_path
            .iter()
            .any(|d| d == Path::new("/usr/lib/systemd/user"))
    );
    let env = |k: &str| match k {
        "HOME" => Some("/home/u".to_owned()),
        "XDG_CONFIG_HOME" => Some("/cfg".to_owned()),
        _ => None,
    };
    let lp = LookupPaths::user_with(&env, None);
    assert_eq!(lp.persistent_config, Path::new("/cfg/systemd/user"));
    assert_eq!(lp.config_path(true), Err(InstallError::NoDevice));
}

#[test]
fn user_scope_enable() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display().to_string();
    let env = |k: &str| (k == "HOME").then(|| h.clone());
    let lp = LookupPaths::user_with(&env, None);
    let data = home.path().join(".local/share/systemd/user");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("u.service"), unit("WantedBy=default.target\n")).unwrap();
    let o = enable(&lp, &strings(&["u.service"]), Options::default());
    assert_eq!(o.result, Ok(1));
    let link = home
        .path()
        .join(".config/systemd/user/default.target.wants/u.service");
    assert_eq!(std::fs::read_link(&link).unwrap(), data.join("u.service"));
    assert_eq!(
        unit_file_state(&lp, "u.service"),
        Ok(UnitFileState::Enabled)
    );
}

#[test]
fn root_prefix_handling() {
    let r = Root::new(&[]);
    let p = r.path().join("etc/systemd/system/x.service");
    assert_eq!(
        r.lp.skip_root(&p),
        Path::new("/etc/systemd/system/x.service")
    );
    assert_eq!(
        r.lp.skip_root(Path::new("/dev/null")),
        Path::new("/dev/null")
    );
    assert_eq!(r.lp.persistent_config, r.path().join("etc/systemd/system"));
    assert_eq!(r.lp.search_path[0], r.path().join("etc/flint/system"));
    assert!(r.lp.is_runtime_dir(&r.path().join("run/systemd/system")));
    assert!(!r.lp.is_runtime_dir(&r.path().join("etc/systemd/system")));
}

#[test]
fn invalid_names_and_aliases() {
    let r = Root::new(&[(
        "al.service",
        &unit("Alias=bad.socket\nAlias=al2.service\nAlias=foo.target.wants/al.service\n"),
    )]);
    let o = r.enable(&["al.service"]);
    assert_eq!(o.result, Err(InstallError::BadAlias));
    assert_eq!(
        r.messages(&o, "enable")[0],
        "Failed to enable unit, cannot alias al.service as bad.socket."
    );
    // The good aliases are still created.
    assert!(r.links().contains_key("al2.service"));
    assert!(r.links().contains_key("foo.target.wants/al.service"));
    let o = r.disable(&["not a unit"]);
    assert_eq!(o.result, Err(InstallError::BadName));
    let o = mask(&r.lp, &strings(&["/abs/x.service"]), Options::default());
    assert_eq!(
        r.messages(&o, "mask"),
        ["Failed to mask: Invalid argument."]
    );
}

#[test]
fn locale_decides_the_arrow() {
    assert!(locale_is_utf8(&|_| None));
    assert!(locale_is_utf8(
        &|k| (k == "LANG").then(|| "en_US.UTF-8".to_owned())
    ));
    assert!(!locale_is_utf8(&|k| (k == "LANG").then(|| "C".to_owned())));
    assert!(!locale_is_utf8(
        &|k| (k == "SYSTEMD_UTF8").then(|| "0".to_owned())
    ));
    let o = Outcome {
        changes: vec![Change::Symlink {
            path: "/a".into(),
            target: "/b".into(),
        }],
        result: Ok(1),
        warnings: Vec::new(),
    };
    assert_eq!(
        o.messages("enable", false)[0].text,
        "Created symlink /a -> /b."
    );
}

#[test]
fn command_line_names_are_mangled_as_systemctl_does() {
    let cwd = Path::new("/tmp");
    let m = |a: &str| mangle_arg(a, "to enable", cwd);
    assert_eq!(m("ssh"), Ok(("ssh.service".to_owned(), vec![])));
    assert_eq!(m("ssh.socket"), Ok(("ssh.socket".to_owned(), vec![])));
    assert_eq!(m("./x.service").unwrap().0, "/tmp/./x.service");
    assert_eq!(m("/abs/x.service").unwrap().0, "/abs/x.service");
    let (n, notes) = m("foo bar").unwrap();
    assert_eq!(n, "foo\\x20bar.service");
    assert_eq!(
        notes,
        [
            "Invalid unit name \"foo bar\" escaped as \"foo\\x20bar\" (maybe you should use systemd-escape?)."
        ]
    );
    let (_, notes) = m("s*h.service").unwrap();
    assert_eq!(
        notes[0],
        "Glob pattern passed to enable, but globs are not supported for this."
    );
    assert_eq!(m(""), Err(InstallError::Invalid));
    // Paths of changes are stored simplified.
    assert_eq!(simplify("/tmp/./a//b/"), "/tmp/a/b");
    assert_eq!(simplify("a.service"), "a.service");
}

#[test]
fn command_lines_and_exit_codes() {
    use super::command::{Invocation, Line, Verb, run};
    let r = Root::new(&[
        ("a.service", &unit("WantedBy=multi-user.target\n")),
        ("b.service", &unit("WantedBy=multi-user.target\n")),
    ]);
    let go = |verb, units: &[&str], quiet| {
        let units = strings(units);
        let lp =
            LookupPaths::system_from(Some(r.path()), &SearchPath::system_with(&|_| None, None));
        run(
            lp,
            &Invocation {
                verb,
                units: &units,
                options: Options::default(),
                quiet,
                cwd: Path::new("/"),
                env: &|_| None,
            },
        )
    };
    assert_eq!(go(Verb::Enable, &["a"], false).exit, 0);
    let rep = go(Verb::IsEnabled, &["a", "b"], false);
    assert_eq!(
        rep.lines,
        [
            Line::Stdout("enabled".into()),
            Line::Stdout("disabled".into())
        ]
    );
    assert_eq!(rep.exit, 0, "one of them is enabled");
    assert_eq!(go(Verb::IsEnabled, &["b"], false).exit, 1);
    assert!(go(Verb::IsEnabled, &["a"], true).lines.is_empty());
    let rep = go(Verb::IsEnabled, &["nothere", "a"], false);
    assert_eq!(
        (rep.exit, rep.lines),
        (
            1,
            vec![Line::Stderr(
                "Failed to get unit file state for nothere.service: No such file or directory"
                    .into()
            )]
        )
    );
    // disable takes file names, with a warning for paths.
    let rep = go(Verb::Disable, &["/usr/lib/systemd/system/a.service"], false);
    assert_eq!(rep.exit, 0);
    assert!(
        matches!(&rep.lines[0], Line::Stderr(l) if l.starts_with("Warning: Can't execute disable"))
    );
    assert_eq!(rep.units, ["a.service"]);
    assert!(r.links().is_empty());
    // A unit without [Install] enables with the notice, and exit 0.
    r.write("usr/lib/systemd/system/s.service", SVC);
    let rep = go(Verb::Enable, &["s"], false);
    assert_eq!(rep.exit, 0);
    assert!(
        matches!(&rep.lines[0], Line::Stderr(l) if l.starts_with("The unit files have no installation config"))
    );
}

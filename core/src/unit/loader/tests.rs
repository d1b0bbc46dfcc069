//! Fixture-tree tests for the loader. Expected results marked "oracle" were
//! produced by systemd 252's test-mode dump (`systemd --test --system` with
//! `SYSTEMD_UNIT_PATH` set to the same tree).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

const SERVICE: &str = "[Service]\nExecStart=/bin/true\n";

/// A temporary tree with an `etc` (high priority) and a `lib` (low
/// priority) unit directory.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("lib")).unwrap();
        Tree { _tmp: tmp, root }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
        self
    }
    fn link(&self, rel: &str, target: impl AsRef<Path>) -> &Self {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }
    fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.p(rel)).unwrap();
        self
    }
    fn search(&self) -> SearchPath {
        SearchPath::from_dirs(vec![self.p("etc"), self.p("lib")], false)
    }
    fn resolve(&self, name: &str) -> Result<UnitSources, LoadError> {
        resolve(&self.search(), &name.parse().unwrap())
    }
    fn ok(&self, name: &str) -> UnitSources {
        match self.resolve(name) {
            Ok(s) => s,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    /// Paths relative to the tree root, for readable assertions.
    fn rel(&self, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.strip_prefix(&self.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

fn names(v: &[UnitName]) -> Vec<&str> {
    v.iter().map(UnitName::as_str).collect()
}

#[test]
fn first_match_wins_across_directories() {
    let t = Tree::new();
    t.file("etc/a.service", SERVICE)
        .file("lib/a.service", SERVICE)
        .file("lib/b.service", SERVICE);
    let a = t.ok("a.service");
    assert_eq!(a.fragment, Some(t.p("etc/a.service")));
    assert_eq!(a.id.as_str(), "a.service");
    assert!(!a.masked);
    assert!(a.aliases.is_empty());
    assert_eq!(t.ok("b.service").fragment, Some(t.p("lib/b.service")));
    assert!(
        matches!(t.resolve("c.service"), Err(LoadError::NotFound(n)) if n.as_str() == "c.service")
    );
}

#[test]
fn instances_use_their_template_unless_they_have_a_file() {
    let t = Tree::new();
    t.file("lib/getty@.service", SERVICE)
        .file("etc/getty@tty1.service", SERVICE);
    let i = t.ok("getty@tty2.service");
    assert_eq!(i.fragment, Some(t.p("lib/getty@.service")));
    assert_eq!(i.id.as_str(), "getty@tty2.service");
    assert_eq!(i.name.as_str(), "getty@tty2.service");
    assert_eq!(
        t.ok("getty@tty1.service").fragment,
        Some(t.p("etc/getty@tty1.service"))
    );
    let tpl = t.ok("getty@.service");
    assert_eq!(tpl.id.as_str(), "getty@.service");
    assert!(matches!(
        t.resolve("other@x.service"),
        Err(LoadError::NotFound(_))
    ));
}

/// Oracle: `alias.service -> ../lib/real.service` in etc and
/// `alias2.service -> real.service` in lib merge into real.service with
/// aliases alias.service and alias2.service; drop-ins of the alias apply.
#[test]
fn aliases_resolve_to_the_target_and_bring_their_dropins() {
    let t = Tree::new();
    t.file("lib/real.service", SERVICE)
        .link("etc/alias.service", "../lib/real.service")
        .link("lib/alias2.service", "real.service")
        .file("etc/alias.service.d/a.conf", "[Unit]\n")
        .file("lib/real.service.d/r.conf", "[Unit]\n")
        .file("lib/service.d/50-all.conf", "[Unit]\n");
    for requested in ["alias.service", "alias2.service", "real.service"] {
        let s = t.ok(requested);
        assert_eq!(s.name.as_str(), requested);
        assert_eq!(s.id.as_str(), "real.service");
        assert_eq!(s.fragment, Some(t.p("lib/real.service")));
        assert_eq!(names(&s.aliases), ["alias.service", "alias2.service"]);
        assert_eq!(
            t.rel(&s.dropins),
            [
                "lib/service.d/50-all.conf",
                "etc/alias.service.d/a.conf",
                "lib/real.service.d/r.conf"
            ]
        );
    }
}

/// Oracle: a self-alias (`etc/self.service -> ../lib/self.service`) is
/// ignored and the file in lib is used.
#[test]
fn self_alias_falls_through_to_lower_directory() {
    let t = Tree::new();
    t.file("lib/self.service", SERVICE)
        .link("etc/self.service", "../lib/self.service");
    let s = t.ok("self.service");
    assert_eq!(s.fragment, Some(t.p("lib/self.service")));
    assert!(s.aliases.is_empty());
}

/// Oracle (fo3 tree): template aliases, instance aliases and rejected links.
#[test]
fn template_and_instance_aliases() {
    let t = Tree::new();
    t.file("lib/inst@.service", SERVICE)
        .link("lib/other@.service", "inst@.service")
        .link("lib/other@x.service", "inst@.service")
        .link("lib/zz@y.service", "inst@.service");
    let a = t.ok("other@a.service");
    assert_eq!(a.id.as_str(), "inst@a.service");
    assert_eq!(a.fragment, Some(t.p("lib/inst@.service")));
    assert_eq!(names(&a.aliases), ["other@a.service"]);
    assert_eq!(names(&t.ok("inst@a.service").aliases), ["other@a.service"]);
    assert_eq!(names(&t.ok("inst@x.service").aliases), ["other@x.service"]);
    assert_eq!(names(&t.ok("other@x.service").aliases), ["other@x.service"]);
    assert_eq!(t.ok("other@x.service").id.as_str(), "inst@x.service");
    assert_eq!(
        names(&t.ok("inst@y.service").aliases),
        ["other@y.service", "zz@y.service"]
    );
    let tpl = t.ok("other@.service");
    assert_eq!(tpl.id.as_str(), "inst@.service");
    assert_eq!(names(&tpl.aliases), ["other@.service"]);
}

#[test]
fn instance_with_own_file_is_not_an_alias_of_the_template_alias() {
    let t = Tree::new();
    t.file("lib/inst@.service", SERVICE)
        .link("lib/other@.service", "inst@.service")
        .file("lib/other@b.service", SERVICE);
    let s = t.ok("inst@b.service");
    assert!(
        s.aliases.is_empty(),
        "other@b.service has a file of its own: {:?}",
        s.aliases
    );
    assert_eq!(
        t.ok("other@b.service").fragment,
        Some(t.p("lib/other@b.service"))
    );
}

/// Oracle: `bad.socket -> bad.service` is rejected ("incompatible suffix")
/// and the unit is not found; so are dangling and nested aliases.
#[test]
fn rejected_and_broken_aliases() {
    let t = Tree::new();
    t.file("lib/bad.service", SERVICE)
        .link("lib/bad.socket", "bad.service")
        .link("lib/broken.service", "nowhere.service")
        .dir("lib/sub")
        .file("lib/sub/nested.service", SERVICE)
        .link("lib/nest.service", "sub/nested.service")
        .file("lib/tpl@.service", SERVICE)
        .link("lib/plain.service", "tpl@.service")
        .link("lib/x@a.service", "tpl@b.service");
    assert!(matches!(
        t.resolve("bad.socket"),
        Err(LoadError::BadAlias { .. })
    ));
    assert!(matches!(
        t.resolve("broken.service"),
        Err(LoadError::NotFound(_))
    ));
    assert!(matches!(
        t.resolve("nest.service"),
        Err(LoadError::NotFound(_))
    ));
    assert!(matches!(
        t.resolve("plain.service"),
        Err(LoadError::BadAlias { .. })
    ));
    assert!(matches!(
        t.resolve("x@a.service"),
        Err(LoadError::BadAlias { .. })
    ));
    let idx = UnitIndex::build(&t.search());
    assert!(
        idx.diagnostics
            .iter()
            .any(|d| d.message.contains("incompatible suffix"))
    );
    assert!(
        idx.diagnostics
            .iter()
            .any(|d| d.message.contains("suspicious symlink"))
    );
}

#[test]
fn alias_loops_are_reported() {
    let t = Tree::new();
    t.link("lib/a.service", "b.service")
        .link("lib/b.service", "a.service");
    assert!(matches!(
        t.resolve("a.service"),
        Err(LoadError::AliasLoop(_))
    ));
}

/// Oracle: a symlink out of the search path is a linked unit; the fragment
/// path is the link itself.
#[test]
fn linked_units_are_read_through_the_link() {
    let t = Tree::new();
    t.file("store/abc-unit-web.service/web.service", SERVICE)
        .link(
            "etc/web.service",
            t.p("store/abc-unit-web.service/web.service"),
        )
        .file("store/other.service", SERVICE)
        .link("etc/renamed.service", t.p("store/other.service"));
    let s = t.ok("web.service");
    assert_eq!(s.fragment, Some(t.p("etc/web.service")));
    assert_eq!(s.id.as_str(), "web.service");
    assert_eq!(fs::read_to_string(s.fragment.unwrap()).unwrap(), SERVICE);
    let r = t.ok("renamed.service");
    assert_eq!(
        r.id.as_str(),
        "renamed.service",
        "a linked unit keeps the link's name"
    );
    assert!(r.aliases.is_empty());
}

#[test]
fn dangling_linked_unit_is_an_io_error() {
    let t = Tree::new();
    t.link("etc/gone.service", "/nonexistent/flint-test/gone.service");
    match t.resolve("gone.service") {
        Err(LoadError::Io { path, source }) => {
            assert_eq!(path, t.p("etc/gone.service"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Oracle: masking by /dev/null and by an empty file; drop-ins are still
/// listed, aliases are not.
#[test]
fn masking() {
    let t = Tree::new();
    t.link("etc/masked.service", "/dev/null")
        .file("lib/masked.service", SERVICE)
        .file("etc/masked.service.d/m.conf", "[Unit]\n")
        .file("lib/service.d/50-all.conf", "[Unit]\n")
        .file("lib/empty.service", "")
        .link("lib/alias-of-empty.service", "empty.service");
    let m = t.ok("masked.service");
    assert!(m.masked);
    assert_eq!(m.fragment, Some(t.p("etc/masked.service")));
    assert_eq!(
        t.rel(&m.dropins),
        ["lib/service.d/50-all.conf", "etc/masked.service.d/m.conf"]
    );
    let e = t.ok("empty.service");
    assert!(e.masked);
    assert_eq!(e.fragment, Some(t.p("lib/empty.service")));
    assert!(e.aliases.is_empty(), "masked units have no aliases");
    let a = t.ok("alias-of-empty.service");
    assert!(a.masked);
    assert_eq!(a.id.as_str(), "empty.service");
}

/// Oracle: a unit with drop-ins but no fragment is not found.
#[test]
fn dropins_alone_do_not_make_a_unit() {
    let t = Tree::new();
    t.file("etc/only.service.d/o.conf", SERVICE);
    assert!(matches!(
        t.resolve("only.service"),
        Err(LoadError::NotFound(_))
    ));
}

/// Oracle (reference 6.6): foo-a.service with `etc/foo-a.service.d/10-a.conf`,
/// `etc/foo-.service.d/20-prefix.conf`, `lib/service.d/50-all.conf` →
/// 10-a, 20-prefix, 50-all.
#[test]
fn dropins_from_dash_prefixes_and_type_level() {
    let t = Tree::new();
    t.file("lib/foo-a.service", SERVICE)
        .file("etc/foo-a.service.d/10-a.conf", "")
        .file("etc/foo-.service.d/20-prefix.conf", "")
        .file("lib/service.d/50-all.conf", "");
    let s = t.ok("foo-a.service");
    assert_eq!(
        t.rel(&s.dropins),
        [
            "etc/foo-a.service.d/10-a.conf",
            "etc/foo-.service.d/20-prefix.conf",
            "lib/service.d/50-all.conf"
        ]
    );
}

/// Oracle (reference 6.6): bar@x.service with `bar@x.service.d/i.conf`,
/// `bar@.service.d/t.conf`, `service.d/50-all.conf` → 50-all, i, t.
#[test]
fn dropins_for_instances_include_the_template() {
    let t = Tree::new();
    t.file("lib/bar@.service", SERVICE)
        .file("etc/bar@x.service.d/i.conf", "")
        .file("etc/bar@.service.d/t.conf", "")
        .file("lib/service.d/50-all.conf", "");
    let s = t.ok("bar@x.service");
    assert_eq!(
        t.rel(&s.dropins),
        [
            "lib/service.d/50-all.conf",
            "etc/bar@x.service.d/i.conf",
            "etc/bar@.service.d/t.conf"
        ]
    );
}

#[test]
fn dash_prefixes_keep_the_instance() {
    let t = Tree::new();
    t.file("lib/a-b@.service", SERVICE)
        .file("etc/a-@i.service.d/1.conf", "")
        .file("etc/a-@.service.d/2.conf", "")
        .file("etc/a-b@.service.d/3.conf", "")
        .file("etc/a-.service.d/4.conf", "")
        .file("etc/a.service.d/5.conf", "");
    let s = t.ok("a-b@i.service");
    assert_eq!(
        t.rel(&s.dropins),
        [
            "etc/a-@i.service.d/1.conf",
            "etc/a-@.service.d/2.conf",
            "etc/a-b@.service.d/3.conf",
            "etc/a-.service.d/4.conf",
        ],
        "oracle: the template's prefix a-.service.d applies, a.service.d does not"
    );
}

/// Same file name: search-path priority beats name specificity among
/// name-specific directories, and any name-specific file beats the
/// type-level one (reference 6.6).
#[test]
fn same_named_dropins_earliest_directory_wins() {
    let t = Tree::new();
    t.file("lib/foo-bar.service", SERVICE)
        .file("lib/foo-bar.service.d/x.conf", "lib-specific")
        .file("etc/foo-.service.d/x.conf", "etc-prefix")
        .file("etc/service.d/y.conf", "etc-type")
        .file("lib/foo-bar.service.d/y.conf", "lib-specific-y")
        .file("lib/foo-bar.service.d/z.conf", "z");
    let s = t.ok("foo-bar.service");
    assert_eq!(
        t.rel(&s.dropins),
        [
            "etc/foo-.service.d/x.conf",
            "lib/foo-bar.service.d/y.conf",
            "lib/foo-bar.service.d/z.conf"
        ]
    );
}

/// Oracle: `etc/dm.service.d/x.conf -> /dev/null` hides `lib/.../x.conf`
/// and is listed itself.
#[test]
fn dropin_masked_by_dev_null() {
    let t = Tree::new();
    t.file("lib/dm.service", SERVICE)
        .link("etc/dm.service.d/x.conf", "/dev/null")
        .file("lib/dm.service.d/x.conf", "[Unit]\n")
        .file("lib/dm.service.d/y.conf", "[Unit]\n");
    let s = t.ok("dm.service");
    assert_eq!(
        t.rel(&s.dropins),
        ["etc/dm.service.d/x.conf", "lib/dm.service.d/y.conf"]
    );
    assert!(fs::read_to_string(&s.dropins[0]).unwrap().is_empty());
}

#[test]
fn only_visible_conf_files_are_dropins() {
    let t = Tree::new();
    t.file("lib/a.service", SERVICE)
        .file("lib/a.service.d/ok.conf", "")
        .file("lib/a.service.d/notes.txt", "")
        .file("lib/a.service.d/.hidden.conf", "")
        .file("lib/a.service.d/old.conf~", "")
        .file("lib/a.service.d/x.conf.bak", "")
        .dir("lib/a.service.d/dir.conf")
        .file("lib/a.socket.d/other-type.conf", "");
    assert_eq!(
        t.rel(&t.ok("a.service").dropins),
        ["lib/a.service.d/ok.conf"]
    );
}

#[test]
fn dropin_directory_may_be_a_symlink() {
    let t = Tree::new();
    t.file("lib/a.service", SERVICE)
        .file("store/overrides/overrides.conf", "[Service]\n")
        .link("etc/a.service.d", t.p("store/overrides"));
    // systemd names the drop-in by its directory's resolved path.
    assert_eq!(
        t.rel(&t.ok("a.service").dropins),
        ["store/overrides/overrides.conf"]
    );
}

#[test]
fn socket_dropins_use_socket_d() {
    let t = Tree::new();
    t.file("lib/a.socket", "[Socket]\nListenStream=1\n")
        .file("lib/socket.d/s.conf", "")
        .file("lib/service.d/x.conf", "");
    assert_eq!(t.rel(&t.ok("a.socket").dropins), ["lib/socket.d/s.conf"]);
}

#[test]
fn wants_and_requires_links() {
    let t = Tree::new();
    t.file("lib/multi-user.target", "[Unit]\n")
        .file("lib/web.service", SERVICE)
        .link("etc/multi-user.target.wants/web.service", "../web.service")
        .link(
            "etc/multi-user.target.wants/abs.service",
            "/nix/store/x-unit/abs.service",
        )
        .link("lib/multi-user.target.wants/web.service", "/dev/null")
        .link("lib/multi-user.target.wants/masked.service", "/dev/null")
        .file("lib/multi-user.target.wants/plain-file.service", SERVICE)
        .link("lib/multi-user.target.wants/bad-name", "../web.service")
        .link(
            "lib/multi-user.target.wants/getty@.service",
            "../getty@.service",
        )
        .link("lib/multi-.target.requires/req.socket", "../req.socket")
        .link("lib/target.wants/every.service", "../every.service")
        .link("lib/multi-user.target.upholds/up.service", "../up.service");
    let s = t.ok("multi-user.target");
    assert_eq!(
        names(&s.wants),
        [
            "abs.service",
            "every.service",
            "getty@multi-user.service",
            "web.service"
        ]
    );
    assert_eq!(names(&s.requires), ["req.socket"]);
    assert_eq!(names(&s.upholds), ["up.service"]);
    assert!(
        s.diagnostics
            .iter()
            .any(|d| d.message.contains("not a symlink"))
    );
    assert!(
        s.diagnostics
            .iter()
            .any(|d| d.message.contains("not a valid unit name"))
    );
}

#[test]
fn wants_of_an_instance_fill_in_its_instance() {
    let t = Tree::new();
    t.file("lib/app@.target", "[Unit]\n").link(
        "lib/app@.target.wants/worker@.service",
        "../worker@.service",
    );
    let s = t.ok("app@blue.target");
    assert_eq!(names(&s.wants), ["worker@blue.service"]);
}

#[test]
fn list_units_first_match_and_hidden_files() {
    let t = Tree::new();
    t.file("etc/a.service", SERVICE)
        .file("lib/a.service", SERVICE)
        .file("lib/.hidden.service", SERVICE)
        .file("lib/b.service.dpkg-old", SERVICE)
        .file("lib/notes.txt", "")
        .file("lib/t@.service", SERVICE)
        .link("lib/alias.service", "a.service")
        .link("lib/m.socket", "/dev/null")
        .dir("lib/a.service.d");
    let got: Vec<String> = list_units(&t.search())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        ["a.service", "alias.service", "m.socket", "t@.service"]
    );
}

#[test]
fn resolve_file_puts_the_files_directory_first() {
    let t = Tree::new();
    t.file("work/my.service", SERVICE)
        .file("lib/my.service", SERVICE)
        .file("lib/my.service.d/override.conf", "")
        .file("work/weird-name.txt", SERVICE);
    let s = resolve_file(&t.search(), &t.p("work/my.service")).unwrap();
    assert_eq!(s.fragment, Some(t.p("work/my.service")));
    assert_eq!(t.rel(&s.dropins), ["lib/my.service.d/override.conf"]);
    assert!(matches!(
        resolve_file(&t.search(), &t.p("work/weird-name.txt")),
        Err(LoadError::BadFileName { .. })
    ));
    assert!(matches!(
        resolve_file(&t.search(), &t.p("work/none.service")),
        Err(LoadError::Io { .. })
    ));
}

/// NixOS layout (nixos-units.md 1.1): the unit directory is a symlink into
/// the store, units are links to per-unit store paths, package units get an
/// `overrides.conf` drop-in, aliases are relative links, `.wants` links are
/// relative, and a disabled unit is a link to /dev/null.
#[test]
fn nixos_shaped_tree() {
    let t = Tree::new();
    let units = "store/h1-system-units";
    t.file(
        "store/h2-unit-sshd.socket/sshd.socket",
        "[Socket]\nListenStream=22\nAccept=true\n",
    )
    .file("store/h3-unit-sshd-.service/sshd@.service", SERVICE)
    .file(
        "store/h4-nix/lib/systemd/system/nix-daemon.service",
        SERVICE,
    )
    .file(
        "store/h5-unit-nix-daemon.service/overrides.conf",
        "[Service]\nX-StopIfChanged=false\n",
    )
    .dir(units)
    .link(
        &format!("{units}/sshd.socket"),
        t.p("store/h2-unit-sshd.socket/sshd.socket"),
    )
    .link(
        &format!("{units}/sshd@.service"),
        t.p("store/h3-unit-sshd-.service/sshd@.service"),
    )
    .link(
        &format!("{units}/nix-daemon.service"),
        t.p("store/h4-nix/lib/systemd/system/nix-daemon.service"),
    )
    .link(
        &format!("{units}/nix-daemon.service.d/overrides.conf"),
        t.p("store/h5-unit-nix-daemon.service/overrides.conf"),
    )
    .link(
        &format!("{units}/dbus-org.example.service"),
        "nix-daemon.service",
    )
    .link(&format!("{units}/off.service"), "/dev/null")
    .link(
        &format!("{units}/sockets.target.wants/sshd.socket"),
        "../sshd.socket",
    )
    .file(&format!("{units}/sockets.target"), "[Unit]\n")
    .link("etc-static", t.p(units));
    let search = SearchPath::from_dirs(vec![t.p("etc-static")], false);
    let idx = UnitIndex::build(&search);

    let sock = idx.resolve(&"sshd.socket".parse().unwrap()).unwrap();
    assert_eq!(sock.fragment, Some(t.p("etc-static/sshd.socket")));
    let inst = idx
        .resolve(
            &"sshd@3-127.0.0.1:22-127.0.0.1:5000.service"
                .parse()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(inst.fragment, Some(t.p("etc-static/sshd@.service")));
    let nd = idx
        .resolve(&"dbus-org.example.service".parse().unwrap())
        .unwrap();
    assert_eq!(
        nd.id.as_str(),
        "nix-daemon.service",
        "relative alias inside a symlinked unit dir"
    );
    assert_eq!(names(&nd.aliases), ["dbus-org.example.service"]);
    // The fragment keeps the search path's spelling; the drop-in is named
    // by its directory's resolved path, as systemd's dump prints it. The
    // drop-in file itself (a link into the store) is not resolved.
    assert_eq!(
        t.rel(&nd.dropins),
        ["store/h1-system-units/nix-daemon.service.d/overrides.conf"]
    );
    assert!(idx.resolve(&"off.service".parse().unwrap()).unwrap().masked);
    let st = idx.resolve(&"sockets.target".parse().unwrap()).unwrap();
    assert_eq!(names(&st.wants), ["sshd.socket"]);
}

/// From systemd src/test/test-unit-file.c,
/// test_unit_validate_alias_symlink_and_warn.
#[test]
fn validate_alias_vectors() {
    let table: &[(&str, &str, bool)] = &[
        ("a.service", "b.service", true),
        ("a.service", "b.socket", false),
        ("a.service", "b.foobar", false),
        ("a@.service", "b@.service", true),
        ("a@.service", "b@.socket", false),
        ("a@XXX.service", "b@YYY.service", false),
        ("a@XXX.service", "b@YYY.socket", false),
        ("a@.service", "b@YYY.service", false),
        ("a@XXX.service", "b@XXX.service", true),
        ("a@XXX.service", "b@.service", true),
        ("a@.service", "b.service", false),
        ("a.service", "b@.service", false),
        ("a@.slice", "b.slice", false),
        ("a.slice", "b.slice", false),
    ];
    for &(src, dst, ok) in table {
        assert_eq!(validate_alias(src, dst).is_ok(), ok, "{src} -> {dst}");
    }
}

#[test]
fn dash_truncation() {
    let table: &[(&str, Option<&str>)] = &[
        ("a-b-c", Some("a-b-")),
        ("a-b-", Some("a-")),
        ("a-", None),
        ("a", None),
        ("-a", None),
        ("a--", Some("a-")),
        ("unit-with-multiple-dashes", Some("unit-with-multiple-")),
    ];
    for &(input, expected) in table {
        assert_eq!(truncate_at_dash(input).as_deref(), expected, "{input}");
    }
}

#[test]
fn unreadable_or_missing_directories_are_skipped() {
    let t = Tree::new();
    t.file("lib/a.service", SERVICE).file("etc-is-a-file", "");
    let search = SearchPath::from_dirs(
        vec![t.p("missing"), t.p("etc-is-a-file"), t.p("lib")],
        false,
    );
    assert_eq!(
        resolve(&search, &"a.service".parse().unwrap())
            .unwrap()
            .fragment,
        Some(t.p("lib/a.service"))
    );
}

#[test]
fn directory_named_like_a_unit_is_an_io_error() {
    let t = Tree::new();
    t.dir("lib/odd.service");
    assert!(matches!(
        t.resolve("odd.service"),
        Err(LoadError::Io { .. })
    ));
}

#[test]
fn resolve_recent_trusts_a_look_at_the_same_fragment_within_its_window() {
    let t = Tree::new();
    t.file("lib/e@.service", SERVICE)
        .file("lib/f@.service", SERVICE);
    let index = UnitIndex::build(&t.search());
    let name = |n: &str| -> UnitName { n.parse().unwrap() };
    let hour = std::time::Duration::from_hours(1);
    let first = index.resolve_recent(&name("e@1.service"), hour).unwrap();
    // The template grows: within the window, an instance of the same
    // template is resolved with what was read before.
    fs::write(t.p("lib/e@.service"), format!("{SERVICE}# edited\n")).unwrap();
    let again = index.resolve_recent(&name("e@2.service"), hour).unwrap();
    assert_eq!(again.fragment_stamp, first.fragment_stamp);
    assert_eq!(again.id.as_str(), "e@2.service");
    // Without a window, or by `resolve`, the file is looked at.
    let now = index
        .resolve_recent(&name("e@3.service"), std::time::Duration::ZERO)
        .unwrap();
    assert_ne!(now.fragment_stamp, first.fragment_stamp);
    assert_eq!(
        index.resolve(&name("e@4.service")).unwrap().fragment_stamp,
        now.fragment_stamp
    );
    // Another template is looked at, and replaces the one remembered.
    let other = index.resolve_recent(&name("f@1.service"), hour).unwrap();
    assert_eq!(
        other.fragment.as_deref(),
        Some(t.p("lib/f@.service").as_path())
    );
    fs::remove_file(t.p("lib/e@.service")).unwrap();
    assert!(matches!(
        index.resolve_recent(&name("e@5.service"), hour),
        Err(LoadError::Io { .. })
    ));
    // A copy of the index remembers nothing.
    assert!(
        index
            .clone()
            .resolve_recent(&name("f@2.service"), hour)
            .is_ok()
    );
}

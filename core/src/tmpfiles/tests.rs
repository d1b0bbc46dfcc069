use super::*;

fn one(line: &str) -> Item {
    let (items, errors) = parse(line, "t.conf", false);
    assert!(errors.is_empty(), "{errors:?}");
    items.into_iter().next().expect("one item")
}

fn err(line: &str) -> String {
    let (items, errors) = parse(line, "t.conf", false);
    assert!(items.is_empty(), "{items:?}");
    errors.first().expect("an error").message.clone()
}

#[test]
fn lines_parse_into_their_columns() {
    let i = one("d /run/mysqld 0755 mysql mysql -");
    assert_eq!((i.kind, i.plus), ('d', false));
    assert_eq!(i.path, Path::new("/run/mysqld"));
    assert_eq!(i.mode.map(|m| m.bits), Some(0o755));
    assert_eq!(i.user.as_ref().map(|u| u.name.as_str()), Some("mysql"));
    assert_eq!(i.group.as_ref().map(|g| g.name.as_str()), Some("mysql"));
    assert_eq!(i.argument, None);
    assert_eq!(i.origin, "t.conf:1");

    let i = one("f+!- \"/run/a b//c/\" ~:0640 :1 - 10d hello\\nworld  ");
    assert!(i.plus && i.boot_only && i.ignore_errors);
    assert_eq!(i.path, Path::new("/run/a b/c"));
    let m = i.mode.unwrap();
    assert!(m.masked && m.only_create && m.bits == 0o640);
    assert!(i.user.unwrap().only_create);
    assert_eq!(i.group, None);
    assert_eq!(i.content.as_deref(), Some(&b"hello\nworld"[..]));

    let i = one("L /etc/mtab - - - - ../proc/self/mounts");
    assert_eq!(i.argument.as_deref(), Some("../proc/self/mounts"));
    let i = one("w~ /run/x - - - - aGVsbG8=");
    assert_eq!(i.content.as_deref(), Some(&b"hello"[..]));
    let i = one("w~ /run/x - - - - /w==");
    assert_eq!(i.content.as_deref(), Some(&[0xff][..]), "binary content");
    let i = one("f /run/x - - - - a\\xffb");
    assert_eq!(i.content.as_deref(), Some(&b"a\xffb"[..]));
    let i = one("d /run/short");
    assert_eq!((i.mode, i.user, i.group), (None, None, None));
    // Comments and blank lines are no items.
    assert!(parse("# c\n\n   \n", "t", false).0.is_empty());
}

#[test]
fn bad_lines_are_reported_with_their_place() {
    assert!(err("y /run/x").contains("unknown line type 'y'"));
    assert!(err("d run/x").contains("not absolute"));
    assert!(err("d /run/x 0999").contains("invalid mode"));
    assert!(err("w /run/x").contains("w needs an argument"));
    assert!(err("d? /run/x").contains("unknown modifier"));
    assert!(err("d /run/%n").contains("%n"));
    let (_, errors) = parse("d /ok\nq\n", "f.conf", false);
    assert_eq!(
        errors[0].to_string(),
        "f.conf:2: a line needs at least a type and a path"
    );
}

fn run(root: &Path, text: &str, opts: Options) -> Report {
    let (items, errors) = parse(text, "t.conf", false);
    assert!(errors.is_empty(), "{errors:?}");
    apply(
        &items,
        &Options {
            root: Some(root.to_path_buf()),
            ..opts
        },
    )
}

fn create() -> Options {
    Options {
        create: true,
        ..Options::default()
    }
}

fn create_and_remove() -> Options {
    Options {
        remove: true,
        ..create()
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn directories_files_and_links_are_created_with_their_modes() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let me = nix::unistd::getuid().as_raw();
    let text = format!(
        "d /run/app/sub 0750 {me} - -\n\
         f /run/app/file 0600 - - - first\\n\n\
         f /run/app/plain\n\
         L /run/app/link - - - - /run/app/file\n\
         p /run/app/fifo 0600\n\
         d /var/lib/empty\n"
    );
    let rep = run(r, &text, create());
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(mode(&r.join("run/app/sub")), 0o750);
    assert_eq!(mode(&r.join("run/app")), 0o755, "parents get 0755");
    assert_eq!(
        fs::read_to_string(r.join("run/app/file")).unwrap(),
        "first\n"
    );
    assert_eq!(mode(&r.join("run/app/file")), 0o600);
    assert_eq!(mode(&r.join("run/app/plain")), 0o644);
    assert_eq!(
        fs::read_link(r.join("run/app/link")).unwrap(),
        Path::new("/run/app/file")
    );
    assert!(
        fs::symlink_metadata(r.join("run/app/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(r.join("var/lib/empty").is_dir());
    // Applying again changes nothing and fails nothing; `f` keeps content,
    // `f+` truncates, `w` writes only to what exists.
    fs::write(r.join("run/app/file"), "edited").unwrap();
    let rep = run(r, &text, create());
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(
        fs::read_to_string(r.join("run/app/file")).unwrap(),
        "edited"
    );
    let rep = run(
        r,
        "f+ /run/app/file - - - - new\nw /run/app/plain - - - - w\nw /run/app/nope - - - - x\n",
        create(),
    );
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(fs::read_to_string(r.join("run/app/file")).unwrap(), "new");
    assert_eq!(fs::read_to_string(r.join("run/app/plain")).unwrap(), "w");
    assert!(!r.join("run/app/nope").exists());
}

use std::os::unix::fs::FileTypeExt;

#[test]
fn existing_nodes_are_adjusted_and_colon_modes_apply_only_at_creation() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("srv/a/b")).unwrap();
    fs::create_dir_all(r.join("srv/c")).unwrap();
    fs::write(r.join("srv/a/b/f"), "").unwrap();
    fs::set_permissions(r.join("srv/a/b/f"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(r.join("keep")).unwrap();
    fs::set_permissions(r.join("keep"), fs::Permissions::from_mode(0o700)).unwrap();
    let rep = run(
        r,
        "Z /srv/a 0770\ne /srv/* 0711\nd /keep :0755\nd /fresh :0701\nz /nothing-here 0700\n",
        create(),
    );
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(mode(&r.join("srv/a/b/f")), 0o770, "Z is recursive");
    assert_eq!(
        mode(&r.join("srv/a")),
        0o711,
        "e globs, after Z in line order"
    );
    assert_eq!(mode(&r.join("srv/c")), 0o711);
    assert_eq!(
        mode(&r.join("keep")),
        0o700,
        ":mode leaves an existing node"
    );
    assert_eq!(mode(&r.join("fresh")), 0o701);
}

#[test]
fn masked_modes_keep_missing_bits_off() {
    assert_eq!(masked_mode(0o775, 0o644, false), 0o664);
    assert_eq!(masked_mode(0o4755, 0o755, false), 0o755);
    assert_eq!(masked_mode(0o1777, 0o755, true), 0o1777);
    assert_eq!(masked_mode(0o755, 0o000, true), 0o000);
}

#[test]
fn boot_lines_prefixes_duplicates_and_ignored_errors() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::write(r.join("blocker"), "").unwrap();
    let text = "d! /boot-only\nd /run/one 0700\nd /run/one 0755\nd /dev/x\n\
                d- /blocker/sub\nd /blocker2/sub\nf /blocker2 - - - - late\n";
    fs::write(r.join("blocker2"), "").unwrap();
    let rep = run(
        r,
        text,
        Options {
            exclude_prefixes: vec![PathBuf::from("/dev")],
            ..create()
        },
    );
    assert!(!r.join("boot-only").exists(), "! lines need --boot");
    assert_eq!(
        mode(&r.join("run/one")),
        0o700,
        "the first line for a path wins"
    );
    assert!(
        rep.skipped
            .iter()
            .any(|s| s.contains("duplicate line for path /run/one"))
    );
    assert!(!r.join("dev").exists(), "excluded prefix");
    assert_eq!(rep.errors.len(), 1, "{:?}", rep.errors);
    assert!(
        rep.errors[0].starts_with("t.conf:6: cannot create parent directory"),
        "{:?}",
        rep.errors
    );
    assert!(
        rep.skipped
            .iter()
            .any(|s| s.starts_with("t.conf:5:") && s.contains("ignored"))
    );
    let rep = run(
        r,
        "d! /boot-only\n",
        Options {
            boot: true,
            ..create()
        },
    );
    assert!(rep.errors.is_empty() && r.join("boot-only").is_dir());
    let rep = run(
        r,
        "d /a\nd /b/c\n",
        Options {
            prefixes: vec![PathBuf::from("/b")],
            ..create()
        },
    );
    assert!(rep.errors.is_empty());
    assert!(!r.join("a").exists() && r.join("b/c").is_dir());
}

#[test]
fn remove_takes_what_r_r_and_d_name() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("run/tree/deep")).unwrap();
    fs::create_dir_all(r.join("run/full")).unwrap();
    fs::write(r.join("run/full/x"), "").unwrap();
    fs::write(r.join("run/nologin"), "").unwrap();
    fs::create_dir_all(r.join("run/cache/d")).unwrap();
    fs::write(r.join("run/cache/f"), "").unwrap();
    let rep = run(
        r,
        "r /run/nologin\nr /run/full\nR /run/tr*\nD /run/cache 0755\n",
        create_and_remove(),
    );
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert!(!r.join("run/nologin").exists());
    assert!(
        r.join("run/full/x").exists(),
        "r leaves a non-empty directory"
    );
    assert!(!r.join("run/tree").exists(), "R is recursive and globs");
    assert!(r.join("run/cache").is_dir());
    assert_eq!(
        fs::read_dir(r.join("run/cache")).unwrap().count(),
        0,
        "D empties"
    );
}

#[test]
fn copies_and_replacing_links() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("usr/share/factory/etc/app/conf.d")).unwrap();
    fs::write(r.join("usr/share/factory/etc/app/conf.d/a.conf"), "a").unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/old"), "").unwrap();
    let rep = run(
        r,
        "C /etc/app\nL+ /etc/old - - - - /etc/app\nL /etc/other\n",
        create(),
    );
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(
        fs::read_to_string(r.join("etc/app/conf.d/a.conf")).unwrap(),
        "a"
    );
    assert_eq!(
        fs::read_link(r.join("etc/old")).unwrap(),
        Path::new("/etc/app")
    );
    assert_eq!(
        fs::read_link(r.join("etc/other")).unwrap(),
        Path::new("/usr/share/factory/etc/other")
    );
    // C does not copy over what exists.
    fs::write(r.join("etc/app/conf.d/a.conf"), "mine").unwrap();
    run(r, "C /etc/app\n", create());
    assert_eq!(
        fs::read_to_string(r.join("etc/app/conf.d/a.conf")).unwrap(),
        "mine"
    );
}

#[test]
fn config_files_hide_by_name_and_sort() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (dir, name, text) in [
        ("etc/tmpfiles.d", "b.conf", "d /from-etc\n"),
        ("usr/lib/tmpfiles.d", "b.conf", "d /from-usr\n"),
        ("usr/lib/tmpfiles.d", "a.conf", "d /a\n"),
        ("usr/lib/tmpfiles.d", "c.conf", "d /c\n"),
        ("usr/lib/tmpfiles.d", "ignored.txt", "d /x\n"),
    ] {
        fs::create_dir_all(r.join(dir)).unwrap();
        fs::write(r.join(dir).join(name), text).unwrap();
    }
    fs::create_dir_all(r.join("run/tmpfiles.d")).unwrap();
    std::os::unix::fs::symlink("/dev/null", r.join("run/tmpfiles.d/c.conf")).unwrap();
    let files = config_files(r, &config_dirs(false));
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(r).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        ["usr/lib/tmpfiles.d/a.conf", "etc/tmpfiles.d/b.conf"]
    );
}

#[test]
fn brace_groups_expand_before_globbing() {
    assert_eq!(expand_braces(b"/a/b"), None);
    assert_eq!(expand_braces(b"/a/{x}"), None);
    assert_eq!(
        expand_braces(b"/run/{a,b}/c").unwrap(),
        [b"/run/a/c".to_vec(), b"/run/b/c".to_vec()]
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["one", "two", "three"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    let rep = run(r, "z /{one,t*o} 0700\n", create());
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(mode(&r.join("one")), 0o700);
    assert_eq!(mode(&r.join("two")), 0o700);
    assert_ne!(mode(&r.join("three")), 0o700);
}

#[test]
fn an_identical_second_line_for_a_path_is_applied_too() {
    // As systemd: `D` after an identical `d` is applied (its contents go
    // with --remove); a line that differs is a duplicate and skipped.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("run/same")).unwrap();
    fs::write(r.join("run/same/old"), "").unwrap();
    let rep = run(
        r,
        "d /run/same 0700\nD /run/same 0700\nd /run/same 0755\n",
        create_and_remove(),
    );
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert!(!r.join("run/same/old").exists(), "the D line was applied");
    assert_eq!(mode(&r.join("run/same")), 0o700);
    assert_eq!(rep.skipped.len(), 1, "{:?}", rep.skipped);
    assert!(
        rep.skipped[0].contains("t.conf:3: duplicate line"),
        "{:?}",
        rep.skipped
    );
}

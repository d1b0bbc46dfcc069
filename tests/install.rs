//! `flint enable`, `disable`, `reenable`, `mask`, `unmask` and `is-enabled`
//! against `systemctl --root`, the reference: the same steps run on two
//! copies of a tree built from the unit files installed on this machine,
//! and after every step the exit codes, the output and the links must be
//! the same. Then what `flint enable` writes is what `flint run` starts.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Flint, exchange, flint_bin, free_port, require, wait_for};

/// Where Debian keeps the units of installed packages.
const UNIT_DIRS: &[&str] = &["/usr/lib/systemd/system", "/lib/systemd/system"];

/// What the test needs to know of one installed unit.
#[derive(Debug, Clone)]
struct Candidate {
    source: PathBuf,
    /// For an alias symlink (`autovt@.service`): its target's name.
    link_to: Option<String>,
    alias: Vec<String>,
    also: Vec<String>,
    wanted: bool,
    default_instance: bool,
}

impl Candidate {
    fn is_template(name: &str) -> bool {
        name.contains("@.")
    }
}

/// The `Key=value` lines of the `[Install]` section.
fn install_section(text: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            inside = l == "[Install]";
        } else if inside && let Some((k, v)) = l.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// Every unit file (and alias symlink next to it) of the unit directories,
/// the first directory winning.
fn candidates() -> BTreeMap<String, Candidate> {
    let mut out = BTreeMap::new();
    for dir in UNIT_DIRS {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for de in rd.flatten() {
            let Ok(name) = de.file_name().into_string() else {
                continue;
            };
            let known = [
                ".service", ".socket", ".target", ".timer", ".path", ".mount",
            ]
            .iter()
            .any(|s| name.ends_with(s));
            if !known || out.contains_key(&name) {
                continue;
            }
            let path = de.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mut c = Candidate {
                source: path.clone(),
                link_to: None,
                alias: Vec::new(),
                also: Vec::new(),
                wanted: false,
                default_instance: false,
            };
            if meta.file_type().is_symlink() {
                let Ok(t) = std::fs::read_link(&path) else {
                    continue;
                };
                let t = t.display().to_string();
                if t.contains('/') {
                    continue;
                }
                c.link_to = Some(t);
            } else if meta.is_file() {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for (k, v) in install_section(&text) {
                    let words = v.split_whitespace().map(str::to_owned);
                    match k.as_str() {
                        "Alias" => c.alias.extend(words),
                        "Also" => c.also.extend(words),
                        "WantedBy" | "RequiredBy" => c.wanted = true,
                        "DefaultInstance" => c.default_instance = true,
                        _ => {}
                    }
                }
            } else {
                continue;
            }
            out.insert(name, c);
        }
    }
    out
}

/// The units the differential test works on.
struct Selection {
    units: BTreeSet<String>,
    with_alias: Vec<String>,
    with_also: Vec<String>,
    alias_links: Vec<String>,
}

fn select(all: &BTreeMap<String, Candidate>) -> Selection {
    let regular = |n: &&String| all[*n].link_to.is_none();
    let mut units = BTreeSet::new();
    let with_alias: Vec<String> = all
        .keys()
        .filter(regular)
        .filter(|n| !all[*n].alias.is_empty())
        .take(12)
        .cloned()
        .collect();
    let with_also: Vec<String> = all
        .keys()
        .filter(regular)
        .filter(|n| !all[*n].also.is_empty())
        .take(12)
        .cloned()
        .collect();
    let mut templates: Vec<String> = all
        .keys()
        .filter(regular)
        .filter(|n| Candidate::is_template(n))
        .filter(|n| all[*n].default_instance)
        .cloned()
        .collect();
    templates.extend(
        all.keys()
            .filter(regular)
            .filter(|n| Candidate::is_template(n))
            .filter(|n| all[*n].wanted && !all[*n].default_instance)
            .take(10)
            .cloned(),
    );
    units.extend(with_alias.iter().cloned());
    units.extend(with_also.iter().cloned());
    units.extend(templates.iter().cloned());
    // What Also= names comes along, when installed.
    for n in &with_also {
        for a in &all[n].also {
            if all.get(a).is_some_and(|c| c.link_to.is_none()) {
                units.insert(a.clone());
            }
        }
    }
    // Plain WantedBy= units until there are enough, and a few without
    // [Install] (static).
    for n in all.keys().filter(regular) {
        if units.len() >= 45 {
            break;
        }
        if all[n].wanted {
            units.insert(n.clone());
        }
    }
    units.extend(
        all.keys()
            .filter(regular)
            .filter(|n| {
                let c = &all[*n];
                !c.wanted && c.alias.is_empty() && c.also.is_empty()
            })
            .take(3)
            .cloned(),
    );
    // Alias symlinks shipped next to a selected unit (autovt@.service).
    let alias_links: Vec<String> = all
        .iter()
        .filter(|(_, c)| c.link_to.as_ref().is_some_and(|t| units.contains(t)))
        .map(|(n, _)| n.clone())
        .take(6)
        .collect();
    Selection {
        units,
        with_alias,
        with_also,
        alias_links,
    }
}

/// Synthetic units for the cases the installed ones may lack: an Also=
/// cycle with a missing member, specifiers, an alias of a template.
const SYNTHETIC: &[(&str, &str)] = &[
    (
        "flinttest-c1.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlso=flinttest-c2.service\n",
    ),
    (
        "flinttest-c2.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nRequiredBy=flinttest.target\nAlso=flinttest-c3.service flinttest-missing.service\n",
    ),
    (
        "flinttest-c3.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nAlso=flinttest-c1.service\n",
    ),
    (
        "flinttest-t@.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=flinttest-%i.target %p.target %n.target\nAlias=flinttest-a-%i@.service\nDefaultInstance=one\n",
    ),
    (
        "flinttest-s.socket",
        "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\nAlias=flinttest-s2.socket\n",
    ),
    (
        "flinttest-bad.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=%I.target\nUnknownKey=1\n",
    ),
];

/// Two copies of the same tree: one for systemctl, one for flint.
struct Pair {
    systemctl: tempfile::TempDir,
    flint: tempfile::TempDir,
    compare_messages: bool,
    steps: usize,
}

/// Everything below `root`: directories, files, and links with their
/// targets, the root shown as `ROOT`.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for de in rd.flatten() {
            let p = de.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let ft = de.file_type().unwrap();
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap().display().to_string();
                out.insert(format!(
                    "{rel} -> {}",
                    t.replace(&root.display().to_string(), "ROOT")
                ));
            } else if ft.is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn links_only(t: &BTreeSet<String>) -> BTreeSet<&String> {
    t.iter().filter(|l| l.contains(" -> ")).collect()
}

/// The command environment both tools get: no unit path override, UTF-8
/// output.
fn prepare(cmd: &mut Command) {
    cmd.env_remove("SYSTEMD_UNIT_PATH")
        .env_remove("SYSTEMCTL_SKIP_SYSV")
        .env("SYSTEMD_UTF8", "1")
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "cat")
        .env("FLINT_LOG", "warn");
}

/// stderr lines, sorted, with the root shown as `ROOT`.
fn messages(out: &Output, root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.replace(&root, "ROOT"))
        .collect();
    v.sort();
    v
}

impl Pair {
    fn new(compare_messages: bool) -> Pair {
        Pair {
            systemctl: tempfile::tempdir().unwrap(),
            flint: tempfile::tempdir().unwrap(),
            compare_messages,
            steps: 0,
        }
    }

    fn roots(&self) -> [&Path; 2] {
        [self.systemctl.path(), self.flint.path()]
    }

    fn write(&self, name: &str, text: &str) {
        for r in self.roots() {
            let p = r.join("usr/lib/systemd/system").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn copy(&self, name: &str, c: &Candidate) {
        for r in self.roots() {
            let p = r.join("usr/lib/systemd/system").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            match &c.link_to {
                Some(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
                None => {
                    std::fs::copy(&c.source, &p).unwrap();
                }
            }
        }
    }

    /// Runs `systemctl --root=A ARGS` and `flint VERB --root=B REST` and
    /// compares them. Returns the exit code.
    fn step(&mut self, args: &[&str]) -> i32 {
        self.steps += 1;
        let mut sc = Command::new("systemctl");
        sc.arg(format!("--root={}", self.systemctl.path().display()))
            .args(args);
        prepare(&mut sc);
        let a = sc.output().expect("run systemctl");
        let mut fl = Command::new(flint_bin());
        fl.arg(args[0])
            .arg(format!("--root={}", self.flint.path().display()))
            .args(&args[1..]);
        prepare(&mut fl);
        let b = fl.output().expect("run flint");
        let what = args.join(" ");
        let (ta, tb) = (tree(self.systemctl.path()), tree(self.flint.path()));
        assert_eq!(
            links_only(&ta),
            links_only(&tb),
            "links differ after `{what}`\nsystemctl: {}\nflint: {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(ta, tb, "trees differ after `{what}`");
        assert_eq!(
            a.status.code(),
            b.status.code(),
            "exit codes differ for `{what}`\nsystemctl: {}\nflint: {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&b.stdout),
            "output differs for `{what}`"
        );
        if self.compare_messages {
            assert_eq!(
                messages(&a, self.systemctl.path()),
                messages(&b, self.flint.path()),
                "messages differ for `{what}`"
            );
        }
        a.status.code().unwrap_or(-1)
    }
}

/// The systemd version `systemctl --version` reports, if it runs.
fn systemctl_version() -> Option<u32> {
    let out = Command::new("systemctl").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn enable_disable_mask_unmask_match_systemctl_root_on_installed_units() {
    if !require("systemctl", "the reference for `flint enable`") {
        return;
    }
    let version = systemctl_version().expect("systemctl --version");
    // flint words its messages as systemd 252 does; other versions are
    // compared on links, output and exit codes only.
    let compare_messages = version == 252;
    if !compare_messages {
        eprintln!("NOTE: systemd {version}: messages are not compared (flint speaks as 252)");
    }
    let all = candidates();
    let sel = select(&all);
    let templates: Vec<&String> = sel
        .units
        .iter()
        .filter(|n| Candidate::is_template(n))
        .collect();
    eprintln!(
        "{} units ({} templates, {} with Alias=, {} with Also=, {} alias links): {:?}",
        sel.units.len(),
        templates.len(),
        sel.with_alias.len(),
        sel.with_also.len(),
        sel.alias_links.len(),
        sel.units
    );
    assert!(
        sel.units.len() >= 30,
        "too few units installed: {}",
        sel.units.len()
    );
    assert!(templates.len() >= 3, "too few templates: {templates:?}");
    assert!(sel.with_alias.len() >= 2, "too few units with Alias=");
    assert!(sel.with_also.len() >= 2, "too few units with Also=");

    let mut p = Pair::new(compare_messages);
    for n in sel.units.iter().chain(&sel.alias_links) {
        p.copy(n, &all[n]);
    }
    for (n, text) in SYNTHETIC {
        p.write(n, text);
    }
    let synthetic: Vec<&str> = SYNTHETIC.iter().map(|(n, _)| *n).collect();

    // Enable every unit, one by one (some fail, as they should).
    for n in sel
        .units
        .iter()
        .map(String::as_str)
        .chain(synthetic.iter().copied())
    {
        p.step(&["enable", n]);
    }
    // Enabling again changes nothing.
    for n in sel.units.iter().take(10) {
        p.step(&["enable", n]);
    }
    let mut names: Vec<&str> = sel.units.iter().map(String::as_str).collect();
    names.extend(sel.alias_links.iter().map(String::as_str));
    names.extend(synthetic.iter().copied());
    for n in &names {
        p.step(&["is-enabled", n]);
    }
    let mut all_at_once = vec!["is-enabled"];
    all_at_once.extend(names.iter().copied());
    p.step(&all_at_once);

    // Instances of templates, and the alias links of templates.
    for t in &templates {
        let inst = t.replacen("@.", "@flinttest.", 1);
        p.step(&["enable", &inst]);
        p.step(&["is-enabled", &inst]);
        p.step(&["disable", &inst]);
        p.step(&["is-enabled", t]);
    }
    for l in &sel.alias_links {
        let inst = l.replacen("@.", "@flinttest2.", 1);
        p.step(&["enable", &inst]);
        p.step(&["is-enabled", &inst]);
        p.step(&["disable", l]);
    }
    p.step(&["enable", "flinttest-t@two.service"]);
    p.step(&["disable", "flinttest-t@.service"]);

    // Aliases: the unit is found through them, and disabled through them.
    for u in &sel.with_alias {
        let Some(alias) = all[u].alias.iter().find(|a| !a.contains(['%', '/'])) else {
            continue;
        };
        p.step(&["is-enabled", alias]);
        p.step(&["disable", alias]);
        p.step(&["is-enabled", u]);
        p.step(&["enable", u]);
        p.step(&["reenable", alias]);
    }

    // Masks: enabling a masked unit fails, a masked Also= unit is skipped.
    let mut masked: Vec<&str> = names.iter().copied().take(6).collect();
    masked.push("flinttest-none.service");
    for u in &sel.with_also {
        if let Some(a) = all[u].also.iter().find(|a| sel.units.contains(*a)) {
            p.step(&["disable", u]);
            p.step(&["mask", a]);
            p.step(&["enable", u]);
            p.step(&["is-enabled", a]);
            p.step(&["disable", u]);
            p.step(&["unmask", a]);
        }
    }
    let mut cmd = vec!["mask"];
    cmd.extend(masked.iter().copied());
    p.step(&cmd);
    for m in &masked {
        p.step(&["is-enabled", m]);
        p.step(&["enable", m]);
        p.step(&["disable", m]);
    }
    p.step(&["mask", masked[0]]);
    p.step(&["mask", "--force", masked[0]]);
    let mut cmd = vec!["unmask"];
    cmd.extend(masked.iter().copied());
    p.step(&cmd);
    p.step(&cmd);

    // Several at once, missing units, reenable.
    p.step(&["enable", names[0], names[1], "flinttest-nothere.service"]);
    p.step(&["disable", "flinttest-nothere.service"]);
    for n in names.iter().take(5) {
        p.step(&["reenable", n]);
    }
    p.step(&["enable", "flinttest-c3.service"]);
    p.step(&["disable", "flinttest-c2.service"]);

    // And everything off again.
    for n in &names {
        p.step(&["disable", n]);
    }
    eprintln!("{} steps compared", p.steps);
    let left = links_only(&tree(p.flint.path()))
        .into_iter()
        .filter(|l| l.starts_with("etc/"))
        .count();
    assert_eq!(left, 0, "links left after disabling everything");
}

/// A socket unit that answers each connection with `word`.
fn echo_socket(root: &Path, name: &str, port: u16, word: &str) {
    let dir = root.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.socket")),
        format!("[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n[Install]\nWantedBy=sockets.target\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{name}@.service")),
        format!("[Service]\nStandardInput=socket\nExecStart=/bin/echo {word}\n"),
    )
    .unwrap();
}

fn flint(args: &[&OsStr], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(flint_bin());
    cmd.args(args).env("FLINT_LOG", "warn");
    cmd.envs(env.iter().copied());
    cmd.output().expect("run flint")
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn a_socket_enabled_with_flint_enable_is_what_flint_run_starts() {
    let root = tempfile::tempdir().unwrap();
    let (on, off) = (free_port(), free_port());
    echo_socket(root.path(), "on", on, "on");
    echo_socket(root.path(), "off", off, "off");
    let root_arg = format!("--root={}", root.path().display());

    let out = flint(&[os("enable"), os(&root_arg), os("on.socket")], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(
            root.path()
                .join("etc/systemd/system/sockets.target.wants/on.socket")
        )
        .unwrap(),
        Path::new("/usr/lib/systemd/system/on.socket")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Created symlink"),
        "{out:?}"
    );
    let out = flint(&[os("is-enabled"), os(&root_arg), os("on.socket")], &[]);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"enabled\n"[..])
    );
    let out = flint(&[os("is-enabled"), os(&root_arg), os("off.socket")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"disabled\n");

    // The tree has no sockets.target file (no systemd here): its .wants/
    // links still decide what runs.
    let etc = root.path().join("etc/systemd/system");
    let usr = root.path().join("usr/lib/systemd/system");
    let args = [
        os("run"),
        os("--unit-dir"),
        etc.as_os_str(),
        os("--unit-dir"),
        usr.as_os_str(),
        os("--control"),
    ];
    let control = root.path().join("control");
    let mut argv: Vec<&OsStr> = args.to_vec();
    argv.push(control.as_os_str());
    let flint_run = Flint::run_args(&argv, &[]);
    assert_eq!(exchange(on, b""), "on\n");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", off)).is_err(),
        "off.socket is not enabled"
    );
    drop(flint_run);

    // Disabled again: nothing is linked any more.
    let out = flint(&[os("disable"), os(&root_arg), os("on.socket")], &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(!etc.join("sockets.target.wants").exists());
}

#[test]
fn now_starts_and_stops_the_unit_in_the_running_flint() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let units = data.join("systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("svc.service"),
        "[Service]\nExecStart=/bin/sleep 300\n[Install]\nWantedBy=default.target\n",
    )
    .unwrap();
    let config = home.path().join("config");
    let control = home.path().join("control");
    let env: [(&str, &Path); 3] = [
        ("HOME", home.path()),
        ("XDG_CONFIG_HOME", &config),
        ("XDG_DATA_HOME", &data),
    ];
    let _flint = Flint::run_args(
        &[
            os("run"),
            os("--unit-dir"),
            units.as_os_str(),
            os("--control"),
            control.as_os_str(),
            os("svc.service"),
        ],
        &[],
    );
    let status = || {
        flint(
            &[
                os("ctl"),
                os("--control"),
                control.as_os_str(),
                os("status"),
                os("svc.service"),
            ],
            &[],
        )
        .status
        .code()
    };
    assert!(
        wait_for(Duration::from_secs(10), || (status() == Some(0))
            .then_some(()))
        .is_some()
    );

    let out = flint(
        &[
            os("disable"),
            os("--user"),
            os("--now"),
            os("--control"),
            control.as_os_str(),
            os("svc"),
        ],
        &env,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_for(Duration::from_secs(10), || (status() == Some(3))
            .then_some(()))
        .is_some(),
        "svc.service still active after disable --now"
    );

    let out = flint(
        &[
            os("enable"),
            os("--user"),
            os("--now"),
            os("--control"),
            control.as_os_str(),
            os("svc.service"),
        ],
        &env,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(config.join("systemd/user/default.target.wants/svc.service")).unwrap(),
        units.join("svc.service")
    );
    assert!(
        wait_for(Duration::from_secs(10), || (status() == Some(0))
            .then_some(()))
        .is_some(),
        "svc.service not active after enable --now"
    );
}

#[test]
fn help_says_where_links_go() {
    let out = flint(&[os("enable"), os("--help")], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/etc/systemd/system"), "{text}");
    assert!(text.contains("--root"), "{text}");
}

#[test]
fn list_unit_files_gives_systemctls_states_in_its_order() {
    if !require("systemctl", "the reference for `flint list-unit-files`") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(root.path().join("etc/systemd/system")).unwrap();
    let install = |wanted: &str| format!("[Install]\nWantedBy={wanted}\n");
    let files = [
        ("a.service", install("multi-user.target")),
        ("B.service", String::new()),
        ("c.service", install("multi-user.target")),
        ("d@.service", install("multi-user.target")),
        ("e.socket", install("sockets.target")),
        (
            "f.service",
            format!("{}Alias=g.service\n", install("multi-user.target")),
        ),
        ("h.service", format!("{}Also=c.service\n", "[Install]\n")),
        ("m.service", install("multi-user.target")),
    ];
    for (name, extra) in &files {
        let kind = if name.ends_with(".socket") {
            "[Socket]\nListenStream=127.0.0.1:1\n"
        } else {
            "[Service]\nExecStart=/bin/true\n"
        };
        std::fs::write(lib.join(name), format!("{kind}{extra}")).unwrap();
    }
    let presets = root.path().join("usr/lib/systemd/system-preset");
    std::fs::create_dir_all(&presets).unwrap();
    std::fs::write(
        presets.join("50-test.preset"),
        "disable c.service\ndisable e.*\n",
    )
    .unwrap();
    let r = root.path().as_os_str();
    for args in [
        &[
            os("enable"),
            os("--root"),
            r,
            os("a.service"),
            os("f.service"),
        ][..],
        &[os("mask"), os("--root"), r, os("m.service")][..],
    ] {
        let out = flint(args, &[]);
        assert!(out.status.success(), "{out:?}");
    }
    let columns = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_string(), w.next()?.to_string()))
            })
            .collect()
    };
    let theirs = Command::new("systemctl")
        .args(["list-unit-files", "--no-legend", "--no-pager", "--root"])
        .arg(r)
        .output()
        .unwrap();
    let ours = flint(
        &[os("list-unit-files"), os("--no-legend"), os("--root"), r],
        &[],
    );
    assert!(ours.status.success(), "{ours:?}");
    // The whole table, the preset column included.
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
    let (theirs, ours) = (
        columns(&String::from_utf8_lossy(&theirs.stdout)),
        columns(&String::from_utf8_lossy(&ours.stdout)),
    );
    assert_eq!(ours, theirs);
    assert!(
        ours.contains(&("g.service".into(), "alias".into())),
        "{ours:?}"
    );
    assert!(
        ours.contains(&("h.service".into(), "indirect".into())),
        "{ours:?}"
    );
    // Patterns, states and types narrow it; the legend counts what is left.
    let out = flint(
        &[
            os("list-unit-files"),
            os("--root"),
            r,
            os("--state"),
            os("enabled,masked"),
            os("-t"),
            os("service"),
            os("[a-m]*"),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        columns(&text),
        [
            ("UNIT".to_string(), "FILE".to_string()),
            ("a.service".into(), "enabled".into()),
            ("f.service".into(), "enabled".into()),
            ("m.service".into(), "masked".into()),
            ("3".into(), "unit".into()),
        ]
    );
}

/// `preset` and `preset-all` with the preset files packaging ships: the
/// same links and messages as `systemctl --root` (RPM's `%systemd_post`
/// runs `systemctl preset`, Debian's deb-systemd-helper
/// `systemctl --preset-mode=enable-only preset`).
#[test]
fn preset_and_preset_all_enable_and_disable_as_systemctl() {
    if !require("systemctl", "the reference for `flint preset`") {
        return;
    }
    let make = |root: &Path| {
        let lib = root.join("usr/lib/systemd/system");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        let unit = |extra: &str| format!("[Service]\nExecStart=/bin/true\n{extra}");
        let wanted = "[Install]\nWantedBy=multi-user.target\n";
        for (name, text) in [
            ("a.service", unit(wanted)),
            ("b.service", unit(wanted)),
            (
                "c.service",
                unit(&format!("{wanted}Alias=c-alias.service\n")),
            ),
            ("s.service", unit("")),
            ("t@.service", unit(wanted)),
            (
                "d@.service",
                unit(&format!("{wanted}DefaultInstance=dflt\n")),
            ),
            (
                "x.socket",
                "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n".into(),
            ),
        ] {
            std::fs::write(lib.join(name), text).unwrap();
        }
        let presets = root.join("usr/lib/systemd/system-preset");
        std::fs::create_dir_all(&presets).unwrap();
        std::fs::write(
            presets.join("90-default.preset"),
            "# vendor\nenable a.service\ndisable b.service\nenable c*\nenable t@.service x y\nenable d@.service\nenable w@.service\nfrobnicate z\ndisable *\n",
        )
        .unwrap();
        // An administrator's file of the same name hides the vendor's for
        // sockets only through its own rules, read first.
        let etc = root.join("etc/systemd/system-preset");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("10-local.preset"), "enable x.socket\n").unwrap();
        // b is enabled by hand before: preset disables it.
        let wants = root.join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink("/usr/lib/systemd/system/b.service", wants.join("b.service"))
            .unwrap();
    };
    let steps: &[&[&str]] = &[
        &["preset", "a.service", "s.service"],
        &[
            "--preset-mode=enable-only",
            "preset",
            "b.service",
            "t@.service",
        ],
        &["preset", "b.service", "c.service", "d@.service"],
        &["preset", "nope.service"],
        &["preset", "w@.service"],
        &["--preset-mode=disable-only", "preset-all"],
        &["preset-all"],
    ];
    let ours = same_as_systemctl_root(make, steps);
    assert!(
        tree(ours.path()).contains("etc/systemd/system/multi-user.target.wants/t@x.service -> /usr/lib/systemd/system/t@.service"),
        "{:?}",
        tree(ours.path())
    );
}

/// A merged-/usr root, as Debian 12's (`/lib` leading to `usr/lib`):
/// systemd searches `/lib/systemd/system` first and drops
/// `/usr/lib/systemd/system` as the same directory, so its links name
/// `/lib/systemd/system/...`; flint's must read the same.
#[test]
fn links_name_the_unit_directory_as_systemctl_does_on_a_merged_usr_root() {
    if !require("systemctl", "the reference for `flint enable`") {
        return;
    }
    let make = |root: &Path| {
        let lib = root.join("usr/lib/systemd/system");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::write(
            lib.join("a.service"),
            "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=a2.service\n",
        )
        .unwrap();
        std::fs::write(lib.join("t.target"), "[Unit]\nDescription=t\n").unwrap();
    };
    let (theirs, ours) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make(theirs.path());
    make(ours.path());
    for step in [
        &["enable", "a.service"][..],
        &["set-default", "t.target"][..],
        &["is-enabled", "a2.service"][..],
        &["disable", "a.service"][..],
    ] {
        let run = |program: &OsStr, root: &Path| {
            let mut cmd = Command::new(program);
            prepare(&mut cmd);
            if program == "systemctl" {
                cmd.arg(format!("--root={}", root.display())).args(step);
            } else {
                cmd.arg(step[0]).arg("--root").arg(root).args(&step[1..]);
            }
            cmd.output().unwrap()
        };
        let t = run(os("systemctl"), theirs.path());
        let o = run(flint_bin().as_os_str(), ours.path());
        assert_eq!(o.status.code(), t.status.code(), "{step:?}: {o:?} / {t:?}");
        assert_eq!(o.stdout, t.stdout, "{step:?}");
        assert_eq!(
            messages(&o, ours.path()),
            messages(&t, theirs.path()),
            "{step:?}"
        );
        assert_eq!(tree(ours.path()), tree(theirs.path()), "{step:?}");
        if step[0] == "enable" {
            assert!(
                tree(ours.path()).contains(
                    "etc/systemd/system/multi-user.target.wants/a.service -> /lib/systemd/system/a.service"
                ),
                "{:?}",
                tree(ours.path())
            );
        }
    }
}

/// `add-wants`, `add-requires` and `link`: the same links, messages and
/// exit codes as `systemctl --root`.
#[test]
fn add_wants_add_requires_and_link_as_systemctl() {
    if !require(
        "systemctl",
        "the reference for `flint add-wants` and `flint link`",
    ) {
        return;
    }
    let make = |root: &Path| {
        let lib = root.join("usr/lib/systemd/system");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        let svc = "[Service]\nExecStart=/bin/true\n";
        for name in ["a.service", "b.service"] {
            std::fs::write(lib.join(name), svc).unwrap();
        }
        std::fs::write(
            lib.join("c.service"),
            format!("{svc}[Install]\nWantedBy=other.target\n"),
        )
        .unwrap();
        for t in ["multi-user.target", "graphical.target"] {
            std::fs::write(lib.join(t), "[Unit]\n").unwrap();
        }
        let opt = root.join("opt/x");
        std::fs::create_dir_all(&opt).unwrap();
        std::fs::write(
            opt.join("l.service"),
            format!("{svc}[Install]\nWantedBy=multi-user.target\n"),
        )
        .unwrap();
        std::fs::create_dir_all(lib.join("sub")).unwrap();
        std::fs::write(lib.join("sub/deep.service"), svc).unwrap();
    };
    let steps: &[&[&str]] = &[
        &["add-wants", "multi-user.target", "a.service", "b"],
        &["add-requires", "graphical", "a.service"],
        &["add-wants", "multi-user.target", "c.service"],
        &["add-wants", "multi-user.target", "nope.service"],
        &["add-wants", "multi-user.target"],
        &["is-enabled", "a.service"],
        &["link", "/opt/x/l.service"],
        &["is-enabled", "l.service"],
        &["enable", "l.service"],
        &["link", "/usr/lib/systemd/system/b.service"],
        &["link", "/usr/lib/systemd/system/sub/deep.service"],
        &["link", "/opt/x/missing.service"],
    ];
    same_as_systemctl_root(make, steps);
}

/// `revert`: drop-ins an administrator added and copies and masks of a
/// vendor unit go, links to them too; the same messages and tree as
/// `systemctl --root`.
#[test]
fn revert_puts_units_back_as_systemctl() {
    if !require("systemctl", "the reference for `flint revert`") {
        return;
    }
    let make = |root: &Path| {
        let lib = root.join("usr/lib/systemd/system");
        let etc = root.join("etc/systemd/system");
        let run = root.join("run/systemd/system");
        for d in [&lib, &etc, &run] {
            std::fs::create_dir_all(d).unwrap();
        }
        let svc = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n";
        for name in ["v.service", "m.service", "d.service"] {
            std::fs::write(lib.join(name), svc).unwrap();
        }
        // v: an administrator's copy in /etc, enabled, and drop-ins in
        // /etc and /run. (A link to the copy itself would go with it on a
        // running system; systemctl --root leaves it, comparing the link's
        // target with the root in front.)
        std::fs::write(etc.join("v.service"), svc).unwrap();
        let wants = etc.join("multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink("/usr/lib/systemd/system/v.service", wants.join("v.service"))
            .unwrap();
        std::fs::create_dir_all(etc.join("v.service.d")).unwrap();
        std::fs::write(etc.join("v.service.d/override.conf"), "[Service]\n").unwrap();
        std::fs::create_dir_all(run.join("v.service.d")).unwrap();
        std::fs::write(run.join("v.service.d/50-x.conf"), "[Service]\n").unwrap();
        // m: masked.
        std::os::unix::fs::symlink("/dev/null", etc.join("m.service")).unwrap();
        // d: a vendor drop-in (stays) and one of the administrator's.
        std::fs::create_dir_all(lib.join("d.service.d")).unwrap();
        std::fs::write(lib.join("d.service.d/vendor.conf"), "[Service]\n").unwrap();
        std::fs::create_dir_all(etc.join("d.service.d")).unwrap();
        std::fs::write(etc.join("d.service.d/local.conf"), "[Service]\n").unwrap();
        // l: only in /etc, no vendor file: its copy stays, its drop-in goes.
        std::fs::write(etc.join("l.service"), svc).unwrap();
        std::fs::create_dir_all(etc.join("l.service.d")).unwrap();
        std::fs::write(etc.join("l.service.d/a.conf"), "[Service]\n").unwrap();
    };
    let steps: &[&[&str]] = &[
        &["revert", "v.service"],
        &["revert", "m.service", "d"],
        &["revert", "l.service"],
        &["revert", "nothing.service"],
    ];
    same_as_systemctl_root(make, steps);
}

/// `--global`: every user's units, links in `/etc/systemd/user`, as
/// `systemctl --global` (RPM's `%systemd_user_post` runs
/// `systemctl --global preset`).
#[test]
fn global_unit_files_as_systemctl_global() {
    if !require("systemctl", "the reference for `flint enable --global`") {
        return;
    }
    let make = |root: &Path| {
        let lib = root.join("usr/lib/systemd/user");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/user")).unwrap();
        let svc = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n";
        for name in ["a.service", "b.service"] {
            std::fs::write(lib.join(name), svc).unwrap();
        }
        std::fs::write(lib.join("default.target"), "[Unit]\n").unwrap();
        let presets = root.join("usr/lib/systemd/user-preset");
        std::fs::create_dir_all(&presets).unwrap();
        std::fs::write(
            presets.join("90-default.preset"),
            "enable a.service\ndisable *\n",
        )
        .unwrap();
    };
    let steps: &[&[&str]] = &[
        &["--global", "enable", "a.service"],
        &["--global", "is-enabled", "a.service"],
        &["--global", "disable", "a.service"],
        &["--global", "preset", "a.service", "b.service"],
        &["--global", "is-enabled", "a.service", "b.service"],
        &["--global", "mask", "b.service"],
        &["--global", "unmask", "b.service"],
    ];
    same_as_systemctl_root(make, steps);
}

/// Runs each step (a systemctl command line) as `systemctl --root` on one
/// tree that `make` fills and as flint called `systemctl` on another, and
/// asserts after each the same exit code, output, messages and whole tree.
/// Gives back flint's tree.
fn same_as_systemctl_root(make: impl Fn(&Path), steps: &[&[&str]]) -> tempfile::TempDir {
    let link_dir = tempfile::tempdir().unwrap();
    let front = link_dir.path().join("systemctl");
    std::os::unix::fs::symlink(flint_bin(), &front).unwrap();
    let (theirs, ours) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make(theirs.path());
    make(ours.path());
    for step in steps {
        let run = |program: &Path, root: &Path| {
            let mut cmd = Command::new(program);
            prepare(&mut cmd);
            cmd.arg(format!("--root={}", root.display()))
                .args(*step)
                .output()
                .unwrap()
        };
        let t = run(Path::new("systemctl"), theirs.path());
        let o = run(&front, ours.path());
        assert_eq!(o.status.code(), t.status.code(), "{step:?}: {o:?} / {t:?}");
        assert_eq!(o.stdout, t.stdout, "{step:?}");
        assert_eq!(
            messages(&o, ours.path()),
            messages(&t, theirs.path()),
            "{step:?}"
        );
        assert_eq!(tree(ours.path()), tree(theirs.path()), "{step:?}");
    }
    ours
}

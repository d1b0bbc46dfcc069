//! Differential conformance with systemd's own unit parser: every `.socket`
//! and `.service` unit file of the machine (templates instantiated) is
//! loaded by `flint show` and by systemd's test-mode dump
//! (`systemd --test --system`, run as an unprivileged user with
//! `SYSTEMD_UNIT_PATH`), and every setting flint holds that the dump prints
//! must agree on its typed value.
//!
//! What is compared, per unit:
//! - the load state (`loaded`, `masked`, `bad-setting`, ...), from both
//!   `flint show` and `flint check`;
//! - `Fragment Path` and the ordered `DropIn Path` lines;
//! - every setting present in flint's JSON whose key the dump prints: the
//!   ordered `Listen*=` addresses, booleans (`yes`/`no`), integers and sizes,
//!   modes (octal), signals (by name), time spans (as microseconds), enum
//!   words and strings, `Environment=`/`EnvironmentFile=`/`PassEnvironment=`/
//!   `UnsetEnvironment=` entries in order, the `*Directory=` lists, `Limit*=`
//!   soft and hard values, and the argv of every `Exec*=` command (as the
//!   dump's shell-quoted `Command Line:`), and dependencies (each one flint
//!   lists must appear in the dump with `origin-file`).
//!
//! What is not compared: settings flint's JSON leaves out (the dump prints
//! systemd's defaults for them, and flint's JSON holds only what the files
//! set), keys the dump does not print at all (`[Install]`, most sandboxing
//! directives), and the differences listed in [`DELIBERATE`] with their
//! reasons. Any other disagreement fails the test with a readable diff.
//!
//! In CI (`CI` set) the corpus must hold at least 150 unit files from at
//! least 40 packages (`scripts/install-test-deps.sh` installs them); locally
//! the test runs on whatever units the machine has and says so.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use common::flint_bin;
use flint::unit::directive::{self, Grammar, Support};
use flint::unit::value::time;

/// Where the machine's packaged unit files live.
const UNIT_DIRS: &[&str] = &["/lib/systemd/system", "/usr/lib/systemd/system"];

/// The instance name given to templates.
const INSTANCE: &str = "flint0";

/// Units per oracle run.
const BATCH: usize = 200;

/// Deliberate differences: (unit or `*`, dump key, reason). A disagreement
/// on a listed key of a listed unit is counted but does not fail the test.
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "*",
        "User (implied by DynamicUser=yes)",
        "systemd fills in User= from the unit name at load time for DynamicUser=yes; flint's show prints only what the files set and derives the user when it starts the service",
    ),
    (
        "*",
        "Group (implied by DynamicUser=yes)",
        "as User (implied by DynamicUser=yes)",
    ),
    (
        "*",
        "RuntimeDirectory order",
        "systemd 252 sorts the *Directory= lists when loading (exec_directory_sort); flint keeps them in the order written, which creates the same directories",
    ),
    ("*", "StateDirectory order", "as RuntimeDirectory order"),
    ("*", "CacheDirectory order", "as RuntimeDirectory order"),
    ("*", "LogsDirectory order", "as RuntimeDirectory order"),
    (
        "*",
        "ConfigurationDirectory order",
        "as RuntimeDirectory order",
    ),
];

/// Dump keys that differ from flint's directive key.
fn dump_key<'a>(section: &str, key: &'a str) -> &'a str {
    match (section, key) {
        (_, "FailureAction") => "Failure Action",
        (_, "SuccessAction") => "Success Action",
        ("Service", "FileDescriptorStoreMax") => "File Descriptor Store Max",
        (_, "IOSchedulingPriority") => "IOPriority",
        (_, "SecureBits") => "Secure Bits",
        _ => key,
    }
}

// ---------------------------------------------------------------------------
// The corpus

/// One unit under test.
#[derive(Debug, Clone)]
struct Case {
    /// The name loaded (an instance for templates).
    name: String,
    /// The package that ships the file, when dpkg knows it.
    package: Option<String>,
}

/// Maps every file dpkg installed to its package.
fn dpkg_owners() -> HashMap<String, String> {
    let mut owners = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/var/lib/dpkg/info") else {
        return owners;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pkg) = name.strip_suffix(".list") else {
            continue;
        };
        let pkg = pkg.split(':').next().unwrap_or(pkg).to_string();
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for line in text.lines() {
            if line.contains("/systemd/system/") {
                owners.insert(line.to_string(), pkg.clone());
            }
        }
    }
    owners
}

fn is_unit_name(name: &str) -> bool {
    name.ends_with(".service") || name.ends_with(".socket")
}

fn make_readable(path: &Path, dir: bool) {
    let mode = if dir { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copies the packaged units (and their drop-in directories) into `dest`,
/// keeping masks and alias links as links, and returns the units to test.
fn build_corpus(dest: &Path) -> Vec<Case> {
    let owners = dpkg_owners();
    let mut seen_dirs = BTreeSet::new();
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for dir in UNIT_DIRS {
        let Ok(canon) = std::fs::canonicalize(dir) else {
            continue;
        };
        if !seen_dirs.insert(canon.clone()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&canon) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let src = e.path();
            let target = dest.join(&name);
            if target.symlink_metadata().is_ok() {
                continue; // an earlier directory wins
            }
            let Ok(meta) = src.symlink_metadata() else {
                continue;
            };
            let ext = |n: &str, e: &str| Path::new(n).extension().is_some_and(|x| x == e);
            if ext(&name, "d") && src.is_dir() {
                // foo.service.d, foo-.service.d, foo@.service.d, service.d
                let base = &name[..name.len() - 2];
                if !is_unit_name(base) && base != "service" && base != "socket" {
                    continue;
                }
                std::fs::create_dir_all(&target).unwrap();
                make_readable(&target, true);
                for f in std::fs::read_dir(&src).unwrap().flatten() {
                    let fname = f.file_name().to_string_lossy().into_owned();
                    if ext(&fname, "conf")
                        && let Ok(text) = std::fs::read(f.path())
                    {
                        let t = target.join(&fname);
                        std::fs::write(&t, text).unwrap();
                        make_readable(&t, false);
                    }
                }
                continue;
            }
            if !is_unit_name(&name) {
                continue;
            }
            let mut alias = false;
            if meta.file_type().is_symlink() {
                let link = std::fs::read_link(&src).unwrap();
                let resolved = std::fs::canonicalize(&src).ok();
                if resolved.as_deref() == Some(Path::new("/dev/null")) {
                    std::os::unix::fs::symlink("/dev/null", &target).unwrap();
                    names.insert(name, owners_of(&owners, dir, &e.file_name()));
                    continue;
                }
                let base = link.file_name().map(|b| b.to_string_lossy().into_owned());
                if let Some(base) = base
                    && is_unit_name(&base)
                    && base != name
                {
                    std::os::unix::fs::symlink(&base, &target).unwrap();
                    alias = true;
                }
            }
            if !alias {
                let Ok(text) = std::fs::read(&src) else {
                    continue;
                };
                std::fs::write(&target, text).unwrap();
                make_readable(&target, false);
            }
            if alias {
                continue; // loaded under the name it points to
            }
            let package = owners_of(&owners, dir, &e.file_name());
            names.insert(name, package);
        }
    }
    names
        .into_iter()
        .map(|(name, package)| {
            let name = match name.split_once("@.") {
                Some((prefix, suffix)) => format!("{prefix}@{INSTANCE}.{suffix}"),
                None => name,
            };
            Case { name, package }
        })
        .collect()
}

fn owners_of(
    owners: &HashMap<String, String>,
    dir: &str,
    name: &std::ffi::OsStr,
) -> Option<String> {
    let name = name.to_string_lossy();
    UNIT_DIRS
        .iter()
        .chain(std::iter::once(&dir))
        .find_map(|d| owners.get(&format!("{d}/{name}")).cloned())
}

// ---------------------------------------------------------------------------
// The oracle

fn find_systemd() -> Option<PathBuf> {
    ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// One unit's block of the dump.
#[derive(Debug, Default)]
struct DumpUnit {
    /// `Key: value` lines in order.
    lines: Vec<(String, String)>,
    /// `-> ExecStart:` blocks: key -> `Command Line:` values in order.
    exec: BTreeMap<String, Vec<String>>,
}

impl DumpUnit {
    fn values(&self, key: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.values(key).first().copied()
    }
}

fn parse_dump(text: &str) -> HashMap<String, DumpUnit> {
    let mut units = HashMap::new();
    let mut current: Option<(String, DumpUnit)> = None;
    let mut exec_key: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("\t-> Unit ") {
            if let Some((n, u)) = current.take() {
                units.insert(n, u);
            }
            current = Some((rest.trim_end_matches(':').to_string(), DumpUnit::default()));
            exec_key = None;
            continue;
        }
        let Some((_, unit)) = current.as_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("\t\t-> ") {
            exec_key = rest
                .strip_suffix(':')
                .filter(|k| k.starts_with("Exec"))
                .map(str::to_string);
            continue;
        }
        if let Some(rest) = line.strip_prefix("\t\t\t") {
            if let (Some(k), Some(cmd)) = (&exec_key, rest.strip_prefix("Command Line: ")) {
                unit.exec
                    .entry(k.clone())
                    .or_default()
                    .push(cmd.to_string());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("\t\t") {
            exec_key = None;
            let (k, v) = rest
                .split_once(": ")
                .unwrap_or_else(|| rest.strip_suffix(':').map_or((rest, ""), |k| (k, "")));
            unit.lines.push((k.to_string(), v.to_string()));
        }
    }
    if let Some((n, u)) = current.take() {
        units.insert(n, u);
    }
    units
}

/// Runs the test-mode dump over `names` in batches.
fn run_oracle(systemd: &Path, tree: &Path, roots: &Path, names: &[String]) -> String {
    let as_root = nix::unistd::geteuid().is_root();
    let mut out = String::new();
    for (i, chunk) in names.chunks(BATCH).enumerate() {
        let root = format!("flint-conformance-{i}.target");
        let text = format!(
            "[Unit]\nDescription=flint conformance batch {i}\nWants={}\n",
            chunk.join(" ")
        );
        let p = roots.join(&root);
        std::fs::write(&p, text).unwrap();
        make_readable(&p, false);
        let mut cmd = if as_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(systemd);
            c
        } else {
            Command::new(systemd)
        };
        cmd.args(["--test", "--system", "--no-pager"])
            .arg(format!("--unit={root}"))
            .env(
                "SYSTEMD_UNIT_PATH",
                format!("{}:{}", tree.display(), roots.display()),
            )
            .env("SYSTEMD_LOG_LEVEL", "err")
            .current_dir("/");
        let o = cmd.output().expect("run systemd --test");
        assert!(
            !o.stdout.is_empty(),
            "systemd --test printed no dump ({}):\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    out
}

// ---------------------------------------------------------------------------
// flint

fn flint_show(tree: &Path, names: &[String]) -> Vec<Json> {
    let mut docs = Vec::new();
    for chunk in names.chunks(BATCH) {
        let o = Command::new(flint_bin())
            .arg("show")
            .arg("--unit-dir")
            .arg(tree)
            .args(chunk)
            .output()
            .expect("run flint show");
        let v: Json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "flint show printed no JSON ({e}): {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
        match v {
            Json::Array(a) => docs.extend(a),
            one => docs.push(one),
        }
    }
    docs
}

/// The units `flint check` refuses, with the state it names.
fn flint_check_failures(tree: &Path, names: &[String]) -> HashMap<String, String> {
    let o = Command::new(flint_bin())
        .arg("check")
        .arg("--unit-dir")
        .arg(tree)
        .args(names)
        .output()
        .expect("run flint check");
    let err = String::from_utf8_lossy(&o.stderr);
    let mut failed = HashMap::new();
    for line in err.lines() {
        if let Some((name, rest)) = line.split_once(": failed to load (") {
            failed.insert(name.to_string(), rest.trim_end_matches(')').to_string());
        }
    }
    failed
}

// ---------------------------------------------------------------------------
// Comparison

/// systemd's `shell_maybe_quote()` with `SHELL_ESCAPE_EMPTY`, as
/// `quote_command_line()` prints argv in the dump.
fn shell_quote(s: &str) -> String {
    const NEED_QUOTES: &str = " \t\n\r\"\\`$*?['()<>|&;!";
    const NEED_ESCAPE: &str = "\"\\`$";
    if s.is_empty() {
        return "\"\"".to_string();
    }
    if !s
        .chars()
        .any(|c| c.is_ascii_control() || NEED_QUOTES.contains(c))
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if NEED_ESCAPE.contains(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_ascii_control() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                _ => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

fn render(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The dump's rendering of one flint value, for the simple grammars.
fn expect_scalar(v: &Json) -> Option<String> {
    match v {
        Json::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn usec_of(v: &Json) -> Option<u64> {
    let o = v.as_object()?;
    if !o.contains_key("usec") {
        return None;
    }
    Some(o["usec"].as_u64().unwrap_or(u64::MAX))
}

/// Whether a dump time span equals `usec` (the dump rounds some spans to
/// whole seconds when printing).
fn time_agrees(usec: u64, dump: &str) -> bool {
    if dump == "infinity" {
        return usec == u64::MAX;
    }
    match time::parse_timespan(dump, 1_000_000) {
        Ok(d) if d == usec => true,
        _ => time::format_timespan_accuracy(usec, 1_000_000) == dump,
    }
}

struct Tally {
    units: usize,
    compared: usize,
    agreed: usize,
    deliberate: usize,
    not_printed: BTreeMap<String, usize>,
    not_compared: BTreeMap<String, usize>,
    per_key: BTreeMap<String, usize>,
    failures: Vec<String>,
    /// The corpus's alias links (`mysql.service` → `mariadb.service`):
    /// systemd lists a dependency on an alias under the unit it names.
    aliases: BTreeMap<String, String>,
}

impl Tally {
    fn check(&mut self, unit: &str, key: &str, flint: &str, systemd: &str, agree: bool) {
        self.compared += 1;
        *self.per_key.entry(key.to_string()).or_default() += 1;
        if agree {
            self.agreed += 1;
            return;
        }
        if DELIBERATE
            .iter()
            .any(|(u, k, _)| *k == key && (*u == "*" || *u == unit))
        {
            self.deliberate += 1;
            return;
        }
        self.failures.push(format!(
            "{unit}: {key}\n    flint:   {flint}\n    systemd: {systemd}"
        ));
    }
}

/// The value of one setting: single settings are an object, lists an array.
fn setting_values(setting: &Json) -> Vec<&Json> {
    match setting {
        Json::Array(items) => items.iter().map(|i| &i["value"]).collect(),
        one => vec![&one["value"]],
    }
}

const DEPENDENCY_KEYS: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "PartOf",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnFailure",
    "OnSuccess",
    "PropagatesReloadTo",
    "ReloadPropagatedFrom",
    "JoinsNamespaceOf",
];

fn compare_unit(t: &mut Tally, name: &str, flint: &Json, dump: &DumpUnit) {
    let state = flint["load_state"].as_str().unwrap_or("?");
    let dstate = dump.first("Unit Load State").unwrap_or("?");
    t.check(name, "Unit Load State", state, dstate, state == dstate);
    if let Some(frag) = dump.first("Fragment Path") {
        let f = flint["fragment"].as_str().unwrap_or("null");
        t.check(name, "Fragment Path", f, frag, f == frag);
    }
    let dropins: Vec<String> = flint["dropins"]
        .as_array()
        .map(|a| a.iter().map(render).collect())
        .unwrap_or_default();
    let ddropins = dump.values("DropIn Path");
    if !dropins.is_empty() || !ddropins.is_empty() {
        let (f, d) = (dropins.join(" "), ddropins.join(" "));
        t.check(name, "DropIn Path", &f, &d, f == d);
    }
    if state != "loaded" || dstate != "loaded" {
        return;
    }
    let Some(settings) = flint["settings"].as_object() else {
        return;
    };
    compare_absent(t, name, settings, dump);
    for (section, keys) in settings {
        let Some(keys) = keys.as_object() else {
            continue;
        };
        for (key, setting) in keys {
            compare_setting(t, name, section, key, setting, keys, dump);
        }
    }
}

/// Keys the dump prints only when a file sets them: each one the dump has
/// must be held by flint too (the other direction is [`compare_setting`]).
const PRINTED_ONLY_WHEN_SET: &[(&str, &str)] = &[
    ("Service", "Environment"),
    ("Service", "EnvironmentFile"),
    ("Service", "PassEnvironment"),
    ("Service", "UnsetEnvironment"),
    ("Service", "User"),
    ("Service", "Group"),
    ("Service", "SupplementaryGroups"),
    ("Service", "PIDFile"),
    ("Service", "BusName"),
    ("Service", "RuntimeDirectory"),
    ("Service", "StateDirectory"),
    ("Service", "CacheDirectory"),
    ("Service", "LogsDirectory"),
    ("Service", "ConfigurationDirectory"),
    ("Socket", "Symlinks"),
    ("Socket", "SocketUser"),
    ("Socket", "SocketGroup"),
    ("Unit", "Documentation"),
];

fn compare_absent(
    t: &mut Tally,
    name: &str,
    settings: &serde_json::Map<String, Json>,
    dump: &DumpUnit,
) {
    let held = |section: &str, key: &str| {
        settings
            .get(section)
            .and_then(|s| s.get(key))
            .is_some_and(|v| !setting_values(v).is_empty())
    };
    let type_section = if name.ends_with(".socket") {
        "Socket"
    } else {
        "Service"
    };
    for key in dump.exec.keys() {
        if !held(type_section, key) {
            t.check(name, key, "(none)", &dump.exec[key].join(" ; "), false);
        }
    }
    let listens: Vec<String> = dump
        .lines
        .iter()
        .filter(|(k, _)| k.starts_with("Listen"))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    if !listens.is_empty() && !held("Socket", "Listen") {
        t.check(name, "Listen*", "(none)", &listens.join(", "), false);
    }
    for (section, key) in PRINTED_ONLY_WHEN_SET {
        let section = if *section == "Service" {
            type_section
        } else {
            section
        };
        let sd: Vec<&str> = dump
            .values(key)
            .into_iter()
            .filter(|v| *v != "n/a")
            .collect();
        if !sd.is_empty() && !held(section, key) {
            let dynamic = settings
                .get(section)
                .and_then(|s| s.get("DynamicUser"))
                .is_some_and(|v| v["value"] == Json::Bool(true));
            let key = if dynamic && matches!(*key, "User" | "Group") {
                format!("{key} (implied by DynamicUser=yes)")
            } else {
                (*key).to_string()
            };
            t.check(name, &key, "(none)", &sd.join(" | "), false);
        }
    }
    for (key, _) in &dump.lines {
        if (key.starts_with("Condition") || key.starts_with("Assert")) && !held("Unit", key) {
            t.check(name, key, "(none)", &dump.values(key).join(" | "), false);
        }
    }
}

fn compare_listen(t: &mut Tally, name: &str, values: &[&Json], dump: &DumpUnit) {
    let flint: Vec<String> = values
        .iter()
        .map(|v| format!("{}: {}", render(&v["type"]), render(&v["address"])))
        .collect();
    let sd: Vec<String> = dump
        .lines
        .iter()
        .filter(|(k, _)| k.starts_with("Listen"))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    t.check(
        name,
        "Listen*",
        &flint.join(", "),
        &sd.join(", "),
        flint == sd,
    );
}

#[allow(clippy::too_many_lines)]
fn compare_setting(
    t: &mut Tally,
    name: &str,
    section: &str,
    key: &str,
    setting: &Json,
    all: &serde_json::Map<String, Json>,
    dump: &DumpUnit,
) {
    let values = setting_values(setting);
    if section == "Install" {
        // Install settings act on `systemctl enable`; the dump has none.
        t.not_compared("[Install]");
        return;
    }
    if key == "Listen" {
        compare_listen(t, name, &values, dump);
        return;
    }
    let Some(directive) = directive::lookup(section, key) else {
        t.not_compared(&format!("{key}: not in flint's directive table"));
        return;
    };
    if directive.grammar == Grammar::Raw {
        // Kept as written by flint; the dump prints systemd's internal form
        // (expanded system call sets, capability masks, ...).
        t.not_compared("kept as written (not enforced)");
        return;
    }
    if directive.support == Support::NotEnforced && directive.grammar == Grammar::Words {
        // Word lists flint only accepts (paths systemd normalises,
        // namespaces, ...).
        t.not_compared("word list (not enforced)");
        return;
    }
    if directive.grammar == Grammar::Condition {
        // systemd prepends conditions, so the dump lists them last first.
        let flint: Vec<String> = values
            .iter()
            .rev()
            .map(|v| {
                format!(
                    "{}{}{} untested",
                    if v["trigger"] == Json::Bool(true) {
                        "|"
                    } else {
                        ""
                    },
                    if v["negate"] == Json::Bool(true) {
                        "!"
                    } else {
                        ""
                    },
                    render(&v["argument"])
                )
            })
            .collect();
        let sd = dump.values(key);
        t.check(name, key, &flint.join(" | "), &sd.join(" | "), flint == sd);
        return;
    }
    if section == "Socket" && key == "Accept" {
        // The dump prints `Accepted:` (and the connection limits) only for
        // `Accept=yes` sockets.
        let sd = dump.first("Accepted").is_some();
        let f = setting["value"] == Json::Bool(true);
        t.check(name, key, &f.to_string(), &sd.to_string(), f == sd);
        return;
    }
    if section == "Socket" && key == "Service" {
        // The dump shows `Service=` as the socket's `Triggers:` dependency.
        let f = render(&setting["value"]);
        let sd: Vec<&str> = dump
            .values("Triggers")
            .into_iter()
            .filter_map(|v| v.split(' ').next())
            .collect();
        t.check(
            name,
            "Service (Triggers)",
            &f,
            &sd.join(" "),
            sd == [f.as_str()],
        );
        return;
    }
    if directive.grammar == Grammar::AddressPrefixes {
        // systemd keeps the prefixes in a set and prints them in its order.
        let f: BTreeSet<String> = values.iter().map(|v| render(v)).collect();
        let sd: BTreeSet<String> = dump.values(key).into_iter().map(str::to_string).collect();
        t.check(name, key, &format!("{f:?}"), &format!("{sd:?}"), f == sd);
        return;
    }
    if key == "RequiresMountsFor" {
        let sd: BTreeSet<&str> = dump
            .values(key)
            .into_iter()
            .filter(|v| v.contains("origin-file"))
            .filter_map(|v| v.split(' ').next())
            .collect();
        for v in values {
            let p = render(v);
            t.check(name, key, &p, &format!("{sd:?}"), sd.contains(p.as_str()));
        }
        return;
    }
    if matches!(directive.grammar, Grammar::StdInput | Grammar::StdOutput) {
        // The dump splits `file:PATH` into the kind and a `...File` line.
        let v = render(&setting["value"]);
        let d = dump.first(key).unwrap_or_default();
        let (kind, arg) = v.split_once(':').unwrap_or((v.as_str(), ""));
        t.check(name, key, kind, d, kind == d);
        let file_key = match kind {
            "file" => format!("{key}File"),
            "append" => format!("{key}FileToAppend"),
            "truncate" => format!("{key}FileToTruncate"),
            "fd" => format!("{key}FileDescriptorName"),
            _ => return,
        };
        let d = dump.first(&file_key).unwrap_or_default();
        t.check(name, &file_key, arg, d, arg == d);
        return;
    }
    if directive.grammar == Grammar::WorkingDirectory {
        // The dump prints the path without the `-` of an optional one.
        let f = render(&setting["value"]["path"]);
        let d = dump.first(key).unwrap_or_default();
        t.check(name, key, &f, d, f == d);
        return;
    }
    // Command lines: the dump's `-> ExecStart:` blocks.
    if directive.grammar == Grammar::Exec {
        let flint: Vec<String> = values
            .iter()
            .map(|v| {
                v["argv"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| shell_quote(s.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default()
            })
            .collect();
        let sd = dump.exec.get(key).cloned().unwrap_or_default();
        t.check(name, key, &flint.join(" ; "), &sd.join(" ; "), flint == sd);
        return;
    }
    if section == "Unit" && DEPENDENCY_KEYS.contains(&key) {
        let sd: BTreeSet<&str> = dump
            .values(key)
            .into_iter()
            .filter(|v| v.contains("origin-file"))
            .filter_map(|v| v.split(' ').next())
            .collect();
        for v in values {
            let dep = render(v);
            let named = t.aliases.get(&dep).cloned().unwrap_or_else(|| dep.clone());
            t.check(
                name,
                key,
                &dep,
                &format!("{sd:?}"),
                sd.contains(dep.as_str()) || sd.contains(named.as_str()),
            );
        }
        return;
    }
    if section == "Service" && key == "TimeoutSec" {
        for k in ["TimeoutStartSec", "TimeoutStopSec"] {
            if all.contains_key(k) {
                continue;
            }
            if let (Some(u), Some(d)) = (values.last().and_then(|v| usec_of(v)), dump.first(k)) {
                t.check(name, k, &render(values[0]), d, time_agrees(u, d));
            }
        }
        return;
    }
    if key.starts_with("Limit") {
        let Some(v) = values.last() else { return };
        for (part, dk) in [("hard", key.to_string()), ("soft", format!("{key}Soft"))] {
            let Some(d) = dump.first(&dk) else {
                t.not_printed(&dk);
                continue;
            };
            let f = match &v[part] {
                Json::Number(n) => n.to_string(),
                _ => u64::MAX.to_string(),
            };
            let d_norm = if d == "infinity" {
                u64::MAX.to_string()
            } else {
                d.to_string()
            };
            t.check(name, &dk, &f, d, f == d_norm);
        }
        return;
    }
    let dk = dump_key(section, key);
    let sd = dump.values(dk);
    if sd.is_empty() {
        t.not_printed(dk);
        return;
    }
    let single = !setting.is_array();
    if single {
        let v = &setting["value"];
        let d = sd[sd.len() - 1];
        if let Some(u) = usec_of(v) {
            t.check(name, dk, &render(&v["text"]), d, time_agrees(u, d));
        } else if let Some(s) = expect_scalar(v) {
            t.check(name, dk, &s, d, s == d);
        } else if let Some(o) = v.as_object() {
            let f = match (o.get("path"), o.get("optional")) {
                (Some(p), Some(Json::Bool(opt))) => {
                    format!("{}{}", if *opt { "-" } else { "" }, render(p))
                }
                _ => render(v),
            };
            t.check(name, dk, &f, d, f == d);
        }
        return;
    }
    // Lists: the dump prints one line per item, or one line of words.
    let flint: Vec<String> = values
        .iter()
        .map(|v| match v.as_object() {
            Some(o) if o.contains_key("path") => format!(
                "{}{}",
                if o.get("optional") == Some(&Json::Bool(true)) {
                    "-"
                } else {
                    ""
                },
                render(&o["path"])
            ),
            _ => render(v),
        })
        .collect();
    let sd: Vec<String> = if sd.len() == 1 && flint.len() > 1 {
        sd[0].split(' ').map(str::to_string).collect()
    } else {
        sd.iter().map(|s| (*s).to_string()).collect()
    };
    if key.ends_with("Directory") && flint != sd {
        // systemd sorts these lists (parents before children) when it
        // loads the unit; the set must still agree.
        let mut f = flint.clone();
        f.sort();
        if f == sd {
            t.check(
                name,
                &format!("{dk} order"),
                &flint.join(" | "),
                &sd.join(" | "),
                false,
            );
            return;
        }
    }
    t.check(name, dk, &flint.join(" | "), &sd.join(" | "), flint == sd);
}

impl Tally {
    fn not_compared(&mut self, why: &str) {
        *self.not_compared.entry(why.to_string()).or_default() += 1;
    }

    fn not_printed(&mut self, key: &str) {
        *self.not_printed.entry(key.to_string()).or_default() += 1;
    }
}

#[test]
fn flint_show_agrees_with_systemd_test_dump() {
    let Some(systemd) = find_systemd() else {
        eprintln!("conformance: skipped: systemd's binary (/lib/systemd/systemd) is not installed");
        return;
    };
    let as_root = nix::unistd::geteuid().is_root();
    if as_root && Command::new("setpriv").arg("--help").output().is_err() {
        eprintln!(
            "conformance: skipped: setpriv (util-linux) is missing; systemd --test refuses to run as root"
        );
        return;
    }
    let base = tempfile::tempdir().unwrap();
    make_readable(base.path(), true);
    let tree = base.path().join("units");
    let roots = base.path().join("roots");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&roots).unwrap();
    make_readable(&tree, true);
    make_readable(&roots, true);
    let cases = build_corpus(&tree);
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let packages: BTreeSet<&str> = cases.iter().filter_map(|c| c.package.as_deref()).collect();

    let dump_text = run_oracle(&systemd, &tree, &roots, &names);
    if let Some(keep) = std::env::var_os("FLINT_CONFORMANCE_DUMP") {
        std::fs::write(keep, &dump_text).unwrap();
    }
    let dump = parse_dump(&dump_text);
    let docs = flint_show(&tree, &names);
    assert_eq!(
        docs.len(),
        names.len(),
        "flint show printed one object per unit"
    );
    let check_failed = flint_check_failures(&tree, &names);

    let mut t = Tally {
        units: 0,
        compared: 0,
        agreed: 0,
        deliberate: 0,
        not_printed: BTreeMap::new(),
        not_compared: BTreeMap::new(),
        per_key: BTreeMap::new(),
        failures: Vec::new(),
        aliases: std::fs::read_dir(&tree)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let link = std::fs::read_link(e.path()).ok()?;
                let target = link.file_name()?.to_string_lossy().into_owned();
                is_unit_name(&target)
                    .then(|| (e.file_name().to_string_lossy().into_owned(), target))
            })
            .collect(),
    };
    let mut missing = Vec::new();
    for (name, doc) in names.iter().zip(&docs) {
        let Some(d) = dump.get(name) else {
            missing.push(name.clone());
            continue;
        };
        t.units += 1;
        compare_unit(&mut t, name, doc, d);
        let dstate = d.first("Unit Load State").unwrap_or("?");
        let cstate = check_failed.get(name).map_or("loaded", String::as_str);
        let loads = |s: &str| s == "loaded";
        t.check(
            name,
            "flint check loads",
            cstate,
            dstate,
            loads(cstate) == loads(dstate),
        );
    }

    eprintln!(
        "conformance: {} unit files ({} units compared) from {} packages; {} settings compared, {} agree, {} deliberate differences, {} disagree",
        cases.len(),
        t.units,
        packages.len(),
        t.compared,
        t.agreed,
        t.deliberate,
        t.failures.len()
    );
    eprintln!("conformance: comparisons per key: {:?}", t.per_key);
    eprintln!(
        "conformance: settings flint holds but does not compare: {:?}",
        t.not_compared
    );
    eprintln!(
        "conformance: keys flint holds that the dump does not print: {:?}",
        t.not_printed
    );
    if std::env::var_os("CI").is_some() {
        assert!(
            cases.len() >= 150 && packages.len() >= 40,
            "CI needs >= 150 unit files from >= 40 packages, found {} from {}; run scripts/install-test-deps.sh",
            cases.len(),
            packages.len()
        );
    } else if packages.len() < 40 {
        eprintln!(
            "conformance: only {} packages' units are installed here (CI installs 40+ with scripts/install-test-deps.sh); compared what there is",
            packages.len()
        );
    }
    assert!(missing.is_empty(), "the dump has no block for: {missing:?}");
    assert!(
        t.failures.is_empty(),
        "flint disagrees with systemd on {} settings:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
}

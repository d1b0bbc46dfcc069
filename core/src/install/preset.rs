//! `preset` and `preset-all`: units enabled or disabled as the `*.preset`
//! files say, as systemd's `unit_file_preset()` and
//! `unit_file_preset_all()` do it (`src/shared/install.c`). Packaging runs
//! these: RPM's `%systemd_post` (`systemctl --no-reload preset UNIT`) and
//! Debian's `deb-systemd-helper` on a first install
//! (`systemctl --preset-mode=enable-only preset UNIT`).
//!
//! The preset files are the `*.preset` files of
//! `/etc/systemd/system-preset`, `/run/systemd/system-preset`,
//! `/usr/local/lib/systemd/system-preset`, `/usr/lib/systemd/system-preset`
//! and `/lib/systemd/system-preset` (`user-preset` for `--user`, without
//! `/lib`), below the root, read in the order of their file names, a file
//! of an earlier directory hiding one of the same name. Each line is
//! `enable PATTERN [INSTANCE...]`, `disable PATTERN` or `ignore PATTERN`;
//! the first line whose pattern matches a unit decides, and a unit no line
//! matches is enabled.

use std::path::{Path, PathBuf};

use super::discover::{Context, Flags};
use super::links::{Marks, remove_marked_symlinks};
use super::{
    Change, InstallError, LookupPaths, Options, Outcome, Scope, context_apply, mark_for_removal,
    outcome,
};
use crate::unit::name::UnitName;

/// What a preset says of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetAction {
    Enable,
    Disable,
    Ignore,
}

impl PresetAction {
    /// The word `list-unit-files` prints in its preset column.
    pub fn as_str(self) -> &'static str {
        match self {
            PresetAction::Enable => "enabled",
            PresetAction::Disable => "disabled",
            PresetAction::Ignore => "ignored",
        }
    }
}

/// Which half of the presets to apply (`--preset-mode=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PresetMode {
    #[default]
    Full,
    EnableOnly,
    DisableOnly,
}

impl PresetMode {
    /// `full`, `enable-only` or `disable-only`.
    pub fn parse(s: &str) -> Option<PresetMode> {
        match s {
            "full" => Some(PresetMode::Full),
            "enable-only" => Some(PresetMode::EnableOnly),
            "disable-only" => Some(PresetMode::DisableOnly),
            _ => None,
        }
    }
}

/// One line of a preset file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: String,
    action: PresetAction,
    /// `enable foo@.service a b`: the instances to enable of a template.
    instances: Option<Vec<String>>,
}

/// The rules of every preset file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presets {
    rules: Vec<Rule>,
    /// Lines that could not be read (`FILE:LINE: ...`).
    pub warnings: Vec<String>,
}

/// The directories preset files are read from, highest priority first.
fn preset_dirs(lp: &LookupPaths) -> Vec<PathBuf> {
    let (name, split_usr) = match lp.scope {
        Scope::System => ("systemd/system-preset", true),
        Scope::User | Scope::Global => ("systemd/user-preset", false),
    };
    let mut dirs = vec![
        format!("/etc/{name}"),
        format!("/run/{name}"),
        format!("/usr/local/lib/{name}"),
        format!("/usr/lib/{name}"),
    ];
    if split_usr {
        dirs.push(format!("/lib/{name}"));
    }
    dirs.iter()
        .map(|d| super::paths::under(lp.root.as_deref(), Path::new(d)))
        .collect()
}

/// systemd's `first_word()`: what follows `word` and whitespace on
/// `line`, when `line` begins with that word.
fn first_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.starts_with(char::is_whitespace)
        .then(|| rest.trim_start())
}

impl Presets {
    /// Reads the preset files of `lp`'s scope (systemd's `read_presets()`).
    pub fn read(lp: &LookupPaths) -> Presets {
        let files = crate::conf_files::list(preset_dirs(lp), |name, meta| {
            name.ends_with(".preset") && meta.is_some_and(std::fs::Metadata::is_file)
        });
        let mut presets = Presets::default();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let shown = file.display().to_string();
            for (n, raw) in text.lines().enumerate() {
                let line = raw.trim();
                if line.is_empty() || line.starts_with(['#', ';']) {
                    continue;
                }
                let rule = if let Some(p) = first_word(line, "enable") {
                    let mut words = p.split_whitespace();
                    let pattern = words.next().unwrap_or("").to_string();
                    let instances: Vec<String> = words.map(str::to_string).collect();
                    if instances.is_empty() {
                        Some(Rule {
                            pattern,
                            action: PresetAction::Enable,
                            instances: None,
                        })
                    } else if UnitName::parse(&pattern).is_ok_and(|u| u.is_template()) {
                        Some(Rule {
                            pattern,
                            action: PresetAction::Enable,
                            instances: Some(instances),
                        })
                    } else {
                        None
                    }
                } else if let Some(p) = first_word(line, "disable") {
                    Some(Rule {
                        pattern: p.to_string(),
                        action: PresetAction::Disable,
                        instances: None,
                    })
                } else {
                    first_word(line, "ignore").map(|p| Rule {
                        pattern: p.to_string(),
                        action: PresetAction::Ignore,
                        instances: None,
                    })
                };
                match rule {
                    Some(r) => presets.rules.push(r),
                    None => presets.warnings.push(format!(
                        "{shown}:{}: Couldn't parse line '{line}'. Ignoring.",
                        n + 1
                    )),
                }
            }
        }
        presets
    }

    /// What the presets say of `name` (systemd's `query_presets()`), and
    /// for a template the instances to enable, when a rule lists them.
    pub fn query(&self, name: &str) -> (PresetAction, Option<Vec<String>>) {
        let parsed = UnitName::parse(name).ok();
        for rule in &self.rules {
            if let (Some(instances), Some(u)) = (&rule.instances, &parsed) {
                let template = if u.is_template() {
                    Some(name.to_string())
                } else {
                    u.template().map(|t| t.to_string())
                };
                if template.as_deref() == Some(rule.pattern.as_str()) {
                    if u.is_template() {
                        let (prefix, suffix) = name.split_once("@.").unwrap_or((name, ""));
                        let names = instances
                            .iter()
                            .map(|i| format!("{prefix}@{i}.{suffix}"))
                            .collect();
                        return (rule.action, Some(names));
                    }
                    if u.instance()
                        .is_some_and(|i| instances.iter().any(|x| x == i))
                    {
                        return (rule.action, None);
                    }
                }
            }
            if crate::service::condition::wildcard(rule.pattern.as_bytes(), name.as_bytes()) {
                return (rule.action, None);
            }
        }
        (PresetAction::Enable, None)
    }
}

/// The two contexts a preset fills: units to enable and to disable.
struct Plan<'a> {
    plus: Context<'a>,
    minus: Context<'a>,
}

/// systemd's `preset_prepare_one()`.
fn prepare_one(
    lp: &LookupPaths,
    plan: &mut Plan<'_>,
    name: &str,
    presets: &Presets,
    changes: &mut Vec<Change>,
) -> Result<(), InstallError> {
    if plan.plus.contains(name) || plan.minus.contains(name) {
        return Ok(());
    }
    let mut tmp = Context::new(lp);
    let i = tmp.discover(name, Flags::FOLLOW, changes)?;
    if tmp.infos[i].name != name {
        // An alias: its unit is preset under its own name.
        return Ok(());
    }
    match presets.query(name) {
        (PresetAction::Enable, Some(instances)) => {
            for instance in instances {
                plan.plus
                    .discover_and_check(&instance, Flags::LOAD_FOLLOW, changes)?;
            }
        }
        (PresetAction::Enable, None) => {
            plan.plus
                .discover_and_check(name, Flags::LOAD_FOLLOW, changes)?;
        }
        (PresetAction::Disable, _) => {
            plan.minus.discover(name, Flags::FOLLOW, changes)?;
        }
        (PresetAction::Ignore, _) => {}
    }
    Ok(())
}

/// systemd's `execute_preset()`: the disabling half, then the enabling.
fn execute(
    lp: &LookupPaths,
    plan: &mut Plan<'_>,
    config: &Path,
    mode: PresetMode,
    opts: Options,
    changes: &mut Vec<Change>,
) -> Result<usize, InstallError> {
    let mut r = Ok(0);
    if mode != PresetMode::EnableOnly {
        let mut marks = Marks::new();
        mark_for_removal(&mut plan.minus, &mut marks, changes);
        r = remove_marked_symlinks(lp, &mut marks, config, false, changes).map(|()| 0);
    }
    if mode != PresetMode::DisableOnly {
        let q = context_apply(&mut plan.plus, config, opts.force, true, changes);
        if let Ok(n) = r {
            r = q.map(|k| n + k);
        }
    }
    r
}

/// What `preset` and `preset-all` share: the presets read, the plan that
/// `prepare` fills carried out. `prepare` stops everything with an error,
/// or gives an error to report once the plan is carried out anyway.
fn apply_presets(
    lp: &LookupPaths,
    mode: PresetMode,
    opts: Options,
    prepare: impl FnOnce(
        &Presets,
        &mut Plan<'_>,
        &mut Vec<Change>,
    ) -> Result<Option<InstallError>, InstallError>,
) -> Outcome {
    outcome(|changes, warnings| {
        let config = lp.config_path(opts.runtime)?.to_path_buf();
        let presets = Presets::read(lp);
        warnings.extend(presets.warnings.iter().cloned());
        let mut plan = Plan {
            plus: Context::new(lp),
            minus: Context::new(lp),
        };
        let failed = prepare(&presets, &mut plan, changes)?;
        let r = execute(lp, &mut plan, &config, mode, opts, changes);
        warnings.append(&mut plan.plus.warnings);
        warnings.append(&mut plan.minus.warnings);
        failed.map_or(r, Err)
    })
}

/// `preset UNIT...`: each unit enabled or disabled as the presets say.
pub fn preset(lp: &LookupPaths, names: &[String], mode: PresetMode, opts: Options) -> Outcome {
    apply_presets(lp, mode, opts, |presets, plan, changes| {
        for n in names {
            prepare_one(lp, plan, n, presets, changes)?;
        }
        Ok(None)
    })
}

/// `preset-all`: every unit file of the search path, as `preset`. Units
/// that are generated, transient, missing or otherwise not for presets
/// are passed over, as systemd passes them over.
pub fn preset_all(lp: &LookupPaths, mode: PresetMode, opts: Options) -> Outcome {
    apply_presets(lp, mode, opts, |presets, plan, changes| {
        let mut failed = None;
        for dir in &lp.search_path {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| UnitName::parse(n).is_ok())
                .collect();
            names.sort();
            for n in names {
                // What fails is reported, and for units that are not for
                // presets (systemd 255's list, which also passes over a
                // dangling alias) the others still go ahead.
                match prepare_one(lp, plan, &n, presets, changes) {
                    Ok(())
                    | Err(
                        InstallError::Exists
                        | InstallError::Masked
                        | InstallError::Generated
                        | InstallError::BadSpecifier
                        | InstallError::NotTemplate
                        | InstallError::BadName
                        | InstallError::Loop
                        | InstallError::BadAlias
                        | InstallError::NotFound
                        | InstallError::Unresolvable
                        | InstallError::Dangling,
                    ) => {}
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        Ok(failed)
    })
}

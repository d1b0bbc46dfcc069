//! The command-line verbs `enable`, `disable`, `reenable`, `mask`, `unmask`,
//! `preset`, `preset-all`, `add-wants`, `add-requires`, `link` and
//! `is-enabled` as systemctl runs them on the client side: the
//! arguments mangled into unit names, Debian's pre-check of `.service`
//! names, the operation, and the lines to print with the exit code.

use std::path::Path;

use super::{
    InstallError, Level, LookupPaths, Options, add_dependency, check_names, disable, enable, link,
    locale_is_utf8, mangle_arg, mask, no_install_info_notice, preset, preset_all, reenable, revert,
    unit_file_state_warn, unmask,
};

/// One of the verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Enable,
    Disable,
    Reenable,
    Mask,
    Unmask,
    IsEnabled,
    Preset,
    PresetAll,
    /// `add-wants TARGET UNIT...`
    AddWants,
    /// `add-requires TARGET UNIT...`
    AddRequires,
    Link,
    Revert,
}

impl Verb {
    /// The word used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Enable => "enable",
            Verb::Disable => "disable",
            Verb::Reenable => "reenable",
            Verb::Mask => "mask",
            Verb::Unmask => "unmask",
            Verb::IsEnabled => "is-enabled",
            Verb::Preset => "preset",
            Verb::PresetAll => "preset-all",
            Verb::AddWants => "add-wants",
            Verb::AddRequires => "add-requires",
            Verb::Link => "link",
            Verb::Revert => "revert",
        }
    }
}

/// What the user asked for.
#[derive(Clone, Copy)]
pub struct Invocation<'a> {
    pub verb: Verb,
    /// The unit arguments as given.
    pub units: &'a [String],
    pub options: Options,
    /// Print errors only (`--quiet`).
    pub quiet: bool,
    /// Relative paths among `units` are taken from here.
    pub cwd: &'a Path,
    /// The environment (`SYSTEMCTL_SKIP_SYSV`, the locale).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Invocation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("verb", &self.verb)
            .field("units", &self.units)
            .field("options", &self.options)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Stdout(String),
    Stderr(String),
}

/// What to print, in order, and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<Line>,
    pub exit: u8,
    /// The units by file name, for `--now` to start or stop.
    pub units: Vec<String>,
}

impl Report {
    fn fail(mut self, line: String) -> Report {
        self.lines.push(Line::Stderr(line));
        self.exit = 1;
        self
    }
}

/// Runs one verb on the paths `lp` (or reports why they could not be set
/// up).
pub fn run(lp: Result<LookupPaths, InstallError>, inv: &Invocation<'_>) -> Report {
    let verb = inv.verb.as_str();
    let mut report = Report {
        lines: Vec::new(),
        exit: 0,
        units: Vec::new(),
    };
    let lp = match lp {
        Ok(lp) => lp,
        Err(e) => return report.fail(format!("Failed to {verb}: {e}.")),
    };
    let operation = if inv.verb == Verb::IsEnabled {
        "to check"
    } else {
        "to enable"
    };
    // add-wants/add-requires: the target first (a name without a type is
    // a target's), then the units.
    let mut target = None;
    let mut units = inv.units;
    if matches!(inv.verb, Verb::AddWants | Verb::AddRequires) {
        let Some((first, rest)) = inv.units.split_first().filter(|(_, r)| !r.is_empty()) else {
            return report.fail("Too few arguments.".to_owned());
        };
        let typed = first
            .rfind('.')
            .is_some_and(|d| crate::unit::name::UnitType::from_suffix(&first[d + 1..]).is_some());
        target = Some(if typed || first.contains('/') {
            first.clone()
        } else {
            format!("{first}.target")
        });
        units = rest;
    }
    let mut names = Vec::new();
    for u in units {
        match mangle_arg(u, operation, inv.cwd) {
            Ok((n, notices)) => {
                if !inv.quiet {
                    report.lines.extend(notices.into_iter().map(Line::Stderr));
                }
                names.push(n);
            }
            Err(e) => return report.fail(format!("Failed to mangle unit name: {e}")),
        }
    }
    let skip_sysv = (inv.env)("SYSTEMCTL_SKIP_SYSV")
        .and_then(|v| crate::unit::value::bool::parse_bool(&v).ok())
        == Some(true);
    if matches!(inv.verb, Verb::Enable | Verb::Disable | Verb::IsEnabled)
        && !skip_sysv
        && let Err(e) = check_names(&lp, &names)
    {
        return report.fail(format!("Failed to look up unit file state: {e}"));
    }
    if inv.verb == Verb::IsEnabled {
        let mut enabled = false;
        for n in &names {
            let mut warnings = Vec::new();
            let state = unit_file_state_warn(&lp, n, &mut warnings);
            report.lines.extend(warnings.into_iter().map(Line::Stderr));
            match state {
                Ok(s) => {
                    enabled |= s.counts_as_enabled();
                    if !inv.quiet {
                        report.lines.push(Line::Stdout(s.to_string()));
                    }
                }
                Err(e) => {
                    return report.fail(format!("Failed to get unit file state for {n}: {e}"));
                }
            }
        }
        report.exit = u8::from(!enabled);
        return report;
    }
    if inv.verb == Verb::Disable && names.iter().any(|n| n.contains('/')) {
        report.lines.push(Line::Stderr(
            "Warning: Can't execute disable on the unit file path. Proceeding with the unit name."
                .to_owned(),
        ));
        for n in &mut names {
            if let Some(base) = n.rsplit('/').next() {
                *n = base.to_owned();
            }
        }
    }
    let outcome = match inv.verb {
        Verb::Enable => enable(&lp, &names, inv.options),
        Verb::Disable => disable(&lp, &names, inv.options),
        Verb::Reenable => reenable(&lp, &names, inv.options),
        Verb::Mask => mask(&lp, &names, inv.options),
        Verb::Preset => preset(&lp, &names, inv.options.preset_mode, inv.options),
        Verb::PresetAll => preset_all(&lp, inv.options.preset_mode, inv.options),
        Verb::AddWants | Verb::AddRequires => add_dependency(
            &lp,
            &names,
            target.as_deref().unwrap_or_default(),
            inv.verb == Verb::AddRequires,
            inv.options,
        ),
        Verb::Link => link(&lp, &names, inv.options),
        Verb::Revert => revert(&lp, &names),
        Verb::Unmask | Verb::IsEnabled => unmask(&lp, &names, inv.options),
    };
    let utf8 = locale_is_utf8(inv.env);
    // How systemctl names the operation in its messages.
    let verb = match inv.verb {
        Verb::PresetAll => "preset",
        Verb::AddWants | Verb::AddRequires => "add dependency on",
        _ => verb,
    };
    for m in outcome.messages(verb, utf8) {
        if !inv.quiet || m.level == Level::Error {
            report.lines.push(Line::Stderr(m.text));
        }
    }
    if outcome.result.is_err() {
        report.exit = 1;
        return report;
    }
    if matches!(inv.verb, Verb::Enable | Verb::Reenable) && outcome.result == Ok(0) && !inv.quiet {
        report
            .lines
            .push(Line::Stderr(no_install_info_notice(utf8)));
    }
    report.units = names
        .iter()
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_owned())
        .collect();
    report
}

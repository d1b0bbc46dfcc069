//! `%` specifiers in `[Install]` values, expanded as systemd's
//! `install_name_printf()` expands them.
//!
//! The table is smaller than the manager's: `%i %j %n %N %p` describe the
//! unit being installed (a template with `DefaultInstance=` counts as that
//! instance for `%i %n %N`), then the host specifiers `%a %A %b %B %H %l %q
//! %m %M %o %v %w %W` and the caller's `%g %G %u %U`. Any other letter or
//! digit is an error ("invalid specifier"). With `--root`, `%m` and the
//! os-release specifiers read the files of the root, and fail ("cannot
//! resolve specifiers") when the root has none.

use std::sync::OnceLock;

use super::InstallError;
use super::discover::InstallInfo;
use super::paths::LookupPaths;
use crate::unit::name::{UNIT_NAME_MAX, UnitName};
use crate::unit::specifier::{
    self, DirectoryFacts, HostFacts, ManagerFacts, SpecifierContext, SpecifierError, SpecifierTable,
};

/// The letters [`install_printf`] knows besides the unit-name ones.
const HOST_AND_CREDS: &str = "aAbBHlqmMovwWgGuU";

/// The host facts, read once per process; the root's own machine id and
/// os-release replace the host's when a root is given.
fn host_facts(lp: &LookupPaths) -> HostFacts {
    static HOST: OnceLock<HostFacts> = OnceLock::new();
    let mut host = HOST.get_or_init(HostFacts::probe).clone();
    if let Some(root) = lp.root.as_deref() {
        host.machine_id = std::fs::read_to_string(root.join("etc/machine-id"))
            .ok()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        host.os_release = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|f| std::fs::read_to_string(root.join(f)).ok())
            .map(|t| specifier::parse_os_release(&t));
    }
    host
}

fn manager_facts() -> (ManagerFacts, DirectoryFacts) {
    static FACTS: OnceLock<(ManagerFacts, DirectoryFacts)> = OnceLock::new();
    FACTS
        .get_or_init(|| {
            let m = ManagerFacts::probe(false);
            let d = DirectoryFacts::probe(false, &m, &|_| None);
            (m, d)
        })
        .clone()
}

/// The value of one host or credential specifier.
fn host_specifier(lp: &LookupPaths, c: char) -> Result<String, InstallError> {
    let (manager, dirs) = manager_facts();
    let unit = UnitName::parse("install.service").map_err(|_| InstallError::Invalid)?;
    let ctx = SpecifierContext::with_facts(
        unit,
        None,
        lp.scope != super::Scope::System,
        host_facts(lp),
        manager,
        dirs,
    );
    specifier::expand(&format!("%{c}"), &ctx, SpecifierTable::UnitName).map_err(|e| match e {
        SpecifierError::InvalidSlot(_) => InstallError::BadSpecifier,
        SpecifierError::Unavailable { .. } => InstallError::Unresolvable,
        SpecifierError::TooLong { .. } => InstallError::NameTooLong,
    })
}

/// `%i`, `%j`, `%n`, `%N`, `%p` of `info`.
fn name_specifier(info: &InstallInfo, c: char) -> Result<String, InstallError> {
    let name = UnitName::parse(&info.name).map_err(|_| InstallError::Invalid)?;
    let default = info.default_instance.as_deref();
    Ok(match c {
        'i' => match name.instance() {
            Some(i) if !i.is_empty() => i.to_owned(),
            _ => default.unwrap_or_default().to_owned(),
        },
        'n' => match default {
            Some(d) if name.is_template() => name
                .with_instance(d)
                .map_err(|_| InstallError::Invalid)?
                .as_str()
                .to_owned(),
            _ => name.as_str().to_owned(),
        },
        'N' => {
            let pi = name.prefix_and_instance();
            match default {
                Some(d) if pi.ends_with('@') => format!("{pi}{d}"),
                _ => pi.to_owned(),
            }
        }
        'p' => name.prefix().to_owned(),
        'j' => {
            let p = name.prefix();
            p.rfind('-').map_or(p, |d| &p[d + 1..]).to_owned()
        }
        _ => return Err(InstallError::BadSpecifier),
    })
}

/// Expands `format` for the unit `info` (its name and, for templates, its
/// `DefaultInstance=` as read so far).
pub(crate) fn install_printf(
    lp: &LookupPaths,
    info: &InstallInfo,
    format: &str,
) -> Result<String, InstallError> {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('%'),
            Some('%') => out.push('%'),
            Some(s @ ('i' | 'j' | 'n' | 'N' | 'p')) => out.push_str(&name_specifier(info, s)?),
            Some(s) if HOST_AND_CREDS.contains(s) => out.push_str(&host_specifier(lp, s)?),
            Some(s) if s.is_ascii_alphanumeric() => return Err(InstallError::BadSpecifier),
            Some(s) => {
                out.push('%');
                out.push(s);
            }
        }
        if out.len() >= UNIT_NAME_MAX {
            return Err(InstallError::NameTooLong);
        }
    }
    Ok(out)
}

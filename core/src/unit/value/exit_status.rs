//! Exit-status lists (`SuccessExitStatus=`, `RestartPreventExitStatus=`,
//! `RestartForceExitStatus=`) as systemd's `config_parse_set_status()` reads
//! them, and systemd's exit-status name table.
//!
//! A list holds exit codes (0..=255, or a name such as `EXEC`, `TEMPFAIL`)
//! and signals (`SIGTERM`, `KILL`, …). A number is always an exit code, never
//! a signal. The table also lets flint name the statuses of its own spawn
//! failures exactly as systemd does (`203/EXEC`).

use super::ValueError;
use super::int::parse_u8;
use super::signal::parse_signal;
use super::words::{ExtractFlags, extract_first_word};

/// systemd's exit-status names (libc, LSB, BSD `sysexits.h`, systemd's own),
/// as `systemd-analyze exit-status` prints them (systemd 252).
pub const EXIT_STATUS_NAMES: &[(u8, &str)] = &[
    (0, "SUCCESS"),
    (1, "FAILURE"),
    (2, "INVALIDARGUMENT"),
    (3, "NOTIMPLEMENTED"),
    (4, "NOPERMISSION"),
    (5, "NOTINSTALLED"),
    (6, "NOTCONFIGURED"),
    (7, "NOTRUNNING"),
    (64, "USAGE"),
    (65, "DATAERR"),
    (66, "NOINPUT"),
    (67, "NOUSER"),
    (68, "NOHOST"),
    (69, "UNAVAILABLE"),
    (70, "SOFTWARE"),
    (71, "OSERR"),
    (72, "OSFILE"),
    (73, "CANTCREAT"),
    (74, "IOERR"),
    (75, "TEMPFAIL"),
    (76, "PROTOCOL"),
    (77, "NOPERM"),
    (78, "CONFIG"),
    (200, "CHDIR"),
    (201, "NICE"),
    (202, "FDS"),
    (203, "EXEC"),
    (204, "MEMORY"),
    (205, "LIMITS"),
    (206, "OOM_ADJUST"),
    (207, "SIGNAL_MASK"),
    (208, "STDIN"),
    (209, "STDOUT"),
    (210, "CHROOT"),
    (211, "IOPRIO"),
    (212, "TIMERSLACK"),
    (213, "SECUREBITS"),
    (214, "SETSCHEDULER"),
    (215, "CPUAFFINITY"),
    (216, "GROUP"),
    (217, "USER"),
    (218, "CAPABILITIES"),
    (219, "CGROUP"),
    (220, "SETSID"),
    (221, "CONFIRM"),
    (222, "STDERR"),
    (224, "PAM"),
    (225, "NETWORK"),
    (226, "NAMESPACE"),
    (227, "NO_NEW_PRIVILEGES"),
    (228, "SECCOMP"),
    (229, "SELINUX_CONTEXT"),
    (230, "PERSONALITY"),
    (231, "APPARMOR"),
    (232, "ADDRESS_FAMILIES"),
    (233, "RUNTIME_DIRECTORY"),
    (235, "CHOWN"),
    (236, "SMACK_PROCESS_LABEL"),
    (237, "KEYRING"),
    (238, "STATE_DIRECTORY"),
    (239, "CACHE_DIRECTORY"),
    (240, "LOGS_DIRECTORY"),
    (241, "CONFIGURATION_DIRECTORY"),
    (242, "NUMA_POLICY"),
    (243, "CREDENTIALS"),
    (244, "BPF"),
    (255, "EXCEPTION"),
];

/// The name of an exit status (`EXEC` for 203), if systemd has one.
pub fn exit_status_name(status: u8) -> Option<&'static str> {
    EXIT_STATUS_NAMES
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, n)| *n)
}

/// systemd's `exit_status_from_string()`: a table name or a number 0..=255.
pub fn parse_exit_status(s: &str) -> Result<u8, ValueError> {
    if let Some(&(status, _)) = EXIT_STATUS_NAMES.iter().find(|(_, n)| *n == s) {
        return Ok(status);
    }
    parse_u8(s)
}

/// A parsed exit-status list, with systemd's per-word warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStatusList {
    /// Exit codes, sorted, without duplicates.
    pub statuses: Vec<u8>,
    /// Signal numbers, sorted, without duplicates.
    pub signals: Vec<i32>,
    /// Words systemd would skip with "Failed to parse value, ignoring: WORD".
    pub warnings: Vec<String>,
}

/// Parse a list exactly as systemd does: words that are neither an exit
/// status nor a signal are skipped with a warning; an unbalanced quote drops
/// the whole value (`Err`).
pub fn parse_exit_status_list_full(value: &str) -> Result<ExitStatusList, ValueError> {
    let mut out = ExitStatusList::default();
    let mut cursor = Some(value);
    while let Some(word) = extract_first_word(&mut cursor, None, ExtractFlags::default())? {
        if let Ok(status) = parse_exit_status(&word) {
            out.statuses.push(status);
        } else {
            match parse_signal(&word) {
                Ok(signo) => out.signals.push(signo),
                Err(_) => out
                    .warnings
                    .push(format!("Failed to parse value, ignoring: {word}")),
            }
        }
    }
    out.statuses.sort_unstable();
    out.statuses.dedup();
    out.signals.sort_unstable();
    out.signals.dedup();
    Ok(out)
}

/// Parse an exit-status list into (exit codes, signals), both sorted and
/// without duplicates. Stricter than systemd: a word that is neither an exit
/// status nor a signal is an error here, so that a caller without a warning
/// channel never drops a word silently; use [`parse_exit_status_list_full`]
/// for systemd's skip-and-warn behaviour.
pub fn parse_exit_status_list(value: &str) -> Result<(Vec<u8>, Vec<i32>), ValueError> {
    let list = parse_exit_status_list_full(value)?;
    if let Some(w) = list.warnings.first() {
        return Err(ValueError::Invalid(w.clone()));
    }
    Ok((list.statuses, list.signals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &(status, name) in EXIT_STATUS_NAMES {
            assert_eq!(parse_exit_status(name).ok(), Some(status));
            assert_eq!(exit_status_name(status), Some(name));
        }
        assert_eq!(exit_status_name(203), Some("EXEC"));
        assert_eq!(exit_status_name(100), None);
    }

    // Vectors from systemd src/test/test-exit-status.c
    // (TEST(exit_status_from_string)) plus list rows checked against
    // config_parse_set_status() semantics.
    #[test]
    fn single_values() {
        assert_eq!(parse_exit_status("0").ok(), Some(0));
        assert_eq!(parse_exit_status("1").ok(), Some(1));
        assert_eq!(parse_exit_status("250").ok(), Some(250));
        assert!(parse_exit_status("256").is_err());
        assert_eq!(parse_exit_status("NUMA_POLICY").ok(), Some(242));
        assert_eq!(parse_exit_status("CREDENTIALS").ok(), Some(243));
        assert!(parse_exit_status("exec").is_err());
        assert!(parse_exit_status("EXIT_EXEC").is_err());
    }

    #[test]
    fn lists() {
        type Row = (&'static str, Option<(Vec<u8>, Vec<i32>)>);
        let rows: &[Row] = &[
            ("0 1 2", Some((vec![0, 1, 2], vec![]))),
            ("143 SIGTERM", Some((vec![143], vec![15]))),
            ("TERM KILL 75 TEMPFAIL", Some((vec![75], vec![9, 15]))),
            ("  1  1 ", Some((vec![1], vec![]))),
            ("SIGRTMIN+1", Some((vec![], vec![35]))),
            ("EXEC 255", Some((vec![203, 255], vec![]))),
            ("", Some((vec![], vec![]))),
            ("256", None),
            ("bogus", None),
            ("1\\", None),
        ];
        for (input, want) in rows {
            assert_eq!(&parse_exit_status_list(input).ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn full_skips_bad_words_like_systemd() {
        let l = parse_exit_status_list_full("1 bogus SIGHUP 300").unwrap_or_default();
        assert_eq!(l.statuses, vec![1]);
        assert_eq!(l.signals, vec![1]);
        assert_eq!(l.warnings.len(), 2);
        assert!(parse_exit_status_list_full("1\\").is_err());
    }
}

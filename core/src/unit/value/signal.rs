//! Signals (`KillSignal=`, `ReloadSignal=`, `SuccessExitStatus=` …) as
//! systemd's `signal_from_string()` reads them and its dumps print them.
//!
//! Accepted: a number 1..=64, a name with or without `SIG` (`SIGTERM`,
//! `TERM`), and the real-time forms `RTMIN`, `RTMIN+n`, `RTMAX`, `RTMAX-n`.
//! Real-time numbers are those of glibc on Linux (SIGRTMIN = 34, SIGRTMAX = 64),
//! which is what systemd sees on the systems flint targets.

use super::ValueError;
use super::int::parse_i32;

/// glibc's `SIGRTMIN` (the kernel's 32 and 33 are reserved by the C library).
pub const SIGRTMIN: i32 = 34;
/// glibc's `SIGRTMAX`.
pub const SIGRTMAX: i32 = 64;
/// One more than the highest signal number (`_NSIG`).
const NSIG: i32 = 65;

/// Classic signal names without `SIG`, as in systemd's table.
const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGSTKFLT, "STKFLT"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];

/// Full names (`SIGTERM`, `SIGRTMIN+3`) indexed by signal number.
const FULL_NAMES: [&str; NSIG as usize] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
    "",
    "",
    "SIGRTMIN+0",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+16",
    "SIGRTMIN+17",
    "SIGRTMIN+18",
    "SIGRTMIN+19",
    "SIGRTMIN+20",
    "SIGRTMIN+21",
    "SIGRTMIN+22",
    "SIGRTMIN+23",
    "SIGRTMIN+24",
    "SIGRTMIN+25",
    "SIGRTMIN+26",
    "SIGRTMIN+27",
    "SIGRTMIN+28",
    "SIGRTMIN+29",
    "SIGRTMIN+30",
];

fn valid(signo: i32) -> bool {
    signo > 0 && signo < NSIG
}

/// Parse a signal the way systemd does.
pub fn parse_signal(s: &str) -> Result<i32, ValueError> {
    if let Ok(signo) = parse_i32(s) {
        return if valid(signo) {
            Ok(signo)
        } else {
            Err(ValueError::range(format_args!(
                "signal number {signo} out of range"
            )))
        };
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    if let Some(&(signo, _)) = NAMES.iter().find(|(_, n)| *n == name) {
        return Ok(signo);
    }
    let bad = || ValueError::invalid(format_args!("unknown signal '{s}'"));
    if let Some(rest) = name.strip_prefix("RTMIN") {
        if rest.is_empty() {
            return Ok(SIGRTMIN);
        }
        if !rest.starts_with('+') {
            return Err(bad());
        }
        let n = parse_i32(rest)?;
        if !(0..=SIGRTMAX - SIGRTMIN).contains(&n) {
            return Err(ValueError::range(format_args!("'{s}' is beyond SIGRTMAX")));
        }
        return Ok(SIGRTMIN + n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        if rest.is_empty() {
            return Ok(SIGRTMAX);
        }
        if !rest.starts_with('-') {
            return Err(bad());
        }
        let n = parse_i32(rest)?;
        if !(SIGRTMIN - SIGRTMAX..=0).contains(&n) {
            return Err(ValueError::range(format_args!("'{s}' is below SIGRTMIN")));
        }
        return Ok(SIGRTMAX + n);
    }
    Err(bad())
}

/// The full name of a signal (`SIGTERM`, `SIGRTMIN+3`), or `None` for numbers
/// that are not signals (0, 32, 33, > 64).
pub fn signal_name(signo: i32) -> Option<&'static str> {
    let i = usize::try_from(signo).ok()?;
    FULL_NAMES.get(i).copied().filter(|n| !n.is_empty())
}

/// How systemd's dumps print a signal: the full name, or the bare number when
/// it has none.
pub fn format_signal(signo: i32) -> String {
    signal_name(signo).map_or_else(|| signo.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from systemd src/test/test-signal-util.c (TEST(signal_from_string))
    // re-expressed with glibc's SIGRTMIN = 34 and SIGRTMAX = 64.
    const TABLE: &[(&str, Option<i32>)] = &[
        ("TERM", Some(15)),
        ("SIGTERM", Some(15)),
        ("15", Some(15)),
        ("KILL", Some(9)),
        ("SIGKILL", Some(9)),
        ("9", Some(9)),
        ("HUP", Some(1)),
        ("SIGHUP", Some(1)),
        ("STKFLT", Some(16)),
        ("IO", Some(29)),
        ("PWR", Some(30)),
        ("SYS", Some(31)),
        ("WINCH", Some(28)),
        ("RTMIN", Some(34)),
        ("SIGRTMIN", Some(34)),
        ("RTMIN+0", Some(34)),
        ("RTMIN+1", Some(35)),
        ("SIGRTMIN+30", Some(64)),
        ("RTMIN+31", None),
        ("RTMIN-1", None),
        ("RTMINx", None),
        ("RTMAX", Some(64)),
        ("RTMAX-0", Some(64)),
        ("RTMAX-30", Some(34)),
        ("RTMAX-31", None),
        ("RTMAX+1", None),
        ("64", Some(64)),
        ("65", None),
        ("0", None),
        ("-1", None),
        ("0x9", Some(9)),
        ("term", None),
        ("SIG", None),
        ("SIGSIGTERM", None),
        ("", None),
        ("POLL", None),
    ];

    #[test]
    fn signal_table() {
        for &(input, want) in TABLE {
            assert_eq!(parse_signal(input).ok(), want, "input {input:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(37), Some("SIGRTMIN+3"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(65), None);
        assert_eq!(signal_name(-1), None);
        assert_eq!(format_signal(33), "33");
        for signo in 1..NSIG {
            if let Some(name) = signal_name(signo) {
                assert_eq!(parse_signal(name).ok(), Some(signo), "{name}");
            }
        }
        for &(signo, name) in NAMES {
            assert_eq!(signal_name(signo), Some(format!("SIG{name}").as_str()));
        }
    }
}

//! `flint-bench`: how long flint's unit engine takes to load a large
//! generated unit tree and this machine's system unit directory.
//!
//! Not a test: it prints a table of timings (median, min and max of several
//! runs) and, with `--reference`, the wall time of one `systemd-analyze
//! verify` over the same files. See `bench/README.md` for how to run it.

mod generate;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flint::unit::load::{self, LoadState};
use flint::unit::loader::{SearchPath, UnitIndex};
use flint::unit::name::UnitName;

/// The instance name templates are loaded with.
const INSTANCE: &str = "bench";

#[derive(Debug)]
struct Options {
    units: usize,
    runs: usize,
    reference: bool,
    keep: Option<PathBuf>,
    tree: Option<PathBuf>,
    system_dirs: Vec<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: flint-bench [--units N] [--runs N] [--reference] [--keep DIR | --tree DIR] [--system-dir DIR]..."
    );
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut o = Options {
        units: 10_000,
        runs: 7,
        reference: false,
        keep: None,
        tree: None,
        system_dirs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--units" => o.units = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => o.runs = value().parse::<usize>().unwrap_or_else(|_| usage()).max(1),
            "--reference" => o.reference = true,
            "--keep" => o.keep = Some(PathBuf::from(value())),
            "--tree" => o.tree = Some(PathBuf::from(value())),
            "--system-dir" => o.system_dirs.push(PathBuf::from(value())),
            _ => usage(),
        }
    }
    if o.system_dirs.is_empty() {
        o.system_dirs = vec![
            PathBuf::from("/usr/lib/systemd/system"),
            PathBuf::from("/lib/systemd/system"),
        ];
    }
    o
}

/// What one load of a whole tree found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    names: usize,
    loaded: usize,
    masked: usize,
    failed: usize,
    settings: usize,
}

/// The names a full load asks for: every name on the search path, templates
/// replaced by one instance each.
fn names_to_load(index: &UnitIndex) -> Vec<UnitName> {
    index
        .unit_names()
        .into_iter()
        .filter_map(|n| {
            if n.is_template() {
                n.with_instance(INSTANCE).ok()
            } else {
                Some(n)
            }
        })
        .collect()
}

/// CPU time (user + system) this process has used so far. On a busy
/// machine it is steadier than wall time.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let us = |t: nix::sys::time::TimeVal| {
        let micros = i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_usec());
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    };
    us(u.user_time()) + us(u.system_time())
}

/// What one timed load of a whole tree took.
struct Timing {
    /// Wall time, index build included.
    wall: Duration,
    /// CPU time of the same span.
    cpu: Duration,
    /// Wall time of the index build alone.
    index: Duration,
}

/// Builds the index and loads every unit once; the time covers both.
fn load_all(search: &SearchPath) -> (Timing, Counts) {
    let cpu_start = cpu_time();
    let start = Instant::now();
    let index = UnitIndex::build(search);
    let indexed = start.elapsed();
    let mut c = Counts::default();
    for name in names_to_load(&index) {
        let unit = load::load_indexed(&index, &name);
        c.names += 1;
        match unit.load_state {
            LoadState::Loaded => c.loaded += 1,
            LoadState::Masked => c.masked += 1,
            _ => c.failed += 1,
        }
        c.settings += unit.settings.len();
    }
    let timing = Timing {
        wall: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu_start),
        index: indexed,
    };
    (timing, c)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bench(label: &str, search: &SearchPath, runs: usize) {
    // One untimed run warms the page cache.
    let (_, counts) = load_all(search);
    let mut totals = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    let mut indexes = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, c) = load_all(search);
        assert_eq!(c, counts, "every run loads the same tree");
        totals.push(t.wall);
        cpus.push(t.cpu);
        indexes.push(t.index);
    }
    let min = totals.iter().min().copied().unwrap_or_default();
    let max = totals.iter().max().copied().unwrap_or_default();
    println!(
        "| {label} | {} names ({} loaded, {} masked, {} failed, {} settings) | {} | {} | {} | {} | {} |",
        counts.names,
        counts.loaded,
        counts.masked,
        counts.failed,
        counts.settings,
        ms(median(totals)),
        ms(min),
        ms(max),
        ms(median(cpus)),
        ms(median(indexes)),
    );
}

/// Unit files (not symlinks, not templates' drop-ins) directly in `dirs`,
/// for `systemd-analyze verify`.
fn unit_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let regular = e.file_type().is_ok_and(|t| t.is_file());
            let named = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| UnitName::parse(n).is_ok());
            if regular && named {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One timed run of `systemd-analyze verify` over the unit files of `dirs`,
/// with the search path replaced by `dirs`.
fn reference(label: &str, dirs: &[PathBuf]) {
    let files = unit_files(dirs);
    let path = std::env::join_paths(dirs).unwrap_or_default();
    let start = Instant::now();
    let status = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .args(&files)
        .env("SYSTEMD_UNIT_PATH", &path)
        .env("SYSTEMD_LOG_LEVEL", "crit")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let took = start.elapsed();
    match status {
        Ok(s) => println!(
            "| {label} | systemd-analyze verify, {} files, 1 run ({s}) | {} |",
            files.len(),
            ms(took)
        ),
        Err(e) => println!("| {label} | systemd-analyze verify not run: {e} | |"),
    }
}

/// The system directories to load, each once (`/lib` is often a link to
/// `/usr/lib`).
fn distinct_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let Ok(c) = std::fs::canonicalize(d) else {
            continue;
        };
        if !seen.contains(&c) {
            seen.push(c);
            out.push(d.clone());
        }
    }
    out
}

fn main() {
    let o = parse_args();
    let (dir, temporary) = match (&o.tree, &o.keep) {
        (Some(d), _) | (None, Some(d)) => (d.clone(), false),
        (None, None) => (
            std::env::temp_dir().join(format!("flint-bench-{}", std::process::id())),
            true,
        ),
    };
    if let Some(tree) = &o.tree {
        println!("loading the existing tree {}", tree.display());
    } else {
        if dir.exists() && std::fs::read_dir(&dir).is_ok_and(|mut rd| rd.next().is_some()) {
            eprintln!("flint-bench: {} is not empty", dir.display());
            std::process::exit(2);
        }
        let tree = match generate::generate(&dir, o.units) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("flint-bench: cannot write {}: {e}", dir.display());
                std::process::exit(1);
            }
        };
        println!(
            "generated {} unit files, {} drop-ins, {} symlinks in {}",
            tree.unit_files,
            tree.dropins,
            tree.links,
            dir.display()
        );
    }
    println!(
        "\n| tree | what | wall median | wall min | wall max | CPU median | index build (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let generated = SearchPath::from_dirs(vec![dir.clone()], false);
    bench("generated", &generated, o.runs);
    let system_dirs = distinct_dirs(&o.system_dirs);
    let system = SearchPath::from_dirs(system_dirs.clone(), false);
    let label = system_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    bench(&label, &system, o.runs);
    if o.reference {
        println!("\n| tree | reference | wall time |");
        println!("|---|---|---|");
        reference("generated", std::slice::from_ref(&dir));
        reference(&label, &system_dirs);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(Path::new(&dir));
    }
}

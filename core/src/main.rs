//! The `flint` command line. It parses arguments and wires them to the
//! library; every decision lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use flint::unit::Severity;
use flint::unit::load::{self, UnitRef};
use flint::unit::loader::SearchPath;
use flint::unit::name::UnitName;

/// Runs systemd .socket and .service units without systemd.
#[derive(Debug, Parser)]
#[command(name = "flint", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where units are looked up.
#[derive(Debug, Args)]
struct TreeArgs {
    /// Use the user search path (as `systemd --user`).
    #[arg(long)]
    user: bool,
    /// Look up units only in DIR (repeatable, highest priority first), as
    /// `SYSTEMD_UNIT_PATH` does.
    #[arg(long = "unit-dir", value_name = "DIR")]
    unit_dirs: Vec<PathBuf>,
}

impl TreeArgs {
    fn search_path(&self, extra_first: &[PathBuf]) -> SearchPath {
        if self.unit_dirs.is_empty() && extra_first.is_empty() {
            return if self.user {
                SearchPath::user()
            } else {
                SearchPath::system()
            };
        }
        let mut dirs: Vec<PathBuf> = extra_first.to_vec();
        if self.unit_dirs.is_empty() {
            let base = if self.user {
                SearchPath::user()
            } else {
                SearchPath::system()
            };
            dirs.extend(base.dirs);
        } else {
            dirs.extend(self.unit_dirs.iter().cloned());
        }
        dirs.dedup();
        SearchPath::from_dirs(dirs, self.user)
    }
}

/// `flint ctl` commands, named as `systemctl` names them.
#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// State, main pid, listeners, connections, status text of units (all when none named).
    Status { units: Vec<String> },
    /// Every unit flint runs.
    ListUnits,
    /// Every socket unit with its listeners.
    ListSockets,
    /// Start services.
    Start {
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Stop services (or close sockets).
    Stop {
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Stop and start services again.
    Restart {
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Reload services (`ExecReload=`, or the notify-reload handshake).
    Reload {
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Switch to a new unit tree (DIR, or the running tree read anew): load
    /// it completely, refuse it as a whole if anything fails to load, else
    /// stop, reload, restart and start what changed. Listeners whose
    /// address is unchanged are never closed.
    Switch {
        /// The new unit directory (replaces the running search path).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print the plan (in switch-to-configuration's words) and change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load units and report every problem, like `systemd-analyze verify`.
    /// Exits 0 when every named unit loads, 1 otherwise.
    Check {
        #[command(flatten)]
        tree: TreeArgs,
        /// Unit names or unit files.
        #[arg(required = true, value_name = "UNIT|FILE")]
        units: Vec<String>,
    },
    /// Print the effective unit after drop-ins and specifiers as JSON: one
    /// object for one unit, an array of objects (in order) for several.
    Show {
        #[command(flatten)]
        tree: TreeArgs,
        /// Unit names or unit files.
        #[arg(required = true, value_name = "UNIT|FILE")]
        units: Vec<String>,
    },
    /// Hold the sockets of the units and start services on demand.
    Run {
        #[command(flatten)]
        tree: TreeArgs,
        /// Units to run; by default the units the tree enables, or every
        /// socket unit in a tree without `.wants/` links.
        #[arg(value_name = "UNIT")]
        units: Vec<String>,
        /// Refuse to start units that use directives flint accepts but does
        /// not enforce (sandboxing and the like), instead of warning.
        #[arg(long)]
        refuse_unenforced: bool,
        /// Where to listen for `flint ctl` (default: /run/flint/control, or
        /// $XDG_RUNTIME_DIR/flint/control for --user or a non-root flint).
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        /// Switch to the unit tree whenever it changes on disk (checked once
        /// a second; a flipped profile symlink counts), as `flint ctl switch`
        /// does. SIGHUP does the same once.
        #[arg(long)]
        watch: bool,
        /// Write a newline to FD (and close it) once every unit is started:
        /// the readiness notification of s6 (`notification-fd`) and of
        /// other supervisors that read a pipe.
        #[arg(long, value_name = "FD")]
        notify_fd: Option<i32>,
    },
    /// Talk to a running flint: status, list, start, stop, restart.
    Ctl {
        /// Talk to the --user flint.
        #[arg(long)]
        user: bool,
        /// The control socket of the flint to talk to.
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// Work with WebAssembly policy plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Validate a plugin component against flint:policy, run its `init` with
    /// the given configuration and one decision on a sample connection, and
    /// print a report. Exits 0 when the plugin loads and `init` accepts the
    /// configuration, 1 otherwise.
    Check {
        /// The component to check.
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        /// One configuration pair, as `Config=KEY=VALUE` in the unit
        /// (repeatable, in order).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = config_pair)]
        config: Vec<(String, String)>,
    },
}

/// Parses `KEY=VALUE` (the value may contain `=`).
fn config_pair(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{arg}'"))
}

fn plugin_check(file: &std::path::Path, config: &[(String, String)]) -> ExitCode {
    match flint::policy::check_plugin(file, config) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// A command-line unit argument: a file when it names one, else a unit name.
fn unit_ref(arg: &str) -> anyhow::Result<UnitRef> {
    if arg.contains('/') || std::path::Path::new(arg).is_file() {
        let path =
            std::fs::canonicalize(arg).with_context(|| format!("{arg}: cannot open unit file"))?;
        Ok(UnitRef::File(path))
    } else {
        let name: UnitName = arg
            .parse()
            .with_context(|| format!("{arg}: not a valid unit name"))?;
        Ok(UnitRef::Name(name))
    }
}

/// The directories of unit files named on the command line, searched first
/// so their templates and drop-ins are found (as `systemd-analyze verify`).
fn file_dirs(refs: &[UnitRef]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for r in refs {
        if let UnitRef::File(p) = r
            && let Some(d) = p.parent()
            && !dirs.iter().any(|x: &PathBuf| x == d)
        {
            dirs.push(d.to_path_buf());
        }
    }
    dirs
}

fn check(tree: &TreeArgs, units: &[String]) -> ExitCode {
    let mut refs = Vec::new();
    let mut failed = false;
    for arg in units {
        match unit_ref(arg) {
            Ok(r) => refs.push(r),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    let search = tree.search_path(&file_dirs(&refs));
    for r in &refs {
        match load::load_ref(&search, r) {
            Ok(unit) => {
                for d in &unit.diagnostics {
                    eprintln!("{d}");
                }
                if !unit.is_loaded() {
                    failed = true;
                    eprintln!(
                        "{}: failed to load ({})",
                        unit.name,
                        unit.load_state.as_str()
                    );
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn show(tree: &TreeArgs, units: &[String]) -> anyhow::Result<ExitCode> {
    let refs = units
        .iter()
        .map(|u| unit_ref(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let search = tree.search_path(&file_dirs(&refs));
    let mut docs = Vec::with_capacity(refs.len());
    let mut ok = true;
    for r in &refs {
        let unit = load::load_ref(&search, r).map_err(anyhow::Error::msg)?;
        let errors = unit
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        ok &= unit.is_loaded() && !errors;
        docs.push(unit.to_json());
    }
    let doc = if docs.len() == 1 {
        docs.pop().unwrap_or_default()
    } else {
        serde_json::Value::Array(docs)
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ctl(
    user: bool,
    control: Option<&std::path::Path>,
    json: bool,
    command: &CtlCommand,
) -> ExitCode {
    let (name, units) = match command {
        CtlCommand::Status { units } => ("status", units.clone()),
        CtlCommand::ListUnits => ("list-units", Vec::new()),
        CtlCommand::ListSockets => ("list-sockets", Vec::new()),
        CtlCommand::Start { units } => ("start", units.clone()),
        CtlCommand::Stop { units } => ("stop", units.clone()),
        CtlCommand::Restart { units } => ("restart", units.clone()),
        CtlCommand::Reload { units } => ("reload", units.clone()),
        CtlCommand::Switch { .. } => ("switch", Vec::new()),
    };
    let path = control.map_or_else(
        || flint::control::default_path(user),
        std::path::Path::to_path_buf,
    );
    let mut request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": name, "units": units});
    if let CtlCommand::Switch { dir, dry_run } = command {
        request["dry_run"] = (*dry_run).into();
        if let Some(dir) = dir {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            request["dir"] = dir.to_string_lossy().into_owned().into();
        }
    }
    match flint::control::call(&path, &request) {
        Ok(answer) => {
            let exit = answer
                .get("exit")
                .and_then(serde_json::Value::as_u64)
                .and_then(|e| u8::try_from(e).ok())
                .unwrap_or(1);
            if json {
                println!("{answer}");
            } else {
                use std::io::IsTerminal;
                let text = flint::control::render(name, &answer, std::io::stdout().is_terminal());
                if answer.get("ok").and_then(serde_json::Value::as_bool) == Some(true) {
                    print!("{text}");
                } else {
                    eprint!("{text}");
                }
            }
            ExitCode::from(exit)
        }
        Err(e) => {
            eprintln!("flint: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(
    tree: &TreeArgs,
    units: &[String],
    refuse_unenforced: bool,
    control: Option<PathBuf>,
    watch: bool,
    notify_fd: Option<i32>,
) -> anyhow::Result<ExitCode> {
    let search = tree.search_path(&[]);
    let names = units
        .iter()
        .map(|u| {
            u.parse::<UnitName>()
                .with_context(|| format!("{u}: not a valid unit name"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let code = flint::activation::run(
        search,
        names,
        flint::activation::RunOptions {
            refuse_unenforced,
            control,
            watch,
            notify_fd,
        },
    )?;
    Ok(ExitCode::from(code))
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLINT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colours only on a terminal: under runit, s6, OpenRC or
        // start-stop-daemon the log goes to a file or a logger.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check { tree, units } => Ok(check(tree, units)),
        Command::Show { tree, units } => show(tree, units),
        Command::Run {
            tree,
            units,
            refuse_unenforced,
            control,
            watch,
            notify_fd,
        } => run(
            tree,
            units,
            *refuse_unenforced,
            control.clone(),
            *watch,
            *notify_fd,
        ),
        Command::Ctl {
            user,
            control,
            json,
            command,
        } => Ok(ctl(*user, control.as_deref(), *json, command)),
        Command::Plugin {
            command: PluginCommand::Check { file, config },
        } => Ok(plugin_check(file, config)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flint: {e:#}");
            ExitCode::from(2)
        }
    }
}

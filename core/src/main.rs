//! The `flint` command line. It parses arguments and wires them to the
//! library; every decision lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use flint::install::command::Verb;
use flint::unit::Severity;
use flint::unit::load::{self, UnitRef};
use flint::unit::loader::SearchPath;
use flint::unit::name::UnitName;

/// Runs systemd .socket and .service units without systemd.
#[derive(Debug, Parser)]
#[command(name = "flint", version, about)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

/// The options every command takes.
#[derive(Debug, Clone, Copy, clap::Args)]
struct LogArgs {
    /// How flint writes its log (and the lines services write to it):
    /// text lines, or one JSON object per line for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where the log goes: stderr, or syslog (`/dev/log`, facility daemon).
    #[arg(long, global = true, value_enum, default_value_t = LogTarget::Stderr)]
    log_target: LogTarget,
}

/// `Cli` with only the commands that stay running: `flint run` and
/// `flint socket-activate` parse their arguments with it. clap builds every
/// command's arguments before it parses (`flint` has well over a hundred
/// commands with `ctl`'s), about 200 KiB of code run once and the heap it
/// fills, which would stay resident in an idle flint; the commands and
/// their help are the same as in `Cli`, which includes them.
#[derive(Debug, Parser)]
#[command(name = "flint", version, about)]
struct DaemonCli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Daemon,
}

impl DaemonCli {
    /// Whether `args` (the program's name first) name a command of
    /// `Daemon`: its name is the first word that is not a `LogArgs` option.
    fn wanted(args: &[std::ffi::OsString]) -> bool {
        let mut words = args.iter().skip(1);
        while let Some(word) = words.next() {
            let word = word.to_string_lossy();
            if word == "--log-format" || word == "--log-target" {
                words.next();
            } else if word.starts_with("--log-format=") || word.starts_with("--log-target=") {
            } else {
                return Daemon::has_subcommand(&word);
            }
        }
        false
    }
}

/// Parses flint's command line, building only the commands that stay
/// running when one of them is asked for (see `DaemonCli`).
fn parse_cli<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    if DaemonCli::wanted(&args) {
        let daemon = DaemonCli::parse_from(args);
        return Cli {
            log: daemon.log,
            command: Command::Daemon(daemon.command),
        };
    }
    Cli::parse_from(args)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogTarget {
    Stderr,
    Syslog,
}

/// Whether `flint run` gives services cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Cgroups {
    Services,
    All,
    Off,
}

/// Which unit generators `flint run` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GeneratorsArg {
    Packages,
    Init,
    All,
    None,
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
            return default_search(self.user);
        }
        let mut dirs: Vec<PathBuf> = extra_first.to_vec();
        if self.unit_dirs.is_empty() {
            dirs.extend(default_search(self.user).dirs);
        } else {
            dirs.extend(self.unit_dirs.iter().cloned());
        }
        dirs.dedup();
        SearchPath::from_dirs(dirs, self.user)
    }
}

/// The system's (or the user's) search path, with the generator output of
/// the flint on the default control socket where systemd's is searched, as
/// `systemctl` reads what systemd's generators wrote.
fn default_search(user: bool) -> SearchPath {
    let base = if user {
        SearchPath::user()
    } else {
        SearchPath::system()
    };
    if !base.has_generator_dirs() {
        return base;
    }
    let out = default_generator_output(user);
    base.with_generator_output(&out.early, &out.normal, &out.late)
}

/// Where the flint on the default control socket writes its generators'
/// output.
fn default_generator_output(user: bool) -> flint::generators::OutputDirs {
    flint::generators::OutputDirs::for_control(&flint::control::default_path(user))
}

/// Where `enable` and its siblings work, and how.
#[derive(Debug, Args)]
struct InstallScope {
    /// Work offline on the tree below DIR, as `systemctl --root=DIR`.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Work on the calling user's units (~/.config/systemd/user).
    #[arg(long, conflicts_with = "root")]
    user: bool,
    /// Work on every user's units (/etc/systemd/user), as
    /// `systemctl --global`.
    #[arg(long, conflicts_with = "user")]
    global: bool,
    /// Work in /run/systemd/system (gone at reboot) instead of /etc.
    #[arg(long)]
    runtime: bool,
    /// Replace links that are in the way.
    #[arg(long, short)]
    force: bool,
    /// Print errors only.
    #[arg(long, short)]
    quiet: bool,
}

/// The options of `enable` and its siblings, and the units.
#[derive(Debug, Args)]
struct InstallArgs {
    #[command(flatten)]
    scope: InstallScope,
    /// Units (a name without a suffix means `.service`), or absolute paths
    /// of unit files.
    #[arg(required = true, value_name = "UNIT")]
    units: Vec<String>,
}

/// The options of `flint edit`.
#[derive(Debug, Args)]
struct EditArgs {
    /// Work offline on the tree below DIR, as `systemctl --root=DIR`.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Edit the calling user's units (~/.config/systemd/user).
    #[arg(long, conflicts_with = "root")]
    user: bool,
    /// Edit every user's units (/etc/systemd/user).
    #[arg(long, conflicts_with = "user")]
    global: bool,
    /// Write below /run (gone at reboot) instead of /etc.
    #[arg(long, conflicts_with = "unit_dirs")]
    runtime: bool,
    /// Edit a copy of the whole unit file instead of a drop-in.
    #[arg(long)]
    full: bool,
    /// Create the unit (or drop-in) when it has no file yet.
    #[arg(long, short)]
    force: bool,
    /// The drop-in's name instead of override.conf (`.conf` is added).
    #[arg(long, value_name = "NAME", conflicts_with = "full")]
    drop_in: Option<String>,
    /// Take the new text from standard input instead of an editor.
    #[arg(long)]
    stdin: bool,
    /// Do not ask the running flint to read its units again.
    #[arg(long)]
    no_reload: bool,
    /// Edit the units of this tree (repeatable, highest priority first),
    /// writing into the first DIR.
    #[arg(long = "unit-dir", value_name = "DIR", conflicts_with_all = ["root", "global"])]
    unit_dirs: Vec<PathBuf>,
    /// The control socket of the flint to reload.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Units (a name without a suffix means `.service`).
    #[arg(required = true, value_name = "UNIT")]
    units: Vec<String>,
}

/// `--preset-mode=`.
#[derive(Debug, Args)]
struct PresetModeArg {
    /// Apply all presets, or only those that enable or only those that
    /// disable.
    #[arg(long, value_name = "MODE", default_value = "full",
          value_parser = ["full", "enable-only", "disable-only"])]
    preset_mode: String,
}

/// `--now`: also start or stop the units in the running flint.
#[derive(Debug, Args)]
struct NowArgs {
    /// Also start (enable) or stop (disable, mask) the units in the running
    /// flint, as `flint ctl start/stop` does.
    #[arg(long, conflicts_with = "root")]
    now: bool,
    /// The control socket of the flint `--now` talks to.
    #[arg(long, value_name = "PATH", requires = "now")]
    control: Option<PathBuf>,
}

/// `flint ctl` commands, named as `systemctl` names them.
#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// State, main pid, listeners, connections, status text of units (all when none named).
    Status { units: Vec<String> },
    /// Every unit flint runs, or those the patterns match (`'web@*'`).
    ListUnits {
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Only units in these states (active or sub states: `failed`,
        /// `running`, `listening`, ...; repeatable, or comma-separated).
        #[arg(long, value_name = "STATE", value_delimiter = ',')]
        state: Vec<String>,
        /// Only failed units (`--state=failed`).
        #[arg(long)]
        failed: bool,
        /// Only units of these types (`service`, `socket`).
        #[arg(short, long = "type", value_name = "TYPE", value_delimiter = ',')]
        r#type: Vec<String>,
        /// Inactive units too (without it, as with systemctl, they are
        /// listed only when `--state` asks for them).
        #[arg(short, long)]
        all: bool,
        /// No header and no legend: one line per unit.
        #[arg(long)]
        no_legend: bool,
        /// No bullet column before failed units.
        #[arg(long)]
        plain: bool,
    },
    /// Every socket unit with its listeners, or those the patterns match.
    ListSockets {
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Only sockets in these states (`listening`, `running`, `failed`, ...).
        #[arg(long, value_name = "STATE", value_delimiter = ',')]
        state: Vec<String>,
        /// Inactive sockets too.
        #[arg(short, long)]
        all: bool,
        /// A TYPE column (Stream, Datagram, FIFO, ...).
        #[arg(long)]
        show_types: bool,
        /// Neither the header nor the count below.
        #[arg(long)]
        no_legend: bool,
    },
    /// What units pull in (`Requires=`, `Wants=`, `BindsTo=`, ... and
    /// their links), as a tree with each unit's state, targets followed
    /// further, as `systemctl list-dependencies` (default.target when no
    /// unit is named).
    ListDependencies {
        units: Vec<String>,
        /// Follow every unit, not only targets.
        #[arg(short, long)]
        all: bool,
        /// No tree and no state glyphs.
        #[arg(long)]
        plain: bool,
        /// What pulls the units in instead (`RequiredBy=`, `WantedBy=`,
        /// `BoundBy=`, `PartOf=`, ...).
        #[arg(long)]
        reverse: bool,
    },
    /// Cancel jobs by their number (`list-jobs` shows it), every job when
    /// none is named, as `systemctl cancel`: a start that waits never
    /// happens and what requires it fails; a unit already acting goes on.
    Cancel {
        #[arg(value_name = "JOB")]
        jobs: Vec<String>,
    },
    /// The jobs waiting or running (those of the units the patterns
    /// match), as `systemctl list-jobs`.
    ListJobs {
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// No header and no legend.
        #[arg(long)]
        no_legend: bool,
    },
    /// The active timers (all with `--all`), or those the patterns match:
    /// when each elapses next, when it last did, and what it starts.
    ListTimers {
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Inactive timers too.
        #[arg(short, long)]
        all: bool,
    },
    /// The active path units (all with `--all`), or those the patterns
    /// match: each watched path, its condition and what it activates.
    ListPaths {
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Inactive path units too.
        #[arg(short, long)]
        all: bool,
    },
    /// Reset the failed state of units (all when none is named), their
    /// restart count and start limit, as `systemctl reset-failed`: a
    /// failed service or socket becomes inactive and may start again.
    ResetFailed {
        #[arg(value_name = "UNIT|PATTERN")]
        units: Vec<String>,
    },
    /// Start services, and wait until they have (as systemctl).
    Start {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Start a target and stop every unit that runs and that it neither
    /// needs nor wants (unless `IgnoreOnIsolate=yes`), as `systemctl
    /// isolate` does; the target needs `AllowIsolate=yes`. A name without a
    /// type is a target's.
    Isolate {
        unit: String,
        /// Answer at once instead of waiting for the target's job.
        #[arg(long)]
        no_block: bool,
    },
    /// Stop services (or close sockets), and wait until they have (as systemctl).
    Stop {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Stop and start services again, and wait until they have (as systemctl).
    Restart {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Restart the services that are running; leave the others (as
    /// `systemctl try-restart`).
    TryRestart {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Reload services that run and can reload; restart (or start) the
    /// others (as `systemctl reload-or-restart`).
    ReloadOrRestart {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Like reload-or-restart, for the services that are running only.
    TryReloadOrRestart {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the jobs.
        #[arg(long)]
        no_block: bool,
    },
    /// Reload services (`ExecReload=`, or the notify-reload handshake).
    Reload {
        #[arg(required = true)]
        units: Vec<String>,
        /// Answer at once instead of waiting for the reloads.
        #[arg(long)]
        no_block: bool,
    },
    /// Print each unit's state (active, inactive, failed, activating, ...);
    /// exit 0 when one of them is active, 3 otherwise (as systemctl).
    IsActive {
        #[arg(required = true)]
        units: Vec<String>,
        /// Print nothing; the exit code tells.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print properties of units as `systemctl show` does (`Key=value`
    /// lines in systemd's order, a blank line between units, the empty ones
    /// only when named): a service's Type, Restart, NotifyAccess, MainPID, ControlGroup,
    /// StatusText, Result, NRestarts, ExecMainCode, ExecMainStatus,
    /// MemoryCurrent, TasksCurrent, CPUUsageNSec; a socket's Accept,
    /// NConnections, NAccepted, NRefused; a timer's Unit,
    /// NextElapseUSecRealtime, LastTriggerUSec, Result, Persistent,
    /// WakeSystem, RemainAfterElapse, AccuracyUSec, RandomizedDelayUSec;
    /// every unit's Id, Names, Triggers,
    /// Description, LoadState, ActiveState, SubState, FragmentPath,
    /// DropInPaths, UnitFileState, CanStart, CanStop, CanReload, LoadError,
    /// InvocationID. A unit flint has not started is read from disk.
    Show {
        /// Units (patterns too); none: the manager's own properties
        /// (`SystemState`, `NFailedUnits`, `UnitPath`, `Environment`, ...).
        units: Vec<String>,
        /// Only these properties (repeatable, or comma-separated).
        #[arg(short, long = "property", value_name = "NAME", value_delimiter = ',')]
        property: Vec<String>,
        /// Print the values only.
        #[arg(long)]
        value: bool,
        /// The value of this property only (`--value --property=NAME`, as
        /// systemctl's `-P`; repeatable).
        #[arg(short = 'P', value_name = "NAME")]
        value_of: Vec<String>,
    },
    /// Print `running`; `starting` while the jobs of flint's start run,
    /// `degraded` when a unit has failed, `stopping` (exit 1 for all
    /// three); as `systemctl is-system-running`.
    IsSystemRunning {
        /// Print nothing; the exit code tells.
        #[arg(short, long)]
        quiet: bool,
        /// While flint starts, wait until its start is finished.
        #[arg(long)]
        wait: bool,
    },
    /// Print each unit's state; exit 0 when one of them has failed, 1
    /// otherwise (as systemctl).
    IsFailed {
        #[arg(required = true)]
        units: Vec<String>,
        /// Print nothing; the exit code tells.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Recent lines a unit wrote to its output (journal, syslog, inherit),
    /// from flint's in-memory ring; a template (`web@.service`) shows all of
    /// its instances.
    Logs {
        unit: String,
        /// Show the last N lines.
        #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
        lines: u64,
        /// Keep printing new lines until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
    /// Send a signal to the processes of services (as `systemctl kill`).
    Kill {
        #[arg(required = true)]
        units: Vec<String>,
        /// The signal, by name or number.
        #[arg(short, long, default_value = "SIGTERM")]
        signal: String,
        /// `main` (the main process) or `all` (its process group and the
        /// control process).
        #[arg(long, default_value = "all", value_parser = ["main", "all"])]
        kill_whom: String,
    },
    /// Set variables in the environment of the units started from now on
    /// (as `systemctl set-environment`).
    SetEnvironment {
        #[arg(required = true, value_name = "NAME=VALUE", allow_hyphen_values = true)]
        assignments: Vec<String>,
    },
    /// Take variables out of that environment: a name, or `NAME=VALUE` for
    /// that value only (as `systemctl unset-environment`).
    UnsetEnvironment {
        #[arg(required = true, value_name = "NAME", allow_hyphen_values = true)]
        names: Vec<String>,
    },
    /// Set the named variables as this command has them (all of its
    /// environment when none is named), as `systemctl import-environment`.
    ImportEnvironment {
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print the environment the units started now get: `NAME=VALUE` lines,
    /// sorted, quoted for a shell where needed (as `systemctl
    /// show-environment`).
    ShowEnvironment,
    /// Stop every unit in order and end flint with CODE (default 0), as
    /// `systemctl exit` ends a user manager or a container's init.
    Exit {
        #[arg(value_name = "CODE")]
        code: Option<u8>,
    },
    /// Where flint is a container's init (PID 1): stop every unit in order
    /// and end, which ends the container (`systemctl poweroff`). Refused
    /// where flint is not PID 1.
    Poweroff {
        /// End without stopping the units first.
        #[arg(long, short)]
        force: bool,
    },
    /// As `poweroff` (`systemctl halt`).
    Halt {
        #[arg(long, short)]
        force: bool,
    },
    /// As `poweroff` (`systemctl reboot`: a container's runtime decides
    /// whether it starts again).
    Reboot {
        #[arg(long, short)]
        force: bool,
    },
    /// As `poweroff` (`systemctl kexec`).
    Kexec {
        #[arg(long, short)]
        force: bool,
    },
    /// Read the unit files again, as `systemctl daemon-reload`: loaded
    /// units take their new definitions for their next start; nothing is
    /// started, stopped or restarted (`switch` does that).
    DaemonReload,
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

/// The commands that stay running (see `DaemonCli`).
#[derive(Debug, Subcommand)]
enum Daemon {
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
        /// Where flint's own cgroup v2 is writable, give every service a
        /// cgroup of its own, so that stops reach every process it started:
        /// `services` (Accept=yes instances are followed by session and
        /// process group, which is faster per connection; a daemon that
        /// leaves both is stopped when flint stops), `all` (instances too,
        /// as systemd), or `off`.
        #[arg(long, value_enum, default_value_t = Cgroups::Services)]
        cgroups: Cgroups,
        /// First create the files and directories tmpfiles.d asks for, as
        /// systemd-tmpfiles-setup.service does at boot (/dev left out): as
        /// `flint tmpfiles --create`, with `--boot` when flint is PID 1.
        /// Nothing is removed (`flint tmpfiles --remove --boot` does that).
        /// The default for a system flint that is PID 1 on the system's
        /// search path (a container's init), as systemd runs it at every
        /// boot.
        #[arg(long, overrides_with = "no_tmpfiles")]
        tmpfiles: bool,
        /// Leave tmpfiles.d alone, also as PID 1.
        #[arg(long)]
        no_tmpfiles: bool,
        /// Run the unit generators first (and again at every reload), as
        /// systemd does: `packages` (the default with the system's search
        /// path: every generator but systemd's own `systemd-*`, which
        /// describe the boot flint does not do), `init` (the default for a
        /// system flint that is PID 1: also `systemd-sysv-generator` and
        /// `systemd-rc-local-generator`, which make units of
        /// `/etc/init.d` scripts and `/etc/rc.local`), `all`, or `none`
        /// (the default with `--unit-dir`). Their output goes to `generator*`
        /// in flint's runtime directory (or `CONTROL.generator*` beside a
        /// `--control` socket elsewhere), searched where systemd searches
        /// its `/run/systemd/generator*`.
        #[arg(long, value_enum, value_name = "WHICH")]
        generators: Option<GeneratorsArg>,
        /// Take the services' syslog messages (`syslog(3)`, `logger`) at
        /// PATH (default /dev/log) and log each under the unit that sent
        /// it, as journald does: for a container or system without a
        /// syslog daemon. A socket another logger serves is left alone.
        #[arg(
            long,
            value_name = "PATH",
            num_args = 0..=1,
            default_missing_value = "/dev/log",
            require_equals = true
        )]
        dev_log: Option<PathBuf>,
    },
    /// Listen on sockets and start a command on the first connection, or
    /// one per connection with --accept, as systemd-socket-activate does
    /// (flint called by that name runs this). The command gets the fds at
    /// 3, 4, ... with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, or with --inetd
    /// the connection as its standard input and output.
    #[command(name = "socket-activate")]
    SocketActivate {
        /// Listen at ADDR (the syntax of ListenStream=; repeatable).
        #[arg(short = 'l', long = "listen", value_name = "ADDR")]
        listen: Vec<String>,
        /// Datagram sockets instead of stream sockets.
        #[arg(short = 'd', long, conflicts_with = "seqpacket")]
        datagram: bool,
        /// SOCK_SEQPACKET sockets instead of stream sockets.
        #[arg(long)]
        seqpacket: bool,
        /// Start a process of the command for each connection.
        #[arg(short = 'a', long)]
        accept: bool,
        /// Pass NAME=VALUE (or NAME with this process's value) to the command.
        #[arg(
            short = 'E',
            long = "setenv",
            visible_alias = "environment",
            value_name = "NAME[=VALUE]"
        )]
        setenv: Vec<String>,
        /// Names for LISTEN_FDNAMES (one name stands for every fd).
        #[arg(long = "fdname", value_name = "NAME[:NAME...]")]
        fdname: Vec<String>,
        /// Pass the fd as standard input and output, without LISTEN_*.
        #[arg(long)]
        inetd: bool,
        /// Exec the command at once instead of waiting for traffic.
        #[arg(long)]
        now: bool,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
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
    /// Print the files a unit is read from (its unit file, then its
    /// drop-ins), each under a `# PATH` line, as `systemctl cat` does.
    Cat {
        #[command(flatten)]
        tree: TreeArgs,
        /// Unit names.
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Edit a unit in your editor, as `systemctl edit` does: its drop-in
    /// `UNIT.d/override.conf` (the unit's files shown below it, commented
    /// out), or with --full a copy of the whole unit file, in
    /// /etc/systemd/system (~/.config/systemd/user with --user, /run with
    /// --runtime, the first DIR with --unit-dir). The running flint then
    /// reads its units again. Editor: $SYSTEMD_EDITOR, $EDITOR, $VISUAL,
    /// else editor, nano, vim or vi.
    Edit(EditArgs),
    /// Change resource-control settings of a unit at runtime, as
    /// `systemctl set-property` does: each one a drop-in of its own in the
    /// control directory (/etc/systemd/system.control, /run with --runtime,
    /// ~/.config/systemd/user.control with --user, the first DIR with
    /// --unit-dir), which the running flint applies to the unit's cgroup
    /// at once.
    SetProperty {
        /// The calling user's units.
        #[arg(long)]
        user: bool,
        /// Below /run: gone at reboot.
        #[arg(long, conflicts_with = "unit_dirs")]
        runtime: bool,
        /// The units of this tree (repeatable), writing into the first DIR.
        #[arg(long = "unit-dir", value_name = "DIR")]
        unit_dirs: Vec<PathBuf>,
        /// The control socket of the flint that applies them.
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        #[arg(value_name = "UNIT")]
        unit: String,
        /// `MemoryMax=1G`, `CPUQuota=50%`, `TasksMax=100`, ...
        #[arg(
            required = true,
            value_name = "PROPERTY=VALUE",
            allow_hyphen_values = true
        )]
        assignments: Vec<String>,
    },
    /// Evaluate conditions and assertions as `systemd-analyze condition`
    /// does: each `Condition*=`/`Assert*=` given (or those of --unit),
    /// last first, with whether it held; exits 1 when they fail.
    Condition {
        #[command(flatten)]
        tree: TreeArgs,
        /// Evaluate this unit's conditions and assertions instead.
        #[arg(long, value_name = "UNIT", conflicts_with = "conditions")]
        unit: Option<String>,
        /// `ConditionPathExists=/etc`, `AssertUser=root`, ...
        #[arg(
            value_name = "CONDITION",
            allow_hyphen_values = true,
            required_unless_present = "unit"
        )]
        conditions: Vec<String>,
    },
    /// Normalize calendar events (`OnCalendar=`) and show when they next
    /// elapse, as `systemd-analyze calendar` does.
    Calendar {
        /// How many elapses to show.
        #[arg(long, default_value_t = 1, value_name = "N")]
        iterations: u32,
        /// Count from this time instead of now (`@SECONDS` since the epoch,
        /// or `YYYY-MM-DD HH:MM[:SS] [ZONE]`).
        #[arg(long, value_name = "TIME")]
        base_time: Option<String>,
        /// Calendar events.
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
    },
    #[command(flatten)]
    Daemon(Daemon),
    /// Create the files, directories and links tmpfiles.d configuration
    /// asks for, as `systemd-tmpfiles` does.
    ///
    /// Reads every *.conf of /etc/tmpfiles.d, /run/tmpfiles.d,
    /// /usr/local/lib/tmpfiles.d and /usr/lib/tmpfiles.d (a name in an
    /// earlier directory hides the same name in later ones), or the FILEs
    /// given. Exits 65 when a line cannot be parsed, 73 when something
    /// cannot be created, 0 otherwise.
    Tmpfiles {
        /// Create (the default when neither --create nor --remove is given).
        #[arg(long)]
        create: bool,
        /// Remove what `r`, `R` and `D` lines name.
        #[arg(long)]
        remove: bool,
        /// Also apply the lines marked `!` (safe only at boot).
        #[arg(long)]
        boot: bool,
        /// The user's configuration (~/.config/user-tmpfiles.d, ...).
        #[arg(long)]
        user: bool,
        /// Only paths below PATH (repeatable).
        #[arg(long, value_name = "PATH")]
        prefix: Vec<PathBuf>,
        /// No paths below PATH (repeatable).
        #[arg(long, value_name = "PATH")]
        exclude_prefix: Vec<PathBuf>,
        /// Read configuration from, and create below, this directory.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Configuration files to read instead of the directories.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
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
    /// Enable units as `systemctl enable` does, in /etc/systemd/system.
    ///
    /// Creates the links the units' [Install] section asks for (WantedBy=,
    /// RequiredBy=, UpheldBy=, Alias=, Also=, DefaultInstance=) in
    /// /etc/systemd/system (below DIR with --root=DIR; ~/.config/systemd/user
    /// with --user; /run/systemd/system with --runtime), where systemd and
    /// `flint run` both read them.
    Enable {
        #[command(flatten)]
        args: InstallArgs,
        #[command(flatten)]
        now: NowArgs,
    },
    /// Remove the links that enable units (and their Also= units).
    Disable {
        #[command(flatten)]
        args: InstallArgs,
        #[command(flatten)]
        now: NowArgs,
    },
    /// Enable or disable units as the *.preset files of
    /// /etc/systemd/system-preset, /usr/lib/systemd/system-preset, ... say
    /// (a unit no line names is enabled), as `systemctl preset` does.
    Preset {
        #[command(flatten)]
        args: InstallArgs,
        #[command(flatten)]
        mode: PresetModeArg,
    },
    /// Apply the presets to every unit file of the search path, as
    /// `systemctl preset-all` does.
    PresetAll {
        #[command(flatten)]
        args: InstallScope,
        #[command(flatten)]
        mode: PresetModeArg,
    },
    /// Link units into TARGET.wants/ (the first argument, a target's name),
    /// whatever their [Install] says, as `systemctl add-wants`.
    AddWants {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Link units into TARGET.requires/, as `systemctl add-requires`.
    AddRequires {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Link unit files that lie outside the search path into
    /// /etc/systemd/system under their names, as `systemctl link`.
    Link {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Put units back to their vendor state: remove the drop-ins and, where
    /// a vendor unit file exists, the copies and masks of it in /etc and
    /// /run, as `systemctl revert`.
    Revert {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Disable, then enable units again.
    Reenable {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Link units to /dev/null in /etc/systemd/system so nothing starts
    /// them.
    Mask {
        #[command(flatten)]
        args: InstallArgs,
        #[command(flatten)]
        now: NowArgs,
    },
    /// Remove the /dev/null links of masked units.
    Unmask {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// List the unit files of the search path with their state (enabled,
    /// disabled, static, masked, …), as `systemctl list-unit-files`.
    ListUnitFiles {
        /// Work offline on the tree below DIR, as `systemctl --root=DIR`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// The calling user's units.
        #[arg(long, conflicts_with = "root")]
        user: bool,
        /// Only units in one of these states (repeatable, or comma-separated).
        #[arg(long, value_name = "STATE", value_delimiter = ',')]
        state: Vec<String>,
        /// Only units of these types (`service`, `socket`, ...; repeatable,
        /// or comma-separated).
        #[arg(short = 't', long = "type", value_name = "TYPE", value_delimiter = ',')]
        types: Vec<String>,
        /// No header and no count.
        #[arg(long)]
        no_legend: bool,
        /// Only names one of these shell globs matches.
        #[arg(value_name = "PATTERN")]
        patterns: Vec<String>,
    },
    /// Print whether units are enabled (enabled, disabled, static, masked, …).
    ///
    /// One state per unit: enabled, enabled-runtime, linked, alias,
    /// masked, static, disabled, indirect, generated, transient. Exits 0
    /// when one of them is enabled, static, alias, indirect or generated,
    /// 1 otherwise.
    IsEnabled {
        #[command(flatten)]
        args: InstallArgs,
    },
    /// Make TARGET the default target: link `default.target` to it in
    /// /etc/systemd/system (or the user's directory), as `systemctl
    /// set-default`.
    SetDefault {
        /// Work offline on the tree below DIR, as `systemctl --root=DIR`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Work on the calling user's units.
        #[arg(long, conflicts_with = "root")]
        user: bool,
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// Print the default target (what `default.target` leads to), as
    /// `systemctl get-default`.
    GetDefault {
        /// Work offline on the tree below DIR, as `systemctl --root=DIR`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Work on the calling user's units.
        #[arg(long, conflicts_with = "root")]
        user: bool,
    },
    /// Work with WebAssembly policy plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

// `flint __generate`, for the Makefile's `man` and `completions`. It stays
// out of `Cli`, so that neither `--help`, the man pages nor the completions
// show it.
#[derive(Debug, Parser)]
#[command(
    name = "flint __generate",
    bin_name = "flint __generate",
    about = "Write the man pages or a shell's completions, generated from flint's command-line definitions"
)]
struct GenerateCli {
    #[command(subcommand)]
    what: Generate,
}

/// What `flint __generate` writes.
#[derive(Debug, Subcommand)]
enum Generate {
    /// A man page for flint and one for each command and subcommand
    /// (flint.1, flint-run.1, flint-ctl-status.1, ...) in DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The completion script of SHELL in DIR (flint.bash, _flint,
    /// flint.fish, ...).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// The man page of `cmd` (`flint-ctl-status.1`) and of each of its visible
/// subcommands, as `clap_mangen::generate_to` writes them.
fn man_pages(cmd: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let path = clap_mangen::Man::new(cmd)
        .date(man_date())
        .source(format!("flint {}", env!("CARGO_PKG_VERSION")))
        .manual("flint manual")
        .generate_to(dir)?;
    println!("{}", path.display());
    for sub in subs {
        man_pages(sub, dir)?;
    }
    Ok(())
}

/// The date in the man pages' footer: `SOURCE_DATE_EPOCH` (the Makefile
/// sets it to the last commit's time, so that the same tree gives the same
/// pages), else today.
fn man_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        });
    let (year, month, day) = flint::control::civil_date(secs.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `flint __generate`: prints the path of each file it writes.
fn generate(what: &Generate) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    let cmd = Cli::command();
    match what {
        Generate::Man { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            man_pages(cmd, dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
        }
        Generate::Completions { shell, dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
            let mut cmd = cmd;
            let path = clap_complete::generate_to(*shell, &mut cmd, "flint", dir)
                .with_context(|| format!("writing {shell} completions to {}", dir.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(())
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
                    continue;
                }
                // What systemd-analyze verify checks beyond the unit's
                // own files: its start job, a socket's service, the
                // commands' executables.
                for problem in flint::unit::verify::problems(&search, &unit) {
                    eprintln!("{problem}");
                    failed = true;
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

/// `flint cat`: each unit's files as `systemctl cat` prints them; exits 1
/// when a unit has none.
/// `flint calendar`: each event in systemd-analyze's words, with its next
/// elapses in local time (and in UTC where local time is not UTC).
fn calendar(iterations: u32, base: Option<&str>, specs: &[String]) -> anyhow::Result<ExitCode> {
    use flint::unit::calendar::CalendarSpec;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;
    let local = TimeZone::system();
    let base: Timestamp = match base {
        None => Timestamp::now(),
        Some(b) => {
            if let Some(secs) = b.strip_prefix('@') {
                let secs: f64 = secs
                    .parse()
                    .map_err(|_| anyhow::anyhow!("Failed to parse --base-time= parameter: {b}"))?;
                #[allow(clippy::cast_possible_truncation)]
                Timestamp::from_microsecond((secs * 1e6) as i64)?
            } else {
                let (text, zone) = match b.rsplit_once(' ') {
                    Some((t, z)) if TimeZone::get(z).is_ok() || z == "UTC" => {
                        (t, TimeZone::get(z).unwrap_or(TimeZone::UTC))
                    }
                    _ => (b, local.clone()),
                };
                let civil: jiff::civil::DateTime = text
                    .parse()
                    .map_err(|_| anyhow::anyhow!("Failed to parse --base-time= parameter: {b}"))?;
                civil.to_zoned(zone)?.timestamp()
            }
        }
    };
    let utc_local = local.to_offset(base) == jiff::tz::Offset::UTC
        && local
            .iana_name()
            .is_none_or(|n| n == "UTC" || n == "Etc/UTC");
    let show = |t: Timestamp, zone: &TimeZone| {
        t.to_zoned(zone.clone())
            .strftime("%a %Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let mut ok = true;
    let mut first = true;
    for text in specs {
        let Ok(spec) = CalendarSpec::parse(text) else {
            eprintln!("Failed to parse calendar specification '{text}': Invalid argument");
            ok = false;
            continue;
        };
        if !first {
            println!();
        }
        first = false;
        // As systemd-analyze: the original only where it differs.
        let normalized = spec.to_string();
        if *text != normalized {
            println!("  Original form: {}", text.trim_end());
        }
        println!("Normalized form: {normalized}");
        let mut at = base;
        for i in 1..=iterations.max(1) {
            let Some(next) = spec.next_after(at) else {
                if i == 1 {
                    println!("    Next elapse: never");
                }
                break;
            };
            let label = if i == 1 {
                "    Next elapse".to_string()
            } else {
                format!("{:>15}", format!("Iter. #{i}"))
            };
            println!("{label}: {}", show(next, &local));
            if !utc_local {
                println!("       (in UTC): {}", show(next, &TimeZone::UTC));
            }
            let usec = u64::try_from(next.as_microsecond()).unwrap_or(0);
            println!("       From now: {}", flint::control::relative(usec, false));
            at = next;
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cat(tree: &TreeArgs, units: &[String]) -> anyhow::Result<ExitCode> {
    let search = tree.search_path(&[]);
    let mut blocks = Vec::new();
    let mut ok = true;
    for arg in units {
        let name: UnitName = arg
            .parse()
            .with_context(|| format!("{arg}: not a valid unit name"))?;
        let unit = load::load(&search, &name);
        if unit.load_state == load::LoadState::Masked {
            blocks.push(format!("# Unit {name} is masked."));
            continue;
        }
        let files: Vec<&PathBuf> = unit.fragment.iter().chain(&unit.dropins).collect();
        if files.is_empty() {
            eprintln!("No files found for {name}.");
            ok = false;
            continue;
        }
        let mut text = Vec::new();
        for path in files {
            let body = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            text.push(format!(
                "# {}\n{}",
                path.display(),
                body.trim_end_matches('\n')
            ));
        }
        blocks.push(text.join("\n\n"));
    }
    if !blocks.is_empty() {
        println!("{}", blocks.join("\n\n"));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `flint set-property`: see [`flint::set_property`].
fn set_property(
    user: bool,
    runtime: bool,
    unit_dirs: &[PathBuf],
    control: Option<&std::path::Path>,
    unit: &str,
    assignments: &[String],
) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("{e}");
        ExitCode::from(1)
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let name = match flint::install::mangle_arg(unit, "to set properties on", &cwd) {
        Ok((n, _)) if !n.contains('/') => n,
        _ => return fail(&format!("Failed to mangle unit name \"{unit}\".")),
    };
    let Ok(name) = name.parse::<UnitName>() else {
        return fail(&format!("Invalid unit name: {unit}"));
    };
    let (search, dir) = if let Some(first) = unit_dirs.first() {
        let search = SearchPath::from_dirs(unit_dirs.to_vec(), user);
        let dir = search
            .dirs
            .first()
            .cloned()
            .unwrap_or_else(|| first.clone());
        (search, Some(dir))
    } else {
        let lp = if user {
            flint::install::LookupPaths::user()
        } else {
            flint::install::LookupPaths::system_from(None, &default_search(false))
        };
        let dir = lp.ok().and_then(|lp| {
            if runtime {
                lp.runtime_control
            } else {
                lp.persistent_control
            }
        });
        (default_search(user), dir)
    };
    if name.is_template() {
        return fail(&format!(
            "Failed to set unit properties on {name}: Unit name {name} is not valid."
        ));
    }
    let loaded = load::load(&search, &name);
    match loaded.load_state {
        load::LoadState::NotFound => {
            return fail(&format!(
                "Failed to set unit properties on {name}: Unit {name} not found."
            ));
        }
        load::LoadState::Masked => {
            return fail(&format!(
                "Failed to set unit properties on {name}: Unit {name} is masked."
            ));
        }
        _ => {}
    }
    let section = flint::unit::directive::type_section(name.unit_type()).unwrap_or("Unit");
    let mut drop_ins = Vec::new();
    for a in assignments {
        match flint::set_property::drop_in(name.as_str(), section, a) {
            Ok(d) => drop_ins.push(d),
            Err(e) => return fail(&e),
        }
    }
    let Some(dir) = dir else {
        return fail(
            &"Failed to set unit properties: no control directory (is $XDG_RUNTIME_DIR set?)",
        );
    };
    let dir = dir.join(format!("{}.d", loaded.id));
    let mut files = Vec::new();
    for d in &drop_ins {
        match flint::set_property::write(&dir, &d.file, &d.text(section)) {
            Ok(path) => files.push(path.display().to_string()),
            Err(e) => {
                return fail(&format!(
                    "Failed to set unit properties on {name}: {}: {e}",
                    dir.join(&d.file).display()
                ));
            }
        }
        // The setting's other form (a share or bytes) would shadow it.
        if let Some(other) = flint::set_property::other_form(&d.file) {
            let other = dir.join(other);
            let _ = std::fs::remove_file(&other);
            files.retain(|f| std::path::Path::new(f) != other);
        }
    }
    // The running flint applies them.
    let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "set-property", "units": [loaded.id.as_str()], "files": files});
    match call_running(user, control, &request) {
        Ok(None) => {}
        Err(e) => return fail(&format!("Failed to set unit properties on {name}: {e}")),
        Ok(Some(a)) if a["ok"] != true => {
            return fail(
                &a["error"]
                    .as_str()
                    .unwrap_or("Failed to set unit properties"),
            );
        }
        Ok(_) => {}
    }
    ExitCode::SUCCESS
}

/// `flint condition`: systemd-analyze's `condition` verb.
fn condition(tree: &TreeArgs, unit: Option<&str>, args: &[String]) -> ExitCode {
    use flint::service::condition::{Parsed, Written, test_list};
    let (name, written): (String, Vec<Written>) = if let Some(u) = unit {
        {
            let Ok(name) = u.parse::<UnitName>() else {
                eprintln!("Invalid unit name: {u}");
                return ExitCode::from(1);
            };
            let loaded = load::load(&tree.search_path(&[]), &name);
            if !loaded.is_loaded() {
                eprintln!("Failed to load {name}: {}", loaded.load_state.as_str());
                return ExitCode::from(1);
            }
            // In the order written: the unit file, then its drop-ins.
            let files: Vec<&PathBuf> = loaded.fragment.iter().chain(&loaded.dropins).collect();
            let mut list = Vec::new();
            for ((section, key), setting) in loaded.settings.iter() {
                if section != "Unit" || !(key.starts_with("Condition") || key.starts_with("Assert"))
                {
                    continue;
                }
                for (value, origin) in &setting.entries {
                    if let load::Value::Condition {
                        trigger,
                        negate,
                        argument,
                    } = value
                    {
                        let file = files.iter().position(|f| **f == origin.path);
                        list.push((
                            (file, origin.line),
                            Written {
                                key: (*key).to_string(),
                                trigger: *trigger,
                                negate: *negate,
                                argument: argument.clone(),
                            },
                        ));
                    }
                }
            }
            list.sort_by_key(|(at, _)| *at);
            (name.to_string(), list.into_iter().map(|(_, w)| w).collect())
        }
    } else {
        {
            // Specifiers as systemd-analyze expands them, for a unit named
            // test.service.
            use flint::unit::specifier::{SpecifierContext, SpecifierTable, expand};
            let ctx = SpecifierContext::new(
                "test.service".parse().expect("a valid unit name"),
                None,
                tree.user,
            );
            let expand_arg = |arg: &str, key: &str| -> Result<String, String> {
                let table = if flint::unit::load::is_path_condition(key) {
                    SpecifierTable::Path
                } else {
                    SpecifierTable::Full
                };
                expand(arg, &ctx, table).map_err(|e| match e {
                    // systemd's words: the errno's text.
                    flint::unit::specifier::SpecifierError::InvalidSlot(_) => {
                        "Invalid slot".to_owned()
                    }
                    other => other.to_string(),
                })
            };
            let mut list = Vec::new();
            for a in args {
                let key = a.split_once('=').map_or("", |(k, _)| k);
                match Written::parse_expanding(a, &|v| expand_arg(v, key)) {
                    Parsed::Condition(w) => list.push(w),
                    // An empty assignment resets the list, as in a unit.
                    Parsed::Reset(key) => list.retain(|x: &Written| x.key != key),
                    Parsed::Ignored(warning) => eprintln!("(cmdline): {warning}"),
                    Parsed::Invalid => {
                        eprintln!("Cannot parse \"{a}\".");
                        return ExitCode::from(1);
                    }
                }
            }
            ("test.service".to_owned(), list)
        }
    };
    let (asserts, conditions): (Vec<Written>, Vec<Written>) = written
        .into_iter()
        .partition(|w| w.key.starts_with("Assert"));
    let mut report = |w: &Written, verdict: Result<bool, &str>| match verdict {
        Err(why) => eprintln!(
            "{name}: Couldn't determine result for {}, assuming failed: {why}",
            w.text()
        ),
        Ok(held) => eprintln!(
            "{name}: {} {}.",
            w.text(),
            if held { "succeeded" } else { "failed" }
        ),
    };
    // As systemd-analyze: the asserts, then the conditions, each list with
    // its verdict when it has any.
    let mut ok = true;
    for (list, what) in [(&asserts, "Asserts"), (&conditions, "Conditions")] {
        let held = test_list(list, &mut report);
        if !list.is_empty() {
            eprintln!("{what} {}.", if held { "succeeded" } else { "failed" });
        }
        ok &= held;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `flint edit`: see [`flint::edit`].
fn edit(args: &EditArgs) -> ExitCode {
    use flint::edit::{self, EditError, Outcome};
    use flint::install::{LookupPaths, Scope};
    use std::io::IsTerminal;
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("{e}");
        ExitCode::from(1)
    };
    // As systemctl: an editor needs the terminal.
    let on_tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if !args.stdin && !on_tty {
        return fail(&EditError::NotOnTty);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut names = Vec::new();
    for arg in &args.units {
        if arg.contains('/') {
            return fail(&format!("{arg}: a unit name is needed, not a path"));
        }
        match flint::install::mangle_arg(arg, "to edit", &cwd) {
            Ok((name, notices)) => {
                for n in notices {
                    eprintln!("{n}");
                }
                match name.parse::<UnitName>() {
                    Ok(n) => names.push(n),
                    Err(e) => return fail(&format!("{arg}: {e}")),
                }
            }
            Err(e) => return fail(&format!("Failed to mangle unit name \"{arg}\": {e}")),
        }
    }
    let (lp, search) = if let Some(first) = args.unit_dirs.first() {
        let search = SearchPath::from_dirs(args.unit_dirs.clone(), args.user);
        let lp = LookupPaths {
            scope: if args.user {
                Scope::User
            } else {
                Scope::System
            },
            root: None,
            search_path: search.dirs.clone(),
            persistent_config: search
                .dirs
                .first()
                .cloned()
                .unwrap_or_else(|| first.clone()),
            runtime_config: None,
            persistent_control: None,
            runtime_control: None,
            transient: None,
            generators: Vec::new(),
            global_config: Vec::new(),
        };
        (lp, search)
    } else {
        let lp = if args.user {
            LookupPaths::user()
        } else if args.global {
            LookupPaths::global(args.root.as_deref())
        } else if args.root.is_some() {
            LookupPaths::system(args.root.as_deref())
        } else {
            LookupPaths::system_from(None, &default_search(false))
        };
        let lp = match lp {
            Ok(lp) => lp,
            Err(e) => return fail(&format!("Failed to edit: {e}.")),
        };
        let search = if args.root.is_none() && !args.global {
            default_search(args.user)
        } else {
            SearchPath::from_dirs(lp.search_path.clone(), args.global)
        };
        (lp, search)
    };
    let command = if args.user {
        "flint edit --user"
    } else if args.global {
        "flint edit --global"
    } else {
        "flint edit"
    };
    let command = if flint::control::systemctl::FRONT.load(std::sync::atomic::Ordering::Relaxed) {
        command.replacen("flint", "systemctl", 1)
    } else {
        command.to_owned()
    };
    let opts = edit::Options {
        full: args.full,
        force: args.force,
        runtime: args.runtime,
        drop_in: args.drop_in.clone(),
    };
    let stdin_text = args.stdin;
    let mut confirm = |question: &str| -> bool {
        use std::io::{BufRead, Write};
        if stdin_text {
            // Standard input is the new text, not an answer.
            eprintln!("{question}(not asked with --stdin: no)");
            return false;
        }
        let stdin = std::io::stdin();
        loop {
            print!("{question}");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
                println!();
                return false;
            }
            match line.trim() {
                "y" | "yes" => return true,
                "n" | "no" => return false,
                _ => {}
            }
        }
    };
    let edits = match edit::prepare(&lp, &search, &names, &opts, &command, &mut confirm) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let filled = if args.stdin {
        edit::fill_from(&edits, std::io::stdin().lock())
    } else {
        edit::run_editor(&edits, &|k| std::env::var(k).ok())
    };
    if let Err(e) = filled {
        edit::discard(&edits);
        return fail(&e);
    }
    let outcomes = match edit::finish(&edits) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    for o in &outcomes {
        if let Outcome::Canceled(path) = o {
            eprintln!(
                "Editing \"{}\" canceled: temporary file is empty.",
                path.display()
            );
        }
    }
    let written = outcomes.iter().any(|o| matches!(o, Outcome::Written(_)));
    // As systemctl: the running manager reads the units again; where no
    // flint answers, the change waits for the next start, and that is
    // said (a flint elsewhere is named with --control).
    if written && !args.no_reload && args.root.is_none() && !args.global {
        match reload_running(args.user, args.control.as_deref()) {
            Err(e) => return fail(&format!("Failed to reload the units: {e}")),
            Ok(false) => eprintln!(
                "No flint runs at {}: the change takes effect when flint reads its units (a flint with another control socket: --control PATH).",
                control_path(args.user, args.control.as_deref()).display()
            ),
            Ok(true) => {}
        }
    }
    ExitCode::SUCCESS
}

/// flint called `systemd-run`: see [`flint::control::systemd_run`].
fn systemd_run(args: &[String]) -> ExitCode {
    use flint::control::systemd_run::{self as front, SystemdRun};
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let ttys = [0, 1, 2].map(|fd| {
        // SAFETY: isatty only looks at the fd.
        unsafe { libc::isatty(fd) == 1 }
    });
    let env = |k: &str| std::env::var(k).ok();
    let mut parsed = front::translate_for(args, &env, &cwd, ttys, None);
    // `--pty`: the terminal is made first, since the unit names it.
    let mut pty = None;
    if let Ok(SystemdRun::Run(run)) = &parsed
        && run.pty
    {
        use std::os::fd::AsFd;
        match flint::control::pty::Pty::open(std::io::stdout().as_fd()) {
            Ok(made) => {
                parsed = front::translate_for(args, &env, &cwd, ttys, Some(made.path()));
                pty = Some(made);
            }
            Err(e) => {
                eprintln!("Failed to allocate pseudo TTY: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let run = match parsed {
        Ok(SystemdRun::Run(run)) => run,
        Ok(SystemdRun::Help) => {
            print!("{}", front::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(SystemdRun::Version) => {
            println!("{}", flint::control::systemctl::version_line());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let path = control_path(run.user, None);
    let mut units = Vec::new();
    if let Some(text) = &run.service_text {
        units.push(serde_json::json!({"name": run.service, "text": text}));
    }
    if let Some((name, text)) = &run.timer {
        units.push(serde_json::json!({"name": name, "text": text}));
    }
    let mut request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "transient", "units": units});
    let mut passed: &[i32] = &[];
    if run.pipe {
        request["stdio"] = "pipe".into();
        passed = &[0, 1, 2];
    }
    match flint::control::call_passing(&path, &request, passed) {
        Ok(a) if a["ok"] == true => {}
        Ok(a) => {
            eprintln!(
                "{}",
                a["error"]
                    .as_str()
                    .unwrap_or("Failed to start transient unit")
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("Failed to start transient unit: {e}");
            return ExitCode::from(1);
        }
    }
    let first = run
        .timer
        .as_ref()
        .map_or_else(|| run.service.clone(), |(name, _)| name.clone());
    flint::control::systemctl::FRONT.store(true, std::sync::atomic::Ordering::Relaxed);
    let start = CtlCommand::Start {
        units: vec![first.clone()],
        no_block: run.no_block,
    };
    let started = std::time::Instant::now();
    let code = ctl(run.user, None, false, &start);
    if code != ExitCode::SUCCESS {
        return code;
    }
    if !run.quiet {
        if run.timer.is_some() {
            eprintln!("Running timer as unit: {first}");
            eprintln!("Will run service as unit: {}", run.service);
        } else {
            eprintln!("Running as unit: {}", run.service);
        }
    }
    let mut forwarder: Option<flint::control::pty::Forwarder> = None;
    if let Some(pty) = pty {
        if !run.quiet {
            eprintln!("Press ^] three times within 1s to disconnect TTY.");
        }
        match pty.forward() {
            Ok(f) => forwarder = Some(f),
            Err(e) => {
                eprintln!("Failed to create PTY forwarder: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // `--pipe` and `--pty` wait as `--wait` does, without its report.
    if !run.wait && !run.pipe && !run.pty {
        return ExitCode::SUCCESS;
    }
    // Until the service has stopped again: this run of it (its
    // invocation), not a later one started under the same name.
    let mut invocation: Option<String> = None;
    let props = loop {
        let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "show", "units": [run.service]});
        let answer = match flint::control::call(&path, &request) {
            Ok(a) if a["ok"] == true => a,
            // (The terminal put back before the message.)
            Ok(a) => {
                drop(forwarder.take());
                eprintln!("{}", a["error"].as_str().unwrap_or("failed"));
                return ExitCode::from(1);
            }
            Err(e) => {
                drop(forwarder.take());
                eprintln!("Failed to wait for {}: {e}", run.service);
                return ExitCode::from(1);
            }
        };
        let props: std::collections::HashMap<String, String> = answer["units"][0]["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_str()?.to_owned(), p[1].as_str()?.to_owned())))
            .collect();
        let id = props.get("InvocationID").filter(|i| !i.is_empty());
        match (&invocation, id) {
            (None, Some(id)) => invocation = Some(id.clone()),
            (Some(ours), Some(id)) if ours != id => {
                drop(forwarder.take());
                eprintln!(
                    "{} was started again meanwhile; how this run ended is not known.",
                    run.service
                );
                return ExitCode::from(1);
            }
            _ => {}
        }
        if matches!(
            props.get("ActiveState").map(String::as_str),
            Some("inactive" | "failed")
        ) {
            break props;
        }
        if let Some(f) = &forwarder {
            // Ended by a signal: the terminal is put back first.
            if let Some(signal) = f.interrupted() {
                drop(forwarder);
                return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
            }
            // `^]` three times: the service goes on without the terminal,
            // and systemd-run with it unless it waits for its end.
            if f.detached() {
                drop(forwarder.take());
                eprintln!();
                if !run.wait {
                    return ExitCode::SUCCESS;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if let Some(f) = forwarder {
        f.finish();
    }
    let get = |k: &str| props.get(k).map_or("", String::as_str);
    let result = get("Result");
    let status: i32 = get("ExecMainStatus").parse().unwrap_or(0);
    if run.wait && !run.quiet {
        eprintln!("Finished with result: {result}");
        match get("ExecMainCode") {
            "1" => eprintln!("Main processes terminated with: code=exited/status={status}"),
            "2" | "3" => {
                let code = if get("ExecMainCode") == "2" {
                    "killed"
                } else {
                    "dumped"
                };
                let signal = flint::unit::value::signal::signal_name(status).map_or_else(
                    || status.to_string(),
                    |n| n.trim_start_matches("SIG").to_string(),
                );
                eprintln!("Main processes terminated with: code={code}/status={signal}");
            }
            _ => {}
        }
        let runtime = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        eprintln!(
            "Service runtime: {}",
            flint::unit::value::time::format_timespan_accuracy(runtime, 1000)
        );
        if let Ok(nsec) = get("CPUUsageNSec").parse::<u64>() {
            eprintln!(
                "CPU time consumed: {}",
                flint::unit::value::time::format_timespan_accuracy(nsec / 1000, 1000)
            );
        }
    }
    // As systemd-run: the service's own exit status where it has one.
    match result {
        "success" => ExitCode::SUCCESS,
        "exit-code" if status > 0 => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        "signal" => ExitCode::from(255),
        _ => ExitCode::from(1),
    }
}

/// Asks the running flint to read its unit files again, as systemctl
/// reloads the manager after changing them. No flint running there is no
/// error: it reads them when it starts.
/// Asks the running flint to read its units again; whether one runs.
fn reload_running(
    user: bool,
    control: Option<&std::path::Path>,
) -> Result<bool, flint::control::ControlError> {
    let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "daemon-reload", "units": []});
    call_running(user, control, &request).map(|answer| answer.is_some())
}

/// Asks the running flint on the control socket; `None` where none runs
/// there (a change to unit files then waits for its start).
fn call_running(
    user: bool,
    control: Option<&std::path::Path>,
    request: &serde_json::Value,
) -> Result<Option<serde_json::Value>, flint::control::ControlError> {
    match flint::control::call(&control_path(user, control), request) {
        Err(flint::control::ControlError::Connect { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// The control socket `--control` names, or the default one.
fn control_path(user: bool, control: Option<&std::path::Path>) -> PathBuf {
    control.map_or_else(
        || flint::control::default_path(user),
        std::path::Path::to_path_buf,
    )
}

fn ctl(
    user: bool,
    control: Option<&std::path::Path>,
    json: bool,
    command: &CtlCommand,
) -> ExitCode {
    // A name without a type is a service's, as systemctl completes it.
    let typed = |units: &[String]| -> Vec<String> {
        units
            .iter()
            .map(|u| flint::control::systemctl::unit_name(u))
            .collect()
    };
    let (name, units) = match command {
        CtlCommand::Status { units } => ("status", typed(units)),
        CtlCommand::ListUnits { patterns, .. } => ("list-units", patterns.clone()),
        CtlCommand::ListSockets { patterns, .. } => ("list-sockets", patterns.clone()),
        CtlCommand::ListJobs { patterns, .. } => ("list-jobs", patterns.clone()),
        CtlCommand::Cancel { jobs } => ("cancel", jobs.clone()),
        CtlCommand::ListDependencies { units, .. } => ("list-dependencies", typed(units)),
        CtlCommand::ListTimers { patterns, .. } => ("list-timers", patterns.clone()),
        CtlCommand::ListPaths { patterns, .. } => ("list-paths", patterns.clone()),
        CtlCommand::ResetFailed { units } => ("reset-failed", typed(units)),
        CtlCommand::Start { units, .. } => ("start", typed(units)),
        CtlCommand::Stop { units, .. } => ("stop", typed(units)),
        CtlCommand::Isolate { unit, .. } => (
            "isolate",
            vec![flint::control::systemctl::target_name(unit)],
        ),
        CtlCommand::Restart { units, .. } => ("restart", typed(units)),
        CtlCommand::TryRestart { units, .. } => ("try-restart", typed(units)),
        CtlCommand::ReloadOrRestart { units, .. } => ("reload-or-restart", typed(units)),
        CtlCommand::TryReloadOrRestart { units, .. } => ("try-reload-or-restart", typed(units)),
        CtlCommand::IsActive { units, quiet } => {
            return unit_states(user, control, &typed(units), *quiet, "active", 3);
        }
        CtlCommand::IsFailed { units, quiet } => {
            return unit_states(user, control, &typed(units), *quiet, "failed", 1);
        }
        CtlCommand::Show {
            units,
            property,
            value,
            value_of,
        } => {
            let mut property = property.clone();
            property.extend(value_of.iter().cloned());
            let value = *value || !value_of.is_empty();
            return show_properties(user, control, &typed(units), &property, value);
        }
        CtlCommand::IsSystemRunning { quiet, wait } => {
            return system_running(user, control, *quiet, *wait);
        }
        CtlCommand::Reload { units, .. } => ("reload", typed(units)),
        CtlCommand::Switch { .. } => ("switch", Vec::new()),
        CtlCommand::DaemonReload => ("daemon-reload", Vec::new()),
        CtlCommand::Exit { .. }
        | CtlCommand::Poweroff { .. }
        | CtlCommand::Halt { .. }
        | CtlCommand::Reboot { .. }
        | CtlCommand::Kexec { .. } => ("exit", Vec::new()),
        CtlCommand::Logs { unit, .. } => ("logs", typed(std::slice::from_ref(unit))),
        CtlCommand::Kill { units, .. } => ("kill", typed(units)),
        CtlCommand::SetEnvironment { .. } => ("set-environment", Vec::new()),
        CtlCommand::UnsetEnvironment { .. } => ("unset-environment", Vec::new()),
        CtlCommand::ShowEnvironment => ("show-environment", Vec::new()),
        CtlCommand::ImportEnvironment { names } => {
            if names.is_empty() {
                eprintln!(
                    "Calling import-environment without a list of variable names is deprecated."
                );
            }
            let env: Vec<_> = std::env::vars_os().collect();
            let assignments = match flint::control::import_assignments(names, &env) {
                Ok((assignments, notices)) => {
                    for n in notices {
                        eprintln!("{n}");
                    }
                    assignments
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            if assignments.is_empty() {
                return ExitCode::SUCCESS;
            }
            let set = CtlCommand::SetEnvironment { assignments };
            return ctl(user, control, json, &set);
        }
    };
    let path = control_path(user, control);
    let mut request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": name, "units": units});
    let mut shape: Option<(bool, bool, bool)> = None;
    match command {
        CtlCommand::ListUnits {
            state,
            failed,
            r#type,
            all,
            no_legend,
            plain,
            ..
        } => {
            shape = Some((*no_legend, *plain, *all));
            let mut states = state.clone();
            if *failed {
                states.push("failed".into());
            }
            request["states"] = states.into();
            request["types"] = r#type.clone().into();
            request["all"] = (*all).into();
        }
        CtlCommand::ListSockets { state, all, .. } => {
            request["states"] = state.clone().into();
            request["all"] = (*all).into();
        }
        CtlCommand::ListTimers { all, .. } | CtlCommand::ListPaths { all, .. } => {
            request["all"] = (*all).into();
        }
        CtlCommand::ListDependencies {
            all,
            plain,
            reverse,
            ..
        } => {
            request["all"] = (*all).into();
            request["plain"] = (*plain).into();
            request["reverse"] = (*reverse).into();
        }
        _ => {}
    }
    if let CtlCommand::Kill {
        signal, kill_whom, ..
    } = command
    {
        request["signal"] = signal.as_str().into();
        request["whom"] = kill_whom.as_str().into();
    }
    if let CtlCommand::Logs {
        lines,
        follow: true,
        ..
    } = command
    {
        return follow_logs(&path, request, *lines, json);
    }
    if let CtlCommand::Start { no_block, .. }
    | CtlCommand::Isolate { no_block, .. }
    | CtlCommand::Stop { no_block, .. }
    | CtlCommand::Restart { no_block, .. }
    | CtlCommand::TryRestart { no_block, .. }
    | CtlCommand::ReloadOrRestart { no_block, .. }
    | CtlCommand::TryReloadOrRestart { no_block, .. }
    | CtlCommand::Reload { no_block, .. } = command
    {
        request["no_block"] = (*no_block).into();
    }
    if let CtlCommand::Logs { lines, .. } = command {
        request["lines"] = (*lines).into();
    }
    if let CtlCommand::SetEnvironment { assignments } = command {
        request["assignments"] = assignments.clone().into();
    }
    if let CtlCommand::UnsetEnvironment { names } = command {
        request["names"] = names.clone().into();
    }
    match command {
        CtlCommand::Exit { code } => {
            request["word"] = "exit".into();
            request["status"] = code.map(u64::from).into();
        }
        CtlCommand::Poweroff { force }
        | CtlCommand::Halt { force }
        | CtlCommand::Reboot { force }
        | CtlCommand::Kexec { force } => {
            let word = match command {
                CtlCommand::Poweroff { .. } => "poweroff",
                CtlCommand::Halt { .. } => "halt",
                CtlCommand::Reboot { .. } => "reboot",
                _ => "kexec",
            };
            request["word"] = word.into();
            request["force"] = (*force).into();
        }
        _ => {}
    }
    if let CtlCommand::Switch { dir, dry_run } = command {
        request["dry_run"] = (*dry_run).into();
        if let Some(dir) = dir {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            request["dir"] = dir.to_string_lossy().into_owned().into();
        }
    }
    match flint::control::call(&path, &request) {
        Ok(mut answer) => {
            if let CtlCommand::ListJobs { no_legend, .. } = command {
                answer["no_legend"] = (*no_legend).into();
            }
            if let CtlCommand::ListSockets {
                no_legend,
                show_types,
                all,
                state,
                ..
            } = command
            {
                answer["no_legend"] = (*no_legend).into();
                answer["show_types"] = (*show_types).into();
                answer["all"] = (*all || !state.is_empty()).into();
            }
            // How the listing is to look (the answer is the same).
            if let Some((no_legend, plain, all)) = shape {
                answer["no_legend"] = no_legend.into();
                answer["plain"] = plain.into();
                answer["all"] = all.into();
            }
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
                    // Units `status` could not find, after the others;
                    // warnings (a stopped service a socket still starts).
                    for m in answer["missing"]
                        .as_array()
                        .into_iter()
                        .chain(answer["notices"].as_array())
                        .flatten()
                    {
                        eprintln!("{}", m.as_str().unwrap_or(""));
                    }
                } else if flint::control::systemctl::FRONT
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    eprint!("{}", flint::control::systemctl::reword(&text, user));
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

/// `flint ctl is-active`/`is-failed`: each unit's state on a line (a unit
/// flint does not know is `inactive`, as systemctl has a unit that is not
/// loaded; a pattern stands for every loaded unit it matches, none
/// included); exit 0 when one is in `wanted`, else `otherwise`.
fn unit_states(
    user: bool,
    control: Option<&std::path::Path>,
    units: &[String],
    quiet: bool,
    wanted: &str,
    otherwise: u8,
) -> ExitCode {
    let path = control_path(user, control);
    let mut found = false;
    for unit in units {
        let states: Vec<String> = match unit_statuses(&path, unit) {
            Ok(statuses) if flint::control::is_glob(unit) => statuses
                .iter()
                .filter_map(|s| s["state"].as_str().map(str::to_string))
                .collect(),
            Ok(statuses) => vec![
                statuses
                    .first()
                    .and_then(|s| s["state"].as_str())
                    .unwrap_or("inactive")
                    .to_string(),
            ],
            Err(e) => {
                eprintln!("flint: {e}");
                return ExitCode::from(1);
            }
        };
        for state in states {
            // systemctl counts a unit that reloads as active.
            found |= state == wanted || (wanted == "active" && state == "reloading");
            if !quiet {
                println!("{state}");
            }
        }
    }
    if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(otherwise)
    }
}

/// The status of `unit` from the running flint, or of every unit it
/// matches when it is a pattern: empty for a unit it does not know.
fn unit_statuses(
    path: &std::path::Path,
    unit: &str,
) -> Result<Vec<serde_json::Value>, flint::control::ControlError> {
    let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "status", "units": [unit]});
    let answer = flint::control::call(path, &request)?;
    Ok(answer["units"]
        .as_array()
        .map(|units| units.iter().filter(|u| u.is_object()).cloned().collect())
        .unwrap_or_default())
}

/// `flint ctl show`: the properties flint answers, by systemd's names, as
/// `systemctl show` prints them: `Key=value` lines, a blank line between
/// units; only those set unless named with `--property`.
fn show_properties(
    user: bool,
    control: Option<&std::path::Path>,
    units: &[String],
    wanted: &[String],
    value_only: bool,
) -> ExitCode {
    let path = control_path(user, control);
    let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "show", "units": units});
    let answer = match flint::control::call(&path, &request) {
        Ok(a) if a["ok"] == true => a,
        Ok(a) => {
            eprintln!("flint: {}", a["error"].as_str().unwrap_or("failed"));
            return ExitCode::from(
                a["exit"]
                    .as_u64()
                    .and_then(|e| u8::try_from(e).ok())
                    .unwrap_or(1),
            );
        }
        Err(e) => {
            eprintln!("flint: {e}");
            return ExitCode::from(1);
        }
    };
    let mut blocks = Vec::new();
    for unit in answer["units"].as_array().into_iter().flatten() {
        let mut lines = Vec::new();
        for pair in unit["properties"].as_array().into_iter().flatten() {
            let (Some(key), Some(value)) = (pair[0].as_str(), pair[1].as_str()) else {
                continue;
            };
            let named = wanted.iter().any(|w| w == key);
            if (wanted.is_empty() && value.is_empty()) || (!wanted.is_empty() && !named) {
                continue;
            }
            lines.push(if value_only {
                value.to_string()
            } else {
                format!("{key}={value}")
            });
        }
        blocks.push(lines.join("\n"));
    }
    println!("{}", blocks.join("\n\n"));
    ExitCode::SUCCESS
}

/// `flint ctl is-system-running`: flint's `SystemState=` (`starting`,
/// `running`, `degraded` with a failed unit, `stopping`), `offline` when
/// no flint answers; with `wait`, asked again until flint's start is
/// finished.
fn system_running(
    user: bool,
    control: Option<&std::path::Path>,
    quiet: bool,
    wait: bool,
) -> ExitCode {
    let path = control_path(user, control);
    let request = serde_json::json!({"version": flint::control::PROTOCOL_VERSION, "command": "show", "units": []});
    let state = loop {
        let state = match flint::control::call(&path, &request) {
            Ok(answer) => answer["units"][0]["properties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p[0] == "SystemState")
                .and_then(|p| p[1].as_str())
                .unwrap_or("unknown")
                .to_string(),
            Err(_) => "offline".to_string(),
        };
        if !(wait && state == "starting") {
            break state;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    if !quiet {
        println!("{state}");
    }
    if state == "running" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `flint ctl logs -f`: the last lines, then new ones as they come, until
/// flint goes away.
fn follow_logs(
    path: &std::path::Path,
    mut request: serde_json::Value,
    lines: u64,
    json: bool,
) -> ExitCode {
    request["lines"] = lines.into();
    loop {
        match flint::control::call(path, &request) {
            Ok(answer) if answer["ok"] == true => {
                for e in answer["entries"].as_array().into_iter().flatten() {
                    if json {
                        println!("{e}");
                    } else {
                        println!("{}", flint::control::log_line(e));
                    }
                    if let Some(seq) = e["seq"].as_u64() {
                        request["after"] = seq.into();
                    }
                }
                request["lines"] = u64::MAX.into();
            }
            Ok(answer) => {
                eprint!("{}", flint::control::render("logs", &answer, false));
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("flint: {e}");
                return ExitCode::from(1);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn run(
    tree: &TreeArgs,
    units: &[String],
    mut options: flint::activation::RunOptions,
    generators: Option<GeneratorsArg>,
) -> anyhow::Result<ExitCode> {
    use flint::generators::{Generators, OutputDirs, Selection};
    let mut search = tree.search_path(&[]);
    // Only its own generators' output, if any: not the default flint's.
    let default_output = default_generator_output(tree.user);
    search
        .dirs
        .retain(|d| !default_output.all().contains(&d.as_path()));
    let selection = match generators {
        Some(GeneratorsArg::Packages) => Some(Selection::Packages),
        Some(GeneratorsArg::Init) => Some(Selection::Init),
        Some(GeneratorsArg::All) => Some(Selection::All),
        Some(GeneratorsArg::None) => None,
        None => (tree.unit_dirs.is_empty() && search.has_generator_dirs())
            .then(|| Selection::default_for(tree.user, std::process::id() == 1)),
    };
    let generators = selection.map(|selection| {
        let control = options
            .control
            .clone()
            .unwrap_or_else(|| flint::control::default_path(tree.user));
        let output = OutputDirs::for_control(&control);
        search = search
            .clone()
            .with_generator_output(&output.early, &output.normal, &output.late);
        Generators {
            selection,
            output,
            user_mode: tree.user,
        }
    });
    let names = units
        .iter()
        .map(|u| {
            u.parse::<UnitName>()
                .with_context(|| format!("{u}: not a valid unit name"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    options.generators = generators;
    let code = flint::activation::run(search, names, options);
    // As the machine's own init, flint's end is the machine's.
    flint::end_machine();
    Ok(ExitCode::from(code?))
}

/// `flint tmpfiles`.
fn tmpfiles(opts: &flint::tmpfiles::Options, files: &[PathBuf]) -> ExitCode {
    let out = flint::tmpfiles::run(opts, files);
    let report = &out.report;
    for e in out
        .parse_errors
        .iter()
        .chain(&report.skipped)
        .chain(&report.invalid)
        .chain(&report.errors)
    {
        eprintln!("flint tmpfiles: {e}");
    }
    // As systemd-tmpfiles: a configuration error wins over a failure.
    if !out.parse_errors.is_empty() || !report.invalid.is_empty() {
        ExitCode::from(65)
    } else if !report.errors.is_empty() {
        ExitCode::from(73)
    } else {
        ExitCode::SUCCESS
    }
}

/// `flint run --tmpfiles`: the creating half of what
/// systemd-tmpfiles-setup.service does at boot (`--create --boot
/// --exclude-prefix=/dev`, `--boot` when flint is PID 1). Never `--remove`:
/// `D /tmp` would empty /tmp, which is right only on a filesystem that is
/// booting, and a PID 1 in a PID namespace may share the host's (`flint
/// tmpfiles --remove --boot` does it where that is meant).
fn tmpfiles_at_start(user: bool) {
    let out = flint::tmpfiles::run(
        &flint::tmpfiles::Options {
            create: true,
            remove: false,
            boot: std::process::id() == 1,
            prefixes: Vec::new(),
            exclude_prefixes: vec![PathBuf::from("/dev")],
            root: None,
            user,
        },
        &[],
    );
    let report = &out.report;
    let problems: Vec<&String> = out
        .parse_errors
        .iter()
        .chain(&report.invalid)
        .chain(&report.errors)
        .collect();
    for e in &problems {
        tracing::warn!("tmpfiles: {e}");
    }
    for s in &report.skipped {
        tracing::debug!("tmpfiles: {s}");
    }
    tracing::info!(
        "tmpfiles: {} line(s) of {} file(s) applied, {} problem(s)",
        report.applied,
        out.files,
        problems.len()
    );
}

/// `flint list-unit-files`: `UNIT FILE` and `STATE` columns, then how
/// many were listed, as systemctl prints them.
fn list_unit_files(
    root: Option<&std::path::Path>,
    user: bool,
    states: &[String],
    types: &[String],
    no_legend: bool,
    patterns: &[String],
) -> ExitCode {
    use flint::install::LookupPaths;
    let lp = if user {
        LookupPaths::user()
    } else {
        LookupPaths::system(root)
    };
    let lp = match lp {
        Ok(lp) => lp,
        Err(e) => {
            eprintln!("flint: {e}");
            return ExitCode::from(1);
        }
    };
    const TYPES: &[&str] = &[
        "service",
        "mount",
        "swap",
        "socket",
        "target",
        "device",
        "automount",
        "timer",
        "path",
        "slice",
        "scope",
    ];
    if let Some(bad) = types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        eprintln!(
            "Unknown unit type or load state '{bad}'.\nUse -t help to see a list of allowed values."
        );
        return ExitCode::from(1);
    }
    let presets = flint::install::Presets::read(&lp);
    let rows: Vec<(String, &str, &str)> = flint::install::unit_files(&lp, patterns)
        .into_iter()
        .map(|(name, state)| {
            // As systemctl: no preset for units the presets do not act on.
            let preset = match state {
                Ok(
                    flint::install::UnitFileState::Alias
                    | flint::install::UnitFileState::Static
                    | flint::install::UnitFileState::Generated
                    | flint::install::UnitFileState::Transient,
                ) => "-",
                _ => presets.query(&name).0.as_str(),
            };
            (name, state.map_or("bad", |s| s.as_str()), preset)
        })
        .filter(|(_, state, _)| states.is_empty() || states.iter().any(|s| s == state))
        .filter(|(name, _, _)| {
            types.is_empty()
                || name
                    .rsplit_once('.')
                    .is_some_and(|(_, t)| types.iter().any(|w| w == t))
        })
        .collect();
    let width = rows
        .iter()
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0)
        .max("UNIT FILE".len());
    let state_width = rows
        .iter()
        .map(|(_, s, _)| s.len())
        .max()
        .unwrap_or(0)
        .max("STATE".len());
    if !no_legend {
        println!("{:width$} {:state_width$} PRESET", "UNIT FILE", "STATE");
    }
    for (name, state, preset) in &rows {
        println!("{name:width$} {state:state_width$} {preset}");
    }
    if !no_legend {
        println!("\n{} unit files listed.", rows.len());
    }
    // As systemctl: nothing listed is a failure (scripts ask whether a
    // unit file exists this way).
    if rows.is_empty() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `enable`, `disable`, `reenable`, `mask`, `unmask`, `is-enabled`.
fn install(verb: Verb, args: &InstallArgs, now: Option<&NowArgs>) -> ExitCode {
    install_with(
        verb,
        &args.scope,
        &args.units,
        now,
        flint::install::PresetMode::Full,
    )
}

fn install_with(
    verb: Verb,
    args: &InstallScope,
    units: &[String],
    now: Option<&NowArgs>,
    preset_mode: flint::install::PresetMode,
) -> ExitCode {
    use flint::install::{LookupPaths, Options, command};
    let lp = if args.user {
        LookupPaths::user()
    } else if args.global {
        LookupPaths::global(args.root.as_deref())
    } else {
        LookupPaths::system(args.root.as_deref())
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let report = command::run(
        lp,
        &command::Invocation {
            verb,
            units,
            options: Options {
                force: args.force,
                runtime: args.runtime,
                preset_mode,
            },
            quiet: args.quiet,
            cwd: &cwd,
            env: &|k| std::env::var(k).ok(),
        },
    );
    for line in &report.lines {
        match line {
            command::Line::Stdout(l) => println!("{l}"),
            command::Line::Stderr(l) => eprintln!("{l}"),
        }
    }
    if report.exit != 0 {
        return ExitCode::from(report.exit);
    }
    // As systemctl reloads the manager after changing unit files: the
    // running flint (if any) reads them again.
    if args.root.is_none() && !args.global && verb != Verb::IsEnabled {
        let _ = reload_running(args.user, now.and_then(|n| n.control.as_deref()));
    }
    match now.filter(|n| n.now) {
        Some(now) => {
            let units = report.units;
            let command = if verb == Verb::Enable {
                CtlCommand::Start {
                    units,
                    no_block: false,
                }
            } else {
                CtlCommand::Stop {
                    units,
                    no_block: false,
                }
            };
            ctl(args.user, now.control.as_deref(), false, &command)
        }
        None => ExitCode::SUCCESS,
    }
}

/// The unit paths `set-default`/`get-default` work on.
fn default_lookup(
    root: Option<&std::path::Path>,
    user: bool,
) -> Result<flint::install::LookupPaths, flint::install::InstallError> {
    if user {
        flint::install::LookupPaths::user()
    } else {
        flint::install::LookupPaths::system(root)
    }
}

fn set_default(root: Option<&std::path::Path>, user: bool, target: &str) -> ExitCode {
    let name = if target.contains('.') {
        target.to_string()
    } else {
        format!("{target}.target")
    };
    let lp = match default_lookup(root, user) {
        Ok(lp) => lp,
        Err(e) => {
            eprintln!("Failed to set default target: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = flint::install::set_default(&lp, &name);
    if let Err(e) = &outcome.result {
        eprintln!("Failed to set default target: {e}.");
        return ExitCode::from(1);
    }
    let utf8 = flint::install::locale_is_utf8(&|k| std::env::var(k).ok());
    for m in outcome.messages("set default target", utf8) {
        eprintln!("{m}");
    }
    // As systemctl reloads the manager: the running flint reads it again.
    if root.is_none() {
        let _ = reload_running(user, None);
    }
    ExitCode::SUCCESS
}

fn get_default(root: Option<&std::path::Path>, user: bool) -> ExitCode {
    match default_lookup(root, user).and_then(|lp| flint::install::get_default(&lp)) {
        Ok(name) => {
            println!("{name}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Failed to get default target: {e}");
            ExitCode::from(1)
        }
    }
}

/// Sets up flint's log: `FLINT_LOG` (or `RUST_LOG`) filters, e.g.
/// `FLINT_LOG=debug` or `FLINT_LOG=warn,service=info`. By default flint's
/// own debugging stays out and the services' is kept, as journald stores
/// every priority (`MaxLevelStore=debug`).
fn init_log(format: LogFormat, target: LogTarget) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FLINT_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new("info,service=debug"));
    flint::logs::set_json(format == LogFormat::Json);
    flint::logs::flush_held_on_panic();
    // Colours only on a terminal: under runit, s6, OpenRC or
    // start-stop-daemon the log goes to a file or a logger.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = || {
        tracing_subscriber::fmt()
            .with_target(false)
            .with_timer(flint::logs::Clock)
            .with_ansi(ansi)
    };
    // flint's own lines are also kept for `journalctl` (by `flint run`).
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let capture = flint::logs::Capture;
    match (format, target) {
        // Each line formatted once, for stderr and the rings.
        (LogFormat::Text, LogTarget::Stderr) => tracing_subscriber::registry()
            .with(filter)
            .with(flint::logs::Text::new(ansi))
            .init(),
        (LogFormat::Json, LogTarget::Stderr) => builder()
            .with_env_filter(filter)
            .json()
            .flatten_event(true)
            .with_writer(flint::logs::Stderr)
            .finish()
            .with(capture)
            .init(),
        (format, LogTarget::Syslog) => {
            let syslog = flint::logs::Syslog::open();
            let connected = syslog.connected();
            let builder = builder()
                .with_env_filter(filter)
                .without_time()
                .with_ansi(false)
                .with_writer(syslog);
            if format == LogFormat::Json {
                builder
                    .json()
                    .flatten_event(true)
                    .finish()
                    .with(capture)
                    .init();
            } else {
                builder.with_level(false).finish().with(capture).init();
            }
            if !connected {
                tracing::warn!("flint: /dev/log is not there; logging to stderr");
            }
        }
    }
}

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__generate")
    {
        let what = GenerateCli::parse_from(std::env::args_os().skip(1)).what;
        return match generate(&what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flint: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let called = std::env::args_os().next().map(PathBuf::from);
    let name = called
        .as_deref()
        .and_then(std::path::Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    // systemd's poweroff, halt and reboot are links to systemctl too.
    let shutdown_verb = name
        .as_deref()
        .filter(|n| ["poweroff", "halt", "reboot"].contains(n));
    let cli = if name.as_deref() == Some("systemctl") || shutdown_verb.is_some() {
        let args: Vec<String> = shutdown_verb
            .map(str::to_string)
            .into_iter()
            .chain(
                std::env::args_os()
                    .skip(1)
                    .map(|a| a.to_string_lossy().into_owned()),
            )
            .collect();
        flint::control::systemctl::FRONT.store(true, std::sync::atomic::Ordering::Relaxed);
        match flint::control::systemctl::translate(&args) {
            Ok(flint::control::systemctl::Systemctl::Version) => {
                println!("{}", flint::control::systemctl::version_line());
                return ExitCode::SUCCESS;
            }
            Ok(flint::control::systemctl::Systemctl::Help) => {
                print!("{}", flint::control::systemctl::HELP);
                return ExitCode::SUCCESS;
            }
            Ok(flint::control::systemctl::Systemctl::Flint(line)) => {
                parse_cli(std::iter::once("flint".to_string()).chain(line))
            }
            Err(e) => {
                eprintln!("systemctl (flint): {e}");
                return ExitCode::from(1);
            }
        }
    } else if name.as_deref() == Some("systemd-run") {
        let mut args = Vec::new();
        for a in std::env::args_os().skip(1) {
            match a.into_string() {
                Ok(a) => args.push(a),
                Err(a) => {
                    eprintln!("Invalid argument (not UTF-8): {}", a.to_string_lossy());
                    return ExitCode::from(1);
                }
            }
        }
        return systemd_run(&args);
    } else if called
        .as_deref()
        .and_then(std::path::Path::file_name)
        .is_some_and(|n| n == "journalctl")
    {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return ExitCode::from(flint::control::journalctl::main(&args));
    } else if called
        .as_deref()
        .and_then(std::path::Path::file_name)
        .is_some_and(|n| n == "systemd-socket-activate")
    {
        parse_cli(
            ["flint".into(), "socket-activate".into()]
                .into_iter()
                .chain(std::env::args_os().skip(1)),
        )
    } else {
        parse_cli(std::env::args_os())
    };
    init_log(cli.log.log_format, cli.log.log_target);
    let result = match &cli.command {
        Command::Check { tree, units } => Ok(check(tree, units)),
        Command::Daemon(Daemon::SocketActivate {
            listen,
            datagram,
            seqpacket,
            accept,
            setenv,
            fdname,
            inetd,
            now,
            command,
        }) => {
            use flint::socket_activate::{Options, SocketType, run};
            let socket_type = if *datagram {
                SocketType::Datagram
            } else if *seqpacket {
                SocketType::SequentialPacket
            } else {
                SocketType::Stream
            };
            let e = run(&Options {
                listen: listen.clone(),
                socket_type,
                accept: *accept,
                setenv: setenv.clone(),
                fdnames: fdname.clone(),
                inetd: *inetd,
                now: *now,
                command: command.clone(),
            });
            eprintln!("{e}");
            return ExitCode::from(1);
        }
        Command::Show { tree, units } => show(tree, units),
        Command::Cat { tree, units } => cat(tree, units),
        Command::Edit(args) => Ok(edit(args)),
        Command::SetProperty {
            user,
            runtime,
            unit_dirs,
            control,
            unit,
            assignments,
        } => Ok(set_property(
            *user,
            *runtime,
            unit_dirs,
            control.as_deref(),
            unit,
            assignments,
        )),
        Command::Condition {
            tree,
            unit,
            conditions,
        } => Ok(condition(tree, unit.as_deref(), conditions)),
        Command::Calendar {
            iterations,
            base_time,
            specs,
        } => calendar(*iterations, base_time.as_deref(), specs),
        Command::Daemon(Daemon::Run {
            tree,
            units,
            refuse_unenforced,
            control,
            watch,
            notify_fd,
            cgroups,
            tmpfiles,
            no_tmpfiles,
            generators,
            dev_log,
        }) => {
            flint::logs::capture_manager_lines();
            let init = !tree.user && tree.unit_dirs.is_empty() && std::process::id() == 1;
            if *tmpfiles || (init && !*no_tmpfiles) {
                tmpfiles_at_start(tree.user);
            }
            run(
                tree,
                units,
                flint::activation::RunOptions {
                    refuse_unenforced: *refuse_unenforced,
                    control: control.clone(),
                    watch: *watch,
                    notify_fd: *notify_fd,
                    cgroups: match cgroups {
                        Cgroups::Services => flint::cgroup::Mode::Services,
                        Cgroups::All => flint::cgroup::Mode::All,
                        Cgroups::Off => flint::cgroup::Mode::Off,
                    },
                    generators: None,
                    dev_log: dev_log.clone(),
                },
                *generators,
            )
        }
        Command::Tmpfiles {
            create,
            remove,
            boot,
            user,
            prefix,
            exclude_prefix,
            root,
            files,
        } => Ok(tmpfiles(
            &flint::tmpfiles::Options {
                create: *create || !*remove,
                remove: *remove,
                boot: *boot,
                prefixes: prefix.clone(),
                exclude_prefixes: exclude_prefix.clone(),
                root: root.clone(),
                user: *user,
            },
            files,
        )),
        Command::Ctl {
            user,
            control,
            json,
            command,
        } => Ok(ctl(*user, control.as_deref(), *json, command)),
        Command::Plugin {
            command: PluginCommand::Check { file, config },
        } => Ok(plugin_check(file, config)),
        Command::Enable { args, now } => Ok(install(Verb::Enable, args, Some(now))),
        Command::AddWants { args } => Ok(install(Verb::AddWants, args, None)),
        Command::AddRequires { args } => Ok(install(Verb::AddRequires, args, None)),
        Command::Link { args } => Ok(install(Verb::Link, args, None)),
        Command::Revert { args } => Ok(install(Verb::Revert, args, None)),
        Command::Preset { args, mode } => Ok(install_with(
            Verb::Preset,
            &args.scope,
            &args.units,
            None,
            flint::install::PresetMode::parse(&mode.preset_mode).unwrap_or_default(),
        )),
        Command::PresetAll { args, mode } => Ok(install_with(
            Verb::PresetAll,
            args,
            &[],
            None,
            flint::install::PresetMode::parse(&mode.preset_mode).unwrap_or_default(),
        )),
        Command::Disable { args, now } => Ok(install(Verb::Disable, args, Some(now))),
        Command::Reenable { args } => Ok(install(Verb::Reenable, args, None)),
        Command::Mask { args, now } => Ok(install(Verb::Mask, args, Some(now))),
        Command::Unmask { args } => Ok(install(Verb::Unmask, args, None)),
        Command::IsEnabled { args } => Ok(install(Verb::IsEnabled, args, None)),
        Command::SetDefault { root, user, target } => {
            Ok(set_default(root.as_deref(), *user, target))
        }
        Command::GetDefault { root, user } => Ok(get_default(root.as_deref(), *user)),
        Command::ListUnitFiles {
            root,
            user,
            state,
            types,
            no_legend,
            patterns,
        } => Ok(list_unit_files(
            root.as_deref(),
            *user,
            state,
            types,
            *no_legend,
            patterns,
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flint: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn argv(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    #[test]
    fn the_running_commands_are_told_apart_by_their_first_word() {
        for line in [
            "flint run",
            "flint run --user sshd.socket",
            "flint --log-format json run",
            "flint --log-target=syslog --log-format json socket-activate -l 80 cat",
            "flint socket-activate",
        ] {
            assert!(DaemonCli::wanted(&argv(line)), "{line}");
        }
        for line in [
            "flint",
            "flint ctl run",
            "flint check run",
            "flint help run",
            "flint --log-format run",
            "flint --help run",
            "flint --version",
        ] {
            assert!(!DaemonCli::wanted(&argv(line)), "{line}");
        }
    }

    #[test]
    fn the_running_commands_parse_as_in_the_whole_command_line() {
        for line in [
            "flint run",
            "flint run --user --unit-dir /tmp/u a.socket b.service --watch",
            "flint --log-format json run --cgroups all --dev-log --generators none",
            "flint run --log-target syslog --notify-fd 5 --control /tmp/c",
            "flint socket-activate -l 127.0.0.1:80 --accept --inetd -E A=1 cat -n",
            "flint --log-format=json socket-activate -d -l 53 --fdname dns -- dig",
        ] {
            let whole = Cli::try_parse_from(argv(line)).unwrap();
            assert_eq!(format!("{:?}", parse_cli(argv(line))), format!("{whole:?}"));
        }
        // Errors and help are those of the whole command line too.
        for line in [
            "flint run --no-such-option",
            "flint run --cgroups sometimes",
            "flint socket-activate -l 80",
            "flint run --help",
            "flint socket-activate --help",
        ] {
            let whole = Cli::try_parse_from(argv(line)).unwrap_err();
            let daemon = DaemonCli::try_parse_from(argv(line)).unwrap_err();
            assert_eq!(daemon.kind(), whole.kind(), "{line}");
            assert_eq!(
                daemon.render().to_string(),
                whole.render().to_string(),
                "{line}"
            );
        }
    }

    #[test]
    fn the_whole_command_line_keeps_the_running_commands() {
        let cli = Cli::command();
        for name in ["run", "socket-activate"] {
            let mut whole = cli.find_subcommand(name).unwrap().clone();
            let mut daemon = DaemonCli::command().find_subcommand(name).unwrap().clone();
            assert_eq!(
                daemon.render_long_help().to_string(),
                whole.render_long_help().to_string()
            );
        }
    }
}

//! Unit generators: the programs in `system-generators/` (`user-generators/`
//! for a user flint) that write units, drop-ins and `.wants/` links before
//! the unit tree is read, at start and at every reload, as systemd's
//! manager runs them (`manager_run_generators()` in src/core/manager.c,
//! `execute_directories()` in src/shared/exec-util.c).
//!
//! Packages ship them where what to start depends on local configuration:
//! Debian's `postgresql-generator` links every cluster whose `start.conf`
//! says `auto` into `postgresql.service.wants/`, and `openvpn-generator`,
//! `tor-generator` and `postfix-instance-generator` do the same for their
//! instances. Without them `postgresql.service`, an `ExecStart=/bin/true`
//! wrapper, starts no database.
//!
//! As systemd:
//! - the programs are the executables of `$SYSTEMD_GENERATOR_PATH` (a
//!   trailing `:` adds the defaults after it) or of
//!   `/run/systemd/system-generators`, `/etc/systemd/system-generators`,
//!   `/usr/local/lib/systemd/system-generators` and
//!   `/usr/lib/systemd/system-generators` (`*/user-generators` for a user
//!   flint); a name in an earlier directory hides the same name in later
//!   ones, and a link to `/dev/null` masks it;
//! - they run all at once, each with the normal, early and late output
//!   directories as its arguments, stdin on `/dev/null`, umask 0022, the
//!   manager's environment block plus `SYSTEMD_SCOPE`, `SYSTEMD_IN_INITRD=0`
//!   (system), `SYSTEMD_ARCHITECTURE`, `SYSTEMD_VIRTUALIZATION` (in a
//!   container or a virtual machine) and `SYSTEMD_EXEC_PID`, and SIGTERM
//!   should flint die; all together get 90 s (`DEFAULT_TIMEOUT_USEC`), then
//!   those still running are killed;
//! - a system flint that may make mount namespaces runs them in one of
//!   their own with the file system read-only except `/run`, `/proc`,
//!   `/sys`, `/dev` and the output directories, and an empty private
//!   `/tmp` (unless the output is below it); where the kernel refuses the
//!   namespace, they run without, as systemd falls back;
//! - the output directories are emptied first and those left empty are
//!   removed after (`lookup_paths_flush_generator()`,
//!   `lookup_paths_trim_generator()`); a generator that fails is reported
//!   and what it wrote stays.
//!
//! Where flint differs, and why:
//! - the output goes to flint's own runtime directory (`generator`,
//!   `generator.early` and `generator.late` where the control socket is:
//!   `/run/flint/` for the system; see [`OutputDirs::for_control`]),
//!   searched by that flint just before systemd's `/run/systemd/generator*`,
//!   so that a flint beside a running systemd never replaces what systemd
//!   generated;
//! - what a generator prints is flint's log, a line each, under the
//!   generator's name (systemd's go to the kernel log), the first 64 KiB
//!   of it (see [`Output`]);
//! - by default systemd's own generators (`systemd-*`: fstab, getty, sysv,
//!   cryptsetup, gpt-auto, ...) are left out ([`Selection::Packages`]):
//!   they describe the boot (mounts, swap, consoles, disks) that flint does
//!   not do. [`Selection::All`] runs them too. A system flint that is PID
//!   1 (a container's init) runs by default the two of them that turn an
//!   init's own scripts into units, as systemd does at boot
//!   ([`Selection::Init`]): `systemd-sysv-generator` (the `/etc/init.d`
//!   scripts without a native unit, started from their `/etc/rc[2-5].d`
//!   links) and `systemd-rc-local-generator` (an executable
//!   `/etc/rc.local`). Under another init they stay out: those scripts are
//!   that init's to run.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spawn::{self, ExecPlan, ExitStatus, Stdio};

/// How long all generators together may run (systemd's
/// `DEFAULT_TIMEOUT_USEC`).
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Which generators run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every generator but systemd's own (`systemd-*`).
    Packages,
    /// Every generator but systemd's own, and of systemd's the
    /// [`INIT_GENERATORS`]: flint as PID 1.
    Init,
    /// Every generator.
    All,
}

/// systemd's generators that make units of an init's legacy scripts, which
/// nobody else starts where flint is the init.
pub const INIT_GENERATORS: [&str; 2] = ["systemd-sysv-generator", "systemd-rc-local-generator"];

impl Selection {
    /// Whether the generator named `name` runs.
    pub fn takes(self, name: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Packages => !name.starts_with("systemd-"),
            Selection::Init => !name.starts_with("systemd-") || INIT_GENERATORS.contains(&name),
        }
    }

    /// The generators `flint run` runs when not told, where it runs any
    /// (the system's search path, no `--unit-dir`): the packages', and
    /// for a system flint that is PID 1 also the init's
    /// ([`Selection::Init`]).
    pub fn default_for(user: bool, pid1: bool) -> Selection {
        if pid1 && !user {
            Selection::Init
        } else {
            Selection::Packages
        }
    }
}

/// The three directories generators write to (their arguments, in the
/// order `normal early late`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDirs {
    pub normal: PathBuf,
    pub early: PathBuf,
    pub late: PathBuf,
}

impl OutputDirs {
    /// `generator`, `generator.early` and `generator.late` below `base`.
    pub fn under(base: &Path) -> OutputDirs {
        OutputDirs {
            normal: base.join("generator"),
            early: base.join("generator.early"),
            late: base.join("generator.late"),
        }
    }

    /// Where the flint whose control socket is `control` writes: its
    /// runtime directory when the control socket is that directory's
    /// `control` (as the default `/run/flint/control`), else beside the
    /// control socket and named after it (`ctl.generator`,
    /// `ctl.generator.early`, `ctl.generator.late`), so that flint never
    /// empties a directory it does not own.
    pub fn for_control(control: &Path) -> OutputDirs {
        let control = std::path::absolute(control).unwrap_or_else(|_| control.to_path_buf());
        let control = crate::unit::loader::normalize(&control);
        let dir = control.parent().unwrap_or(Path::new("/"));
        if dir.file_name().is_some_and(|n| n == "flint")
            && control.file_name().is_some_and(|n| n == "control")
        {
            return OutputDirs::under(dir);
        }
        let name = control
            .file_name()
            .map_or_else(|| "flint".into(), |n| n.to_string_lossy().into_owned());
        OutputDirs {
            normal: dir.join(format!("{name}.generator")),
            early: dir.join(format!("{name}.generator.early")),
            late: dir.join(format!("{name}.generator.late")),
        }
    }

    /// The three directories.
    pub fn all(&self) -> [&Path; 3] {
        [&self.normal, &self.early, &self.late]
    }
}

/// Everything needed to run the generators again at a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generators {
    pub selection: Selection,
    pub output: OutputDirs,
    pub user_mode: bool,
}

/// What a run of the generators did.
#[derive(Debug, Default)]
pub struct Report {
    /// The generators that ran.
    pub ran: Vec<PathBuf>,
    /// Lines for the log: what went wrong, as `NAME: what`.
    pub problems: Vec<String>,
    /// What the generators printed, as `NAME: line`.
    pub output: Vec<String>,
}

/// The directories generators are looked up in, highest priority first:
/// `$SYSTEMD_GENERATOR_PATH` (a trailing `:` adds the defaults after it),
/// else systemd's defaults for the mode.
pub fn program_dirs(user_mode: bool, env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let kind = if user_mode {
        "user-generators"
    } else {
        "system-generators"
    };
    lookup_dirs("SYSTEMD_GENERATOR_PATH", kind, env)
}

/// systemd's directories of one kind of generator (`system-generators`,
/// `user-environment-generators`, ...), highest priority first, or those
/// of `var` before (a trailing `:`) or instead of them.
pub(crate) fn lookup_dirs(
    var: &str,
    kind: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    // `/lib/systemd` last, as a systemd built for a split /usr searches
    // it: packages of such hosts put their generators there (on a merged
    // /usr it is the same directory, and a name found twice runs once).
    let split_usr = kind.starts_with("system").then_some("/lib/systemd");
    let defaults = [
        "/run/systemd",
        "/etc/systemd",
        "/usr/local/lib/systemd",
        "/usr/lib/systemd",
    ]
    .into_iter()
    .chain(split_usr)
    .map(|base| Path::new(base).join(kind))
    .collect();
    let cwd = std::env::current_dir().ok();
    crate::unit::loader::paths_from_env(var, env, cwd.as_deref(), defaults)
}

/// The executables of `dirs` that `selection` takes, in name order (see
/// [`crate::conf_files`]); hidden files and backup copies are left out.
pub fn programs(dirs: &[PathBuf], selection: Selection) -> Vec<PathBuf> {
    executables(dirs, |name| selection.takes(name))
}

/// The executables of `dirs` whose names `take` accepts, in name order,
/// hidden files and backup copies left out: the generators of a kind.
pub(crate) fn executables(dirs: &[PathBuf], take: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    crate::conf_files::list(dirs.iter().cloned(), |name, meta| {
        !crate::unit::name::is_hidden_or_backup(name)
            && take(name)
            && meta.is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A generator's output (stdout and stderr): the read end of a pipe that
/// flint drains while the generator runs, keeping the first `limit` bytes
/// and counting the rest, so that a flood cannot fill memory. Reading
/// stops once the generator has exited, so that a background process it
/// left holding the pipe cannot hold flint up. A pipe (not a file) also
/// serves generators that open `/dev/stderr` again.
#[derive(Debug)]
pub(crate) struct Output {
    read: std::os::fd::OwnedFd,
    limit: usize,
    /// The first `limit` bytes.
    pub kept: Vec<u8>,
    /// How many bytes arrived in all.
    pub total: u64,
    open: bool,
}

impl Output {
    /// A pipe; the write end is for the generator (close-on-exec, as
    /// spawning puts it on the child's stdout and stderr).
    pub fn new(limit: usize) -> std::io::Result<(Output, std::os::fd::OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let flags = nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        let output = Output {
            read,
            limit,
            kept: Vec::new(),
            total: 0,
            open: true,
        };
        Ok((output, write))
    }

    /// The fd to poll, while the pipe is open.
    pub fn poll_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.open.then(|| self.read.as_fd())
    }

    /// Reads what is there now (a bounded amount, so that a writer that
    /// never stops cannot hold the caller).
    pub fn pump(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..64 {
            if !self.open {
                return;
            }
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    self.total += n as u64;
                    let room = self.limit.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => self.open = false,
            }
        }
    }

    /// Whether more arrived than was kept.
    pub fn cut(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

/// Waits until `done` says the children have all ended or `deadline`
/// passed, draining `outputs` meanwhile; `wait_fds` are the fds (pidfds)
/// whose readiness means a child may have ended.
pub(crate) fn pump_until(
    outputs: &mut [&mut Output],
    deadline: Instant,
    mut done: impl FnMut() -> (bool, Vec<std::os::fd::RawFd>),
) {
    loop {
        for out in outputs.iter_mut() {
            out.pump();
        }
        let (finished, wait_fds) = done();
        // Nothing to say when a child ends: look again soon.
        let tick = wait_fds.is_empty().then_some(Duration::from_millis(10));
        let now = Instant::now();
        if finished || now >= deadline {
            // What the last writes left in the pipes.
            for out in outputs.iter_mut() {
                out.pump();
            }
            return;
        }
        let mut fds: Vec<libc::pollfd> = wait_fds
            .into_iter()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        for out in outputs.iter() {
            if let Some(fd) = out.poll_fd() {
                use std::os::fd::AsRawFd;
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let left = (deadline - now).min(tick.unwrap_or(Duration::MAX));
        let ms = libc::c_int::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of pollfd of the given length,
        // alive for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }
}

impl Generators {
    /// Looks the generators up and runs them (see the module documentation).
    pub fn run(&self) -> Report {
        let dirs = program_dirs(self.user_mode, &|k| std::env::var(k).ok());
        let list = programs(&dirs, self.selection);
        run(&list, &self.output, self.user_mode, TIMEOUT)
    }
}

/// Empties the output directories, runs `list` all at once and waits for
/// them (at most `timeout`), then removes the output directories left
/// empty.
pub fn run(list: &[PathBuf], out: &OutputDirs, user_mode: bool, timeout: Duration) -> Report {
    let mut report = Report::default();
    for dir in out.all() {
        if let Err(e) = std::fs::remove_dir_all(dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            report
                .problems
                .push(format!("cannot empty {}: {e}", dir.display()));
        }
    }
    if list.is_empty() {
        return report;
    }
    for dir in out.all() {
        if let Err(e) = make_dir(dir) {
            report
                .problems
                .push(format!("cannot create {}: {e}", dir.display()));
            return report;
        }
    }
    let env = environment(user_mode);
    let sandbox = if user_mode { None } else { sandbox(out) };
    let deadline = Instant::now() + timeout;
    let mut running = Vec::new();
    for program in list {
        let name = display_name(program);
        if world_writable(program) {
            report.problems.push(format!(
                "{name}: {} is marked world-writable, which is a security risk as it is \
                 executed with privileges; proceeding anyway",
                program.display()
            ));
        }
        match start(program, out, &env, sandbox.as_ref()) {
            Ok((child, output)) => {
                report.ran.push(program.clone());
                running.push((name, child, output));
            }
            Err(e) => report.problems.push(format!("{name}: cannot run: {e}")),
        }
    }
    let ended = wait_all(&mut running, deadline);
    for ((name, child, output), status) in running.into_iter().zip(ended) {
        if status.is_none() {
            let _ = child.send_signal(libc::SIGKILL);
            let _ = child.wait_blocking();
            report
                .problems
                .push(format!("{name}: timed out and was killed"));
        }
        report
            .output
            .extend(lines(&output).map(|l| format!("{name}: {l}")));
        if let Some(status) = status
            && status != ExitStatus::Exited(0)
        {
            report
                .problems
                .push(format!("{name}: failed ({})", describe(status)));
        }
    }
    for dir in out.all() {
        // Only an empty directory goes (systemd's `rmdir_parents`-free trim).
        let _ = std::fs::remove_dir(dir);
    }
    report
}

/// Whether anyone may write `program` (systemd warns and runs it anyway,
/// `EXEC_DIR_WARN_WORLD_WRITABLE`).
fn world_writable(program: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(program).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
}

fn display_name(program: &Path) -> String {
    program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exit status {code}"),
        ExitStatus::Signaled { signal, .. } => {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned());
            format!("killed by {name}")
        }
    }
}

fn make_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
}

/// The manager's environment block with what systemd adds for generators
/// (`build_generator_environment()`).
fn environment(user_mode: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = crate::service::defaults::environment(user_mode)
        .iter()
        .cloned()
        .collect();
    let mut set = |k: &str, v: String| crate::unit::value::env::env_replace(&mut env, k, &v);
    set(
        "SYSTEMD_SCOPE",
        if user_mode { "user" } else { "system" }.into(),
    );
    if !user_mode {
        set("SYSTEMD_IN_INITRD", "0".into());
    }
    if let Some((name, container)) = crate::virt::detect() {
        let kind = if container { "container" } else { "vm" };
        set("SYSTEMD_VIRTUALIZATION", format!("{kind}:{name}"));
    }
    let machine = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_default();
    if !machine.is_empty() {
        set(
            "SYSTEMD_ARCHITECTURE",
            crate::unit::specifier::architecture_from_machine(&machine),
        );
    }
    env
}

/// The mount namespace generators of a system flint run in, when flint
/// may make one: everything read-only but `/run` (where the output goes)
/// and the API file systems, and a private `/tmp`.
/// The settings are those of a unit, loaded as one from a directory of
/// its own beside the output directories.
fn sandbox(out: &OutputDirs) -> Option<spawn::NamespacePlan> {
    if !crate::service::sandbox::can_make_namespaces() {
        return None;
    }
    let mut dir = out.normal.clone().into_os_string();
    dir.push(".sandbox");
    let dir = PathBuf::from(dir);
    let _ = std::fs::remove_dir_all(&dir);
    let name = "flint-generators.service";
    // The output may be elsewhere than /run (`--control`): writable too.
    // Below /tmp, /tmp stays the host's, read-only but for the output: a
    // private one would hide the output, and the host's is not theirs.
    let quoted = |p: &Path| format!("\"{}\"", unit_text_escape(&p.to_string_lossy()));
    let mut writable = vec!["/run".to_owned()];
    writable.extend(out.all().iter().map(|d| quoted(d)));
    let below_tmp = out.all().iter().any(|d| d.starts_with("/tmp"));
    let mut text = format!(
        "[Service]\nProtectSystem=strict\nReadWritePaths={}\n",
        writable.join(" ")
    );
    // A host without /tmp keeps none (the mount would fail every
    // generator).
    if !below_tmp && Path::new("/tmp").is_dir() {
        text.push_str("TemporaryFileSystem=/tmp\n");
    }
    let written = make_dir(&dir).and_then(|()| std::fs::write(dir.join(name), text));
    if let Err(e) = written {
        tracing::warn!(
            "generators run without their sandbox: {}: {e}",
            dir.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    let search = crate::unit::loader::SearchPath::from_dirs(vec![dir.clone()], false);
    let unit = name
        .parse()
        .map(|n| crate::unit::load::load(&search, &n))
        .ok();
    let _ = std::fs::remove_dir_all(&dir);
    let plan = crate::service::sandbox::plan(unit.as_ref()?, "Service", None, None, &[], &[]);
    match plan {
        Ok(Some(mut plan)) => {
            // As systemd: where the kernel refuses the namespace, the
            // generators run without it.
            plan.optional = true;
            Some(plan)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("generators run without their sandbox: {e}");
            None
        }
    }
}

/// The soft open-file limit generators get when flint's is higher.
const FD_SETSIZE: u64 = 1024;

/// `text` for a double-quoted word of a unit file: specifiers and the
/// quoting characters escaped.
fn unit_text_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Starts one generator with its output (stdout and stderr) on an
/// [`Output`].
fn start(
    program: &Path,
    out: &OutputDirs,
    env: &[(String, String)],
    sandbox: Option<&spawn::NamespacePlan>,
) -> Result<(spawn::Child, Output), String> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string());
    let (output, write) =
        Output::new(OUTPUT_LIMIT).map_err(|e| format!("cannot make its output pipe: {e}"))?;
    let mut plan = ExecPlan::new(
        c(program)?,
        vec![c(program)?, c(&out.normal)?, c(&out.early)?, c(&out.late)?],
    );
    plan.env = env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    plan.pid_vars = vec![c"SYSTEMD_EXEC_PID".to_owned()];
    plan.stdout = Stdio::Fd(write.as_raw_fd());
    plan.stderr = Stdio::Fd(write.as_raw_fd());
    plan.new_session = false;
    plan.ignore_sigpipe = false;
    plan.parent_death_signal = Some(libc::SIGTERM);
    plan.namespace = sandbox.cloned();
    // As systemd (`rlimit_nofile_safe()`): the soft open-file limit flint
    // raised for itself goes back to 1024, for select(2).
    if let Ok((soft, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        && soft > FD_SETSIZE
    {
        // An int or unsigned int depending on the C library.
        #[allow(clippy::cast_possible_wrap, clippy::unnecessary_cast)]
        let resource = libc::RLIMIT_NOFILE as i32;
        plan.rlimits.push((resource, FD_SETSIZE, hard));
    }
    let child = spawn::spawn(&plan).map_err(|e| e.to_string())?;
    // Only the generator (and what it starts) holds the write end now.
    drop(write);
    Ok((child, output))
}

/// Waits until every child has exited or `deadline` passed, draining
/// their output; the status of each, `None` for those still running.
fn wait_all(
    running: &mut [(String, spawn::Child, Output)],
    deadline: Instant,
) -> Vec<Option<ExitStatus>> {
    let mut ended: Vec<Option<ExitStatus>> = vec![None; running.len()];
    let mut children = Vec::new();
    let mut outputs = Vec::new();
    for (_, child, output) in running.iter_mut() {
        children.push(&*child);
        outputs.push(output);
    }
    pump_until(&mut outputs, deadline, || {
        let mut waiting = Vec::new();
        for (i, child) in children.iter().enumerate() {
            if ended[i].is_some() {
                continue;
            }
            match child.try_wait() {
                Ok(Some(status)) => ended[i] = Some(status),
                Ok(None) => waiting.push(child.pidfd.as_raw_fd()),
                // Not ours to wait for any more: counted as gone.
                Err(_) => ended[i] = Some(ExitStatus::Exited(0)),
            }
        }
        (waiting.is_empty(), waiting)
    });
    ended
}

/// How much of a generator's output goes to the log.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The lines a generator printed, the first [`OUTPUT_LIMIT`] bytes of
/// them.
fn lines(output: &Output) -> impl Iterator<Item = String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.kept)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if output.cut() {
        lines.push(format!(
            "({} more bytes of output left out)",
            output.total - output.kept.len() as u64
        ));
    }
    lines.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn programs_are_the_executables_by_name_earlier_directories_winning() {
        let t = tempfile::tempdir().unwrap();
        let (high, low) = (t.path().join("high"), t.path().join("low"));
        script(&low, "b-gen", "#!/bin/sh\n");
        script(&low, "a-gen", "#!/bin/sh\n");
        let winner = script(&high, "a-gen", "#!/bin/sh\n");
        script(&low, "masked", "#!/bin/sh\n");
        std::os::unix::fs::symlink("/dev/null", high.join("masked")).unwrap();
        script(&low, "systemd-fstab-generator", "#!/bin/sh\n");
        script(&low, ".hidden", "#!/bin/sh\n");
        script(&low, "c-gen.dpkg-old", "#!/bin/sh\n");
        std::fs::write(low.join("not-executable"), "#!/bin/sh\n").unwrap();
        let dirs = [high.clone(), low.clone()];
        assert_eq!(
            programs(&dirs, Selection::Packages),
            [winner.clone(), low.join("b-gen")]
        );
        assert_eq!(
            programs(&dirs, Selection::All),
            [
                winner,
                low.join("b-gen"),
                low.join("systemd-fstab-generator")
            ]
        );
    }

    /// PID 1 runs systemd's two generators of an init's scripts besides
    /// the packages'; nothing else of systemd's, and not under another
    /// init or for a user flint.
    #[test]
    fn flint_as_pid_1_also_runs_the_generators_of_an_inits_scripts() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let pkg = script(&dir, "postgresql-generator", "#!/bin/sh\n");
        let rc_local = script(&dir, "systemd-rc-local-generator", "#!/bin/sh\n");
        let sysv = script(&dir, "systemd-sysv-generator", "#!/bin/sh\n");
        script(&dir, "systemd-getty-generator", "#!/bin/sh\n");
        let dirs = [dir];
        let pid1 = Selection::default_for(false, true);
        assert_eq!(pid1, Selection::Init);
        assert_eq!(programs(&dirs, pid1), [pkg.clone(), rc_local, sysv]);
        let other_init = Selection::default_for(false, false);
        assert_eq!(programs(&dirs, other_init), [pkg]);
        assert_eq!(
            Selection::default_for(true, true),
            Selection::Packages,
            "a user flint"
        );
    }

    /// The output is in flint's runtime directory only when the control
    /// socket is its `control`; else beside the socket, named after it.
    #[test]
    fn output_dirs_belong_to_the_control_socket() {
        let dirs = |c: &str| {
            let o = OutputDirs::for_control(Path::new(c));
            [o.normal, o.early, o.late].map(|p| p.display().to_string())
        };
        assert_eq!(
            dirs("/run/flint/control"),
            [
                "/run/flint/generator",
                "/run/flint/generator.early",
                "/run/flint/generator.late"
            ]
        );
        assert_eq!(dirs("/run/x/../flint/./control")[0], "/run/flint/generator");
        assert_eq!(
            dirs("/run/flint/web.sock"),
            [
                "/run/flint/web.sock.generator",
                "/run/flint/web.sock.generator.early",
                "/run/flint/web.sock.generator.late"
            ]
        );
        assert_eq!(dirs("/run/systemd/x")[0], "/run/systemd/x.generator");
    }

    #[test]
    fn the_generator_path_replaces_or_extends_the_defaults() {
        let env = |v: Option<&'static str>| {
            move |k: &str| {
                (k == "SYSTEMD_GENERATOR_PATH")
                    .then_some(v)
                    .flatten()
                    .map(str::to_owned)
            }
        };
        assert_eq!(
            program_dirs(false, &env(None)),
            [
                "/run/systemd/system-generators",
                "/etc/systemd/system-generators",
                "/usr/local/lib/systemd/system-generators",
                "/usr/lib/systemd/system-generators",
                "/lib/systemd/system-generators"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(program_dirs(true, &env(Some("/g"))), [PathBuf::from("/g")]);
        let both = program_dirs(true, &env(Some("/g:")));
        assert_eq!(both[0], PathBuf::from("/g"));
        assert_eq!(both[4], PathBuf::from("/usr/lib/systemd/user-generators"));
        assert_eq!(both.len(), 5, "no split-/usr directory for users");
    }

    /// All run at once: one that hangs is killed at the deadline without
    /// holding the others up, and a failing one is reported; the output
    /// directories are emptied first and removed when left empty.
    #[test]
    fn generators_run_together_within_one_deadline() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("g");
        let out = OutputDirs::under(&t.path().join("rt"));
        std::fs::create_dir_all(&out.normal).unwrap();
        std::fs::write(out.normal.join("stale.service"), "").unwrap();
        let list = [
            script(&g, "hang", "#!/bin/sh\necho hanging\nexec sleep 30\n"),
            script(&g, "fail", "#!/bin/sh\nexit 2\n"),
            script(
                &g,
                "open",
                "#!/bin/sh\nhead -c 70000 /dev/zero | tr '\\0' x\n",
            ),
            script(&g, "flood", "#!/bin/sh\nexec yes a-line-of-output\n"),
            script(
                &g,
                "reopen",
                "#!/bin/sh\nset -e\necho via-dev-stderr >/dev/stderr\necho after\n",
            ),
            script(
                &g,
                "write",
                "#!/bin/sh\necho \"$SYSTEMD_SCOPE $SYSTEMD_EXEC_PID $$\"\ntouch \"$3/x.service\"\n",
            ),
        ];
        std::fs::set_permissions(&list[2], std::fs::Permissions::from_mode(0o777)).unwrap();
        let started = Instant::now();
        let report = run(&list, &out, true, Duration::from_millis(800));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(report.ran.len(), 6);
        // One that never stops printing is drained until the deadline, only
        // its first 64 KiB kept.
        let flooded = report
            .output
            .iter()
            .filter(|l| *l == "flood: a-line-of-output")
            .count();
        assert!(
            flooded > 0 && flooded <= OUTPUT_LIMIT / "a-line-of-output\n".len() + 1,
            "{flooded}"
        );
        assert!(
            report.output.iter().any(
                |l| l.starts_with("flood: (") && l.ends_with(" more bytes of output left out)")
            ),
            "{:?}",
            report.output.iter().rev().take(3).collect::<Vec<_>>()
        );
        assert!(
            report
                .problems
                .contains(&"flood: timed out and was killed".to_owned()),
            "{:?}",
            report.problems
        );
        // Opening /dev/stderr again writes to the same output.
        for line in ["reopen: via-dev-stderr", "reopen: after"] {
            assert!(report.output.contains(&line.to_owned()), "{line}");
        }
        assert!(!report.problems.iter().any(|p| p.starts_with("reopen: ")));
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.starts_with("open: ") && p.contains("world-writable")),
            "{:?}",
            report.problems
        );
        assert!(!report.problems.iter().any(|p| p.starts_with("write: ")));
        // A flood of output is cut.
        assert!(
            report.output.contains(&format!(
                "open: ({} more bytes of output left out)",
                70_000 - OUTPUT_LIMIT
            )),
            "{:?}",
            report
                .output
                .iter()
                .map(|l| &l[..l.len().min(80)])
                .collect::<Vec<_>>()
        );
        assert!(
            report
                .problems
                .contains(&"hang: timed out and was killed".to_owned()),
            "{:?}",
            report.problems
        );
        assert!(
            report
                .problems
                .contains(&"fail: failed (exit status 2)".to_owned()),
            "{:?}",
            report.problems
        );
        assert!(report.output.contains(&"hang: hanging".to_owned()));
        let line = report
            .output
            .iter()
            .find_map(|l| l.strip_prefix("write: "))
            .unwrap();
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words[0], "user");
        assert_eq!(
            words[1], words[2],
            "SYSTEMD_EXEC_PID is the generator's pid"
        );
        assert!(out.late.join("x.service").exists());
        assert!(
            !out.normal.exists(),
            "stale output emptied, empty dir removed"
        );
        assert!(!out.early.exists());
    }
}

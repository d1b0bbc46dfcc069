//! The pseudo terminal of `systemd-run --pty` (and `--shell`): systemd-run
//! opens it, the service runs on its other end (`StandardInput=tty`,
//! `TTYPath=`), and what is typed and what the service writes are carried
//! between it and systemd-run's own standard input and output until the
//! service has ended, as systemd's `ptyfwd` carries them. On a terminal,
//! systemd-run's own is put in raw mode meanwhile (so Ctrl-C reaches the
//! service as a byte), its size follows the caller's (`SIGWINCH`), and
//! `^]` pressed three times within a second lets go of the service.

use std::io::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A pseudo terminal: the master that systemd-run keeps, the path of its
/// other end for the service, and that other end held open until the
/// service is done (so the master does not read as hung up before the
/// service opened it).
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
    path: String,
    held: OwnedFd,
}

impl Pty {
    /// Opens a pseudo terminal the size of the terminal on `size_of`, if
    /// that is one.
    pub fn open(size_of: BorrowedFd<'_>) -> io::Result<Pty> {
        use nix::fcntl::OFlag;
        let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        nix::pty::grantpt(&master)?;
        nix::pty::unlockpt(&master)?;
        let path = nix::pty::ptsname_r(&master)?;
        let held = nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: posix_openpt returned a new fd that `master` owns; its
        // ownership moves into the OwnedFd.
        let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
        copy_size(size_of, master.as_fd());
        Ok(Pty { master, path, held })
    }

    /// The path of the service's end (`/dev/pts/N`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Starts carrying bytes between the caller's stdin/stdout and the
    /// terminal, on a thread of its own.
    pub fn forward(self) -> io::Result<Forwarder> {
        let raw = RawMode::enter(io::stdin().as_fd());
        install_handlers();
        let stop = Arc::new(AtomicBool::new(false));
        let detached = Arc::new(AtomicBool::new(false));
        let Pty { master, held, .. } = self;
        let thread = {
            let stop = stop.clone();
            let detached = detached.clone();
            std::thread::Builder::new()
                .name("pty".into())
                .spawn(move || carry(&master, &stop, &detached))?
        };
        Ok(Forwarder {
            thread: Some(thread),
            stop,
            detached,
            held: Some(held),
            raw,
        })
    }
}

/// The thread that carries the bytes, and the caller's terminal mode to
/// put back.
#[derive(Debug)]
pub struct Forwarder {
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    detached: Arc<AtomicBool>,
    held: Option<OwnedFd>,
    raw: Option<RawMode>,
}

impl Forwarder {
    /// Whether `^]` was pressed three times within a second: systemd-run
    /// lets go of the service then.
    pub fn detached(&self) -> bool {
        self.detached.load(Ordering::Relaxed)
    }

    /// The signal (`SIGTERM`, `SIGHUP`, `SIGINT`) that asked systemd-run to
    /// end meanwhile, if one did: the caller then drops the forwarder,
    /// which puts the terminal back, and ends.
    pub fn interrupted(&self) -> Option<i32> {
        match ENDING.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// The service has ended: what it wrote last is carried over, then the
    /// caller's terminal is put back as it was.
    pub fn finish(mut self) {
        self.held = None;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.raw = None;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.raw = None;
    }
}

/// How long the terminal may stay quiet, once the service has ended,
/// before the forwarding stops (a process the service left behind may hold
/// it open).
const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// `^]`, and how many of them within [`DETACH_WITHIN`] let go.
const ESCAPE: u8 = 0x1d;
const DETACH_WITHIN: Duration = Duration::from_secs(1);

/// At most this much typed input waits for the service to read it; more
/// is not read from stdin until the service took some.
const PENDING_MAX: usize = 64 * 1024;

fn carry(master: &OwnedFd, stop: &AtomicBool, detached: &AtomicBool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // The master never blocks: input the service does not read waits here
    // while its output goes on being carried.
    let _ = set_nonblocking(master.as_raw_fd());
    let stdin = io::stdin();
    let mut stdin_open = true;
    let mut pending: Vec<u8> = Vec::new();
    let mut escapes = 0usize;
    let mut first_escape = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    loop {
        if WINCH.swap(false, Ordering::Relaxed) {
            copy_size(io::stdout().as_fd(), master.as_fd());
        }
        let mut want = PollFlags::POLLIN;
        if !pending.is_empty() {
            want |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(master.as_fd(), want)];
        let read_stdin = stdin_open && pending.len() < PENDING_MAX;
        if read_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
        let master_events = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        let mut carried = false;
        if master_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match read_fd(master.as_raw_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut out = io::stdout().lock();
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                    carried = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EIO: every end of the service's side is closed. Before the
                // service has ended that is a hang-up of the terminal
                // (`TTYVHangup=`), after which the service opens it again.
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        if !pending.is_empty() && master_events.contains(PollFlags::POLLOUT) {
            match write_some(master.as_raw_fd(), &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => pending.clear(),
            }
        }
        if read_stdin && stdin_ready {
            match read_fd(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    // `^]` three times in a row within a second lets go, as
                    // systemd's forwarder does; any other byte starts over.
                    for &b in &buf[..n] {
                        if b != ESCAPE {
                            escapes = 0;
                        } else if escapes == 0 || first_escape.elapsed() >= DETACH_WITHIN {
                            escapes = 1;
                            first_escape = Instant::now();
                        } else {
                            escapes += 1;
                        }
                    }
                    if escapes >= 3 {
                        detached.store(true, Ordering::Relaxed);
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            if carried {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= DRAIN_QUIET {
                break;
            }
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: writes from our own buffer of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads into our own buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Gives `to` the window size of the terminal on `from`, if it is one.
fn copy_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `size`, TIOCSWINSZ reads
    // one from it; both fds are open for the call.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &raw mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &raw const size);
        }
    }
}

/// Set by `SIGWINCH`: the caller's terminal changed its size.
static WINCH: AtomicBool = AtomicBool::new(false);

/// Set by `SIGTERM`, `SIGHUP` or `SIGINT`: the signal's number.
static ENDING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_winch(_: libc::c_int) {
    WINCH.store(true, Ordering::Relaxed);
}

extern "C" fn on_ending(signal: libc::c_int) {
    ENDING.store(signal, Ordering::Relaxed);
}

/// `SIGWINCH` follows the caller's window size; the signals that would end
/// systemd-run with its terminal in raw mode are noted instead, so that it
/// puts the terminal back first.
fn install_handlers() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let winch = SigAction::new(
        SigHandler::Handler(on_winch),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let ending = SigAction::new(
        SigHandler::Handler(on_ending),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store to atomics, which is
    // async-signal-safe.
    unsafe {
        let _ = sigaction(Signal::SIGWINCH, &winch);
        for signal in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT] {
            let _ = sigaction(signal, &ending);
        }
    }
}

/// The caller's terminal in raw mode, put back as it was when dropped.
#[derive(Debug)]
struct RawMode {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the fd is the process's stdin, open for its whole life.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

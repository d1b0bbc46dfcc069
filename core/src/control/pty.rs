//! The pseudo terminal of `systemd-run --pty` (and `--shell`): systemd-run
//! opens it, the service runs on its other end (`StandardInput=tty`,
//! `TTYPath=`), and what is typed and what the service writes are carried
//! between it and systemd-run's own standard input and output until the
//! service has ended, as systemd's `ptyfwd` carries them. On a terminal,
//! systemd-run's own is put in raw mode meanwhile (so Ctrl-C reaches the
//! service as a byte), its size follows the caller's (`SIGWINCH`), and
//! `^]` pressed three times within a second lets go of the service.

use std::io;
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
        install_winch_handler();
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

fn carry(master: &OwnedFd, stop: &AtomicBool, detached: &AtomicBool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdin = io::stdin();
    let mut stdin_open = true;
    let mut escapes: Vec<Instant> = Vec::new();
    let mut quiet_since: Option<Instant> = None;
    let mut buf = [0u8; 4096];
    loop {
        if WINCH.swap(false, Ordering::Relaxed) {
            copy_size(io::stdout().as_fd(), master.as_fd());
        }
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let ready = match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(_) => break,
        };
        let master_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if ready > 0 && master_ready {
            match read_fd(master.as_raw_fd(), &mut buf) {
                // EIO: every end of the service's side is closed.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if write_all(io::stdout().as_raw_fd(), &buf[..n]).is_err() {
                        break;
                    }
                    quiet_since = None;
                }
            }
        }
        if ready > 0 && stdin_ready {
            match read_fd(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let now = Instant::now();
                    for &b in &buf[..n] {
                        if b == ESCAPE {
                            escapes.retain(|t| now.duration_since(*t) < DETACH_WITHIN);
                            escapes.push(now);
                        }
                    }
                    if escapes.len() >= 3 {
                        detached.store(true, Ordering::Relaxed);
                        break;
                    }
                    let _ = write_all(master.as_raw_fd(), &buf[..n]);
                }
            }
        }
        if stop.load(Ordering::Relaxed) && !master_ready {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= DRAIN_QUIET {
                break;
            }
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

fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writes from our own buffer of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n.unsigned_abs()..];
    }
    Ok(())
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

extern "C" fn on_winch(_: libc::c_int) {
    WINCH.store(true, Ordering::Relaxed);
}

fn install_winch_handler() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_winch),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    let _ = unsafe { sigaction(Signal::SIGWINCH, &action) };
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

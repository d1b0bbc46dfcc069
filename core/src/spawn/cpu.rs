//! After a quiet spell, a new child starts on the spawning thread's CPU.
//!
//! The kernel places a new task on the idlest CPU it finds (fork
//! balancing), and the spawning thread sleeps right after the clone until
//! the child execs (`CLONE_VFORK`). So on a mostly idle machine the child
//! waits for another CPU to come out of idle while the one it was made on
//! falls idle. On a virtual machine that wake-up costs a host round trip:
//! 115-250 µs each on the host `bench/README.md` measures, more than the
//! child's whole way to `execve`. The spawning thread therefore limits
//! itself to its current CPU for the clone, so that the child inherits
//! that and runs in its place, and puts its own CPU mask back after. The
//! child puts the same mask back before it execs (unless the unit sets
//! `CPUAffinity=`, which replaces it), so the service may run where flint
//! may and the scheduler may move it at `execve` like any other.
//!
//! Only a spawn that follows a quiet spell is pinned ([`Quiet`]). Where
//! spawns follow each other closely (an `Accept=yes` socket under load)
//! the CPUs are awake, and the pin's three `sched_setaffinity` calls and
//! one `sched_getaffinity`, with the child sharing its CPU with the thread
//! that made it, cost more than they save: 5-8% of the `Accept=yes` rate
//! on that host.
//!
//! What is put back is not always the mask read before: since Linux 6.2
//! the kernel keeps a mask set with `sched_setaffinity` as the thread's
//! own request, children inherit it, and CPUs that come online or that the
//! cgroup gains later are then left out. Where flint's threads are limited
//! only by what their cgroup allows (no `taskset`, no `CPUAffinity=` of
//! flint's own unit), a mask of every CPU is put back instead, which asks
//! for nothing ([`put_back`]).

use std::mem::size_of_val;

/// Mask words for up to 1,024 CPUs, as glibc's `cpu_set_t`.
pub(super) const WORDS: usize = 16;

/// A thread's CPU mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mask {
    words: [u64; WORDS],
    /// How many of `words` the kernel filled.
    len: usize,
}

impl Mask {
    /// The calling thread's mask; `None` where it cannot be read (more
    /// CPUs than the mask holds, or a filter refusing the call).
    pub(super) fn of_this_thread() -> Option<Mask> {
        let mut words = [0u64; WORDS];
        // SAFETY: the kernel writes at most `size_of_val(&words)` bytes into
        // `words`, which is ours and that large.
        let got = unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0,
                size_of_val(&words),
                words.as_mut_ptr(),
            )
        };
        let len = usize::try_from(got).ok()?.div_ceil(8).min(WORDS);
        Some(Mask { words, len })
    }

    /// The mask words, for `sched_setaffinity`.
    pub(super) fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// Every CPU the mask can name, in as many words as `self`.
    fn every(&self) -> Mask {
        Mask {
            words: [u64::MAX; WORDS],
            len: self.len,
        }
    }

    /// Gives the calling thread this mask; whether the kernel took it.
    fn set(&self) -> bool {
        // SAFETY: the kernel reads `len` words from `words`.
        unsafe {
            libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                self.len * 8,
                self.words.as_ptr(),
            ) == 0
        }
    }

    /// The mask of the CPU the calling thread runs on alone, where that
    /// CPU is in `self`.
    fn this_cpu_in(&self) -> Option<Mask> {
        // SAFETY: sched_getcpu only reads the current CPU (vDSO or rseq).
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        let (word, bit) = (cpu / 64, 1u64 << (cpu % 64));
        if word >= self.len || self.words[word] & bit == 0 {
            return None;
        }
        let mut one = Mask {
            words: [0; WORDS],
            len: self.len,
        };
        one.words[word] = bit;
        Some(one)
    }
}

/// The last look at what flint's threads may run on ([`look_at_allowed`]):
/// when, and what it found.
static ALLOWED: std::sync::Mutex<Option<(std::time::Instant, Option<Mask>)>> =
    std::sync::Mutex::new(None);

/// How long a look at the allowed CPUs that a thread's mask does not match
/// is trusted: CPUs come online and cgroups change, and a stale look would
/// have every spawn ask for the CPUs of the moment.
const ALLOWED_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Every CPU a thread of flint's may run on when it asks for every CPU:
/// what its cgroup allows. Looked at on a thread of its own that asks for
/// every CPU and ends. `None` where that cannot be read (a thread that
/// cannot be made, under a limit on tasks, means no answer, not a failure).
fn look_at_allowed() -> Option<Mask> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || {
                let mask = Mask::of_this_thread()?;
                mask.every().set().then(Mask::of_this_thread).flatten()
            })
            .ok()?
            .join()
            .ok()
            .flatten()
    })
}

/// What a thread whose mask is `current` puts back after a pin: every CPU
/// where `current` is all its cgroup allows (so that nothing is asked
/// for), else `current`, which flint was given. The allowed CPUs are
/// looked at once, and again when `current` differs from a look older than
/// [`ALLOWED_FRESH`] (under `taskset`, at most once a second).
fn put_back(current: Mask) -> Mask {
    let mut last = ALLOWED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = std::time::Instant::now();
    let stale = |at: std::time::Instant| now.saturating_duration_since(at) >= ALLOWED_FRESH;
    let allowed = match &*last {
        Some((at, allowed)) if allowed.as_ref() == Some(&current) || !stale(*at) => allowed,
        _ => &last.insert((now, look_at_allowed())).1,
    };
    if allowed.as_ref() == Some(&current) {
        current.every()
    } else {
        current
    }
}

/// Looks at what flint's threads may run on now, so that no spawn does.
pub(super) fn warm_up() {
    if let Some(current) = Mask::of_this_thread() {
        put_back(current);
    }
}

/// How long flint must not have spawned for a spawn to be pinned: an order
/// of magnitude above the gap between spawns of a busy `Accept=yes` socket
/// (0.1-0.4 ms), so that only spawns after a quiet spell, when CPUs may be
/// idle, are.
const QUIET_US: u64 = 10_000;

/// When flint last spawned, for [`Here::pin_if_quiet`]: microseconds since
/// the first spawn, plus one (zero: never).
#[derive(Debug, Default)]
pub(super) struct Quiet {
    last: std::sync::atomic::AtomicU64,
}

impl Quiet {
    /// Notes a spawn `now` (microseconds since any fixed point, the same for
    /// every call); whether none came in the [`QUIET_US`] spell before it.
    pub(super) fn spawn_at(&self, now: u64) -> bool {
        let now = now.saturating_add(1);
        let last = self.last.swap(now, std::sync::atomic::Ordering::Relaxed);
        last == 0 || now.saturating_sub(last) >= QUIET_US
    }
}

/// The spawns of every spawning thread: a spawn on one thread while
/// another spawns is no quiet spell either.
static SPAWNS: Quiet = Quiet {
    last: std::sync::atomic::AtomicU64::new(0),
};

/// Microseconds on a clock that starts with the first call.
fn clock_us() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Pins every spawn, quiet spell or not (the spawn test, whose other
/// tests spawn beside it, must see the pin to see the child undo it).
#[cfg(test)]
pub(super) static ALWAYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The spawning thread, limited to its current CPU; dropping it puts back
/// what [`put_back`] says.
#[derive(Debug)]
pub(super) struct Here {
    back: Mask,
}

impl Here {
    /// [`Here::pin`] for a spawn after a quiet spell of flint's ([`Quiet`]);
    /// `None` for one that follows another closely.
    pub(super) fn pin_if_quiet() -> Option<Here> {
        let quiet = SPAWNS.spawn_at(clock_us());
        #[cfg(test)]
        let quiet = quiet || ALWAYS.load(std::sync::atomic::Ordering::SeqCst);
        if quiet { Here::pin() } else { None }
    }

    /// Limits the calling thread to the CPU it runs on. `None` where that
    /// fails: then nothing was changed.
    pub(super) fn pin() -> Option<Here> {
        let current = Mask::of_this_thread()?;
        let one = current.this_cpu_in()?;
        let back = put_back(current);
        one.set().then_some(Here { back })
    }

    /// The mask the child puts back.
    pub(super) fn mask(&self) -> &[u64] {
        self.back.words()
    }
}

impl Drop for Here {
    fn drop(&mut self) {
        // Refused (the CPUs it had are gone from its cgroup): asking for
        // every CPU cannot be, and leaves the thread no request of one CPU.
        if !self.back.set() {
            self.back.every().set();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_now() -> Vec<u64> {
        Mask::of_this_thread()
            .expect("reading the thread's mask")
            .words()
            .to_vec()
    }

    #[test]
    fn a_pinned_thread_runs_on_one_cpu_and_gets_its_mask_back() {
        std::thread::spawn(|| {
            let before = mask_now();
            let here = Here::pin().expect("pinning the thread to its CPU");
            let now = mask_now();
            assert_eq!(now.iter().map(|w| w.count_ones()).sum::<u32>(), 1);
            // SAFETY: as in `Here::pin`.
            let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).unwrap();
            assert_ne!(now[cpu / 64] & (1 << (cpu % 64)), 0, "pinned elsewhere");
            let back = here.mask().to_vec();
            assert!(
                back == before || back.iter().all(|w| *w == u64::MAX),
                "puts back {back:x?}, had {before:x?}"
            );
            drop(here);
            assert_eq!(mask_now(), before);
        })
        .join()
        .unwrap();
    }

    /// The first spawn and one after a quiet spell are pinned; one close
    /// behind another, on any spawning thread, is not.
    #[test]
    fn only_a_spawn_after_a_quiet_spell_is_pinned() {
        let quiet = Quiet::default();
        let spell = QUIET_US;
        assert!(quiet.spawn_at(0), "the first spawn");
        assert!(!quiet.spawn_at(400), "0.4 ms after the first");
        assert!(!quiet.spawn_at(400 + spell - 1), "just inside the spell");
        assert!(quiet.spawn_at(400 + 2 * spell), "after a quiet spell");
        assert!(!quiet.spawn_at(400 + 2 * spell), "at the same time");
    }

    /// A thread that asked for fewer CPUs than its cgroup allows keeps
    /// them; one that did not ask puts back a mask that asks for nothing.
    #[test]
    fn what_is_put_back_asks_for_no_more_than_flint_was_given() {
        let allowed = look_at_allowed().expect("the CPUs the cgroup allows");
        assert_eq!(put_back(allowed.clone()), allowed.every());
        if allowed.words().iter().map(|w| w.count_ones()).sum::<u32>() < 2 {
            eprintln!("one CPU: no fewer CPUs to ask for");
            return;
        }
        let fewer = allowed.this_cpu_in().expect("the current CPU");
        assert_eq!(put_back(fewer.clone()), fewer);
    }

    /// A look at the allowed CPUs that no longer matches (a CPU came
    /// online, the cgroup changed) is made again once it is a second old,
    /// so that a thread that asks for nothing goes on asking for nothing.
    #[test]
    fn a_stale_look_at_the_allowed_cpus_is_made_again() {
        let allowed = look_at_allowed().expect("the CPUs the cgroup allows");
        let mut other = allowed.clone();
        other.words[0] ^= 1 << 63;
        let long_ago = std::time::Instant::now()
            .checked_sub(ALLOWED_FRESH * 2)
            .unwrap();
        *ALLOWED.lock().unwrap() = Some((long_ago, Some(other)));
        assert_eq!(put_back(allowed.clone()), allowed.every());
    }
}

//! Turns for main-process spawns on blocking threads.
//!
//! A spawn returns once its child has exec'd (`CLONE_VFORK`), so flint runs
//! it on a blocking thread and the event loop keeps accepting meanwhile. With
//! no bound, a burst of `Accept=yes` connections had as many threads and
//! half-started children as connections competing for the CPUs, served by
//! the scheduler in no particular order: with 8 concurrent clients on 2 CPUs
//! the connect-to-first-byte p99 was 13-16 ms against systemd-socket-activate's
//! 6-8 ms, at the same throughput. Spawns now take turns: at most one thread
//! per CPU runs them, each taking the next waiting spawn in arrival order
//! as soon as its last one is done, without a round trip through the loop
//! (bench/README.md has the numbers).
//!
//! An exec can hang (a binary on a stuck network file system). A thread whose
//! spawn has run for [`STALL`] stops counting against the limit, so a hung
//! exec delays the spawns behind it by at most that long and never stops
//! them: the loop starts another thread then ([`Turns::start_due`]).
//!
//! A thread with nothing left to spawn waits a few seconds to be woken for
//! the next one, so a steady stream of connections keeps its threads: a
//! wake-up is one `futex` call, a new turn on tokio's pool a task, a queue
//! and a wake-up on the event loop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a spawn may take before the next waiting one starts anyway.
pub(super) const STALL: Duration = Duration::from_millis(100);

/// A spawn to run on a blocking thread.
pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

/// A thread's work: take waiting spawns until none is left.
pub(super) type Drain = Box<dyn FnOnce() + Send + 'static>;

/// What a thread that takes spawns is doing.
#[derive(Debug)]
enum Work {
    /// Started or woken, about to take a waiting spawn.
    Starting,
    /// Running a spawn since then.
    Running(Instant),
    /// Waiting (parked) for the next spawn, at most [`Turns::keep`] long.
    Idle(std::thread::Thread),
}

#[derive(Default)]
struct Shared {
    waiting: VecDeque<Job>,
    /// Threads taking spawns: their number and what they do.
    threads: Vec<(u64, Work)>,
    next: u64,
    /// The manager is gone: threads take no more spawns.
    closed: bool,
}

impl Shared {
    /// Threads that count against the limit: about to take a spawn, or
    /// running one that has not stalled.
    fn counted(&self, now: Instant) -> usize {
        self.threads
            .iter()
            .filter(|(_, w)| match w {
                Work::Starting => true,
                Work::Running(at) => now.saturating_duration_since(*at) < STALL,
                Work::Idle(_) => false,
            })
            .count()
    }

    /// Threads about to take a waiting spawn.
    fn starting(&self) -> usize {
        self.threads
            .iter()
            .filter(|(_, w)| matches!(w, Work::Starting))
            .count()
    }

    fn work(&mut self, id: u64) -> Option<&mut Work> {
        self.threads
            .iter_mut()
            .find(|(t, _)| *t == id)
            .map(|(_, w)| w)
    }
}

/// The spawns waiting, and the threads that run them.
pub(super) struct Turns {
    limit: usize,
    /// How long a thread with nothing to do waits for the next spawn before
    /// it leaves: waking a waiting thread costs one `futex` call, starting
    /// one (or taking one from tokio's pool) a task, a queue and a wake-up.
    keep: Duration,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Turns")
            .field("limit", &self.limit)
            .field("keep", &self.keep)
            .field("threads", &s.threads)
            .field("waiting", &s.waiting.len())
            .finish()
    }
}

impl Drop for Turns {
    /// Spawns still waiting when the manager stops are dropped (with the fds
    /// they hold), not started after it; running ones finish; waiting
    /// threads leave at once.
    fn drop(&mut self) {
        let waiting = {
            let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            s.closed = true;
            for (_, w) in &s.threads {
                if let Work::Idle(t) = w {
                    t.unpark();
                }
            }
            std::mem::take(&mut s.waiting)
        };
        drop(waiting);
    }
}

/// What the caller does next: nothing, or [`Turns::start_due`] again at a
/// time (when a running spawn would count as stalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    Nothing,
    CheckAt(Instant),
}

/// How long an idle thread waits for the next spawn.
const KEEP: Duration = Duration::from_secs(5);

impl Turns {
    /// At most `limit` (at least 1) threads counted as running spawns.
    pub(super) fn new(limit: usize) -> Turns {
        Turns::with_keep(limit, KEEP)
    }

    fn with_keep(limit: usize, keep: Duration) -> Turns {
        Turns {
            limit: limit.max(1),
            keep,
            shared: Arc::default(),
        }
    }

    /// One thread per CPU flint may use.
    pub(super) fn per_cpu() -> Turns {
        Turns::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// Queues `job`; wakes a waiting thread, or starts one (through
    /// `start`), when fewer than the limit run.
    pub(super) fn submit(&self, job: Job, now: Instant, start: impl FnMut(Drain)) -> Then {
        let mut wake = Vec::new();
        let mut drains = Vec::new();
        let then = {
            let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            s.waiting.push_back(job);
            self.start_threads(&mut s, now, &mut drains, &mut wake)
        };
        drains.into_iter().for_each(start);
        wake_all(wake);
        then
    }

    /// Starts threads while spawns wait and fewer than the limit count as
    /// running (a thread whose spawn is older than [`STALL`] does not).
    pub(super) fn start_due(&self, now: Instant, start: impl FnMut(Drain)) -> Then {
        let mut wake = Vec::new();
        let mut drains = Vec::new();
        let then = {
            let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            self.start_threads(&mut s, now, &mut drains, &mut wake)
        };
        drains.into_iter().for_each(start);
        wake_all(wake);
        then
    }

    /// Hands waiting spawns to idle threads (collected in `wake`) and
    /// counts new threads in (their work collected in `drains`), for the
    /// caller to unpark and start once the lock is released: a thread woken
    /// or started while it is held would first wait for it.
    fn start_threads(
        &self,
        s: &mut Shared,
        now: Instant,
        drains: &mut Vec<Drain>,
        wake: &mut Vec<std::thread::Thread>,
    ) -> Then {
        while s.counted(now) < self.limit && s.waiting.len() > s.starting() {
            if let Some((_, w)) = s
                .threads
                .iter_mut()
                .find(|(_, w)| matches!(w, Work::Idle(_)))
            {
                if let Work::Idle(t) = std::mem::replace(w, Work::Starting) {
                    wake.push(t);
                }
                continue;
            }
            let id = s.next;
            s.next += 1;
            s.threads.push((id, Work::Starting));
            let shared = Arc::clone(&self.shared);
            let keep = self.keep;
            drains.push(Box::new(move || drain(&shared, id, keep)));
        }
        if s.waiting.len() <= s.starting() {
            return Then::Nothing;
        }
        // Every thread counted is running a spawn younger than STALL; the
        // oldest of those stalls first.
        let oldest = s
            .threads
            .iter()
            .filter_map(|(_, w)| match w {
                Work::Running(at) => Some(*at),
                _ => None,
            })
            .filter(|at| now.saturating_duration_since(*at) < STALL)
            .min()
            .unwrap_or(now);
        Then::CheckAt(oldest + STALL)
    }
}

/// Unparks the threads [`Turns::start_threads`] handed spawns to.
fn wake_all(threads: Vec<std::thread::Thread>) {
    for t in threads {
        t.unpark();
    }
}

/// A thread's loop: take the oldest waiting spawn, run it, again; when
/// nothing waits, wait up to `keep` to be woken for the next one, then
/// leave the list of threads.
fn drain(shared: &Mutex<Shared>, id: u64, keep: Duration) {
    loop {
        let job = {
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let mut idle_since = None;
            loop {
                if s.closed {
                    s.threads.retain(|(t, _)| *t != id);
                    return;
                }
                if let Some(job) = s.waiting.pop_front() {
                    if let Some(w) = s.work(id) {
                        *w = Work::Running(Instant::now());
                    }
                    break job;
                }
                let now = Instant::now();
                let since = *idle_since.get_or_insert(now);
                let left = keep.saturating_sub(now.saturating_duration_since(since));
                if left.is_zero() {
                    s.threads.retain(|(t, _)| *t != id);
                    return;
                }
                if let Some(w) = s.work(id) {
                    *w = Work::Idle(std::thread::current());
                }
                drop(s);
                std::thread::park_timeout(left);
                s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Starts each thread for real and returns how many were started.
    fn threads(started: &std::sync::atomic::AtomicUsize) -> impl FnMut(Drain) + '_ {
        move |d| {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(d);
        }
    }

    /// A job that reports its name, then waits until it is let go.
    fn job(name: &'static str, ran: &mpsc::Sender<&'static str>) -> (Job, mpsc::Sender<()>) {
        let (go, wait) = mpsc::channel();
        let ran = ran.clone();
        (
            Box::new(move || {
                ran.send(name).unwrap();
                let _ = wait.recv();
            }),
            go,
        )
    }

    fn settle(turns: &Turns) -> (usize, usize) {
        for _ in 0..500 {
            std::thread::sleep(Duration::from_millis(2));
            let s = turns.shared.lock().unwrap();
            if s.starting() == 0 {
                return (s.threads.len(), s.waiting.len());
            }
        }
        panic!("threads did not take their spawns");
    }

    /// Waits (up to a second) until no thread takes spawns; whether none does.
    fn threads_gone(shared: &Mutex<Shared>) -> bool {
        for _ in 0..500 {
            if shared.lock().unwrap().threads.is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn at_most_limit_threads_and_spawns_run_in_arrival_order() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let turns = Turns::with_keep(2, Duration::from_millis(20));
        let (ran_tx, ran) = mpsc::channel();
        let now = Instant::now();
        let mut gos = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let (j, go) = job(name, &ran_tx);
            gos.push(go);
            let then = turns.submit(j, now, threads(&started));
            if name >= "c" {
                assert!(matches!(then, Then::CheckAt(_)), "{name} waits: {then:?}");
            }
        }
        let mut first: Vec<_> = (0..2).map(|_| ran.recv().unwrap()).collect();
        first.sort_unstable();
        assert_eq!(first, ["a", "b"]);
        assert_eq!(settle(&turns), (2, 2), "two threads, two spawns waiting");
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Letting one spawn end: its thread takes the oldest waiting one.
        gos[0].send(()).unwrap();
        assert_eq!(ran.recv().unwrap(), "c");
        gos[1].send(()).unwrap();
        assert_eq!(ran.recv().unwrap(), "d");
        gos[2].send(()).unwrap();
        gos[3].send(()).unwrap();
        assert!(
            threads_gone(&turns.shared),
            "threads leave when nothing waits"
        );
        assert_eq!(
            started.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "no thread more"
        );
    }

    #[test]
    fn waiting_spawns_are_dropped_with_the_manager() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let turns = Turns::with_keep(1, Duration::from_millis(20));
        let (ran_tx, ran) = mpsc::channel();
        let (first, let_go) = job("first", &ran_tx);
        turns.submit(first, Instant::now(), threads(&started));
        assert_eq!(ran.recv().unwrap(), "first");
        let (second, _go) = job("second", &ran_tx);
        turns.submit(second, Instant::now(), threads(&started));
        let shared = Arc::clone(&turns.shared);
        drop(turns);
        let_go.send(()).unwrap();
        assert!(threads_gone(&shared), "the thread left");
        assert!(
            ran.recv_timeout(Duration::from_millis(50)).is_err(),
            "second never ran"
        );
    }

    #[test]
    fn a_stalled_spawn_stops_counting() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let turns = Turns::with_keep(1, Duration::from_millis(20));
        let (ran_tx, ran) = mpsc::channel();
        let now = Instant::now();
        let (hung, let_go) = job("hung", &ran_tx);
        turns.submit(hung, now, threads(&started));
        assert_eq!(ran.recv().unwrap(), "hung");
        settle(&turns);
        let (next, next_go) = job("next", &ran_tx);
        let then = turns.submit(next, Instant::now(), threads(&started));
        let Then::CheckAt(at) = then else {
            panic!("the next spawn waits: {then:?}");
        };
        // Before the stall time nothing moves; at it, another thread starts.
        assert_eq!(
            turns.start_due(at.checked_sub(STALL / 2).unwrap(), threads(&started)),
            Then::CheckAt(at)
        );
        assert!(ran.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(turns.start_due(at, threads(&started)), Then::Nothing);
        assert_eq!(ran.recv().unwrap(), "next");
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 2);
        next_go.send(()).unwrap();
        let_go.send(()).unwrap();
    }

    #[test]
    fn an_idle_thread_takes_the_next_spawn_and_leaves_after_waiting() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let turns = Turns::with_keep(2, Duration::from_millis(300));
        let (ran_tx, ran) = mpsc::channel();
        for name in ["first", "second"] {
            let (j, go) = job(name, &ran_tx);
            go.send(()).unwrap();
            turns.submit(j, Instant::now(), threads(&started));
            assert_eq!(ran.recv().unwrap(), name);
            // Done: the thread waits for more.
            for _ in 0..500 {
                let s = turns.shared.lock().unwrap();
                if matches!(s.threads.as_slice(), [(_, Work::Idle(_))]) {
                    break;
                }
                drop(s);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(
            started.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the waiting thread took the second spawn"
        );
        assert!(threads_gone(&turns.shared), "it leaves after waiting");
        // Dropping the turns lets a waiting thread go at once.
        let turns = Turns::with_keep(1, Duration::from_mins(1));
        let (j, go) = job("third", &ran_tx);
        go.send(()).unwrap();
        turns.submit(j, Instant::now(), threads(&started));
        assert_eq!(ran.recv().unwrap(), "third");
        let shared = Arc::clone(&turns.shared);
        drop(turns);
        assert!(threads_gone(&shared), "closed: the thread left");
    }
}

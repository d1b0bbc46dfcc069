//! The services' step timers (`TimeoutStartSec=`, `TimeoutStopSec=`,
//! `RuntimeMaxSec=`, ...): one task sleeps until the earliest is due and
//! sends its [`Event::Timer`].
//!
//! A task per timer cost a task spawned, and woken again only to be
//! cancelled, for every `Accept=yes` connection (each instance's start is
//! timed, and the timer is let go of as soon as the instance runs): a
//! twentieth of the event loop's time. Here arming is an insertion into an
//! ordered map and letting go a removal; the task is woken only when a
//! timer is due sooner than the one it sleeps for.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::Instant;

use tokio::sync::{Notify, mpsc};

use super::Event;

#[derive(Debug, Default)]
struct Queue {
    /// `(due, service)` → the generation the timer was armed in.
    due: BTreeMap<(Instant, u64), u64>,
    /// What the task sleeps until, while it sleeps on a timer.
    sleeping_until: Option<Instant>,
}

/// The timers and the task that fires them.
#[derive(Debug)]
pub(super) struct StepTimers {
    queue: Rc<RefCell<Queue>>,
    wake: Rc<Notify>,
    task: tokio::task::AbortHandle,
}

impl Drop for StepTimers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One armed timer, let go of when dropped.
#[derive(Debug)]
pub(super) struct StepTimer {
    queue: Weak<RefCell<Queue>>,
    key: (Instant, u64),
}

impl Drop for StepTimer {
    fn drop(&mut self) {
        // A timer that fired is already out of the queue. Nothing holds
        // the queue across an await, so the borrow cannot clash.
        if let Some(queue) = self.queue.upgrade() {
            queue.borrow_mut().due.remove(&self.key);
        }
    }
}

impl StepTimers {
    /// Starts the task (on the current `LocalSet`), which sends the due
    /// timers' events to `tx`.
    pub(super) fn start(tx: mpsc::UnboundedSender<Event>) -> StepTimers {
        let queue = Rc::new(RefCell::new(Queue::default()));
        let wake = Rc::new(Notify::new());
        let task = tokio::task::spawn_local(fire(queue.clone(), wake.clone(), tx));
        StepTimers {
            queue,
            wake,
            task: task.abort_handle(),
        }
    }

    /// Arms `service`'s timer of `generation`, due at `due`.
    pub(super) fn arm(&self, due: Instant, service: u64, generation: u64) -> StepTimer {
        let key = (due, service);
        let mut queue = self.queue.borrow_mut();
        queue.due.insert(key, generation);
        // The task sleeps for a later timer (or none): it looks again.
        if queue.sleeping_until.is_none_or(|until| due < until) {
            queue.sleeping_until = None;
            self.wake.notify_one();
        }
        StepTimer {
            queue: Rc::downgrade(&self.queue),
            key,
        }
    }

    /// How many timers are armed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.borrow().due.len()
    }
}

/// The task: sleeps until the earliest timer is due (or a sooner one is
/// armed), then sends the events of every timer due by then, earliest
/// first.
async fn fire(queue: Rc<RefCell<Queue>>, wake: Rc<Notify>, tx: mpsc::UnboundedSender<Event>) {
    loop {
        let next = {
            let mut queue = queue.borrow_mut();
            let next = queue.due.keys().next().map(|&(due, _)| due);
            queue.sleeping_until = next;
            next
        };
        let Some(next) = next else {
            wake.notified().await;
            continue;
        };
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = wake.notified() => continue,
        }
        let now = Instant::now();
        let fired: Vec<(u64, u64)> = {
            let mut queue = queue.borrow_mut();
            let mut fired = Vec::new();
            while let Some(entry) = queue.due.first_entry()
                && entry.key().0 <= now
            {
                let ((_, service), generation) = entry.remove_entry();
                fired.push((service, generation));
            }
            fired
        };
        for (service, generation) in fired {
            if tx
                .send(Event::Timer {
                    service,
                    generation,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next_timer(rx: &mut mpsc::UnboundedReceiver<Event>) -> (u64, u64) {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Event::Timer {
                service,
                generation,
            })) => (service, generation),
            _ => panic!("no timer fired"),
        }
    }

    #[test]
    fn timers_fire_in_order_once_and_not_after_they_are_let_go_of() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let timers = StepTimers::start(tx);
            let ms = |n| Instant::now() + Duration::from_millis(n);
            // Armed out of order: fired in order of their due times.
            let late = timers.arm(ms(300), 1, 7);
            let early = timers.arm(ms(100), 2, 1);
            let middle = timers.arm(ms(200), 3, 4);
            // Let go of before it is due: never fires.
            let gone = timers.arm(ms(150), 4, 2);
            drop(gone);
            assert_eq!(timers.len(), 3);
            assert_eq!(next_timer(&mut rx).await, (2, 1));
            assert_eq!(next_timer(&mut rx).await, (3, 4));
            // While the task sleeps for the third, a sooner one comes.
            let sooner = timers.arm(ms(20), 5, 9);
            assert_eq!(next_timer(&mut rx).await, (5, 9));
            assert_eq!(next_timer(&mut rx).await, (1, 7));
            // Fired timers left the queue; dropping them changes nothing.
            assert_eq!(timers.len(), 0);
            drop((late, early, middle, sooner));
            // Re-armed for the same service: the old one is gone, the new
            // one fires with its generation.
            let before = timers.arm(ms(50), 6, 1);
            drop(before);
            let _g = timers.arm(ms(60), 6, 2);
            assert_eq!(next_timer(&mut rx).await, (6, 2));
            assert!(
                tokio::time::timeout(Duration::from_millis(200), rx.recv())
                    .await
                    .is_err(),
                "nothing else fires"
            );
        });
    }
}

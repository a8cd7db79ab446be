//! # An adaptive pool: as many workers as the load needs, between a minimum and a maximum
//!
//! `smart_executor` gave each kind of job a fixed number of workers. A fixed number is
//! wrong both ways: too few and jobs queue while the machine idles, too many and each idle
//! worker holds what it was made for (a database connection, a licence, a socket to a
//! legacy service) for nothing. Connection pools (`deadpool`, `bb8`, `r2d2`) and tokio's own
//! blocking pool size themselves instead: they keep `min` workers warm, start one more
//! when a job arrives and every worker is busy (never more than `max`), and a worker that
//! waited `idle_timeout` without a job ends, unless that would leave fewer than `min`.
//! The bookkeeping is the whole exercise: the pool must know, under one lock, how many
//! workers are alive, how many are busy and how many jobs are queued, so that it grows only
//! when jobs would otherwise wait (a job queued while a worker sits idle needs no new one)
//! and shrinks only down to `min`. Here each worker is a tokio task that runs its jobs on
//! the blocking pool (`spawn_blocking`) one at a time; its idle wait is a
//! `tokio::time::timeout` around taking the next job.
//! Why in real services: a pool of connections to a sync driver that sees 2 requests a
//! second at night and 200 at noon; a fleet of workers for a legacy API billed per session.
//! (Python: `ThreadPoolExecutor` starts threads up to `max_workers` as jobs come but never
//! ends them; the shrinking is what you add, as Celery's `--autoscale=max,min` does.)
//!
//! ## Your job
//! As shipped, `Pool::new` starts `max` workers that live forever. Start `min` workers;
//! in `submit`, start one more worker when the job would otherwise wait (more jobs queued
//! than idle workers) and fewer than `max` are alive; make a worker that gets no job for
//! `idle_timeout` end, unless only `min` are left. `workers()` says how many are alive,
//! and a worker that ends really ends (its task returns); dropping the pool ends them all.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/fn.unbounded_channel.html>
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Builder.html#method.thread_keep_alive>
//!   (tokio's blocking pool shrinks the same way)
//! - CHEATSHEET.md, "A pool that grows and shrinks"

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

/// A job for the pool: blocking work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// How many workers the pool keeps, and for how long an idle one stays.
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    pub min: usize,
    pub max: usize,
    pub idle_timeout: Duration,
}

/// What the pool knows about its workers, always changed under one lock.
#[derive(Debug, Default)]
struct Counts {
    alive: usize,
    busy: usize,
    queued: usize,
}

struct Shared {
    sizing: Sizing,
    counts: Mutex<Counts>,
    /// The workers take turns waiting for the next job.
    jobs: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    submit: mpsc::UnboundedSender<Job>,
}

impl Pool {
    /// Starts `sizing.min` workers; must be called inside a tokio runtime.
    pub fn new(sizing: Sizing) -> Self {
        let (submit, jobs) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            sizing,
            counts: Mutex::new(Counts::default()),
            jobs: tokio::sync::Mutex::new(jobs),
        });
        shared.counts().alive = sizing.min;
        for _ in 0..sizing.min {
            tokio::spawn(work(Arc::clone(&shared)));
        }
        Self { shared, submit }
    }

    /// Queues `job`; starts a worker for it if it would otherwise wait and there is room.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        {
            let mut counts = self.shared.counts();
            counts.queued += 1;
            let idle = counts.alive - counts.busy;
            if counts.queued > idle && counts.alive < self.shared.sizing.max {
                counts.alive += 1;
                tokio::spawn(work(Arc::clone(&self.shared)));
            }
        }
        let _ = self.submit.send(Box::new(job));
    }

    /// How many workers are alive.
    pub fn workers(&self) -> usize {
        self.shared.counts().alive
    }
}

/// One worker: takes jobs one at a time; ends after `idle_timeout` without one (unless
/// only `min` are left), or when the pool is dropped.
async fn work(shared: Arc<Shared>) {
    loop {
        let next = tokio::time::timeout(shared.sizing.idle_timeout, async {
            shared.jobs.lock().await.recv().await
        })
        .await;
        match next {
            Ok(Some(job)) => {
                {
                    let mut counts = shared.counts();
                    counts.queued -= 1;
                    counts.busy += 1;
                }
                // A job's panic ends that job, not the worker.
                let _ = tokio::task::spawn_blocking(job).await;
                shared.counts().busy -= 1;
            }
            Ok(None) => return, // the pool is gone, and nobody reads its counts
            Err(_idle) => {
                let mut counts = shared.counts();
                if counts.alive > shared.sizing.min {
                    counts.alive -= 1;
                    return;
                }
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sizing = Sizing {
        min: 1,
        max: 4,
        idle_timeout: Duration::from_millis(100),
    };
    let pool = Pool::new(sizing);
    println!("at rest: {} worker(s)", pool.workers());
    let (done, mut finished) = mpsc::unbounded_channel();
    for n in 0..8 {
        let done = done.clone();
        pool.submit(move || {
            std::thread::sleep(Duration::from_millis(20)); // a blocking call
            let _ = done.send(n);
        });
    }
    println!("8 jobs queued: {} worker(s)", pool.workers());
    for _ in 0..8 {
        finished.recv().await;
    }
    println!("all done: {} worker(s)", pool.workers());
    tokio::time::sleep(Duration::from_millis(150)).await;
    println!("idle a while: {} worker(s)", pool.workers());
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - a fixed pool (as shipped): `max` workers from the start, never fewer;
    // - a pool that grows but never shrinks, or shrinks below `min`, or ends its workers
    //   while they still have work queued;
    // - an idle time counted from a worker's start rather than from its last job (a
    //   `sleep` pinned once and not reset after each job, a deadline fixed at the start);
    // - growing whenever a job is queued, even with a worker idle (jobs one at a time
    //   then bring the pool to `max`), or growing past `max`;
    // - growing only once the queue is long (a limit never reached while jobs wait);
    // - a worker count that says a worker ended while its task still runs, or workers
    //   that outlive the pool.
    //
    // How: virtual time (paused clock) runs the idle timeouts exactly; jobs that must
    // overlap wait at gates the check opens (a bound of 500 ms only turns a wait that
    // can never end into a failure instead of a hang, dropping a gate releases its job).
    // Whether a worker's task really ended shows in the runtime's count of alive tasks.
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc as std_mpsc;
    use tokio::time::Instant;

    const STUCK: Duration = Duration::from_millis(500);
    const IDLE: Duration = Duration::from_secs(10);

    fn sizing(min: usize, max: usize) -> Sizing {
        Sizing {
            min,
            max,
            idle_timeout: IDLE,
        }
    }

    /// Tasks alive on this runtime: the pool's workers (the check spawns none).
    fn alive_tasks() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Lets every task that can run, run (the runtime's only thread is the check's).
    async fn let_tasks_run() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    /// A job that reports its start, waits for its gate (or 500 ms), then reports its end.
    fn gated(
        events: &mpsc::UnboundedSender<&'static str>,
        running: &Arc<AtomicUsize>,
    ) -> (impl FnOnce() + Send + 'static, std_mpsc::Sender<()>) {
        let (open, gate) = std_mpsc::channel::<()>();
        let (events, running) = (events.clone(), Arc::clone(running));
        let job = move || {
            running.fetch_add(1, SeqCst);
            let _ = events.send("start");
            let waited = gate.recv_timeout(STUCK);
            running.fetch_sub(1, SeqCst);
            let _ = events.send(match waited {
                Err(std_mpsc::RecvTimeoutError::Timeout) => "stuck",
                _ => "end",
            });
        };
        (job, open)
    }

    /// The next event. Jobs run on the blocking pool, which stops virtual time meanwhile,
    /// so a second of it passes only if nothing at all is left to run: then it never comes.
    async fn expect(events: &mut mpsc::UnboundedReceiver<&'static str>, what: &str, why: &str) {
        let got = tokio::time::timeout(Duration::from_secs(1), events.recv())
            .await
            .unwrap_or_else(|_| panic!("{why}: nothing is left to run, and no job {what}"))
            .expect("the check holds a sender");
        assert_eq!(got, what, "{why}");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn starts_with_min_and_one_job_at_a_time_needs_no_more() {
        let pool = Pool::new(sizing(2, 5));
        let_tasks_run().await;
        assert_eq!(pool.workers(), 2, "a new pool should start `min` workers");
        assert_eq!(alive_tasks(), 2, "a new pool should run `min` worker tasks");
        let (events, mut seen) = mpsc::unbounded_channel();
        for _ in 0..6 {
            let events = events.clone();
            pool.submit(move || {
                let _ = events.send("done");
            });
            expect(&mut seen, "done", "each job should run").await;
            // Until the job's blocking task is over, its worker is busy: this sleep ends
            // once nothing runs any more (virtual time stands still until then).
            tokio::time::sleep(Duration::from_millis(1)).await;
            assert_eq!(
                pool.workers(),
                2,
                "one job at a time, with idle workers: no new worker is needed"
            );
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn grows_while_jobs_wait_up_to_max_and_never_beyond() {
        let pool = Pool::new(sizing(1, 3));
        let (events, mut seen) = mpsc::unbounded_channel();
        let running = Arc::new(AtomicUsize::new(0));
        let mut gates = Vec::new();
        for n in 1..=5 {
            let (job, open) = gated(&events, &running);
            pool.submit(job);
            gates.push(open);
            assert_eq!(
                pool.workers(),
                n.min(3),
                "job {n} submitted, none done, max 3 workers: one more worker per job until max"
            );
            if n <= 3 {
                expect(&mut seen, "start", "a job with its own worker should start").await;
            }
            let_tasks_run().await;
        }
        assert_eq!(
            running.load(SeqCst),
            3,
            "3 workers: 3 jobs at once, 2 waiting"
        );
        assert_eq!(pool.workers(), 3, "never more than max workers");
        // One job ends: its worker takes a waiting one, no new worker.
        drop(gates.remove(0));
        expect(&mut seen, "end", "the released job should end").await;
        expect(
            &mut seen,
            "start",
            "a waiting job should take the free worker",
        )
        .await;
        assert_eq!(pool.workers(), 3);
        drop(gates);
        // Jobs 2, 3 and 4 end; job 5 starts and ends.
        let mut rest = Vec::new();
        for _ in 0..5 {
            rest.push(seen.recv().await.expect("the check holds a sender"));
        }
        assert!(
            !rest.contains(&"stuck"),
            "a job waited 500 ms for the check"
        );
        rest.sort_unstable();
        assert_eq!(
            rest,
            ["end", "end", "end", "end", "start"],
            "every job should run once"
        );
        assert_eq!(running.load(SeqCst), 0);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn shrinks_back_to_min_after_the_idle_timeout_and_grows_again() {
        let pool = Pool::new(sizing(1, 3));
        let (events, mut seen) = mpsc::unbounded_channel();
        let running = Arc::new(AtomicUsize::new(0));
        let gates: Vec<_> = (0..3)
            .map(|_| {
                let (job, open) = gated(&events, &running);
                pool.submit(job);
                open
            })
            .collect();
        for _ in 0..3 {
            expect(&mut seen, "start", "3 jobs, 3 workers").await;
        }
        drop(gates);
        for _ in 0..3 {
            expect(&mut seen, "end", "the released jobs should end").await;
        }
        let_tasks_run().await;
        let idle_since = Instant::now();
        assert_eq!(
            pool.workers(),
            3,
            "the workers stay until they were idle long enough"
        );
        tokio::time::sleep(IDLE - Duration::from_millis(1)).await;
        let_tasks_run().await;
        assert_eq!(
            pool.workers(),
            3,
            "after {:?} idle (the timeout is {IDLE:?}) no worker should have ended yet",
            idle_since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        let_tasks_run().await;
        assert_eq!(
            pool.workers(),
            1,
            "idle for longer than the timeout: back to min, and not below"
        );
        assert_eq!(
            alive_tasks(),
            1,
            "the idle workers' tasks should have ended"
        );
        // Much later, still min.
        tokio::time::sleep(IDLE * 10).await;
        let_tasks_run().await;
        assert_eq!(
            pool.workers(),
            1,
            "min workers stay, however long they idle"
        );
        assert_eq!(alive_tasks(), 1);
        // Load again: the pool grows again.
        let gates: Vec<_> = (0..2)
            .map(|_| {
                let (job, open) = gated(&events, &running);
                pool.submit(job);
                open
            })
            .collect();
        for _ in 0..2 {
            expect(&mut seen, "start", "2 jobs after a quiet time, 2 workers").await;
        }
        assert_eq!(pool.workers(), 2);
        drop(gates);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_idle_timeout_counts_from_each_workers_last_job() {
        let pool = Pool::new(sizing(1, 3));
        let (events, mut seen) = mpsc::unbounded_channel();
        let running = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        // Three jobs at once at 0 s, then three again at 6 s: every worker has just
        // finished a job at 6 s, so none is idle before 16 s.
        for at in [0, 6] {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            let gates: Vec<_> = (0..3)
                .map(|_| {
                    let (job, open) = gated(&events, &running);
                    pool.submit(job);
                    open
                })
                .collect();
            for _ in 0..3 {
                expect(&mut seen, "start", "3 jobs at once, 3 workers").await;
            }
            drop(gates);
            for _ in 0..3 {
                expect(&mut seen, "end", "the released jobs should end").await;
            }
            let_tasks_run().await;
        }
        tokio::time::sleep_until(start + Duration::from_secs(6) + IDLE - Duration::from_millis(1))
            .await;
        let_tasks_run().await;
        assert_eq!(
            pool.workers(),
            3,
            "the three workers each finished a job at 6 s, so at {:?} they have been idle for \
             less than the timeout ({IDLE:?}): the idle time counts from a worker's last job, \
             not from when it started",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        let_tasks_run().await;
        assert_eq!(
            pool.workers(),
            1,
            "idle for longer than the timeout since their last job: back to min"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn dropping_the_pool_ends_every_worker() {
        let pool = Pool::new(sizing(2, 4));
        let (events, mut seen) = mpsc::unbounded_channel();
        for _ in 0..3 {
            let events = events.clone();
            pool.submit(move || {
                let _ = events.send("done");
            });
        }
        for _ in 0..3 {
            expect(&mut seen, "done", "each job should run").await;
        }
        drop(pool);
        // Virtual time stands still while a job's blocking task finishes: this sleep ends
        // once nothing runs any more (and long before a worker's idle timeout).
        tokio::time::sleep(Duration::from_millis(1)).await;
        let_tasks_run().await;
        assert_eq!(alive_tasks(), 0, "the pool is gone: its workers should end");
    }
}

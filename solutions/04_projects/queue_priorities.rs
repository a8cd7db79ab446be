//! # Task queue, step 1 of 4: priorities, a bound, N workers
//!
//! *This step starts the project:* a task queue, the part of a service that takes jobs from
//! request handlers ("send this e-mail", "resize this image", "recompute this report") and
//! runs them on a fixed number of workers. Steps 2 to 4 add retries with per-attempt timeouts,
//! statistics, and a graceful shutdown. Chapter 2's `work_queue` was a FIFO channel shared
//! by its workers; this queue has *priorities*: a password-reset e-mail must not wait behind
//! ten thousand newsletter e-mails. Higher priority runs first; within a priority, first come
//! first served (without that, a busy priority could starve its own oldest job).
//! (Python: `asyncio.PriorityQueue(maxsize=n)` of `(-priority, seq, job)` tuples and n
//! `create_task(worker(queue))`.)
//!
//! A channel only gives FIFO order, so the queue is a `BinaryHeap` under a `Mutex` (std's:
//! it is never held across an `.await`). Each entry carries a sequence number that only
//! grows, so that two jobs of the same priority come out oldest first. Nothing here polls:
//! an idle worker sleeps on a `tokio::sync::Notify` until `submit` pushes a job, and a
//! `submit` that finds the queue full (`capacity` jobs waiting) sleeps on a second `Notify`
//! until a worker takes a job out. That wait is the backpressure: it travels back to the
//! caller instead of memory growing. The pattern that loses no wake-up: create the
//! `notified()` future *before* looking at the queue, then await it only if the queue said
//! "not yet"; `notify_one` leaves a permit when nobody is waiting yet.
//!
//! A real service would use a job-queue crate or a database table as the queue (jobs then
//! survive a restart), and tokio's `JoinSet` for the workers, as here.
//!
//! ## Your job
//! Write `Queued`'s order, `submit` (wait while full, push, wake a worker), and `next_job`
//! (take the most urgent job, wake a waiting `submit`, or sleep until there is a job).
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/collections/struct.BinaryHeap.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Notify.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html>
//! - A real service: <https://docs.rs/apalis/latest/apalis/> or a Postgres table read with
//!   `SELECT ... FOR UPDATE SKIP LOCKED`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

/// A job: its id, its priority (higher runs first) and how long it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub priority: u8,
    pub cost: Duration,
}

/// When a job started, on the processor's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub job: u64,
    pub at: Duration,
}

/// The pretend work: it logs when each job starts and draws each job on a timeline row.
#[derive(Clone)]
pub struct Processor {
    origin: Instant,
    starts: Arc<Mutex<Vec<Start>>>,
    timeline: Timeline,
}

impl Processor {
    pub fn new(timeline: Timeline) -> Self {
        Processor {
            origin: Instant::now(),
            starts: Arc::default(),
            timeline,
        }
    }

    /// Runs `job`: takes `job.cost`.
    pub async fn run(&self, job: &Job) {
        lock(&self.starts).push(Start {
            job: job.id,
            at: self.origin.elapsed(),
        });
        let _span = self
            .timeline
            .span(format!("job {} (p{})", job.id, job.priority));
        sleep(job.cost).await;
    }

    /// Every start so far, in order.
    pub fn starts(&self) -> Vec<Start> {
        lock(&self.starts).clone()
    }
}

/// How to run the queue.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How many jobs run at once.
    pub workers: usize,
    /// How many jobs may wait; `submit` waits while this many do.
    pub capacity: usize,
}

/// A job in the heap. The heap pops the greatest entry first.
struct Queued {
    priority: u8,
    /// Taken from a counter that only grows: smaller means submitted earlier.
    seq: u64,
    job: Job,
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher priority first; within a priority, the smaller sequence number first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Queued>,
    next_seq: u64,
}

struct Shared {
    capacity: usize,
    state: Mutex<State>,
    /// Wakes a worker: a job was queued.
    job_queued: Notify,
    /// Wakes a `submit`: a job left the queue, there is room.
    room_made: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes the most urgent job, waiting until there is one.
    async fn next_job(&self) -> Job {
        loop {
            let job_queued = self.job_queued.notified();
            if let Some(queued) = self.state().heap.pop() {
                self.room_made.notify_one();
                return queued.job;
            }
            job_queued.await;
        }
    }
}

/// A priority queue of jobs and the workers that run them.
pub struct TaskQueue {
    shared: Arc<Shared>,
    /// Dropping the queue drops the set, which aborts the workers.
    _workers: JoinSet<()>,
}

impl TaskQueue {
    /// Starts `config.workers` workers taking jobs from an empty queue.
    pub fn start(processor: Processor, config: Config) -> Self {
        let shared = Arc::new(Shared {
            capacity: config.capacity,
            state: Mutex::default(),
            job_queued: Notify::new(),
            room_made: Notify::new(),
        });
        let mut workers = JoinSet::new();
        for _ in 0..config.workers {
            let shared = Arc::clone(&shared);
            let processor = processor.clone();
            workers.spawn(async move {
                loop {
                    let job = shared.next_job().await;
                    processor.run(&job).await;
                }
            });
        }
        TaskQueue {
            shared,
            _workers: workers,
        }
    }

    /// Queues `job`, waiting while `capacity` jobs are waiting.
    pub async fn submit(&self, job: Job) {
        loop {
            let room_made = self.shared.room_made.notified();
            {
                let mut state = self.shared.state();
                if state.heap.len() < self.shared.capacity {
                    let seq = state.next_seq;
                    state.next_seq += 1;
                    state.heap.push(Queued {
                        priority: job.priority,
                        seq,
                        job,
                    });
                    drop(state);
                    self.shared.job_queued.notify_one();
                    return;
                }
            }
            room_made.await;
        }
    }

    /// How many jobs are waiting (not those running).
    pub fn waiting(&self) -> usize {
        self.shared.state().heap.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let timeline = Timeline::new();
    let processor = Processor::new(timeline.clone());
    let config = Config {
        workers: 2,
        capacity: 8,
    };
    let queue = TaskQueue::start(processor.clone(), config);
    for (id, priority) in [(0, 1), (1, 1), (2, 1), (3, 9), (4, 5), (5, 9)] {
        let cost = Duration::from_millis(100);
        queue.submit(Job { id, priority, cost }).await;
    }
    sleep(Duration::from_millis(300)).await;
    for start in processor.starts() {
        println!("job {} started at {:?}", start.job, start.at);
    }
    println!(
        "{}",
        timeline.picture("2 workers, the 9s before the 5 before the 1s")
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/04_projects/queue_priorities.toml tries each):
    // - a FIFO queue (priorities ignored), or the lowest priority first;
    // - the newest job first within a priority (a heap ordered by priority alone, or by
    //   `seq` the wrong way round: LIFO);
    // - one worker whatever `config.workers` says, or a worker that holds the lock while it
    //   runs its job (one job at a time);
    // - no bound (`submit` never waits), or a bound one too large or too small;
    // - a `submit` or a worker that polls with a short sleep instead of being woken.
    use super::*;
    use proptest::prelude::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `queue.submit(job)`, which must return: on the paused clock a `submit` that waits
    /// for room nobody makes ends here, as a failure, instead of hanging the check.
    async fn submit(queue: &TaskQueue, job: Job) {
        tokio::time::timeout(ms(60_000), queue.submit(job))
            .await
            .expect("`submit` never returned, though the workers were taking jobs");
    }

    fn job(id: u64, priority: u8, cost: u64) -> Job {
        Job {
            id,
            priority,
            cost: ms(cost),
        }
    }

    fn setup(workers: usize, capacity: usize) -> (Timeline, Processor, TaskQueue) {
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let queue = TaskQueue::start(processor.clone(), Config { workers, capacity });
        (timeline, processor, queue)
    }

    fn starts(processor: &Processor) -> Vec<(u64, u64)> {
        processor
            .starts()
            .iter()
            .map(|start| (start.job, start.at.as_millis() as u64))
            .collect()
    }

    /// Counts how often the future inside is polled.
    struct Polls<F> {
        future: Pin<Box<F>>,
        polls: usize,
    }

    impl<F: Future> Future for Polls<F> {
        type Output = (F::Output, usize);

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.polls += 1;
            let polls = self.polls;
            self.future.as_mut().poll(cx).map(|out| (out, polls))
        }
    }

    fn polls<F: Future>(future: F) -> Polls<F> {
        Polls {
            future: Box::pin(future),
            polls: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn higher_priority_first_and_first_come_first_served_within_one() {
        let (timeline, processor, queue) = setup(1, 10);
        submit(&queue, job(0, 1, 100)).await;
        tokio::task::yield_now().await; // the worker takes job 0
        for (id, priority) in [(1, 1), (2, 5), (3, 3), (4, 5), (5, 1), (6, 3)] {
            submit(&queue, job(id, priority, 100)).await;
        }
        sleep(ms(700)).await;
        let expected = vec![
            (0, 0),
            (2, 100),
            (4, 200),
            (3, 300),
            (6, 400),
            (1, 500),
            (5, 600),
        ];
        assert_eq!(
            starts(&processor),
            expected,
            "(job, started at ms): while job 0 runs, jobs 1-6 wait with priorities \
             1, 5, 3, 5, 1, 3; they run by priority, highest first, and oldest first within a \
             priority\n{}",
            timeline.picture("2 and 4 (p5), then 3 and 6 (p3), then 1 and 5 (p1)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn n_workers_run_n_jobs_at_once_and_no_more() {
        let (timeline, processor, queue) = setup(3, 10);
        for id in 0..7 {
            submit(&queue, job(id, 0, 100)).await;
        }
        sleep(ms(300)).await;
        let picture = timeline.picture("3 at once: 0-2 at 0 ms, 3-5 at 100 ms, 6 at 200 ms");
        assert_eq!(
            timeline.peak_in_flight(),
            3,
            "3 workers run at most 3 jobs at once, and do run 3\n{picture}"
        );
        assert_eq!(
            starts(&processor)
                .iter()
                .map(|&(_, at)| at)
                .collect::<Vec<_>>(),
            vec![0, 0, 0, 100, 100, 100, 200],
            "start times of 7 jobs of 100 ms on 3 workers\n{picture}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_submit_wait_until_a_worker_takes_a_job() {
        let (timeline, processor, queue) = setup(1, 2);
        let start = Instant::now();
        submit(&queue, job(0, 0, 150)).await;
        tokio::task::yield_now().await; // the worker takes job 0
        submit(&queue, job(1, 0, 150)).await;
        submit(&queue, job(2, 0, 150)).await;
        assert_eq!(queue.waiting(), 2);
        let (_, polled) = polls(submit(&queue, job(3, 7, 150))).await;
        assert_eq!(
            start.elapsed(),
            ms(150),
            "with 2 jobs waiting in a queue of 2, `submit` waits until the worker takes the \
             next one, at 150 ms\n{}",
            timeline.picture("job 1 starts at 150 ms, and job 3 is queued then")
        );
        assert!(
            polled <= 3,
            "the waiting `submit` was polled {polled} times in 150 ms: it should sleep until \
             a worker makes room (a `Notify`), not poll"
        );
        assert_eq!(queue.waiting(), 2, "jobs 2 and 3 wait");
        sleep(ms(450)).await;
        assert_eq!(
            starts(&processor),
            vec![(0, 0), (1, 150), (3, 300), (2, 450)],
            "(job, started at ms): job 3 has priority 7, so it runs before job 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_is_woken_by_submit_not_by_polling() {
        let (_timeline, processor, queue) = setup(2, 4);
        sleep(ms(1234)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await; // a worker polling on a timer has just looked
        }
        submit(&queue, job(0, 0, 100)).await;
        submit(&queue, job(1, 0, 100)).await;
        tokio::task::yield_now().await;
        let at: Vec<Duration> = processor.starts().iter().map(|start| start.at).collect();
        assert_eq!(
            at,
            vec![ms(1234); 2],
            "two idle workers start the two jobs the instant they are submitted (woken by \
             `submit`, not by a timer)"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Batches of jobs, then a pause. A job queued at the very instant a worker picks
        /// its next one may or may not be seen: only those queued before count.
        #[test]
        fn jobs_run_once_each_by_priority_and_never_more_than_the_workers_at_once(
            workers in 1usize..4,
            batches in prop::collection::vec(
                (0u64..60, prop::collection::vec((0u8..4, 1u64..40), 1..6)),
                1..8,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let (timeline, processor, queue) = setup(workers, 64);
                let mut submitted = Vec::new(); // (job, priority, queued at)
                let mut id = 0;
                for (gap, batch) in &batches {
                    for &(priority, cost) in batch {
                        let job = Job {
                            id,
                            priority,
                            cost: ms(cost),
                        };
                        submit(&queue, job).await;
                        submitted.push((id, priority, processor.origin.elapsed()));
                        id += 1;
                    }
                    sleep(ms(*gap)).await;
                }
                sleep(ms(64 * 40)).await;
                let starts = processor.starts();
                let mut ran: Vec<u64> = starts.iter().map(|start| start.job).collect();
                ran.sort_unstable();
                prop_assert_eq!(ran, (0..id).collect::<Vec<_>>(), "every job runs exactly once");
                prop_assert!(timeline.peak_in_flight() <= workers, "{} workers ran {} jobs at once", workers, timeline.peak_in_flight());
                if workers == 1 {
                    // At each start, no job queued earlier and not yet started is more urgent.
                    for (n, start) in starts.iter().enumerate() {
                        let key = |job: u64| {
                            let (_, priority, _) = submitted[job as usize];
                            (priority, std::cmp::Reverse(job))
                        };
                        let better = submitted.iter().find(|&&(other, _, queued)| {
                            queued < start.at
                                && !starts[..=n].iter().any(|s| s.job == other)
                                && key(other) > key(start.job)
                        });
                        prop_assert!(
                            better.is_none(),
                            "job {} started at {:?} while job {:?} (job, priority, queued at) \
                             waited, more urgent", start.job, start.at, better
                        );
                    }
                }
                Ok(())
            })?;
        }
    }
}

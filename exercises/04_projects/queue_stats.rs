//! # Task queue, step 3 of 4: statistics
//!
//! *This step adds:* statistics. The queue of step 2 is here, solved. A queue in production
//! is watched: how many jobs wait (is it keeping up?), how many run, how many wait for a
//! retry, how many were done, failed, retried, and how long a job takes from `submit` to
//! done, as percentiles: the median says what is usual, p99 what one caller in a hundred
//! lives through. An alert on "p99 over 2 s" or "waiting keeps growing" is how an on-call
//! engineer hears of a slow dependency before the users do.
//! (Python: counters under the queue's own lock, and `statistics.quantiles(latencies, n=100)`.)
//!
//! Statistics read while the work runs must be *consistent*: every job is in exactly one
//! place, so `submitted == waiting + running + backing_off + done + failed` holds in every
//! `Stats` value, whenever it is read. Separate atomic counters break that: between a
//! worker's `running -= 1` and its `done += 1`, a reader on another thread sees a job that
//! is nowhere. So the counts live in the queue's `State`, under the same lock as the heap,
//! each change of place is one locked section, and `stats()` copies them all under that
//! lock. Percentiles use the nearest rank: the `p`th of `n` sorted latencies is the one at
//! rank `ceil(p/100 · n)`, counting from 1, so p50 of 100, 200, 300 ms is 200 ms and p90 is
//! 300 ms. A latency counts from the *call* to `submit`: the time a caller waited for room
//! is part of what it lived through.
//!
//! Keeping every latency and sorting them on each read is fine for an exercise; a real
//! service keeps a histogram of fixed memory (`hdrhistogram`, or a `metrics` /
//! OpenTelemetry histogram exported to Prometheus) and reads percentiles from it.
//!
//! ## Your job
//! Count each job's moves in `State::counts` (submitted, running, backing off, done,
//! failed, retried), record the latency of each job done, and write `percentile` and
//! `State::stats`.
//!
//! ## Read
//! - <https://doc.rust-lang.org/std/primitive.slice.html#method.sort_unstable>
//! - <https://doc.rust-lang.org/std/primitive.usize.html#method.div_ceil>
//! - <https://docs.rs/tokio/latest/tokio/time/struct.Instant.html#method.elapsed>
//! - <https://docs.rs/hdrhistogram/latest/hdrhistogram/>, what a real service would use.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

/// A job: its id, its priority (higher runs first), how long an attempt takes, and how its
/// attempts go: the first `hangs` attempts never finish, the next `failures` attempts fail
/// after `cost`, and the attempts after those succeed after `cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub priority: u8,
    pub cost: Duration,
    pub hangs: u32,
    pub failures: u32,
}

/// An attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure;

/// When an attempt of a job started, on the processor's clock; attempts count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub job: u64,
    pub attempt: u32,
    pub at: Duration,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Its last allowed attempt failed or timed out.
    Failed,
}

/// The pretend work: it logs when each attempt starts and draws each job on a timeline row.
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

    /// Runs attempt number `attempt` (from 1) of `job`.
    pub async fn run(&self, job: &Job, attempt: u32) -> Result<(), Failure> {
        lock(&self.starts).push(Start {
            job: job.id,
            attempt,
            at: self.origin.elapsed(),
        });
        let _span = self
            .timeline
            .span(format!("job {} (p{})", job.id, job.priority));
        if attempt <= job.hangs {
            std::future::pending::<()>().await;
        }
        sleep(job.cost).await;
        if attempt <= job.hangs + job.failures {
            Err(Failure)
        } else {
            Ok(())
        }
    }

    /// Every attempt's start so far, in order.
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
    /// The longest an attempt may take; after that it has failed.
    pub timeout: Duration,
    /// The most attempts of a job, the first one included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each one.
    pub backoff: Duration,
}

/// The wait before the retry that follows failed attempt number `attempt` (from 1):
/// `config.backoff`, doubled for each attempt after the first.
fn backoff(config: &Config, attempt: u32) -> Duration {
    config.backoff.saturating_mul(1 << (attempt - 1).min(31))
}

/// A job on its way through the queue.
#[derive(Debug, Clone, Copy)]
struct Task {
    job: Job,
    /// Attempts made so far.
    attempts: u32,
    /// When `submit` was called for it.
    submitted_at: Instant,
}

/// Where the jobs are and how they went, all read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Jobs accepted by `submit`. At every instant it equals
    /// `waiting + running + backing_off + done + failed`.
    pub submitted: u64,
    /// In the queue.
    pub waiting: u64,
    /// Being attempted by a worker.
    pub running: u64,
    /// Waiting out the backoff before their next attempt.
    pub backing_off: u64,
    pub done: u64,
    pub failed: u64,
    /// Retries so far: a job tried 3 times counts 2.
    pub retried: u64,
    /// From the call to `submit` to the end of the successful attempt, over the jobs done;
    /// `None` while no job is done.
    pub latency: Option<Latency>,
}

/// Percentiles of the latency, nearest rank: the `p`th percentile of `n` sorted values is
/// the value at rank `ceil(p/100 · n)` (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
}

/// The `p`th percentile (0 < p <= 100), nearest rank, of `sorted`, which is sorted and not
/// empty.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    // TODO: the value at rank `ceil(p/100 · n)`, counting ranks from 1.
    todo!()
}

/// A task in the heap. The heap pops the greatest entry first.
struct Queued {
    priority: u8,
    /// Taken from a counter that only grows: smaller means queued earlier.
    seq: u64,
    task: Task,
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
    /// Every job that ended, in the order they did.
    finished: Vec<(u64, Outcome)>,
    /// The counts; `waiting` is the heap's length, and `latency` is computed when read.
    counts: Stats,
    /// The latency of every job done. (A real service keeps a histogram instead.)
    latencies: Vec<Duration>,
}

impl State {
    fn stats(&self) -> Stats {
        // TODO: a copy of `counts`, with `waiting` from the heap and the percentiles of the
        // sorted latencies (`None` while there are none).
        todo!()
    }
}

impl State {
    fn push(&mut self, task: Task) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Queued {
            priority: task.job.priority,
            seq,
            task,
        });
    }
}

struct Shared {
    config: Config,
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

    /// Takes the most urgent task, waiting until there is one.
    async fn next_task(&self) -> Task {
        loop {
            let job_queued = self.job_queued.notified();
            // TODO: a job taken is running, in the same locked section.
            if let Some(queued) = self.state().heap.pop() {
                self.room_made.notify_one();
                return queued.task;
            }
            job_queued.await;
        }
    }

    /// Puts a task back in the queue, full or not, and wakes a worker.
    fn requeue(&self, task: Task) {
        // TODO: no longer backing off, in the same locked section as the push.
        self.state().push(task);
        self.job_queued.notify_one();
    }
}

/// Makes the next attempt of `task` on the calling worker: the job is then done, failed
/// for good, or on its way back to the queue after its backoff.
async fn attempt(shared: &Arc<Shared>, processor: &Processor, mut task: Task) {
    task.attempts += 1;
    let config = &shared.config;
    let result = timeout(config.timeout, processor.run(&task.job, task.attempts)).await;
    // TODO: the job is no longer running; count it done (and its latency), failed, or
    // retried and backing off. One locked section for all of it.
    let outcome = match result {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(Failure)) | Err(_) if task.attempts >= config.max_attempts => Outcome::Failed,
        Ok(Err(Failure)) | Err(_) => {
            let delay = backoff(config, task.attempts);
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                sleep(delay).await;
                shared.requeue(task);
            });
            return;
        }
    };
    shared.state().finished.push((task.job.id, outcome));
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
            config,
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
                    let task = shared.next_task().await;
                    attempt(&shared, &processor, task).await;
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
        // TODO: a latency counts from the call to `submit`.
        let submitted_at = Instant::now();
        loop {
            let room_made = self.shared.room_made.notified();
            {
                let mut state = self.shared.state();
                if state.heap.len() < self.shared.config.capacity {
                    // TODO: count it submitted.
                    state.push(Task {
                        job,
                        attempts: 0,
                        submitted_at,
                    });
                    drop(state);
                    self.shared.job_queued.notify_one();
                    return;
                }
            }
            room_made.await;
        }
    }

    /// The statistics, all read at one instant.
    pub fn stats(&self) -> Stats {
        self.shared.state().stats()
    }

    /// Every job that ended so far, with how, in the order they did.
    pub fn finished(&self) -> Vec<(u64, Outcome)> {
        self.shared.state().finished.clone()
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
        workers: 4,
        capacity: 8,
        timeout: Duration::from_millis(300),
        max_attempts: 3,
        backoff: Duration::from_millis(100),
    };
    let queue = TaskQueue::start(processor, config);
    for id in 0..20 {
        let job = Job {
            id,
            priority: (id % 3) as u8,
            cost: Duration::from_millis(20 + 37 * id % 150),
            hangs: (id % 7 == 0) as u32,
            failures: (id % 5 == 0) as u32,
        };
        queue.submit(job).await;
    }
    for _ in 0..6 {
        println!("{:?}", queue.stats());
        sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/04_projects/queue_stats.toml tries each), and steps
    // 1 and 2's (see `queue_priorities` and `queue_retries`):
    // - a count that is not moved on one of the paths (a timed-out attempt still running,
    //   a retry still backing off once back in the queue): the sum is off;
    // - a job counted done when a worker takes it, or retried counted once per job;
    // - a latency measured from when the job entered the queue (the wait for room left out),
    //   or failed jobs counted in the latencies;
    // - percentiles off by one rank, of unsorted latencies, or interpolated.
    // Not checked, and why: a torn read across separate atomics. On tokio's paused clock
    // one thread runs everything, and a `stats()` call runs between two awaits, so two
    // counters stored one after the other can never be seen half-way; only a second thread
    // reading between the two stores could, by chance, and a check that catches a bug by
    // chance is not a check. The checks do catch every split that crosses an `.await`.
    use super::*;
    use proptest::prelude::*;

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

    fn job(id: u64, cost: u64, failures: u32) -> Job {
        Job {
            id,
            priority: 0,
            cost: ms(cost),
            hangs: 0,
            failures,
        }
    }

    fn config(workers: usize, capacity: usize) -> Config {
        Config {
            workers,
            capacity,
            timeout: ms(300),
            max_attempts: 2,
            backoff: ms(150),
        }
    }

    fn setup(config: Config) -> (Timeline, TaskQueue) {
        let timeline = Timeline::new();
        let queue = TaskQueue::start(Processor::new(timeline.clone()), config);
        (timeline, queue)
    }

    /// The counts only: (waiting, running, backing off, done, failed, retried).
    fn counts(stats: &Stats) -> (u64, u64, u64, u64, u64, u64) {
        (
            stats.waiting,
            stats.running,
            stats.backing_off,
            stats.done,
            stats.failed,
            stats.retried,
        )
    }

    fn latency(p50: u64, p90: u64, p99: u64) -> Option<Latency> {
        Some(Latency {
            p50: ms(p50),
            p90: ms(p90),
            p99: ms(p99),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn the_counts_follow_each_job_through_the_queue() {
        let (timeline, queue) = setup(config(1, 4));
        submit(&queue, job(0, 100, 1)).await; // fails once, done at 400 ms
        submit(&queue, job(1, 100, 0)).await; // done at 200 ms
        submit(&queue, job(2, 100, 9)).await; // fails at 300 and 550 ms: failed
        let expected = [
            // (at ms, (waiting, running, backing off, done, failed, retried))
            (50, (2, 1, 0, 0, 0, 0)),
            (120, (1, 1, 1, 0, 0, 1)),
            (220, (0, 1, 1, 1, 0, 1)),
            (270, (1, 1, 0, 1, 0, 1)),
            (320, (0, 1, 1, 1, 0, 2)),
            (420, (0, 0, 1, 2, 0, 2)),
            (500, (0, 1, 0, 2, 0, 2)),
            (600, (0, 0, 0, 2, 1, 2)),
        ];
        let mut now = 0;
        for (at, want) in expected {
            sleep(ms(at - now)).await;
            now = at;
            let stats = queue.stats();
            assert_eq!(
                (stats.submitted, counts(&stats)),
                (3, want),
                "(submitted, (waiting, running, backing off, done, failed, retried)) at \
                 {at} ms. Job 0 fails at 100 ms and is back at 250 ms, job 1 is done at 200 ms, \
                 job 2 fails at 300 ms, is back at 450 ms and fails for good at 550 ms\n{}",
                timeline.picture("one worker: 0, 1, 2, 0 again, 2 again")
            );
        }
        assert_eq!(
            queue.stats().latency,
            latency(200, 400, 400),
            "latencies of the jobs done: 200 ms (job 1) and 400 ms (job 0, retry included); \
             job 2 failed and does not count"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn percentiles_are_nearest_rank_over_sorted_latencies() {
        let (_timeline, queue) = setup(config(100, 100));
        assert_eq!(queue.stats().latency, None, "no job done yet");
        // 100 jobs that take 1 to 100 ms, all at once: each one's latency is its cost.
        for n in 0..100 {
            let cost = 1 + (n * 37) % 100; // 1..=100, shuffled
            submit(&queue, job(n, cost, 0)).await;
        }
        sleep(ms(101)).await;
        let stats = queue.stats();
        assert_eq!(stats.done, 100);
        assert_eq!(
            stats.latency,
            latency(50, 90, 99),
            "latencies 1, 2 ... 100 ms (submitted in another order): p50 is the 50th, p90 the \
             90th, p99 the 99th"
        );
        submit(&queue, job(100, 1, 0)).await;
        sleep(ms(2)).await;
        assert_eq!(
            queue.stats().latency,
            latency(50, 90, 99),
            "one more latency of 1 ms, the last to finish: the 101 sorted latencies are 1, 1, \
             2 ... 100 ms; p50 is the 51st (50 ms), p90 the 91st, p99 the 100th"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_latency_counts_from_the_call_to_submit() {
        let (timeline, queue) = setup(config(1, 1));
        submit(&queue, job(0, 100, 0)).await;
        tokio::task::yield_now().await; // the worker takes job 0
        submit(&queue, job(1, 100, 0)).await;
        // The queue is full: this `submit` waits until 100 ms, its job is done at 300 ms.
        tokio::time::timeout(ms(1000), queue.submit(job(2, 100, 0)))
            .await
            .expect("`submit` into the full queue never returned: is the worker running?");
        sleep(ms(201)).await;
        let stats = queue.stats();
        assert_eq!(
            (stats.done, stats.latency),
            (3, latency(200, 300, 300)),
            "latencies 100, 200 and 300 ms: job 2's `submit` was called at 0 ms, and its \
             wait for room counts\n{}",
            timeline.picture("jobs at 0, 100 and 200 ms")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

        /// Random jobs on 1 to 3 workers, statistics read every 7 ms while they run: every
        /// read adds up, and at the end every job is counted done or failed once.
        #[test]
        fn every_read_adds_up_while_the_work_runs(
            workers in 1usize..4,
            jobs in prop::collection::vec((0u8..3, 1u64..60, 0u32..2, 0u32..3), 1..10),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let config = Config { max_attempts: 3, ..config(workers, 4) };
                let processor = Processor::new(Timeline::new());
                let queue = Arc::new(TaskQueue::start(processor.clone(), config));
                let submitter = tokio::spawn({
                    let queue = Arc::clone(&queue);
                    let jobs = jobs.clone();
                    async move {
                        for (id, (priority, cost, hangs, failures)) in jobs.into_iter().enumerate() {
                            let job = Job { id: id as u64, priority, cost: ms(cost), hangs, failures };
                            submit(&queue, job).await;
                        }
                    }
                });
                let mut reads = 0;
                loop {
                    let stats = queue.stats();
                    let placed = stats.waiting + stats.running + stats.backing_off + stats.done + stats.failed;
                    prop_assert_eq!(stats.submitted, placed, "{:?} at read {}: a job is in no place, or in two", stats, reads);
                    prop_assert!(stats.running <= workers as u64, "{:?}", stats);
                    if submitter.is_finished() && stats.done + stats.failed == jobs.len() as u64 {
                        break;
                    }
                    reads += 1;
                    prop_assert!(reads < 3000, "the jobs never all ended: {:?}", stats);
                    sleep(ms(7)).await;
                }
                let stats = queue.stats();
                let fails = |&(_, _, hangs, failures): &(u8, u64, u32, u32)| hangs + failures;
                let done = jobs.iter().filter(|job| fails(job) < 3).count() as u64;
                let retried: u64 = jobs.iter().map(|job| u64::from(fails(job).min(2))).sum();
                prop_assert_eq!(
                    (stats.done, stats.failed, stats.retried),
                    (done, jobs.len() as u64 - done, retried),
                    "(done, failed, retried) at the end"
                );
                prop_assert_eq!(stats.latency.is_some(), done > 0);
                prop_assert_eq!(
                    processor.starts().len() as u64,
                    jobs.len() as u64 + stats.retried,
                    "every attempt after a job's first is a retry"
                );
                let mut finished = queue.finished();
                finished.sort_unstable_by_key(|&(id, _)| id);
                prop_assert_eq!(finished.len(), jobs.len(), "every job is in `finished` once");
                for (id, outcome) in finished {
                    let expected = if fails(&jobs[id as usize]) < 3 { Outcome::Done } else { Outcome::Failed };
                    prop_assert_eq!(outcome, expected, "how job {} ended", id);
                }
                Ok(())
            })?;
        }
    }
}

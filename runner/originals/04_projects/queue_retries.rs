//! # Task queue, step 2 of 4: per-attempt timeouts, retries with backoff
//!
//! *This step adds:* failure handling. The priority queue of step 1 is here, solved. Jobs
//! fail: the mail server answers "try later", the image store times out. So each attempt
//! gets a time limit (`config.timeout`, with `tokio::time::timeout`: an attempt that hangs
//! would otherwise hold its worker for ever), and a failed or timed-out attempt is tried
//! again, up to `config.max_attempts` attempts in all; after the last one the job is
//! recorded as failed. Between attempts the job waits `backoff`, doubling each time
//! (`backoff`, `2·backoff`, `4·backoff`...), so that a struggling dependency gets air.
//! (Python: `asyncio.wait_for(job(), timeout)` in the worker, and
//! `loop.call_later(delay, queue.put_nowait, item)` to put it back.)
//!
//! Chapter 2's `retry_backoff` retried inside one call: the caller waited through every
//! backoff. A queue must not do that: a worker sleeping through a job's backoff is a worker
//! not running the jobs behind it. So the worker hands the failed job to a small spawned
//! task that sleeps the backoff, then puts the job back in the queue with its priority, and
//! the worker takes the next job at once. A job put back this way was admitted once
//! already, so it goes in even when the queue is full (it does not wait behind `submit`s).
//!
//! The attempts of a job on the paused clock, with `backoff` = 100 ms, each attempt failing
//! after 50 ms and nothing else in the queue: attempt 1 at 0 ms, attempt 2 at 150 ms
//! (50 + 100), attempt 3 at 400 ms (200 + 200), attempt 4 at 850 ms (450 + 400).
//!
//! ## Your job
//! Write `backoff` (the wait after a given failed attempt) and `attempt` (run one attempt
//! under the timeout, then record the job done, record it failed, or spawn its retry).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html>
//! - <https://docs.rs/tokio/latest/tokio/fn.spawn.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.sleep.html>
//! - A real job queue keeps the attempt count and the time of the next try with the job
//!   (e.g. `apalis`'s retry layer: <https://docs.rs/apalis/latest/apalis/>), so that a
//!   restart does not forget them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::sync::Notify;
use tokio::task::JoinSet;
#[allow(unused_imports)] // TODO: you will need `timeout`.
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
    // TODO: `backoff`, `2·backoff`, `4·backoff`... (`Duration::saturating_mul`).
    todo!()
}

/// A job on its way through the queue.
#[derive(Debug, Clone, Copy)]
struct Task {
    job: Job,
    /// Attempts made so far.
    attempts: u32,
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
            if let Some(queued) = self.state().heap.pop() {
                self.room_made.notify_one();
                return queued.task;
            }
            job_queued.await;
        }
    }

    /// Puts a task back in the queue, full or not, and wakes a worker.
    fn requeue(&self, task: Task) {
        self.state().push(task);
        self.job_queued.notify_one();
    }
}

/// Makes the next attempt of `task` on the calling worker: the job is then done, failed
/// for good, or on its way back to the queue after its backoff.
async fn attempt(shared: &Arc<Shared>, processor: &Processor, mut task: Task) {
    // TODO: count the attempt and run it under `shared.config.timeout`. Success: record the
    // job done in `finished`. A failure or a timeout: after `max_attempts` attempts, record
    // it failed; before, spawn a task that sleeps `backoff(..)` and then `requeue`s it, so
    // that this worker takes the next job at once.
    todo!()
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
        loop {
            let room_made = self.shared.room_made.notified();
            {
                let mut state = self.shared.state();
                if state.heap.len() < self.shared.config.capacity {
                    state.push(Task { job, attempts: 0 });
                    drop(state);
                    self.shared.job_queued.notify_one();
                    return;
                }
            }
            room_made.await;
        }
    }

    /// How many jobs are waiting (not those running or waiting for a retry).
    pub fn waiting(&self) -> usize {
        self.shared.state().heap.len()
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
        workers: 2,
        capacity: 8,
        timeout: Duration::from_millis(300),
        max_attempts: 3,
        backoff: Duration::from_millis(100),
    };
    let queue = TaskQueue::start(processor.clone(), config);
    let cost = Duration::from_millis(100);
    let jobs = [
        (0, 5, 0, 1), // fails once, then succeeds
        (1, 5, 1, 0), // hangs once (cut at 300 ms), then succeeds
        (2, 1, 0, 9), // always fails: 3 attempts, then failed
        (3, 1, 0, 0),
    ];
    for (id, priority, hangs, failures) in jobs {
        let job = Job {
            id,
            priority,
            cost,
            hangs,
            failures,
        };
        queue.submit(job).await;
    }
    sleep(Duration::from_secs(2)).await;
    for start in processor.starts() {
        println!(
            "job {} attempt {} at {:?}",
            start.job, start.attempt, start.at
        );
    }
    println!("{:?}", queue.finished());
    println!("{}", timeline.picture("retries after 100 ms, then 200 ms"));
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/04_projects/queue_retries.toml tries each), and
    // step 1's (see `queue_priorities`):
    // - no timeout (a hanging attempt holds its worker for ever), or one timeout around
    //   all the attempts;
    // - a backoff that does not double, or doubles once too often;
    // - one attempt too many or too few (`>` for `>=`), or a failure never recorded;
    // - a worker that sleeps through the backoff itself (the jobs behind it wait);
    // - a retry that goes back with the lowest priority, or waits for room like `submit`
    //   (a full queue of new jobs keeps it out);
    // - a retry put back at once, without its backoff.
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

    fn job(id: u64, priority: u8, cost: u64) -> Job {
        Job {
            id,
            priority,
            cost: ms(cost),
            hangs: 0,
            failures: 0,
        }
    }

    fn config(workers: usize, capacity: usize) -> Config {
        Config {
            workers,
            capacity,
            timeout: ms(300),
            max_attempts: 4,
            backoff: ms(100),
        }
    }

    fn setup(config: Config) -> (Timeline, Processor, TaskQueue) {
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let queue = TaskQueue::start(processor.clone(), config);
        (timeline, processor, queue)
    }

    /// (job, attempt, started at ms)
    fn starts(processor: &Processor) -> Vec<(u64, u32, u64)> {
        processor
            .starts()
            .iter()
            .map(|start| (start.job, start.attempt, start.at.as_millis() as u64))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_job_is_retried_after_doubling_waits_then_recorded_failed() {
        let (timeline, processor, queue) = setup(config(1, 4));
        submit(
            &queue,
            Job {
                failures: 10,
                ..job(0, 0, 50)
            },
        )
        .await;
        sleep(ms(5000)).await;
        assert_eq!(
            starts(&processor),
            vec![(0, 1, 0), (0, 2, 150), (0, 3, 400), (0, 4, 850)],
            "(job, attempt, started at ms): each attempt fails after 50 ms, then waits \
             100, 200, 400 ms; 4 attempts at most\n{}",
            timeline.picture("attempts at 0, 150, 400 and 850 ms")
        );
        assert_eq!(
            queue.finished(),
            vec![(0, Outcome::Failed)],
            "after its 4th failed attempt the job is recorded as failed, once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_fails_then_succeeds_is_done() {
        let (timeline, processor, queue) = setup(config(1, 4));
        submit(
            &queue,
            Job {
                failures: 3,
                ..job(0, 0, 50)
            },
        )
        .await;
        sleep(ms(899)).await;
        assert_eq!(queue.finished(), vec![], "the 4th attempt ends at 900 ms");
        sleep(ms(2)).await;
        assert_eq!(
            queue.finished(),
            vec![(0, Outcome::Done)],
            "3 failures, then the 4th and last allowed attempt succeeds at 900 ms\n{}",
            timeline.picture("attempts at 0, 150, 400 and 850 ms")
        );
        sleep(ms(5000)).await;
        assert_eq!(processor.starts().len(), 4, "a job done is not run again");
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_is_cut_at_the_timeout() {
        let (timeline, processor, queue) = setup(config(1, 4));
        submit(
            &queue,
            Job {
                hangs: 2,
                ..job(0, 0, 50)
            },
        )
        .await;
        sleep(ms(5000)).await;
        assert_eq!(
            starts(&processor),
            vec![(0, 1, 0), (0, 2, 400), (0, 3, 900)],
            "(job, attempt, started at ms): attempts 1 and 2 hang; each is cut after 300 ms, \
             then waits 100, then 200 ms; attempt 3 succeeds\n{}",
            timeline.picture("attempts at 0, 400 and 900 ms, the first two 300 ms long")
        );
        assert_eq!(queue.finished(), vec![(0, Outcome::Done)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_waiting_for_its_retry_does_not_hold_a_worker() {
        let (timeline, processor, queue) = setup(config(1, 4));
        submit(
            &queue,
            Job {
                failures: 1,
                ..job(0, 0, 100)
            },
        )
        .await;
        submit(&queue, job(1, 0, 100)).await;
        submit(&queue, job(2, 0, 100)).await;
        sleep(ms(1000)).await;
        assert_eq!(
            starts(&processor),
            vec![(0, 1, 0), (1, 1, 100), (2, 1, 200), (0, 2, 300)],
            "(job, attempt, started at ms): job 0 fails at 100 ms and waits 100 ms for its \
             retry; meanwhile the worker runs jobs 1 and 2\n{}",
            timeline.picture("the worker busy from 0 to 400 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_goes_back_with_its_priority_even_into_a_full_queue() {
        let (timeline, processor, queue) = setup(config(1, 2));
        submit(
            &queue,
            Job {
                failures: 1,
                ..job(0, 7, 100)
            },
        )
        .await;
        tokio::task::yield_now().await; // the worker takes job 0
        submit(&queue, job(1, 1, 150)).await;
        submit(&queue, job(2, 1, 100)).await;
        // Job 0 fails at 100 ms; job 1 runs; the queue fills again with job 3.
        timeout(ms(1000), queue.submit(job(3, 1, 100)))
            .await
            .expect("`submit` into the full queue never returned: is the worker running?");
        assert_eq!(queue.waiting(), 2);
        sleep(ms(1000)).await;
        assert_eq!(
            starts(&processor),
            vec![
                (0, 1, 0),
                (1, 1, 100),
                (0, 2, 250),
                (2, 1, 350),
                (3, 1, 450)
            ],
            "(job, attempt, started at ms): job 0 (priority 7) is back in the queue at \
             200 ms, full or not, and runs when job 1 ends, before jobs 2 and 3 \
             (priority 1)\n{}",
            timeline.picture("job 0 again at 250 ms")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Jobs with random hangs and failures on 1 to 3 workers: each job gets
        /// min(hangs + failures + 1, max_attempts) attempts, each after the previous one
        /// ended plus its backoff, and ends once, done or failed as its attempts say.
        #[test]
        fn every_job_gets_its_attempts_and_ends_once(
            workers in 1usize..4,
            max_attempts in 1u32..5,
            jobs in prop::collection::vec((0u8..3, 1u64..50, 0u32..3, 0u32..4), 1..12),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let config = Config { max_attempts, ..config(workers, 16) };
                let (timeline, processor, queue) = setup(config);
                for (id, &(priority, cost, hangs, failures)) in jobs.iter().enumerate() {
                    let job = Job { id: id as u64, priority, cost: ms(cost), hangs, failures };
                    submit(&queue, job).await;
                }
                sleep(ms(60_000)).await;
                prop_assert!(timeline.peak_in_flight() <= workers);
                let starts = processor.starts();
                let mut finished = queue.finished();
                finished.sort_unstable_by_key(|&(id, _)| id);
                let mut expected = Vec::new();
                for (id, &(_, cost, hangs, failures)) in jobs.iter().enumerate() {
                    let id = id as u64;
                    let attempts: Vec<&Start> = starts.iter().filter(|s| s.job == id).collect();
                    let tries = (hangs + failures + 1).min(max_attempts);
                    prop_assert_eq!(attempts.len() as u32, tries, "attempts of job {}", id);
                    for pair in attempts.windows(2) {
                        let (before, after) = (pair[0], pair[1]);
                        let took = if before.attempt <= hangs { ms(300) } else { ms(cost) };
                        let earliest = before.at + took + ms(100) * (1 << (before.attempt - 1));
                        prop_assert_eq!(after.attempt, before.attempt + 1);
                        prop_assert!(
                            after.at >= earliest,
                            "job {} attempt {} at {:?}, before its backoff ended at {:?}",
                            id, after.attempt, after.at, earliest
                        );
                    }
                    let outcome = if hangs + failures < max_attempts {
                        Outcome::Done
                    } else {
                        Outcome::Failed
                    };
                    expected.push((id, outcome));
                }
                prop_assert_eq!(finished, expected, "each job ends once, done or failed");
                Ok(())
            })?;
        }
    }
}

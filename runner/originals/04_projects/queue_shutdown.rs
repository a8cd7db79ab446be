//! # Task queue, step 4 of 4: graceful shutdown
//!
//! *This step adds:* a shutdown that loses nothing. The queue of step 3 is here, solved.
//! A service is stopped many times a day: a deploy, a scale-down, a node drained. If the
//! queue is simply dropped, every job waiting, backing off or half-run is gone, and the
//! e-mails are never sent. A graceful `shutdown` first refuses new work (`submit` returns
//! `Err(Rejected(job))`, with the job, so the caller can put it elsewhere; a `submit`
//! waiting for room is refused too), then, per `mode`:
//! - `Mode::Drain`: run everything already accepted, retries included, then end;
//! - `Mode::HandBack`: give back at once the jobs waiting or backing off (to be saved, or
//!   sent to another instance), and let only the running attempts finish.
//!
//! Either way there is a deadline, `grace` from the call (a deploy does not wait for
//! ever): the attempts still running then are cancelled, and their jobs handed back too.
//! The property: every job `submit` accepted ends exactly once, done, failed after its
//! retries, or handed back. For that the queue must know, at every instant, where each job
//! is. A job in the heap is easy; a running job lives in a worker's future, and cancelling
//! that future would lose it, so the worker also notes it in `State::running` (and a job
//! backing off, in `State::backing_off`) under the lock, and `shutdown` finds them there.
//! (Python: `asyncio.wait_for(queue.join(), grace)`, then `task.cancel()` for each worker,
//! and emptying the queue with `get_nowait()` to hand the jobs back.)
//!
//! A real service gets its shutdown signal from `tokio::signal` and passes it around as a
//! `tokio_util::sync::CancellationToken`; a database-backed queue hands jobs back by simply
//! not marking them done (another instance picks them up after a lease expires).
//!
//! ## Your job
//! Write `submit`'s refusal, `next_task`'s end (when does a worker stop?), and `shutdown`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html#method.join_next>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html#method.shutdown>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout_at.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Notify.html#method.notify_waiters>
//! - <https://docs.rs/tokio-util/latest/tokio_util/sync/struct.CancellationToken.html>

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
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
    /// Its number in the queue, from a counter that only grows.
    ticket: u64,
}

/// Where the jobs are and how they went, all read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Jobs accepted by `submit`. At every instant it equals
    /// `waiting + running + backing_off + done + failed + handed_back`.
    pub submitted: u64,
    /// In the queue.
    pub waiting: u64,
    /// Being attempted by a worker.
    pub running: u64,
    /// Waiting out the backoff before their next attempt.
    pub backing_off: u64,
    pub done: u64,
    pub failed: u64,
    /// Given back to the caller of `shutdown`, never to be run by this queue.
    pub handed_back: u64,
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
    let rank = (sorted.len() * p).div_ceil(100);
    sorted[rank - 1]
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

/// How `shutdown` treats the jobs not yet run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run every job already accepted (their retries too) before the deadline.
    Drain,
    /// Give back the jobs waiting or backing off at once; only the running attempts go on.
    HandBack,
}

/// A job `submit` refused: the queue is shutting down. The job comes back to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub Job);

/// Where every job accepted and not ended is: in the heap, running, or backing off. A job
/// moves from one place to another in one locked section, so it is always in exactly one.
#[derive(Default)]
struct State {
    heap: BinaryHeap<Queued>,
    next_seq: u64,
    running: HashMap<u64, Task>,
    backing_off: HashMap<u64, Task>,
    /// Set by `shutdown`: no more `submit`s.
    closing: Option<Mode>,
    /// Every job that ended, in the order they did.
    finished: Vec<(u64, Outcome)>,
    /// The counts; `waiting`, `running` and `backing_off` are the places' sizes, and
    /// `latency` is computed when read.
    counts: Stats,
    /// The latency of every job done. (A real service keeps a histogram instead.)
    latencies: Vec<Duration>,
}

impl State {
    fn stats(&self) -> Stats {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        Stats {
            waiting: self.heap.len() as u64,
            running: self.running.len() as u64,
            backing_off: self.backing_off.len() as u64,
            latency: (!sorted.is_empty()).then(|| Latency {
                p50: percentile(&sorted, 50),
                p90: percentile(&sorted, 90),
                p99: percentile(&sorted, 99),
            }),
            ..self.counts
        }
    }

    fn push(&mut self, task: Task) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Queued {
            priority: task.job.priority,
            seq,
            task,
        });
    }

    /// Takes the jobs out of `places`, counted as handed back.
    fn hand_back(&mut self, places: &[Place]) -> Vec<Job> {
        let mut jobs = Vec::new();
        for place in places {
            match place {
                Place::Waiting => jobs.extend(self.heap.drain().map(|queued| queued.task.job)),
                Place::BackingOff => {
                    jobs.extend(self.backing_off.drain().map(|(_, task)| task.job))
                }
                Place::Running => jobs.extend(self.running.drain().map(|(_, task)| task.job)),
            }
        }
        self.counts.handed_back += jobs.len() as u64;
        jobs
    }
}

enum Place {
    Waiting,
    BackingOff,
    Running,
}

struct Shared {
    config: Config,
    state: Mutex<State>,
    /// Wakes a worker: a job was queued, or the queue is closing.
    job_queued: Notify,
    /// Wakes a `submit`: a job left the queue, there is room, or the queue is closing.
    room_made: Notify,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes the most urgent task and marks it running, waiting until there is one; `None`
    /// once the worker should end: the queue is closing and will have nothing more for it.
    async fn next_task(&self) -> Option<Task> {
        loop {
            let job_queued = self.job_queued.notified();
            let taken = {
                let mut state = self.state();
                // TODO: once closing, say when this worker should end (`None`): at once for a
                // hand-back; for a drain, once nothing waits, backs off or runs. The last
                // worker to see that must wake the others, idle in `job_queued.await`.
                let taken = state.heap.pop();
                if let Some(queued) = &taken {
                    state.running.insert(queued.task.ticket, queued.task);
                }
                taken
            };
            if let Some(queued) = taken {
                self.room_made.notify_one();
                return Some(queued.task);
            }
            job_queued.await;
        }
    }

    /// Puts a task back in the queue after its backoff, full or not, and wakes a worker;
    /// unless `shutdown` has handed it back meanwhile.
    fn requeue(&self, ticket: u64) {
        let mut state = self.state();
        let Some(task) = state.backing_off.remove(&ticket) else {
            return;
        };
        state.push(task);
        drop(state);
        self.job_queued.notify_one();
    }
}

/// Makes the next attempt of `task` on the calling worker: the job is then done, failed
/// for good, or on its way back to the queue after its backoff. Cancelled, it stays in
/// `running`, where `shutdown` finds it.
async fn attempt(shared: &Arc<Shared>, processor: &Processor, mut task: Task) {
    task.attempts += 1;
    let config = &shared.config;
    let result = timeout(config.timeout, processor.run(&task.job, task.attempts)).await;
    // Every change of one attempt's end happens under one lock: a reader sees the job
    // running, or sees it done (failed, backing off), never both or neither.
    let mut state = shared.state();
    state.running.remove(&task.ticket);
    let outcome = match result {
        Ok(Ok(())) => {
            state.counts.done += 1;
            state.latencies.push(task.submitted_at.elapsed());
            Outcome::Done
        }
        Ok(Err(Failure)) | Err(_) if task.attempts >= config.max_attempts => {
            state.counts.failed += 1;
            Outcome::Failed
        }
        Ok(Err(Failure)) | Err(_) => {
            state.counts.retried += 1;
            state.backing_off.insert(task.ticket, task);
            drop(state);
            let delay = backoff(config, task.attempts);
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                sleep(delay).await;
                shared.requeue(task.ticket);
            });
            return;
        }
    };
    state.finished.push((task.job.id, outcome));
}

/// A priority queue of jobs and the workers that run them.
pub struct TaskQueue {
    shared: Arc<Shared>,
    /// Taken by `shutdown`; dropping the set aborts the workers.
    workers: Mutex<JoinSet<()>>,
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
                while let Some(task) = shared.next_task().await {
                    attempt(&shared, &processor, task).await;
                }
            });
        }
        TaskQueue {
            shared,
            workers: Mutex::new(workers),
        }
    }

    /// Queues `job`, waiting while `capacity` jobs are waiting. Once the queue is shutting
    /// down, even while it waited, it refuses the job and gives it back.
    pub async fn submit(&self, job: Job) -> Result<(), Rejected> {
        let submitted_at = Instant::now();
        loop {
            let room_made = self.shared.room_made.notified();
            {
                let mut state = self.shared.state();
                // TODO: once the queue is closing, refuse the job.
                if state.heap.len() < self.shared.config.capacity {
                    state.counts.submitted += 1;
                    let ticket = state.next_seq;
                    state.push(Task {
                        job,
                        attempts: 0,
                        submitted_at,
                        ticket,
                    });
                    drop(state);
                    self.shared.job_queued.notify_one();
                    return Ok(());
                }
            }
            room_made.await;
        }
    }

    /// Shuts the queue down: refuses new jobs at once, then, per `mode`, runs or hands back
    /// the jobs accepted, and gives the running attempts until `grace` from now to finish.
    /// At that deadline the attempts still running are cancelled. Returns every job handed
    /// back (in no particular order): each job accepted is then done, failed, or in there.
    pub async fn shutdown(&self, mode: Mode, grace: Duration) -> Vec<Job> {
        // TODO: mark the queue closing (for a hand-back, take the jobs waiting and backing
        // off now), wake whoever waits on the two `Notify`s, wait for the workers to end
        // until the deadline, cancel those still running then, and hand back every job
        // left in a place (`State::hand_back`).
        todo!()
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
    let config = Config {
        workers: 2,
        capacity: 8,
        timeout: Duration::from_millis(300),
        max_attempts: 3,
        backoff: Duration::from_millis(100),
    };
    let queue = TaskQueue::start(Processor::new(timeline.clone()), config);
    for id in 0..6 {
        let job = Job {
            id,
            priority: 0,
            cost: Duration::from_millis(120),
            hangs: 0,
            failures: (id == 1) as u32,
        };
        queue.submit(job).await.expect("the queue is open");
    }
    sleep(Duration::from_millis(150)).await;
    let handed_back = queue
        .shutdown(Mode::HandBack, Duration::from_millis(50))
        .await;
    let ids: Vec<u64> = handed_back.iter().map(|job| job.id).collect();
    println!("handed back: {ids:?}");
    println!("finished: {:?}", queue.finished());
    println!("{:?}", queue.stats());
    println!(
        "{}",
        timeline.picture("shutdown at 150 ms, running attempts cut at 200 ms")
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/04_projects/queue_shutdown.toml tries each), and
    // steps 1 to 3's (see `queue_priorities`, `queue_retries` and `queue_stats`):
    // - a queue that loses jobs on shutdown: the jobs backing off, or the running ones
    //   cancelled at the deadline, never handed back;
    // - a job both handed back and run (handed back while running, and then done);
    // - a drain that stops once the heap is empty, with retries still to come;
    // - no deadline (waits for the running attempts however long), or none of the grace
    //   (cancels them at once); `HandBack` treated as `Drain`;
    // - a `submit` accepted after shutdown (the job never runs), or one waiting for room
    //   that is never woken to be refused.
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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

    fn setup(config: Config) -> (Timeline, Processor, TaskQueue) {
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let queue = TaskQueue::start(processor.clone(), config);
        (timeline, processor, queue)
    }

    async fn submit_all(queue: &TaskQueue, jobs: &[Job]) {
        for &job in jobs {
            tokio::time::timeout(ms(60_000), queue.submit(job))
                .await
                .expect("`submit` never returned, though the workers were taking jobs")
                .expect("the queue is open");
        }
    }

    fn ids(jobs: &[Job]) -> Vec<u64> {
        let mut ids: Vec<u64> = jobs.iter().map(|job| job.id).collect();
        ids.sort_unstable();
        ids
    }

    fn sorted(mut finished: Vec<(u64, Outcome)>) -> Vec<(u64, Outcome)> {
        finished.sort_unstable_by_key(|&(id, _)| id);
        finished
    }

    #[tokio::test(start_paused = true)]
    async fn drain_runs_every_job_accepted_retries_included_then_refuses_more() {
        let (timeline, _processor, queue) = setup(config(1, 4));
        let start = Instant::now();
        submit_all(&queue, &[job(0, 100, 0), job(1, 100, 1), job(2, 100, 0)]).await;
        sleep(ms(50)).await;
        let shutdown = tokio::time::timeout(ms(10_000), queue.shutdown(Mode::Drain, ms(5000)));
        let handed_back = shutdown.await.expect("shutdown never returned");
        let picture = timeline.picture("job 1 fails at 200 ms, runs again from 350 to 450 ms");
        assert_eq!(
            start.elapsed(),
            ms(450),
            "a drain ends when the last job is done: job 1 fails at 200 ms, waits its \
             backoff until 350 ms, and is done at 450 ms\n{picture}"
        );
        assert_eq!(
            ids(&handed_back),
            vec![],
            "a drain in time hands nothing back"
        );
        assert_eq!(
            queue.stats().latency,
            Some(Latency {
                p50: ms(300),
                p90: ms(450),
                p99: ms(450)
            }),
            "the latencies are 100, 300 and 450 ms"
        );
        assert_eq!(
            sorted(queue.finished()),
            vec![(0, Outcome::Done), (1, Outcome::Done), (2, Outcome::Done)]
        );
        assert_eq!(
            queue.submit(job(3, 100, 0)).await,
            Err(Rejected(job(3, 100, 0))),
            "after shutdown, `submit` refuses the job and gives it back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hand_back_returns_the_jobs_not_running_and_lets_the_running_ones_finish() {
        let (timeline, processor, queue) = setup(config(2, 8));
        let start = Instant::now();
        let jobs = [
            job(0, 200, 0),
            job(1, 50, 1),  // fails at 50 ms, backs off until 200 ms
            job(2, 100, 0), // runs from 50 to 150 ms
            job(3, 100, 0),
            job(4, 100, 0),
        ];
        submit_all(&queue, &jobs).await;
        sleep(ms(100)).await;
        let stats = queue.stats();
        assert_eq!(
            (
                stats.waiting,
                stats.running,
                stats.backing_off,
                stats.retried
            ),
            (2, 2, 1, 1),
            "(waiting, running, backing off, retried) at 100 ms, before the shutdown"
        );
        let handed_back = queue.shutdown(Mode::HandBack, ms(1000)).await;
        let picture = timeline.picture("jobs 0 and 2 run to their end, at 200 and 150 ms");
        assert_eq!(
            ids(&handed_back),
            vec![1, 3, 4],
            "at 100 ms, jobs 3 and 4 wait and job 1 backs off: all three are handed back\n\
             {picture}"
        );
        assert_eq!(
            start.elapsed(),
            ms(200),
            "shutdown returns when the running jobs are done, at 200 ms\n{picture}"
        );
        assert_eq!(
            sorted(queue.finished()),
            vec![(0, Outcome::Done), (2, Outcome::Done)]
        );
        sleep(ms(1000)).await;
        assert_eq!(
            processor.starts().len(),
            3,
            "nothing runs after a hand-back: jobs 0, 1 and 2 once, and the retry of job 1 never"
        );
        let stats = queue.stats();
        assert_eq!(
            (
                stats.submitted,
                stats.done,
                stats.handed_back,
                stats.waiting,
                stats.backing_off
            ),
            (5, 2, 3, 0, 0),
            "(submitted, done, handed back, waiting, backing off) after the shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_still_running_at_the_deadline_are_cancelled_and_handed_back() {
        let (timeline, _processor, queue) = setup(config(1, 8));
        let start = Instant::now();
        submit_all(
            &queue,
            &[
                job(0, 100, 0),
                job(1, 100, 0),
                job(2, 100, 0),
                job(3, 100, 0),
            ],
        )
        .await;
        let handed_back = queue.shutdown(Mode::Drain, ms(250)).await;
        let picture = timeline.picture("jobs 0 and 1 done, job 2 cut at 250 ms");
        assert_eq!(
            start.elapsed(),
            ms(250),
            "a drain stops at its deadline, 250 ms\n{picture}"
        );
        assert_eq!(
            ids(&handed_back),
            vec![2, 3],
            "at the deadline job 2 is running (cancelled) and job 3 waits: both handed back\n\
             {picture}"
        );
        assert_eq!(
            sorted(queue.finished()),
            vec![(0, Outcome::Done), (1, Outcome::Done)]
        );
        let stats = queue.stats();
        assert_eq!(
            (stats.running, stats.handed_back),
            (0, 2),
            "(running, handed back) after the shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_workers_end_at_once() {
        for mode in [Mode::Drain, Mode::HandBack] {
            let (_timeline, _processor, queue) = setup(config(3, 8));
            submit_all(&queue, &[job(0, 100, 0)]).await;
            sleep(ms(200)).await;
            let start = Instant::now();
            let handed_back = queue.shutdown(mode, ms(1000)).await;
            assert_eq!(
                (start.elapsed(), ids(&handed_back)),
                (ms(0), vec![]),
                "(time to shut down, jobs handed back) for {mode:?} with 3 idle workers and \
                 an empty queue: the workers sleep on `job_queued`, and must be woken to end"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_submit_waiting_for_room_is_refused_with_its_job() {
        let (_timeline, _processor, queue) = setup(config(1, 1));
        let queue = Arc::new(queue);
        submit_all(&queue, &[job(0, 100, 0)]).await;
        tokio::task::yield_now().await; // the worker takes job 0
        submit_all(&queue, &[job(1, 100, 0)]).await;
        let waiting = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move { queue.submit(job(2, 100, 0)).await }
        });
        sleep(ms(10)).await;
        let handed_back = queue.shutdown(Mode::HandBack, ms(1000)).await;
        assert_eq!(ids(&handed_back), vec![1]);
        let refused = tokio::time::timeout(ms(1000), waiting)
            .await
            .expect("the `submit` waiting for room was never woken by the shutdown")
            .expect("the submitting task panicked");
        assert_eq!(
            refused,
            Err(Rejected(job(2, 100, 0))),
            "a `submit` waiting for room when the shutdown starts is refused, with its job"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        /// Random jobs submitted over time, a shutdown at a random instant, either mode,
        /// any grace: every job submitted ends exactly once, done, failed, handed back or
        /// refused, and nothing starts after the shutdown returned.
        #[test]
        fn every_job_ends_exactly_once(
            workers in 1usize..4,
            jobs in prop::collection::vec((0u64..40, 0u8..3, 1u64..80, 0u32..2, 0u32..4), 1..14),
            shutdown_at in 0u64..1500,
            drain in any::<bool>(),
            grace in 0u64..500,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let config = Config { max_attempts: 3, ..config(workers, 3) };
                let (_timeline, processor, queue) = setup(config);
                let queue = Arc::new(queue);
                let submitter = tokio::spawn({
                    let queue = Arc::clone(&queue);
                    let jobs = jobs.clone();
                    async move {
                        let mut refused = Vec::new();
                        for (id, (gap, priority, cost, hangs, failures)) in jobs.into_iter().enumerate() {
                            sleep(ms(gap)).await;
                            let job = Job { id: id as u64, priority, cost: ms(cost), hangs, failures };
                            if let Err(Rejected(job)) = queue.submit(job).await {
                                refused.push(job);
                            }
                        }
                        refused
                    }
                });
                sleep(ms(shutdown_at)).await;
                let mode = if drain { Mode::Drain } else { Mode::HandBack };
                let called = Instant::now();
                let handed_back = tokio::time::timeout(ms(grace + 1), queue.shutdown(mode, ms(grace)))
                    .await;
                prop_assert!(handed_back.is_ok(), "shutdown did not return by its deadline");
                let handed_back = handed_back.unwrap_or_default();
                let returned = processor.origin.elapsed();
                prop_assert!(called.elapsed() <= ms(grace));
                let refused = tokio::time::timeout(ms(60_000), submitter).await;
                prop_assert!(refused.is_ok(), "a `submit` during or after the shutdown never returned");
                let refused = refused.unwrap_or_else(|_| Ok(Vec::new())).expect("the submitter panicked");
                sleep(ms(10_000)).await;
                let mut ended: Vec<(u64, String)> = queue
                    .finished()
                    .iter()
                    .map(|&(id, outcome)| (id, format!("{outcome:?}")))
                    .collect();
                ended.extend(handed_back.iter().map(|job| (job.id, "handed back".to_string())));
                ended.extend(refused.iter().map(|job| (job.id, "refused".to_string())));
                ended.sort();
                let ids: Vec<u64> = ended.iter().map(|(id, _)| *id).collect();
                prop_assert_eq!(
                    ids, (0..jobs.len() as u64).collect::<Vec<_>>(),
                    "each job ends exactly once; how they ended: {:?}", ended
                );
                for (id, outcome) in queue.finished() {
                    let (_, _, _, hangs, failures) = jobs[id as usize];
                    let expected = if hangs + failures < 3 { Outcome::Done } else { Outcome::Failed };
                    prop_assert_eq!(outcome, expected, "how job {} ended", id);
                }
                for id in 0..jobs.len() as u64 {
                    let attempts = processor.starts().iter().filter(|start| start.job == id).count();
                    prop_assert!(attempts <= 3, "job {} was attempted {} times, 3 at most", id, attempts);
                }
                let late = processor.starts().into_iter().find(|start| start.at > returned);
                prop_assert!(late.is_none(), "{:?} started after the shutdown returned", late);
                let stats = queue.stats();
                prop_assert_eq!(
                    stats.submitted,
                    stats.done + stats.failed + stats.handed_back,
                    "after the shutdown every job accepted is done, failed or handed back: {:?}",
                    stats
                );
                prop_assert_eq!(stats.handed_back, handed_back.len() as u64);
                Ok(())
            })?;
        }
    }
}

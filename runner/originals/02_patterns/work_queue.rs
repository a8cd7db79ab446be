//! # A work queue: bounded, several consumers, drained on shutdown
//!
//! A service that accepts work faster than it can do it needs a queue between the two, and
//! the queue must be *bounded*: when it is full, `submit` waits, and that wait travels back
//! to whoever produces the work (backpressure), instead of memory growing until the process
//! is killed. Behind the queue, `workers` consumers take jobs as soon as they are free, so a
//! slow job holds back one worker, not the queue. Shutting down is the part that is easy to
//! get wrong: close the queue to new work, let the workers finish every job already queued
//! or in progress, collect their results, and only then return. Nothing lost, nothing done
//! twice.
//! (Python: `asyncio.Queue(maxsize=n)` with n `create_task(worker(queue))`, then
//! `await queue.join()` and cancelling the workers.)
//!
//! A tokio `mpsc` channel has one receiver. To share it between workers, put it in an
//! `Arc<tokio::sync::Mutex<_>>`: a worker locks it only to `recv()` the next job, and lets go
//! before working on it, so the others can take the next ones meanwhile. Dropping the
//! `Sender` closes the queue; `recv()` then returns the jobs still queued, then `None`, which
//! tells each worker to end. A worker returns its results from its task, and `shutdown`
//! awaits every worker's `JoinHandle`.
//!
//! ## Your job
//! Write `WorkQueue::start`, `submit` and `shutdown`: `workers` tasks processing jobs from a
//! queue holding at most `capacity`, `submit` waiting while it is full, and `shutdown`
//! returning the results of every job submitted, each processed once.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/fn.channel.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinHandle.html>
//! - A real service often uses a multi-consumer channel such as
//!   <https://docs.rs/async-channel/latest/async_channel/>, or a stream with
//!   `buffer_unordered(workers)`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use timeline::Timeline;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::sleep;

/// A job: its id and how long it takes to process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub cost: Duration,
}

/// A processed job: which job, and which worker did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub job: u64,
    pub worker: usize,
}

/// The pretend work. It counts how often it processed each job, and draws each job on a
/// timeline row per worker.
#[derive(Clone, Default)]
pub struct Processor {
    processed: Arc<StdMutex<HashMap<u64, usize>>>,
    timeline: Timeline,
}

impl Processor {
    pub fn new(timeline: Timeline) -> Self {
        Processor {
            timeline,
            ..Processor::default()
        }
    }

    /// Processes `job` on behalf of worker number `worker`.
    pub async fn process(&self, worker: usize, job: Job) -> Done {
        let _span = self.timeline.span(format!("worker {worker}"));
        sleep(job.cost).await;
        *self
            .processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(job.id)
            .or_default() += 1;
        Done {
            job: job.id,
            worker,
        }
    }

    /// How many times each job was processed.
    pub fn times_processed(&self) -> HashMap<u64, usize> {
        self.processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub struct WorkQueue {
    sender: mpsc::Sender<Job>,
    workers: Vec<JoinHandle<Vec<Done>>>,
}

impl WorkQueue {
    /// Starts `workers` workers (numbered from 0) taking jobs from a queue of `capacity`.
    pub fn start(processor: Processor, workers: usize, capacity: usize) -> Self {
        // TODO: a channel of `capacity`, its receiver shared by `workers` spawned tasks
        // that each loop: take the next job, `processor.process(worker, job)`, keep the
        // `Done`; and return them all once the queue is closed and empty.
        todo!()
    }

    /// Queues `job`, waiting while the queue is full.
    pub async fn submit(&self, job: Job) {
        // TODO: queue the job, waiting while the queue is full.
        todo!()
    }

    /// Closes the queue, waits until every queued job is processed, and returns the
    /// results of all the jobs ever submitted.
    pub async fn shutdown(self) -> Vec<Done> {
        // TODO: close the queue, then collect every worker's results.
        todo!()
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let timeline = Timeline::new();
    let start = tokio::time::Instant::now();
    let queue = WorkQueue::start(Processor::new(timeline.clone()), 3, 2);
    for id in 0..9 {
        let cost = Duration::from_millis(100 + 50 * (id % 3));
        queue.submit(Job { id, cost }).await;
        println!("submitted job {id} at {:?}", start.elapsed());
    }
    let done = queue.shutdown().await;
    println!(
        "{} jobs done\n{}",
        done.len(),
        timeline.picture("3 workers busy")
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/work_queue.toml tries each):
    // - an unbounded queue (no backpressure: every `submit` returns at once);
    // - one worker whatever `workers` says, or a worker holding the lock while it works
    //   (the others wait: one job at a time);
    // - a task per job (no bound on the jobs in progress);
    // - a shutdown that aborts the workers, returns before they are done, or workers that
    //   end as soon as the queue is momentarily empty (`try_recv`): jobs lost;
    // - every worker receiving every job (a broadcast): jobs done twice.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn jobs(costs: &[u64]) -> Vec<Job> {
        costs
            .iter()
            .enumerate()
            .map(|(id, &cost)| Job {
                id: id as u64,
                cost: ms(cost),
            })
            .collect()
    }

    /// Submits `jobs` one after another, then shuts down. Returns when each `submit`
    /// returned, the results sorted by job, and when shutdown returned.
    async fn run(
        processor: &Processor,
        workers: usize,
        capacity: usize,
        jobs: &[Job],
    ) -> (Vec<Duration>, Vec<Done>, Duration) {
        let start = Instant::now();
        let queue = WorkQueue::start(processor.clone(), workers, capacity);
        let mut submitted = Vec::new();
        for &job in jobs {
            queue.submit(job).await;
            submitted.push(start.elapsed());
        }
        let mut done = tokio::time::timeout(ms(600_000), queue.shutdown())
            .await
            .expect("shutdown never returned");
        done.sort_by_key(|done| done.job);
        (submitted, done, start.elapsed())
    }

    fn each_once(processor: &Processor, n: usize) -> Result<(), String> {
        let times = processor.times_processed();
        for id in 0..n as u64 {
            match times.get(&id) {
                Some(1) => {}
                Some(k) => return Err(format!("job {id} was processed {k} times")),
                None => return Err(format!("job {id} was never processed")),
            }
        }
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn workers_process_jobs_at_the_same_time() {
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let (_, done, elapsed) = run(&processor, 4, 8, &jobs(&[100; 8])).await;
        let picture = timeline.picture("4 workers at once, 200 ms in all");
        assert_eq!(
            timeline.peak_in_flight(),
            4,
            "4 workers should process 4 jobs at once\n{picture}"
        );
        assert_eq!(
            elapsed,
            ms(200),
            "8 jobs of 100 ms on 4 workers take 200 ms\n{picture}"
        );
        assert_eq!(done.len(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_worker_takes_the_next_job_at_once() {
        // One slow job: the other worker does the five quick ones meanwhile.
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let (_, done, elapsed) =
            run(&processor, 2, 8, &jobs(&[500, 100, 100, 100, 100, 100])).await;
        assert_eq!(
            elapsed,
            ms(500),
            "a worker should take the next job as soon as it is free\n{}",
            timeline.picture("worker 0: job 0 (500 ms); worker 1: jobs 1-5")
        );
        let by_worker: Vec<_> = done.iter().map(|done| done.worker).collect();
        assert_eq!(
            by_worker[1..],
            [by_worker[1]; 5],
            "the quick jobs should all go to the free worker"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn submit_waits_while_the_queue_is_full() {
        // One worker, room for 2: job 0 is taken at once, jobs 1 and 2 fill the queue, and
        // job 3 waits until the worker takes job 1 at 100 ms.
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let (submitted, _, elapsed) = run(&processor, 1, 2, &jobs(&[100; 6])).await;
        assert_eq!(
            submitted,
            [0, 0, 0, 100, 200, 300].map(ms),
            "when each `submit` returned: with the queue full, `submit` should wait until a \
             worker takes a job\n{}",
            timeline.picture("submits at 0, 0, 0, 100, 200, 300 ms")
        );
        assert_eq!(elapsed, ms(600));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_processes_every_queued_job_once() {
        let timeline = Timeline::new();
        let processor = Processor::new(timeline.clone());
        let (_, done, elapsed) = run(&processor, 3, 10, &jobs(&[50; 10])).await;
        if let Err(problem) = each_once(&processor, 10) {
            panic!(
                "{problem}: shutdown should let the workers finish every queued job\n{}",
                timeline.picture("10 jobs, each once")
            );
        }
        let ids: Vec<_> = done.iter().map(|done| done.job).collect();
        assert_eq!(
            ids,
            (0..10).collect::<Vec<_>>(),
            "shutdown should return every job's result"
        );
        assert_eq!(elapsed, ms(200), "10 jobs of 50 ms on 3 workers: 4 rounds");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_a_job_submitted_just_before() {
        let processor = Processor::default();
        let queue = WorkQueue::start(processor.clone(), 2, 4);
        queue
            .submit(Job {
                id: 0,
                cost: ms(10),
            })
            .await;
        sleep(ms(50)).await; // the workers are idle, waiting for work
        queue
            .submit(Job {
                id: 1,
                cost: ms(30),
            })
            .await;
        let start = Instant::now();
        let done = queue.shutdown().await;
        assert_eq!(
            done.len(),
            2,
            "the job submitted last should be processed too: {done:?}"
        );
        assert_eq!(
            start.elapsed(),
            ms(30),
            "shutdown should wait for the job in progress"
        );
        assert_eq!(each_once(&processor, 2), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_queue_shuts_down_at_once() {
        let queue = WorkQueue::start(Processor::default(), 3, 4);
        let start = Instant::now();
        assert!(queue.shutdown().await.is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    fn run_paused<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    }

    /// The model: jobs in submit order go to the worker free first; the submit of job j
    /// returns once job j - capacity has been taken. Returns the submit times and the end.
    fn model(costs: &[u64], workers: usize, capacity: usize) -> (Vec<Duration>, Duration) {
        let mut free = vec![0u64; workers];
        let mut taken = Vec::new();
        let mut submitted = Vec::new();
        let mut last_submit = 0;
        for (j, &cost) in costs.iter().enumerate() {
            let queued = if j >= capacity {
                last_submit.max(taken[j - capacity])
            } else {
                last_submit
            };
            let worker = free.iter_mut().min().expect("workers >= 1");
            let start = queued.max(*worker);
            *worker = start + cost;
            taken.push(start);
            submitted.push(ms(queued));
            last_submit = queued;
        }
        (submitted, ms(free.into_iter().max().unwrap_or(0)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any jobs, workers and capacity: every job processed once, at most `workers` at a
        /// time, and `submit` and `shutdown` return when the model says.
        #[test]
        fn any_jobs_are_each_processed_once_with_backpressure(
            costs in prop::collection::vec(1u64..300, 0..30),
            workers in 1usize..5,
            capacity in 1usize..5,
        ) {
            let (timeline, processor, (submitted, done, elapsed)) = run_paused(async {
                let timeline = Timeline::new();
                let processor = Processor::new(timeline.clone());
                let outcome = run(&processor, workers, capacity, &jobs(&costs)).await;
                (timeline, processor, outcome)
            });
            prop_assert_eq!(each_once(&processor, costs.len()), Ok(()));
            prop_assert_eq!(done.len(), costs.len(), "one result per job");
            prop_assert!(timeline.peak_in_flight() <= workers, "more jobs at once than workers");
            let (model_submitted, model_elapsed) = model(&costs, workers, capacity);
            prop_assert_eq!(submitted, model_submitted, "when each submit returned");
            prop_assert_eq!(elapsed, model_elapsed, "when shutdown returned");
        }
    }
}

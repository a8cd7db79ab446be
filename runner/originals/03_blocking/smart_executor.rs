//! # A smart executor: each job to the pool made for its kind, with a bounded backlog
//!
//! A service that offloads work has two kinds of it. Blocking I/O (a sync driver, `std::fs`)
//! mostly waits: it goes to the blocking pool, and what bounds it is the resource behind it,
//! so a `Semaphore` of `io_workers` permits says how many run at once. CPU work keeps a core
//! busy: it goes to rayon's pool (about one thread per core), the answer back through a
//! `oneshot`. Both need a bounded backlog: when `io_workers` jobs run and `io_backlog` more
//! wait, the next one is refused at once (`Busy`) instead of queueing without end; the
//! caller can shed load, retry later, or answer 503. A semaphore's `try_acquire_owned`
//! is that admission check: it never waits.
//! Why in real services: an API whose endpoints mix report rendering (CPU), file exports
//! (blocking I/O) and plain async calls; one kind flooding must not starve the others, and
//! overload must show as fast refusals, not as growing latency and memory.
//! (Python: the kit's "smart executor" routes to a `ThreadPoolExecutor` for I/O and a
//! `ProcessPoolExecutor` for CPU; in Rust, no GIL: the CPU pool is a thread pool, rayon's.)
//!
//! ## Your job
//! `Executor::run` runs every job right here, on the runtime's thread, with no limits.
//! Route it by `kind`: an `Io` job on the blocking pool, at most `io_workers` at once and at
//! most `io_backlog` more admitted and waiting; a `Cpu` job on rayon's pool, at most
//! `cpu_backlog` admitted at once. A job beyond its backlog gets `Err(Busy(kind))` at once.
//! A job's value comes back as `Ok`; a job's panic panics the caller (never aborts).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html#method.try_acquire_owned>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - <https://docs.rs/rayon/latest/rayon/fn.spawn.html>
//! - CHEATSHEET.md, "Which tool for which work"

use std::sync::Arc;

use tokio::sync::Semaphore;

/// What a job spends its time on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Io,
    Cpu,
}

/// The backlog of this kind of job is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy(pub Kind);

pub struct Executor {
    /// One permit per I/O job running.
    io_workers: Arc<Semaphore>,
    /// One permit per I/O job admitted: running or waiting for a worker.
    io_admitted: Arc<Semaphore>,
    /// One permit per CPU job admitted: running or queued on rayon's pool.
    cpu_admitted: Arc<Semaphore>,
}

impl Executor {
    /// `io_workers` I/O jobs run at once and `io_backlog` more may wait; `cpu_backlog` CPU
    /// jobs may be on rayon's pool at once.
    pub fn new(io_workers: usize, io_backlog: usize, cpu_backlog: usize) -> Self {
        Self {
            io_workers: Arc::new(Semaphore::new(io_workers)),
            io_admitted: Arc::new(Semaphore::new(io_workers + io_backlog)),
            cpu_admitted: Arc::new(Semaphore::new(cpu_backlog)),
        }
    }

    /// Runs `job` on the pool for its `kind`; `Busy` at once if that backlog is full.
    pub async fn run<T, F>(&self, kind: Kind, job: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // TODO: every job runs right here, on the runtime's thread, and nothing is limited.
        let _ = kind;
        Ok(job())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let executor = Arc::new(Executor::new(2, 1, 4));
    let mut jobs = tokio::task::JoinSet::new();
    for n in 0..5u64 {
        let executor = Arc::clone(&executor);
        jobs.spawn(async move {
            let io = executor.run(Kind::Io, move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                n
            });
            let cpu = executor.run(Kind::Cpu, move || (0..=n * 1_000_000).sum::<u64>());
            (n, io.await, cpu.await)
        });
    }
    // 5 I/O jobs at once, 2 workers + 1 waiting: 2 of them are refused.
    while let Some(Ok((n, io, cpu))) = jobs.join_next().await {
        println!("job {n}: io {io:?}, cpu {cpu:?}");
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - running every job on the runtime's thread (as shipped), or in `tokio::spawn`;
    // - one pool for both kinds (everything on `spawn_blocking`, or everything on rayon);
    // - no limit on I/O jobs, a limit that drops its permit too early, or one that is not
    //   reached;
    // - a backlog that waits instead of refusing (`acquire` in place of `try_acquire`), or
    //   that counts only waiting jobs, or shares one count between the two kinds;
    // - a CPU job's panic that escapes to rayon (which aborts the process: these checks
    //   give rayon's pool a panic handler that counts it instead) or is lost.
    //
    // How: jobs that must overlap something wait for the check to release them (a gate);
    // whether a call is refused at once or waits is seen by polling it once
    // (`tokio_test::task::spawn`). Bounds of 500 ms only turn a wait that can never end into
    // a failure instead of a hang; dropping a gate releases its job.
    use super::*;
    use std::panic;
    use std::sync::Once;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc as std_mpsc;
    use std::thread::{self, ThreadId};
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio_test::{assert_pending, assert_ready, task};

    const STUCK: Duration = Duration::from_millis(500);

    static UNCAUGHT_PANICS: AtomicUsize = AtomicUsize::new(0);

    /// rayon's global pool with 4 threads and a panic handler that counts a job's uncaught
    /// panic instead of aborting; the checks' on-purpose panics print one line.
    fn rayon_pool() {
        static BUILD: Once = Once::new();
        BUILD.call_once(|| {
            let report = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                match info.payload().downcast_ref::<&str>() {
                    Some(message) if message.starts_with("on purpose") => {
                        eprintln!("a job panicked on purpose: {info}");
                    }
                    _ => report(info),
                }
            }));
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .panic_handler(|_| {
                    UNCAUGHT_PANICS.fetch_add(1, SeqCst);
                })
                .build_global();
        });
    }

    /// A job that says where it runs, then waits until its gate is released (or dropped).
    /// It counts itself in `running`, and fails if that makes more than `limit`.
    fn gated(
        started: &mpsc::UnboundedSender<Result<usize, String>>,
        id: usize,
        running: &Arc<AtomicUsize>,
        limit: usize,
    ) -> (
        impl FnOnce() -> Where + Send + 'static,
        std_mpsc::Sender<()>,
    ) {
        let (release, gate) = std_mpsc::channel::<()>();
        let (started, running) = (started.clone(), Arc::clone(running));
        let job = move || {
            let here = Where::now();
            let now_running = running.fetch_add(1, SeqCst) + 1;
            if now_running > limit {
                let why = format!(
                    "job {id} started while {} were running: the limit is {limit}",
                    now_running - 1
                );
                let _ = started.send(Err(why.clone()));
                panic!("{why}");
            }
            let _ = started.send(Ok(id));
            if gate.recv_timeout(STUCK) == Err(std_mpsc::RecvTimeoutError::Timeout) {
                panic!("job {id} waited 500 ms for the check, which never got to run");
            }
            running.fetch_sub(1, SeqCst);
            here
        };
        (job, release)
    }

    /// The id of the next gated job to start; a job that broke its limit fails the check.
    async fn next_start(starts: &mut mpsc::UnboundedReceiver<Result<usize, String>>) -> usize {
        match starts.recv().await.expect("the check holds a sender") {
            Ok(id) => id,
            Err(why) => panic!("{why}"),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Where {
        thread: ThreadId,
        on_rayon: bool,
    }

    impl Where {
        fn now() -> Self {
            Self {
                thread: thread::current().id(),
                on_rayon: rayon::current_thread_index().is_some(),
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn io_jobs_go_to_the_blocking_pool_and_cpu_jobs_to_rayon() {
        rayon_pool();
        let executor = Executor::new(2, 2, 2);
        let runtime_thread = thread::current().id();
        let io = executor.run(Kind::Io, Where::now).await.expect("admitted");
        let cpu = executor.run(Kind::Cpu, Where::now).await.expect("admitted");
        assert_ne!(
            io.thread, runtime_thread,
            "an I/O job ran on the runtime's own thread"
        );
        assert!(
            !io.on_rayon,
            "an I/O job ran on rayon's pool: blocking there takes a core's thread"
        );
        assert_ne!(
            cpu.thread, runtime_thread,
            "a CPU job ran on the runtime's own thread"
        );
        assert!(cpu.on_rayon, "a CPU job did not run on rayon's pool");
    }

    /// A runtime whose blocking pool has 3 threads: see `a_probe_runs_after_any_job_handed_over`.
    fn three_blocking_threads() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(3)
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// With 2 gated jobs holding 2 of the pool's 3 threads, a probe on the pool runs only once
    /// every job handed to the pool before it has started (the pool takes work in order, and
    /// only the third thread is free): a job handed over too early is seen starting here,
    /// however slowly its thread starts.
    async fn a_probe_runs_after_any_job_handed_over(
        starts: &mut mpsc::UnboundedReceiver<Result<usize, String>>,
    ) {
        for _ in 0..8 {
            tokio::task::yield_now().await; // the executor's tasks reach their next await
        }
        tokio::task::spawn_blocking(|| ())
            .await
            .expect("the probe runs");
        if let Ok(start) = starts.try_recv() {
            let why = start.map_or_else(|why| why, |id| format!("job {id} started too early"));
            panic!("{why}: a job waiting for an I/O worker was handed to the blocking pool");
        }
    }

    #[test]
    fn io_workers_limit_the_jobs_running_and_the_backlog_refuses_the_rest_at_once() {
        three_blocking_threads().block_on(io_workers_limit())
    }

    async fn io_workers_limit() {
        rayon_pool();
        let executor = Arc::new(Executor::new(2, 1, 2));
        let (started, mut starts) = mpsc::unbounded_channel();
        let running = Arc::new(AtomicUsize::new(0));
        // Polled once here (so each has asked for its place), then driven by the runtime.
        let submit = |id: usize| {
            let (job, release) = gated(&started, id, &running, 2);
            let executor = Arc::clone(&executor);
            let mut run = task::spawn(async move { executor.run(Kind::Io, job).await });
            assert_pending!(
                run.poll(),
                "an I/O job should not run on the caller's thread"
            );
            (tokio::spawn(run), release)
        };
        let (a, release_a) = submit(0);
        let (_b, _release_b) = submit(1);
        let mut first_two = [next_start(&mut starts).await, next_start(&mut starts).await];
        first_two.sort_unstable();
        assert_eq!(first_two, [0, 1], "2 I/O workers: the first 2 jobs run");
        // A third is admitted and waits for a worker.
        let (_c, _release_c) = submit(2);
        a_probe_runs_after_any_job_handed_over(&mut starts).await;
        // A fourth finds 2 running and 1 waiting: refused at once.
        let mut d = task::spawn(executor.run(Kind::Io, Where::now));
        let refused = assert_ready!(
            d.poll(),
            "beyond the backlog, a job is refused at once, not queued"
        );
        assert_eq!(refused, Err(Busy(Kind::Io)));
        // Meanwhile CPU jobs have their own backlog.
        let cpu = executor.run(Kind::Cpu, || 7).await;
        assert_eq!(cpu, Ok(7), "a full I/O backlog should not refuse CPU jobs");
        // One job ends: the waiting one gets its worker and starts.
        drop(release_a);
        assert!(a.await.expect("job 0 ran").is_ok());
        assert_eq!(
            next_start(&mut starts).await,
            2,
            "once a worker is free, the waiting job runs"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_finished_job_makes_room_in_the_backlog() {
        rayon_pool();
        let executor = Executor::new(1, 0, 1);
        assert!(executor.run(Kind::Io, || 1).await.is_ok());
        assert!(
            executor.run(Kind::Io, || 2).await.is_ok(),
            "the first job ended: room again"
        );
        assert!(executor.run(Kind::Cpu, || 3).await.is_ok());
        assert!(
            executor.run(Kind::Cpu, || 4).await.is_ok(),
            "the first job ended: room again"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_cpu_backlog_refuses_at_once_when_full() {
        rayon_pool();
        let executor = Executor::new(1, 0, 1);
        let (started, mut starts) = mpsc::unbounded_channel();
        let (job, release) = gated(&started, 0, &Arc::new(AtomicUsize::new(0)), 1);
        let mut running = task::spawn(executor.run(Kind::Cpu, job));
        assert_pending!(running.poll());
        assert_eq!(next_start(&mut starts).await, 0);
        let mut next = task::spawn(executor.run(Kind::Cpu, || 1));
        let refused = assert_ready!(next.poll(), "beyond the CPU backlog, refused at once");
        assert_eq!(refused, Err(Busy(Kind::Cpu)));
        drop(release);
        assert!(running.await.expect("admitted").on_rayon);
    }

    #[tokio::test(flavor = "current_thread")]
    #[should_panic(expected = "on purpose: bad row")]
    async fn a_cpu_jobs_panic_panics_the_caller() {
        rayon_pool();
        let before = UNCAUGHT_PANICS.load(SeqCst);
        let executor = Executor::new(1, 1, 1);
        let result = panic::AssertUnwindSafe(
            executor.run(Kind::Cpu, || -> u32 { panic!("on purpose: bad row") }),
        );
        let outcome = futures::FutureExt::catch_unwind(result).await;
        assert_eq!(
            UNCAUGHT_PANICS.load(SeqCst),
            before,
            "the panic escaped the job: outside these checks rayon aborts the whole process"
        );
        if let Err(payload) = outcome {
            panic::resume_unwind(payload);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    #[should_panic(expected = "on purpose: bad file")]
    async fn an_io_jobs_panic_panics_the_caller() {
        rayon_pool();
        let executor = Executor::new(1, 1, 1);
        let _ = executor
            .run(Kind::Io, || -> u32 { panic!("on purpose: bad file") })
            .await;
    }
}

//! # A hybrid pipeline: fetch (I/O), digest (CPU), store (I/O), each stage with its own limit
//!
//! Most batch jobs in a service are three stages: read something over the network, compute
//! on it, write the result somewhere. Each stage wants a different tool and a different
//! limit: the fetches are async I/O (a few dozen in flight is cheap, the remote service sets
//! the bound), the computation keeps a core busy (rayon's pool, about one job per core, the
//! answer back through a `oneshot`), the stores are async I/O again (the database takes so
//! many writes at once). A task per stage, each running at most its own number of items at
//! once (`StreamExt::buffered(n)`), and **bounded** channels between them
//! (`mpsc::channel(capacity)`): when the store stage is slow, its channel fills, the digest
//! stage waits on `send`, its channel fills, and the fetch stage stops fetching. That is
//! backpressure: memory stays bounded by the limits, whatever the batch size. An unbounded
//! channel, or a stage that collects everything before passing it on, fetches the whole
//! batch into memory while the database is down.
//! Shutting down is the channels' job too: the fetch stage ends after its last item and
//! drops its sender, so the digest stage sees the end of its input, finishes, drops its
//! own sender, and the store stage ends. Await every stage's task before returning, so that
//! nothing runs on after the function has answered.
//! Why in real services: an indexer that downloads documents, parses them and writes the
//! index; an export that reads rows, renders PDFs and uploads them; a one-off backfill.
//! (Python: an `asyncio.Queue(maxsize=n)` between stages, `n` worker tasks per stage, and
//! `loop.run_in_executor(ProcessPoolExecutor(), digest, record)` for the CPU stage; in Rust
//! no GIL: the CPU stage runs on rayon's threads, in this process.)
//!
//! ## Your job
//! `run_pipeline` handles one id after another, and computes each digest on the runtime's
//! thread. Make it a pipeline: a fetch stage with at most `limits.fetches` fetches at once,
//! a digest stage on rayon's pool with at most `limits.digests` digests at once, a store
//! stage with at most `limits.stores` stores at once, each stage reaching its limit while
//! enough items wait, channels of `limits.capacity` between the stages, and every stage's
//! task ended when it returns. It returns `(id, digest)` for every id, stored, **in the order
//! of `ids`**.
//!
//! ## Read
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffered>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/fn.channel.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Receiver.html#method.poll_recv>
//! - <https://docs.rs/rayon/latest/rayon/fn.spawn.html>
//! - CHEATSHEET.md, "A pipeline: I/O stage → CPU stage → I/O stage"

use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, stream};
use tokio::sync::{mpsc, oneshot};

/// The three stages' work, given by the caller.
pub trait Stages: Send + Sync + 'static {
    /// I/O: fetches the record of `id`.
    fn fetch(&self, id: u32) -> impl Future<Output = String> + Send;
    /// CPU: a computation that keeps its thread busy until it returns.
    fn digest(&self, record: &str) -> u64;
    /// I/O: stores the digest of `id`.
    fn store(&self, id: u32, digest: u64) -> impl Future<Output = ()> + Send;
}

/// How many items each stage works on at once, and how many wait between two stages.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub fetches: usize,
    pub digests: usize,
    pub stores: usize,
    pub capacity: usize,
}

/// Runs every id through fetch, digest and store; `(id, digest)` in the order of `ids`.
pub async fn run_pipeline<S: Stages>(
    stages: Arc<S>,
    ids: Vec<u32>,
    limits: Limits,
) -> Vec<(u32, u64)> {
    let (records, mut to_digest) = mpsc::channel::<(u32, String)>(limits.capacity);
    let (digests, mut to_store) = mpsc::channel::<(u32, u64)>(limits.capacity);

    let fetching = tokio::spawn({
        let stages = Arc::clone(&stages);
        async move {
            let mut fetched = stream::iter(ids)
                .map(|id| {
                    let stages = Arc::clone(&stages);
                    async move { (id, stages.fetch(id).await) }
                })
                .buffered(limits.fetches);
            while let Some(item) = fetched.next().await {
                if records.send(item).await.is_err() {
                    break;
                }
            }
        }
    });

    let digesting = tokio::spawn({
        let stages = Arc::clone(&stages);
        async move {
            let mut digested = stream::poll_fn(move |cx| to_digest.poll_recv(cx))
                .map(|(id, record)| {
                    let stages = Arc::clone(&stages);
                    let (answer, answered) = oneshot::channel();
                    rayon::spawn(move || {
                        let _ = answer.send(stages.digest(&record));
                    });
                    async move { (id, answered.await.expect("a digest panicked")) }
                })
                .buffered(limits.digests);
            while let Some(item) = digested.next().await {
                if digests.send(item).await.is_err() {
                    break;
                }
            }
        }
    });

    let stored = stream::poll_fn(move |cx| to_store.poll_recv(cx))
        .map(|(id, digest)| {
            let stages = Arc::clone(&stages);
            async move {
                stages.store(id, digest).await;
                (id, digest)
            }
        })
        .buffered(limits.stores)
        .collect()
        .await;
    fetching.await.expect("the fetch stage panicked");
    digesting.await.expect("the digest stage panicked");
    stored
}

/// A pretend service: fetches and stores take a little time, the digest is a hash.
struct Demo;

impl Stages for Demo {
    async fn fetch(&self, id: u32) -> String {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        format!("record {id}")
    }

    fn digest(&self, record: &str) -> u64 {
        (0..200_000u64).fold(0, |hash, round| {
            record.bytes().fold(hash ^ round, |h, b| {
                h.wrapping_mul(31).wrapping_add(u64::from(b))
            })
        })
    }

    async fn store(&self, id: u32, digest: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        println!("stored {id}: {digest:016x}");
    }
}

#[tokio::main]
async fn main() {
    let limits = Limits {
        fetches: 4,
        digests: 2,
        stores: 2,
        capacity: 2,
    };
    let stored = run_pipeline(Arc::new(Demo), (1..=8).collect(), limits).await;
    println!(
        "{} items, in order: {:?}",
        stored.len(),
        stored.iter().map(|s| s.0).collect::<Vec<_>>()
    );
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - one item after another, the digest on the runtime's thread (as shipped), or in
    //   `tokio::spawn`: the runtime is stuck while a digest runs;
    // - a stage with no limit (every item at once, a task per item) or a limit never
    //   reached (a stage that works on one item at a time, batches that wait for the slowest);
    // - unbounded channels between stages, or a stage that collects its whole input before
    //   passing it on: with the store stage stuck, the fetch stage fetches the whole batch;
    // - output in completion order (`buffer_unordered` without putting it back in order);
    // - an item lost or stored twice, a result returned before its store ended, or stage
    //   tasks left running (or never ended) after `run_pipeline` returns.
    //
    // How: the pretend stages hold fetches and stores at gates (semaphores) and digests at
    // a condition variable the check opens, count what runs at once, and note what breaks a
    // limit. The check waits for the events it expects with a bound of 500 ms, which only
    // turns a wait that can never end into a failure instead of a hang; the guard opens
    // every gate when a check ends, also when it fails. Virtual time (paused clock) orders
    // fetches and stores; "nothing more happens" is the runtime idle, rayon's threads idle,
    // and no count moving, three times in a row.
    use super::*;
    use std::sync::mpsc as std_mpsc;
    use std::sync::{Condvar, Mutex, Once, PoisonError};
    use std::thread::{self, ThreadId};
    use std::time::Duration;
    use tokio::sync::{Semaphore, oneshot};

    const STUCK: Duration = Duration::from_millis(500);
    const OPEN: usize = Semaphore::MAX_PERMITS;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stage {
        Fetch,
        Digest,
        Store,
    }

    impl Stage {
        fn many(self) -> &'static str {
            match self {
                Stage::Fetch => "fetches",
                Stage::Digest => "digests",
                Stage::Store => "stores",
            }
        }
    }

    #[derive(Default, Clone, Copy)]
    struct Load {
        running: usize,
        most: usize,
        started: usize,
        ended: usize,
    }

    /// Digests wait here until the check lets them through (or 500 ms pass).
    #[derive(Default)]
    struct Turnstile {
        passes: Mutex<usize>,
        changed: Condvar,
    }

    impl Turnstile {
        fn pass(&self) -> bool {
            let passes = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut passes, waited) = self
                .changed
                .wait_timeout_while(passes, STUCK, |passes| *passes == 0)
                .unwrap_or_else(PoisonError::into_inner);
            if waited.timed_out() {
                return false;
            }
            *passes -= 1;
            true
        }

        fn let_through(&self, n: usize) {
            let mut passes = self.passes.lock().unwrap_or_else(PoisonError::into_inner);
            *passes = passes.saturating_add(n);
            self.changed.notify_all();
        }
    }

    /// Pretend stages that record what runs when.
    struct Fake {
        limits: Limits,
        runtime_thread: ThreadId,
        events: Mutex<std_mpsc::Sender<(Stage, u32)>>,
        fetch_gate: Semaphore,
        digest_gate: Turnstile,
        store_gate: Semaphore,
        /// Virtual time a fetch and a store of `id` take.
        delay: fn(u32) -> Duration,
        loads: Mutex<[Load; 3]>,
        problems: Mutex<Vec<String>>,
        stored: Mutex<Vec<u32>>,
    }

    fn record(id: u32) -> String {
        format!("record {id}")
    }

    fn digest_of(record: &str) -> u64 {
        record
            .bytes()
            .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
    }

    impl Fake {
        fn load(&self, stage: Stage) -> Load {
            self.loads.lock().unwrap_or_else(PoisonError::into_inner)[stage as usize]
        }

        fn problem(&self, what: String) {
            self.problems
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(what);
        }

        fn enter(&self, stage: Stage, id: u32) {
            let limit = match stage {
                Stage::Fetch => self.limits.fetches,
                Stage::Digest => self.limits.digests,
                Stage::Store => self.limits.stores,
            };
            let running = {
                let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
                let load = &mut loads[stage as usize];
                load.running += 1;
                load.started += 1;
                load.most = load.most.max(load.running);
                load.running
            };
            if running > limit {
                self.problem(format!(
                    "{stage:?} of item {id} started while {} were running: that stage's limit is {limit}",
                    running - 1
                ));
            }
            let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = events.send((stage, id));
        }

        fn leave(&self, stage: Stage) {
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            loads[stage as usize].running -= 1;
            loads[stage as usize].ended += 1;
        }
    }

    impl Stages for Fake {
        async fn fetch(&self, id: u32) -> String {
            self.enter(Stage::Fetch, id);
            if let Ok(permit) = self.fetch_gate.acquire().await {
                permit.forget();
            }
            tokio::time::sleep((self.delay)(id)).await;
            self.leave(Stage::Fetch);
            record(id)
        }

        fn digest(&self, record: &str) -> u64 {
            let id = record
                .trim_start_matches("record ")
                .parse()
                .unwrap_or(u32::MAX);
            if thread::current().id() == self.runtime_thread {
                self.problem(format!(
                    "the digest of item {id} ran on the runtime's thread: every task waits while it computes"
                ));
                return digest_of(record);
            }
            self.enter(Stage::Digest, id);
            if !self.digest_gate.pass() {
                self.problem(format!(
                    "the digest of item {id} waited 500 ms for the check, which never got to run"
                ));
            }
            self.leave(Stage::Digest);
            digest_of(record)
        }

        async fn store(&self, id: u32, digest: u64) {
            self.enter(Stage::Store, id);
            if let Ok(permit) = self.store_gate.acquire().await {
                permit.forget();
            }
            tokio::time::sleep((self.delay)(id)).await;
            if digest != digest_of(&record(id)) {
                self.problem(format!(
                    "item {id} was stored with a digest that is not its record's"
                ));
            }
            self.leave(Stage::Store);
            self.stored
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(id);
        }
    }

    /// The check's side: the pretend stages, the events they send, and a guard that opens
    /// every gate when the check ends.
    struct Check {
        fake: Arc<Fake>,
        events: Arc<Mutex<std_mpsc::Receiver<(Stage, u32)>>>,
        /// The checks run one at a time: none waits for rayon threads another one holds.
        _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
    }

    impl Drop for Check {
        fn drop(&mut self) {
            self.fake.fetch_gate.close();
            self.fake.store_gate.close();
            self.fake.digest_gate.let_through(OPEN);
        }
    }

    /// rayon's global pool with 4 threads (more than any digest limit here), built once.
    fn rayon_pool() {
        static BUILD: Once = Once::new();
        BUILD.call_once(|| {
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(4)
                .build_global();
        });
    }

    async fn check(limits: Limits, fetches: usize, digests: usize, stores: usize) -> Check {
        static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let one_at_a_time = ONE_AT_A_TIME.lock().await;
        rayon_pool();
        let (events, received) = std_mpsc::channel();
        let fake = Fake {
            limits,
            runtime_thread: thread::current().id(),
            events: Mutex::new(events),
            fetch_gate: Semaphore::new(fetches),
            digest_gate: Turnstile::default(),
            store_gate: Semaphore::new(stores),
            delay: |_| Duration::ZERO,
            loads: Mutex::default(),
            problems: Mutex::default(),
            stored: Mutex::default(),
        };
        fake.digest_gate.let_through(digests);
        Check {
            fake: Arc::new(fake),
            events: Arc::new(Mutex::new(received)),
            _one_at_a_time: one_at_a_time,
        }
    }

    impl Check {
        /// Waits (500 ms at most, in real time) for `stage` to start `n` more items; the
        /// wait runs on the blocking pool, so virtual time stands still meanwhile.
        async fn starts(&self, stage: Stage, n: usize, why: &str) {
            let events = Arc::clone(&self.events);
            let seen = tokio::task::spawn_blocking(move || {
                let events = events.lock().unwrap_or_else(PoisonError::into_inner);
                let mut seen = 0;
                while seen < n {
                    match events.recv_timeout(STUCK) {
                        Ok((s, _)) if s == stage => seen += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                seen
            })
            .await
            .expect("the check's wait does not panic");
            self.no_problems();
            assert_eq!(
                seen,
                n,
                "{why}: only {seen} of the {n} {} expected started (loads: {})",
                stage.many(),
                self.loads()
            );
        }

        /// Lets the runtime run until it is idle with no digest running, several times over.
        async fn quiet(&self) {
            let mut calm = 0;
            for _ in 0..200 {
                let before = (
                    self.fake.load(Stage::Fetch).started,
                    self.fake.load(Stage::Digest).ended,
                );
                // Every job given to rayon before this point has ended (the jobs queued
                // before a marker have started, and every thread finished its job).
                tokio::task::spawn_blocking(|| {
                    rayon::join(|| (), || ());
                    rayon::broadcast(|_| ());
                })
                .await
                .expect("an empty job");
                tokio::time::sleep(Duration::from_millis(1)).await;
                let digest = self.fake.load(Stage::Digest);
                let after = (self.fake.load(Stage::Fetch).started, digest.ended);
                calm = if before == after && digest.running == 0 {
                    calm + 1
                } else {
                    0
                };
                if calm == 3 {
                    return;
                }
            }
        }

        fn no_problems(&self) {
            let problems = self
                .fake
                .problems
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            assert!(problems.is_empty(), "{}", problems.join("\n"));
        }

        fn loads(&self) -> String {
            [Stage::Fetch, Stage::Digest, Stage::Store]
                .map(|stage| {
                    let load = self.fake.load(stage);
                    format!(
                        "{stage:?} {} running, {} started",
                        load.running, load.started
                    )
                })
                .join(", ")
        }

        fn expected(ids: &[u32]) -> Vec<(u32, u64)> {
            ids.iter().map(|&id| (id, digest_of(&record(id)))).collect()
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn digests_run_off_the_runtime_which_keeps_answering_meanwhile() {
        let limits = Limits {
            fetches: 2,
            digests: 2,
            stores: 2,
            capacity: 2,
        };
        let check = check(limits, OPEN, 0, OPEN).await;
        let ids = vec![1, 2, 3, 4];
        let pipeline = tokio::spawn(run_pipeline(Arc::clone(&check.fake), ids.clone(), limits));
        check
            .starts(Stage::Digest, 2, "2 digests should be held at once")
            .await;
        // Both digests are held: a task on the runtime still answers.
        let (ping, pong) = oneshot::channel();
        tokio::spawn(async move { ping.send("pong") });
        assert_eq!(
            pong.await,
            Ok("pong"),
            "the runtime should answer while digests run"
        );
        check.fake.digest_gate.let_through(OPEN);
        let stored = pipeline.await.expect("the pipeline panicked");
        check.no_problems();
        assert_eq!(stored, Check::expected(&ids));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn each_stage_reaches_its_limit_and_never_goes_over_it() {
        let limits = Limits {
            fetches: 3,
            digests: 2,
            stores: 2,
            capacity: 1,
        };
        let check = check(limits, 0, 0, 0).await;
        let ids: Vec<u32> = (0..12).collect();
        let pipeline = tokio::spawn(run_pipeline(Arc::clone(&check.fake), ids.clone(), limits));
        check
            .starts(Stage::Fetch, 3, "3 fetches at once while 12 wait")
            .await;
        tokio::time::sleep(Duration::from_millis(1)).await; // the runtime is idle
        assert_eq!(
            check.fake.load(Stage::Fetch).started,
            3,
            "3 fetches are held: no fourth should start"
        );
        check.fake.fetch_gate.add_permits(OPEN);
        check
            .starts(Stage::Digest, 2, "2 digests at once while more are fetched")
            .await;
        check.fake.digest_gate.let_through(OPEN);
        check
            .starts(Stage::Store, 2, "2 stores at once while more are digested")
            .await;
        check.quiet().await;
        assert_eq!(
            check.fake.load(Stage::Store).started,
            2,
            "2 stores are held: no third should start"
        );
        check.fake.store_gate.add_permits(OPEN);
        let stored = pipeline.await.expect("the pipeline panicked");
        check.no_problems();
        for (stage, limit) in [
            (Stage::Fetch, limits.fetches),
            (Stage::Digest, limits.digests),
            (Stage::Store, limits.stores),
        ] {
            assert_eq!(
                check.fake.load(stage).most,
                limit,
                "most {} at once",
                stage.many()
            );
        }
        assert_eq!(stored, Check::expected(&ids));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_stuck_store_stage_stops_the_fetching() {
        let limits = Limits {
            fetches: 2,
            digests: 2,
            stores: 1,
            capacity: 1,
        };
        let check = check(limits, OPEN, OPEN, 0).await;
        let ids: Vec<u32> = (0..40).collect();
        let pipeline = tokio::spawn(run_pipeline(Arc::clone(&check.fake), ids.clone(), limits));
        check.starts(Stage::Store, 1, "the first store").await;
        check.quiet().await;
        // In the pipeline at most: each stage's limit, each channel's capacity, and the
        // item each stage holds while it waits to send it on.
        let most = limits.fetches + limits.digests + limits.stores + 2 * limits.capacity + 2;
        let fetched = check.fake.load(Stage::Fetch).started;
        assert!(
            fetched <= most,
            "with the store stage stuck, {fetched} of 40 items were fetched: the channels \
             and limits hold at most {most}, so the fetch stage should have waited"
        );
        check.fake.store_gate.add_permits(OPEN);
        let stored = pipeline.await.expect("the pipeline panicked");
        check.no_problems();
        assert_eq!(stored, Check::expected(&ids));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn every_item_comes_out_once_in_order_and_every_stage_ends() {
        let limits = Limits {
            fetches: 3,
            digests: 2,
            stores: 2,
            capacity: 2,
        };
        let mut check = check(limits, OPEN, OPEN, OPEN).await;
        // Later ids are quicker: they finish first.
        Arc::get_mut(&mut check.fake).expect("not shared yet").delay =
            |id| Duration::from_millis(u64::from(30 - id));
        let ids = vec![7, 3, 11, 5, 2, 9, 4, 12];
        let stored = run_pipeline(Arc::clone(&check.fake), ids.clone(), limits).await;
        check.no_problems();
        assert_eq!(
            stored,
            Check::expected(&ids),
            "(id, digest) in the order of the ids"
        );
        let mut written = check
            .fake
            .stored
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        written.sort_unstable();
        let mut all = ids.clone();
        all.sort_unstable();
        assert_eq!(
            written, all,
            "each item stored once, before run_pipeline returns"
        );
        // (A digest job may still hold its clone of the stages for a moment after it has
        // answered: what must be over is every task.)
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0,
            "run_pipeline returned while a stage's task still ran: every stage should have \
             ended, and been awaited"
        );
    }
}

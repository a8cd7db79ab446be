//! # Blocking inside async stalls everything
//!
//! An async runtime runs many tasks on a few threads (a current-thread runtime: on one).
//! A task gives its thread back only at an `.await` that is not ready. Code that blocks
//! instead — `std::thread::sleep`, a synchronous database driver, `std::fs`, a long CPU
//! loop — holds the thread, and every other task on it stops: heartbeats are missed,
//! health checks time out, requests that need a millisecond wait for seconds. Nothing
//! crashes; the service just goes deaf.
//! (Python: calling `time.sleep()` or `requests.get()` inside a coroutine; the fix there
//! is `await loop.run_in_executor(None, blocking_fn)` / `asyncio.to_thread`.)
//!
//! `tokio::task::spawn_blocking(closure)` runs the closure on a separate pool of threads
//! meant for blocking, and gives back a `JoinHandle` to `.await`: the task waits without
//! holding its worker thread. The closure must be `Send + 'static`, so move into it what
//! it needs (an `Arc` of the client). `tokio::spawn` does not help (the task still runs
//! on the runtime's threads), and `block_in_place` panics on a current-thread runtime.
//!
//! ## Your job
//! `total_stock` calls a blocking store straight from async code, so while it runs no
//! other task gets the thread. Fix it so that the runtime stays free while the lookups
//! run, and the answer stays the same: every sku is looked up in the store, and a lookup
//! that panics still makes `total_stock` panic (a wrong total is worse than none).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - <https://docs.rs/tokio/latest/tokio/index.html#cpu-bound-tasks-and-blocking-code>
//! - <https://ryhl.io/blog/async-what-is-blocking/>

use std::sync::Arc;
use std::time::Duration;

/// A blocking client (a synchronous database driver, say): each call holds the calling
/// thread until the answer comes.
pub trait BlockingStore: Send + Sync + 'static {
    fn stock(&self, sku: u32) -> u64;
}

/// Adds up the stock of every sku, with the store's blocking calls.
pub async fn total_stock<S: BlockingStore>(store: Arc<S>, skus: Vec<u32>) -> u64 {
    // Each call holds this thread until the store answers.
    skus.iter().map(|&sku| store.stock(sku)).sum()
}

/// A store that takes 150 ms of real time per lookup.
struct SlowStore;

impl BlockingStore for SlowStore {
    fn stock(&self, sku: u32) -> u64 {
        std::thread::sleep(Duration::from_millis(150));
        u64::from(sku) * 10
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let heartbeat = tokio::spawn(async {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        for beat in 0.. {
            interval.tick().await;
            println!("heartbeat {beat}");
        }
    });
    // While the lookups run (450 ms), the heartbeat should keep printing.
    let total = total_stock(Arc::new(SlowStore), vec![1, 2, 3]).await;
    println!("total stock: {total}");
    heartbeat.abort();
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/blocking_in_async.toml`
    // (the blocking calls left on the runtime thread, in `tokio::spawn`, behind
    // `block_in_place`, `Handle::block_on` or a joined std thread; a handle never awaited; a
    // faked answer; a panicking lookup swallowed).
    //
    // How: on tokio's paused clock, timers cannot drive a heartbeat here, because tokio
    // stops auto-advancing virtual time while a `spawn_blocking` task runs (its clock
    // cannot know how long blocking work takes). So the heartbeat is a task that answers
    // pings: each lookup pings it and waits (a little real time at most) for the answer,
    // which only comes if the runtime's thread is free to run the heartbeat.
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc as std_mpsc;
    use std::thread::{self, ThreadId};
    use tokio::sync::mpsc;

    /// A store whose every lookup needs the heartbeat task to answer while it waits.
    struct HeartbeatStore {
        ping: mpsc::UnboundedSender<()>,
        pong: Mutex<std_mpsc::Receiver<()>>,
        threads: Mutex<Vec<ThreadId>>,
    }

    impl BlockingStore for HeartbeatStore {
        fn stock(&self, sku: u32) -> u64 {
            self.threads.lock().unwrap().push(thread::current().id());
            self.ping.send(()).expect("the heartbeat task is running");
            self.pong
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_millis(500))
                .expect(
                    "the heartbeat did not beat while the lookup ran: the blocking call is \
                     holding the runtime's only thread",
                );
            u64::from(sku) * 10
        }
    }

    /// Starts the heartbeat task; it counts each beat.
    fn store_with_heartbeat() -> (Arc<HeartbeatStore>, Arc<AtomicUsize>) {
        let (ping, mut pings) = mpsc::unbounded_channel();
        let (pong, pongs) = std_mpsc::channel();
        let beats = Arc::new(AtomicUsize::new(0));
        let counter = beats.clone();
        tokio::spawn(async move {
            while pings.recv().await.is_some() {
                counter.fetch_add(1, SeqCst);
                let _ = pong.send(());
            }
        });
        let store = HeartbeatStore {
            ping,
            pong: Mutex::new(pongs),
            threads: Mutex::new(Vec::new()),
        };
        (Arc::new(store), beats)
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_keeps_beating_while_the_lookups_run() {
        let (store, beats) = store_with_heartbeat();
        let total = total_stock(store.clone(), vec![1, 2, 3]).await;
        assert_eq!(
            total, 60,
            "the total stock of skus 1, 2 and 3 is 10 + 20 + 30"
        );
        assert_eq!(
            beats.load(SeqCst),
            3,
            "the heartbeat should have beaten once during each of the 3 lookups"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_lookups_run_off_the_runtime_thread() {
        let (store, _beats) = store_with_heartbeat();
        total_stock(store.clone(), vec![7, 8]).await;
        let threads = store.threads.lock().unwrap().clone();
        assert_eq!(threads.len(), 2, "one lookup per sku");
        assert!(
            threads.iter().all(|&id| id != thread::current().id()),
            "the blocking calls ran on the runtime's own thread"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_tasks_run_while_the_lookups_wait() {
        let (store, beats) = store_with_heartbeat();
        // Two totals at once, served by one heartbeat, on one runtime thread.
        let (a, b) = tokio::join!(
            total_stock(store.clone(), vec![1, 2]),
            total_stock(store.clone(), vec![3, 4, 5]),
        );
        assert_eq!((a, b), (30, 120));
        assert_eq!(beats.load(SeqCst), 5);
    }

    /// Panics on sku 13, after the heartbeat has answered its ping.
    struct UnluckyStore(Arc<HeartbeatStore>);

    impl BlockingStore for UnluckyStore {
        fn stock(&self, sku: u32) -> u64 {
            let stock = self.0.stock(sku);
            assert_ne!(sku, 13, "sku 13 is unlucky: its lookup panics");
            stock
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_panics_makes_the_total_panic() {
        let (store, _beats) = store_with_heartbeat();
        let unlucky = Arc::new(UnluckyStore(store.clone()));
        let outcome = tokio::spawn(total_stock(unlucky, vec![1, 13])).await;
        assert!(
            outcome.as_ref().is_err_and(|error| error.is_panic()),
            "the lookup of sku 13 panicked, so `total_stock` should panic too, not answer {:?}",
            outcome.ok()
        );
        let threads = store.threads.lock().unwrap().clone();
        assert!(
            threads.iter().all(|&id| id != thread::current().id()),
            "the blocking calls ran on the runtime's own thread"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_skus_no_stock() {
        let (store, beats) = store_with_heartbeat();
        assert_eq!(total_stock(store, vec![]).await, 0);
        assert_eq!(beats.load(SeqCst), 0);
    }
}

//! # Bridging: async code from sync code, and sync code from async code
//!
//! Two directions, each with its tool and its trap. **Async from sync**: a plain thread (a
//! sync library's callback, a CLI, a test, a worker of a C library) needs the result of an
//! async client. `Handle::block_on(future)` polls the future on the calling thread, with the
//! runtime's timers and I/O; a future that spawns tasks gets them run by the runtime's
//! workers. A *sync facade* goes one step further: a type with plain `fn`s that owns a
//! small runtime of its own and blocks on it (`reqwest::blocking` is built that way), so its
//! callers never see async at all. The trap: `block_on` on a thread that is already running
//! async code panics, `"Cannot start a runtime from within a runtime"`: the thread would
//! block the very tasks that have to make progress. From async code, await the future.
//! **Sync from async**: a blocking call inside a task. `spawn_blocking` moves it to another
//! thread but needs `'static` data; `tokio::task::block_in_place(|| ...)` runs it right here,
//! borrowing what it likes, and hands this worker's other tasks to a new thread meanwhile.
//! The trap: a current-thread runtime has no other worker to hand them to, so it panics,
//! `"can call blocking only when running on the multi-threaded runtime"`.
//! Why in real services: a sync plugin API or an FFI callback that must call an async
//! database client; a sync template engine's helper that needs a cached value; a CPU-light
//! but blocking parser called on borrowed request data.
//! (Python: `asyncio.run_coroutine_threadsafe(coro, loop).result()` from another thread,
//! `asyncio.run()` in a sync facade, and `await asyncio.to_thread(f)` for the other way;
//! `asyncio.run()` inside a running loop raises `RuntimeError`, tokio panics.)
//!
//! ## Your job
//! - `BlockingClient`: a sync facade over `Client` that builds and owns its own runtime
//!   (`tokio::runtime::Builder`, with what the client needs enabled); `get` blocks on it.
//! - `fetch_with_handle`: from a plain thread, run `client.get(key)` on the runtime of
//!   `handle` and wait for the answer (`Handle::block_on`).
//! - `total_in_place`: sum `parse` over the borrowed `lines`, a blocking call, with
//!   `block_in_place`, so the worker's other tasks run meanwhile.
//!
//! Called where they do not belong, these must raise tokio's own panics (the checks expect
//! them): no "safer" workaround that hides the mistake.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Handle.html#method.block_on>
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Runtime.html#method.block_on>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.block_in_place.html>
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Builder.html#method.new_current_thread>
//! - CHEATSHEET.md, "`Handle::block_on`: sync code that needs an async result" and
//!   "Typical mistakes" 2 and 3

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

/// An async client, as a database or HTTP client is: each request runs as a task of the
/// runtime (its connection's task) and takes a little time.
#[derive(Clone, Default)]
pub struct Client {
    /// The name of the thread each request's task ran on.
    served_by: Arc<Mutex<Vec<String>>>,
}

impl Client {
    pub async fn get(&self, key: &str) -> String {
        let (key, served_by) = (key.to_string(), Arc::clone(&self.served_by));
        let request = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let thread = thread::current().name().unwrap_or("unnamed").to_string();
            served_by.lock().expect("not poisoned").push(thread);
            format!("value of {key}")
        });
        request.await.expect("the request task panicked")
    }

    /// How many requests were served, and on which threads.
    pub fn served_by(&self) -> Vec<String> {
        self.served_by.lock().expect("not poisoned").clone()
    }
}

/// A sync API over `Client`: plain `fn`s, for callers that are not async.
pub struct BlockingClient {
    runtime: Runtime,
    client: Client,
}

impl BlockingClient {
    /// Builds the facade's own runtime.
    pub fn new(client: Client) -> std::io::Result<Self> {
        // TODO: build a runtime for the facade, with what `Client::get` needs enabled.
        let _ = client;
        todo!("build the facade's runtime")
    }

    /// Blocks the calling thread until the client answers.
    pub fn get(&self, key: &str) -> String {
        // TODO: block on `self.client.get(key)` with the facade's runtime.
        let _ = (&self.runtime, &self.client, key);
        todo!("block on the client's answer")
    }
}

/// From a plain thread: runs `client.get(key)` with the runtime of `handle`, and waits.
pub fn fetch_with_handle(handle: &Handle, client: &Client, key: &str) -> String {
    // TODO: wait for `client.get(key)` with the runtime behind `handle`.
    let _ = (handle, client, key);
    todo!("block on the answer through the handle")
}

/// Sums `parse` over `lines` in place, on this worker, letting its other tasks move on.
pub async fn total_in_place(lines: &[String], parse: impl Fn(&str) -> u64) -> u64 {
    // TODO: `parse` blocks, and here it holds the worker: every task queued there waits.
    lines.iter().map(|line| parse(line)).sum()
}

fn main() {
    // Sync code, a sync facade: no async in sight for the caller.
    let facade = Arc::new(BlockingClient::new(Client::default()).expect("a runtime"));
    let callers: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|key| {
            let facade = Arc::clone(&facade);
            thread::spawn(move || facade.get(key))
        })
        .collect();
    for caller in callers {
        println!("facade: {}", caller.join().expect("a caller panicked"));
    }

    // A runtime elsewhere in the program, and a plain thread that needs an answer from it.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (handle, client) = (runtime.handle().clone(), Client::default());
    let answer = thread::spawn(move || fetch_with_handle(&handle, &client, "gamma"));
    println!("handle: {}", answer.join().expect("the thread panicked"));

    // Blocking work on borrowed data, from a task of the multi-threaded runtime.
    let lines: Vec<String> = ["12", "30", "0"].map(String::from).to_vec();
    let total =
        runtime.block_on(async { total_in_place(&lines, |line| line.parse().unwrap_or(0)).await });
    println!("in place: {total}");
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - the facade's runtime without timers (`Builder::new_current_thread().build()`: the
    //   client's request panics), or a facade that polls with `futures::executor::block_on`
    //   (no runtime: "no reactor running"; inside `runtime.enter()`: no panic where tokio's
    //   is expected, the trap hidden);
    // - `fetch_with_handle` on a runtime of its own (`Runtime::new()` per call) instead of
    //   the one `handle` names, or `futures::executor::block_on`;
    // - a workaround that hides the trap in async code: a spawned task and a std channel,
    //   `block_in_place` around `block_on`: the checks expect tokio's panic;
    // - `total_in_place` blocking the worker (as shipped): the worker's other tasks wait;
    //   `spawn_blocking` cannot borrow `lines` and `parse`, and does not raise tokio's
    //   panic on a current-thread runtime.
    //
    // How: the client's request tasks note their thread's name, so which runtime served
    // them shows; the trap checks catch the panic and compare its message with tokio's. The
    // in-place check's `parse` waits until a task spawned after it started has run; a bound
    // of 500 ms only turns a wait that can never end into a failure instead of a hang.
    use super::*;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::mpsc as std_mpsc;
    use tokio::sync::oneshot;

    const STUCK: Duration = Duration::from_millis(500);

    /// The message of a caught panic.
    fn message(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }

    /// Runs `f`, which must panic with a message that starts with `expected`.
    fn expect_panic(f: impl FnOnce(), expected: &str, why: &str) {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => panic!("{why}: it returned instead of panicking with {expected:?}"),
            Err(payload) => {
                let got = message(payload.as_ref());
                assert!(
                    got.starts_with(expected),
                    "{why}: it panicked with {got:?}, not tokio's {expected:?}"
                );
            }
        }
    }

    fn runtime_named(name: &str) -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("the checks' runtime")
    }

    #[test]
    fn the_facade_answers_plain_threads() {
        let client = Client::default();
        let facade = Arc::new(BlockingClient::new(client.clone()).expect("a runtime"));
        let callers: Vec<_> = (0..4)
            .map(|n| {
                let facade = Arc::clone(&facade);
                thread::spawn(move || facade.get(&format!("key {n}")))
            })
            .collect();
        let answers: Vec<String> = callers
            .into_iter()
            .map(|caller| caller.join().expect("a caller of the facade panicked"))
            .collect();
        assert_eq!(
            answers,
            [
                "value of key 0",
                "value of key 1",
                "value of key 2",
                "value of key 3"
            ]
        );
        assert_eq!(
            client.served_by().len(),
            4,
            "each get should be one request of the client"
        );
    }

    #[test]
    fn the_facade_called_from_async_code_raises_tokios_panic() {
        let facade = BlockingClient::new(Client::default()).expect("a runtime");
        let elsewhere = runtime_named("elsewhere");
        expect_panic(
            || {
                elsewhere.block_on(async {
                    let _ = facade.get("key");
                });
            },
            "Cannot start a runtime from within a runtime",
            "the facade, called from async code",
        );
    }

    #[test]
    fn fetch_with_handle_runs_on_that_runtime_from_a_plain_thread() {
        let runtime = runtime_named("the-handles-runtime");
        let (handle, client) = (runtime.handle().clone(), Client::default());
        let answer = thread::spawn({
            let client = client.clone();
            move || fetch_with_handle(&handle, &client, "key")
        })
        .join()
        .expect("fetch_with_handle panicked on a plain thread");
        assert_eq!(answer, "value of key");
        assert_eq!(
            client.served_by(),
            ["the-handles-runtime"],
            "the request should run on the runtime that `handle` names"
        );
    }

    #[test]
    fn fetch_with_handle_inside_the_runtime_raises_tokios_panic() {
        let runtime = runtime_named("the-handles-runtime");
        let client = Client::default();
        expect_panic(
            || {
                runtime.block_on(async {
                    let _ = fetch_with_handle(&Handle::current(), &client, "key");
                });
            },
            "Cannot start a runtime from within a runtime",
            "fetch_with_handle, called from async code",
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn total_in_place_lets_the_workers_other_tasks_run() {
        let (blocked, parse_started) = oneshot::channel::<()>();
        let (open, gate) = std_mpsc::channel::<()>();
        let blocked = Mutex::new(Some(blocked));
        let gate = Mutex::new(gate);
        // On the runtime's one worker: a task that sums borrowed lines.
        let summing = tokio::spawn(async move {
            let lines: Vec<String> = ["1", "20", "300"].map(String::from).to_vec();
            let parse = |line: &str| {
                if let Some(blocked) = blocked.lock().expect("not poisoned").take() {
                    let _ = blocked.send(());
                    let waited = gate.lock().expect("not poisoned").recv_timeout(STUCK);
                    assert!(
                        waited.is_ok(),
                        "while parse blocked, a task on the same worker never ran: \
                         the blocking call held the worker"
                    );
                }
                line.parse::<u64>().expect("a number")
            };
            total_in_place(&lines, parse).await
        });
        parse_started.await.expect("parse should start");
        // Queued behind the blocked call, on the same runtime: it runs only if the worker was
        // handed over.
        tokio::spawn(async move { open.send(()) });
        let total = summing.await.expect("total_in_place panicked");
        assert_eq!(total, 321);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn total_in_place_on_a_current_thread_runtime_raises_tokios_panic() {
        let lines = vec!["1".to_string()];
        let outcome =
            futures::FutureExt::catch_unwind(AssertUnwindSafe(total_in_place(&lines, |line| {
                line.parse().expect("a number")
            })))
            .await;
        let expected = "can call blocking only when running on the multi-threaded runtime";
        match outcome {
            Ok(_) => panic!(
                "total_in_place on a current-thread runtime returned instead of panicking with {expected:?}"
            ),
            Err(payload) => {
                let got = message(payload.as_ref());
                assert!(
                    got.starts_with(expected),
                    "it panicked with {got:?}, not tokio's {expected:?}"
                );
            }
        }
    }
}

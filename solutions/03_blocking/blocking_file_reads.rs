//! # Blocking file reads, each on the blocking pool
//!
//! `std::fs` and most database drivers are blocking: a call holds its thread until the disk
//! or the server answers. tokio gives such calls their own pool, `spawn_blocking`: each
//! closure runs on a blocking-pool thread, and the task that awaits its `JoinHandle` gives
//! its worker back meanwhile. The pool is large on purpose (up to 512 threads by default,
//! `Builder::max_blocking_threads`; idle threads exit after 10 s): its threads spend their
//! time waiting, not computing, so many of them cost memory, not CPU. One `spawn_blocking`
//! per call lets the calls wait at the same time; one closure looping over every call makes
//! them wait one after another.
//! Why in real services: loading a few dozen config or template files, reading uploads from
//! disk, a sync SDK call per item; done in a loop on the runtime, they stall every request.
//! (Python: `await asyncio.gather(*(loop.run_in_executor(None, read, p) for p in paths))`;
//! Rust has no GIL, but the idea is the same: blocking I/O goes to a thread pool made for
//! waiting, and tokio's `spawn_blocking` is that pool.)
//!
//! ## Your job
//! `read_all` reads every key straight from async code, one after another, holding the
//! runtime's thread. Make it start one blocking read per key on the blocking pool, so that
//! they all wait at once while the runtime stays free, and return the results in the order
//! of the keys (an error stays an error for its key, the others still come back).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - <https://docs.rs/tokio/latest/tokio/runtime/struct.Builder.html#method.max_blocking_threads>
//! - <https://docs.rs/futures/latest/futures/future/fn.join_all.html>
//! - CHEATSHEET.md, "`spawn_blocking`: blocking I/O"

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;

/// A blocking store of files: every call holds the calling thread until the data is read.
pub trait Storage: Send + Sync + 'static {
    fn read(&self, key: &str) -> io::Result<Vec<u8>>;
}

/// Files in a folder on disk, read with `std::fs`.
pub struct DiskStorage {
    pub root: PathBuf,
}

impl Storage for DiskStorage {
    fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.root.join(key))
    }
}

/// Reads every key, all at once on the blocking pool; one result per key, in key order.
pub async fn read_all<S: Storage>(storage: Arc<S>, keys: Vec<String>) -> Vec<io::Result<Vec<u8>>> {
    let reads = keys.into_iter().map(|key| {
        let storage = Arc::clone(&storage);
        tokio::task::spawn_blocking(move || storage.read(&key))
    });
    join_all(reads)
        .await
        .into_iter()
        .map(|joined| joined.expect("a read panicked"))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let root = std::env::temp_dir().join("asynclings-blocking-file-reads");
    std::fs::create_dir_all(&root).expect("a folder in the temp dir");
    for name in ["a.txt", "b.txt"] {
        std::fs::write(root.join(name), format!("contents of {name}")).expect("a file written");
    }
    let keys = ["a.txt", "missing.txt", "b.txt"].map(String::from).to_vec();
    let results = read_all(Arc::new(DiskStorage { root: root.clone() }), keys.clone()).await;
    for (key, result) in keys.iter().zip(results) {
        match result {
            Ok(bytes) => println!("{key}: {}", String::from_utf8_lossy(&bytes)),
            Err(error) => println!("{key}: error: {error}"),
        }
    }
    let _ = std::fs::remove_dir_all(root);
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - reading straight from the async fn (as shipped), or inside `tokio::spawn`: the read
    //   runs on the runtime's only thread, which it would hold until it is done;
    // - one `spawn_blocking` whose closure loops over the keys: the reads wait one after
    //   another, so never more than one is in flight;
    // - spawning every read but awaiting none (or collecting in completion order): results
    //   missing, or in the order the reads finished instead of the order of the keys;
    // - turning an error into a panic or dropping it: each key gets its own `Result`.
    //
    // How: the test storage parks every read until the check releases it, and tells the
    // check when a read starts. The check (on the runtime's only thread) sees every read
    // start before it releases any: that only happens if the reads all wait at once and the
    // runtime is free meanwhile. It then releases them in reverse order. A read still parked
    // when a check ends is released by the drop of the check's gates; a bound of 500 ms
    // only turns a read that no check will ever release into a failure instead of a hang.
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;
    use std::thread::{self, ThreadId};
    use std::time::Duration;
    use tokio::sync::mpsc;

    const STUCK: Duration = Duration::from_millis(500);

    /// A storage whose read of a key waits for the check to release that key.
    struct ParkedStorage {
        runtime_thread: ThreadId,
        started: mpsc::UnboundedSender<String>,
        gates: Mutex<HashMap<String, std_mpsc::Receiver<()>>>,
        in_flight: Mutex<usize>,
    }

    impl Storage for ParkedStorage {
        fn read(&self, key: &str) -> io::Result<Vec<u8>> {
            assert_ne!(
                thread::current().id(),
                self.runtime_thread,
                "the read of {key:?} ran on the runtime's own thread: a blocking call there \
                 holds it, and no other task can run until the disk answers"
            );
            let gate = self.gates.lock().unwrap().remove(key);
            let gate = gate.unwrap_or_else(|| panic!("{key:?} was read twice"));
            *self.in_flight.lock().unwrap() += 1;
            let _ = self.started.send(key.to_string());
            let released = gate.recv_timeout(STUCK);
            let in_flight = {
                let mut in_flight = self.in_flight.lock().unwrap();
                *in_flight -= 1;
                *in_flight + 1
            };
            if released == Err(std_mpsc::RecvTimeoutError::Timeout) {
                panic!(
                    "the read of {key:?} waited for the other reads to start, but only \
                     {in_flight} read(s) were in flight: the reads run one after another"
                );
            }
            match key.strip_prefix("missing/") {
                Some(_) => Err(io::Error::new(io::ErrorKind::NotFound, key.to_string())),
                None => Ok(format!("contents of {key}").into_bytes()),
            }
        }
    }

    /// The storage, the starts it reports, and the gates that release each key's read.
    fn parked(
        keys: &[&str],
    ) -> (
        Arc<ParkedStorage>,
        mpsc::UnboundedReceiver<String>,
        HashMap<String, std_mpsc::Sender<()>>,
    ) {
        let (started, starts) = mpsc::unbounded_channel();
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for &key in keys {
            let (release, gate) = std_mpsc::channel();
            senders.insert(key.to_string(), release);
            receivers.insert(key.to_string(), gate);
        }
        let storage = ParkedStorage {
            runtime_thread: thread::current().id(),
            started,
            gates: Mutex::new(receivers),
            in_flight: Mutex::new(0),
        };
        (Arc::new(storage), starts, senders)
    }

    fn keys(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|key| key.to_string()).collect()
    }

    fn contents(key: &str) -> Vec<u8> {
        format!("contents of {key}").into_bytes()
    }

    /// Waits until every key's read has started, then releases them last key first.
    async fn release_all_once_started(
        mut starts: mpsc::UnboundedReceiver<String>,
        gates: HashMap<String, std_mpsc::Sender<()>>,
        order: &[&str],
    ) -> Vec<String> {
        let mut started = Vec::new();
        while started.len() < order.len() {
            started.push(starts.recv().await.expect("the storage is alive"));
        }
        for key in order.iter().rev() {
            let _ = gates[*key].send(());
        }
        started
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_read_waits_at_once_while_the_runtime_stays_free() {
        let order = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let (storage, starts, gates) = parked(&order);
        let reading = read_all(storage, keys(&order));
        let releasing = release_all_once_started(starts, gates, &order);
        tokio::pin!(reading, releasing);
        let started = tokio::select! {
            started = &mut releasing => started,
            _ = &mut reading => panic!(
                "read_all returned before all 8 reads had started: they did not wait at once"
            ),
        };
        let results = reading.await;
        assert_eq!(started.len(), 8, "8 keys, 8 reads");
        let read: Vec<_> = results.into_iter().map(|r| r.expect("no error")).collect();
        assert_eq!(read, order.map(contents), "one result per key");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn results_come_back_in_the_order_of_the_keys_not_of_completion() {
        let order = ["first", "second", "third"];
        let (storage, starts, gates) = parked(&order);
        // Released third, second, first: the last key finishes first.
        let (results, _) = tokio::join!(
            read_all(storage, keys(&order)),
            release_all_once_started(starts, gates, &order),
        );
        let read: Vec<_> = results.into_iter().map(|r| r.expect("no error")).collect();
        assert_eq!(
            read,
            order.map(contents),
            "the results should be in the order of the keys, whatever order the reads end in"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_read_is_an_error_for_its_key_only() {
        let order = ["a", "missing/b", "c"];
        let (storage, starts, gates) = parked(&order);
        let (results, _) = tokio::join!(
            read_all(storage, keys(&order)),
            release_all_once_started(starts, gates, &order),
        );
        assert_eq!(results.len(), 3, "one result per key");
        assert_eq!(results[0].as_ref().ok(), Some(&contents("a")));
        let error = results[1].as_ref().expect_err("missing/b does not exist");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(results[2].as_ref().ok(), Some(&contents("c")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn real_files_on_disk_are_read() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("one.txt"), "1").unwrap();
        std::fs::write(dir.path().join("two.txt"), "22").unwrap();
        let storage = Arc::new(DiskStorage {
            root: dir.path().to_path_buf(),
        });
        let results = read_all(storage, keys(&["two.txt", "none.txt", "one.txt"])).await;
        assert_eq!(results.len(), 3, "one result per key");
        assert_eq!(results[0].as_ref().ok(), Some(&b"22".to_vec()));
        assert_eq!(
            results[1].as_ref().map_err(io::Error::kind).err(),
            Some(io::ErrorKind::NotFound),
            "none.txt does not exist"
        );
        assert_eq!(results[2].as_ref().ok(), Some(&b"1".to_vec()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_keys_no_reads() {
        let (storage, _starts, _gates) = parked(&[]);
        assert!(read_all(storage, Vec::new()).await.is_empty());
    }
}

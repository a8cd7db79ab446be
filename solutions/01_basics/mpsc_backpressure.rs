//! # Backpressure with a bounded `mpsc` channel
//!
//! A producer that is faster than its consumer must be slowed down, or the difference piles
//! up in memory until the process dies. A bounded queue does it for free: when the queue is
//! full, the producer's `send(..).await` waits until the consumer has taken an item. That
//! waiting *is* backpressure, and it travels upstream — a producer that waits stops reading
//! its input, its input's sender waits, and so on.
//! (Python: `asyncio.Queue(maxsize=n)` with `await queue.put(item)` and `await queue.get()`.)
//!
//! `tokio::sync::mpsc::channel(capacity)` returns a `Sender` (cloneable: many producers) and
//! one `Receiver`. `recv().await` returns `None` once the queue is empty *and every `Sender`
//! has been dropped* — that is how a consumer learns the work is over, so a forgotten
//! `Sender` clone keeps it waiting forever. `send` returns an error once the receiver is
//! gone. Avoid `unbounded_channel` for work queues: its `send` never waits, so there is no
//! backpressure at all; and `try_send` does not wait either — it fails when the queue is full.
//!
//! ## Your job
//! Implement `produce`, `consume` and `pipeline` (replace each `todo!()`).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/index.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/fn.channel.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Sender.html#method.send>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Receiver.html#method.recv>

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::sleep;

/// A pretend slow disk: each write takes `write_ms`.
pub struct Disk {
    write_ms: u64,
    written: Mutex<Vec<u32>>,
}

impl Disk {
    pub fn new(write_ms: u64) -> Self {
        Disk {
            write_ms,
            written: Mutex::new(Vec::new()),
        }
    }

    pub async fn write(&self, record: u32) {
        sleep(Duration::from_millis(self.write_ms)).await;
        self.written.lock().unwrap().push(record);
    }

    /// Every record written so far, in the order written.
    pub fn written(&self) -> Vec<u32> {
        self.written.lock().unwrap().clone()
    }
}

/// Sends every record, in order, waiting whenever the queue is full. Stops early if the
/// receiver is gone: nobody would read the rest, so once a send has failed (or the channel is
/// seen closed) no further record is read from `records`.
pub async fn produce(tx: mpsc::Sender<u32>, records: impl IntoIterator<Item = u32>) {
    for record in records {
        if tx.send(record).await.is_err() {
            break;
        }
    }
    // `tx` is dropped here: if it was the last sender, the consumer's `recv` returns `None`.
}

/// Writes every record it receives to `disk`, until every sender is gone.
pub async fn consume(mut rx: mpsc::Receiver<u32>, disk: &Disk) {
    while let Some(record) = rx.recv().await {
        disk.write(record).await;
    }
}

/// Streams `records` to `disk` through a queue of `capacity`: the producer reads ahead
/// until that queue is full, and never gets more than a queue's worth ahead of the disk.
pub async fn pipeline(records: impl IntoIterator<Item = u32>, capacity: usize, disk: &Disk) {
    let (tx, rx) = mpsc::channel(capacity);
    // `tx` moves into the producer, so the consumer ends when the producer does.
    tokio::join!(produce(tx, records), consume(rx, disk));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let disk = Disk::new(100);
    let records = (1..=8).inspect(|record| println!("read record {record}"));
    let disk_progress = async {
        for _ in 0..4 {
            sleep(Duration::from_millis(150)).await;
            println!("... {} records on disk", disk.written().len());
        }
    };
    // With a queue of 2 the reader stays at most a few records ahead of the disk.
    tokio::join!(pipeline(records, 2, &disk), disk_progress);
    println!("on disk: {:?}", disk.written());
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/mpsc_backpressure.toml`
    // (an unbounded or ignored capacity, `try_send`, a `Vec` read up front, a task per send,
    // a `Sender` kept alive, a consumer that stops early or gives up when idle, a batch taken
    // with `recv_many`, a pipeline that writes without a queue, a producer that reads on after
    // the receiver is gone).
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::{Instant, advance, timeout};
    use tokio_test::task::spawn;
    use tokio_test::{assert_pending, assert_ready};

    const FOREVER: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn the_producer_waits_while_the_queue_is_full() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut producer = spawn(produce(tx, [1, 2, 3]));
        assert_pending!(
            producer.poll(),
            "the queue holds 2 records: sending the 3rd must wait (backpressure)"
        );
        assert_eq!(
            rx.len(),
            2,
            "the queue should be full while the producer waits"
        );
        assert!(
            !producer.is_woken(),
            "nothing was taken: the producer must keep waiting"
        );
        assert_eq!(rx.recv().await, Some(1));
        assert!(
            producer.is_woken(),
            "taking a record frees a slot: the waiting producer must be woken"
        );
        assert_ready!(
            producer.poll(),
            "with a free slot the producer sends its last record"
        );
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(
            rx.recv().await,
            None,
            "the producer is done: its `Sender` must be gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_consumer_ends_when_every_sender_is_dropped() {
        let disk = Arc::new(Disk::new(10));
        let (tx, rx) = mpsc::channel(4);
        let second_tx = tx.clone();
        let consumer = {
            let disk = Arc::clone(&disk);
            tokio::spawn(async move { consume(rx, &disk).await })
        };
        tx.send(1).await.unwrap();
        drop(tx);
        // A long quiet spell: a consumer must not give up on a sender that is still alive.
        sleep(Duration::from_secs(30 * 24 * 3600)).await;
        assert!(
            !consumer.is_finished(),
            "a `Sender` is still alive, so more records may come: the consumer must keep waiting"
        );
        second_tx.send(2).await.unwrap();
        drop(second_tx);
        timeout(FOREVER, consumer)
            .await
            .expect("every sender is gone: the consumer should end (recv returns None)")
            .expect("the consumer panicked");
        assert_eq!(disk.written(), [1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_stops_when_the_receiver_is_gone() {
        let (tx, rx) = mpsc::channel(4);
        drop(rx);
        let read = AtomicUsize::new(0);
        let records = (0..1000).inspect(|_| {
            read.fetch_add(1, Ordering::SeqCst);
        });
        timeout(FOREVER, produce(tx, records))
            .await
            .expect("the producer should stop once nobody can receive");
        assert!(
            read.load(Ordering::SeqCst) <= 1,
            "the receiver was gone before the first send: the producer read {} records, \
             it should stop reading once a send fails",
            read.load(Ordering::SeqCst)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_record_reaches_the_disk_in_order_at_the_disks_pace() {
        let disk = Disk::new(10);
        let start = Instant::now();
        timeout(FOREVER, pipeline(0..50, 4, &disk))
            .await
            .expect("the pipeline never ended: is a `Sender` still alive?");
        assert_eq!(
            disk.written(),
            (0..50).collect::<Vec<_>>(),
            "records lost or reordered"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(500),
            "50 writes of 10 ms, the disk never idle, take 500 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_reads_at_most_a_queue_ahead_of_the_disk() {
        // Capacity 2: at most 2 records in the queue, 1 being written, 1 in the producer's
        // hand waiting to be sent.
        let disk = Disk::new(100);
        let read = AtomicUsize::new(0);
        let records = (0..20).inspect(|_| {
            read.fetch_add(1, Ordering::SeqCst);
        });
        let mut pipeline = spawn(pipeline(records, 2, &disk));
        let mut done = false;
        for step in 0..=20 {
            // Let it run as far as it can at this instant.
            while !done {
                done = pipeline.poll().is_ready();
                if !pipeline.is_woken() {
                    break;
                }
            }
            let ahead = read.load(Ordering::SeqCst) - disk.written().len();
            assert!(
                ahead <= 2 + 2,
                "at {} ms the producer had read {ahead} records the disk had not written: \
                 with a queue of 2 it must wait (is the channel bounded?)",
                step * 100
            );
            advance(Duration::from_millis(100)).await;
        }
        assert!(done, "20 writes of 100 ms should be done after 2 s");
        assert_eq!(disk.written(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn the_producer_reads_ahead_until_the_queue_is_full() {
        for capacity in [1, 3, 6] {
            let disk = Disk::new(100);
            let read = AtomicUsize::new(0);
            let records = (0..20).inspect(|_| {
                read.fetch_add(1, Ordering::SeqCst);
            });
            let mut pipeline = spawn(pipeline(records, capacity, &disk));
            // Let it run as far as it can at the first instant.
            while pipeline.poll().is_pending() && pipeline.is_woken() {}
            // 1 record being written, `capacity` in the queue, maybe 1 in the producer's hand.
            let read = read.load(Ordering::SeqCst);
            assert!(
                (capacity + 1..=capacity + 2).contains(&read),
                "with a queue of {capacity} and a slow disk, the producer should have read \
                 {} or {} records before waiting, not {read}: is the queue's capacity the \
                 one asked for?",
                capacity + 1,
                capacity + 2
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any records, capacity and write time: all arrive, in order, at the disk's pace.
        #[test]
        fn every_record_arrives_in_order(
            records in prop::collection::vec(any::<u32>(), 0..40),
            capacity in 1usize..8,
            write_ms in 1u64..50,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let disk = Disk::new(write_ms);
            let elapsed = runtime.block_on(async {
                let start = Instant::now();
                timeout(FOREVER, pipeline(records.clone(), capacity, &disk))
                    .await
                    .expect("the pipeline never ended: is a `Sender` still alive?");
                start.elapsed()
            });
            prop_assert_eq!(disk.written(), records.clone(), "records lost or reordered");
            prop_assert_eq!(elapsed, Duration::from_millis(write_ms * records.len() as u64));
        }
    }
}

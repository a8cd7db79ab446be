//! # An event bus: publish by topic, and a slow subscriber holds nobody up
//!
//! Inside a service, parts that should not know each other talk through a bus: the order
//! module publishes `"order.paid"`, and the mailer, the invoice writer and the metrics each
//! subscribe to it (the observer pattern). The trap is the slow subscriber. If `publish`
//! waits until every subscriber has taken the message, one stuck mailer stalls the
//! publisher and, through it, every other subscriber.
//!
//! So each subscriber gets its own *bounded* queue (an `mpsc` channel), and `publish` only
//! ever *tries* to push (`try_send`): it never waits. When a subscriber's queue is full,
//! the bus applies an explicit **lag policy**: here, the new message is dropped *for that
//! subscriber only* and counted in its `missed()`, so it can tell it fell behind (resync,
//! log, alert). Other policies exist (drop the oldest, disconnect the laggard), but some
//! policy must be chosen; an unbounded queue just moves the problem into memory.
//!
//! Unsubscribing is dropping the `Subscription`: its `Drop` removes it from the bus, so
//! the bus never keeps queues that nobody reads.
//! (Python: a dict of topic → list of `asyncio.Queue(maxsize=n)`, `put_nowait` catching
//! `QueueFull`, and a `try/finally` or context manager to unsubscribe.)
//!
//! ## Your job
//! Write `Bus::subscribe`, `Bus::publish` and `Drop for Subscription`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Sender.html#method.try_send>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/error/enum.TrySendError.html>
//! - <https://doc.rust-lang.org/std/sync/struct.Weak.html>
//! - A real service would use `tokio::sync::broadcast` (one queue for all, lag reported as
//!   `RecvError::Lagged`) for one topic, or a broker (NATS, Kafka) between processes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::mpsc::{self, error::TrySendError};

/// One subscriber, as the bus sees it.
struct Subscriber<M> {
    id: u64,
    queue: mpsc::Sender<M>,
    missed: Arc<AtomicU64>,
}

struct Topics<M> {
    next_id: u64,
    by_topic: HashMap<String, Vec<Subscriber<M>>>,
}

/// The bus. Each subscriber's queue holds up to `capacity` messages.
pub struct Bus<M> {
    capacity: usize,
    topics: Arc<Mutex<Topics<M>>>,
}

/// A subscriber's end: receive with `recv`; drop it to unsubscribe.
pub struct Subscription<M> {
    id: u64,
    topic: String,
    queue: mpsc::Receiver<M>,
    missed: Arc<AtomicU64>,
    /// Weak: a subscription must not keep a dropped bus alive.
    topics: Weak<Mutex<Topics<M>>>,
}

fn lock<M>(topics: &Mutex<Topics<M>>) -> MutexGuard<'_, Topics<M>> {
    // Every change to `Topics` is complete before anything can panic.
    topics.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<M: Clone> Bus<M> {
    /// A bus whose subscribers each queue up to `capacity` messages (`capacity >= 1`).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a queue of 0 messages would drop everything");
        Bus {
            capacity,
            topics: Arc::new(Mutex::new(Topics {
                next_id: 0,
                by_topic: HashMap::new(),
            })),
        }
    }

    /// How many subscriptions `topic` has.
    pub fn subscribers(&self, topic: &str) -> usize {
        lock(&self.topics).by_topic.get(topic).map_or(0, Vec::len)
    }

    /// Subscribes to `topic`: every message published to it from now on is queued for
    /// this subscription, unless its queue is full.
    pub fn subscribe(&self, topic: &str) -> Subscription<M> {
        // TODO: give the subscription its own bounded queue (`mpsc::channel(self.capacity)`)
        // and a `missed` counter shared with the bus; register the sending half under
        // `topic` with a fresh id, and hand back the receiving half.
        todo!()
    }

    /// Queues `message` for every subscriber of `topic` without ever waiting; a subscriber
    /// whose queue is full misses it. Returns how many subscribers got it.
    pub async fn publish(&self, topic: &str, message: M) -> usize {
        // TODO: push a clone of `message` to each subscriber of `topic` without waiting
        // (`try_send`); a full queue means that subscriber misses it (count it in its
        // `missed`). Return how many got it.
        todo!()
    }
}

impl<M> Subscription<M> {
    /// The next message, in publishing order; `None` once the bus is gone and the queue
    /// is empty.
    pub async fn recv(&mut self) -> Option<M> {
        self.queue.recv().await
    }

    /// How many messages this subscription missed because its queue was full.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

impl<M> Drop for Subscription<M> {
    fn drop(&mut self) {
        // TODO: remove this subscription from the bus (if the bus still exists), and the
        // topic too when nobody is left on it.
        todo!()
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let bus = Bus::new(2);
    let mut mailer = bus.subscribe("order.paid");
    let stuck = bus.subscribe("order.paid");
    for order in 1..=4 {
        let got = bus.publish("order.paid", format!("order {order}")).await;
        println!("published order {order} to {got} subscriber(s)");
        println!("mailer got {:?}", mailer.recv().await);
    }
    println!("the stuck subscriber missed {} message(s)", stuck.missed());
    drop(stuck);
    println!("{} subscriber(s) left", bus.subscribers("order.paid"));
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/event_bus.toml tries each):
    // - a publish that waits for room in a full queue (`send().await`): one slow subscriber
    //   stalls the publisher and everyone after it;
    // - a full queue that silently loses messages (no `missed` count), or counts them for
    //   everyone;
    // - messages going to other topics' subscribers;
    // - a dropped subscription left on the bus (never unsubscribed), or dropping someone
    //   else's subscription with it;
    // - an unbounded queue (no lag policy at all);
    // - a subscription that keeps the bus's state alive (an `Arc`): its queue never ends.
    use super::*;
    use futures::FutureExt;
    use proptest::prelude::*;
    use tokio_test::{assert_ready, task};

    /// Publishes and insists it happened at once: `publish` must never wait.
    fn publish_now(bus: &Bus<u32>, topic: &str, message: u32) -> usize {
        bus.publish(topic, message)
            .now_or_never()
            .unwrap_or_else(|| {
                panic!("publishing {message} to `{topic}` waited: publish must never wait for room")
            })
    }

    /// Takes what is queued for `sub` right now, without waiting.
    fn drain(sub: &mut Subscription<u32>) -> Vec<u32> {
        let mut got = Vec::new();
        while let Ok(message) = sub.queue.try_recv() {
            got.push(message);
        }
        got
    }

    #[tokio::test(start_paused = true)]
    async fn subscribers_get_their_topics_messages_in_order() {
        let bus = Bus::new(8);
        let (mut a, mut b, mut other) =
            (bus.subscribe("t"), bus.subscribe("t"), bus.subscribe("u"));
        for n in 0..3 {
            assert_eq!(
                bus.publish("t", n).await,
                2,
                "two subscribers of `t` get message {n}"
            );
        }
        assert_eq!(bus.publish("nobody", 9).await, 0);
        assert_eq!(a.recv().await, Some(0));
        assert_eq!(drain(&mut a), [1, 2]);
        assert_eq!(drain(&mut b), [0, 1, 2]);
        assert_eq!(
            drain(&mut other),
            [],
            "`u` must not get messages published to `t`"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_never_makes_publish_wait() {
        let bus = Bus::new(2);
        let _stuck = bus.subscribe("t");
        let mut fast = bus.subscribe("t");
        for n in 0..5 {
            let mut publish = task::spawn(bus.publish("t", n));
            let delivered = assert_ready!(
                publish.poll(),
                "publishing message {n} waited: the stuck subscriber's queue (2) is full, \
                 and publish must never wait for room"
            );
            assert_eq!(delivered, if n < 2 { 2 } else { 1 });
            assert_eq!(
                drain(&mut fast),
                [n],
                "the fast subscriber gets every message"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_with_a_full_queue_misses_new_messages_and_is_told() {
        let bus = Bus::new(2);
        let mut slow = bus.subscribe("t");
        let mut fast = bus.subscribe("t");
        for n in 0..5 {
            publish_now(&bus, "t", n);
            drain(&mut fast);
        }
        assert_eq!(
            (drain(&mut slow), slow.missed()),
            (vec![0, 1], 3),
            "a queue of 2: the slow subscriber keeps the first 2 messages and misses 3"
        );
        assert_eq!(fast.missed(), 0, "the fast subscriber missed nothing");
        publish_now(&bus, "t", 5);
        assert_eq!(
            drain(&mut slow),
            [5],
            "once it caught up, it gets messages again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_subscription_unsubscribes_it() {
        let bus = Bus::new(2);
        let first = bus.subscribe("t");
        let mut second = bus.subscribe("t");
        drop(first);
        assert_eq!(
            bus.subscribers("t"),
            1,
            "the dropped subscription must leave the bus"
        );
        assert_eq!(bus.publish("t", 7).await, 1);
        assert_eq!(
            drain(&mut second),
            [7],
            "the other subscription is still there"
        );
        drop(second);
        assert_eq!(bus.subscribers("t"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_bus_ends_its_subscriptions_once_they_are_drained() {
        let bus = Bus::new(4);
        let mut sub = bus.subscribe("t");
        publish_now(&bus, "t", 1);
        publish_now(&bus, "t", 2);
        drop(bus);
        assert_eq!(
            sub.recv().await,
            Some(1),
            "what was queued is still delivered"
        );
        assert_eq!(sub.recv().await, Some(2));
        let end = tokio::time::timeout(std::time::Duration::from_secs(1), sub.recv()).await;
        assert_eq!(
            end,
            Ok(None),
            "the bus is gone and the queue is empty: recv should say so (None), not wait for \
             ever. A subscription that keeps the bus's state alive (an Arc) keeps its own \
             queue open"
        );
        drop(sub);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Subscribe(u8),
        Unsubscribe(usize),
        Publish(u8),
        Drain(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..2).prop_map(Step::Subscribe),
            (0usize..8).prop_map(Step::Unsubscribe),
            (0u8..2).prop_map(Step::Publish),
            (0usize..8).prop_map(Step::Drain),
        ]
    }

    /// A subscriber as the header describes it: a topic, a queue and a missed count.
    struct Model {
        topic: u8,
        queue: Vec<u32>,
        missed: u64,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any mix of subscribing, unsubscribing, publishing and reading: every subscriber
        /// gets exactly what the model's bounded queue would hold, and misses the rest.
        #[test]
        fn the_bus_follows_the_model(
            capacity in 1usize..4,
            steps in prop::collection::vec(step(), 1..40),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async {
                let bus = Bus::new(capacity);
                let mut subs: Vec<(Subscription<u32>, Model)> = Vec::new();
                for (n, step) in steps.iter().enumerate() {
                    let message = n as u32;
                    match *step {
                        Step::Subscribe(topic) => {
                            let sub = bus.subscribe(&topic.to_string());
                            subs.push((sub, Model { topic, queue: Vec::new(), missed: 0 }));
                        }
                        Step::Unsubscribe(i) if i < subs.len() => drop(subs.remove(i)),
                        Step::Publish(topic) => {
                            let mut expected = 0;
                            for (_, model) in subs.iter_mut().filter(|(_, m)| m.topic == topic) {
                                if model.queue.len() < capacity {
                                    model.queue.push(message);
                                    expected += 1;
                                } else {
                                    model.missed += 1;
                                }
                            }
                            let published = bus.publish(&topic.to_string(), message).now_or_never();
                            prop_assert_eq!(published, Some(expected), "step {}: {:?} (None: it waited)", n, step);
                        }
                        Step::Drain(i) if i < subs.len() => {
                            let (sub, model) = &mut subs[i];
                            prop_assert_eq!(drain(sub), std::mem::take(&mut model.queue), "step {}", n);
                            prop_assert_eq!(sub.missed(), model.missed, "step {}", n);
                        }
                        Step::Unsubscribe(_) | Step::Drain(_) => {}
                    }
                    for topic in 0..2u8 {
                        let expected = subs.iter().filter(|(_, m)| m.topic == topic).count();
                        prop_assert_eq!(bus.subscribers(&topic.to_string()), expected, "step {}", n);
                    }
                }
                Ok(())
            })?;
        }
    }
}

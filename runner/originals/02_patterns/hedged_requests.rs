//! # Hedged requests: a second try before the first one gives up
//!
//! Most requests are fast, a few are very slow: a garbage-collection pause, a cold cache, a
//! busy disk on one replica. Waiting for a timeout and retrying makes those few slower
//! still. *Hedging* sends the same request to a second replica when the first has not
//! answered within a short delay (typically the 95th percentile latency) and takes whichever
//! answer comes first. The loser is cancelled, which in async Rust means *dropped*: its
//! connection is closed and its work stops. It costs a few percent more requests and cuts
//! the tail latency sharply ("The Tail at Scale", Dean and Barroso).
//!
//! The rules:
//! - the primary goes out at once; the secondary only if the primary has not answered
//!   within `delay` — never both at once, never a third;
//! - the first *success* wins, and the other request is dropped on the spot;
//! - an error is not an answer worth waiting for: if the primary fails before the delay,
//!   send the secondary at once; if one of two in flight fails, wait for the other; if both
//!   fail, return the last error.
//!
//! `tokio::select!` races futures and drops the losers. To keep a future running across
//! two `select!`s (the primary races the delay, then races the secondary), pin it once and
//! race `&mut` it.
//! (Python: `asyncio.wait({primary}, timeout=delay)`, then
//! `asyncio.wait({primary, secondary}, return_when=FIRST_COMPLETED)` and `cancel()`.)
//!
//! ## Your job
//! Write `hedged`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/macro.select.html> (also "Resuming an async operation")
//! - <https://docs.rs/tokio/latest/tokio/macro.pin.html>
//! - <https://research.google/pubs/the-tail-at-scale/>
//! - A real service would use `tower::hedge` (it picks the delay from measured latencies).

use std::time::Duration;

use tokio::time::sleep;

/// Which replica a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replica {
    Primary,
    Secondary,
}

/// Sends `send(Replica::Primary)`, and `send(Replica::Secondary)` too if the primary has not
/// answered within `delay` (or has failed); returns the first success, or the last error.
pub async fn hedged<T, E, F, Fut>(delay: Duration, mut send: F) -> Result<T, E>
where
    F: FnMut(Replica) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // TODO: send to the primary, and race it against `sleep(delay)`. If the delay wins (or
    // the primary fails first), send to the secondary; then race the two, drop the loser,
    // and return the first success (or, if both fail, the last error).
    todo!()
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = tokio::time::Instant::now();
    for primary_ms in [20, 80, 400] {
        let send = |replica| async move {
            let took = match replica {
                Replica::Primary => primary_ms,
                Replica::Secondary => 60,
            };
            sleep(Duration::from_millis(took)).await;
            Ok::<_, ()>(format!("{replica:?} answered after {took} ms"))
        };
        let begin = start.elapsed();
        let answer = hedged(Duration::from_millis(100), send).await;
        println!(
            "primary takes {primary_ms:>3} ms: {answer:?}, in {:?}",
            start.elapsed() - begin
        );
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject (corpus/02_patterns/hedged_requests.toml tries each):
    // - always sending both requests at once (no delay), or only ever the primary;
    // - hedging again and again (a third request, more than two in flight);
    // - waiting for both answers instead of taking the first;
    // - leaving the loser running (spawning instead of dropping it);
    // - taking an error as the winning answer, or waiting out the delay after the primary
    //   already failed.
    use super::*;
    use proptest::prelude::*;
    use timeline::{Event, Timeline};
    use tokio::time::Instant;

    const DELAY: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Two pretend replicas: each answers after its latency, with success or an error, and
    /// draws each request on the timeline (a request dropped early ends its bar early).
    #[derive(Clone)]
    struct Replicas {
        primary: (u64, bool),
        secondary: (u64, bool),
        timeline: Timeline,
    }

    impl Replicas {
        fn new(primary: (u64, bool), secondary: (u64, bool)) -> Self {
            Replicas {
                primary,
                secondary,
                timeline: Timeline::new(),
            }
        }

        async fn send(&self, replica: Replica) -> Result<Replica, Replica> {
            let (latency, ok) = match replica {
                Replica::Primary => self.primary,
                Replica::Secondary => self.secondary,
            };
            let _span = self.timeline.span(format!("{replica:?}"));
            sleep(ms(latency)).await;
            if ok { Ok(replica) } else { Err(replica) }
        }

        /// Each request sent: (replica, sent at, ended at — answered or dropped).
        fn requests(&self) -> Vec<(String, Duration, Option<Duration>)> {
            let events = self.timeline.events();
            events
                .into_iter()
                .map(|Event { row, start, end }| (row, start, end))
                .collect()
        }
    }

    async fn run(replicas: &Replicas) -> (Result<Replica, Replica>, Duration) {
        let start = Instant::now();
        let result = hedged(DELAY, |replica| replicas.send(replica)).await;
        (result, start.elapsed())
    }

    fn request(replica: &str, sent: u64, ended: u64) -> (String, Duration, Option<Duration>) {
        (replica.to_string(), ms(sent), Some(ms(ended)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_primary_is_never_hedged() {
        let replicas = Replicas::new((30, true), (10, true));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!((result, elapsed), (Ok(Replica::Primary), ms(30)));
        assert_eq!(
            replicas.requests(),
            vec![request("Primary", 0, 30)],
            "the primary answered within 100 ms: no second request\n{}",
            replicas.timeline.picture("only the primary, 0..30 ms")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_primary_is_hedged_after_the_delay_and_the_loser_dropped() {
        let replicas = Replicas::new((500, true), (50, true));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!(
            replicas.requests(),
            vec![request("Primary", 0, 150), request("Secondary", 100, 150)],
            "the secondary goes out at 100 ms and answers at 150 ms; the primary must be \
             dropped right then, not left running\n{}",
            replicas
                .timeline
                .picture("primary 0..150 (dropped), secondary 100..150")
        );
        assert_eq!((result, elapsed), (Ok(Replica::Secondary), ms(150)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_primary_still_wins_if_it_answers_first_after_the_hedge() {
        let replicas = Replicas::new((130, true), (100, true));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!((result, elapsed), (Ok(Replica::Primary), ms(130)));
        assert_eq!(
            replicas.requests(),
            vec![request("Primary", 0, 130), request("Secondary", 100, 130)],
            "the primary answers at 130 ms: the hedge sent at 100 ms is dropped then\n{}",
            replicas
                .timeline
                .picture("primary 0..130, secondary 100..130 (dropped)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_two_requests() {
        let replicas = Replicas::new((1_000, true), (1_000, true));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!((result, elapsed), (Ok(Replica::Primary), ms(1_000)));
        assert_eq!(
            replicas.requests(),
            vec![
                request("Primary", 0, 1_000),
                request("Secondary", 100, 1_000)
            ],
            "one hedge per call, however long the wait\n{}",
            replicas
                .timeline
                .picture("primary 0..1000, secondary 100..1000")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_primary_that_fails_fast_is_hedged_at_once() {
        let replicas = Replicas::new((10, false), (50, true));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!(
            replicas.requests(),
            vec![request("Primary", 0, 10), request("Secondary", 10, 60)],
            "the primary failed at 10 ms: send the secondary then, not at 100 ms\n{}",
            replicas
                .timeline
                .picture("primary 0..10 (error), secondary 10..60")
        );
        assert_eq!((result, elapsed), (Ok(Replica::Secondary), ms(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_is_not_the_winning_answer() {
        let replicas = Replicas::new((300, true), (20, false));
        let (result, elapsed) = run(&replicas).await;
        assert_eq!(
            (result, elapsed),
            (Ok(Replica::Primary), ms(300)),
            "the secondary failed at 120 ms: keep waiting for the primary"
        );
        let replicas = Replicas::new((300, false), (20, false));
        assert_eq!(
            run(&replicas).await,
            (Err(Replica::Primary), ms(300)),
            "both failed: return the last error, when it comes"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any latencies and outcomes (never two events at the same instant): the result,
        /// the time, and the requests sent are those the rules give.
        #[test]
        fn hedging_follows_the_rules(
            primary in (0u64..40, any::<bool>()),
            secondary in (0u64..40, any::<bool>()),
        ) {
            // Primary latencies end in 3, secondary ones in 7, the delay in 0: no ties.
            let p = (primary.0 * 10 + 3, primary.1);
            let s = (secondary.0 * 10 + 7, secondary.1);
            let delay = DELAY.as_millis() as u64;
            let sent = if p.0 < delay { p.0 } else { delay };
            let (s_sent, s_done) = (sent, sent + s.0);
            let expected = if p.0 < delay && p.1 {
                (Ok(Replica::Primary), p.0, vec![request("Primary", 0, p.0)])
            } else if p.0 < delay {
                (
                    if s.1 { Ok(Replica::Secondary) } else { Err(Replica::Secondary) },
                    s_done,
                    vec![request("Primary", 0, p.0), request("Secondary", s_sent, s_done)],
                )
            } else {
                let ((first, first_ok, first_at), (second, second_ok, second_at)) = if p.0 < s_done {
                    ((Replica::Primary, p.1, p.0), (Replica::Secondary, s.1, s_done))
                } else {
                    ((Replica::Secondary, s.1, s_done), (Replica::Primary, p.1, p.0))
                };
                let (result, end) = if first_ok {
                    (Ok(first), first_at)
                } else if second_ok {
                    (Ok(second), second_at)
                } else {
                    (Err(second), second_at)
                };
                (
                    result,
                    end,
                    vec![request("Primary", 0, p.0.min(end)), request("Secondary", s_sent, s_done.min(end))],
                )
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let (result, elapsed, replicas) = runtime.block_on(async {
                // The timeline starts on the paused clock, inside the runtime.
                let replicas = Replicas::new(p, s);
                let (result, elapsed) = run(&replicas).await;
                (result, elapsed, replicas)
            });
            prop_assert_eq!(
                (result, elapsed, replicas.requests()),
                (expected.0, ms(expected.1), expected.2),
                "primary {:?}, secondary {:?} (ms, ok)\n{}", p, s,
                replicas.timeline.picture("see the rules in the header")
            );
        }
    }
}

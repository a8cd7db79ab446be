//! # Request/response with `oneshot`: an actor that owns its state
//!
//! Instead of sharing state behind a lock, give it to one task — an *actor* — and let
//! everyone else send it messages. The actor handles one message at a time, so its state
//! needs no lock and is always consistent. A request that wants an answer carries the
//! sending half of a `oneshot` channel; the actor sends the answer through it, and the
//! caller awaits the receiving half. This is how tokio's own docs build a connection
//! manager, and how many services guard a cache, a socket or a counter.
//! (Python: putting `(command, future)` on an `asyncio.Queue` and awaiting the future.)
//!
//! The failure cases are where actors go wrong. If the actor is gone (it stopped or
//! crashed), `mpsc::Sender::send` fails, or the `oneshot::Sender` inside a queued request is
//! dropped and the caller's `oneshot::Receiver` returns `Err(RecvError)`: turn both into an
//! error for the caller — never a panic, never a hang. If a caller gives up (its future is
//! dropped, e.g. by a `timeout`), the actor's `reply.send(..)` returns `Err`: that is
//! normal, ignore it — an `unwrap` there lets any impatient caller crash the actor for
//! everybody. The actor ends when `recv` returns `None`: every handle has been dropped.
//!
//! ## Your job
//! Implement the actor's loop `run`, and `Registry::register` and `Registry::lookup`
//! (replace each `todo!()`).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/oneshot/index.html>
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/index.html>
//! - <https://tokio.rs/tokio/tutorial/channels>

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The actor is gone: it stopped, or crashed, before it answered.
#[derive(Debug, PartialEq, Eq)]
pub struct ActorGone;

/// What callers can ask the registry. Each request carries the `oneshot::Sender` that the
/// actor answers through.
enum Command {
    Register {
        name: String,
        reply: oneshot::Sender<u64>,
    },
    Lookup {
        id: u64,
        reply: oneshot::Sender<Option<String>>,
    },
}

/// A handle to the registry actor, which hands out ids 0, 1, 2, ... to names. Cheap to
/// clone; the actor runs until every handle is dropped.
#[derive(Clone)]
pub struct Registry {
    commands: mpsc::Sender<Command>,
}

impl Registry {
    /// Starts the actor; returns a handle to it and its task.
    pub fn start() -> (Registry, JoinHandle<()>) {
        let (commands, inbox) = mpsc::channel(32);
        let actor = tokio::spawn(run(inbox));
        (Registry { commands }, actor)
    }

    /// Registers `name` and returns its id: the number of names registered before it.
    pub async fn register(&self, name: impl Into<String>) -> Result<u64, ActorGone> {
        let (reply, answer) = oneshot::channel();
        let name = name.into();
        self.commands
            .send(Command::Register { name, reply })
            .await
            .map_err(|_| ActorGone)?;
        answer.await.map_err(|_| ActorGone)
    }

    /// The name registered under `id`, if any.
    pub async fn lookup(&self, id: u64) -> Result<Option<String>, ActorGone> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Lookup { id, reply })
            .await
            .map_err(|_| ActorGone)?;
        answer.await.map_err(|_| ActorGone)
    }
}

/// The actor: owns the names and handles one command at a time, until every handle is gone.
async fn run(mut inbox: mpsc::Receiver<Command>) {
    let mut names: Vec<String> = Vec::new();
    while let Some(command) = inbox.recv().await {
        // A caller that gave up has dropped its receiver; `send` then fails, and that is fine.
        match command {
            Command::Register { name, reply } => {
                let id = names.len() as u64;
                names.push(name);
                let _ = reply.send(id);
            }
            Command::Lookup { id, reply } => {
                let name = usize::try_from(id).ok().and_then(|i| names.get(i)).cloned();
                let _ = reply.send(name);
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (registry, actor) = Registry::start();
    let callers: Vec<_> = ["ada", "grace", "linus"]
        .into_iter()
        .map(|name| {
            let registry = registry.clone();
            tokio::spawn(async move { (name, registry.register(name).await) })
        })
        .collect();
    for caller in callers {
        let (name, id) = caller.await.expect("a caller panicked");
        println!("{name} got id {id:?}");
    }
    println!("id 1 is {:?}", registry.lookup(1).await);
    println!("id 7 is {:?}", registry.lookup(7).await);
    drop(registry);
    actor.await.expect("the actor panicked");
    println!("every handle dropped: the actor stopped");
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/01_basics/oneshot_request.toml`
    // (`unwrap` on either side of the oneshot, a call that hangs or retries when the actor is
    // gone, an actor that never ends, ends early or gives up when idle, answers mixed up,
    // names kept in the handles instead of asking the actor).
    use super::*;
    use std::collections::HashSet;
    use std::future::Future;
    use std::task::Poll;
    use std::time::Duration;
    use tokio::time::timeout;
    use tokio_test::task::spawn;
    use tokio_test::{assert_pending, assert_ready_eq};

    const FOREVER: Duration = Duration::from_secs(3600);

    /// What a call answers when the actor is already gone: it must not wait for anything, nor
    /// keep retrying (polled while it keeps waking itself, at most 100 times).
    fn answer_without_the_actor<T>(call: impl Future<Output = T>) -> T {
        let mut call = spawn(call);
        for _ in 0..100 {
            if let Poll::Ready(answer) = call.poll() {
                return answer;
            }
            if !call.is_woken() {
                break;
            }
        }
        panic!("the actor is gone: the call must fail at once, not wait or retry");
    }

    /// Lets the other tasks run for a while (they are all on this thread).
    async fn let_others_run() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ids_follow_the_order_of_requests() {
        let (registry, _actor) = Registry::start();
        assert_eq!(
            registry.register("ada").await,
            Ok(0),
            "the first name gets id 0"
        );
        assert_eq!(
            registry.register("grace").await,
            Ok(1),
            "the second name gets id 1"
        );
        assert_eq!(registry.lookup(0).await, Ok(Some("ada".to_string())));
        assert_eq!(registry.lookup(1).await, Ok(Some("grace".to_string())));
        assert_eq!(registry.lookup(2).await, Ok(None), "nobody has id 2 yet");
    }

    #[tokio::test(start_paused = true)]
    async fn each_of_many_concurrent_callers_gets_its_own_answer() {
        let (registry, _actor) = Registry::start();
        let callers: Vec<_> = (0..100)
            .map(|i| {
                let registry = registry.clone();
                tokio::spawn(async move {
                    let name = format!("user{i}");
                    let id = registry.register(name.clone()).await.expect("actor gone");
                    let found = registry.lookup(id).await.expect("actor gone");
                    (name, id, found)
                })
            })
            .collect();
        let mut ids = HashSet::new();
        for caller in callers {
            let (name, id, found) = caller.await.expect("a caller panicked");
            assert_eq!(
                found.as_deref(),
                Some(name.as_str()),
                "{name} registered as id {id}, but that id holds another name: answers mixed up"
            );
            assert!(ids.insert(id), "id {id} was handed out twice");
        }
        assert_eq!(ids, (0..100).collect(), "100 names should get ids 0 to 99");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_fails_cleanly_when_the_actor_is_gone() {
        let (registry, actor) = Registry::start();
        actor.abort();
        let _ = actor.await;
        let answer = answer_without_the_actor(registry.register("ada"));
        assert_eq!(
            answer,
            Err(ActorGone),
            "the actor is gone: `register` must say so"
        );
        let answer = answer_without_the_actor(registry.lookup(0));
        assert_eq!(
            answer,
            Err(ActorGone),
            "the actor is gone: `lookup` must say so"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_actor_idle_for_a_month_still_answers() {
        let (registry, actor) = Registry::start();
        assert_eq!(registry.register("ada").await, Ok(0));
        tokio::time::sleep(Duration::from_secs(30 * 24 * 3600)).await;
        assert!(
            !actor.is_finished(),
            "the actor stopped after a quiet month, though handles are alive: it must wait for \
             commands until every handle is dropped"
        );
        assert_eq!(registry.lookup(0).await, Ok(Some("ada".to_string())));
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_actor_knows_the_names() {
        let (registry, actor) = Registry::start();
        assert_eq!(registry.register("ada").await, Ok(0));
        assert_eq!(registry.lookup(0).await, Ok(Some("ada".to_string())));
        actor.abort();
        let _ = actor.await;
        let answer = answer_without_the_actor(registry.lookup(0));
        assert_eq!(
            answer,
            Err(ActorGone),
            "the actor is gone, yet `lookup` answered: the names belong to the actor, ask it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_caller_gets_an_error_when_the_actor_dies() {
        let (registry, actor) = Registry::start();
        let mut call = spawn(registry.register("ada"));
        assert_pending!(call.poll(), "the actor has not run yet: the call must wait");
        // The actor dies with the request still in its inbox: its `oneshot::Sender` is dropped.
        actor.abort();
        let _ = actor.await;
        assert!(
            call.is_woken(),
            "the waiting caller must be woken when the actor dies"
        );
        assert_ready_eq!(
            call.poll(),
            Err(ActorGone),
            "the actor died before answering: the caller must get `Err(ActorGone)`"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_kill_the_actor() {
        let (registry, actor) = Registry::start();
        let mut impatient = spawn(registry.register("impatient"));
        assert_pending!(impatient.poll());
        drop(impatient); // the caller gives up: nobody will read the answer
        let_others_run().await;
        assert!(
            !actor.is_finished(),
            "the actor stopped after a caller gave up: is it unwrapping `reply.send(..)`?"
        );
        let answer = timeout(FOREVER, registry.register("patient"))
            .await
            .expect("the call never returned");
        assert!(
            answer.is_ok(),
            "the actor must keep serving after a caller gives up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_actor_stops_when_every_handle_is_dropped() {
        let (registry, actor) = Registry::start();
        let other = registry.clone();
        assert_eq!(registry.register("ada").await, Ok(0));
        drop(registry);
        let_others_run().await;
        assert!(
            !actor.is_finished(),
            "a handle is still alive: the actor must keep running"
        );
        drop(other);
        let_others_run().await;
        assert!(
            actor.is_finished(),
            "every handle is gone: the actor should end (`recv` returned `None`)"
        );
        actor.await.expect("the actor panicked");
    }
}

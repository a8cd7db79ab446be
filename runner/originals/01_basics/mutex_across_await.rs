//! # Locks in async code: `std::sync::Mutex`, `tokio::sync::Mutex`, `RwLock`
//!
//! A `std::sync::MutexGuard` held across an `.await` is the classic async locking bug. While
//! the task is parked at the `.await`, the lock stays taken; another task on the same worker
//! that tries to lock it blocks the whole thread, and the first task can never resume to
//! release it. Rust catches most of this at compile time: the std guard is not `Send`, so a
//! future holding it across an `.await` cannot go to `tokio::spawn` ("future cannot be sent
//! between threads safely"), and clippy's `await_holding_lock` flags it everywhere else.
//!
//! The fix depends on what the lock protects:
//! - a quick update with no I/O (a counter, a map): keep `std::sync::Mutex`, which is cheaper,
//!   and end the guard's scope *before* the `.await`. Holding any lock over slow I/O would
//!   make every task queue up behind it;
//! - something that must stay locked *across* awaits (two writes on one connection that must
//!   not interleave): `tokio::sync::Mutex`, whose `lock().await` parks the task instead of
//!   blocking the thread;
//! - read-mostly data: `tokio::sync::RwLock` lets any number of readers in at once, while a
//!   writer waits for them and then has it alone (and readers that come after a waiting
//!   writer queue behind it, so writers are not starved).
//!
//! (Python: `asyncio.Lock`; asyncio has no RwLock. In asyncio one thread runs every task, so a
//! plain dict needs no lock as long as no `await` sits inside the critical section; with one,
//! it needs an `asyncio.Lock` too. In tokio tasks run on many threads: shared data always
//! needs a lock or an atomic.)
//!
//! ## Your job
//! This file does not compile. Make it compile *and* pass the checks: pick, for each of the
//! three locks in `App`, the right kind and the right scope.
//!
//! ## Read
//! - <https://tokio.rs/tokio/tutorial/shared-state> (Holding a `MutexGuard` across an `.await`)
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html> (Which kind of mutex should you use?)
//! - <https://docs.rs/tokio/latest/tokio/sync/struct.RwLock.html>
//! - <https://rust-lang.github.io/rust-clippy/master/index.html#await_holding_lock>

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::sleep;

/// The slow audit call made for every hit.
pub const AUDIT: Duration = Duration::from_millis(100);
/// Writing one frame on the link.
pub const FRAME: Duration = Duration::from_millis(10);
/// Rendering a page.
pub const RENDER: Duration = Duration::from_millis(50);
/// Saving new settings.
pub const SAVE: Duration = Duration::from_millis(20);

/// One connection shared by every task. A reply is two frames that must stay together.
#[derive(Default)]
pub struct Link {
    frames: Vec<String>,
}

impl Link {
    async fn write_frame(&mut self, frame: String) {
        sleep(FRAME).await;
        self.frames.push(frame);
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub theme: String,
    pub version: u32,
}

pub struct App {
    /// Hits per user. Updated by every request; the update itself is instant.
    hits: std::sync::Mutex<HashMap<String, u64>>,
    /// Shared by every reply, and a reply is two awaited writes that must not interleave.
    link: std::sync::Mutex<Link>,
    /// Read by every render (for its whole duration), written rarely.
    settings: tokio::sync::Mutex<Settings>,
    /// Instrumentation for the checks: who holds the settings right now. Leave it in place.
    pub probe: Probe,
}

impl App {
    pub fn new() -> Arc<App> {
        Arc::new(App {
            hits: Default::default(),
            link: Default::default(),
            settings: tokio::sync::Mutex::new(Settings {
                theme: "light".into(),
                version: 0,
            }),
            probe: Probe::default(),
        })
    }

    pub fn hits(&self) -> HashMap<String, u64> {
        self.hits.lock().unwrap().clone()
    }

    pub async fn frames(&self) -> Vec<String> {
        self.link.lock().unwrap().frames.clone()
    }
}

async fn audit(user: &str, count: u64) {
    sleep(AUDIT).await;
    let _ = (user, count);
}

/// Counts a hit for `user`, then audits it (slow).
pub async fn record_hit(app: &App, user: &str) {
    let mut hits = app.hits.lock().unwrap();
    let count = hits.entry(user.to_string()).or_default();
    *count += 1;
    audit(user, *count).await;
}

/// One task per hit, all at once.
pub async fn record_hits(app: Arc<App>, users: Vec<String>) {
    let tasks = users.into_iter().map(|user| {
        let app = app.clone();
        tokio::spawn(async move { record_hit(&app, &user).await })
    });
    for result in join_all(tasks).await {
        result.expect("a hit task panicked");
    }
}

/// Sends the two frames of reply `id`, back to back on the shared link.
pub async fn send_reply(app: &App, id: u32) {
    let mut link = app.link.lock().unwrap();
    link.write_frame(format!("header {id}")).await;
    link.write_frame(format!("body {id}")).await;
}

/// One task per reply, all at once.
pub async fn send_replies(app: Arc<App>, ids: Vec<u32>) {
    let tasks = ids.into_iter().map(|id| {
        let app = app.clone();
        tokio::spawn(async move { send_reply(&app, id).await })
    });
    for result in join_all(tasks).await {
        result.expect("a reply task panicked");
    }
}

/// Renders a page with one consistent version of the settings.
pub async fn render(app: &App, page: u32) -> String {
    let settings = app.settings.lock().await;
    let _holding = app.probe.enter(Role::Reader);
    sleep(RENDER).await;
    format!("{} page {page} (v{})", settings.theme, settings.version)
}

pub async fn update_theme(app: &App, theme: &str) {
    let mut settings = app.settings.lock().await;
    let _holding = app.probe.enter(Role::Writer);
    sleep(SAVE).await;
    settings.theme = theme.to_string();
    settings.version += 1;
}

#[tokio::main]
async fn main() {
    let app = App::new();
    let users = ["ann", "bob", "ann", "cid", "ann"]
        .map(String::from)
        .to_vec();
    record_hits(app.clone(), users).await;
    println!("hits: {:?}", app.hits());
    send_replies(app.clone(), vec![1, 2, 3]).await;
    println!("frames: {:?}", app.frames().await);
    let pages = join_all((1..=3).map(|page| render(&app, page))).await;
    println!("pages: {pages:?}");
    update_theme(&app, "dark").await;
    println!("after update: {}", render(&app, 4).await);
}

// ---- Instrumentation for the checks (nothing to change below this line) ----

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    Writer,
}

/// Counts the readers and writers inside the settings lock.
#[derive(Default)]
pub struct Probe {
    readers: AtomicUsize,
    writers: AtomicUsize,
    max_readers: AtomicUsize,
    overlaps: AtomicUsize,
}

pub struct Holding<'a> {
    probe: &'a Probe,
    role: Role,
}

impl Probe {
    pub fn enter(&self, role: Role) -> Holding<'_> {
        let (mine, others) = match role {
            Role::Reader => (&self.readers, &self.writers),
            Role::Writer => (&self.writers, &self.readers),
        };
        let now = mine.fetch_add(1, Ordering::SeqCst) + 1;
        if others.load(Ordering::SeqCst) > 0 || (role == Role::Writer && now > 1) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if role == Role::Reader {
            self.max_readers.fetch_max(now, Ordering::SeqCst);
        }
        Holding { probe: self, role }
    }

    /// The most readers that ever held the settings at the same time.
    pub fn max_readers(&self) -> usize {
        self.max_readers.load(Ordering::SeqCst)
    }

    /// How often a writer shared the settings with anyone.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        let counter = match self.role {
            Role::Reader => &self.probe.readers,
            Role::Writer => &self.probe.writers,
        };
        counter.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - `tokio::sync::Mutex` for the hit counts, held across the audit: it compiles, but
    //   every hit waits for the one before (virtual time n·AUDIT instead of AUDIT);
    // - locking the link once per frame (or a std lock per frame): replies interleave;
    // - a `Mutex` for the settings: renders run one at a time (one reader at most);
    // - a lock that lets a writer in while a render holds the settings: counted as overlap;
    // - a `std::sync::MutexGuard` or `RwLockReadGuard` across an `.await`: does not compile
    //   where it is spawned, and the runner's clippy `await_holding_lock` rejects it anyway.
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    fn model(users: &[String]) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for user in users {
            *counts.entry(user.clone()).or_default() += 1;
        }
        counts
    }

    #[tokio::test(start_paused = true)]
    async fn hits_add_up_and_the_slow_audit_runs_outside_the_lock() {
        let app = App::new();
        let users: Vec<String> = (0..100).map(|i| format!("user{}", i % 5)).collect();
        let start = Instant::now();
        record_hits(app.clone(), users.clone()).await;
        assert_eq!(
            app.hits(),
            model(&users),
            "hits were lost or double counted"
        );
        assert_eq!(
            start.elapsed(),
            AUDIT,
            "100 hits should audit concurrently in 100 ms: the lock was held across the audit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_two_frames_of_a_reply_never_interleave() {
        let app = App::new();
        let start = Instant::now();
        send_replies(app.clone(), (1..=5).collect()).await;
        let frames = app.frames().await;
        assert_eq!(frames.len(), 10, "every reply should write two frames");
        let mut ids: Vec<u32> = Vec::new();
        for pair in frames.chunks(2) {
            let id: u32 = pair[0]
                .strip_prefix("header ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("expected a header, got {:?} in {frames:?}", pair[0]));
            assert_eq!(
                pair[1],
                format!("body {id}"),
                "another reply slipped in between header {id} and its body: hold the link across both writes"
            );
            ids.push(id);
        }
        ids.sort();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(
            start.elapsed(),
            FRAME * 10,
            "one link: the 10 frames go one after another"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn readers_hold_the_settings_at_the_same_time() {
        let app = App::new();
        let start = Instant::now();
        let pages = join_all((1..=4).map(|page| render(&app, page))).await;
        assert_eq!(
            app.probe.max_readers(),
            4,
            "only one render at a time held the settings: many readers should share them"
        );
        assert_eq!(
            start.elapsed(),
            RENDER,
            "4 renders side by side take one RENDER"
        );
        assert_eq!(pages[3], "light page 4 (v0)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_waits_for_the_readers_and_excludes_them() {
        let app = App::new();
        let start = Instant::now();
        let spawn_render = |page| {
            let app = app.clone();
            tokio::spawn(async move { render(&app, page).await })
        };
        let first = [spawn_render(1), spawn_render(2)];
        tokio::task::yield_now().await; // both renders now hold the settings
        let writer = {
            let app = app.clone();
            tokio::spawn(async move { update_theme(&app, "dark").await })
        };
        tokio::task::yield_now().await; // the writer now waits for them
        let later = [spawn_render(3), spawn_render(4)];

        let mut pages = Vec::new();
        for task in first.into_iter().chain(later) {
            pages.push(task.await.unwrap());
        }
        writer.await.unwrap();
        assert_eq!(
            app.probe.overlaps(),
            0,
            "a writer shared the settings with someone"
        );
        assert_eq!(
            pages,
            [
                "light page 1 (v0)",
                "light page 2 (v0)",
                "dark page 3 (v1)",
                "dark page 4 (v1)"
            ],
            "renders that started before the update see v0; renders queued after the waiting writer see v1"
        );
        assert_eq!(
            start.elapsed(),
            RENDER + SAVE + RENDER,
            "two renders together, then the update alone, then two renders together"
        );
    }

    /// The probe itself: without this, a probe that never counts would pass any solution.
    #[test]
    fn the_probe_sees_a_writer_that_shares_the_settings() {
        let probe = Probe::default();
        let first = probe.enter(Role::Reader);
        let second = probe.enter(Role::Reader);
        assert_eq!((probe.max_readers(), probe.overlaps()), (2, 0));
        let writer = probe.enter(Role::Writer);
        assert_eq!(probe.overlaps(), 1, "a writer beside readers");
        drop((first, second));
        let other_writer = probe.enter(Role::Writer);
        assert_eq!(probe.overlaps(), 2, "two writers at once");
        drop((writer, other_writer));
        let _alone = probe.enter(Role::Writer);
        assert_eq!(probe.overlaps(), 2, "a writer alone shares nothing");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any hits: counts match a model, and all audits overlap (one AUDIT in all).
        #[test]
        fn hit_counts_match_a_model(picks in prop::collection::vec(0u8..4, 0..40)) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a current-thread runtime");
            let users: Vec<String> = picks.iter().map(|p| format!("u{p}")).collect();
            let app = App::new();
            let elapsed = runtime.block_on(async {
                let start = Instant::now();
                record_hits(app.clone(), users.clone()).await;
                start.elapsed()
            });
            prop_assert_eq!(app.hits(), model(&users));
            let expected = if users.is_empty() { Duration::ZERO } else { AUDIT };
            prop_assert_eq!(elapsed, expected);
        }
    }
}

//! Progress is stored by exercise name, so reordering `info.toml` keeps a learner's progress:
//! what they finished stays finished, nothing is reported unknown, and the next exercise is
//! the first one, in the new order, that they have not done.

use std::path::Path;

use runner::info::Course;
use runner::state::{PROGRESS_FILE, State, Status};

/// Chapter 1 as it was ordered before `hand_written_future`/`hand_written_stream` moved next
/// to `graceful_shutdown` and `blocking_in_async` moved after `spawn_tasks`.
const OLD_ORDER: &[&str] = &[
    "lazy_futures",
    "block_on_runtime",
    "join_concurrently",
    "try_join_first_error",
    "spawn_tasks",
    "task_errors",
    "select_race",
    "joinset_completion",
    "timeouts_deadlines",
    "resource_guard",
    "streams_basics",
    "hand_written_future",
    "hand_written_stream",
    "mutex_across_await",
    "semaphore_fetcher",
    "notify_events",
    "mpsc_backpressure",
    "oneshot_request",
    "broadcast_fanout",
    "graceful_shutdown",
    "blocking_in_async",
];

fn course() -> Course {
    Course::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).expect("info.toml loads")
}

/// A progress file of a learner who finished the first `done` exercises of the old order.
fn progress_after(done: usize) -> (tempfile::TempDir, State) {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = OLD_ORDER[..done]
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect();
    std::fs::write(
        dir.path().join(PROGRESS_FILE),
        format!(
            "version = 1\nwelcomed = true\ndone = [{}]\n",
            names.join(", ")
        ),
    )
    .unwrap();
    let state = State::load(dir.path(), &course());
    (dir, state)
}

#[test]
fn every_old_chapter_one_name_is_still_in_the_course() {
    let course = course();
    let names: Vec<&str> = course.names().collect();
    for name in OLD_ORDER {
        assert!(
            names.contains(name),
            "`{name}` left the course: progress on it would be lost"
        );
    }
}

#[test]
fn progress_saved_under_the_old_order_stays_valid() {
    let course = course();
    for done in 0..=OLD_ORDER.len() {
        let (_dir, state) = progress_after(done);
        assert!(
            state.warning().is_none(),
            "after {done} exercises: {:?}",
            state.warning()
        );
        assert_eq!(state.done_count(), done);
        // Everything finished is still shown as done, wherever it moved.
        for name in &OLD_ORDER[..done] {
            let (index, _) = course.find(name).unwrap();
            assert!(
                matches!(state.status(&course, index), Status::Done),
                "{name}"
            );
        }
        // The learner carries on with the first exercise of the new order not yet done.
        let expected = course
            .exercises
            .iter()
            .find(|e| !OLD_ORDER[..done].contains(&e.name.as_str()))
            .map(|e| e.name.as_str());
        assert_eq!(
            state.current(&course).map(|(_, e)| e.name.as_str()),
            expected
        );
    }
}

#[test]
fn a_learner_past_the_hand_written_futures_resumes_at_the_first_gap() {
    // Done up to `hand_written_stream` in the old order: `blocking_in_async`, which moved
    // before that point, comes next, and the two hand-written exercises, now later in the
    // chapter, are already done.
    let (_dir, state) = progress_after(13);
    let course = course();
    let (_, current) = state.current(&course).unwrap();
    assert_eq!(current.name, "blocking_in_async");
    let (index, _) = course.find("hand_written_stream").unwrap();
    assert!(matches!(state.status(&course, index), Status::Done));
}

//! Stopping a build or a run early.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set it to stop a build or a run early (the watcher does when the file is saved again,
/// or when the learner quits).
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

//! A job's output, line by line, through a bounded channel, read until the job ends, a
//! deadline passes or the learner cancels.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Cancel;
use super::process::{Job, Runs};

/// A line longer than this arrives in pieces (a flood without newlines stays bounded).
const MAX_LINE: u64 = 16 * 1024;
/// Lines in flight between the pipes' readers and the receiver.
const IN_FLIGHT: usize = 256;
/// How often the receiver looks at the clock, the cancel flag and the job.
pub const TICK: Duration = Duration::from_millis(25);

pub enum Line {
    Out(String),
    Err(String),
}

/// Starts `command` as a job; every line of its output goes to the returned channel, which
/// closes when both pipes do.
pub fn spawn(mut command: Command, runs: Runs) -> Result<(Job, mpsc::Receiver<Line>)> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut job = Job::spawn(&mut command, runs).context(super::text::NO_TOOLCHAIN)?;
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let stdout = job.child().stdout.take().context("no stdout pipe")?;
    let stderr = job.child().stderr.take().context("no stderr pipe")?;
    forward(stdout, tx.clone(), Line::Out);
    forward(stderr, tx, Line::Err);
    Ok((job, rx))
}

fn forward(pipe: impl Read + Send + 'static, tx: mpsc::SyncSender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .is_ok_and(|n| n > 0)
        {
            let line = wrap(String::from_utf8_lossy(&buf).into_owned());
            if tx.send(line).is_err() {
                break;
            }
            buf.clear();
        }
    });
}

/// Why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Finished,
    Deadline,
    Cancelled,
}

/// Receives lines until the channel closes, the deadline passes or `cancel` is set;
/// `on_tick` runs at least every [`TICK`] and may end the wait with a [`Stop`].
pub fn pump(
    rx: &mpsc::Receiver<Line>,
    deadline: Option<Instant>,
    cancel: &Cancel,
    mut on_tick: impl FnMut() -> Option<Stop>,
    mut on_line: impl FnMut(Line),
) -> Stop {
    loop {
        if cancel.is_cancelled() {
            return Stop::Cancelled;
        }
        if let Some(stop) = on_tick() {
            return stop;
        }
        let wait = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) => left.min(TICK),
                None => return Stop::Deadline,
            },
            None => TICK,
        };
        match rx.recv_timeout(wait) {
            Ok(line) => on_line(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Stop::Finished,
        }
    }
}

//! The processes a check starts, and making sure none of them outlives it.
//!
//! What is guaranteed (Linux):
//! - Every process the runner starts (cargo, a test binary, its `--list`) leads a session of
//!   its own, so the terminal's Ctrl-C reaches the runner only, and the runner decides.
//! - The runner is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent dies
//!   is re-parented to the runner, never to init, so it stays findable.
//! - Killing a job kills, with SIGKILL, every process in its session or process group and
//!   every descendant of its leader (even one that started a session of its own), repeating
//!   until none is left, and reaps those that became the runner's children.
//! - When a test binary ends (or is killed), one sweep kills what it left behind and any
//!   leftover of an earlier job: anything still in a session a job led, and any session
//!   leader below the runner (a process that left its job's session and lost its parent).
//!   A child holding the output pipe therefore never delays the verdict. Cargo and
//!   `--list` run no learner code: they are swept only when stopped early.
//! - Not covered: a process that leaves its job's session while its parent lives on in
//!   another, unrelated session (it is not below the runner), or a setuid program.
//! - [`shutdown`] (quitting watch with q, Esc or Ctrl-C) and SIGINT, SIGTERM and SIGHUP
//!   kill every job and leftover, and start no new job, before the runner ends. SIGKILL of
//!   the runner itself cannot be caught: then its jobs are orphaned.
//!
//! Elsewhere (non-Linux Unix) a job is its process group, killed as one; other platforms
//! kill the direct child only.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

/// The leaders of the jobs running now.
static JOBS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// Every session a job ever led: what is still in one is a leftover.
static SESSIONS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static SETUP: Once = Once::new();
/// Set by [`shutdown`]: no job starts after it.
static CLOSED: AtomicBool = AtomicBool::new(false);

fn jobs() -> MutexGuard<'static, BTreeSet<u32>> {
    JOBS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a job runs: the learner's code can leave anything behind; cargo and `--list` only
/// need cleaning up when they are stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    LearnerCode,
    Tools,
}

/// A child leading its own session; killed with everything it started when asked or
/// dropped.
pub struct Job {
    child: Child,
    runs: Runs,
    /// Killed, or (for tools) waited for: nothing is left to clean up.
    settled: bool,
}

impl Job {
    pub fn spawn(command: &mut Command, runs: Runs) -> std::io::Result<Job> {
        SETUP.call_once(setup);
        own_session(command);
        let mut jobs = jobs();
        if CLOSED.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the runner is shutting down"));
        }
        let child = command.spawn()?;
        jobs.insert(child.id());
        SESSIONS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(child.id());
        Ok(Job {
            child,
            runs,
            settled: false,
        })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the leader has exited (its session may live on).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the leader, everything it started and any leftover of an ended job. Returns
    /// how many processes other than the leader there were.
    pub fn kill(&mut self) -> usize {
        self.settled = true;
        let others = kill_job(Some(self.child.id()));
        let _ = self.child.kill();
        others
    }

    /// Waits for the leader; true when it exited successfully.
    pub fn wait(&mut self) -> bool {
        self.settled |= self.runs == Runs::Tools;
        self.child.wait().is_ok_and(|status| status.success())
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.settled {
            kill_job(Some(self.child.id()));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        jobs().remove(&self.child.id());
    }
}

#[cfg(unix)]
fn own_session(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn own_session(_command: &mut Command) {}

fn setup() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer and changes no memory.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    #[cfg(unix)]
    on_signals();
}

/// A thread that, on a termination signal, kills every job, then dies of the signal.
#[cfg(unix)]
fn on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            shutdown();
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

/// Kills every job and leftover, and lets no new job start: for the runner's way out
/// (quitting watch, a termination signal). Returns when they are gone.
pub fn shutdown() {
    let leaders: Vec<u32> = {
        let jobs = jobs();
        CLOSED.store(true, Ordering::SeqCst);
        jobs.iter().copied().collect()
    };
    for leader in leaders {
        kill_job(Some(leader));
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(leader) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    kill_leftovers();
}

/// Kills, in one sweep, every process of `leader`'s job (see the module doc) and every
/// leftover of an ended job: anything still in a session a job led, and any session leader
/// below the runner (a process that left its job's session), unless it belongs to another
/// job still running. Returns how many it killed besides the leader.
pub fn kill_job(leader: Option<u32>) -> usize {
    let me = std::process::id();
    // Held for the whole sweep: a job that starts meanwhile (a new session leader below
    // the runner) must already be registered, or the sweep would take it for a leftover.
    let running = jobs();
    let others: Vec<u32> = running
        .iter()
        .copied()
        .filter(|&job| Some(job) != leader)
        .collect();
    let sessions = SESSIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    tree::kill(
        |procs, pid| {
            if leader.is_some_and(|leader| tree::in_job(procs, pid, leader)) {
                return true;
            }
            let session = tree::session(procs, pid);
            let left = sessions.contains(&session)
                || (session == pid && tree::descends_from(procs, pid, me));
            left && !others.iter().any(|&job| tree::in_job(procs, pid, job))
        },
        leader.unwrap_or(0),
    )
}

/// Kills what is left of ended jobs (see [`kill_job`]).
pub fn kill_leftovers() {
    kill_job(None);
}

#[cfg(target_os = "linux")]
mod tree {
    use std::collections::HashMap;

    /// For each pid: parent, process group, session.
    pub type Procs = HashMap<u32, (u32, u32, u32)>;

    pub fn in_job(procs: &Procs, pid: u32, leader: u32) -> bool {
        let Some(&(_, group, session)) = procs.get(&pid) else {
            return false;
        };
        group == leader || session == leader || descends_from(procs, pid, leader)
    }

    pub fn session(procs: &Procs, pid: u32) -> u32 {
        procs.get(&pid).map_or(0, |&(_, _, session)| session)
    }

    pub fn descends_from(procs: &Procs, pid: u32, ancestor: u32) -> bool {
        let mut at = pid;
        for _ in 0..procs.len() {
            match procs.get(&at) {
                Some(&(parent, _, _)) if parent == ancestor => return true,
                Some(&(parent, _, _)) if parent > 1 => at = parent,
                _ => return false,
            }
        }
        false
    }

    /// SIGKILLs every process `chosen` picks (never `spare`), until a scan finds none;
    /// reaps those that are the runner's own children. Returns how many it killed.
    pub fn kill(chosen: impl Fn(&Procs, u32) -> bool, spare: u32) -> usize {
        let me = std::process::id();
        let mut killed = std::collections::BTreeSet::new();
        for _ in 0..32 {
            let procs = scan();
            let victims: Vec<u32> = procs
                .keys()
                .copied()
                .filter(|&pid| pid != spare && pid != me && chosen(&procs, pid))
                .collect();
            if victims.is_empty() {
                break;
            }
            for &pid in &victims {
                signal(pid);
            }
            reap(&procs, &victims, me);
            killed.extend(victims);
        }
        killed.len()
    }

    fn signal(pid: u32) {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Waits for the killed processes the runner is the parent of (re-parented orphans).
    fn reap(procs: &Procs, victims: &[u32], me: u32) {
        for &pid in victims {
            if procs.get(&pid).is_some_and(|&(parent, _, _)| parent == me)
                && let Ok(pid) = i32::try_from(pid)
            {
                // SAFETY: waitpid on a pid that is our child; a null status is allowed.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            }
        }
    }

    fn scan() -> Procs {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Procs::new();
        };
        dir.flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| Some((pid, stat(pid)?)))
            .collect()
    }

    /// Parent, group and session from `/proc/PID/stat` (the name may hold spaces and
    /// parentheses, so read after the last `)`).
    fn stat(pid: u32) -> Option<(u32, u32, u32)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut fields = text.get(text.rfind(')')? + 1..)?.split_whitespace().skip(1);
        let mut next = || fields.next()?.parse().ok();
        Some((next()?, next()?, next()?))
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
mod tree {
    pub type Procs = ();
    pub fn in_job(_: &Procs, _: u32, _: u32) -> bool {
        false
    }
    pub fn session(_: &Procs, _: u32) -> u32 {
        0
    }
    pub fn descends_from(_: &Procs, _: u32, _: u32) -> bool {
        false
    }
    /// Without /proc: the job's process group, at once.
    pub fn kill(_chosen: impl Fn(&Procs, u32) -> bool, leader: u32) -> usize {
        if let Ok(pid) = i32::try_from(leader)
            && pid > 0
        {
            // SAFETY: kill(2) has no memory-safety preconditions; -pid names the group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        0
    }
}

#[cfg(not(unix))]
mod tree {
    pub type Procs = ();
    pub fn in_job(_: &Procs, _: u32, _: u32) -> bool {
        false
    }
    pub fn session(_: &Procs, _: u32) -> u32 {
        0
    }
    pub fn descends_from(_: &Procs, _: u32, _: u32) -> bool {
        false
    }
    pub fn kill(_chosen: impl Fn(&Procs, u32) -> bool, _spare: u32) -> usize {
        0
    }
}

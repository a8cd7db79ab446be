//! Running one entry's checks: its module's tests in the exercise's test binary, in a process
//! group of their own, killed with all they started at the exercise's time limit. The verdict
//! follows the runner's: a pass needs libtest's own summary with every selected check passed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::check::libtest::Summary;

pub enum Ran {
    Passed,
    Failed(String),
    /// The filter selected no test: the entry's checks never ran.
    NoChecks,
    StoppedByTimeLimit(Duration),
}

/// What to run: the test binary, and the module whose tests are the entry's checks.
pub struct Run<'a> {
    pub executable: &'a Path,
    pub module: &'a str,
    /// The folder the checks run in (the solutions package, as under `cargo test`).
    pub dir: &'a Path,
    pub limit: Duration,
}

pub fn run(run: &Run) -> Result<Ran> {
    let log = log_path(run.executable, run.module);
    let file = fs::File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
    let mut command = Command::new(run.executable);
    command
        .args(["--color", "never"])
        // Test paths start with the module's name: `wrong_3::tests::…`.
        .arg(format!("{}::", run.module))
        .current_dir(run.dir)
        .env("CARGO_MANIFEST_DIR", run.dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", run.executable.display()))?;
    let status = wait_or_kill(&mut child, run.limit)?;
    let output = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    let Some(status) = status else {
        return Ok(Ran::StoppedByTimeLimit(run.limit));
    };
    let summary = output.lines().rev().find_map(Summary::parse);
    Ok(match summary {
        Some(s) if s.passed + s.failed == 0 => Ran::NoChecks,
        Some(s) if s.ok && s.failed == 0 && status.success() => Ran::Passed,
        Some(_) => Ran::Failed(output),
        None => Ran::Failed(format!(
            "{output}\n(the checks stopped before libtest's summary: a crash or an exit)"
        )),
    })
}

/// Waits for the child; at `limit`, kills its whole process group. `None` when killed.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            #[cfg(unix)]
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) has no memory-safety preconditions; the negative pid names
                // the process group the child leads (spawned with process_group(0)).
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Several entries of one binary run at once: each writes its own log.
fn log_path(executable: &Path, module: &str) -> PathBuf {
    executable.with_extension(format!("{module}.corpus-log"))
}

/// The failing checks' messages, without the list of those that passed.
pub fn failures(output: &str) -> String {
    let kept: Vec<&str> = output
        .lines()
        .filter(|l| !(l.starts_with("test ") && l.ends_with(" ok")))
        .filter(|l| !l.trim().is_empty())
        .collect();
    kept.join("\n")
}

//! A temporary copy of the course to run the real `runner` binary on, and a
//! pseudo-terminal to drive watch mode through (shared by the tests and the benchmark).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the copies build: apart from the workspace's own artifacts.
pub fn target_dir() -> PathBuf {
    workspace().join("target").join("course-copies")
}

/// A copy of the repository in a temporary folder. All copies share one target dir, so
/// the dependencies are built once for every test.
///
/// Cargo names a workspace member's artifacts after its path *relative to the workspace*,
/// so every copy builds `exercises` into the same files: one copy at a time, or one test
/// would run the checks another just built. And never the workspace's own target dir: a
/// copy's build, newer than the learner's file, would look fresh to the real workspace.
pub struct CourseCopy {
    pub dir: tempfile::TempDir,
    _one_at_a_time: MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl CourseCopy {
    pub fn new() -> CourseCopy {
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().unwrap();
        copy_as_shipped(&workspace(), dir.path());
        CourseCopy {
            dir,
            _one_at_a_time: guard,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.file(relative), text).unwrap();
    }

    /// Saves the way many editors do: write a temporary file beside it, rename it over.
    pub fn write_by_rename(&self, relative: &str, text: &str) {
        let temp = self.file(&format!("{relative}.swp"));
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, self.file(relative)).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.file(relative)).unwrap()
    }

    /// Marks done every exercise before `name`, so that `name` is the current one.
    pub fn progress_up_to(&self, name: &str) {
        let info: toml::Table = toml::from_str(&self.read("info.toml")).unwrap();
        let names: Vec<String> = info["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .take_while(|n| n != name)
            .collect();
        self.write(
            ".asynclings-progress.toml",
            &format!("welcomed = true\ndone = {names:?}\n"),
        );
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_runner")), args)
    }

    /// `args` for the runner binary at `runner`, in this copy.
    pub fn command_of(&self, runner: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(runner);
        command
            .args(args)
            .current_dir(self.root())
            .env("CARGO_TARGET_DIR", target_dir())
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

/// Copies the course at `from` to `to` as shipped, whatever the learner did: `exercises/`
/// holds the pristine stubs of `runner/originals/`, not the learner's solved or
/// half-written files, and no progress file comes along.
pub fn copy_as_shipped(from: &Path, to: &Path) {
    copy_tree(from, to);
    let (exercises, originals) = (to.join("exercises"), from.join("runner").join("originals"));
    // The chapters' folders; `exercises/web` (a package's manifest) stays.
    for entry in std::fs::read_dir(&originals).unwrap().flatten() {
        let copied = exercises.join(entry.file_name());
        if copied.is_dir() {
            std::fs::remove_dir_all(copied).unwrap();
        }
    }
    copy_tree(&originals, &exercises);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ["target", ".git", "proptest-regressions"].contains(&name.as_ref())
            || name.starts_with(".asynclings")
        {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&*name));
        if source.is_dir() {
            copy_tree(&source, &dest);
        } else {
            std::fs::copy(&source, &dest).unwrap();
        }
    }
}

/// Ends `child` the way a learner's terminal would (SIGTERM, so the runner can stop its
/// checks), then for sure (SIGKILL); waits for it.
pub fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A child that is stopped when the test ends, passed or failed.
pub struct Stopped(pub Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// Text of a command's output, both streams.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A child process on a pseudo-terminal: what it prints is collected, keys can be typed.
pub struct Pty {
    pub child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<String>>,
    pub slave: OwnedFd,
}

impl Pty {
    pub fn spawn(command: Command) -> Pty {
        Pty::spawn_sized(command, 50, 140)
    }

    /// On a terminal of `rows` × `cols`; `TERM` is xterm-256color unless the command sets it.
    pub fn spawn_sized(mut command: Command, rows: u16, cols: u16) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given ints; the name and termios may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both fds were just opened by openpty and are owned by nobody else.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        if !command.get_envs().any(|(key, _)| key == "TERM") {
            command.env("TERM", "xterm-256color");
        }
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave.try_clone().unwrap());
        let child = command.spawn().unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), Arc::clone(&screen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            child,
            master,
            screen,
            slave,
        }
    }

    /// Everything printed so far, without colours.
    pub fn screen(&self) -> String {
        strip(&self.screen.lock().unwrap())
    }

    /// Everything printed so far, escape codes and all.
    pub fn raw(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    /// How much has been printed so far (to wait for what comes after it).
    pub fn mark(&self) -> usize {
        self.screen.lock().unwrap().len()
    }

    /// Waits until `needle` appears after `from`; returns when it did.
    pub fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> Instant {
        let start = Instant::now();
        loop {
            let raw = self.screen.lock().unwrap();
            if strip(&raw[from.min(raw.len())..]).contains(needle) {
                return Instant::now();
            }
            drop(raw);
            assert!(
                start.elapsed() < timeout,
                "`{needle}` never appeared; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits for the program to end and says whether it succeeded.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < timeout,
                "the program did not end:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.wait().unwrap().success()
    }

    /// Line editing and echo are on, as before the program started.
    pub fn terminal_is_cooked(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: termios is plain data; tcgetattr fills it from a valid, open fd.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.slave.as_raw_fd(), &mut termios) };
        rc == 0 && termios.c_lflag & libc::ICANON != 0 && termios.c_lflag & libc::ECHO != 0
    }
}

impl Drop for Pty {
    /// A failed test must not leave `runner watch` behind.
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn strip(text: &str) -> String {
    runner::check::strip_ansi(text).replace('\r', "")
}

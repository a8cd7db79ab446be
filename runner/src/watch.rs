//! Watch mode: check the current exercise on every save, react to single keys.
//!
//! Three sources feed one channel: the file watcher, the key reader and the thread that
//! runs the current check. A save while a check runs cancels it and starts a fresh one,
//! so the verdict on screen is always for the file as it is now.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use colored::Colorize;
use crossterm::event::{self, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::cargo::Cancel;
use crate::info::Course;
use crate::state::State;
use crate::verdict::{self, Checked};
use crate::{compare, hint, list, messages, screen, term};

/// Editors save in bursts (write a temp file, rename it, set permissions): wait this long
/// after the last event so one save gives one check.
const DEBOUNCE: Duration = Duration::from_millis(25);
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// Editors that save by rename (write elsewhere, move the old file away, move the new one
/// in) leave the file missing for a moment: wait this long before saying it is missing.
const MISSING_GRACE: Duration = Duration::from_millis(750);

enum Event {
    Changed(PathBuf),
    WatchFailed(String),
    Key(KeyEvent),
    Checked {
        generation: u64,
        result: Result<Checked>,
    },
}

pub fn run(root: &Path, course: &Course, state: &mut State, poll: bool) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let _watcher = watch_exercises(root, poll, tx.clone())?;
    let interactive = term::is_interactive();
    let _raw = if interactive {
        let raw = term::RawMode::enable().context("cannot read single keys from this terminal")?;
        read_keys(tx.clone());
        Some(raw)
    } else {
        None
    };
    let mut app = App {
        root,
        course,
        state,
        tx,
        interactive,
        current: 0,
        generation: 0,
        running: None,
        spoil_armed: false,
        welcome_on_screen: false,
        last: None,
        show_warnings: false,
    };
    app.current = match app.state.current(course) {
        Some((index, _)) => index,
        None => course.exercises.len() - 1,
    };
    app.welcome();
    if !interactive {
        term::println(messages::WATCH_WITHOUT_TERMINAL);
    }
    app.start_check();
    let mut rerun_at: Option<Instant> = None;
    loop {
        let event = match rerun_at {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Changed(path)) => {
                if path.ends_with(&course.exercises[app.current].path) {
                    rerun_at = Some(Instant::now() + DEBOUNCE);
                }
            }
            Ok(Event::WatchFailed(why)) => term::println(&format!(
                "{} watching the files failed: {why}\n  Restart with `{}`.",
                "!".yellow().bold(),
                crate::runner!("watch --poll")
            )),
            // A key's failure (a missing solution for `c`…) is shown; watch goes on.
            Ok(Event::Key(key)) => match app.key(key) {
                Ok(Flow::Quit) => break,
                Ok(Flow::Continue) => {}
                Err(error) => {
                    term::println(&format!("{} {error:#}", "error:".red().bold()));
                    app.help();
                }
            },
            Ok(Event::Checked { generation, result }) if generation == app.generation => {
                app.running = None;
                match result {
                    Ok(checked) => app.show(checked)?,
                    // A missing or unreadable file: say so and keep watching for the next save.
                    Err(error) => {
                        term::clear_status();
                        term::println(&format!("{} {error:#}", "error:".red().bold()));
                        app.help();
                    }
                }
            }
            Ok(Event::Checked { .. }) => {}
            Err(RecvTimeoutError::Timeout) => {
                rerun_at = None;
                app.start_check();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(cancel) = app.running.take() {
        cancel.cancel();
    }
    term::clear_status();
    term::println("");
    Ok(())
}

/// Waits (up to `MISSING_GRACE`) for a file that a save by rename briefly took away.
fn wait_for_file(path: &Path, cancel: &Cancel) {
    let until = Instant::now() + MISSING_GRACE;
    while !path.exists() && !cancel.is_cancelled() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A boxed watcher (native events, or polling) that lives as long as watch mode.
fn watch_exercises(root: &Path, poll: bool, tx: Sender<Event>) -> Result<Box<dyn Watcher>> {
    let handler = move |event: notify::Result<notify::Event>| {
        let _ = match event {
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => Ok(()),
            Ok(event) => event
                .paths
                .into_iter()
                .try_for_each(|p| tx.send(Event::Changed(p))),
            Err(error) => tx.send(Event::WatchFailed(error.to_string())),
        };
    };
    let dir = root.join("exercises");
    let mut watcher: Box<dyn Watcher> = if poll {
        let config = notify::Config::default()
            .with_poll_interval(POLL_INTERVAL)
            .with_compare_contents(true);
        Box::new(notify::PollWatcher::new(handler, config)?)
    } else {
        Box::new(notify::recommended_watcher(handler).map_err(|e| no_events(&e))?)
    };
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| no_events(&e))?;
    Ok(watcher)
}

fn no_events(error: &notify::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot watch exercises/ for changes ({error}).\n\
         Where file events do not arrive (network drives, some VMs, too many watches), \
         poll instead: `{}`",
        crate::runner!("watch --poll")
    )
}

fn read_keys(tx: Sender<Event>) {
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if let event::Event::Key(key) = event
                && key.kind != KeyEventKind::Release
                && tx.send(Event::Key(key)).is_err()
            {
                break;
            }
        }
    });
}

#[derive(PartialEq)]
enum Flow {
    Continue,
    Quit,
}

struct App<'a> {
    root: &'a Path,
    course: &'a Course,
    state: &'a mut State,
    tx: Sender<Event>,
    interactive: bool,
    /// The exercise on screen.
    current: usize,
    /// Tells a finished check whether it is still the one the screen waits for.
    generation: u64,
    running: Option<Cancel>,
    /// `c` was pressed once on an exercise not yet done: a second `c` spoils it.
    spoil_armed: bool,
    /// The welcome is on screen: the first check must not clear it.
    welcome_on_screen: bool,
    /// The last result on screen, to draw again (with or without warnings).
    last: Option<Checked>,
    /// `w` was pressed: compiler warnings are shown in full.
    show_warnings: bool,
}

impl App<'_> {
    fn welcome(&mut self) {
        if self.state.progress().welcomed {
            return;
        }
        term::clear_screen();
        term::println(&format!(
            "{}\n\n{}\n",
            "Welcome to asynclings, a course in async Rust.".bold(),
            term::wrap(messages::WELCOME)
        ));
        self.state.welcomed();
        self.welcome_on_screen = true;
    }

    /// Says once, in watch's terms, that progress cannot be saved.
    fn warn_if_unsaved(&mut self) {
        if let Some(warning) = self.state.take_save_warning() {
            term::println(&format!("{} {}", "!".yellow().bold(), term::wrap(&warning)));
        }
    }

    fn start_check(&mut self) {
        if let Some(previous) = self.running.take() {
            previous.cancel();
        }
        self.generation += 1;
        self.spoil_armed = false;
        let exercise = self.course.exercises[self.current].clone();
        if term::ansi() {
            if !self.welcome_on_screen {
                term::clear_screen();
            }
            self.header();
        }
        let cancel = Cancel::default();
        self.running = Some(cancel.clone());
        let (root, tx, generation) = (self.root.to_path_buf(), self.tx.clone(), self.generation);
        std::thread::spawn(move || {
            term::status("Checking…");
            wait_for_file(&exercise.exercise_file(&root), &cancel);
            let mut status = |s: &str| {
                if !cancel.is_cancelled() {
                    term::status(s);
                }
            };
            let result = verdict::check_exercise(&root, &exercise, &cancel, &mut status);
            let _ = tx.send(Event::Checked { generation, result });
        });
    }

    /// The course's progress and the exercise on screen.
    fn header(&self) {
        let exercise = &self.course.exercises[self.current];
        term::println(&format!(
            "{}  {}\n{} {}  {}",
            "asynclings".bold(),
            term::progress_bar(self.state.done_count(), self.course.exercises.len()),
            "▶".cyan().bold(),
            exercise.name.bold(),
            exercise.display_path().dimmed()
        ));
    }

    /// Records a pass, then draws the result under a header that already counts it.
    fn show(&mut self, checked: Checked) -> Result<()> {
        let exercise = &self.course.exercises[self.current];
        let first_time = checked.passed() && !self.state.is_done(&exercise.name);
        let note = checked
            .passed()
            .then(|| verdict::record_pass(self.course, self.state, self.current));
        self.draw(&checked);
        self.last = Some(checked);
        if let Some(note) = note {
            term::println(&note);
        }
        self.warn_if_unsaved();
        if !self.interactive && first_time && self.state.current(self.course).is_some() {
            // No keys to press: go straight on.
            return self.next();
        }
        self.help();
        Ok(())
    }

    fn draw(&mut self, checked: &Checked) {
        if !std::mem::take(&mut self.welcome_on_screen) {
            term::clear_screen();
            self.header();
        }
        term::clear_status();
        let exercise = &self.course.exercises[self.current];
        term::print(&screen::compose(exercise, checked, self.show_warnings));
    }

    /// `w`: compiler warnings shown in full, or folded again.
    fn toggle_warnings(&mut self) {
        self.show_warnings = !self.show_warnings;
        if let Some(last) = self.last.take() {
            self.draw(&last);
            self.last = Some(last);
            self.help();
        }
    }

    fn help(&self) {
        if self.interactive {
            term::println(&format!("\n{}", messages::WATCH_KEYS.dimmed()));
        }
    }

    fn key(&mut self, key: KeyEvent) -> Result<Flow> {
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        let exercise = &self.course.exercises[self.current];
        let spoil_armed = std::mem::take(&mut self.spoil_armed);
        // `runner skip` or a hand edit in another terminal counts from the next key on.
        self.state.reload();
        match key.code {
            _ if ctrl_c => return Ok(Flow::Quit),
            KeyCode::Char('q') | KeyCode::Esc => return Ok(Flow::Quit),
            KeyCode::Char('r') => self.start_check(),
            KeyCode::Char('n') => self.next()?,
            KeyCode::Char('h') => {
                term::println("");
                term::print(&hint::next(self.state, exercise, messages::Keys::Watch));
                self.warn_if_unsaved();
                self.help();
            }
            KeyCode::Char('s') => self.skip(),
            KeyCode::Char('w') => self.toggle_warnings(),
            KeyCode::Char('l') => {
                term::println("");
                term::print(&list::render(self.course, self.state));
                self.help();
            }
            KeyCode::Char('c') if self.state.is_done(&exercise.name) || spoil_armed => {
                term::println("");
                term::print(&compare::diff(self.root, exercise)?);
                self.help();
            }
            KeyCode::Char('c') => {
                self.spoil_armed = true;
                term::println(&format!(
                    "\n{}",
                    "You have not passed this one yet: the comparison shows the solution. Press c again to see it.".yellow()
                ));
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    /// Moves past the exercise on screen without finishing it.
    fn skip(&mut self) {
        let exercise = &self.course.exercises[self.current];
        if self.state.is_done(&exercise.name) {
            term::println(&format!(
                "\n{} is done: press n for the next one.",
                exercise.name
            ));
            return;
        }
        self.state.skip(&exercise.name);
        self.warn_if_unsaved();
        match self.state.current(self.course) {
            Some((index, _)) => {
                self.current = index;
                self.last = None;
                self.start_check();
            }
            None => term::println(&verdict::finished_course(self.course)),
        }
    }

    fn next(&mut self) -> Result<()> {
        let exercise = &self.course.exercises[self.current];
        if !self.state.is_done(&exercise.name) {
            term::println(&format!(
                "\n{} Finish {} first (or press s to move on without it).",
                "!".yellow().bold(),
                exercise.name
            ));
            return Ok(());
        }
        match self.state.current(self.course) {
            Some((index, _)) => {
                self.current = index;
                self.last = None;
                self.start_check();
            }
            None => term::println(&verdict::finished_course(self.course)),
        }
        Ok(())
    }
}

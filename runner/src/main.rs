use std::process::ExitCode;

use std::path::Path;

use anyhow::Result;
use clap::{Parser, Subcommand};
use colored::Colorize;

use runner::check::Cancel;
use runner::info::{Course, Exercise};
use runner::interview::{self, Bank, Level, Locked, print, quiz};
use runner::messages::RUNNER;
use runner::state::State;
use runner::{compare, find_root, hint, list, reset, runner, term, verdict, verify, watch};

/// asynclings: learn async Rust by fixing small programs. Without a command, starts watch mode.
#[derive(Parser)]
#[command(name = "runner", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check the current exercise on every save (the default)
    Watch {
        /// Look for changes every 300 ms instead of waiting for file events (network drives, some VMs)
        #[arg(long)]
        poll: bool,
    },
    /// Check one exercise once (default: the current one); exit code 0 when it passes
    Run { name: Option<String> },
    /// Show the next hint you have not seen yet (or all of them)
    Hint {
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// List every exercise with its chapter and status
    List,
    /// Put the original stub back (your version is kept as a backup first)
    Reset {
        name: String,
        /// Restore only the checks at the end of the file and keep your code
        #[arg(long)]
        checks: bool,
    },
    /// Move past the current exercise without finishing it (it stays not done)
    Skip,
    /// Check every exercise (or every reference solution) and summarise
    Verify {
        #[arg(long)]
        solutions: bool,
    },
    /// Show how your file differs from the reference solution
    Compare {
        name: Option<String>,
        /// Show it even though you have not passed the exercise yet
        #[arg(long)]
        spoil: bool,
    },
    /// List the interview questions by level, or show one with its answer
    Questions {
        #[arg(long, value_enum)]
        level: Option<Level>,
        #[command(subcommand)]
        show: Option<QuestionsCommand>,
    },
    /// List the course's practical projects and what each practises
    Tasks,
    /// Quiz yourself on the interview questions; what you did not know comes back sooner
    Quiz {
        #[arg(long, value_enum)]
        level: Option<Level>,
    },
    /// Tools for the course's authors (see CONTRIBUTING.md)
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Subcommand)]
enum DevCommand {
    /// Check the whole course (or one exercise): stubs fail, solutions pass, files in sync
    Check {
        name: Option<String>,
        /// Skip the corpus of wrong and right solutions (the slowest step)
        #[arg(long, conflicts_with = "no_builds")]
        no_corpus: bool,
        /// Skip building the stubs and solutions (`cargo test` checks them on a copy of the
        /// course as shipped): the cheap rules and the corpus only
        #[arg(long)]
        no_builds: bool,
    },
    /// Scaffold a new exercise: stub, solution, info.toml entry, manifests, corpus skeleton
    New {
        name: String,
        #[arg(long)]
        chapter: String,
    },
    /// Regenerate what is derived: the manifests' [[bin]] blocks and runner/originals/
    Sync {
        /// Sync even though a progress file suggests a learner's clone
        #[arg(long)]
        force: bool,
    },
    /// Build and run the corpus of wrong and right solutions (of every exercise, or one)
    Corpus { name: Option<String> },
}

#[derive(Subcommand)]
enum QuestionsCommand {
    /// Show one question with its worked answer
    Show { id: String },
}

fn main() -> ExitCode {
    term::restore_on_panic();
    term::honour_dumb_terminal();
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            term::clear_status();
            eprintln!("{} {error:#}", "error:".red().bold());
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `Ok(false)` means "done, but it did not pass".
fn run(cli: Cli) -> Result<bool> {
    let root = find_root()?;
    let course = Course::load(&root)?;
    let mut state = State::load(&root, &course);
    if let Some(warning) = state.warning() {
        eprintln!("{} {warning}\n", "warning:".yellow().bold());
    }
    let result = command(cli, &root, &course, &mut state);
    if let Some(warning) = state.take_save_warning() {
        eprintln!("{} {warning}", "warning:".yellow().bold());
    }
    result
}

fn command(cli: Cli, root: &Path, course: &Course, state: &mut State) -> Result<bool> {
    match cli.command.unwrap_or(Command::Watch { poll: false }) {
        Command::Watch { poll } => watch::run(root, course, state, poll).map(|()| true),
        Command::Run { name } => {
            let (index, exercise) = pick(course, state, name.as_deref())?;
            let checked = verdict::check_exercise(root, exercise, &Cancel::default(), &mut |s| {
                term::status(s)
            })?;
            term::clear_status();
            term::print(&verdict::render(exercise, &checked));
            if checked.passed() {
                term::println(&verdict::record_pass(course, state, index));
            } else {
                term::println(&format!(
                    "{}",
                    concat!("`", runner!("hint"), "` gives a hint.").dimmed()
                ));
            }
            Ok(checked.passed())
        }
        Command::Hint { name, all } => {
            let (_, exercise) = pick(course, state, name.as_deref())?;
            term::print(&if all {
                hint::all(exercise)
            } else {
                hint::next(state, exercise, runner::messages::Keys::Cli)
            });
            Ok(true)
        }
        Command::List => {
            term::print(&list::render(course, state));
            Ok(true)
        }
        Command::Reset { name, checks } => {
            let (_, exercise) = course.find(&name)?;
            let what = if checks {
                "the original checks of"
            } else {
                "the original"
            };
            match reset::reset(root, exercise, checks)? {
                Some(backup) => term::println(&format!(
                    "Restored {what} {}. Your version is kept in {}.",
                    exercise.display_path(),
                    runner::relative(root, &backup).display()
                )),
                None => term::println(&format!(
                    "Restored {what} {} (nothing to back up).",
                    exercise.display_path()
                )),
            }
            Ok(true)
        }
        Command::Skip => {
            let Some((_, exercise)) = state.current(course) else {
                term::println("Every exercise is done: nothing to skip.");
                return Ok(true);
            };
            let name = exercise.name.clone();
            state.skip(&name);
            let next = state
                .current(course)
                .map_or("nothing left".to_owned(), |(_, e)| {
                    format!("next: {}", e.name)
                });
            term::println(&format!(
                "Skipped {name} ({next}). It stays not done until its checks pass."
            ));
            Ok(true)
        }
        Command::Verify { solutions: true } => verify::solutions(root, course),
        Command::Verify { solutions: false } => verify::exercises(root, course, state),
        Command::Compare { name, spoil } => {
            let (_, exercise) = pick(course, state, name.as_deref())?;
            if !spoil && !state.is_done(&exercise.name) {
                anyhow::bail!(
                    "you have not passed `{0}` yet, and the comparison shows the reference solution. \
                     Add --spoil to see it anyway: `{RUNNER} compare {0} --spoil`",
                    exercise.name
                );
            }
            term::print(&compare::diff(root, exercise)?);
            Ok(true)
        }
        Command::Questions { level, show } => {
            let bank = load_bank(root, course)?;
            match show {
                Some(QuestionsCommand::Show { id }) => {
                    print::print_question(bank.question(&id)?, &locked(course, state))
                }
                None => print::print_list(&bank, level),
            }
            Ok(true)
        }
        Command::Tasks => {
            let bank = load_bank(root, course)?;
            let status = |name: &str| {
                let index = course.exercises.iter().position(|e| e.name == name)?;
                Some(state.status(course, index))
            };
            print::print_tasks(&bank, &status);
            Ok(true)
        }
        Command::Dev(command) => dev(root, course, command),
        Command::Quiz { level } => {
            let bank = load_bank(root, course)?;
            let mut quiz_state = state.progress().quiz.clone();
            let locked = locked(course, state);
            quiz::run(&bank, level, &locked, &mut quiz_state, &mut |answered| {
                state.record_quiz(answered);
                Ok(())
            })?;
            Ok(true)
        }
    }
}

/// `runner dev …`: the authors' tools.
fn dev(root: &Path, course: &Course, command: DevCommand) -> Result<bool> {
    match command {
        DevCommand::Check {
            name,
            no_corpus,
            no_builds,
        } => {
            let steps = runner::dev::check::Steps {
                builds: !no_builds,
                corpus: !no_corpus,
            };
            let problems =
                runner::dev::check::run(root, name.as_deref(), steps, &mut |s| term::status(s))?;
            term::clear_status();
            term::print(&runner::dev::report(&problems));
            Ok(problems.is_empty())
        }
        DevCommand::New { name, chapter } => {
            for file in runner::dev::new::run(root, course, &name, &chapter)? {
                term::println(&format!("created {}", file.display()));
            }
            term::println(&format!(
                "Write the stub, the solution, the hints and the corpus, then run `{}`.",
                runner!("dev check")
            ));
            Ok(true)
        }
        DevCommand::Corpus { name } => {
            let started = std::time::Instant::now();
            let outcome = runner::dev::corpus::run(root, course, name.as_deref())?;
            Ok(runner::dev::corpus::report(&outcome, started.elapsed()))
        }
        DevCommand::Sync { force } => {
            let changed = runner::dev::sync::run(root, course, force)?;
            if changed.is_empty() {
                term::println("Everything derived is up to date.");
            }
            for file in changed {
                term::println(&format!("regenerated {file}"));
            }
            Ok(true)
        }
    }
}

/// The exercises the learner has not reached yet.
fn locked(course: &Course, state: &State) -> Locked {
    Locked(state.locked(course).map(str::to_owned).collect())
}

/// The interview question bank, checked against the course's exercise names.
fn load_bank(root: &std::path::Path, course: &Course) -> Result<Bank> {
    let names: Vec<&str> = course.names().collect();
    Bank::load(root.join(interview::QUESTIONS_FILE), &names)
}

/// The named exercise (which must be unlocked), or the current one.
fn pick<'c>(
    course: &'c Course,
    state: &State,
    name: Option<&str>,
) -> Result<(usize, &'c Exercise)> {
    let (index, exercise) = match name {
        Some(name) => course.find(name)?,
        None => match state.current(course) {
            Some(current) => current,
            None => anyhow::bail!("every exercise is done; name one to look at it again"),
        },
    };
    state.ensure_unlocked(course, index)?;
    Ok((index, exercise))
}

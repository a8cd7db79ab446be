use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use colored::Colorize;

use runner::check::Cancel;
use runner::info::{Course, Exercise};
use runner::questions::{self, Bank, Level};
use runner::state::State;
use runner::{compare, find_root, hint, list, quiz, reset, term, verdict, verify, watch};

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
}

#[derive(Subcommand)]
enum QuestionsCommand {
    /// Show one question with its worked answer
    Show { id: String },
}

fn main() -> ExitCode {
    term::restore_on_panic();
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
    match cli.command.unwrap_or(Command::Watch { poll: false }) {
        Command::Watch { poll } => watch::run(&root, &course, &mut state, poll).map(|()| true),
        Command::Run { name } => {
            let (index, exercise) = pick(&course, &state, name.as_deref())?;
            let checked = verdict::check_exercise(&root, exercise, &Cancel::default(), &mut |s| {
                term::status(s)
            })?;
            term::clear_status();
            term::print(&verdict::render(exercise, &checked));
            if checked.passed() {
                term::println(&verdict::record_pass(&course, &mut state, index)?);
            } else {
                term::println(&format!(
                    "{}",
                    "`cargo run -p runner -- hint` gives a hint.".dimmed()
                ));
            }
            Ok(checked.passed())
        }
        Command::Hint { name, all } => {
            let (_, exercise) = pick(&course, &state, name.as_deref())?;
            term::print(&if all {
                hint::all(exercise)
            } else {
                hint::next(&mut state, exercise)?
            });
            Ok(true)
        }
        Command::List => {
            term::print(&list::render(&course, &state));
            Ok(true)
        }
        Command::Reset { name, checks } => {
            let (_, exercise) = course.find(&name)?;
            let what = if checks {
                "the original checks of"
            } else {
                "the original"
            };
            match reset::reset(&root, exercise, checks)? {
                Some(backup) => term::println(&format!(
                    "Restored {what} {}. Your version is kept in {}.",
                    exercise.display_path(),
                    runner::relative(&root, &backup).display()
                )),
                None => term::println(&format!(
                    "Restored {what} {} (nothing to back up).",
                    exercise.display_path()
                )),
            }
            Ok(true)
        }
        Command::Skip => {
            let Some((_, exercise)) = state.current(&course) else {
                term::println("Every exercise is done: nothing to skip.");
                return Ok(true);
            };
            let name = exercise.name.clone();
            state.progress.skipped.insert(name.clone());
            state.save()?;
            let next = state
                .current(&course)
                .map_or("nothing left".to_owned(), |(_, e)| {
                    format!("next: {}", e.name)
                });
            term::println(&format!(
                "Skipped {name} ({next}). It stays not done until its checks pass."
            ));
            Ok(true)
        }
        Command::Verify { solutions: true } => verify::solutions(&root, &course),
        Command::Verify { solutions: false } => verify::exercises(&root, &course, &mut state),
        Command::Compare { name, spoil } => {
            let (_, exercise) = pick(&course, &state, name.as_deref())?;
            if !spoil && !state.is_done(&exercise.name) {
                anyhow::bail!(
                    "you have not passed `{0}` yet, and the comparison shows the reference solution. \
                     Add --spoil to see it anyway: `cargo run -p runner -- compare {0} --spoil`",
                    exercise.name
                );
            }
            term::print(&compare::diff(&root, exercise)?);
            Ok(true)
        }
        Command::Questions { level, show } => {
            let bank = load_bank(&root, &course)?;
            match show {
                Some(QuestionsCommand::Show { id }) => {
                    questions::print_question(bank.question(&id)?)
                }
                None => questions::print_list(&bank, level),
            }
            Ok(true)
        }
        Command::Tasks => {
            questions::print_tasks(&load_bank(&root, &course)?);
            Ok(true)
        }
        Command::Quiz { level } => {
            let bank = load_bank(&root, &course)?;
            let mut quiz_state = std::mem::take(&mut state.progress.quiz);
            quiz::run(&bank, level, &mut quiz_state, &mut |answered| {
                state.progress.quiz = answered.clone();
                state.save()
            })?;
            Ok(true)
        }
    }
}

/// The interview question bank, checked against the course's exercise names.
fn load_bank(root: &std::path::Path, course: &Course) -> Result<Bank> {
    let names: Vec<&str> = course.names().collect();
    Bank::load(root.join(questions::QUESTIONS_FILE), &names)
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

// TEMPORARY wiring of the interview-preparation commands, for development on branch wt-r; the
// lead's main.rs replaces this file at merge.

mod questions;
mod quiz;
mod suggest;

use std::path::Path;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the interview questions, by level.
    Questions {
        #[arg(long, value_enum)]
        level: Option<questions::Level>,
    },
    /// Show one question with its answer.
    Question { id: String },
    /// The practical tasks.
    Tasks,
    /// Quiz yourself.
    Quiz {
        #[arg(long, value_enum)]
        level: Option<questions::Level>,
    },
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Progress {
    #[serde(default)]
    quiz: quiz::QuizState,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let info: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("info.toml"))?)?;
    let names: Vec<&str> = info["exercises"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("name")?.as_str())
        .collect();
    let bank = questions::Bank::load(root.join("questions.toml"), &names)?;
    match cli.command {
        Command::Questions { level } => questions::print_list(&bank, level),
        Command::Question { id } => questions::print_question(bank.question(&id)?),
        Command::Tasks => questions::print_tasks(&bank),
        Command::Quiz { level } => {
            let path = root.join(".asynclings/quiz-dev.toml");
            let mut progress: Progress = match std::fs::read_to_string(&path) {
                Ok(text) => toml::from_str(&text)?,
                Err(_) => Progress::default(),
            };
            let mut save = |state: &quiz::QuizState| -> anyhow::Result<()> {
                std::fs::create_dir_all(path.parent().unwrap())?;
                let text = toml::to_string(&Progress {
                    quiz: state.clone(),
                })?;
                std::fs::write(&path, text)?;
                Ok(())
            };
            quiz::run(&bank, level, &mut progress.quiz, &mut save)?;
        }
    }
    Ok(())
}

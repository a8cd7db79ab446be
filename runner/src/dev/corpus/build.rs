//! Building the scratch package with `cargo build --tests --keep-going`, and reading cargo's
//! JSON messages: which test binary each bin became, and which compile errors belong to it.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde::Deserialize;

/// What one build produced, by bin name.
#[derive(Default)]
pub struct Built {
    pub executables: HashMap<String, PathBuf>,
    pub errors: HashMap<String, String>,
    /// Cargo's own stderr, for a bin that produced neither a binary nor an error.
    pub cargo_said: String,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    executable: Option<PathBuf>,
    profile: Option<Profile>,
    message: Option<CompilerMessage>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

#[derive(Deserialize)]
struct CompilerMessage {
    level: String,
    rendered: Option<String>,
}

pub fn build(manifest: &Path, target_dir: &Path) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        // `cargo test --no-run` stops at the first bin that does not compile.
        .args([
            "build",
            "--tests",
            "--keep-going",
            "--message-format",
            "json",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null())
        .output()
        .context("cannot start cargo")?;
    let mut built = Built {
        cargo_said: String::from_utf8_lossy(&output.stderr).into_owned(),
        ..Built::default()
    };
    for line in output.stdout.lines() {
        let Ok(message) = serde_json::from_str::<Message>(&line?) else {
            continue;
        };
        let Some(target) = message.target else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" if message.profile.is_some_and(|p| p.test) => {
                if let Some(executable) = message.executable {
                    built.executables.insert(target.name, executable);
                }
            }
            "compiler-message" => {
                if let Some(m) = message.message.filter(|m| m.level == "error") {
                    let errors = built.errors.entry(target.name).or_default();
                    errors.push_str(m.rendered.as_deref().unwrap_or("an error"));
                }
            }
            _ => {}
        }
    }
    Ok(built)
}

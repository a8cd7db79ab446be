//! `runner dev new NAME --chapter CHAPTER`: scaffolds an exercise that `dev check` accepts
//! except for what only the author can write (its TODO hints, its corpus). Writes the stub,
//! the solution, the pristine copy, the corpus skeleton, the `info.toml` entry, and
//! regenerates the manifests' `[[bin]]` blocks.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::sync;
use crate::info::{Course, INFO_FILE};

/// Creates the files of exercise `name` in `chapter`; returns them, relative to the root.
pub fn run(root: &Path, course: &Course, name: &str, chapter: &str) -> Result<Vec<PathBuf>> {
    if !crate::info::is_snake_case(name) {
        bail!("`{name}` is not a snake_case name (a-z, 0-9, _)");
    }
    if course.names().any(|n| n == name) {
        bail!("there is already an exercise called `{name}`");
    }
    let path = chapter_dir(course, chapter).join(format!("{name}.rs"));
    let fill = |template: &str| template.replace("{name}", name);
    let files = [
        (Path::new("exercises").join(&path), fill(STUB)),
        (Path::new("runner/originals").join(&path), fill(STUB)),
        (
            Path::new("solutions").join(&path),
            fill(STUB).replace(STUB_BODY, SOLUTION_BODY),
        ),
        (
            Path::new("corpus").join(path.with_extension("toml")),
            fill(CORPUS),
        ),
    ];
    for (file, _) in &files {
        if root.join(file).exists() {
            bail!("{} already exists", file.display());
        }
    }
    for (file, text) in &files {
        sync::write(&root.join(file), text)?;
    }
    append_entry(root, name, &path, chapter)?;
    let course = Course::load(root)?;
    sync::manifests(root, &course)?;
    Ok(files.into_iter().map(|(file, _)| file).collect())
}

/// The folder of the chapter's exercises, or a new numbered one after the last.
fn chapter_dir(course: &Course, chapter: &str) -> PathBuf {
    let existing = course
        .exercises
        .iter()
        .find(|e| e.chapter == chapter)
        .and_then(|e| e.path.parent());
    if let Some(dir) = existing {
        return dir.to_path_buf();
    }
    let last = course
        .exercises
        .iter()
        .filter_map(|e| {
            e.path
                .iter()
                .next()?
                .to_str()?
                .split('_')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    PathBuf::from(format!("{:02}_{}", last + 1, chapter.replace(' ', "_")))
}

fn append_entry(root: &Path, name: &str, path: &Path, chapter: &str) -> Result<()> {
    let file = root.join(INFO_FILE);
    let mut text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    text.push_str(
        &ENTRY
            .replace("{name}", name)
            .replace("{path}", &path.to_string_lossy().replace('\\', "/"))
            .replace("{chapter}", chapter),
    );
    sync::write(&file, &text)
}

const ENTRY: &str = r#"
[[exercises]]
name = "{name}"
path = "{path}"
chapter = "{chapter}"
hints = [
    "TODO: a nudge towards the idea.",
    "TODO: nearly the answer.",
]
"#;

const STUB_BODY: &str = "todo!(\"your code here\")";
const SOLUTION_BODY: &str = "42";

const STUB: &str = r#"//! # {name}
//!
//! TODO: the pattern in one or two paragraphs, and why it matters in real services.
//! (Python: TODO, the asyncio equivalent.)
//!
//! ## Your job
//! TODO: what the learner changes.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/>

/// TODO: the code the learner completes.
pub async fn answer() -> u32 {
    todo!("your code here")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("{}", answer().await);
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - TODO: three or more plausible wrong solutions.
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_answer_is_42() {
        assert_eq!(answer().await, 42, "TODO: say what the learner got wrong");
    }
}
"#;

const CORPUS: &str = r#"# Wrong and right solutions of {name}: see corpus/README.md (5+ wrong, 2+ right).

[[wrong]]
what = "TODO: a plausible wrong solution"
edits = [
  { find = '''42''', replace = '''41''' },
]

[[right]]
what = "TODO: another correct approach"
edits = [
  { find = '''42''', replace = '''40 + 2''' },
]
"#;

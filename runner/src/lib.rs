//! The asynclings runner: watches the exercises, runs their checks, gives hints, compares
//! with the reference solutions and unlocks the next exercise.

pub mod cargo;
pub mod compare;
pub mod dev;
pub mod hint;
pub mod info;
pub mod interview;
pub mod list;
pub mod messages;
pub mod reset;
pub mod screen;
pub mod state;
pub mod suggest;
pub mod term;
pub mod verdict;
pub mod verify;
pub mod watch;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The course's root: the nearest folder upwards holding `info.toml`.
pub fn find_root() -> Result<PathBuf> {
    let start = std::env::current_dir()?;
    match start
        .ancestors()
        .find(|dir| dir.join(info::INFO_FILE).is_file())
    {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "no {} here or in any parent folder: run the runner from inside the asynclings repository",
            info::INFO_FILE
        ),
    }
}

/// `exercises/01_basics/foo.rs` relative to `root`, or the path as given.
pub fn relative<'a>(root: &Path, path: &'a Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

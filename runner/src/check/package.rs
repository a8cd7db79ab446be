//! Which copy of an exercise is built, and the names cargo knows it by.

use std::path::{Path, PathBuf};

use crate::info::Exercise;

/// Which copy of an exercise to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    Exercises,
    Solutions,
}

impl Package {
    pub fn name(self) -> &'static str {
        match self {
            Package::Exercises => "exercises",
            Package::Solutions => "solutions",
        }
    }

    /// The cargo package that holds `exercise`'s copy: `exercises`, or `exercises-web` for
    /// an exercise of the `web` package pair.
    pub fn cargo_name(self, exercise: &Exercise) -> String {
        match &exercise.package {
            None => self.name().to_owned(),
            Some(group) => format!("{}-{group}", self.name()),
        }
    }

    /// The folder of that package's manifest.
    pub fn dir(self, root: &Path, exercise: &Exercise) -> PathBuf {
        let base = root.join(self.name());
        match &exercise.package {
            None => base,
            Some(group) => base.join(group),
        }
    }

    pub fn bin(self, exercise: &Exercise) -> String {
        match self {
            Package::Exercises => exercise.bin().to_owned(),
            Package::Solutions => exercise.solution_bin(),
        }
    }

    /// The plain cargo command that checks the same thing, for the learner to run by hand.
    pub fn test_command(self, exercise: &Exercise) -> String {
        format!(
            "cargo test -p {} --bin {}",
            self.cargo_name(exercise),
            self.bin(exercise)
        )
    }
}

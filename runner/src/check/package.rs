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
        root.join(self.folder(exercise.package.as_deref()))
    }

    /// The folder, relative to the root, of this copy's manifest in the package pair
    /// `group`: `exercises`, or `exercises/web` for the `web` pair.
    pub fn folder(self, group: Option<&str>) -> String {
        match group {
            None => self.name().to_owned(),
            Some(group) => format!("{}/{group}", self.name()),
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

//! Which copy of an exercise is built, and the names cargo knows it by.

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

    pub fn bin(self, exercise: &Exercise) -> String {
        match self {
            Package::Exercises => exercise.bin().to_owned(),
            Package::Solutions => exercise.solution_bin(),
        }
    }

    /// The plain cargo command that checks the same thing, for the learner to run by hand.
    pub fn test_command(self, exercise: &Exercise) -> String {
        format!("cargo test -p {} --bin {}", self.name(), self.bin(exercise))
    }
}

//! Commands for the course's authors, not its learners.

pub mod corpus;

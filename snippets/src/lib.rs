// Every snippet is compiled with `#![deny(deprecated)]`: a moved or retired API path (say
// `tokio::task::consume_budget`, now `tokio::task::coop::consume_budget`) fails the build.
#![doc(test(attr(deny(deprecated))))]

#[doc = include_str!("../../CHEATSHEET.md")] // on line 1: doctest line numbers = CHEATSHEET.md's
pub mod cheatsheet {}

// Every code snippet of the course's reading material, compiled (and run) as a doctest:
// `cargo test -p snippets` fails when a snippet of `questions.toml` or `CHEATSHEET.md` does not
// compile or panics, or when a snippet marked `compile_fail` (```rust,compile_fail) compiles.
//
// `build.rs` writes one module per question that has code, named after the question's id
// (`futures-are-lazy` → `futures_are_lazy`), so a failing doctest names its question, e.g.
// `.../out/questions.rs - futures_are_lazy (line 5)`.
include!(concat!(env!("OUT_DIR"), "/questions.rs"));

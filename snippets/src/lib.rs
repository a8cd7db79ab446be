// Every snippet is compiled with `#![deny(deprecated)]`: a deprecated function or type fails the
// build. (A deprecated *re-export*, such as `tokio::task::consume_budget` since tokio 1.44, is not
// reported by rustc; `tests/reading_material.rs` looks for those.)
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

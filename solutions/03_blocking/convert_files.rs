//! # Converting real files in parallel, never leaving one half-written
//!
//! A batch job over files (resize the uploads, re-encode the exports, render the
//! templates) is blocking I/O and CPU work around it: read, transform, write. Run each file
//! on the blocking pool (`spawn_blocking`) and they are converted side by side while the
//! runtime keeps serving; await the handles in order and each file gets its own result, so
//! one bad file is one error in the report, not a failed batch.
//! Writing is where batches go wrong: a file written in place and interrupted by an error
//! (or a crash) leaves a truncated output that the next step happily reads, and it has
//! already destroyed the previous good version. Write into a temporary file **in the same
//! folder** and rename it over the target once it is complete: a rename within one file
//! system replaces the target whole, so readers see the old file or the new one, never half
//! of one. `tempfile::NamedTempFile::new_in(dir)` deletes itself if dropped before
//! `persist(target)`, so an error on the way cleans up too.
//! (Python: `loop.run_in_executor(pool, convert, path)` per file, and for the write
//! `tempfile.NamedTemporaryFile(dir=..., delete=False)` + `os.replace`; in Rust the pool is
//! `spawn_blocking`, with no GIL to work around for the transform.)
//!
//! ## Your job
//! `convert_file` writes its output in place, line by line, so a line that fails leaves a
//! half-written file behind (and destroys the previous output). `convert_all` converts one
//! file after another on the runtime's thread. Make each conversion replace its output
//! whole or not at all, and run the conversions at the same time on the blocking pool, with
//! one report per input, in the order of the inputs.
//!
//! ## Read
//! - <https://docs.rs/tempfile/latest/tempfile/struct.NamedTempFile.html#method.new_in>
//! - <https://docs.rs/tempfile/latest/tempfile/struct.NamedTempFile.html#method.persist>
//! - <https://doc.rust-lang.org/std/fs/fn.rename.html>
//! - <https://docs.rs/tokio/latest/tokio/task/fn.spawn_blocking.html>
//! - CHEATSHEET.md, "`spawn_blocking`: blocking I/O"

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::join_all;
use tempfile::NamedTempFile;

/// Turns one line of input into one line of output, or says why it cannot.
pub type Transform = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// What became of one input file: the output written, or why not.
#[derive(Debug)]
pub struct Report {
    pub input: PathBuf,
    pub result: io::Result<PathBuf>,
}

/// Converts `input` line by line into a file of the same name in `out_dir` (blocking).
pub fn convert_file(input: &Path, out_dir: &Path, transform: &Transform) -> io::Result<PathBuf> {
    let text = std::fs::read_to_string(input)?;
    let name = input
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let target = out_dir.join(name);
    // Dropped before `persist` (an error below), the temporary file deletes itself.
    let mut out = BufWriter::new(NamedTempFile::new_in(out_dir)?);
    for line in text.lines() {
        let line =
            transform(line).map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        writeln!(out, "{line}")?;
    }
    let complete = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    complete.persist(&target)?;
    Ok(target)
}

/// Converts every input at once on the blocking pool; one report per input, in order.
pub async fn convert_all(
    inputs: Vec<PathBuf>,
    out_dir: PathBuf,
    transform: Transform,
) -> Vec<Report> {
    let out_dir = Arc::new(out_dir);
    let conversions = inputs.into_iter().map(|input| {
        let out_dir = Arc::clone(&out_dir);
        let transform = Arc::clone(&transform);
        tokio::task::spawn_blocking(move || {
            let result = convert_file(&input, &out_dir, &transform);
            Report { input, result }
        })
    });
    join_all(conversions)
        .await
        .into_iter()
        .map(|joined| joined.expect("a conversion panicked"))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (inputs, out_dir) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&inputs).expect("the input folder");
    std::fs::create_dir_all(&out_dir).expect("the output folder");
    std::fs::write(inputs.join("good.txt"), "hello\nworld\n").expect("an input");
    std::fs::write(inputs.join("bad.txt"), "fine\n\u{1F4A5}\n").expect("an input");
    let shout: Transform = Arc::new(|line: &str| {
        if line.is_ascii() {
            Ok(line.to_ascii_uppercase())
        } else {
            Err(format!("not ASCII: {line:?}"))
        }
    });
    let names = ["good.txt", "bad.txt", "missing.txt"];
    let reports = convert_all(
        names.map(|n| inputs.join(n)).to_vec(),
        out_dir.clone(),
        shout,
    )
    .await;
    for report in reports {
        match report.result {
            Ok(output) => println!("{} -> {}", report.input.display(), output.display()),
            Err(error) => println!("{}: {error}", report.input.display()),
        }
    }
    let written: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("the output folder")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    println!("the output folder holds {written:?}");
}

#[cfg(test)]
mod tests {
    // What these checks reject:
    // - writing the output in place (as shipped): a failed line leaves a truncated file, and
    //   the previous good output is lost;
    // - transforming every line first, then `std::fs::write` to the target: the old output
    //   is still rewritten in place (truncated, then written), so a reader sees it change;
    // - writing to the target and deleting it on error: the previous output is lost;
    // - a temporary file that is not cleaned up when the conversion fails;
    // - converting one file after another (in a loop, or inside one `spawn_blocking`), or on
    //   the runtime's thread (directly or in `tokio::spawn`);
    // - stopping at the first failed file, dropping failed files from the report, or
    //   reporting in completion order.
    //
    // How: every check works on real files in a temporary folder it creates. To prove that
    // the files are converted at the same time, the transform waits, on each file's first
    // line, until every file has reached it (a condition variable; a bound of 500 ms only
    // turns a wait that can never end into a failure instead of a hang).
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::{Condvar, Mutex, PoisonError};
    use std::thread;
    use std::time::Duration;
    use tempfile::TempDir;

    const STUCK: Duration = Duration::from_millis(500);

    /// A temporary folder with `in/` holding the given files and an empty `out/`.
    fn folders(files: &[(&str, &str)]) -> (TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (inputs, outputs) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir(&inputs).unwrap();
        std::fs::create_dir(&outputs).unwrap();
        for (name, text) in files {
            std::fs::write(inputs.join(name), text).unwrap();
        }
        (dir, inputs, outputs)
    }

    /// Upper-cases a line; a line holding "boom" cannot be converted.
    fn shout() -> Transform {
        Arc::new(|line: &str| match line.contains("boom") {
            true => Err(format!("cannot convert {line:?}")),
            false => Ok(line.to_uppercase()),
        })
    }

    fn listing(dir: &Path) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_file_is_converted_into_the_output_folder() {
        let (_dir, inputs, out) = folders(&[("a.txt", "one\ntwo\n"), ("b.txt", "three\n")]);
        let paths = vec![inputs.join("a.txt"), inputs.join("b.txt")];
        let reports = convert_all(paths.clone(), out.clone(), shout()).await;
        let inputs_reported: Vec<_> = reports.iter().map(|r| r.input.clone()).collect();
        assert_eq!(
            inputs_reported, paths,
            "one report per input, in the order of the inputs"
        );
        for report in &reports {
            let written = report.result.as_ref().expect("both files convert");
            assert_eq!(written, &out.join(report.input.file_name().unwrap()));
        }
        assert_eq!(read(&out.join("a.txt")), "ONE\nTWO\n");
        assert_eq!(read(&out.join("b.txt")), "THREE\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_file_that_fails_halfway_leaves_nothing_behind() {
        let (_dir, inputs, out) = folders(&[("good.txt", "fine\n"), ("bad.txt", "ok\nboom\nok\n")]);
        let reports = convert_all(
            vec![inputs.join("bad.txt"), inputs.join("good.txt")],
            out.clone(),
            shout(),
        )
        .await;
        let error = reports[0]
            .result
            .as_ref()
            .expect_err("bad.txt has a line that fails");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.to_string().contains("cannot convert \"boom\""),
            "the error should say why the line failed, got: {error}"
        );
        assert!(reports[1].result.is_ok(), "good.txt still converts");
        assert_eq!(
            listing(&out),
            BTreeSet::from(["good.txt".to_string()]),
            "the output folder should hold only complete outputs: no half-written bad.txt, \
             no temporary file left over"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_conversion_keeps_the_previous_output_whole() {
        let (_dir, inputs, out) = folders(&[("report.txt", "first\nboom\n")]);
        std::fs::write(out.join("report.txt"), "LAST NIGHT'S REPORT\n").unwrap();
        let reports = convert_all(vec![inputs.join("report.txt")], out.clone(), shout()).await;
        assert!(
            reports[0].result.is_err(),
            "report.txt has a line that fails"
        );
        assert_eq!(
            read(&out.join("report.txt")),
            "LAST NIGHT'S REPORT\n",
            "a conversion that fails must not touch the previous output: replace it whole, \
             once the new one is complete"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_new_output_replaces_the_old_one_whole_instead_of_rewriting_it() {
        let (_dir, inputs, out) = folders(&[("report.txt", "today\n")]);
        std::fs::write(out.join("report.txt"), "YESTERDAY\n").unwrap();
        // A second name for the old file, like a reader that still has it open.
        std::fs::hard_link(out.join("report.txt"), out.join("reader.txt")).unwrap();
        let reports = convert_all(vec![inputs.join("report.txt")], out.clone(), shout()).await;
        assert!(reports[0].result.is_ok(), "report.txt converts");
        assert_eq!(read(&out.join("report.txt")), "TODAY\n");
        assert_eq!(
            read(&out.join("reader.txt")),
            "YESTERDAY\n",
            "the old output was rewritten in place, so whoever was reading it saw it change \
             under them: write the new output to a file of its own, then rename it over the old"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_input_is_an_error_for_that_file_only() {
        let (_dir, inputs, out) = folders(&[("here.txt", "x\n")]);
        let reports = convert_all(
            vec![inputs.join("gone.txt"), inputs.join("here.txt")],
            out.clone(),
            shout(),
        )
        .await;
        assert_eq!(reports.len(), 2, "one report per input");
        let error = reports[0]
            .result
            .as_ref()
            .expect_err("gone.txt does not exist");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(read(&out.join("here.txt")), "X\n");
        assert_eq!(listing(&out), BTreeSet::from(["here.txt".to_string()]));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_files_are_converted_at_the_same_time_off_the_runtime() {
        const FILES: usize = 4;
        let names: Vec<String> = (0..FILES).map(|i| format!("f{i}.txt")).collect();
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "wait\nrest\n")).collect();
        let (_dir, inputs, out) = folders(&files);
        let runtime_thread = thread::current().id();
        let arrived = Arc::new((Mutex::new(0), Condvar::new()));
        let gate = Arc::clone(&arrived);
        let transform: Transform = Arc::new(move |line: &str| {
            assert_ne!(
                thread::current().id(),
                runtime_thread,
                "a file was converted on the runtime's own thread: blocking I/O there stalls \
                 every task"
            );
            if line == "wait" {
                let (count, changed) = &*gate;
                let mut count = count.lock().unwrap_or_else(PoisonError::into_inner);
                *count += 1;
                changed.notify_all();
                let (count, waited) = changed
                    .wait_timeout_while(count, STUCK, |count| *count < FILES)
                    .unwrap_or_else(PoisonError::into_inner);
                let count = *count;
                if waited.timed_out() {
                    return Err(format!(
                        "only {count} of {FILES} files were being converted at once"
                    ));
                }
            }
            Ok(line.to_uppercase())
        });
        let paths = names.iter().map(|n| inputs.join(n)).collect();
        let reports = convert_all(paths, out.clone(), transform).await;
        for report in reports {
            if let Err(error) = report.result {
                panic!("{}: {error}", report.input.display());
            }
        }
        assert_eq!(listing(&out).len(), FILES);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_inputs_no_reports() {
        let (_dir, _inputs, out) = folders(&[]);
        assert!(
            convert_all(Vec::new(), out.clone(), shout())
                .await
                .is_empty()
        );
        assert!(listing(&out).is_empty());
    }
}

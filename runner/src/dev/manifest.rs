//! The `[[bin]]` blocks of the packages' manifests (`exercises/Cargo.toml`,
//! `solutions/Cargo.toml`, and `exercises/web/Cargo.toml`… for the exercises of `info.toml`
//! with a `package`): derived from `info.toml`, one target per exercise.

use std::path::Path;

use anyhow::{Context, Result};

use crate::check::Package;
use crate::info::{Course, Exercise};

/// One manifest that lists exercises: a copy (exercises or solutions) of one package pair.
pub struct Manifest {
    copy: Package,
    /// `None`: the main pair; `Some("web")`: the pair in `exercises/web`, `solutions/web`.
    group: Option<String>,
}

impl Manifest {
    /// The manifest's folder, relative to the root: `exercises`, `solutions/web`…
    pub fn dir(&self) -> String {
        self.copy.folder(self.group.as_deref())
    }

    pub fn holds(&self, exercise: &Exercise) -> bool {
        exercise.package == self.group
    }

    /// The target's name and its path from the manifest's folder.
    pub fn target(&self, exercise: &Exercise) -> (String, String) {
        let path = exercise.path.to_string_lossy().replace('\\', "/");
        let path = match self.group {
            None => path,
            Some(_) => format!("../{path}"),
        };
        (self.copy.bin(exercise), path)
    }
}

/// Every manifest the course needs: both copies of the main pair, then of each `package`
/// named in `info.toml`.
pub fn all(course: &Course) -> Vec<Manifest> {
    let mut groups: Vec<Option<String>> = vec![None];
    for exercise in &course.exercises {
        if !groups.contains(&exercise.package) {
            groups.push(exercise.package.clone());
        }
    }
    groups
        .into_iter()
        .flat_map(|group| {
            [Package::Exercises, Package::Solutions].map(|copy| Manifest {
                copy,
                group: group.clone(),
            })
        })
        .collect()
}

/// What is written above the `[[bin]]` blocks is the author's; the blocks are generated.
const FIRST_BIN: &str = "\n[[bin]]\n";

/// The manifest as it should be: its hand-written head, then one block per exercise.
pub fn render(current: &str, course: &Course, manifest: &Manifest) -> String {
    let head = current
        .find(FIRST_BIN)
        .map_or(current.trim_end(), |at| current[..at].trim_end());
    let blocks: String = course
        .exercises
        .iter()
        .filter(|e| manifest.holds(e))
        .map(|e| {
            let (name, path) = manifest.target(e);
            format!("\n[[bin]]\nname = \"{name}\"\npath = \"{path}\"\n")
        })
        .collect();
    format!("{head}\n{blocks}")
}

/// The text of the manifest in `dir` (relative to the root).
pub fn read(root: &Path, dir: &str) -> Result<String> {
    let path = root.join(dir).join("Cargo.toml");
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COURSE: &str = r#"
[[exercises]]
name = "line_server"
path = "04_projects/line_server.rs"
chapter = "projects"
hints = ["one", "two"]

[[exercises]]
name = "scraper_fetch"
path = "04_projects/scraper_fetch.rs"
chapter = "projects"
package = "web"
hints = ["one", "two"]
"#;

    #[test]
    fn each_package_pair_lists_its_own_exercises() {
        let course = Course::parse(COURSE).unwrap();
        let manifests = all(&course);
        let dirs: Vec<String> = manifests.iter().map(Manifest::dir).collect();
        assert_eq!(
            dirs,
            ["exercises", "solutions", "exercises/web", "solutions/web"]
        );
        let head = "[package]\nname = \"x\"\n";
        assert_eq!(
            render(head, &course, &manifests[1]),
            format!(
                "{head}\n[[bin]]\nname = \"line_server_solution\"\npath = \"04_projects/line_server.rs\"\n"
            )
        );
        // The web package's folder is one level down: its targets' paths go up first.
        assert_eq!(
            render(head, &course, &manifests[2]),
            format!(
                "{head}\n[[bin]]\nname = \"scraper_fetch\"\npath = \"../04_projects/scraper_fetch.rs\"\n"
            )
        );
    }
}

//! The scratch package under `target/asynclings-corpus/<label>/`: each entry is a module file
//! (`src/<exercise>/<module>.rs`), and a bin (`src/<bin>.rs`) gathers one exercise's entries as
//! `#[path]` modules, so that an exercise's whole corpus links into one test binary. The package
//! shares the workspace's target folder, lock file, profiles and dependencies (those of
//! `solutions`), so it reuses everything the workspace already built.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct Scratch {
    pub dir: PathBuf,
    /// The package pair whose dependencies the entries need besides `solutions`' (`web`).
    group: Option<String>,
    /// Every file written this run, relative to `src/`; the others are removed.
    written: BTreeSet<PathBuf>,
}

impl Scratch {
    pub fn new(dir: PathBuf, group: Option<&str>) -> Result<Scratch> {
        fs::create_dir_all(dir.join("src"))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch {
            dir,
            group: group.map(str::to_owned),
            written: BTreeSet::new(),
        })
    }

    /// Writes an entry's code as the module file `src/<exercise>/<module>.rs`.
    pub fn write_entry(&mut self, exercise: &str, module: &str, code: &str) -> Result<()> {
        self.write_src(&module_file(exercise, module), code)
    }

    /// Writes the root of bin `bin`: the given modules of `exercise`, and an empty `main`.
    pub fn write_bin(&mut self, bin: &str, exercise: &str, modules: &[&str]) -> Result<()> {
        let mut code = format!(
            "//! Corpus entries of `{exercise}`, one module each (written by `runner dev corpus`).\n\
             #![allow(warnings)]\n\n"
        );
        for module in modules {
            code.push_str(&format!(
                "#[path = \"{}\"]\nmod {module};\n",
                module_file(exercise, module).display()
            ));
        }
        code.push_str("\nfn main() {}\n");
        self.write_src(Path::new(&format!("{bin}.rs")), &code)
    }

    /// Writes `Cargo.toml` (with `bins`) and the workspace's lock file.
    pub fn write_manifest(&self, root: &Path, label: &str, bins: &[&str]) -> Result<PathBuf> {
        let manifest = self.dir.join("Cargo.toml");
        write_if_changed(
            &manifest,
            &manifest_text(root, label, self.group.as_deref(), bins)?,
        )?;
        let lock = fs::read_to_string(root.join("Cargo.lock")).context("cannot read Cargo.lock")?;
        write_if_changed(&self.dir.join("Cargo.lock"), &lock)?;
        Ok(manifest)
    }

    /// Removes the sources of entries that are gone: they would only confuse a reader.
    pub fn remove_stale(&self) -> Result<()> {
        let src = self.dir.join("src");
        for path in files_under(&src)? {
            let relative = path.strip_prefix(&src).unwrap_or(&path);
            if !self.written.contains(relative) {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn write_src(&mut self, relative: &Path, text: &str) -> Result<()> {
        let path = self.dir.join("src").join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_if_changed(&path, text)?;
        self.written.insert(relative.to_path_buf());
        Ok(())
    }
}

fn module_file(exercise: &str, module: &str) -> PathBuf {
    Path::new(exercise).join(format!("{module}.rs"))
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Writes only what changed, so that cargo rebuilds only the bins that did.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A manifest with the same dependencies (path dependencies made absolute) and profiles as
/// the `solutions` package in its workspace (and `solutions/<group>`), and the given bins.
fn manifest_text(root: &Path, label: &str, group: Option<&str>, bins: &[&str]) -> Result<String> {
    let read = |path: PathBuf| -> Result<toml::Table> {
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
    };
    let workspace = read(root.join("Cargo.toml"))?;
    let mut solutions = read(root.join("solutions").join("Cargo.toml"))?;
    if let Some(group) = group {
        let extra = read(root.join("solutions").join(group).join("Cargo.toml"))?;
        for key in ["dependencies", "dev-dependencies"] {
            let Some(toml::Value::Table(more)) = extra.get(key) else {
                continue;
            };
            let table = solutions
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(table) = table {
                table.extend(more.clone());
            }
        }
    }
    let shared = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let resolve = |deps: Option<&toml::Value>| -> toml::Table {
        let mut out = toml::Table::new();
        for (name, spec) in deps.and_then(toml::Value::as_table).into_iter().flatten() {
            let inherits = spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
            let mut spec = if inherits {
                let mut base = shared.get(name).cloned().unwrap_or(toml::Value::from("*"));
                if let toml::Value::String(version) = base {
                    base = toml::Value::Table(toml::Table::from_iter([(
                        "version".to_owned(),
                        toml::Value::String(version),
                    )]));
                }
                // Extra features and `optional` from the member's own entry.
                if let (Some(table), Some(extra)) = (base.as_table_mut(), spec.as_table()) {
                    for (key, value) in extra {
                        if key != "workspace" {
                            table.insert(key.clone(), value.clone());
                        }
                    }
                }
                base
            } else {
                spec.clone()
            };
            if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
                let base = if inherits {
                    root.to_path_buf()
                } else {
                    root.join("solutions")
                };
                let absolute = base.join(path).display().to_string();
                spec.as_table_mut()
                    .expect("a path dependency is a table")
                    .insert("path".to_owned(), toml::Value::String(absolute));
            }
            out.insert(name.clone(), spec);
        }
        out
    };
    let edition = workspace
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("edition"))
        .cloned()
        .unwrap_or(toml::Value::from("2024"));
    let mut manifest = toml::Table::new();
    manifest.insert(
        "package".to_owned(),
        toml::Value::Table(toml::Table::from_iter([
            (
                "name".to_owned(),
                toml::Value::from(format!("asynclings-corpus-{label}")),
            ),
            ("version".to_owned(), toml::Value::from("0.0.0")),
            ("edition".to_owned(), edition),
            ("publish".to_owned(), toml::Value::from(false)),
            ("autobins".to_owned(), toml::Value::from(false)),
        ])),
    );
    manifest.insert(
        "workspace".to_owned(),
        toml::Value::Table(toml::Table::new()),
    );
    manifest.insert(
        "dependencies".to_owned(),
        toml::Value::Table(resolve(solutions.get("dependencies"))),
    );
    manifest.insert(
        "dev-dependencies".to_owned(),
        toml::Value::Table(resolve(solutions.get("dev-dependencies"))),
    );
    if let Some(profile) = workspace.get("profile") {
        manifest.insert("profile".to_owned(), profile.clone());
    }
    let bins = bins
        .iter()
        .map(|bin| {
            toml::Value::Table(toml::Table::from_iter([
                ("name".to_owned(), toml::Value::from(*bin)),
                (
                    "path".to_owned(),
                    toml::Value::from(format!("src/{bin}.rs")),
                ),
            ]))
        })
        .collect();
    manifest.insert("bin".to_owned(), toml::Value::Array(bins));
    Ok(toml::to_string(&manifest)?)
}

//! Walking a tree into facts: never follows symlinks, never panics on what it cannot read.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use admit_core::{Digest, DigestAlgorithm};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Serialize;

/// One fact of an `ingest.dir` snapshot (`kind` is the tag on the wire).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirFact {
    /// A regular file.
    File {
        /// Relative, `/`-separated.
        path: String,
        /// Bytes.
        size: u64,
        /// Digest of the contents.
        digest: Digest,
    },
    /// A symbolic link (not followed).
    Symlink {
        /// Relative, `/`-separated.
        path: String,
        /// The link's target, as stored.
        target: String,
    },
    /// Something that could not be read; the snapshot goes on without it.
    Warning {
        /// Relative, `/`-separated (lossy for non-UTF-8 names).
        path: String,
        /// Why.
        message: String,
    },
}

impl DirFact {
    fn path(&self) -> &str {
        match self {
            DirFact::File { path, .. } | DirFact::Symlink { path, .. } | DirFact::Warning { path, .. } => path,
        }
    }
}

/// Directory names never descended into, at any depth.
const SKIPPED_DIRS: [&str; 2] = [".git", "target"];

/// Snapshots the tree under `root`, sorted by path.
pub(crate) fn snapshot_tree(root: &Path, algorithm: DigestAlgorithm) -> Vec<DirFact> {
    let mut facts = Vec::new();
    let gitignore = load_gitignore(root, &mut facts);
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                facts.push(warning(&rel_dir, &e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    facts.push(warning(&rel_dir, &e));
                    continue;
                }
            };
            let name = entry.file_name();
            let name_text = name.to_string_lossy();
            let rel = if rel_dir.is_empty() { name_text.to_string() } else { format!("{rel_dir}/{name_text}") };
            if name.to_str().is_none() {
                facts.push(DirFact::Warning { path: rel, message: "file name is not valid UTF-8; skipped".to_owned() });
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    facts.push(warning(&rel, &e));
                    continue;
                }
            };
            let is_dir = file_type.is_dir();
            if is_dir && SKIPPED_DIRS.contains(&name_text.as_ref()) {
                continue;
            }
            if gitignore.matched(Path::new(&rel), is_dir).is_ignore() {
                continue;
            }
            let path = entry.path();
            if is_dir {
                pending.push((path, rel));
            } else if file_type.is_symlink() {
                match fs::read_link(&path) {
                    Ok(target) => {
                        facts.push(DirFact::Symlink { path: rel, target: target.to_string_lossy().into_owned() })
                    }
                    Err(e) => facts.push(warning(&rel, &e)),
                }
            } else if file_type.is_file() {
                match hash_file(&path, algorithm) {
                    Ok((size, digest)) => facts.push(DirFact::File { path: rel, size, digest }),
                    Err(e) => facts.push(warning(&rel, &e)),
                }
            } else {
                facts.push(DirFact::Warning {
                    path: rel,
                    message: "not a regular file, directory or symlink; skipped".to_owned(),
                });
            }
        }
    }
    facts.sort_by(|a, b| a.path().cmp(b.path()).then_with(|| a.cmp(b)));
    facts
}

fn warning(path: &str, error: &io::Error) -> DirFact {
    DirFact::Warning {
        path: if path.is_empty() { ".".to_owned() } else { path.to_owned() },
        message: error.to_string(),
    }
}

fn load_gitignore(root: &Path, facts: &mut Vec<DirFact>) -> Gitignore {
    let mut builder = GitignoreBuilder::new(root);
    let file = root.join(".gitignore");
    if file.is_file()
        && let Some(error) = builder.add(&file)
    {
        facts.push(DirFact::Warning {
            path: ".gitignore".to_owned(),
            message: format!("some patterns were not understood: {error}"),
        });
    }
    builder.build().unwrap_or_else(|error| {
        facts.push(DirFact::Warning { path: ".gitignore".to_owned(), message: format!("ignored: {error}") });
        Gitignore::empty()
    })
}

fn hash_file(path: &Path, algorithm: DigestAlgorithm) -> io::Result<(u64, Digest)> {
    let mut file = File::open(path)?;
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((size, hasher.finalize()))
}

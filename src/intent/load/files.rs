//! Finding the intent files: which entries of the intents directory are read, which are
//! deliberately ignored, and which are errors naming their path.

use super::SourceFile;
use crate::diag::Diagnostic;
use crate::source::Loc;
use std::path::{Path, PathBuf};

/// Read the intent files of `dir`: `*.yaml`/`*.yml` (any case) at the root and in
/// `regions/<deployment>/`, sorted by path.
///
/// Inputs are never skipped silently (an override's `drop:` or a global deny that is not read
/// would open traffic): every entry is either read, deliberately ignored, or an error naming
/// its path. Deliberately ignored are hidden entries (`.git`, `.gitkeep`, editor files) and
/// regular files that are not YAML (`README.md`). Errors: an entry that cannot be followed
/// or read (dangling or looping symlink, no permission), a directory named like an intent
/// file, an intent-named entry that is not a regular file, a subdirectory other than
/// `regions/` or inside `regions/<deployment>/` that holds YAML files (named in the error) or
/// cannot be looked through (a directory symlink, no permission), a YAML file directly in
/// `regions/`, a region directory whose name is not a valid deployment name. A subdirectory
/// holding no YAML file at any depth (`docs/` with a README) is ignored like `README.md`.
pub(crate) fn read_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let Some(entries) = list_dir(dir, diags) else {
        return out;
    };
    for (name, p) in entries {
        let rel = PathBuf::from(&name);
        match (kind_of_entry(&p), name.as_str()) {
            (Err(why), _) => diags.push(path_error(&p, why)),
            (Ok(Kind::Dir), "regions") => read_regions(&p, &mut out, diags),
            (Ok(_), "regions") => diags.push(path_error(
                &p,
                "`regions` must be a directory (`regions/<deployment>/*.yaml`)".into(),
            )),
            (Ok(kind), _) => read_entry(&p, rel, kind, None, &mut out, diags),
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// `regions/`: one directory per deployment.
fn read_regions(dir: &Path, out: &mut Vec<SourceFile>, diags: &mut Vec<Diagnostic>) {
    let Some(entries) = list_dir(dir, diags) else {
        return;
    };
    for (rname, r) in entries {
        let rel = Path::new("regions").join(&rname);
        match kind_of_entry(&r) {
            Err(why) => diags.push(path_error(&r, why)),
            Ok(Kind::Dir) => {
                if let Err(why) = crate::intent::names::check_name(&rname) {
                    diags.push(Diagnostic::error(
                        Loc {
                            file: rel,
                            line: 1,
                            column: 1,
                        },
                        format!(
                            "invalid deployment name {} (a region directory names a deployment): {why}",
                            crate::intent::names::quote(&rname)
                        ),
                    ));
                    continue;
                }
                read_region(&r, &rname, out, diags);
            }
            Ok(_) if is_yaml_name(&rname) => diags.push(Diagnostic::error(
                Loc {
                    file: rel,
                    line: 1,
                    column: 1,
                },
                "override files belong in `regions/<deployment>/`, not directly in `regions/`",
            )),
            Ok(_) => {} // not an intent file (README.md)
        }
    }
}

/// `regions/<rname>/`: its intent files; an empty one still names a deployment.
fn read_region(dir: &Path, rname: &str, out: &mut Vec<SourceFile>, diags: &mut Vec<Diagnostic>) {
    let Some(entries) = list_dir(dir, diags) else {
        return;
    };
    let rel_dir = Path::new("regions").join(rname);
    let mut any = false;
    for (name, f) in entries {
        any |= is_yaml_name(&name);
        match kind_of_entry(&f) {
            Err(why) => diags.push(path_error(&f, why)),
            Ok(kind) => read_entry(&f, rel_dir.join(&name), kind, Some(rname), out, diags),
        }
    }
    if !any {
        out.push(SourceFile {
            rel: rel_dir,
            region: Some(rname.to_string()),
            text: String::new(),
        });
    }
}

/// One entry at the root or in a region directory (where no subdirectory is read).
fn read_entry(
    p: &Path,
    rel: PathBuf,
    kind: Kind,
    region: Option<&str>,
    out: &mut Vec<SourceFile>,
    diags: &mut Vec<Diagnostic>,
) {
    let name = file_name(p);
    match kind {
        Kind::Dir if is_yaml_name(&name) => diags.push(path_error(
            p,
            "is a directory, not an intent file; rename or remove it".into(),
        )),
        Kind::Dir => {
            let what = match region {
                None => "subdirectories other than `regions/` are not read",
                Some(_) => "subdirectories of a region directory are not read",
            };
            let why = match yaml_inside(p) {
                // nothing an intent could be in (docs/ with a README, diagrams): like a
                // non-YAML file at the root, deliberately ignored
                Ok(files) if files.is_empty() => return,
                Ok(files) => {
                    let shown: Vec<String> = files
                        .iter()
                        .take(5)
                        .map(|f| rel.join(f).display().to_string())
                        .collect();
                    let more = match files.len() {
                        n if n > 5 => format!(" and {} more", n - 5),
                        _ => String::new(),
                    };
                    format!(
                        "{what}, so the intent files in it would be ignored: {}{more}",
                        shown.join(", ")
                    )
                }
                Err(cannot) => {
                    format!("{what}, and whether it holds intent files cannot be told ({cannot})")
                }
            };
            diags.push(path_error(p, why).with_note(
                "move intent files to the root or to `regions/<deployment>/`, and anything else out of the intents directory",
            ))
        }
        Kind::File if is_yaml_name(&name) => {
            if let Some(text) = read_text(p, &rel, diags) {
                out.push(SourceFile {
                    rel,
                    region: region.map(str::to_string),
                    text,
                });
            }
        }
        Kind::Other if is_yaml_name(&name) => diags.push(path_error(
            p,
            "is not a regular file, so it cannot be an intent file".into(),
        )),
        Kind::File | Kind::Other => {} // not an intent file (README.md, .gitkeep)
    }
}

/// The YAML files under a subdirectory that is not read (paths relative to it, sorted), so
/// the error can name them; none means it holds nothing an intent could be in. `Err` when
/// that cannot be told: the directory is a symlink (never walked, it may loop), or something
/// in it is a directory symlink, cannot be read, or the tree is too deep or too large.
fn yaml_inside(dir: &Path) -> Result<Vec<PathBuf>, String> {
    const MAX_DEPTH: usize = 8;
    const MAX_ENTRIES: usize = 10_000;
    fn walk(
        dir: &Path,
        rel: &Path,
        depth: usize,
        seen: &mut usize,
        out: &mut Vec<PathBuf>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} levels deep"));
        }
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for e in rd {
            let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
            *seen += 1;
            if *seen > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let p = e.path();
            let link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() && link => {
                    return Err(format!("{} is a directory symlink", p.display()))
                }
                Ok(m) if m.is_dir() => walk(&p, &rel.join(&name), depth + 1, seen, out)?,
                _ if is_yaml_name(&name) => out.push(rel.join(&name)),
                _ => {}
            }
        }
        Ok(())
    }
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err("it is a directory symlink, which is never walked".into());
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), 0, &mut 0, &mut out)?;
    out.sort();
    Ok(out)
}

/// What an entry is once symlinks are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

/// Follow `p` (symlinks included); `Err(why)` when that fails: dangling or looping symlink,
/// no permission.
fn kind_of_entry(p: &Path) -> Result<Kind, String> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(Kind::File),
        Ok(m) if m.is_dir() => Ok(Kind::Dir),
        Ok(_) => Ok(Kind::Other),
        Err(e) => {
            let link = std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
            Err(match (link, e.kind()) {
                (true, std::io::ErrorKind::NotFound) => {
                    let target = std::fs::read_link(p)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    format!("is a dangling symlink (its target `{target}` does not exist)")
                }
                (true, _) => format!("is a symlink that cannot be followed: {e}"),
                (false, _) => format!("cannot be read: {e}"),
            })
        }
    }
}

/// The entries of a directory (file name, path), hidden ones left out, sorted by name; an
/// error (the directory or one of its entries cannot be read) goes to `diags`.
fn list_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<Vec<(String, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(path_error(dir, format!("cannot read directory: {e}")));
            return None;
        }
    };
    let mut v = Vec::new();
    for e in rd {
        match e {
            Ok(e) => {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    v.push((name, e.path()));
                }
            }
            Err(e) => diags.push(path_error(dir, format!("cannot list directory: {e}"))),
        }
    }
    v.sort();
    Some(v)
}

/// `*.yaml` / `*.yml` in any case.
fn is_yaml_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    (l.ends_with(".yaml") || l.ends_with(".yml")) && !l.starts_with('.')
}

fn path_error(p: &Path, why: String) -> Diagnostic {
    Diagnostic::error(None, format!("{}: {why}", p.display()))
}

/// A file's text. Not UTF-8: an error at the line and column of the first invalid byte.
fn read_text(p: &Path, rel: &Path, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let bytes = match std::fs::read(p) {
        Ok(b) => b,
        Err(e) => {
            diags.push(path_error(p, format!("cannot be read: {e}")));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            // the prefix is valid UTF-8 by definition
            let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            diags.push(
                Diagnostic::error(
                    Loc {
                        file: rel.to_path_buf(),
                        line,
                        column,
                    },
                    format!("not UTF-8: invalid byte 0x{:02x}", bytes[at]),
                )
                .with_note("intent files are UTF-8 text; re-save the file as UTF-8"),
            );
            None
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True for a source entry standing for an empty region directory (no file to parse).
pub(crate) fn is_placeholder(f: &SourceFile) -> bool {
    f.region.is_some() && f.rel.extension().is_none() && f.text.is_empty()
}

//! Paths built from names. Deployment and provider names come from intent files and plan
//! files, which are untrusted input: a name like `../../etc` or `/etc` must never move a read
//! or a write out of the directory it belongs in. Every path made from a name goes through
//! [`join_inside`], which refuses anything but plain file names.

use crate::error::Error;
use std::path::{Component, Path, PathBuf};

/// `root/c1/c2/...`, refusing a component that is empty, `.`, `..`, absolute, or holds a path
/// separator or NUL: the result is always a descendant of `root`.
///
/// The loader already restricts names (`crate::intent::names`); this check is the second line
/// for names from elsewhere (a plan file) and for any future caller.
pub fn join_inside(root: &Path, components: &[&str]) -> Result<PathBuf, Error> {
    let mut p = root.to_path_buf();
    for c in components {
        let plain = !c.is_empty()
            && !c.contains(['/', '\\', '\0'])
            && matches!(
                Path::new(c).components().collect::<Vec<_>>().as_slice(),
                [Component::Normal(_)]
            );
        if !plain {
            return Err(Error::UnsafeName {
                component: c.to_string(),
                root: root.to_path_buf(),
            });
        }
        p.push(c);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_join() {
        assert_eq!(
            join_inside(Path::new("snap"), &["us", "aws.json"]).unwrap(),
            Path::new("snap/us/aws.json")
        );
        assert!(join_inside(Path::new("/x"), &["a.b", "c-d_e"]).is_ok());
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "../../etc",
            "/etc",
            "a/b",
            "a\\b",
            "x\0y",
            "/",
        ] {
            let e = join_inside(Path::new("snap"), &["us", bad]);
            assert!(e.is_err(), "{bad:?}");
            let msg = format!("{:#}", e.unwrap_err());
            assert!(!msg.contains('\0') && !msg.contains('\n'), "{msg}");
        }
    }
}

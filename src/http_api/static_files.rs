//! Static files from `--html-dir`, with no way out of that folder: not by
//! `..`, and not by a symlink that points outside it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::ApiError;
use super::reply::Reply;

/// The file for a URL path: `/` is `index.html`; `/a.html` (the tutorial's
/// name) is `a.html`, or `index.html` when the folder has no `a.html`.
pub fn serve(root: &Path, url_path: &str) -> Result<Reply, ApiError> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("path is not valid UTF-8".into()))?;
    let relative = match decoded.as_ref() {
        "/" => "index.html",
        "/a.html" if !root.join("a.html").is_file() => "index.html",
        other => other.trim_start_matches('/'),
    };
    let traversal = || ApiError::Traversal(decoded.to_string());
    let path = confine(root, relative).ok_or_else(traversal)?;
    let not_found = || ApiError::NotFound(format!("no file {decoded}"));
    // Resolved, symlinks included, and served only from inside the folder.
    let (Ok(root), Ok(real)) = (root.canonicalize(), path.canonicalize()) else {
        return Err(not_found());
    };
    if !real.starts_with(&root) {
        return Err(traversal());
    }
    if !real.is_file() {
        return Err(not_found());
    }
    let body = fs::read(&real).map_err(|_| not_found())?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let content_type = match mime.type_() {
        mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
        _ => mime.to_string(),
    };
    Ok(Reply::with_type(200, content_type, body))
}

/// `root` joined with `relative`, or `None` if `relative` is absolute or has a `..`.
fn confine(root: &Path, relative: &str) -> Option<PathBuf> {
    if relative.contains('\0') || relative.contains('\\') {
        return None;
    }
    let rel = Path::new(relative);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        .then(|| root.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_absolute_paths_are_refused() {
        let root = Path::new("/srv/html");
        assert!(confine(root, "../etc/passwd").is_none());
        assert!(confine(root, "a/../../b").is_none());
        assert!(confine(root, "/etc/passwd").is_none());
        assert_eq!(
            confine(root, "css/x.css"),
            Some(PathBuf::from("/srv/html/css/x.css"))
        );
    }
}

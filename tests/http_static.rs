//! Static files come from `--html-dir` with the right Content-Type (`/` is `index.html`; `/a.html` is `a.html`, or `index.html` where there is none); missing files are 404, and neither `..` nor a symlink can leave the folder.

mod support;

use std::path::PathBuf;

use support::{assert_error, assert_error_body, TestServer};

const INDEX: &str = "<!doctype html><title>t</title><p>index page</p>\n";
const SECRET: &str = "secret outside the html folder\n";

/// A site folder with a sibling file it must never serve.
fn site() -> (PathBuf, PathBuf) {
    let root = support::temp_dir("static");
    let html = root.join("html");
    std::fs::create_dir_all(html.join("css")).unwrap();
    std::fs::write(html.join("index.html"), INDEX).unwrap();
    std::fs::write(html.join("css/site.css"), "body { color: red }\n").unwrap();
    std::fs::write(html.join("app.js"), "console.log(1)\n").unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    (root, html)
}

#[test]
fn index_and_files_with_their_types() {
    let (root, html) = site();
    let server = TestServer::start(&["--html-dir", html.to_str().unwrap()]);
    for path in ["/", "/index.html", "/a.html"] {
        let (status, content_type, body) = server.get_typed(path);
        assert_eq!(status, 200, "{path}");
        assert_eq!(content_type, "text/html; charset=utf-8", "{path}");
        assert_eq!(String::from_utf8(body).unwrap(), INDEX, "{path}");
    }
    let (status, content_type, body) = server.get_typed("/css/site.css");
    assert_eq!((status, content_type.as_str()), (200, "text/css; charset=utf-8"));
    assert_eq!(body, b"body { color: red }\n");
    let (status, content_type, _) = server.get_typed("/app.js");
    assert_eq!(status, 200);
    assert!(content_type.contains("javascript"), "{content_type}");
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_html_is_its_own_file_when_there_is_one() {
    let (root, html) = site();
    std::fs::write(html.join("a.html"), "<p>raw echo page</p>\n").unwrap();
    let server = TestServer::start(&["--html-dir", html.to_str().unwrap()]);
    let (status, content_type, body) = server.get_typed("/a.html");
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert_eq!(body, b"<p>raw echo page</p>\n");
    assert_eq!(server.get_typed("/").2, INDEX.as_bytes(), "/ stays index.html");
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_repository_page_is_served() {
    let server = TestServer::start(&[]);
    let (status, content_type, body) = server.get_typed("/");
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    let on_disk = std::fs::read(support::html_dir().join("index.html")).unwrap();
    assert_eq!(body, on_disk);
}

#[test]
fn missing_file_is_404() {
    let (root, html) = site();
    let server = TestServer::start(&["--html-dir", html.to_str().unwrap()]);
    assert_error(&server.get("/missing.html"), 404, "no file /missing.html");
    assert_error(&server.get("/css/"), 404, "no file");
    assert_error(&server.get("/css"), 404, "no file");
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}

/// Asserts `path` (sent as raw bytes: HTTP clients would normalise it) is
/// refused with 403 and leaks nothing from outside the folder.
fn assert_refused(server: &TestServer, path: &str) {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let resp = server.raw_http(raw.as_bytes());
    let body = String::from_utf8_lossy(&resp.body);
    assert!(!body.contains("secret outside"), "{path} leaked the file");
    assert!(!body.contains("root:"), "{path} leaked /etc/passwd");
    assert_eq!(resp.status, 403, "{path}: {body}");
    assert_error_body(&resp.body, "leaves the html folder");
}

#[test]
fn dot_dot_cannot_leave_the_folder() {
    let (root, html) = site();
    let server = TestServer::start(&["--html-dir", html.to_str().unwrap()]);
    // Sent as raw bytes: HTTP clients would normalise these paths away.
    for path in [
        "/../secret.txt",
        "/css/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/css/..%5c..%5csecret.txt",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ] {
        assert_refused(&server, path);
    }
    // A doubled slash is a path inside the folder, not an absolute one.
    let resp = server.raw_http(b"GET //etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 404);
    assert_error_body(&resp.body, "no file");
    // A `..` that stays inside is still refused, not resolved.
    let resp = server.raw_http(b"GET /css/../index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 403);
    // And the server still serves the page.
    let (status, _, body) = server.get_typed("/");
    assert_eq!((status, body.as_slice()), (200, INDEX.as_bytes()));
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn symlinks_out_of_the_folder_are_not_followed() {
    let (root, html) = site();
    let link =
        |target: &std::path::Path, name: &str| std::os::unix::fs::symlink(target, html.join(name)).unwrap();
    link(&root.join("secret.txt"), "secret.txt");
    link(&root, "outside");
    link(std::path::Path::new("/etc/passwd"), "passwd");
    link(&html.join("index.html"), "inside.html");
    link(&html.join("css"), "styles");
    let server = TestServer::start(&["--html-dir", html.to_str().unwrap()]);
    for path in ["/secret.txt", "/outside/secret.txt", "/passwd"] {
        assert_refused(&server, path);
    }
    // A folder outside, listed: refused as well, not a 404 that tells it exists.
    let resp = server.raw_http(b"GET /outside HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 403);
    // Links that stay inside are served.
    let (status, _, body) = server.get_typed("/inside.html");
    assert_eq!((status, body.as_slice()), (200, INDEX.as_bytes()));
    let (status, _, body) = server.get_typed("/styles/site.css");
    assert_eq!((status, body.as_slice()), (200, &b"body { color: red }\n"[..]));
    drop(server);
    let _ = std::fs::remove_dir_all(root);
}

//! The secret from its flag or file: empty refused, line breaks trimmed, never shown.

use std::path::PathBuf;

use super::*;

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wspush-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn read(path: &std::path::Path) -> Result<Secret, String> {
    read_secret_file(path.to_str().expect("a UTF-8 temp path"))
}

#[test]
fn an_empty_secret_is_refused() {
    assert!(parse_secret("").is_err());
    assert_eq!(parse_secret("s").unwrap().as_bytes(), b"s");
    assert_eq!(parse_secret(" s ").unwrap().as_bytes(), b" s ", "kept as given");
}

#[test]
fn a_secret_file_loses_its_trailing_line_breaks_only() {
    for (name, bytes) in [
        ("lf", &b"s3cret\n"[..]),
        ("crlf", b"s3cret\r\n"),
        ("bare", b"s3cret"),
        ("two", b"s3cret\n\n"),
    ] {
        assert_eq!(
            read(&temp_file(name, bytes)).unwrap().as_bytes(),
            b"s3cret",
            "{name}"
        );
    }
    assert_eq!(
        read(&temp_file("inner", b" a\nb \n")).unwrap().as_bytes(),
        b" a\nb "
    );
}

#[test]
fn an_empty_missing_or_huge_secret_file_is_refused() {
    for (name, bytes) in [("empty", &b""[..]), ("newline", b"\n"), ("crlfs", b"\r\n\r\n")] {
        let error = read(&temp_file(name, bytes)).unwrap_err();
        assert!(error.contains("holds no secret"), "{name}: {error}");
    }
    let missing = std::env::temp_dir().join("wspush-no-such-secret-file");
    assert!(read(&missing).unwrap_err().contains("cannot open"));
    let huge = vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1];
    assert!(read(&temp_file("huge", &huge)).unwrap_err().contains("over"));
    let dir = std::env::temp_dir();
    assert!(read(&dir).unwrap_err().contains("cannot read"), "a folder");
}

#[test]
fn debug_output_hides_the_secret() {
    let shown = format!("{:?}", secret());
    assert!(
        !shown.contains(SECRET) && !shown.contains("wspush-test"),
        "{shown}"
    );
}

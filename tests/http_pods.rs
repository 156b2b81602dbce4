//! `/pods` serves and `/sendpods` (GET or POST) broadcasts the tutorial's exact pod JSON, `--pods FILE` replaces it, and an invalid file stops the server from starting.

mod support;

use support::{try_start, TestServer};
use wspush::StartError;

const TUTORIAL_PODS: &str = r#"[{"PodName":"pod-101","PodImage":"nginx:1.18","PodNode":"node1"},{"PodName":"pod-76xs","PodImage":"alpine:3.12","PodNode":"node2"},{"PodName":"pod-F#ff3","PodImage":"tomcat:8","PodNode":"node3"}]"#;

#[test]
fn pods_is_the_tutorial_list() {
    let server = TestServer::start(&[]);
    let (status, content_type, body) = server.get_typed("/pods");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert_eq!(String::from_utf8(body).unwrap(), TUTORIAL_PODS);
}

#[test]
fn sendpods_get_and_post_broadcast_the_exact_json() {
    let server = TestServer::start(&[]);
    let mut clients: Vec<_> = (0..2).map(|_| server.client()).collect();
    server.wait_clients(2);
    let (status, body) = server.get("/sendpods");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    let (status, body) = server.post("/sendpods", "text/plain", b"");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":2}"#));
    for c in &mut clients {
        assert_eq!(c.next_text(), TUTORIAL_PODS);
        assert_eq!(c.next_text(), TUTORIAL_PODS);
    }
}

#[test]
fn pods_file_replaces_the_list() {
    let dir = support::temp_dir("pods");
    let file = dir.join("pods.json");
    // Pretty-printed on disk; served compact.
    std::fs::write(
        &file,
        "[\n  {\"PodName\": \"web-1\", \"PodImage\": \"caddy:2\", \"PodNode\": \"n7\"}\n]\n",
    )
    .unwrap();
    let expected = r#"[{"PodName":"web-1","PodImage":"caddy:2","PodNode":"n7"}]"#;
    let server = TestServer::start(&["--pods", file.to_str().unwrap()]);
    let (status, body) = server.get("/pods");
    assert_eq!((status, body.as_str()), (200, expected));
    let mut client = server.client();
    server.wait_clients(1);
    let (status, body) = server.get("/sendpods");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(client.next_text(), expected);
    client.close();
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_pods_file_fails_start() {
    let dir = support::temp_dir("badpods");
    let cases = [
        ("not-json.json", "this is not json"),
        ("missing-field.json", r#"[{"PodName":"x","PodImage":"y"}]"#),
        (
            "extra-field.json",
            r#"[{"PodName":"x","PodImage":"y","PodNode":"z","Extra":1}]"#,
        ),
        (
            "not-a-list.json",
            r#"{"PodName":"x","PodImage":"y","PodNode":"z"}"#,
        ),
    ];
    for (name, text) in cases {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        match try_start(&["--pods", file.to_str().unwrap()]) {
            Err(StartError::Pods(e)) => {
                assert!(e.to_string().contains(name), "the error names the file: {e}")
            }
            Err(e) => panic!("{name}: wrong error {e}"),
            Ok(server) => {
                server.shutdown();
                panic!("{name}: the server started with an invalid pod list");
            }
        }
    }
    let missing = dir.join("does-not-exist.json");
    match try_start(&["--pods", missing.to_str().unwrap()]) {
        Err(StartError::Pods(e)) => assert!(e.to_string().contains("cannot read"), "{e}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(server) => {
            server.shutdown();
            panic!("the server started with a missing pod list");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

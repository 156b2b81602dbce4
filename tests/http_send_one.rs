//! `POST /send/{id}` reaches exactly the one client with that id; an unknown or malformed id is 404 and sends nothing.

mod support;

use support::{assert_error, TestServer};

#[test]
fn send_to_one_client_only() {
    let server = TestServer::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    server.wait_clients(2);
    let id_b = server.client_id(b.local_addr());

    let (status, body) = server.post(&format!("/send/{id_b}"), "text/plain", b"only for b");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    let (status, _) = server.post(&format!("/send/{id_b}"), "application/octet-stream", &[1, 2, 3]);
    assert_eq!(status, 200);
    let (status, _) = server.post(&format!("/send/{id_b}"), "application/json", b"[true]");
    assert_eq!(status, 200);
    assert_eq!(b.next_text(), "only for b");
    assert_eq!(b.next_binary(), vec![1, 2, 3]);
    assert_eq!(b.next_text(), "[true]");

    // `a` got none of it: its next message is the broadcast that follows.
    let (status, _) = server.get("/sendall?msg=everyone");
    assert_eq!(status, 200);
    assert_eq!(a.next_text(), "everyone");
    assert_eq!(b.next_text(), "everyone");
}

#[test]
fn send_with_query_msg() {
    let server = TestServer::start(&[]);
    let mut a = server.client();
    server.wait_clients(1);
    let id = server.client_id(a.local_addr());
    let (status, body) = server.post(&format!("/send/{id}?msg=hi%20a"), "text/plain", b"");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":1}"#));
    assert_eq!(a.next_text(), "hi a");
}

#[test]
fn unknown_or_garbage_id_is_404() {
    let server = TestServer::start(&[]);
    let mut a = server.client();
    server.wait_clients(1);
    assert_error(&server.post("/send/987654", "text/plain", b"x"), 404, "no client");
    assert_error(&server.post("/send/abc", "text/plain", b"x"), 404, "no client");
    assert_error(&server.post("/send/-1", "text/plain", b"x"), 404, "no client");
    assert_error(&server.post("/send/", "text/plain", b"x"), 404, "no client");
    assert_error(
        &server.post("/send/99999999999999999999999", "text/plain", b"x"),
        404,
        "no client",
    );

    // An id that existed but left is unknown too (ids are never reused).
    let b = server.client();
    server.wait_clients(2);
    let id_b = server.client_id(b.local_addr());
    b.close();
    server.wait_clients(1);
    assert_error(
        &server.post(&format!("/send/{id_b}"), "text/plain", b"x"),
        404,
        "no client",
    );

    let (status, _) = server.get("/sendall?msg=marker");
    assert_eq!(status, 200);
    assert_eq!(a.next_text(), "marker", "the refused sends reached nobody");
}

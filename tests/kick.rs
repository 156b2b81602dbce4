//! `DELETE /clients/{id}` closes that client with 1008 `kicked` (counted and
//! logged), answers 404 for no such client, needs the token, and leaves
//! everyone else connected; a kicked `/ws/…` client resumes where it was.

#[path = "support/channels.rs"]
mod channels;
mod support;

use channels::Sub;
use serde_json::json;
use support::{assert_error, TestServer};

#[test]
fn a_kicked_client_is_closed_with_1008_and_the_others_stay() {
    let server = TestServer::start(&[]);
    let mut victim = server.client();
    let mut other = server.client();
    server.wait_clients(2);
    let id = server.client_id(victim.local_addr());

    let (status, body) = server.request("DELETE", &format!("/clients/{id}"), &[], b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"kicked": id})
    );
    assert_eq!(victim.expect_close(), (1008, "kicked".to_owned()));
    server.wait_clients(1);
    assert_eq!(server.counters().clients_kicked, 1);

    server.get("/sendall?msg=after");
    assert_eq!(other.next_text(), "after");
    // Gone now: 404, and not counted again.
    assert_error(
        &server.request("DELETE", &format!("/clients/{id}"), &[], b""),
        404,
        "no client",
    );
    assert_eq!(server.counters().clients_kicked, 1);
}

#[test]
fn unknown_ids_wrong_methods_and_missing_tokens_are_refused() {
    let server = TestServer::start(&["--publish-token", "secret"]);
    let mut c = server.client();
    server.wait_clients(1);
    let auth = [("Authorization", "Bearer secret")];
    for id in ["999", "x", "", "-1", "a-1"] {
        let answer = server.request("DELETE", &format!("/clients/{id}"), &auth, b"");
        assert_error(&answer, 404, "no client");
    }
    assert_error(
        &server.request("DELETE", "/clients/1", &[], b""),
        401,
        "bearer token",
    );
    assert_error(&server.request("GET", "/clients/1", &auth, b""), 405, "DELETE");
    assert_error(&server.request("DELETE", "/clients", &auth, b""), 405, "GET");
    server.request("GET", "/sendall?msg=still", &auth, b"");
    assert_eq!(c.next_text(), "still");
    assert_eq!(server.counters().clients_kicked, 0);
}

#[test]
fn a_kicked_subscriber_resumes_without_losing_a_message() {
    let server = TestServer::start(&[]);
    let (mut sub, _) = Sub::joined(&server, "orders");
    channels::publish(&server, "orders", "before");
    let seen = sub.next_message();
    let id = server.client_id(sub.ws.local_addr());
    assert_eq!(
        server.request("DELETE", &format!("/clients/{id}"), &[], b"").0,
        200
    );
    assert_eq!(sub.ws.expect_close(), (1008, "kicked".to_owned()));
    let missed: Vec<String> = (0..3)
        .map(|i| channels::publish(&server, "orders", &format!("missed {i}")).1)
        .collect();
    let mut back = Sub::connect(&server, &format!("orders?since={}", seen.id));
    let replayed = back.messages(3);
    assert_eq!(replayed.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), missed);
    back.expect_subscribed();
}

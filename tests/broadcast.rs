//! A message sent with `/sendall` reaches every connected client, and the echo stays private.

mod support;

use support::TestServer;

#[test]
fn sendall_reaches_every_client_and_counts_them() {
    let server = TestServer::start(&[]);
    let mut clients: Vec<_> = (0..3).map(|_| server.client()).collect();
    server.wait_clients(3);
    let (status, body) = server.get("/sendall?msg=hello%20world");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"clients":3}"#);
    for c in &mut clients {
        assert_eq!(c.next_text(), "hello world");
    }
}

#[test]
fn echo_goes_back_to_the_sender_only() {
    let server = TestServer::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    server.wait_clients(2);
    a.send_text("just me");
    assert_eq!(a.next_text(), "just me");
    server.get("/sendall?msg=after");
    assert_eq!(b.next_text(), "after", "b must not see a's echo");
    assert_eq!(a.next_text(), "after");
}

#[test]
fn the_count_follows_clients_joining_and_leaving() {
    let server = TestServer::start(&[]);
    let mut clients: Vec<_> = (0..5).map(|_| server.client()).collect();
    server.wait_clients(5);
    let (status, body) = server.get("/sendall?msg=five");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":5}"#));
    for c in &mut clients {
        assert_eq!(c.next_text(), "five");
    }
    clients.pop().unwrap().close();
    drop(clients.pop());
    server.wait_clients(3);
    let (status, body) = server.get("/sendall?msg=three");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":3}"#));
    for c in &mut clients {
        assert_eq!(c.next_text(), "three");
    }
    for c in clients {
        c.close();
    }
    server.wait_clients(0);
    let (status, body) = server.get("/sendall?msg=none");
    assert_eq!((status, body.as_str()), (200, r#"{"clients":0}"#));
}

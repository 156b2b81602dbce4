//! Requests on many side-port connections at once each get their own answer: twelve keep-alive connections ask for twelve different files in a loop while others send a body larger than the router's socket holds (routed by a helper thread), and every response is the one its connection asked for; a publish of such a body reaches a WebSocket client whole.

mod support;

use std::io::Write;
use std::thread;

use support::{raw_connect, temp_dir, Responses, TestServer};

const CONNECTIONS: usize = 12;
const REQUESTS: usize = 40;
/// More than a Unix socket's default send buffer (208 KiB): never written at once.
const LARGE_BODY: usize = 600 * 1024;

fn file_body(n: usize) -> Vec<u8> {
    format!("file {n} ").repeat(n * 50 + 1).into_bytes()
}

#[test]
fn every_connection_gets_the_answers_to_its_own_requests() {
    let html = temp_dir("many");
    for n in 0..CONNECTIONS {
        std::fs::write(html.join(format!("f{n}.txt")), file_body(n)).unwrap();
    }
    let html = html.display().to_string();
    let server = TestServer::start(&["--html-dir", &html]);
    thread::scope(|s| {
        for n in 0..CONNECTIONS {
            let server = &server;
            s.spawn(move || {
                let mut stream = raw_connect(server.http);
                // Every third connection sends a large body the route never
                // reads, so helpers and connection threads route side by side.
                let body = if n % 3 == 0 {
                    vec![b'x'; LARGE_BODY]
                } else {
                    Vec::new()
                };
                let head = format!(
                    "GET /f{n}.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                for i in 0..REQUESTS {
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(&body).unwrap();
                    let resp = Responses::new(&mut stream).next();
                    assert_eq!(resp.status, 200, "connection {n}, request {i}");
                    assert!(
                        resp.body == file_body(n),
                        "connection {n}, request {i}: got {:?}",
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(20)])
                    );
                }
            });
        }
    });
}

#[test]
fn a_publish_larger_than_the_routers_socket_reaches_clients_whole() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    let message: Vec<u8> = (0..LARGE_BODY).map(|i| (i % 251) as u8).collect();
    let (status, body) = server.post("/sendall", "application/octet-stream", &message);
    assert_eq!(status, 200, "{body}");
    assert!(client.next_binary() == message, "the message came whole");
}

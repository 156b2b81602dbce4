//! Requests on one side-port connection are handled strictly in order: five pipelined `POST /sendall` reach a WebSocket client in the order sent (every trial), and a mix of requests on one keep-alive connection (GET, POST with a length, chunked, `Expect: 100-continue`, HEAD, a 404) is answered in order, each response with an exact Content-Length.

mod support;

use std::io::Write;

use support::{raw_connect, Responses, TestServer};

const TRIALS: usize = 20;
const PIPELINED: usize = 5;

fn publish_as(content_type: &str, message: &str) -> String {
    format!(
        "POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{message}",
        message.len()
    )
}

fn publish(text: &str) -> String {
    publish_as("text/plain", text)
}

#[test]
fn pipelined_publishes_broadcast_in_the_order_sent() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    for trial in 0..TRIALS {
        // Large JSON (slow to check) between short texts (quick): handled in
        // parallel, a short one would overtake the large one before it.
        let sent: Vec<String> = (0..PIPELINED)
            .map(|n| match n % 2 {
                0 => format!("[{}\"t{trial}-m{n}\"]", "1,".repeat(50_000)),
                _ => format!("t{trial}-m{n}"),
            })
            .collect();
        let all: String = sent
            .iter()
            .map(|m| {
                publish_as(
                    if m.starts_with('[') {
                        "application/json"
                    } else {
                        "text/plain"
                    },
                    m,
                )
            })
            .collect();
        let mut stream = raw_connect(server.http);
        stream.write_all(all.as_bytes()).unwrap();
        let mut responses = Responses::new(&mut stream);
        for _ in 0..PIPELINED {
            let resp = responses.next();
            assert_eq!(
                (resp.status, resp.body.as_slice()),
                (200, &br#"{"clients":1}"#[..])
            );
        }
        let received: Vec<String> = (0..PIPELINED).map(|_| client.next_text()).collect();
        assert!(received == sent, "trial {trial}: received out of order");
    }
}

#[test]
fn a_mix_of_requests_on_one_connection_is_answered_in_order() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    let mut stream = raw_connect(server.http);
    // Sent one by one, each after the previous answer.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let resp = Responses::new(&mut stream).next();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(resp.header("connection"), None, "HTTP/1.1 stays open");

    stream
        .write_all(b"POST /sendall HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let cont = Responses::new(&mut stream).next_to_head();
    assert_eq!(cont.status, 100, "100 Continue before the body");
    stream.write_all(b"hello").unwrap();
    let resp = Responses::new(&mut stream).next();
    assert_eq!(resp.status, 200);
    assert_eq!(client.next_text(), "hello");

    // Then pipelined, all in one write.
    let chunked = "POST /sendall HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                   3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n";
    let all = [
        publish("first").as_str(),
        "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        chunked,
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /sendall?msg=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    stream.write_all(all.as_bytes()).unwrap();
    let mut responses = Responses::new(&mut stream);
    assert_eq!(responses.next().status, 200);
    let head = responses.next_to_head();
    assert_eq!((head.status, head.header("content-length")), (200, Some("2")));
    assert_eq!(responses.next().status, 200);
    let missing = responses.next();
    assert_eq!(missing.status, 404);
    support::assert_error_body(&missing.body, "no file");
    let last = responses.next();
    assert_eq!((last.status, last.header("connection")), (200, Some("close")));
    let (rest, _) = responses.rest();
    assert!(rest.is_empty(), "closed after the request that asked: {rest:?}");
    for expected in ["first", "chunked", "last"] {
        assert_eq!(client.next_text(), expected);
    }
}

//! The side port speaks HTTP/1.1 and HTTP/1.0: an HTTP/2.0 request line or the HTTP/2 preface gets 505 and the connection closed (not a hang); HTTP/1.0 closes after its response unless it asks for keep-alive.

mod support;

use std::io::Write;

use support::{assert_refusal, send_raw, Responses, TestServer};

#[test]
fn http_2_is_505_and_closed() {
    let server = TestServer::start(&[]);
    for request in [
        &b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
    ] {
        let mut stream = send_raw(server.http, request);
        assert_refusal(&mut stream, 505, "use HTTP/1.1");
    }
    assert_eq!(server.get("/healthz"), (200, "ok".to_owned()));
}

#[test]
fn http_1_0_closes_after_its_response_by_default() {
    let server = TestServer::start(&[]);
    let mut stream = send_raw(server.http, b"GET /healthz HTTP/1.0\r\n\r\n");
    let mut responses = Responses::new(&mut stream);
    let resp = responses.next();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.header("content-length"), Some("2"));
    let (rest, _) = responses.rest();
    assert!(rest.is_empty(), "closed after the response");
}

#[test]
fn http_1_0_keep_alive_serves_several_requests() {
    let server = TestServer::start(&[]);
    let mut client = server.client();
    server.wait_clients(1);
    let mut stream = support::raw_connect(server.http);
    for n in 0..3 {
        let request = format!(
            "POST /sendall HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\n{n}"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let resp = Responses::new(&mut stream).next();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), Some("keep-alive"));
        assert_eq!(client.next_text(), n.to_string());
    }
    stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut responses = Responses::new(&mut stream);
    let resp = responses.next();
    assert_eq!((resp.status, resp.header("connection")), (200, Some("close")));
    assert!(responses.rest().0.is_empty());
}

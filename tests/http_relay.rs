//! The front door relays large exchanges whole: a 4 MiB file asked for with a 1 MiB body the route never reads comes back byte for byte (the request is written to the router while its response is read, so neither side waits on the other), and several of them in a row on one connection.

mod support;

use std::io::Write;

use support::{raw_connect, temp_dir, Responses, TestServer};

#[test]
fn a_large_response_to_a_request_with_an_unread_large_body_comes_back_whole() {
    let html = temp_dir("relay");
    let file: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(html.join("big.bin"), &file).unwrap();
    let html = html.display().to_string();
    let server = TestServer::start(&["--html-dir", &html]);
    let body = vec![b'x'; 1 << 20];
    let mut stream = raw_connect(server.http);
    for _ in 0..3 {
        let head = format!(
            "GET /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let resp = Responses::new(&mut stream).next();
        assert_eq!(resp.status, 200);
        assert!(
            resp.body == file,
            "the file came back whole ({} bytes)",
            resp.body.len()
        );
    }
}

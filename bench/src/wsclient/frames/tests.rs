use super::*;

/// A server frame (unmasked).
pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// Feeds `bytes` to `f` in reads of at most `chunk` bytes; the messages and what `process` said last.
pub(crate) fn feed(f: &mut Frames, bytes: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Result<bool, String>) {
    let mut messages = Vec::new();
    let mut last = Ok(true);
    for part in bytes.chunks(chunk) {
        let mut part = part;
        while !part.is_empty() {
            let spare = f.spare();
            let n = spare.len().min(part.len());
            spare[..n].copy_from_slice(&part[..n]);
            f.filled(n);
            part = &part[n..];
            last = f.process(|m| messages.push(m.to_vec()));
        }
    }
    (messages, last)
}

/// The client frames in `out`, unmasked: (opcode, payload).
pub(crate) fn client_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        assert_eq!(out[0] & 0x80, 0x80, "FIN");
        assert_eq!(out[1] & 0x80, 0x80, "client frames are masked");
        let len = usize::from(out[1] & 0x7f);
        assert!(len <= 125);
        let mask = &out[2..6];
        let payload = out[6..6 + len]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        frames.push((out[0] & 0x0f, payload));
        out = &out[6 + len..];
    }
    frames
}

#[test]
fn header_lengths() {
    let h = |b: &[u8]| parse_header(b).unwrap();
    assert_eq!(h(&[0x81]), None);
    assert_eq!(
        h(&[0x81, 5]),
        Some(Header {
            fin: true,
            opcode: OP_TEXT,
            header_len: 2,
            payload_len: 5
        })
    );
    assert_eq!(h(&[0x82, 126, 1]), None);
    assert_eq!(
        h(&[0x82, 126, 1, 0]).map(|h| (h.header_len, h.payload_len)),
        Some((4, 256))
    );
    assert_eq!(h(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0]), None);
    assert_eq!(
        h(&[0x02, 127, 0, 0, 0, 0, 0, 1, 0, 0]).map(|h| (h.fin, h.header_len, h.payload_len)),
        Some((false, 10, 65536))
    );
    assert!(parse_header(&[0x81, 0x85]).is_err(), "masked");
    assert!(parse_header(&[0xC1, 5]).is_err(), "RSV1");
    assert!(parse_header(&[0x83, 5]).is_err(), "opcode 3");
    assert!(parse_header(&[0x89, 126, 0, 126]).is_err(), "long ping");
    assert!(parse_header(&[0x09, 0]).is_err(), "fragmented ping");
    assert!(
        parse_header(&[0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]).is_err(),
        "huge"
    );
}

#[test]
fn frames_split_across_reads() {
    let mut bytes = frame(true, OP_TEXT, b"first");
    bytes.extend(frame(true, OP_BINARY, b"second"));
    for chunk in 1..bytes.len() {
        let mut f = Frames::new(1);
        let (messages, last) = feed(&mut f, &bytes, chunk);
        assert_eq!(
            messages,
            [b"first".to_vec(), b"second".to_vec()],
            "reads of {chunk}"
        );
        assert_eq!(last, Ok(true));
        assert!(f.received().is_empty());
    }
}

#[test]
fn sixteen_and_sixty_four_bit_lengths_and_growth() {
    let medium: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let large: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    let mut bytes = frame(true, OP_TEXT, &medium);
    bytes.extend(frame(true, OP_BINARY, &large));
    bytes.extend(frame(true, OP_TEXT, b"after"));
    for chunk in [1, 7, 1000, 4096, bytes.len()] {
        let mut f = Frames::new(1);
        let (messages, last) = feed(&mut f, &bytes, chunk);
        assert_eq!(
            messages,
            [medium.clone(), large.clone(), b"after".to_vec()],
            "reads of {chunk}"
        );
        assert_eq!(last, Ok(true));
    }
}

#[test]
fn ping_gets_a_masked_pong_with_its_payload() {
    let mut f = Frames::new(7);
    let mut bytes = frame(true, OP_PING, b"are you there");
    bytes.extend(frame(true, OP_TEXT, b"msg"));
    bytes.extend(frame(true, OP_PONG, b"ignored"));
    bytes.extend(frame(true, OP_PING, b""));
    let (messages, last) = feed(&mut f, &bytes, 3);
    assert_eq!(messages, [b"msg".to_vec()]);
    assert_eq!(last, Ok(true));
    assert_eq!(
        client_frames(&f.out),
        [(OP_PONG, b"are you there".to_vec()), (OP_PONG, Vec::new())]
    );
}

#[test]
fn close_is_answered_with_its_code_and_ends() {
    let mut f = Frames::new(3);
    let mut bytes = frame(true, OP_TEXT, b"last");
    bytes.extend(frame(true, OP_CLOSE, &[0x03, 0xe9, b'b', b'y', b'e']));
    bytes.extend(frame(true, OP_TEXT, b"never"));
    let (messages, last) = feed(&mut f, &bytes, bytes.len());
    assert_eq!(messages, [b"last".to_vec()]);
    assert_eq!(last, Ok(false));
    assert_eq!(client_frames(&f.out), [(OP_CLOSE, vec![0x03, 0xe9])]);

    // Our own Close first: the server's reply is not answered again.
    let mut f = Frames::new(3);
    f.queue_close();
    f.queue_close();
    let (_, last) = feed(&mut f, &frame(true, OP_CLOSE, &[]), 100);
    assert_eq!(last, Ok(false));
    assert_eq!(client_frames(&f.out), [(OP_CLOSE, Vec::new())]);
}

#[test]
fn fragments_are_reassembled_around_a_ping() {
    let mut bytes = frame(false, OP_TEXT, b"one ");
    bytes.extend(frame(false, OP_CONTINUATION, b"two "));
    bytes.extend(frame(true, OP_PING, b"p"));
    bytes.extend(frame(true, OP_CONTINUATION, b"three"));
    bytes.extend(frame(true, OP_TEXT, b"whole"));
    let mut f = Frames::new(1);
    let (messages, last) = feed(&mut f, &bytes, 5);
    assert_eq!(messages, [b"one two three".to_vec(), b"whole".to_vec()]);
    assert_eq!(last, Ok(true));
    assert_eq!(client_frames(&f.out), [(OP_PONG, b"p".to_vec())]);

    let mut f = Frames::new(1);
    assert!(feed(&mut f, &frame(true, OP_CONTINUATION, b"x"), 10).1.is_err());
    let mut f = Frames::new(1);
    let mut bytes = frame(false, OP_TEXT, b"a");
    bytes.extend(frame(true, OP_TEXT, b"b"));
    assert!(feed(&mut f, &bytes, 10).1.is_err());
}

/// A connected pair on loopback: (the client's non-blocking end, the server's blocking end).
fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nonblocking(true).unwrap();
    let (server, _) = listener.accept().unwrap();
    // A read the client never answers fails the test instead of hanging it.
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    (client, server)
}

/// `read_from` until `until(frames, messages)` holds after a read that drained the socket
/// (or the connection closed; at most a second).
fn read_all(
    f: &mut Frames,
    sock: &TcpStream,
    until: impl Fn(&Frames, &[Vec<u8>]) -> bool,
) -> (Vec<Vec<u8>>, Vec<Step>) {
    let (mut messages, mut steps) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let step = f.read_from(sock, |m| messages.push(m.to_vec()));
        steps.push(step);
        let done = until(f, &messages) || std::time::Instant::now() > deadline;
        if step == Step::Closed || (step == Step::Drained && done) {
            return (messages, steps);
        }
        if step == Step::Drained {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[test]
fn read_from_a_socket() {
    use std::io::{Read, Write};
    let (client, mut server) = socket_pair();
    let mut f = Frames::new(5);

    // Nothing there yet: drained, no message.
    assert_eq!(f.read_from(&client, |_| panic!("no message")), Step::Drained);

    // Half a frame, then the rest.
    let frame1 = frame(true, OP_TEXT, &[b'a'; 300]);
    server.write_all(&frame1[..150]).unwrap();
    let (messages, _) = read_all(&mut f, &client, |f, _| f.received().len() == 150);
    assert!(messages.is_empty());
    assert_eq!(f.received().len(), 150, "the half frame is kept");
    server.write_all(&frame1[150..]).unwrap();
    let (messages, steps) = read_all(&mut f, &client, |_, m| m.len() == 1);
    assert_eq!(messages, [vec![b'a'; 300]]);
    assert_eq!(steps.last(), Some(&Step::Drained));

    // More than the buffer holds: a read that fills it says to read again.
    let mut burst = Vec::new();
    for i in 0..100u8 {
        burst.extend(frame(true, OP_BINARY, &[i; 100]));
    }
    server.write_all(&burst).unwrap();
    let (messages, steps) = read_all(&mut f, &client, |_, m| m.len() == 100);
    assert_eq!(messages.len(), 100);
    assert!(messages.iter().enumerate().all(|(i, m)| m == &[i as u8; 100]));
    assert!(steps.contains(&Step::More), "{steps:?}");

    // A ping is answered on the socket at once.
    server.write_all(&frame(true, OP_PING, b"hi")).unwrap();
    read_all(&mut f, &client, |f, _| {
        let (start, end) = f.span();
        !f.must_write() && start == end && end > 0
    });
    let mut pong = [0u8; 8];
    server.read_exact(&mut pong).unwrap();
    assert_eq!(client_frames(&pong), [(OP_PONG, b"hi".to_vec())]);

    // The end of the stream, after a last message.
    server.write_all(&frame(true, OP_TEXT, b"bye")).unwrap();
    drop(server);
    let (messages, steps) = read_all(&mut f, &client, |_, _| false);
    assert_eq!(messages, [b"bye".to_vec()]);
    assert_eq!(steps.last(), Some(&Step::Closed));
}

//! The opening handshake: the upgrade request and the check of the server's answer.

use std::net::SocketAddr;

use sha1::{Digest, Sha1};

/// The longest handshake response accepted.
pub(super) const MAX_RESPONSE: usize = 16 * 1024;

pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The `Sec-WebSocket-Accept` a server answers `key` with.
fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&h.finalize())
}

/// What to ask for in the upgrade request.
#[derive(Debug, Clone, Copy)]
pub struct Upgrade<'a> {
    /// The request target: path and query (`/echo`, `/ws/ch-01?since=...`).
    pub target: &'a str,
    /// A subprotocol to ask for (Nchan's `ws+meta.nchan`); the server must choose it.
    pub protocol: Option<&'a str>,
}

impl Upgrade<'static> {
    /// `GET /echo`, no subprotocol: what every broadcast scenario uses.
    pub const ECHO: Upgrade<'static> = Upgrade {
        target: "/echo",
        protocol: None,
    };
}

/// The upgrade request for `up` on `host` (what tungstenite sent: no `Origin`).
pub(super) fn request(host: SocketAddr, up: &Upgrade, key: &str) -> String {
    let protocol = up
        .protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{protocol}\r\n",
        up.target
    )
}

/// Checks the handshake response at the start of `b` (to a request with `key`
/// asking for `protocol`): `Ok(None)` until its header block is complete, then
/// the bytes it takes (what follows is frames).
pub(super) fn parse_response(b: &[u8], key: &str, protocol: Option<&str>) -> Result<Option<usize>, String> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&b[..end]).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("bad status line {status:?}"));
    }
    if parts.next() != Some("101") {
        return Err(format!("HTTP error: {status}"));
    }
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    let mut chosen = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => connection = value.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")),
            "sec-websocket-accept" => accept = value == accept_key(key),
            "sec-websocket-protocol" => chosen = Some(value),
            _ => {}
        }
    }
    if chosen != protocol {
        return Err(format!(
            "subprotocol {chosen:?} in the response, asked for {protocol:?}"
        ));
    }
    match (upgrade, connection, accept) {
        (false, _, _) => Err("no 'Upgrade: websocket' in the response".into()),
        (_, false, _) => Err("no 'Connection: Upgrade' in the response".into()),
        (_, _, false) => Err("wrong or missing Sec-WebSocket-Accept".into()),
        _ => Ok(Some(end + 4)),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::wsclient::frames::tests::{feed, frame};
    use crate::wsclient::frames::{Frames, OP_TEXT};

    #[test]
    fn accept_key_and_base64() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    pub(crate) fn response(key: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key)
        )
        .into_bytes()
    }

    #[test]
    fn response_with_a_message_right_behind_it() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = response(key);
        let mut bytes = head.clone();
        bytes.extend(frame(true, OP_TEXT, b"newest"));
        bytes.extend(&frame(true, OP_TEXT, b"next")[..3]);
        for cut in 0..head.len() {
            assert_eq!(parse_response(&bytes[..cut], key, None), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse_response(&bytes, key, None), Ok(Some(head.len())));

        // The rest is the start of the frame buffer, as `Client::connect` keeps it.
        let mut f = Frames::new(1);
        let spare = f.spare();
        spare[..bytes.len()].copy_from_slice(&bytes);
        f.filled(bytes.len());
        f.consume(head.len());
        let mut messages = Vec::new();
        assert_eq!(f.process(|m| messages.push(m.to_vec())), Ok(true));
        assert_eq!(messages, [b"newest".to_vec()]);
        let (messages, _) = feed(&mut f, &frame(true, OP_TEXT, b"next")[3..], 100);
        assert_eq!(messages, [b"next".to_vec()]);
    }

    #[test]
    fn responses_that_fail() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let fails = |r: &str| parse_response(r.as_bytes(), key, None).is_err();
        assert!(fails("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
        assert!(fails("HTTP/1.1 200 OK\r\n\r\n"));
        assert!(fails("SSH-2.0\r\n\r\n"));
        let wrong = String::from_utf8(response("c29tZXRoaW5nIGVsc2U=")).unwrap();
        assert!(fails(&wrong));
        let no_upgrade = String::from_utf8(response(key))
            .unwrap()
            .replace("Upgrade: websocket\r\n", "");
        assert!(fails(&no_upgrade));
        // Header names in any case, `Connection` with several tokens.
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nserver: x\r\nUPGRADE: WebSocket\r\n\
             connection: keep-alive, Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
            accept_key(key)
        );
        assert_eq!(parse_response(ok.as_bytes(), key, None), Ok(Some(ok.len())));
        // A subprotocol asked for must be the one chosen; none asked for, none chosen.
        let meta = format!(
            "{}Sec-WebSocket-Protocol: ws+meta.nchan\r\n\r\n",
            &ok[..ok.len() - 2]
        );
        let nchan = Some("ws+meta.nchan");
        assert_eq!(parse_response(meta.as_bytes(), key, nchan), Ok(Some(meta.len())));
        assert!(parse_response(meta.as_bytes(), key, None).is_err());
        assert!(parse_response(ok.as_bytes(), key, nchan).is_err());
    }
}

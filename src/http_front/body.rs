//! A request body, read in full before the request is routed: by its
//! Content-Length, or chunked and decoded, with limits on every part.

use std::time::Instant;

use super::head::{Framing, MAX_HEADERS, MAX_HEAD_BYTES};
use super::inbound::{Inbound, ReadError, Source};
use super::refusal::{shown, Refusal};

/// The longest chunk-size line (the size and any extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// Why no body came.
#[derive(Debug)]
pub enum BodyError {
    /// The body breaks a rule: answer and close.
    Refused(Refusal),
    /// Reading failed: timed out, closed or broken.
    Read(ReadError),
}

impl From<ReadError> for BodyError {
    fn from(e: ReadError) -> BodyError {
        BodyError::Read(e)
    }
}

impl From<Refusal> for BodyError {
    fn from(r: Refusal) -> BodyError {
        BodyError::Refused(r)
    }
}

/// Reads the body `framing` announces, at most `max` bytes, before `deadline`.
pub fn read<S: Source>(
    inbound: &mut Inbound<S>,
    framing: Framing,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    match framing {
        Framing::Length(n) => {
            let mut body = Vec::new();
            inbound.take_into(n, &mut body, deadline)?;
            Ok(body)
        }
        Framing::Chunked => chunked(inbound, max, deadline),
    }
}

fn chunked<S: Source>(inbound: &mut Inbound<S>, max: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        let line = framing_line(inbound, MAX_CHUNK_LINE, "chunk-size line", deadline)?;
        let size = chunk_size(&line)?;
        if size == 0 {
            break;
        }
        if size > (max - body.len()) as u64 {
            return Err(Refusal::new(
                413,
                format!("chunked body over the limit of {max} bytes (--max-body-bytes)"),
            )
            .into());
        }
        // size <= max - body.len(), which is a usize.
        inbound.take_into(size as usize, &mut body, deadline)?;
        if !framing_line(inbound, 0, "chunk end", deadline)?.is_empty() {
            return Err(Refusal::bad("chunk data not followed by CRLF").into());
        }
    }
    skip_trailer(inbound, deadline)?;
    Ok(body)
}

/// One CRLF-terminated line of the chunked framing, at most `max` bytes.
fn framing_line<S: Source>(
    inbound: &mut Inbound<S>,
    max: usize,
    what: &str,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    match inbound.line(max, deadline)? {
        Some(line) if line.bare_lf => Err(Refusal::bad(format!("{what} ends in a bare LF")).into()),
        Some(line) => Ok(line.text),
        None => Err(Refusal::bad(format!("{what} longer than {max} bytes")).into()),
    }
}

/// The hex size at the start of a chunk-size line; extensions after `;` are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, Refusal> {
    let bad = || Refusal::bad(format!("bad chunk size {}", shown(line)));
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    if digits == 0 || !(rest.is_empty() || rest[0] == b';') {
        return Err(bad());
    }
    line[..digits].iter().try_fold(0u64, |n, &d| {
        let digit = u64::from((d as char).to_digit(16).unwrap_or(0));
        n.checked_mul(16)
            .and_then(|n| n.checked_add(digit))
            .ok_or_else(bad)
    })
}

/// Reads and drops the trailer fields after the last chunk, within the head's limits.
fn skip_trailer<S: Source>(inbound: &mut Inbound<S>, deadline: Instant) -> Result<(), BodyError> {
    let (mut bytes, mut fields) = (0, 0);
    loop {
        let line = framing_line(inbound, MAX_HEAD_BYTES, "trailer field", deadline)?;
        if line.is_empty() {
            return Ok(());
        }
        bytes += line.len() + 2;
        fields += 1;
        if bytes > MAX_HEAD_BYTES || fields > MAX_HEADERS {
            return Err(Refusal::new(
                431,
                format!("trailer over {MAX_HEADERS} fields or {MAX_HEAD_BYTES} bytes"),
            )
            .into());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::inbound::Canned;
    use super::*;

    fn decode(pieces: &[&[u8]], max: usize) -> (Result<Vec<u8>, BodyError>, Vec<u8>) {
        let mut inbound = Inbound::new(Canned::new(pieces));
        let deadline = Instant::now() + Duration::from_secs(5);
        let body = read(&mut inbound, Framing::Chunked, max, deadline);
        let rest = inbound.unread().to_vec();
        (body, rest)
    }

    fn refused(pieces: &[&[u8]], max: usize) -> u16 {
        match decode(pieces, max).0 {
            Err(BodyError::Refused(r)) => r.status,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn chunks_are_decoded_and_the_next_request_is_left_unread() {
        let (body, rest) = decode(
            &[
                b"5;name=x\r\nhello\r\n",
                b"6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n",
            ],
            100,
        );
        assert_eq!(body.unwrap(), b"hello world");
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn a_chunked_body_over_the_limit_is_413_before_its_data_is_read() {
        let smuggled: &[u8] = b"GET /sendall?msg=SMUGGLED HTTP/1.1\r\n\r\n";
        assert_eq!(refused(&[b"10\r\n", smuggled], 8), 413);
        assert_eq!(refused(&[b"4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n"], 8), 413);
        assert_eq!(refused(&[b"ffffffffffffffff\r\n"], 8), 413);
    }

    #[test]
    fn bad_framing_is_400() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"10000000000000000\r\n",
            b"3\r\nabcX\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3 junk\r\nabc\r\n",
        ] {
            assert_eq!(refused(&[bad], 100), 400, "{:?}", String::from_utf8_lossy(bad));
        }
        let long_line = [b"1;".as_slice(), &[b'e'; MAX_CHUNK_LINE], b"\r\n"].concat();
        assert_eq!(refused(&[&long_line], 100), 400);
    }

    #[test]
    fn a_huge_trailer_is_431() {
        let mut trailer = b"0\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            trailer.extend_from_slice(b"X: y\r\n");
        }
        assert_eq!(refused(&[&trailer], 100), 431);
    }

    #[test]
    fn a_body_that_stops_coming_times_out() {
        let (body, _) = decode(&[b"5\r\nhel"], 100);
        assert!(matches!(body, Err(BodyError::Read(ReadError::TimedOut))));
    }
}

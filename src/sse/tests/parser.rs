//! An EventSource parser written from the HTML standard ("Interpreting an
//! event stream", §9.2.6), to read back what `sse` writes as a browser would.

/// One dispatched event, as `MessageEvent` gives it to a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event.type`: "message" unless an `event:` field named another.
    pub kind: String,
    pub data: String,
    /// `event.lastEventId`: the last `id:` seen so far in the stream.
    pub last_event_id: String,
}

/// What a whole stream amounts to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub events: Vec<Event>,
    /// The last valid `retry:` value.
    pub retry_ms: Option<u64>,
    /// The last event ID string at the end (what a reconnect would send).
    pub last_event_id: String,
}

#[derive(Default)]
struct Buffers {
    data: String,
    kind: String,
    id: String,
}

/// Parses a complete stream; an event not finished by a blank line is dropped.
pub fn parse(bytes: &[u8]) -> Stream {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut stream = Stream::default();
    let mut buffers = Buffers::default();
    let mut rest = text;
    // Only complete lines count: a line needs its end-of-line.
    while let Some(i) = rest.find(['\r', '\n']) {
        let line = &rest[..i];
        let eol = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + eol..];
        process_line(line, &mut buffers, &mut stream);
    }
    stream.last_event_id = buffers.id;
    stream
}

fn process_line(line: &str, buffers: &mut Buffers, stream: &mut Stream) {
    if line.is_empty() {
        dispatch(buffers, stream);
        return;
    }
    if line.starts_with(':') {
        return;
    }
    let (field, value) = match line.split_once(':') {
        Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    };
    match field {
        "event" => buffers.kind = value.to_owned(),
        "data" => {
            buffers.data.push_str(value);
            buffers.data.push('\n');
        }
        "id" if !value.contains('\0') => buffers.id = value.to_owned(),
        "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            stream.retry_ms = value.parse().ok();
        }
        _ => {}
    }
}

fn dispatch(buffers: &mut Buffers, stream: &mut Stream) {
    if buffers.data.is_empty() {
        buffers.kind.clear();
        return;
    }
    let mut data = std::mem::take(&mut buffers.data);
    if data.ends_with('\n') {
        data.pop();
    }
    let kind = std::mem::take(&mut buffers.kind);
    stream.events.push(Event {
        kind: if kind.is_empty() {
            "message".to_owned()
        } else {
            kind
        },
        data,
        last_event_id: buffers.id.clone(),
    });
}

#[test]
fn the_parser_follows_the_standard_examples() {
    // The standard's own examples: a multi-line data, ids kept across events,
    // a comment, a field without a colon, and the unfinished last event dropped.
    let stream = parse(b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\ndata\n\ndata\ndata\n\ndata:\nretry: 5x\nretry: 10\n\ndata: never");
    let data: Vec<&str> = stream.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        data,
        ["first event", "second event", " third event", "", "\n", ""]
    );
    let ids: Vec<&str> = stream.events.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(ids, ["1", "", "", "", "", ""]);
    assert_eq!(stream.retry_ms, Some(10));
}

//! The shared log on the Redis side: its two keys, and the commands that
//! append to it, read it, tell its epoch and whether it lost entries, and trim it.
//!
//! - `<prefix>.log`: the stream, one entry per publish (see `entry`);
//! - `<prefix>.epoch`: the stream's incarnation, 16 hex digits. The two are
//!   made together, atomically (`EPOCH_SCRIPT`), and a publish never makes the
//!   stream (`XADD NOMKSTREAM`): a log that was lost (FLUSHALL, a Redis
//!   restarted without persistence, an evicted key) comes back with a new
//!   epoch, so ids from before it cannot be taken for ids of the new one.
//!
//! Entries are only ever removed from the front (`MAXLEN ~` on each XADD,
//! `MINID ~` by the announcer), so a reader that counts the entries it has
//! read past knows it missed some exactly when Redis has removed more than
//! that many (`XINFO STREAM`: entries-added − length). It reads and looks in
//! one script (`READ_SCRIPT`), so nothing can be removed in between.

use std::time::Duration;

use redis::{Connection, ErrorKind, RedisError, RedisResult, Value};

use super::entry::{Entry, StreamId};

/// The keys of one cluster's log.
#[derive(Debug, Clone)]
pub struct LogKeys {
    pub stream: String,
    pub epoch: String,
}

impl LogKeys {
    pub fn new(prefix: &str) -> LogKeys {
        LogKeys {
            stream: format!("{prefix}.log"),
            epoch: format!("{prefix}.epoch"),
        }
    }
}

/// The stream as a reader sees it when it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    /// Entries ever removed from it. Trimming removes the oldest first, so
    /// these are its first `removed` entries: a reader that has read past `n`
    /// entries lost some it had not read when `removed > n`.
    pub removed: u64,
    /// The last id it ever gave.
    pub last: StreamId,
    /// Its oldest entry, if it holds any.
    pub head: Option<StreamId>,
}

impl StreamState {
    /// Where a reader that starts on this stream reads from, so that it
    /// misses nothing it still holds, and how many entries lie up to there.
    pub fn start(&self) -> (StreamId, u64) {
        (self.head.map_or(self.last, StreamId::before), self.removed)
    }
}

/// The log's epoch (if the key holds one) and its stream (if there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    pub epoch: Option<u64>,
    pub stream: Option<StreamState>,
}

/// The state and, atomically with it, the entries after `ARGV[1]` (at most
/// `ARGV[2]`): `[epoch or nil, 'missing']` or
/// `[epoch or nil, 'stream', removed, last id, head id or nil, entries]`.
const READ_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then return {epoch, 'missing'} end
local info = redis.call('XINFO', 'STREAM', KEYS[2])
local added, length, last, head = nil, nil, nil, false
for i = 1, #info, 2 do
  local key, value = info[i], info[i + 1]
  if key == 'entries-added' then added = value
  elseif key == 'length' then length = value
  elseif key == 'last-generated-id' then last = value
  elseif key == 'first-entry' and value then head = value[1] end
end
if not added then
  return redis.error_reply('wspush needs Redis 7.0 or later (XINFO STREAM has no entries-added)')
end
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {epoch, 'stream', added - length, last, head, entries}
";

/// The epoch, made (with an empty stream) when there is none or the stream is gone.
const EPOCH_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1])
local exists = redis.call('EXISTS', KEYS[2]) == 1
if epoch and exists then return epoch end
if not exists then
  redis.call('XGROUP', 'CREATE', KEYS[2], 'wspush-new', '$', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', KEYS[2], 'wspush-new')
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

fn bad_reply(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::TypeError, what, detail))
}

/// The log's epoch; `fresh` becomes it when the log is new or was lost.
pub fn epoch(conn: &mut Connection, keys: &LogKeys, fresh: u64) -> RedisResult<u64> {
    let epoch: String = redis::cmd("EVAL")
        .arg(EPOCH_SCRIPT)
        .arg(2)
        .arg(&keys.epoch)
        .arg(&keys.stream)
        .arg(format!("{fresh:016x}"))
        .query(conn)?;
    parse_epoch(epoch.as_bytes()).ok_or_else(|| {
        bad_reply(
            "the log's epoch key does not hold 16 hex digits",
            format!("{} = {epoch:?}", keys.epoch),
        )
    })
}

fn parse_epoch(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    (text.len() == 16).then(|| u64::from_str_radix(text, 16).ok())?
}

/// `READ_SCRIPT` as loaded on one connection's Redis (`SCRIPT LOAD`): its
/// SHA1, so each read sends `EVALSHA` and not the script.
pub struct ReadScript(String);

impl ReadScript {
    /// Loads it. A Redis that forgets it (`SCRIPT FLUSH`, a restart) fails
    /// the next read with `NOSCRIPT`; the reader then connects and loads anew.
    pub fn load(conn: &mut Connection) -> RedisResult<ReadScript> {
        let sha = redis::cmd("SCRIPT").arg("LOAD").arg(READ_SCRIPT).query(conn)?;
        Ok(ReadScript(sha))
    }

    fn cmd(&self, keys: &LogKeys, after: StreamId, count: usize) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.0)
            .arg(2)
            .arg(&keys.epoch)
            .arg(&keys.stream)
            .arg(after.to_string())
            .arg(count);
        cmd
    }
}

/// The log's state now.
pub fn state(conn: &mut Connection, keys: &LogKeys, script: &ReadScript) -> RedisResult<LogState> {
    let reply: Value = script.cmd(keys, StreamId::default(), 0).query(conn)?;
    Ok(parse_read(reply)?.1)
}

/// Up to `count` entries after `after`, and the log's state they were read
/// in (atomically). With `wait`, first waits up to that long for an entry
/// after `after` (`XREAD BLOCK`, whose own answer is not used).
pub fn read(
    conn: &mut Connection,
    keys: &LogKeys,
    script: &ReadScript,
    after: StreamId,
    count: usize,
    wait: Option<Duration>,
) -> RedisResult<(Vec<RawEntry>, LogState)> {
    let read = script.cmd(keys, after, count);
    let Some(wait) = wait else {
        return parse_read(read.query(conn)?);
    };
    let mut pipe = redis::pipe();
    pipe.cmd("XREAD")
        .arg("COUNT")
        .arg(1)
        .arg("BLOCK")
        .arg(wait.as_millis() as u64)
        .arg("STREAMS")
        .arg(&keys.stream)
        .arg(after.to_string())
        .ignore();
    pipe.add_command(read);
    let (reply,): (Value,) = pipe.query(conn)?;
    parse_read(reply)
}

/// The script's reply: the entries read and the state they were read in.
fn parse_read(reply: Value) -> RedisResult<(Vec<RawEntry>, LogState)> {
    let bad =
        |detail: &[Value]| bad_reply("unexpected reply of the log's read script", format!("{detail:?}"));
    let Value::Array(mut parts) = reply else {
        return Err(bad(&[reply]));
    };
    let epoch = match parts.first() {
        Some(Value::BulkString(e)) => parse_epoch(e),
        _ => None,
    };
    if matches!(parts.get(1), Some(Value::BulkString(kind)) if kind == b"missing") {
        return Ok((Vec::new(), LogState { epoch, stream: None }));
    }
    let id = |part: Option<&Value>| match part {
        Some(Value::BulkString(id)) => StreamId::parse(id),
        _ => None,
    };
    let stream = match (parts.get(1), parts.get(2), id(parts.get(3))) {
        (Some(Value::BulkString(kind)), Some(Value::Int(removed)), Some(last)) if kind == b"stream" => {
            StreamState {
                removed: u64::try_from(*removed).unwrap_or(0),
                last,
                head: id(parts.get(4)),
            }
        }
        _ => return Err(bad(&parts)),
    };
    let entries = match (parts.len(), parts.pop()) {
        (6, Some(Value::Array(entries))) => entries,
        _ => return Err(bad(&parts)),
    };
    let entries = entries.into_iter().map(parse_entry).collect::<RedisResult<_>>()?;
    let state = LogState {
        epoch,
        stream: Some(stream),
    };
    Ok((entries, state))
}

/// One entry as read: its id and its fields (`name, value, ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: StreamId,
    pub fields: Vec<Vec<u8>>,
}

impl RawEntry {
    pub fn field_slices(&self) -> Vec<&[u8]> {
        self.fields.iter().map(Vec::as_slice).collect()
    }
}

fn parse_entry(entry: Value) -> RedisResult<RawEntry> {
    let bad = || bad_reply("unexpected stream entry", String::new());
    let Value::Array(mut parts) = entry else {
        return Err(bad());
    };
    let fields = match parts.pop() {
        Some(Value::Array(fields)) => fields
            .into_iter()
            .map(|f| match f {
                Value::BulkString(bytes) => Ok(bytes),
                _ => Err(bad()),
            })
            .collect::<RedisResult<_>>()?,
        // An entry removed while it was read.
        Some(Value::Nil) => Vec::new(),
        _ => return Err(bad()),
    };
    let id = match parts.pop() {
        Some(Value::BulkString(id)) => StreamId::parse(&id).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(RawEntry { id, fields })
}

/// Appends `entry` to the log, keeping at most about `max_len` entries, and
/// asks how many nodes are subscribed to `shared_channel` (the `nodes` of a
/// publish's answer). Its reply is read by `appended`.
pub fn append(keys: &LogKeys, max_len: u64, entry: &Entry<'_>, shared_channel: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let xadd = pipe
        .cmd("XADD")
        .arg(&keys.stream)
        .arg("NOMKSTREAM")
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*");
    for (name, value) in entry.fields() {
        xadd.arg(name).arg(value);
    }
    pipe.cmd("PUBSUB").arg("NUMSUB").arg(shared_channel);
    pipe
}

/// What an append's pipeline answered: the entry's id (`None`: there is no
/// log, it was lost) and the nodes subscribed.
pub fn appended(reply: (Value, Value)) -> RedisResult<(Option<StreamId>, u64)> {
    let id =
        match reply.0 {
            Value::Nil => None,
            Value::BulkString(id) => Some(StreamId::parse(&id).ok_or_else(|| {
                bad_reply("XADD gave no entry id", String::from_utf8_lossy(&id).into_owned())
            })?),
            other => return Err(bad_reply("unexpected XADD reply", format!("{other:?}"))),
        };
    let nodes = match reply.1 {
        Value::Array(pair) => match pair.get(1) {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        },
        Value::Map(pairs) => pairs
            .first()
            .and_then(|(_, n)| redis::from_redis_value::<u64>(n).ok())
            .unwrap_or(0),
        _ => 0,
    };
    Ok((id, nodes))
}

/// Removes entries older than `min_ms` (whole blocks of them: `~`); answers
/// how many.
pub fn trim_cmd(keys: &LogKeys, min_ms: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("XTRIM");
    cmd.arg(&keys.stream).arg("MINID").arg("~").arg(min_ms);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, n: u64) -> StreamId {
        StreamId { ms, n }
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_reader_starts_before_the_oldest_entry_left() {
        let state = |head| StreamState {
            removed: 7,
            last: id(9, 5),
            head,
        };
        assert_eq!(state(Some(id(9, 2))).start(), (id(9, 1), 7));
        assert_eq!(
            state(None).start(),
            (id(9, 5), 7),
            "an empty stream: after its last id"
        );
    }

    #[test]
    fn reads_parse() {
        let entry = Value::Array(vec![bulk("12-3"), Value::Array(vec![bulk("seq"), bulk("1")])]);
        let reply = Value::Array(vec![
            bulk("00000000000000ff"),
            bulk("stream"),
            Value::Int(4),
            bulk("12-3"),
            bulk("12-0"),
            Value::Array(vec![entry]),
        ]);
        let (entries, state) = parse_read(reply).unwrap();
        assert_eq!(
            entries,
            [RawEntry {
                id: id(12, 3),
                fields: vec![b"seq".to_vec(), b"1".to_vec()]
            }]
        );
        let stream = StreamState {
            removed: 4,
            last: id(12, 3),
            head: Some(id(12, 0)),
        };
        assert_eq!(
            state,
            LogState {
                epoch: Some(0xff),
                stream: Some(stream)
            }
        );
        let missing = parse_read(Value::Array(vec![Value::Nil, bulk("missing")])).unwrap();
        assert_eq!(
            missing.1,
            LogState {
                epoch: None,
                stream: None
            }
        );
        let short = Value::Array(vec![Value::Nil, bulk("stream"), Value::Int(0), bulk("1-1")]);
        assert!(parse_read(short).is_err());
        assert!(parse_read(Value::Int(1)).is_err());
        assert_eq!(parse_epoch(b"xyz"), None);
    }

    #[test]
    fn an_append_answers_its_id_and_the_nodes() {
        let numsub = Value::Array(vec![bulk("wspush"), Value::Int(2)]);
        assert_eq!(
            appended((bulk("12-3"), numsub.clone())).unwrap(),
            (Some(id(12, 3)), 2)
        );
        assert_eq!(appended((Value::Nil, numsub)).unwrap(), (None, 2));
    }
}

// wspush.js's pure parts, tested in the browser that will run them (wspush-test.html).
// Results go to the page's table and to window.testResults (read by tests/browser_wspush_js.rs).
import { subscribe, subscribeUrl, eventsUrl, retryDelay, Cursor } from './wspush.js';
import { openEventStream, TransportChoice, SSE_RETRY_MS } from './wspush-sse.js';
import { withFakes } from './wspush-test-fakes.js';
import { tokenCases } from './wspush-test-tokens.js';

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

function eq(actual, expected, what = '') {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what} got ${a}, expected ${e}`);
}

function throws(fn, needle) {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof TypeError) || !err.message.includes(needle)) {
      throw new Error(`threw ${err}, expected a TypeError mentioning ${JSON.stringify(needle)}`);
    }
    return;
  }
  throw new Error(`did not throw (expected ${JSON.stringify(needle)})`);
}

const envelope = (id, data = 'x', channel = 'all') => JSON.stringify({ channel, id, data });
const subscribed = (id) => JSON.stringify({ type: 'subscribed', id, channels: ['all'] });
const reset = (id) => JSON.stringify({ type: 'reset', id });

// --- subscribeUrl --------------------------------------------------------------

test('subscribeUrl: channels joined under /ws/', () => {
  eq(subscribeUrl('ws://h:8080', ['all', 'orders']), 'ws://h:8080/ws/all,orders');
  eq(subscribeUrl('ws://h:8080', 'orders'), 'ws://h:8080/ws/orders');
});

test('subscribeUrl: http and https mean ws and wss', () => {
  eq(subscribeUrl('http://h:1', 'all'), 'ws://h:1/ws/all');
  eq(subscribeUrl('https://h', 'all'), 'wss://h/ws/all');
});

test('subscribeUrl: a path is a prefix, with or without a trailing slash', () => {
  eq(subscribeUrl('wss://e.com/push/', 'all'), 'wss://e.com/push/ws/all');
  eq(subscribeUrl('wss://e.com/push', 'all'), 'wss://e.com/push/ws/all');
});

test('subscribeUrl: relative to the page', () => {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  eq(subscribeUrl('/', 'all'), `${scheme}//${location.host}/ws/all`);
});

test('subscribeUrl: since, or else last; last 0 asks nothing', () => {
  eq(subscribeUrl('ws://h', 'all', { since: 'ab12-7' }), 'ws://h/ws/all?since=ab12-7');
  eq(subscribeUrl('ws://h', 'all', { last: 50 }), 'ws://h/ws/all?last=50');
  eq(subscribeUrl('ws://h', 'all', { since: 'x-1', last: 50 }), 'ws://h/ws/all?since=x-1');
  eq(subscribeUrl('ws://h', 'all', { last: 0 }), 'ws://h/ws/all');
});

test('subscribeUrl: since is URL-encoded; the base query kept, a stale since replaced, no fragment', () => {
  eq(subscribeUrl('ws://h', 'all', { since: 'a&b=c' }), 'ws://h/ws/all?since=a%26b%3Dc');
  eq(subscribeUrl('ws://h/?app=3&since=old#x', 'all', { since: 'new' }), 'ws://h/ws/all?app=3&since=new');
});

test('subscribeUrl: a token goes in ?token=, replacing one of the base; none when null or empty', () => {
  eq(subscribeUrl('ws://h', 'all', { since: 'x-1', token: 'a.b.c' }), 'ws://h/ws/all?since=x-1&token=a.b.c');
  eq(subscribeUrl('ws://h/?token=old&app=1', 'all', { token: 'new' }), 'ws://h/ws/all?token=new&app=1');
  eq(subscribeUrl('ws://h', 'all', { token: null }), 'ws://h/ws/all');
  eq(subscribeUrl('ws://h', 'all', { token: '' }), 'ws://h/ws/all');
});

test('subscribeUrl: bad channel names and other schemes throw', () => {
  for (const bad of ['', 'a b', 'a/b', 'x'.repeat(129), 'é', []]) throws(() => subscribeUrl('ws://h', bad), 'channel');
  subscribeUrl('ws://h', ['A-z_0.9:@x', 'x'.repeat(128)]);
  throws(() => subscribeUrl('ftp://h', 'all'), 'not a ws:');
});

test('eventsUrl: the same subscription under /events/, over http(s)', () => {
  eq(eventsUrl('ws://h:8080', ['all', 'orders']), 'http://h:8080/events/all,orders');
  eq(eventsUrl('wss://e.com/push/', 'all', { since: 'a&b' }), 'https://e.com/push/events/all?since=a%26b');
  eq(eventsUrl('http://h:1/?app=3&last=9', 'all', { last: 50 }), 'http://h:1/events/all?app=3&last=50');
  eq(eventsUrl('https://h', 'all', { since: 'x-1', last: 50 }), 'https://h/events/all?since=x-1');
  throws(() => eventsUrl('ftp://h', 'all'), 'not a ws:');
  throws(() => eventsUrl('ws://h', 'a b'), 'channel');
});

// --- retryDelay ----------------------------------------------------------------

test('retryDelay: 1 s doubling to 30 s, each in the upper half of its ceiling', () => {
  const ceilings = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  ceilings.forEach((ceiling, attempt) => {
    eq(retryDelay(attempt, () => 0), ceiling / 2, `attempt ${attempt}, lowest:`);
    eq(retryDelay(attempt, () => 1), ceiling, `attempt ${attempt}, highest:`);
  });
  eq(retryDelay(5000, () => 1), 30000, 'far attempts:');
});

test('retryDelay: random jitter by default', () => {
  const delays = Array.from({ length: 500 }, () => retryDelay(3));
  const [low, high] = [Math.min(...delays), Math.max(...delays)];
  if (low < 4000 || high > 8000 || high - low < 800) throw new Error(`delays ${low}..${high}`);
});

// --- Cursor: the since bookkeeping ---------------------------------------------

test('Cursor: a first connection asks for last, or nothing; a since given wins', () => {
  eq(new Cursor({ last: 50 }).next(), { last: 50 });
  eq(new Cursor().next(), {});
  eq(new Cursor({ since: 'e-3', last: 50 }).next(), { since: 'e-3' });
});

test('Cursor: the latest message id is where the next connection resumes', () => {
  const c = new Cursor({ last: 50 });
  c.next();
  c.receive(envelope('e-1'));
  c.receive(envelope('e-2'));
  eq(c.lastId, 'e-2');
  eq(c.next(), { since: 'e-2' });
});

test('Cursor: messages before "subscribed" are replayed, later ones live', () => {
  const c = new Cursor({ last: 5 });
  c.next();
  eq(c.receive(envelope('e-4', { a: 1 }, 'all')), {
    kind: 'message', message: { type: 'message', channel: 'all', id: 'e-4', data: { a: 1 }, replayed: true },
  });
  eq(c.receive(subscribed('e-5')), { kind: 'live', id: 'e-5', channels: ['all'], replayed: 1, resumed: false });
  eq(c.receive(envelope('e-6')).message.replayed, false);
  eq(c.lastId, 'e-6');
});

test('Cursor: "subscribed" is a resume point for a quiet connection', () => {
  const c = new Cursor();
  c.next();
  c.receive(subscribed('e-9'));
  eq(c.next(), { since: 'e-9' });
});

test('Cursor: a resume counts what it replayed, across an attempt lost mid-replay', () => {
  const c = new Cursor({ since: 'e-1' });
  c.next();
  c.receive(envelope('e-2'));
  eq(c.next(), { since: 'e-2' }, 'the second attempt:');
  c.receive(envelope('e-3'));
  eq(c.receive(subscribed('e-3')), { kind: 'live', id: 'e-3', channels: ['all'], replayed: 2, resumed: true });
  eq(c.next(), { since: 'e-3' });
  eq(c.receive(subscribed('e-3')).replayed, 0, 'the next resume starts from 0:');
});

test('Cursor: a reset moves the resume point and the resume is not complete', () => {
  const c = new Cursor({ since: 'old-1' });
  c.next();
  eq(c.receive(reset('new-0')), { kind: 'reset', id: 'new-0' });
  eq(c.lastId, 'new-0');
  eq(c.receive(subscribed('new-0')), { kind: 'live', id: 'new-0', channels: ['all'], replayed: 0, resumed: false });
});

test('Cursor: echo and direct pass through and leave the resume point', () => {
  const c = new Cursor();
  c.next();
  c.receive(envelope('e-1'));
  eq(c.receive('{"type":"echo","data":"hi"}'), { kind: 'message', message: { type: 'echo', data: 'hi', replayed: false } });
  eq(c.receive('{"type":"direct","data":{"base64":"AAE="}}').message, { type: 'direct', data: { base64: 'AAE=' }, replayed: false });
  eq(c.lastId, 'e-1');
});

test('Cursor: frames it does not understand are ignored and leave the resume point', () => {
  const c = new Cursor();
  c.next();
  c.receive(envelope('e-1'));
  for (const frame of ['ping', 'not json', '42', 'null', '[]', '{"type":"later","id":"z-1"}', '{"channel":"all"}', '{"type":"reset"}']) {
    eq(c.receive(frame), null, frame);
  }
  eq(c.lastId, 'e-1');
});

// --- subscribe's checks ----------------------------------------------------------

test('subscribe: unknown options, other transports and bad values throw before connecting', () => {
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { getTokens: () => 't' }), 'unknown option getTokens');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { getToken: 'a.b.c' }), 'getToken must be a function');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { transport: 'longpoll' }), 'unsupported transport longpoll');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { last: -1 }), 'last');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { last: 1.5 }), 'last');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { since: 7 }), 'since');
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { onMessage: 'x' }), 'onMessage');
  throws(() => subscribe('ftp://127.0.0.1:9', 'all'), 'not a ws:');
  throws(() => subscribe('ws://127.0.0.1:9', 'no spaces'), 'channel');
});

test('subscribe: close() ends it for good', () => {
  const states = [];
  const handle = subscribe('ws://127.0.0.1:9', 'all', { transport: 'websocket', onStatus: (s) => states.push(s.state) });
  eq(handle.state, 'connecting');
  handle.close();
  handle.close();
  eq(states, ['connecting', 'closed']);
  eq([handle.state, handle.send('x'), handle.lastId], ['closed', false, null]);
});

// --- the EventSource transport (wspush-sse.js), with fakes ---------------------

/** openEventStream's calls, as [name, ...arguments]. */
function streamCalls() {
  const calls = [];
  const on = {
    data: (text) => calls.push(['data', text]),
    open: (reconnected) => calls.push(['open', reconnected]),
    ended: (reason) => calls.push(['ended', reason]),
    failed: (reason, opened) => calls.push(['failed', reason, opened]),
    expired: () => calls.push(['expired']),
  };
  return { calls, on };
}

test('openEventStream: every event\'s data in order; a live stream that ends is left to EventSource', () => {
  withFakes((fakes) => {
    const { calls, on } = streamCalls();
    openEventStream('http://h/events/all', on);
    const es = fakes.sources[0];
    es.open();
    es.emit('message', 'm1');
    es.emit('subscribed', 's1');
    es.emit('direct', 'd1');
    es.emit('later', 'an event type this version does not know');
    es.drop();
    es.open();
    es.emit('reset', 'r1');
    es.emit('subscribed', 's2');
    es.emit('kicked', '{"type":"kicked"}');
    es.drop();
    eq(calls, [['open', false], ['data', 'm1'], ['data', 's1'], ['data', 'd1'], ['ended', 'stream ended'],
      ['open', true], ['data', 'r1'], ['data', 's2'], ['ended', 'kicked']]);
    eq(es.closed, false, 'EventSource reconnects by itself:');
  });
});

test('openEventStream: a failed connect, a stream that ends before it is live, an HTTP error close it for the caller', () => {
  const cases = [
    [(es) => es.drop(), ['failed', 'connection failed', false]],
    [(es) => { es.open(); es.emit('message', 'm'); es.drop(); }, ['failed', 'stream ended before it was live', true]],
    [(es) => es.refuse(), ['failed', 'refused: an HTTP error, or not an event stream', false]],
    [(es) => { es.open(); es.emit('subscribed', 's'); es.drop(); es.drop(); }, ['failed', 'connection failed', true]],
    [(es) => { es.open(); es.emit('subscribed', 's'); es.drop(); es.open(); es.drop(); }, ['failed', 'stream ended before it was live', true]],
    [(es) => { es.open(); es.emit('kicked', '{}'); es.drop(); }, ['failed', 'kicked', true]],
  ];
  cases.forEach(([drive, last], i) => {
    withFakes((fakes) => {
      const { calls, on } = streamCalls();
      openEventStream('http://h/events/all', on);
      const es = fakes.sources[0];
      drive(es);
      eq(calls[calls.length - 1], last, `case ${i}:`);
      eq(calls.filter((c) => c[0] === 'failed').length, 1, `case ${i}, one failure:`);
      eq(es.closed, true, `case ${i}, closed:`);
      es.emit('message', 'after');
      es.drop();
      eq(calls[calls.length - 1], last, `case ${i}, nothing after:`);
    });
  });
});

test('openEventStream: an expired token closes it at once, before EventSource can present it again', () => {
  withFakes((fakes) => {
    const { calls, on } = streamCalls();
    openEventStream('http://h/events/all?token=t', on);
    const es = fakes.sources[0];
    es.open();
    es.emit('subscribed', 's');
    es.emit('expired', '{"type":"expired"}');
    es.drop();
    eq([calls, es.closed], [[['open', false], ['data', 's'], ['expired']], true]);
  });
});

test('openEventStream: close() stops every callback', () => {
  withFakes((fakes) => {
    const { calls, on } = streamCalls();
    const stream = openEventStream('http://h/events/all', on);
    const es = fakes.sources[0];
    es.open();
    stream.close();
    es.emit('message', 'm');
    es.refuse();
    eq([calls, es.closed], [[['open', false]], true]);
  });
});

test('TransportChoice: "websocket" and "sse" never change', () => {
  for (const mode of ['websocket', 'sse']) {
    const c = new TransportChoice(mode);
    for (const t of ['websocket', 'sse', 'websocket', 'websocket']) c.ended(t, false);
    eq(c.next, mode);
  }
});

test('TransportChoice: auto falls back after two WebSocket attempts in a row that never opened', () => {
  const c = new TransportChoice('auto');
  eq(c.next, 'websocket');
  c.ended('websocket', false);
  eq(c.next, 'websocket', 'after one:');
  c.ended('websocket', true);
  c.ended('websocket', false);
  eq(c.next, 'websocket', 'one that opened breaks the row:');
  c.ended('websocket', false);
  eq(c.next, 'sse');
  c.ended('sse', true);
  eq(c.next, 'sse', 'a stream that opened keeps it:');
  c.ended('sse', false);
  eq(c.next, 'websocket', 'a stream that never opened: the server is away, WebSocket again:');
  c.ended('websocket', false);
  eq(c.next, 'websocket', 'the row starts over:');
});

const statesOf = (statuses) => statuses.map((s) => `${s.state}/${s.transport}`);

test('subscribe over sse: replayed flags, EventSource\'s own resume, send() refused', () => {
  withFakes((fakes) => {
    const statuses = [];
    const messages = [];
    const handle = subscribe('ws://h:8080', 'all', {
      transport: 'sse', last: 5, onStatus: (s) => statuses.push(s), onMessage: (m) => messages.push(m),
    });
    eq(handle.transport, 'sse');
    const es = fakes.sources[0];
    eq([es.url, fakes.sockets.length], ['http://h:8080/events/all?last=5', 0]);
    es.open();
    es.emit('message', envelope('e-4'));
    es.emit('subscribed', subscribed('e-5'));
    es.emit('message', envelope('e-6'));
    es.emit('direct', '{"type":"direct","data":"hi"}');
    es.emit('kicked', '{"type":"kicked"}');
    es.drop(); // kicked: EventSource reconnects by itself with Last-Event-ID e-6
    eq(fakes.timers.length, 0, 'no timer of the library\'s:');
    es.open();
    es.emit('message', envelope('e-7'));
    es.emit('subscribed', subscribed('e-7'));
    eq(statesOf(statuses), ['connecting/sse', 'live/sse', 'reconnecting/sse', 'connecting/sse', 'live/sse']);
    eq([statuses[2].delay, statuses[2].attempt, statuses[2].reason], [SSE_RETRY_MS, 1, 'kicked']);
    eq([statuses[4].replayed, statuses[4].resumed], [1, true]);
    eq(messages.map((m) => [m.type, m.id ?? null, m.replayed]),
      [['message', 'e-4', true], ['message', 'e-6', false], ['direct', null, false], ['message', 'e-7', true]]);
    eq([handle.send('x'), handle.lastId], [false, 'e-7']);
    handle.close();
    eq([es.closed, statuses[statuses.length - 1].state], [true, 'closed']);
  });
});

test('subscribe over sse: when EventSource cannot reconnect, the library\'s backoff resumes with since', () => {
  withFakes((fakes) => {
    const statuses = [];
    subscribe('wss://e.com/push', ['all', 'orders'], { transport: 'sse', onStatus: (s) => statuses.push(s) });
    const first = fakes.sources[0];
    eq(first.url, 'https://e.com/push/events/all,orders');
    first.open();
    first.emit('subscribed', subscribed('e-5'));
    first.drop(); // the stream ended; EventSource tries again by itself ...
    first.drop(); // ... and cannot connect
    eq([first.closed, fakes.timers.length], [true, 1]);
    const waiting = statuses[statuses.length - 1];
    eq([waiting.state, waiting.attempt, waiting.reason], ['reconnecting', 2, 'connection failed']);
    fakes.runTimer();
    eq(fakes.sources[1].url, 'https://e.com/push/events/all,orders?since=e-5');
    fakes.sources[1].refuse(); // 503
    fakes.runTimer();
    eq([fakes.sources.length, fakes.sockets.length], [3, 0], 'forced sse stays on sse:');
  });
});

test('subscribe over sse: an expired token is the library\'s to renew, resuming with since', () => {
  withFakes((fakes) => {
    const statuses = [];
    subscribe('ws://h:8080', 'all', { transport: 'sse', onStatus: (s) => statuses.push(s) });
    const es = fakes.sources[0];
    es.open();
    es.emit('subscribed', subscribed('e-3'));
    es.emit('expired', '{"type":"expired"}');
    eq([es.closed, fakes.timers.length, statuses[statuses.length - 1].reason], [true, 1, 'token expired']);
    fakes.runTimer();
    eq(fakes.sources[1].url, 'http://h:8080/events/all?since=e-3');
  });
});

test('subscribe auto: two WebSocket attempts that never open, then EventSource with the resume point', () => {
  withFakes((fakes) => {
    const statuses = [];
    const handle = subscribe('ws://h:8080', 'all', { onStatus: (s) => statuses.push(s) });
    eq(handle.transport, 'websocket');
    const ws = fakes.sockets[0];
    ws.open();
    ws.message(subscribed('e-1'));
    ws.end(1006); // lost after opening: not a failure to open
    fakes.runTimer();
    fakes.sockets[1].end(1006);
    fakes.runTimer();
    eq([fakes.sockets.length, fakes.sources.length], [3, 0], 'one that opened breaks the row:');
    fakes.sockets[2].end(1006);
    fakes.runTimer();
    eq([fakes.sockets.length, fakes.sources.length, handle.transport], [3, 1, 'sse']);
    eq(fakes.sources[0].url, 'http://h:8080/events/all?since=e-1');
    eq(statesOf(statuses), ['connecting/websocket', 'live/websocket', 'reconnecting/websocket',
      'connecting/websocket', 'reconnecting/websocket', 'connecting/websocket', 'reconnecting/websocket',
      'connecting/sse']);
    fakes.sources[0].drop(); // the server is away: WebSocket gets its chance again
    fakes.runTimer();
    eq([fakes.sockets.length, handle.transport], [4, 'websocket']);
    handle.close();
  });
});

test('subscribe auto: once a stream opened, it stays on EventSource', () => {
  withFakes((fakes) => {
    const handle = subscribe('ws://h:8080', 'all');
    fakes.sockets[0].end(1006);
    fakes.runTimer();
    fakes.sockets[1].end(1006);
    fakes.runTimer();
    const es = fakes.sources[0];
    es.open();
    es.emit('subscribed', subscribed('e-2'));
    es.refuse(); // e.g. 503: the library reconnects
    fakes.runTimer();
    eq([fakes.sockets.length, fakes.sources.length, handle.transport], [2, 2, 'sse']);
    handle.close();
  });
});

tokenCases(test, eq);

// --- the run ------------------------------------------------------------------

const results = cases.map(({ name, fn }) => {
  try {
    fn();
    return { name, ok: true };
  } catch (err) {
    return { name, ok: false, error: String(err.message || err) };
  }
});
const rows = results.map(({ name, ok, error }) => {
  const row = document.createElement('tr');
  const [what, result] = [document.createElement('td'), document.createElement('td')];
  what.textContent = name;
  result.textContent = ok ? 'ok' : 'FAILED: ' + error;
  row.append(what, result);
  return row;
});
document.getElementById('results').replaceChildren(...rows);
const failed = results.filter((r) => !r.ok).length;
document.getElementById('summary').textContent = `${results.length - failed} passed, ${failed} failed`;
window.testResults = results;
document.body.dataset.done = 'true';

// wspush.js's pure parts, tested in the browser that will run them (wspush-test.html).
// Results go to the page's table and to window.testResults (read by tests/browser_wspush_js.rs).
import { subscribe, subscribeUrl, retryDelay, Cursor } from './wspush.js';

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
  throws(() => subscribe('ws://127.0.0.1:9', 'all', { transport: 'sse' }), 'unsupported transport sse');
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

test('subscribe: the token getToken gives is never in a status URL', () => {
  const statuses = [];
  const handle = subscribe('ws://127.0.0.1:9', 'all', {
    getToken: () => 'secret.token.value',
    since: 'e-4',
    onStatus: (s) => statuses.push(s),
  });
  handle.close();
  eq(statuses.map((s) => [s.state, s.url]), [
    ['connecting', 'ws://127.0.0.1:9/ws/all?since=e-4&token=redacted'],
    ['closed', undefined],
  ]);
});

test('subscribe: a getToken that throws is a failed attempt, retried with backoff', () => {
  const statuses = [];
  const handle = subscribe('ws://127.0.0.1:9', 'all', {
    getToken: () => {
      throw new Error('no session');
    },
    onStatus: (s) => statuses.push(s),
  });
  const retrying = statuses[1];
  handle.close();
  eq([retrying.state, retrying.reason, retrying.attempt], ['reconnecting', 'getToken failed: no session', 1]);
  if (!(retrying.delay >= 500)) throw new Error('no backoff: ' + retrying.delay);
});

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

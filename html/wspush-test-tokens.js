// wspush-test.js's cases for subscribe tokens (getToken) on both transports:
// where the token goes, that no status shows it, renewal when it expires, and
// backoff when it is refused.
import { subscribe } from './wspush.js';
import { withFakes } from './wspush-test-fakes.js';

const envelope = (id) => JSON.stringify({ channel: 'all', id, data: 'x' });
const subscribed = (id) => JSON.stringify({ type: 'subscribed', id, channels: ['all'] });
const expired = '{"type":"expired"}';

/** A getToken handing out tok-1, tok-2, …, and how many it gave. */
function tokens() {
  const given = { count: 0 };
  given.get = () => 'tok-' + ++given.count;
  return given;
}

/** A subscription over `transport` with `getToken`, recording its statuses and messages. */
function watched(transport, getToken, extra = {}) {
  const seen = { statuses: [], messages: [] };
  seen.handle = subscribe('ws://h:8080', 'all', {
    transport,
    getToken,
    onStatus: (s) => seen.statuses.push(s),
    onMessage: (m) => seen.messages.push(m),
    ...extra,
  });
  seen.last = () => seen.statuses[seen.statuses.length - 1];
  seen.lastRetry = () => seen.statuses.filter((s) => s.state === 'reconnecting').pop();
  return seen;
}

/** Throws unless `delay` is a backoff wait of at least `min` ms. */
function backoff(status, min, what) {
  if (status.state !== 'reconnecting' || !(status.delay >= min)) {
    throw new Error(`${what} expected a backoff of at least ${min} ms, got ${JSON.stringify(status)}`);
  }
}

/**
 * Registers the cases.
 * @param {(name: string, fn: () => void) => void} test
 * @param {(actual: *, expected: *, what?: string) => void} eq
 */
export function tokenCases(test, eq) {
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
    backoff(retrying, 500, 'getToken failed:');
  });

  test('subscribe over sse: the token goes in the EventSource URL, never in a status', () => {
    withFakes((fakes) => {
      const seen = watched('sse', () => 'secret.token.value', { since: 'e-4' });
      const es = fakes.sources[0];
      eq(es.url, 'http://h:8080/events/all?since=e-4&token=secret.token.value');
      es.open();
      es.emit('subscribed', subscribed('e-5'));
      es.drop(); // EventSource reconnects by itself, with the same URL
      es.open();
      eq(seen.statuses.map((s) => s.url).filter(Boolean), [
        'http://h:8080/events/all?since=e-4&token=redacted',
        'http://h:8080/events/all?since=e-4&token=redacted',
      ]);
      eq(JSON.stringify(seen.statuses).includes('secret'), false, 'a status shows the token:');
      seen.handle.close();
    });
  });

  test('subscribe over sse: event: expired takes a fresh token at once and resumes with since, each message once', () => {
    withFakes((fakes) => {
      const given = tokens();
      const seen = watched('sse', given.get);
      const first = fakes.sources[0];
      first.open();
      first.emit('subscribed', subscribed('e-0'));
      first.emit('message', envelope('e-1'));
      first.emit('message', envelope('e-2'));
      first.emit('expired', expired);
      eq([first.closed, fakes.timers.length, given.count], [true, 0, 2], 'renewed at once:');
      const renewal = seen.lastRetry();
      eq([renewal.delay, renewal.reason, seen.last().state], [0, 'token expired', 'connecting']);
      const second = fakes.sources[1];
      eq(second.url, 'http://h:8080/events/all?since=e-2&token=tok-2');
      second.open();
      second.emit('message', envelope('e-3')); // published while it renewed
      second.emit('subscribed', subscribed('e-3'));
      second.emit('message', envelope('e-4'));
      eq(seen.messages.map((m) => [m.id, m.replayed]), [['e-1', false], ['e-2', false], ['e-3', true], ['e-4', false]]);
      eq([seen.last().state, seen.last().resumed, seen.last().replayed], ['live', true, 1]);
      seen.handle.close();
    });
  });

  test('subscribe over sse: a refused token (an error before any open) backs off, a fresh token each time', () => {
    withFakes((fakes) => {
      const given = tokens();
      const seen = watched('sse', given.get);
      fakes.sources[0].refuse(); // 401: EventSource gives up by itself
      backoff(seen.last(), 500, 'first refusal:');
      eq([fakes.sources.length, fakes.sources[0].closed, given.count], [1, true, 1], 'nothing before the timer:');
      fakes.runTimer();
      eq(fakes.sources[1].url, 'http://h:8080/events/all?token=tok-2');
      fakes.sources[1].drop(); // no connection: EventSource would retry by itself every 2 s
      backoff(seen.last(), 1000, 'second refusal:');
      eq([fakes.sources.length, fakes.sources[1].closed, fakes.timers.length], [2, true, 1]);
      seen.handle.close();
    });
  });

  test('subscribe over sse: a renewal that expires again before it is live backs off', () => {
    withFakes((fakes) => {
      const seen = watched('sse', tokens().get);
      fakes.sources[0].open();
      fakes.sources[0].emit('subscribed', subscribed('e-1'));
      fakes.sources[0].emit('expired', expired);
      fakes.sources[1].open();
      fakes.sources[1].emit('expired', expired); // the fresh token is no better (a clock off?)
      backoff(seen.last(), 500, 'second expiry:');
      eq([fakes.sources.length, fakes.timers.length], [2, 1]);
      seen.handle.close();
    });
  });

  test('subscribe over websocket: close 4001 takes a fresh token at once and resumes with since', () => {
    withFakes((fakes) => {
      const given = tokens();
      const seen = watched('websocket', given.get);
      const first = fakes.sockets[0];
      eq(first.url, 'ws://h:8080/ws/all?token=tok-1');
      first.open();
      first.message(subscribed('e-0'));
      first.message(envelope('e-1'));
      first.end(4001, 'token expired');
      eq([fakes.timers.length, seen.lastRetry().delay, seen.lastRetry().code], [0, 0, 4001]);
      eq(fakes.sockets[1].url, 'ws://h:8080/ws/all?since=e-1&token=tok-2');
      fakes.sockets[1].open();
      fakes.sockets[1].end(4001, 'token expired'); // again, before it was live
      backoff(seen.last(), 500, 'second expiry:');
      seen.handle.close();
    });
  });

  test('subscribe: an error text that quotes the URL does not show the token', () => {
    withFakes(() => {
      globalThis.WebSocket = class {
        constructor(url) {
          throw new Error(`The URL '${url}' is invalid.`);
        }
      };
      const seen = watched('websocket', () => 'secret.token.value');
      eq(seen.last().reason, "The URL 'ws://h:8080/ws/all?token=redacted' is invalid.");
      seen.handle.close();
    });
  });
}

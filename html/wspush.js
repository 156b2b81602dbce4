// wspush.js: subscribe a browser to wspush channels, with reconnects that miss nothing.
// One dependency-free ES module; copy it next to your page and
//   import * as wspush from './wspush.js';
// Everything received is handed over as data; nothing is ever inserted as HTML.

/** A channel name as the server accepts it. */
const CHANNEL_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;
/** The first retry waits up to 1 s; each failure doubles that, up to 30 s. */
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;
/** The transports this version speaks (issue 12 adds "sse"). */
const TRANSPORTS = ['websocket'];
const OPTIONS = ['onMessage', 'onReset', 'onStatus', 'last', 'since', 'transport', 'getToken'];
/** The close code of a connection whose subscribe token expired. */
const TOKEN_EXPIRED = 4001;
/** What the status URL shows in place of a token. */
const REDACTED = 'redacted';

/**
 * A message as handed to `onMessage`.
 * @typedef {object} Message
 * @property {"message"|"echo"|"direct"} type "message": published to a channel;
 *   "echo": what this connection sent, echoed back; "direct": sent to this one
 *   connection (`/send/{id}`), not stored and without an id.
 * @property {string} [channel] The channel it was published to (type "message").
 * @property {string} [id] Its id (type "message"): opaque, in the server's one order.
 * @property {*} data The JSON value published, a string for text, `{base64: "…"}` for binary.
 * @property {boolean} replayed True for a message from the server's history
 *   (sent before the server said the connection is live): missed while away, or
 *   asked for with `last`.
 */

/**
 * The connection's state, as handed to `onStatus`.
 * @typedef {object} Status
 * @property {"connecting"|"live"|"reconnecting"|"closed"} state "connecting":
 *   an attempt is under way; "live": history (if any) replayed, live messages
 *   follow; "reconnecting": waiting `delay` ms before the next attempt; "closed":
 *   `close()` was called, nothing follows.
 * @property {"websocket"} transport The transport in use.
 * @property {string} [url] ("connecting") The URL being opened, its token (if any)
 *   shown as `token=redacted`.
 * @property {number} [replayed] ("live") How many messages the server replayed
 *   before going live, counted across attempts that failed since the last "live".
 * @property {boolean} [resumed] ("live") True when the connection continued from
 *   an id seen before, so the replayed messages are the ones missed meanwhile;
 *   false on a first connection or after a reset.
 * @property {number} [delay] ("reconnecting") Milliseconds until the next attempt: 0
 *   when the server closed with 4001 (token expired) and `getToken` gives a fresh one.
 * @property {number} [attempt] ("reconnecting") Failed attempts since the last "live".
 * @property {number} [code] ("reconnecting") The WebSocket close code, if there was one.
 * @property {string} [reason] ("reconnecting") Why the connection ended.
 */

/**
 * Options of `subscribe`. Unknown options are refused (TypeError), so an app
 * written for a later version fails loudly here rather than silently.
 * @typedef {object} Options
 * @property {(message: Message) => void} [onMessage] Called for every message, in order.
 * @property {(latestId: string) => void} [onReset] Called when the server cannot
 *   replay what was missed (history gone, server restarted): messages may have
 *   been lost; live messages follow from `latestId` on.
 * @property {(status: Status) => void} [onStatus] Called on every change of state.
 * @property {number} [last] On a first connection (nothing seen yet), ask for
 *   the latest `last` stored messages (`?last=N`); 0 (the default) asks for none.
 * @property {string} [since] Resume from this id on the first connection (e.g.
 *   `handle.lastId` saved across a page reload).
 * @property {"websocket"} [transport] The only transport of this version, and the default.
 * @property {() => (string|null|Promise<string|null>)} [getToken] For a server run with
 *   `--subscribe-secret`: called before every connection attempt for a subscribe
 *   token (a string, or a Promise of one), sent as `?token=`; null or "" sends none
 *   (e.g. when a `wspush_token` cookie carries it). When the server closes the
 *   connection because the token expired (code 4001), a fresh one is asked for
 *   at once and the subscription resumes where it was, so nothing is lost. An
 *   error or a rejected Promise counts as a failed attempt (retried with backoff).
 */

/**
 * What `subscribe` returns.
 * @typedef {object} Subscription
 * @property {() => void} close Closes the connection for good; no callback follows
 *   but one "closed" status.
 * @property {(text: string) => boolean} send Sends a text message (the server
 *   echoes it back to this connection alone); false when not connected.
 * @property {string|null} lastId The id of the latest message, reset or "live"
 *   point seen: where the next connection resumes. Read-only.
 * @property {string} state The latest `Status.state`. Read-only.
 */

/**
 * Subscribes to `channels` on the wspush server at `url` and keeps the
 * subscription going: reconnects with backoff (1 s doubling to 30 s, with
 * jitter; back to 1 s once live again) and resumes from the latest id seen, so
 * every message arrives once and in order, or `onReset` says some may be lost.
 * @param {string} url The server's public (WebSocket) port: `ws://host:8080`,
 *   `wss://example.com/push` (a path is a prefix, e.g. behind a proxy);
 *   `http(s):` means `ws(s):`; relative to the page's address when relative.
 * @param {string|string[]} channels One name or several (`[A-Za-z0-9_.:@-]{1,128}`);
 *   every connection is also on `all`.
 * @param {Options} [options]
 * @returns {Subscription}
 */
export function subscribe(url, channels, options = {}) {
  const names = channelList(channels);
  const opts = checkOptions(options);
  subscribeUrl(url, names); // a bad URL throws here, not on the first connect
  const cursor = new Cursor({ since: opts.since, last: opts.last });
  // attempt: the number of the latest attempt, so that a token arriving for an
  // older one is dropped; renewed: the latest attempt replaced an expired token.
  const link = { socket: null, timer: null, failures: 0, closed: false, state: 'connecting', attempt: 0, renewed: false };

  const report = (status) => {
    link.state = status.state;
    call(opts.onStatus, { transport: 'websocket', ...status });
  };

  const retry = (reason, code) => {
    const delay = retryDelay(link.failures);
    link.failures += 1;
    report({ state: 'reconnecting', delay, attempt: link.failures, reason, code });
    if (!link.closed) link.timer = setTimeout(connect, delay);
  };

  const deliver = (event) => {
    if (!event) return;
    if (event.kind === 'message') call(opts.onMessage, event.message);
    else if (event.kind === 'reset') call(opts.onReset, event.id);
    else if (event.kind === 'live') {
      link.failures = 0;
      link.renewed = false;
      report({ state: 'live', replayed: event.replayed, resumed: event.resumed });
    }
  };

  // A token expired: a fresh one at once, unless the last renewal did not get live.
  const renew = (event) => {
    if (!opts.getToken || link.renewed) return false;
    link.renewed = true;
    report({ state: 'reconnecting', delay: 0, attempt: link.failures, reason: event.reason || 'token expired', code: event.code });
    if (!link.closed) connect();
    return true;
  };

  function connect() {
    link.timer = null;
    const attempt = ++link.attempt;
    const resume = cursor.next();
    const shown = opts.getToken ? { ...resume, token: REDACTED } : resume;
    report({ state: 'connecting', url: subscribeUrl(url, names, shown) });
    if (link.closed) return; // onStatus called close()
    if (!opts.getToken) {
      open(subscribeUrl(url, names, resume));
      return;
    }
    const current = () => !link.closed && link.attempt === attempt;
    const failed = (err) => current() && retry('getToken failed: ' + String((err && err.message) || err));
    let token;
    try {
      token = opts.getToken();
    } catch (err) {
      failed(err);
      return;
    }
    const withToken = (t) => current() && open(subscribeUrl(url, names, { ...resume, token: t }));
    if (token && typeof token.then === 'function') token.then(withToken, failed);
    else withToken(token);
  }

  function open(target) {
    let ws;
    try {
      ws = new WebSocket(target);
    } catch (err) {
      retry(String((err && err.message) || err));
      return;
    }
    link.socket = ws;
    ws.onmessage = (event) => {
      if (link.socket === ws && typeof event.data === 'string') deliver(cursor.receive(event.data));
    };
    ws.onclose = (event) => {
      if (link.socket !== ws) return;
      link.socket = null;
      if (event.code === TOKEN_EXPIRED && renew(event)) return;
      retry(event.reason || (event.code === 1006 ? 'connection failed or lost' : 'closed'), event.code);
    };
  }

  connect();
  return {
    close() {
      if (link.closed) return;
      link.closed = true;
      clearTimeout(link.timer);
      const ws = link.socket;
      link.socket = null;
      if (ws) ws.close(1000);
      report({ state: 'closed' });
    },
    send(text) {
      const ws = link.socket;
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(String(text));
      return true;
    },
    get lastId() {
      return cursor.lastId;
    },
    get state() {
      return link.state;
    },
  };
}

/**
 * The URL that subscribes to `channels` on the server at `base`:
 * `ws://host:8080` + ["all", "orders"] + {since: "x-7"} → `ws://host:8080/ws/all,orders?since=x-7`.
 * `since` wins over `last`; a `token` is added as `?token=` (replacing one of
 * `base`); other query parameters of `base` are kept.
 * @param {string} base See `subscribe`'s `url`.
 * @param {string|string[]} channels
 * @param {{since?: string|null, last?: number, token?: string|null}} [resume]
 * @returns {string}
 */
export function subscribeUrl(base, channels, { since = null, last = 0, token = null } = {}) {
  const url = new URL(base, globalThis.location ? globalThis.location.href : undefined);
  const schemes = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
  if (!schemes[url.protocol]) throw new TypeError('wspush: not a ws:, wss:, http: or https: URL: ' + base);
  url.protocol = schemes[url.protocol];
  url.pathname = url.pathname.replace(/\/+$/, '') + '/ws/' + channelList(channels).join(',');
  url.hash = '';
  url.searchParams.delete('since');
  url.searchParams.delete('last');
  if (since !== null && since !== undefined) url.searchParams.set('since', since);
  else if (last > 0) url.searchParams.set('last', String(last));
  if (token !== null && token !== undefined && token !== '') url.searchParams.set('token', String(token));
  return url.href;
}

/**
 * Milliseconds to wait before retry number `attempt` (0 = the first after a
 * failure): a ceiling of 1 s doubling up to 30 s, and a random point in its
 * upper half, so pages left open everywhere do not all come back at once.
 * @param {number} attempt
 * @param {() => number} [random] A number in [0, 1).
 * @returns {number}
 */
export function retryDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * Where to resume from, and what the server's messages mean: the since
 * bookkeeping, kept apart from the socket so it can be tested on its own.
 * The latest id of any message, reset or "subscribed" seen is where the next
 * connection resumes; before any, a first connection may ask for `last`.
 */
export class Cursor {
  /** @param {{since?: string|null, last?: number}} [start] */
  constructor({ since = null, last = 0 } = {}) {
    /** @type {string|null} */
    this.lastId = since;
    this.last = last;
    this.replaying = false;
    /** How the attempts since the last "live" resumed, and what they replayed. */
    this.catchUp = null;
  }

  /** The resume parameters for the next connection, noting that one starts. */
  next() {
    const query = this.lastId !== null ? { since: this.lastId } : this.last > 0 ? { last: this.last } : {};
    if (!this.catchUp) this.catchUp = { resumed: 'since' in query, replayed: 0 };
    this.replaying = true;
    return query;
  }

  /**
   * Reads one text frame from the server.
   * @param {string} text
   * @returns {{kind: "message", message: Message} | {kind: "reset", id: string}
   *   | {kind: "live", id: string, channels: string[], replayed: number, resumed: boolean} | null}
   *   null for a frame this version does not understand (ignored).
   */
  receive(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch (_) {
      return null;
    }
    if (m === null || typeof m !== 'object') return null;
    if (m.type === undefined && typeof m.channel === 'string' && typeof m.id === 'string') {
      this.lastId = m.id;
      if (this.replaying && this.catchUp) this.catchUp.replayed += 1;
      const message = { type: 'message', channel: m.channel, id: m.id, data: m.data, replayed: this.replaying };
      return { kind: 'message', message };
    }
    if ((m.type === 'echo' || m.type === 'direct') && 'data' in m) {
      return { kind: 'message', message: { type: m.type, data: m.data, replayed: false } };
    }
    if (typeof m.id !== 'string') return null;
    if (m.type === 'reset') {
      this.lastId = m.id;
      if (this.catchUp) this.catchUp.resumed = false;
      return { kind: 'reset', id: m.id };
    }
    if (m.type === 'subscribed') {
      this.lastId = m.id;
      this.replaying = false;
      const { replayed, resumed } = this.catchUp || { replayed: 0, resumed: false };
      this.catchUp = null;
      const channels = Array.isArray(m.channels) ? m.channels : [];
      return { kind: 'live', id: m.id, channels, replayed, resumed };
    }
    return null;
  }
}

/** `channels` as a checked list of names. */
function channelList(channels) {
  const names = typeof channels === 'string' ? [channels] : Array.from(channels || []);
  if (names.length === 0) throw new TypeError('wspush: no channel given');
  for (const name of names) {
    if (typeof name !== 'string' || !CHANNEL_NAME.test(name)) {
      throw new TypeError('wspush: not a channel name (1 to 128 of A-Z a-z 0-9 _ . : @ -): ' + name);
    }
  }
  return names;
}

/** `options`, checked: unknown names and values this version cannot honour throw. */
function checkOptions(options) {
  for (const key of Object.keys(options)) {
    if (!OPTIONS.includes(key)) throw new TypeError('wspush: unknown option ' + key);
  }
  const { transport = 'websocket', last = 0, since = null } = options;
  if (!TRANSPORTS.includes(transport)) throw new TypeError('wspush: unsupported transport ' + transport);
  if (!Number.isInteger(last) || last < 0) throw new TypeError('wspush: last must be a whole number >= 0');
  if (since !== null && typeof since !== 'string') throw new TypeError('wspush: since must be an id string');
  for (const name of ['onMessage', 'onReset', 'onStatus', 'getToken']) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new TypeError('wspush: ' + name + ' must be a function');
    }
  }
  return { ...options, last, since };
}

/** Calls an app's callback; an error in it is reported but stops nothing here. */
function call(callback, value) {
  if (!callback) return;
  try {
    callback(value);
  } catch (err) {
    if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
    else console.error(err);
  }
}

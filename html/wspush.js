// wspush.js: subscribe a browser to wspush channels, with reconnects that miss nothing.
// A dependency-free ES module; copy it and wspush-sse.js (its EventSource
// transport) next to your page and
//   import * as wspush from './wspush.js';
// Everything received is handed over as data; nothing is ever inserted as HTML.
import { openEventStream, TransportChoice, SSE_RETRY_MS } from './wspush-sse.js';

/** A channel name as the server accepts it. */
const CHANNEL_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;
/** The first retry waits up to 1 s; each failure doubles that, up to 30 s. */
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;
/** The transports this version speaks ("auto": WebSocket, falling back to EventSource). */
const TRANSPORTS = ['auto', 'websocket', 'sse'];
const OPTIONS = ['onMessage', 'onReset', 'onStatus', 'last', 'since', 'transport', 'getToken', 'withCredentials'];
/** The close code of a connection whose subscribe token expired. */
const TOKEN_EXPIRED = 4001;
/** What status URLs and reasons show in place of a token. */
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
 * @property {"websocket"|"sse"} transport The transport of this connection
 *   (attempt): "sse" is an EventSource stream.
 * @property {string} [url] ("connecting") The URL being opened, its token (if any)
 *   shown as `token=redacted`.
 * @property {number} [replayed] ("live") How many messages the server replayed
 *   before going live, counted across attempts that failed since the last "live".
 * @property {boolean} [resumed] ("live") True when the connection continued from
 *   an id seen before, so the replayed messages are the ones missed meanwhile;
 *   false on a first connection or after a reset.
 * @property {number} [delay] ("reconnecting") Milliseconds until the next attempt: 0
 *   when the token expired (close 4001, or `event: expired` on a stream) and
 *   `getToken` gives a fresh one.
 * @property {number} [attempt] ("reconnecting") Failed attempts since the last "live".
 * @property {number} [code] ("reconnecting") The WebSocket close code, if there was one.
 * @property {string} [reason] ("reconnecting") Why the connection ended.
 */

/* How a connection is lost and comes back, per transport:
 * - WebSocket: any close; the library reconnects after `delay` with `?since=`.
 * - EventSource ("sse"): a stream that was live and ended (kicked, dropped as
 *   slow, server restart) is reconnected by EventSource itself after the
 *   server's `retry:` (2 s, the `delay` reported), resuming with the
 *   `Last-Event-ID` header it sends by itself; status goes "reconnecting",
 *   then "connecting" when the server answers, then "live". Anything else (an
 *   HTTP error — a refused token's 401/403 included, which EventSource cannot
 *   tell apart —, no connection, a stream that ends before it is live) closes
 *   the EventSource, and the library reconnects with its backoff and `?since=`,
 *   as for a WebSocket. `event: expired` (the token ran out) closes it too:
 *   the library asks `getToken` for a fresh token and reconnects at once with
 *   `?since=` (EventSource itself would present the old token again). Either
 *   way the messages, their `replayed` flags and `onReset` are the same as
 *   over a WebSocket.
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
 * @property {"auto"|"websocket"|"sse"} [transport] "auto" (the default):
 *   WebSocket, falling back to EventSource after two WebSocket attempts in a
 *   row fail to open (see `TransportChoice` in wspush-sse.js for when it goes
 *   back). "websocket" or "sse": only that one. Over EventSource `send()` is
 *   not available (the stream is one-way) and returns false.
 * @property {() => (string|null|Promise<string|null>)} [getToken] For a server run with
 *   `--subscribe-secret`: called before every connection attempt for a subscribe
 *   token (a string, or a Promise of one), sent as `?token=` on either transport;
 *   null or "" sends none (e.g. when a `wspush_token` cookie carries it). When the
 *   server ends the connection because the token expired (WebSocket close code
 *   4001, or an event stream's `event: expired`), a fresh one is asked for at
 *   once and the subscription resumes where it was, so nothing is lost. An
 *   error or a rejected Promise counts as a failed attempt (retried with backoff),
 *   and so does a token the server refuses (401/403 before the upgrade or the stream).
 * @property {boolean} [withCredentials] Open event streams `withCredentials`, so
 *   that the browser sends the `wspush_token` cookie to a server on another
 *   origin (another port is one: the page on the side port, streams on the
 *   public port). The server allows it for a listed origin when it checks
 *   tokens. A WebSocket handshake carries the host's cookies anyway. Default false.
 */

/**
 * What `subscribe` returns.
 * @typedef {object} Subscription
 * @property {() => void} close Closes the connection for good; no callback follows
 *   but one "closed" status.
 * @property {(text: string) => boolean} send Sends a text message (the server
 *   echoes it back to this connection alone); false when not connected, or
 *   connected over EventSource.
 * @property {string|null} lastId The id of the latest message, reset or "live"
 *   point seen: where the next connection resumes. Read-only.
 * @property {string} state The latest `Status.state`. Read-only.
 * @property {"websocket"|"sse"} transport The transport of the latest
 *   connection attempt. Read-only.
 */

/**
 * Subscribes to `channels` on the wspush server at `url` and keeps the
 * subscription going: reconnects with backoff (1 s doubling to 30 s, with
 * jitter; back to 1 s once live again) and resumes from the latest id seen, so
 * every message arrives once and in order, or `onReset` says some may be lost.
 * @param {string} url The server's public (WebSocket) port: `ws://host:8080`,
 *   `wss://example.com/push` (a path is a prefix, e.g. behind a proxy);
 *   `http(s):` and `ws(s):` are the same server (WebSockets use `ws(s):`, event
 *   streams `http(s):`); relative to the page's address when relative.
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
  const choice = new TransportChoice(opts.transport);
  // attempt: the number of the latest attempt, so that a token arriving for an
  // older one is dropped; renewed: the latest attempt replaced an expired token.
  const link = { socket: null, stream: null, timer: null, failures: 0, closed: false, state: 'connecting', transport: choice.next, attempt: 0, renewed: false };

  const report = (status) => {
    link.state = status.state;
    call(opts.onStatus, { transport: link.transport, ...status });
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
  const renew = (reason, code) => {
    if (!opts.getToken || link.renewed) return false;
    link.renewed = true;
    report({ state: 'reconnecting', delay: 0, attempt: link.failures, reason, code });
    if (!link.closed) connect();
    return true;
  };

  function connect() {
    link.timer = null;
    link.transport = choice.next;
    const attempt = ++link.attempt;
    const resume = cursor.next();
    const sse = link.transport === 'sse';
    const target = (query) => (sse ? eventsUrl : subscribeUrl)(url, names, query);
    const shown = target(opts.getToken ? { ...resume, token: REDACTED } : resume);
    report({ state: 'connecting', url: shown });
    if (link.closed) return; // onStatus called close()
    const open = (token) => {
      // Reasons reach onStatus: a browser's error text may quote the URL.
      const sub = { cursor, choice, link, report, deliver, renew, withCredentials: opts.withCredentials, retry: (reason, code) => retry(redact(reason, token), code) };
      if (sse) connectStream(target({ ...resume, token }), shown, sub);
      else connectSocket(target({ ...resume, token }), sub);
    };
    if (!opts.getToken) {
      open(null);
      return;
    }
    // Only the latest attempt's token is used; one for an older one is dropped.
    const current = () => !link.closed && link.attempt === attempt;
    askToken(opts.getToken, (token) => current() && open(token),
      (err) => current() && retry('getToken failed: ' + errorText(err)));
  }

  connect();
  return handle(link, cursor, report);
}

/**
 * Calls `getToken` and hands what it gives (or its Promise resolves to) to
 * `use`; what it throws (or its Promise rejects with) to `failed`.
 */
function askToken(getToken, use, failed) {
  let token;
  try {
    token = getToken();
  } catch (err) {
    failed(err);
    return;
  }
  if (token && typeof token.then === 'function') token.then(use, failed);
  else use(token);
}

/**
 * The `Subscription` of `subscribe`'s state.
 * @returns {Subscription}
 */
function handle(link, cursor, report) {
  return {
    close() {
      if (link.closed) return;
      link.closed = true;
      clearTimeout(link.timer);
      const [ws, stream] = [link.socket, link.stream];
      link.socket = null;
      link.stream = null;
      if (ws) ws.close(1000);
      if (stream) stream.close();
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
    get transport() {
      return link.transport;
    },
  };
}

/**
 * One WebSocket attempt of `subscribe`.
 * @param {string} target The `/ws/…` URL, token included.
 * @param {object} sub `subscribe`'s state and steps.
 */
function connectSocket(target, { cursor, choice, link, retry, deliver, renew }) {
  let ws;
  try {
    ws = new WebSocket(target);
  } catch (err) {
    choice.ended('websocket', false);
    retry(errorText(err));
    return;
  }
  link.socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
  };
  ws.onmessage = (event) => {
    if (link.socket === ws && typeof event.data === 'string') deliver(cursor.receive(event.data));
  };
  ws.onclose = (event) => {
    if (link.socket !== ws) return;
    link.socket = null;
    choice.ended('websocket', opened);
    if (event.code === TOKEN_EXPIRED && renew(event.reason || 'token expired', event.code)) return;
    retry(event.reason || (event.code === 1006 ? 'connection failed or lost' : 'closed'), event.code);
  };
}

/**
 * One EventSource attempt of `subscribe` (wspush-sse.js says who reconnects when).
 * @param {string} target The `/events/…` URL, token included.
 * @param {string} shown The same URL as statuses show it (token redacted).
 * @param {object} sub `subscribe`'s state and steps.
 */
function connectStream(target, shown, { cursor, choice, link, report, retry, deliver, renew, withCredentials }) {
  const on = {
    data: (text) => deliver(cursor.receive(text)),
    open: (reconnected) => {
      if (reconnected) report({ state: 'connecting', url: shown });
    },
    // EventSource reconnects by itself, resuming with Last-Event-ID: a new
    // attempt for the cursor, as if the library had started it.
    ended: (reason) => {
      cursor.next();
      link.failures += 1;
      report({ state: 'reconnecting', delay: SSE_RETRY_MS, attempt: link.failures, reason });
    },
    // A refusal (a 401 for a bad token included: EventSource shows no status)
    // is a failed open, retried with backoff.
    failed: (reason, opened) => {
      link.stream = null;
      choice.ended('sse', opened);
      retry(reason);
    },
    // The stream's token expired: a fresh one, resuming from the cursor.
    expired: () => {
      link.stream = null;
      if (!renew('token expired')) retry('token expired');
    },
  };
  try {
    link.stream = openEventStream(target, on, withCredentials);
  } catch (err) {
    choice.ended('sse', false);
    retry(errorText(err));
  }
}

/**
 * The WebSocket URL that subscribes to `channels` on the server at `base`:
 * `ws://host:8080` + ["all", "orders"] + {since: "x-7"} → `ws://host:8080/ws/all,orders?since=x-7`.
 * `since` wins over `last`; a `token` is added as `?token=` (replacing one of
 * `base`); other query parameters of `base` are kept.
 * @param {string} base See `subscribe`'s `url`.
 * @param {string|string[]} channels
 * @param {{since?: string|null, last?: number, token?: string|null}} [resume]
 * @returns {string}
 */
export function subscribeUrl(base, channels, resume) {
  return serverUrl(base, '/ws/', { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }, channels, resume);
}

/**
 * The event-stream URL of the same subscription (`subscribeUrl`'s rules):
 * `ws://host:8080` + ["all", "orders"] + {since: "x-7"} → `http://host:8080/events/all,orders?since=x-7`.
 * @param {string} base See `subscribe`'s `url`.
 * @param {string|string[]} channels
 * @param {{since?: string|null, last?: number, token?: string|null}} [resume]
 * @returns {string}
 */
export function eventsUrl(base, channels, resume) {
  const schemes = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' };
  return serverUrl(base, '/events/', schemes, channels, resume);
}

/** `base` with `path` + the channels appended, its scheme mapped by `schemes`, and the query. */
function serverUrl(base, path, schemes, channels, { since = null, last = 0, token = null } = {}) {
  const url = new URL(base, globalThis.location ? globalThis.location.href : undefined);
  if (!schemes[url.protocol]) throw new TypeError('wspush: not a ws:, wss:, http: or https: URL: ' + base);
  url.protocol = schemes[url.protocol];
  url.pathname = url.pathname.replace(/\/+$/, '') + path + channelList(channels).join(',');
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
  const { transport = 'auto', last = 0, since = null } = options;
  if (!TRANSPORTS.includes(transport)) throw new TypeError('wspush: unsupported transport ' + transport);
  if (!Number.isInteger(last) || last < 0) throw new TypeError('wspush: last must be a whole number >= 0');
  if (since !== null && typeof since !== 'string') throw new TypeError('wspush: since must be an id string');
  const { withCredentials = false } = options;
  if (typeof withCredentials !== 'boolean') throw new TypeError('wspush: withCredentials must be true or false');
  for (const name of ['onMessage', 'onReset', 'onStatus', 'getToken']) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new TypeError('wspush: ' + name + ' must be a function');
    }
  }
  return { ...options, transport, last, since, withCredentials };
}

/** An error's message, or the thrown value as text. */
function errorText(err) {
  return String((err && err.message) || err);
}

/** `text` with `token` (as given, or as it appears in a URL) shown as "redacted". */
function redact(text, token) {
  if (!token) return text;
  let shown = String(text);
  for (const form of [String(token), encodeURIComponent(String(token))]) shown = shown.split(form).join(REDACTED);
  return shown;
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

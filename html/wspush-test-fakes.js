// Stand-ins for EventSource, WebSocket and the timers, for wspush-test.js: a
// case drives them by hand, so wspush.js's reconnects and its fallback from
// WebSocket to EventSource run without a server and without waiting.

/** What the fakes of one case recorded. */
class Fakes {
  constructor() {
    /** @type {FakeEventSource[]} every EventSource created, in order */
    this.sources = [];
    /** @type {FakeWebSocket[]} every WebSocket created, in order */
    this.sockets = [];
    /** @type {{id: number, fn: Function, delay: number}[]} timers pending */
    this.timers = [];
    this.nextTimer = 1;
  }

  /** Runs the pending timer that is due first (as if its delay had passed). */
  runTimer() {
    if (this.timers.length === 0) throw new Error('no timer pending');
    this.timers.sort((a, b) => a.delay - b.delay);
    const [timer] = this.timers.splice(0, 1);
    timer.fn();
  }
}

let current = null;

/** An EventSource that does only what the case tells it to. */
class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  constructor(url) {
    this.url = url;
    this.readyState = FakeEventSource.CONNECTING;
    this.listeners = {};
    this.closed = false;
    this.onopen = null;
    this.onerror = null;
    current.sources.push(this);
  }

  addEventListener(type, fn) {
    (this.listeners[type] ||= []).push(fn);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
    this.closed = true;
  }

  // --- driven by the case ---

  /** The server answered 200 text/event-stream. */
  open() {
    this.readyState = FakeEventSource.OPEN;
    if (this.onopen) this.onopen({ type: 'open' });
  }

  /** An event of `type` ("message" for one without `event:`) with `data`. */
  emit(type, data) {
    for (const fn of this.listeners[type] || []) fn({ type, data });
  }

  /** The stream ended, or a connection attempt failed: it will reconnect by itself. */
  drop() {
    this.readyState = FakeEventSource.CONNECTING;
    if (this.onerror) this.onerror({ type: 'error' });
  }

  /** An HTTP error status: it gives up by itself. */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    if (this.onerror) this.onerror({ type: 'error' });
  }
}

/** A WebSocket that does only what the case tells it to. */
class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url) {
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.sent = [];
    current.sockets.push(this);
  }

  send(text) {
    this.sent.push(text);
  }

  close() {
    this.readyState = FakeWebSocket.CLOSED;
  }

  // --- driven by the case ---

  open() {
    this.readyState = FakeWebSocket.OPEN;
    if (this.onopen) this.onopen({ type: 'open' });
  }

  message(text) {
    if (this.onmessage) this.onmessage({ data: text });
  }

  /** Closed by the server or the network (1006: never opened, or lost). */
  end(code = 1006, reason = '') {
    this.readyState = FakeWebSocket.CLOSED;
    if (this.onclose) this.onclose({ code, reason });
  }
}

const REPLACED = ['EventSource', 'WebSocket', 'setTimeout', 'clearTimeout'];

/**
 * Runs `fn(fakes)` with the fakes in place of the browser's EventSource,
 * WebSocket, setTimeout and clearTimeout, and puts the real ones back after.
 * @param {(fakes: Fakes) => void} fn
 */
export function withFakes(fn) {
  const saved = REPLACED.map((name) => globalThis[name]);
  const fakes = new Fakes();
  current = fakes;
  globalThis.EventSource = FakeEventSource;
  globalThis.WebSocket = FakeWebSocket;
  globalThis.setTimeout = (callback, delay) => {
    const id = fakes.nextTimer++;
    fakes.timers.push({ id, fn: callback, delay });
    return id;
  };
  globalThis.clearTimeout = (id) => {
    fakes.timers = fakes.timers.filter((t) => t.id !== id);
  };
  try {
    fn(fakes);
  } finally {
    REPLACED.forEach((name, i) => {
      globalThis[name] = saved[i];
    });
    current = null;
  }
}

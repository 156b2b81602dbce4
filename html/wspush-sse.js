// wspush-sse.js: wspush.js's second transport, Server-Sent Events (EventSource),
// and the rule by which its "auto" mode falls back to it. wspush.js imports this
// module: serve the two files side by side. No imports of its own.
// Everything received is handed over as text; nothing is ever inserted as HTML.

/**
 * Milliseconds EventSource waits before it reconnects by itself: the server's
 * streams start with `retry: 2000`.
 */
export const SSE_RETRY_MS = 2000;

/**
 * The named events of a stream (`event: <type>`). Plain channel messages have
 * no name and arrive as "message". Every event's data is the same JSON
 * envelope a `/ws/…` WebSocket gets in its frame, so one parser reads both.
 */
const NAMED_EVENTS = ['reset', 'subscribed', 'direct'];

/**
 * Events that say why the server is about to end the stream (the reason a
 * WebSocket would get in its close frame).
 */
const ENDING_EVENTS = ['kicked'];

/**
 * Opens an event stream at `url` (an `/events/…` URL) and says what happens
 * to it. Who reconnects:
 * - a stream that went live (the server's `subscribed` came) and then ended
 *   (kicked, dropped as slow, server restarted): EventSource reconnects by
 *   itself after `SSE_RETRY_MS`, sending the last id it saw as `Last-Event-ID`,
 *   so the server replays what was missed. `onEnded` says so.
 * - anything else — an HTTP error status or a wrong content type (EventSource
 *   gives up by itself), a connection that cannot be made, a stream that ends
 *   before it is live — closes the EventSource here and calls `failed`: the
 *   caller reconnects with its own backoff. So a server that is down is not
 *   retried every 2 s by every page, and one that ends streams at once is
 *   not retried in a tight loop.
 * - `event: expired` (the subscribe token ran out, issue 13) closes it at
 *   once and calls `expired`: reconnecting by itself, EventSource would only
 *   present the same token again.
 * @param {string} url
 * @param {object} on
 * @param {(text: string) => void} on.data The data of each event, in order.
 * @param {(reconnected: boolean) => void} on.open The server answered with a
 *   stream; `reconnected` when EventSource reconnected by itself.
 * @param {(reason: string) => void} on.ended A live stream ended; EventSource
 *   reconnects by itself. `reason`: "kicked" when the server said so, else "stream ended".
 * @param {(reason: string, opened: boolean) => void} on.failed The stream is
 *   closed for good; `opened`: whether the server ever answered it with a stream.
 * @param {() => void} on.expired The server said the token expired; the stream is closed.
 * @param {boolean} [withCredentials] Send cookies to a server of another origin.
 * @returns {{close: () => void}} `close()` ends it without any further call.
 */
export function openEventStream(url, on, withCredentials = false) {
  const source = new EventSource(url, { withCredentials });
  const stream = { opened: false, everOpened: false, live: false, reconnecting: false, done: false, said: null };
  // Closes it for good; false when it already was.
  const stop = () => {
    if (stream.done) return false;
    stream.done = true;
    source.close();
    return true;
  };
  const finish = (reason) => {
    if (stop()) on.failed(reason, stream.everOpened);
  };
  for (const name of ENDING_EVENTS) {
    source.addEventListener(name, () => {
      stream.said = name;
    });
  }
  source.addEventListener('expired', () => {
    if (stop()) on.expired();
  });
  const data = (event) => {
    if (!stream.done) on.data(event.data);
  };
  source.addEventListener('message', data);
  for (const name of NAMED_EVENTS) source.addEventListener(name, data);
  source.addEventListener('subscribed', () => {
    stream.live = true;
  });
  source.onopen = () => {
    if (stream.done) return;
    Object.assign(stream, { opened: true, everOpened: true, live: false });
    on.open(stream.reconnecting);
    stream.reconnecting = false;
  };
  source.onerror = () => {
    if (stream.done) return;
    const { opened, live, said } = stream;
    Object.assign(stream, { opened: false, live: false, said: null });
    if (source.readyState === EventSource.CONNECTING && live) {
      stream.reconnecting = true;
      on.ended(said || 'stream ended');
      return;
    }
    if (source.readyState === EventSource.CLOSED) finish('refused: an HTTP error, or not an event stream');
    else finish(said || (opened ? 'stream ended before it was live' : 'connection failed'));
  };
  return { close: stop };
}

/**
 * Which transport the next connection attempt uses.
 * - "websocket" and "sse": always that one.
 * - "auto": WebSocket until two WebSocket attempts in a row end without
 *   opening (a proxy or network that breaks WebSockets), then EventSource.
 *   It stays on EventSource while its streams open (EventSource's own
 *   reconnects included). When an EventSource attempt fails without ever
 *   opening, the server itself is likely unreachable rather than the
 *   WebSocket path broken, so WebSocket gets its chance again. The browser
 *   cannot tell the two apart (a failed WebSocket is always code 1006), so a
 *   page that comes back on EventSource after a server restart keeps it until
 *   its stream is lost and cannot reopen, or the page is reloaded: EventSource
 *   carries everything a subscription needs but `send()`.
 */
export class TransportChoice {
  /** @param {"auto"|"websocket"|"sse"} mode */
  constructor(mode) {
    this.mode = mode;
    /** @type {"websocket"|"sse"} */
    this.next = mode === 'sse' ? 'sse' : 'websocket';
    /** WebSocket attempts in a row that never opened. */
    this.wsFailures = 0;
  }

  /**
   * An attempt on `transport` is over (the library reconnects next).
   * @param {"websocket"|"sse"} transport
   * @param {boolean} opened Whether it ever opened (WebSocket `open`; a
   *   stream answered by the server).
   */
  ended(transport, opened) {
    if (this.mode !== 'auto') return;
    if (transport === 'websocket') {
      this.wsFailures = opened ? 0 : this.wsFailures + 1;
      if (this.wsFailures >= 2) this.next = 'sse';
    } else if (!opened) {
      this.next = 'websocket';
      this.wsFailures = 0;
    }
  }
}

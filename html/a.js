// wspush's raw page (a.html, the tutorial's page): connects to /echo, where
// messages come as raw frames with no channel, id or history, and shows what
// arrives. The dashboard (index.html) is the channel page with resume.
// Plain browser JavaScript, no framework, no build step. Everything received is
// inserted with textContent, never as HTML.
'use strict';

(function () {
  const MAX_ENTRIES = 500;
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const FILE_FALLBACK_URL = 'ws://localhost:8080/echo';
  const POD_FIELDS = ['PodName', 'PodImage', 'PodNode'];

  const byId = (id) => document.getElementById(id);
  const ui = {
    state: byId('state'),
    url: byId('ws-url'),
    count: byId('count'),
    reconnects: byId('reconnects'),
    lastPing: byId('last-ping'),
    pods: byId('pods'),
    podRows: byId('pod-rows'),
    podsUpdated: byId('pods-updated'),
    messages: byId('messages'),
    form: byId('send-form'),
    input: byId('send-input'),
    button: byId('send-button'),
  };

  let url = null; // found once: reconnecting then needs nothing but the WebSocket port
  let socket = null;
  let failures = 0; // attempts that failed since the last successful connection
  let opened = 0;
  let received = 0;
  let pings = 0;

  // Milliseconds before retry number `attempt` (0 = the first): a ceiling of 1 s
  // that doubles up to 30 s, and a random point in its upper half, so pages left
  // open everywhere do not all reconnect in the same instant.
  function retryDelay(attempt) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // `?ws=` wins; a page opened as a file uses the tutorial's address; a page
  // served by wspush asks the server which port the WebSocket listens on.
  async function socketUrl() {
    const override = new URLSearchParams(location.search).get('ws');
    if (override) return override;
    if (location.protocol === 'file:') return FILE_FALLBACK_URL;
    const response = await fetch('/config.json', { cache: 'no-store', signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error('/config.json answered ' + response.status);
    const config = await response.json();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.hostname + ':' + config.ws_port + config.ws_path;
  }

  function setState(state, text, detail) {
    document.body.dataset.state = state;
    ui.state.textContent = text;
    ui.state.title = detail || '';
    ui.button.disabled = state !== 'connected';
  }

  async function connect() {
    setState('connecting', 'connecting');
    let ws;
    try {
      if (!url) {
        url = await socketUrl();
        ui.url.textContent = url;
      }
      ws = new WebSocket(url);
    } catch (err) {
      retryLater(String(err.message || err));
      return;
    }
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      failures = 0;
      opened += 1;
      ui.reconnects.textContent = String(opened - 1);
      setState('connected', 'connected');
    };
    ws.onmessage = (event) => receive(event.data);
    ws.onclose = (event) => {
      socket = null;
      retryLater('closed' + (event.code ? ' with code ' + event.code : '') + (event.reason ? ': ' + event.reason : ''));
    };
    socket = ws;
  }

  // Shows "disconnected, retrying in N s", counting down, then connects again.
  function retryLater(reason) {
    const due = Date.now() + retryDelay(failures);
    failures += 1;
    const tick = () => {
      const left = due - Date.now();
      if (left <= 0) {
        connect();
        return;
      }
      setState('disconnected', 'disconnected, retrying in ' + Math.ceil(left / 1000) + ' s', reason);
      setTimeout(tick, left % 1000 || 1000);
    };
    tick();
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour12: false });
  }

  function receive(data) {
    if (data === 'ping') {
      // The tutorial's keep-alive text message: noted, not listed.
      pings += 1;
      document.body.dataset.pings = String(pings);
      ui.lastPing.textContent = 'last ping ' + clock(new Date());
      return;
    }
    received += 1;
    ui.count.textContent = String(received);
    if (typeof data !== 'string') {
      addEntry('binary', 'binary message, ' + data.byteLength + ' bytes');
      return;
    }
    const json = parseJson(data);
    if (isPodList(json)) {
      showPods(json);
      addEntry('pods', 'pod list: ' + json.length + (json.length === 1 ? ' pod' : ' pods'));
    } else if (json !== undefined) {
      addEntry('json', JSON.stringify(json, null, 2));
    } else {
      addEntry('text', data);
    }
  }

  // Objects and arrays only: a plain "42" or "true" stays a text message.
  function parseJson(text) {
    const start = text.trimStart()[0];
    if (start !== '{' && start !== '[') return undefined;
    try {
      return JSON.parse(text);
    } catch (_) {
      return undefined;
    }
  }

  function isPodList(value) {
    return Array.isArray(value) && value.length > 0 && value.every((pod) =>
      pod !== null && typeof pod === 'object' && POD_FIELDS.every((f) => typeof pod[f] === 'string'));
  }

  // One table, its rows replaced in place by each new list.
  function showPods(pods) {
    const rows = pods.map((pod) => {
      const row = document.createElement('tr');
      for (const field of POD_FIELDS) {
        const cell = document.createElement('td');
        cell.textContent = pod[field];
        row.append(cell);
      }
      return row;
    });
    ui.podRows.replaceChildren(...rows);
    ui.podsUpdated.textContent = 'updated ' + clock(new Date());
    ui.pods.hidden = false;
  }

  function addEntry(kind, text) {
    const list = ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const now = new Date();
    const item = document.createElement('li');
    item.className = 'msg';
    item.dataset.kind = kind;
    const time = document.createElement('time');
    time.dateTime = now.toISOString();
    time.textContent = clock(now);
    const body = document.createElement(kind === 'json' ? 'pre' : 'span');
    body.className = 'body';
    body.textContent = text;
    item.append(time, body);
    list.append(item);
    while (list.childElementCount > MAX_ENTRIES) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.input.value;
    if (text === '' || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(text);
    ui.input.value = '';
    ui.input.focus();
  });

  // For the browser tests and the console.
  window.wspush = { retryDelay };

  connect();
})();

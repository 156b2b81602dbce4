// wspush dashboard (index.html): subscribes to `all` through wspush.js and shows
// every message in order with its receive time, what was missed while away
// (or that history was gone), the pod table, and the connection's state and
// transport (`websocket`, or `sse` for an EventSource stream). `?ws=` names the
// server, `?transport=sse` (or `websocket`) forces a transport. When
// /config.json says the server checks subscribe tokens, it takes one for `all`
// from the side port (`POST /tokens`) before each connection.
// An ES module, no framework, no build step. Everything received is inserted
// with textContent, never as HTML.
import { subscribe, subscribeUrl, eventsUrl, retryDelay } from './wspush.js';

const MAX_ENTRIES = 500;
const HISTORY_ON_LOAD = 50;
const POD_FIELDS = ['PodName', 'PodImage', 'PodNode'];
const SEND_HINT = 'Send a message (the server echoes it back)';
const SEND_HINT_SSE = 'Receiving over an event stream: sending needs a WebSocket';

const byId = (id) => document.getElementById(id);
const ui = {
  state: byId('state'),
  url: byId('ws-url'),
  transport: byId('transport'),
  count: byId('count'),
  reconnects: byId('reconnects'),
  pods: byId('pods'),
  podRows: byId('pod-rows'),
  podsUpdated: byId('pods-updated'),
  messages: byId('messages'),
  form: byId('send-form'),
  input: byId('send-input'),
  button: byId('send-button'),
};

let subscription = null;
let received = 0;
let entries = 0; // message entries in the list (marker lines not counted)
let timesLive = 0;
let firstReplayed = null; // the entry of the first message replayed since the last "live"
let countdown = null;
let base = null; // the server's base URL, once known

const params = new URLSearchParams(location.search);
// wspush.js refuses an unknown transport: the page then says so.
const transport = params.get('transport') || 'auto';

// `?ws=` (the WebSocket port's base URL, e.g. ws://host:8080) wins; otherwise
// the server that serves the page says which port the WebSocket listens on,
// and whether subscribing needs a token (`--subscribe-secret`).
async function serverConfig() {
  const override = params.get('ws');
  if (override) return { base: override, tokens: false };
  const response = await fetch('/config.json', { cache: 'no-store', signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error('/config.json answered ' + response.status);
  const config = await response.json();
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return { base: scheme + '//' + location.hostname + ':' + config.ws_port, tokens: config.subscribe_tokens === true };
}

// A token for `all` from the side port that serves this page (`POST /tokens`,
// open when the server has no --publish-token); it lives --max-token-ttl.
async function allToken() {
  const body = JSON.stringify({ channels: ['all'], sub: 'dashboard' });
  const response = await fetch('/tokens', { method: 'POST', body, cache: 'no-store', signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error('POST /tokens answered ' + response.status);
  return (await response.json()).token;
}

async function start(attempt) {
  let config;
  try {
    config = await serverConfig();
    ui.url.textContent = subscribeUrl(config.base, 'all');
  } catch (err) {
    const delay = retryDelay(attempt);
    showWait(delay, String(err.message || err));
    setTimeout(() => start(attempt + 1), delay);
    return;
  }
  base = config.base;
  try {
    subscription = subscribe(base, 'all', {
      transport,
      last: HISTORY_ON_LOAD,
      onMessage: receive,
      onReset: () => addMarker('reset', 'history gone: messages sent while disconnected may be missing'),
      onStatus: showStatus,
      ...(config.tokens ? { getToken: allToken } : {}),
    });
  } catch (err) {
    setState('closed', String(err.message || err));
  }
}

function setState(state, text, detail) {
  clearInterval(countdown);
  document.body.dataset.state = state;
  ui.state.textContent = text;
  ui.state.title = detail || '';
  // An event stream is one-way: only a WebSocket can send.
  const oneWay = subscription !== null && subscription.transport === 'sse';
  ui.button.disabled = state !== 'live' || oneWay;
  ui.input.placeholder = oneWay ? SEND_HINT_SSE : SEND_HINT;
}

// "reconnecting in N s", counting down.
function showWait(delay, reason) {
  const due = Date.now() + delay;
  const tick = () => {
    ui.state.textContent = 'reconnecting in ' + Math.max(1, Math.ceil((due - Date.now()) / 1000)) + ' s';
  };
  setState('reconnecting', '', reason);
  tick();
  countdown = setInterval(tick, 250);
}

function showStatus(status) {
  if (ui.transport.textContent !== status.transport) {
    ui.transport.textContent = status.transport;
    ui.url.textContent = (status.transport === 'sse' ? eventsUrl : subscribeUrl)(base, 'all');
  }
  if (status.state === 'reconnecting') {
    const why = (status.code ? 'closed with code ' + status.code + ': ' : '') + (status.reason || '');
    showWait(status.delay, why);
    return;
  }
  setState(status.state, status.state);
  if (status.state !== 'live') return;
  timesLive += 1;
  ui.reconnects.textContent = String(timesLive - 1);
  const n = status.replayed;
  if (status.resumed) {
    const text = n === 0 ? 'reconnected, no messages missed'
      : n + (n === 1 ? ' missed message recovered' : ' missed messages recovered');
    addMarker('recovered', text, firstReplayed);
  } else if (n > 0) {
    addMarker('history', n + (n === 1 ? ' earlier message' : ' earlier messages') + ' from history', firstReplayed);
  }
  firstReplayed = null;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

function receive(message) {
  received += 1;
  ui.count.textContent = String(received);
  const { kind, text } = describe(message.data);
  const item = addEntry(kind, text, message);
  if (message.replayed && !firstReplayed) firstReplayed = item;
}

// What a message's data is and how it reads in the list.
function describe(data) {
  if (isBinary(data)) return { kind: 'binary', text: 'binary message, ' + base64Size(data.base64) + ' bytes' };
  const json = typeof data === 'string' ? parseJson(data) : data;
  if (isPodList(json)) {
    showPods(json);
    return { kind: 'pods', text: 'pod list: ' + json.length + (json.length === 1 ? ' pod' : ' pods') };
  }
  if (json !== undefined) return { kind: 'json', text: JSON.stringify(json, null, 2) };
  return { kind: 'text', text: data };
}

// Text that holds an object or array is shown as JSON too: a plain "42" stays text.
function parseJson(text) {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return undefined;
  try {
    return JSON.parse(text);
  } catch (_) {
    return undefined;
  }
}

// Binary arrives as {"base64": "…"}.
function isBinary(data) {
  return data !== null && typeof data === 'object' && !Array.isArray(data)
    && Object.keys(data).length === 1 && typeof data.base64 === 'string';
}

function base64Size(text) {
  const digits = text.replace(/=+$/, '').length;
  return Math.floor((digits * 3) / 4);
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

function addEntry(kind, text, message) {
  const now = new Date();
  const item = document.createElement('li');
  item.className = 'msg';
  item.dataset.kind = kind;
  item.dataset.type = message.type;
  if (message.id) item.dataset.id = message.id;
  if (message.replayed) item.dataset.replayed = 'true';
  const time = document.createElement('time');
  time.dateTime = now.toISOString();
  time.textContent = clock(now);
  item.append(time);
  if (message.type !== 'message') {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = message.type;
    item.append(tag);
  }
  const body = document.createElement(kind === 'json' ? 'pre' : 'span');
  body.className = 'body';
  body.textContent = text;
  item.append(body);
  entries += 1;
  append(item);
  return item;
}

// A line that is not a message: what was recovered, or that history was gone.
function addMarker(kind, text, before) {
  const item = document.createElement('li');
  item.className = 'marker';
  item.dataset.kind = kind;
  item.setAttribute('role', 'note');
  item.textContent = text;
  if (before && before.isConnected) ui.messages.insertBefore(item, before);
  else append(item);
}

function append(item) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  while (entries > MAX_ENTRIES) {
    if (list.firstElementChild.classList.contains('msg')) entries -= 1;
    list.firstElementChild.remove();
  }
  if (atBottom) list.scrollTop = list.scrollHeight;
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (text === '' || !subscription || !subscription.send(text)) return;
  ui.input.value = '';
  ui.input.focus();
});

// A page opened as a file has nothing to ask (index.html says so); browsers
// that load modules from files at all get here.
if (location.protocol !== 'file:') start(0);

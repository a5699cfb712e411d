// The signed-in user, authenticated fetch, and reconnecting WebSockets (ticket sign-in, heartbeats,
// replay cursor: the client side of the live-socket protocol).
import { t } from "./i18n.js";

export const SILENCE_MS = 15000;  // no frame for this long (once heartbeats are known): the data is interrupted
const CONNECT_TIMEOUT_MS = 10000;

export const session = {
  token: sessionStorage.getItem("zhijian.token") || localStorage.getItem("zhijian.token") || "",
  user: null,
  can(permission) { return Boolean(this.user && this.user.permissions.includes(permission)); },
};

export class Unauthorised extends Error {}

// A failed request, with a message for people (Chinese, or English in English mode), never "Failed to fetch".
export class ApiError extends Error {
  constructor(message, status, detail) { super(message); this.status = status; this.detail = detail; }
}

function explain(status, detail) {
  const text = typeof detail === "string" ? detail : "";
  let match = /^claimed by (.+)$/.exec(text);
  if (match) return t("err_claimed_by", { who: match[1] });
  match = /^alert already (\w+)$/.exec(text);
  if (match) return t("err_already", { state: t(`done_${match[1]}`) });
  if (/already appealed|open appeal/.test(text) || (status === 409 && /appeal/.test(text))) return t("err_appealed");
  if (status === 404) return t("err_not_found");
  if (status === 403) return t("err_forbidden");
  if (status === 409) return t("err_conflict");
  if (status === 422) return t("err_invalid", { detail: text || JSON.stringify(detail ?? "") });
  if (status >= 500) return t("err_server", { status });
  return t("err_http", { status });
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(t("err_network"), 0);  // the API is down or unreachable
  }
  if (response.status === 401) throw new Unauthorised(t("bad_token"));
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  if (!response.ok) throw new ApiError(explain(response.status, data && data.detail), response.status, data && data.detail);
  return data;
}

export function message(err) {
  return err instanceof Error && err.message ? err.message : t("err_network");
}

// Sign-in for a socket: a single-use ticket (POST /api/ws-ticket); a server without tickets (404)
// still takes the token in the query.
// A socket signs in with a short-lived ticket, never with the session token in its URL (URLs reach access logs).
async function socketQuery() {
  let response;
  try {
    response = await fetch("/api/ws-ticket", { method: "POST", headers: { Authorization: `Bearer ${session.token}` },
                                                signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
  } catch {
    throw new ApiError(t("err_network"), 0);
  }
  if (response.status === 401) throw new Unauthorised(t("bad_token"));
  if (!response.ok) throw new ApiError(t("err_server", { status: response.status }), response.status);
  return `ticket=${encodeURIComponent((await response.json()).ticket)}`;
}

// A WebSocket that reconnects with backoff. States passed to onState: connecting, live, interrupted.
// Once a heartbeat has been seen, silence for SILENCE_MS (or feed "down") means interrupted and a reconnect.
// The newest cursor (ready frames and heartbeats) is passed back as `after` when reconnecting; frames before
// the next "ready" are the replay (onMessage gets { replay: true }: shown, not alarmed).
export function liveSocket(path, { onMessage, onOpen, onState, onRefused, onReady }) {
  let socket = null;
  let retry = 500;
  let stopped = false;
  let everOpen = false;
  let heartbeats = false;  // a server without heartbeats: silence is fine until the first one is seen
  let feedDown = false;
  let lastFrame = Date.now();
  let cursor = null;
  let pending = null;
  let refusals = 0;  // 1008 in a row: a ticket can expire on a slow link, a bad sign-in stays bad

  const drop = (ws) => {
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(); } catch { /* already closed */ }
  };
  const lost = () => {  // show the gap, then try again with backoff
    onState?.("interrupted");
    drop(socket);
    socket = null;
    if (stopped || pending) return;
    pending = setTimeout(() => { pending = null; open(); }, retry);
    retry = Math.min(retry * 2, 10000);
  };

  const open = async () => {
    if (stopped) return;
    onState?.(everOpen ? "interrupted" : "connecting");
    let query;
    try {
      query = await socketQuery();
    } catch (err) {
      if (err instanceof Unauthorised) { onRefused?.(4401); return; }
      lost();
      return;
    }
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = cursor ? `&after=${encodeURIComponent(cursor)}` : "";
    const ws = new WebSocket(`${scheme}://${location.host}${path}?${query}${after}`);
    socket = ws;
    lastFrame = Date.now();
    let replaying = Boolean(after);  // frames before "ready" replay what we missed (only when resuming)
    ws.onopen = () => {
      retry = 500;
      everOpen = true;
      lastFrame = Date.now();
      if (!feedDown) onState?.("live");
      onOpen?.({ resumed: Boolean(after) });
    };
    ws.onmessage = (event) => {
      lastFrame = Date.now();
      refusals = 0;
      let frame;
      try { frame = JSON.parse(event.data); } catch { console.warn("bad frame on", path); return; }
      if (frame && frame.kind === "heartbeat") {
        heartbeats = true;
        if (frame.cursor) cursor = frame.cursor;
        const down = frame.feed === "down";
        if (down !== feedDown) {
          feedDown = down;
          if (down) lost(); else onState?.("live");
        }
        return;
      }
      if (frame && frame.kind === "ready") {
        if (frame.cursor) cursor = frame.cursor;
        replaying = false;
        onReady?.();
        return;
      }
      try { onMessage(frame, { replay: replaying }); } catch (err) { console.warn("frame handler failed", err); }
    };
    ws.onclose = (event) => {
      if (stopped) return;
      if (event.code === 1008 && ++refusals < 3) { lost(); return; }  // a fresh ticket
      if (event.code === 4401 || event.code === 1008) { drop(ws); socket = null; onRefused?.(event.code); return; }
      lost();
    };
  };

  const watchdog = setInterval(() => {
    if (stopped || !socket) return;
    const quiet = Date.now() - lastFrame;
    if (socket.readyState === WebSocket.CONNECTING && quiet > CONNECT_TIMEOUT_MS) lost();
    else if (socket.readyState === WebSocket.OPEN && heartbeats && quiet > SILENCE_MS) lost();
  }, 1000);

  open();
  return {
    stop() { stopped = true; clearInterval(watchdog); clearTimeout(pending); drop(socket); socket = null; },
  };
}

export function el(id) { return document.getElementById(id); }

export function node(tag, { className, text, attrs } = {}, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, value);
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

// Text with [start, end) marks highlighted (overlapping marks merged), as DOM nodes (no HTML strings: chat
// text is untrusted).
export function marked(text, spans) {
  const merged = [];
  for (const [start, end] of [...spans].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && start < last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  const out = [];
  let at = 0;
  for (const [start, end] of merged) {
    out.push(document.createTextNode(text.slice(at, start)), node("mark", { text: text.slice(start, end) }));
    at = end;
  }
  out.push(document.createTextNode(text.slice(at)));
  return out;
}

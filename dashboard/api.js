// The signed-in user, authenticated fetch, and reconnecting WebSockets.
export const session = {
  token: localStorage.getItem("zhijian.token") || "",
  user: null,
  can(permission) { return Boolean(this.user && this.user.permissions.includes(permission)); },
};

export class Unauthorised extends Error {}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) throw new Unauthorised();
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(data && data.detail ? String(data.detail) : `HTTP ${response.status}`);
  return data;
}

// A WebSocket that reconnects with backoff; onOpen runs after every (re)connect.
export function liveSocket(path, { onMessage, onOpen, onState, onRefused }) {
  let socket = null;
  let retry = 500;
  let stopped = false;
  const open = () => {
    if (stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${path}?token=${encodeURIComponent(session.token)}`);
    onState?.("connecting");
    socket.onopen = () => { retry = 500; onState?.("live"); onOpen?.(); };
    socket.onmessage = (event) => {
      try { onMessage(JSON.parse(event.data)); } catch (err) { console.warn("bad frame", err); }
    };
    socket.onclose = (event) => {
      if (stopped) return;
      if (event.code === 1008) { onRefused?.(); return; }
      onState?.("reconnecting");
      setTimeout(open, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };
  open();
  return { stop() { stopped = true; if (socket) socket.close(); } };
}

export function el(id) { return document.getElementById(id); }

export function node(tag, { className, text, attrs } = {}, ...children) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, value);
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

// Text with [start, end) marks highlighted, as DOM nodes (no HTML strings: chat text is untrusted).
export function marked(text, spans) {
  const out = [];
  let at = 0;
  for (const [start, end] of [...spans].sort((a, b) => a[0] - b[0])) {
    if (start < at || end <= start) continue;
    out.push(document.createTextNode(text.slice(at, start)), node("mark", { text: text.slice(start, end) }));
    at = end;
  }
  out.push(document.createTextNode(text.slice(at)));
  return out;
}

export const clock = (ms) => new Date(ms).toLocaleTimeString("zh-CN", { hour12: false });

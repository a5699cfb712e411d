// The waiting board: conversations whose customer has waited long enough to show, longest first. Each card
// is a link (keyboard reachable) with the customer's last message, the shop, the agent, and 顾客可能已离开 once
// the customer has been quiet longer than the shop's customer_gone_after_s. Cards are updated in place.
import { el, node } from "./api.js";
import { wholeSeconds } from "./format.js";
import { t } from "./i18n.js";
import { openConversation } from "./conversation.js";

// The view's state, in one place: what is waiting, the card built for each, the clock that ticks the seconds.
const state = {
  waiting: new Map(),  // conversation_id → snapshot
  cards: new Map(),    // conversation_id → li (dropped with its conversation, here where the state changes)
  ticker: null,        // the 1 s tick while the board is shown (startBoard / stopBoard)
};

function forget(id) {
  state.waiting.delete(id);
  state.cards.get(id)?.remove();
  state.cards.delete(id);
}

export function resetBoard() {
  for (const id of [...state.waiting.keys()]) forget(id);
  renderBoard();
}

export function onConversation(c) {
  if (!c || typeof c !== "object" || !c.conversation_id) return;
  const known = state.waiting.get(c.conversation_id);
  if (known && (known.version || 0) > (c.version || 0)) return;  // an older snapshot arriving late
  if (c.status === "waiting" && c.waiting_since_ms) state.waiting.set(c.conversation_id, c);
  else forget(c.conversation_id);
  renderBoard();
}

// The waited seconds tick while the board is on screen (a signed-in session); nothing runs at import.
export function startBoard() {
  if (state.ticker === null) state.ticker = setInterval(() => { if (state.waiting.size) renderBoard(); }, 1000);
}
export function stopBoard() {
  clearInterval(state.ticker);
  state.ticker = null;
}

function gone(c, now) {
  const limit = Number(c.customer_gone_after_s);
  const last = Number(c.last_customer_ms);
  return Number.isFinite(limit) && limit > 0 && Number.isFinite(last) && last > 0 && now - last > limit * 1000;
}

function build(id) {
  const link = node("a", { className: "card-link", attrs: { href: `#conversation=${encodeURIComponent(id)}` } },
    node("span", { className: "who" }), node("span", { className: "waited" }),
    node("span", { className: "said" }), node("span", { className: "gone" }), node("span", { className: "mono conv" }));
  link.addEventListener("click", (event) => { event.preventDefault(); openConversation(id); });
  const li = node("li", { attrs: { "data-conversation-id": id } }, link);
  state.cards.set(id, li);
  return li;
}

function set(element, text) { if (element.textContent !== text) element.textContent = text; }

export function renderBoard() {
  const now = Date.now();
  const items = [...state.waiting.values()].sort((a, b) => a.waiting_since_ms - b.waiting_since_ms);
  const list = el("waiting");
  const focused = document.activeElement;
  let at = list.firstChild;
  const wanted = new Set();
  for (const c of items) {
    const li = state.cards.get(c.conversation_id) || build(c.conversation_id);
    wanted.add(li);
    const isGone = gone(c, now);
    li.dataset.level = String(c.waiting_level || 0);
    li.dataset.gone = String(isGone);
    const [who, waited, said, goneTag, conv] = li.firstChild.children;
    set(who, [c.agent_id || t("unassigned"), c.team_id || "—", c.shop_id].filter(Boolean).join(" · "));
    set(waited, wholeSeconds((now - c.waiting_since_ms) / 1000));
    set(said, c.waiting_excerpt ? `“${String(c.waiting_excerpt).slice(0, 60)}”` : "");
    said.hidden = !c.waiting_excerpt;
    set(goneTag, isGone ? t("customer_gone") : "");
    goneTag.hidden = !isGone;
    set(conv, c.conversation_id);
    if (li === at) at = at.nextSibling;
    else list.insertBefore(li, at);
  }
  for (const li of [...list.children]) if (!wanted.has(li)) li.remove();
  if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
  el("waiting-count").textContent = String(items.length);
  el("waiting-empty").hidden = items.length > 0;
}


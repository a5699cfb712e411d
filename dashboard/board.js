// The waiting board: conversations whose customer has waited long enough to show, longest first. Each card
// is a link (keyboard reachable) with the customer's last message, the shop, the agent, and 顾客可能已离开 once
// the customer has been quiet longer than the shop's customer_gone_after_s. Cards are updated in place.
import { el, node, wholeSeconds } from "./api.js";
import { t } from "./i18n.js";
import { openConversation } from "./conversation.js";

const board = new Map();   // conversation_id → snapshot
const cards = new Map();   // conversation_id → li

export function resetBoard() { board.clear(); renderBoard(); }

export function onConversation(c) {
  if (!c || typeof c !== "object" || !c.conversation_id) return;
  const known = board.get(c.conversation_id);
  if (known && (known.version || 0) > (c.version || 0)) return;  // an older snapshot arriving late
  if (c.status === "waiting" && c.waiting_since_ms) board.set(c.conversation_id, c);
  else board.delete(c.conversation_id);
  renderBoard();
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
  cards.set(id, li);
  return li;
}

function set(element, text) { if (element.textContent !== text) element.textContent = text; }

export function renderBoard() {
  const now = Date.now();
  const items = [...board.values()].sort((a, b) => a.waiting_since_ms - b.waiting_since_ms);
  const list = el("waiting");
  const focused = document.activeElement;
  let at = list.firstChild;
  const wanted = new Set();
  for (const c of items) {
    const li = cards.get(c.conversation_id) || build(c.conversation_id);
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
  for (const [id, li] of cards) {
    if (!wanted.has(li)) { li.remove(); cards.delete(id); }
  }
  if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
  el("waiting-count").textContent = String(items.length);
  el("waiting-empty").hidden = items.length > 0;
}

setInterval(() => { if (board.size) renderBoard(); }, 1000);

// The waiting board: conversations whose customer has waited long enough to show, longest first.
import { el, node } from "./api.js";
import { t } from "./i18n.js";
import { openConversation } from "./conversation.js";

const board = new Map();

export function resetBoard() { board.clear(); renderBoard(); }

export function onConversation(c) {
  if (!c || !c.conversation_id) return;
  const known = board.get(c.conversation_id);
  if (known && known.version > c.version) return;  // an older snapshot arriving late
  if (c.status === "waiting" && c.waiting_since_ms) board.set(c.conversation_id, c);
  else board.delete(c.conversation_id);
  renderBoard();
}

export function renderBoard() {
  const now = Date.now();
  const items = [...board.values()].sort((a, b) => a.waiting_since_ms - b.waiting_since_ms);
  el("waiting").replaceChildren(...items.map((c) => {
    const li = node("li", { attrs: { "data-conversation-id": c.conversation_id, "data-level": String(c.waiting_level || 0) } },
      node("span", { text: `${c.agent_id || t("unassigned")} · ${c.team_id || "—"}` }),
      node("span", { className: "waited", text: t("seconds", { n: Math.max(0, Math.floor((now - c.waiting_since_ms) / 1000)) }) }),
      node("span", { className: "mono", text: c.conversation_id }));
    li.onclick = () => openConversation(c.conversation_id);
    return li;
  }));
  el("waiting-count").textContent = String(items.length);
  el("waiting-empty").hidden = items.length > 0;
}

setInterval(() => { if (board.size) renderBoard(); }, 1000);

// One conversation: the transcript with flagged spans, each answer's response time, the live
// waiting timer, and the message an alert points at brought into view.
import { api, clock, el, marked, node } from "./api.js";
import { ruleName, t } from "./i18n.js";

let timer = null;

function meta(c) {
  const m = c.metrics || {};
  const parts = [`${t("agent")}: ${c.agent_id || "—"}`, `${t("team")}: ${c.team_id || "—"}`,
                 t(`status_${c.status}`)];
  if (m.first_response_s != null) parts.push(t("first_response", { n: m.first_response_s }));
  if (m.avg_response_s != null) parts.push(`${t("avg_response")} ${m.avg_response_s} s`);
  if (m.reply_rate != null) parts.push(`${t("reply_rate")} ${Math.round(m.reply_rate * 100)}%`);
  if (c.waiting_since_ms) parts.push(t("waiting_now", { n: Math.floor((Date.now() - c.waiting_since_ms) / 1000) }));
  return parts.join(" · ");
}

function message(m, focus) {
  const kind = m.sender === "agent" ? "agent" : m.sender === "customer" ? "customer" : "event";
  const li = node("li", { className: kind, attrs: { "data-message-id": m.message_id } });
  if (m.message_id === focus) li.classList.add("focus");
  li.append(node("span", { className: "when", text: `${clock(m.ts_ms)} ${m.sender === "agent" ? m.agent_id || "" : t(m.sender)}` }));
  if (kind === "event") {
    li.append(m.sender === "transferred" ? `${t("transferred")} → ${m.agent_id || ""}` : t(m.sender));
    return li;
  }
  li.append(...marked(m.text || "", (m.marks || []).map(([, start, end]) => [start, end])));
  const labels = [...new Set((m.marks || []).map(([label]) => ruleName(label)))];
  if (labels.length) li.append(node("span", { className: "rt", text: labels.join(" · ") }));
  if (m.response_s != null) li.append(node("span", { className: "rt", text: t("response", { n: m.response_s }) }));
  if (m.late) li.append(node("span", { className: "rt", text: t("late") }));
  return li;
}

export async function openConversation(conversationId, focusMessageId) {
  const dialog = el("conversation");
  let c;
  try {
    c = await api(`/api/conversations/${encodeURIComponent(conversationId)}`);
  } catch (err) {
    window.alert(String(err.message || err));
    return;
  }
  el("conv-title").textContent = `${t("conversation")} ${c.conversation_id}`;
  el("conv-meta").textContent = meta(c);
  el("conv-transcript").replaceChildren(...(c.transcript || []).map((m) => message(m, focusMessageId)));
  clearInterval(timer);
  if (c.waiting_since_ms) timer = setInterval(() => { el("conv-meta").textContent = meta(c); }, 1000);
  if (!dialog.open) dialog.showModal();
  dialog.querySelector(".focus")?.scrollIntoView({ block: "center" });
}

export function setupConversation() {
  el("conv-close").onclick = () => { clearInterval(timer); el("conversation").close(); };
}

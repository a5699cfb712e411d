// One conversation: the transcript with flagged spans, each answer's response time, the live waiting
// timer, the message an alert or an appeal points at (scrolled to and highlighted), the score with its
// breakdown and deductions once scored, and the floor's notes on its alerts.
import { api, el, marked, message, node, session } from "./api.js";
import { clock, oneDecimal, percent, seconds, wholeSeconds } from "./format.js";
import { itemName, ruleName, sectionName, t } from "./i18n.js";
import { showError } from "./toast.js";
import { ask } from "./ask.js";

const FATAL = ["banned_word", "forbidden_phrase", "pii_leak"];  // the rubric's fatal labels (seed)
// The view's state: the conversation shown now (a slow answer for an older one is dropped) and the timer
// that ticks its waiting time while it is open (started on open, stopped on close).
const view = { opened: null, timer: null };

function meta(c) {
  const m = c.metrics || {};
  const parts = [`${t("agent")}: ${c.agent_id || "—"}`, `${t("team")}: ${c.team_id || "—"}`];
  if (c.shop_id) parts.push(`${t("shop")}: ${c.shop_id}`);
  parts.push(t(`status_${c.status}`));
  if (m.first_response_s != null) parts.push(t("first_response", { n: seconds(m.first_response_s) }));
  if (m.avg_response_s != null) parts.push(`${t("avg_response")} ${seconds(m.avg_response_s)}`);
  if (m.reply_rate != null) parts.push(`${t("reply_rate")} ${percent(m.reply_rate)}`);
  if (c.waiting_since_ms) parts.push(t("waiting_now", { n: wholeSeconds((Date.now() - c.waiting_since_ms) / 1000) }));
  return parts.join(" · ");
}

function line(m, focus, notes) {
  const kind = m.sender === "agent" ? "agent" : m.sender === "customer" ? "customer" : "event";
  const li = node("li", { className: kind, attrs: { "data-message-id": m.message_id } });
  if (m.message_id === focus) { li.classList.add("focus"); li.setAttribute("aria-current", "true"); }
  if (kind === "event") {  // 会话开始 / 会话结束 / 转接: the time and the event, once
    const what = m.sender === "transferred" ? `${t("transferred")} → ${m.agent_id || ""}` : t(m.sender);
    li.append(node("span", { className: "when", text: clock(m.ts_ms) }), what);
    return li;
  }
  li.append(node("span", { className: "when", text: `${clock(m.ts_ms)} ${m.sender === "agent" ? m.agent_id || "" : t(m.sender)}` }));
  li.append(...marked(m.text || "", (m.marks || []).map(([, start, end]) => [start, end])));
  const labels = [...new Set((m.marks || []).map(([label]) => ruleName(label)))];
  if (labels.length) li.append(node("span", { className: "rt flag", text: labels.join(" · ") }));
  if (m.response_s != null) li.append(node("span", { className: "rt", text: t("response", { n: seconds(m.response_s) }) }));
  if (m.late) li.append(node("span", { className: "rt", text: t("late") }));
  const mine = notes.filter((n) => n.message_id === m.message_id);
  if (mine.length) {
    li.append(node("ul", { className: "notes", attrs: { "aria-label": t("notes") } },
      ...mine.map((n) => node("li", { text: `${n.by}：${n.text}` }))));
  }
  return li;
}

// 亮点: QA adds up to the rubric's bonus for a conversation handled well (the server caps and rescores)
async function awardBonus(conversationId, answered = null) {
  const answer = answered || await ask({ title: t("bonus_award"), ok: t("bonus_award"), fields: [
    { name: "points", type: "integer", label: t("bonus_points"), value: 5, required: true, min: 0, max: 10 },
    { name: "note", type: "textarea", label: t("bonus_note"), required: true, maxLength: 2000 }] });
  if (answer === null) return;
  const { points, note } = answer;
  try {
    await api(`/api/conversations/${encodeURIComponent(conversationId)}/bonus`, { method: "POST", body: { points, note } });
    scorePanel(await api(`/api/conversations/${encodeURIComponent(conversationId)}/score`), conversationId);
  } catch (err) {
    showError(t("action_failed", { why: message(err) }), () => awardBonus(conversationId, answer));
  }
}

function scorePanel(score, conversationId) {
  const panel = el("conv-score");
  if (!score) {
    panel.replaceChildren(node("p", { className: "meta", text: t("not_scored") }));
    panel.hidden = false;
    return;
  }
  const card = score.breakdown || {};
  const fatalLabels = card.fatal_labels || FATAL.filter((l) => (score.labels || {})[l]);
  const head = score.fatal
    ? t("score_fatal", { labels: fatalLabels.map(ruleName).join("、") })
    : t("score_total", { n: oneDecimal(score.score), max: oneDecimal(score.max_score) });
  const sections = (Array.isArray(card) ? card : card.breakdown || []).map((s) => {
    const items = Object.entries(s.items || {}).map(([item, points]) => node("li", { text: `${itemName(item)} ${t("item_points", { n: oneDecimal(points) })}` }));
    const deductions = (s.deductions || []).map((d) => node("li", { className: "deduction",
      text: `${ruleName(d.label)} ×${d.count}：${t("item_points", { n: oneDecimal(d.points) })}` }));
    return node("li", { attrs: { "data-section": s.section } },
      node("strong", { text: `${sectionName(s.section)} ${oneDecimal(s.points)} / ${oneDecimal(s.max)}` }),
      items.length || deductions.length ? node("ul", {}, ...items, ...deductions) : null);
  });
  if (card.bonus) sections.push(node("li", { text: `${t("bonus")} +${oneDecimal(card.bonus)}` }));
  let bonus = null;
  if (session.can("bonus")) {
    bonus = node("button", { className: "small", text: t("bonus_award"), attrs: { type: "button", "data-act": "bonus" } });
    bonus.addEventListener("click", () => awardBonus(conversationId));
  }
  panel.replaceChildren(node("p", { className: "score-head", text: head }),
                        node("ol", { className: "sections" }, ...sections), bonus);
  panel.hidden = false;
}

function notesPanel(alerts) {
  const notes = [];
  for (const a of alerts) {
    for (const n of (a.action && a.action.notes) || []) notes.push({ ...n, message_id: a.message_id, rule: a.rule });
  }
  const seen = new Set();
  const unique = notes.filter((n) => { const k = `${n.by}|${n.at}|${n.text}`; if (seen.has(k)) return false; seen.add(k); return true; });
  const panel = el("conv-notes");
  panel.replaceChildren(node("h3", { text: t("alert_notes") }),
    node("ul", { className: "notes" }, ...unique.map((n) => node("li", { text: `${ruleName(n.rule)} · ${n.by}：${n.text}` }))));
  panel.hidden = unique.length === 0;
  return unique;
}

export async function openConversation(conversationId, focusMessageId, { withScore = true } = {}) {
  const dialog = el("conversation");
  view.opened = conversationId;
  clearInterval(view.timer);
  el("conv-title").textContent = `${t("conversation")} ${conversationId}`;
  el("conv-meta").textContent = t("loading");
  el("conv-score").hidden = true;
  el("conv-notes").hidden = true;
  el("conv-transcript").replaceChildren();
  dialog.setAttribute("aria-busy", "true");
  if (!dialog.open) dialog.showModal();
  let c, score = null, alerts = [];
  try {
    [c, score, alerts] = await Promise.all([
      api(`/api/conversations/${encodeURIComponent(conversationId)}`),
      withScore ? api(`/api/conversations/${encodeURIComponent(conversationId)}/score`).catch(() => null)
        : Promise.resolve(null),
      api(`/api/conversations/${encodeURIComponent(conversationId)}/alerts`).then((b) => b.alerts).catch(() => []),
    ]);
  } catch (err) {
    if (view.opened !== conversationId) return;
    dialog.removeAttribute("aria-busy");
    el("conv-meta").textContent = message(err);
    showError(message(err), () => openConversation(conversationId, focusMessageId, { withScore }));
    return;
  }
  if (view.opened !== conversationId) return;
  dialog.removeAttribute("aria-busy");
  el("conv-title").textContent = `${t("conversation")} ${c.conversation_id}`;
  el("conv-meta").textContent = meta(c);
  if (withScore) scorePanel(score, c.conversation_id);
  const notes = notesPanel(alerts);
  el("conv-transcript").replaceChildren(...(c.transcript || []).map((m) => line(m, focusMessageId, notes)));
  if (c.waiting_since_ms) view.timer = setInterval(() => { el("conv-meta").textContent = meta(c); }, 1000);
  el("conv-transcript").querySelector(".focus")?.scrollIntoView({ block: "center" });
  el("conv-close").focus({ preventScroll: true });
}

export function setupConversation() {
  const close = () => { clearInterval(view.timer); view.opened = null; el("conversation").close(); };
  el("conv-close").onclick = close;
  el("conversation").addEventListener("close", () => { clearInterval(view.timer); view.opened = null; });
}

// The 人工质检 tab (QA): the day's sample, one conversation at a time — confirm or reject each finding, add a
// manual one from the scorecard's labels, score the human items, sign off (结果确认). DOM nodes only.
import { ApiError, api, el, message, node, session } from "./api.js";
import { oneDecimal } from "./format.js";
import { ruleName, sectionName, t } from "./i18n.js";

// The review view's state: the conversation on screen, the latest queue request (older answers are dropped),
// whether the buttons are wired.
const view = { current: null, queueAsked: 0, wired: false };

// QA works the queue; an agent sees their own signed-off results here (read-only) and appeals from the scores tab
export function reviewAllowed() { return session.can("decide_appeal") || session.user?.role === "agent"; }
const reviewer = () => session.can("decide_appeal");

const labelName = (label, name) => name || ruleName(label);
const stateName = (state) => t(`review_${state}`);

async function loadQueue() {
  const out = el("review-status");
  out.textContent = "";
  const date = el("r-date").value;  // empty: the server's today on the floor's clock
  const asked = ++view.queueAsked;
  if (!reviewer()) {  // an agent: their signed-off results, every day
    const mine = await api("/api/review/results");
    if (asked !== view.queueAsked) return;
    renderQueue(mine.results.map((r) => ({ ...r, reasons: [r.day], pending_items: [], status: "signed_off" })));
    return;
  }
  const body = await api(`/api/review/queue${date ? `?date=${encodeURIComponent(date)}` : ""}`);
  if (asked !== view.queueAsked) return;  // a newer request (another date) is on its way
  if (!el("r-date").value) el("r-date").value = body.date;
  renderQueue(body.conversations);
}

function renderQueue(conversations) {
  const out = el("review-status");
  const rows = conversations.map((c) => {
    const open = node("button", { text: c.conversation_id, className: "link", attrs: { type: "button" } });
    open.addEventListener("click", () => openReview(c.conversation_id).catch(showError));
    const score = c.score === null ? "—" : t("review_points", { score: oneDecimal(c.score) })
      + (c.pending_items.length ? ` · ${t("review_pending")}` : "");
    return node("tr", { attrs: { "data-conversation": c.conversation_id } }, node("td", {}, open),
      node("td", { text: c.agent_id || "—" }), node("td", { text: c.reasons.join(", ") }),
      node("td", { className: "num", text: score }), node("td", { text: stateName(c.status) }));
  });
  el("review-queue").replaceChildren(...rows);
  if (!rows.length) out.textContent = t("review_empty");
}

// a refused step (409, 422) shows the server's reason: what is still undecided or pending, what is out of range
function showError(err) {
  const reason = err instanceof ApiError && [409, 422].includes(err.status) && typeof err.detail === "string";
  el("rv-error").textContent = reason ? `${err.message}：${err.detail}` : message(err);
}

async function act(path, body) {
  el("rv-error").textContent = "";
  try {
    await api(path, { method: "POST", body });
  } catch (err) {
    showError(err);
    return;
  }
  await openReview(view.current);
  await loadQueue().catch(showError);
}

function findingRow(f, signed, names) {
  const where = f.message_id ? `${f.message_id}${f.matched ? ` · ${f.matched}` : ""}` : t("review_whole");
  const bits = [labelName(f.label, names.get(f.label)), where];
  if (f.origin === "manual") bits.push(t("review_manual"));
  if (f.review_note) bits.push(f.review_note);
  const item = node("li", { attrs: { "data-finding": f.finding_id, "data-status": f.status } },
    node("span", { text: bits.join(" · ") }), node("span", { className: "meta", text: ` [${t(`review_${f.status}`)}]` }));
  if (f.undecided && !signed) {
    for (const [confirm, key] of [[true, "review_confirm"], [false, "review_reject"]]) {
      const button = node("button", { text: t(key), attrs: { type: "button", "data-confirm": String(confirm) } });
      button.addEventListener("click", () => act(`/api/review/findings/${encodeURIComponent(f.finding_id)}/decision`,
        { confirm, note: "" }));
      item.append(" ", button);
    }
  }
  return item;
}

export async function openReview(conversationId) {
  view.current = conversationId;
  const r = await api(`/api/review/conversations/${encodeURIComponent(conversationId)}`);
  const signed = r.status === "signed_off";
  el("review-detail").hidden = false;
  el("rv-title").textContent = `${t("conversation")} ${r.conversation_id} · ${r.score.agent_id || "—"}`;
  const undecided = r.findings.filter((f) => f.undecided).length;
  const pending = r.score.breakdown.pending_items || [];
  const parts = [t("review_points", { score: oneDecimal(r.score.score) }), stateName(r.status)];
  if (r.score.fatal) parts.push(`${t("review_fatal")}: ${r.score.breakdown.fatal_labels.map((l) => labelName(l,
    (r.labels.find((c) => c.label === l) || {}).name)).join(", ")}`);
  if (pending.length) parts.push(`${t("review_pending")}: ${pending.join(", ")}`);
  if (undecided) parts.push(t("review_undecided", { n: undecided }));
  if (r.appeal_deadline) parts.push(t("review_appeal_until", { at: r.appeal_deadline }));
  el("rv-score").textContent = parts.join(" · ");
  el("rv-transcript").replaceChildren(...r.transcript.map((m) => node("li", { className: `msg msg-${m.sender}` },
    node("span", { className: "meta", text: `${m.sender}${m.agent_id ? ` ${m.agent_id}` : ""} · ${m.message_id} ` }),
    node("span", { text: m.text }))));
  const names = new Map(r.labels.map((c) => [c.label, c.name]));
  el("rv-findings").replaceChildren(...r.findings.map((f) => findingRow(f, signed, names)));
  el("rv-label").replaceChildren(...r.labels.map((c) => node("option", {
    text: `${labelName(c.label, c.name)}${c.fatal ? ` (${t("review_fatal")})` : ` (${c.points})`}`,
    attrs: { value: c.label } })));
  el("rv-message").replaceChildren(node("option", { text: t("review_whole"), attrs: { value: "" } }),
    ...r.transcript.filter((m) => m.sender === "agent").map((m) => node("option", {
      text: `${m.message_id} · ${m.text.slice(0, 30)}`, attrs: { value: m.message_id } })));
  el("rv-item-fields").replaceChildren(...r.human_items.map((h) => node("label", {},
    node("span", { text: `${h.item} (${sectionName(h.section)}, 0–${h.max})` }), " ",
    node("input", { attrs: { type: "number", min: "0", max: String(h.max), step: "0.5", "data-item": h.item,
      value: h.points === null ? "" : String(h.points), placeholder: t("review_pending") } }))));
  el("rv-items").hidden = !r.human_items.length || !reviewer();
  el("rv-add").hidden = el("rv-signoff").hidden = !reviewer();  // an agent reads the signed-off result
  for (const id of ["rv-add", "rv-items", "rv-signoff"]) {
    for (const control of el(id).querySelectorAll("input, select, button")) control.disabled = signed;
  }
}

export function showReview(visible) {
  if (!visible) return;
  if (!view.wired) {
    view.wired = true;
    el("r-date").addEventListener("change", () => loadQueue().catch(showError));
    el("r-date").closest("label").hidden = !reviewer();
    el("rv-add").addEventListener("submit", (event) => {
      event.preventDefault();
      act(`/api/review/conversations/${encodeURIComponent(view.current)}/findings`, {
        label: el("rv-label").value, note: el("rv-note").value.trim(), message_id: el("rv-message").value || null });
      el("rv-note").value = "";
    });
    el("rv-items").addEventListener("submit", (event) => {
      event.preventDefault();
      const points = {};
      for (const input of el("rv-item-fields").querySelectorAll("input[data-item]")) {
        if (input.value !== "") points[input.dataset.item] = Number(input.value);
      }
      act(`/api/review/conversations/${encodeURIComponent(view.current)}/items`, { points });
    });
    el("rv-signoff").addEventListener("submit", (event) => {
      event.preventDefault();
      act(`/api/review/conversations/${encodeURIComponent(view.current)}/sign-off`, { note: el("rv-signoff-note").value });
    });
  }
  loadQueue().catch((err) => { el("review-status").textContent = message(err); });
}

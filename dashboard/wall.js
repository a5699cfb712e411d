// The alert wall: one row per offending message (every finding on it, severity = the highest), filters,
// claim → note → resolve, rows updated in place (focus stays where it was), and a quiet alarm: flash and
// sound per rule, at most once per N seconds, new critical alerts announced to screen readers, and an
// unread count in the title while the tab is hidden.
import { api, el, marked, message, node, session } from "./api.js";
import { clock, seconds, wholeSeconds } from "./format.js";
import { RULE_KEYS, ruleName, severityName, t } from "./i18n.js";
import { openConversation } from "./conversation.js";
import { showError } from "./toast.js";
import { ask } from "./ask.js";

const MAX_ROWS = 500;
const RANK = { critical: 3, warning: 2, info: 1 };
const FINAL = new Set(["resolved", "false_positive"]);
const QUIET_BY_DEFAULT = new Set(["impolite_address", "politeness_rate", "missing_greeting", "missing_closing"]);
const SETTINGS_KEY = "zhijian.alerting";
const NOTE_MAX = 2000;  // the API's limit on a note

// The wall's state, in one object: everything the view knows. Changed by addAlert/applyAction/reset (which
// also evict past MAX_ROWS and add team options); render() only draws it.
const view = {
  rows: new Map(),     // row key (conversation|message) → { key, alerts: Map(alert_id → alert), tr }
  rowOf: new Map(),    // alert_id → row key
  actions: new Map(),  // alert_id → action record (state, claimed_by, notes…)
  teams: new Set(),
  newestTs: 0,
  soundOn: false,
  lastAlarm: 0,
  unread: 0,
  pending: null,       // the scheduled render
  listening: false,    // the filters' listeners are on
};
const baseTitle = document.title;

export const wall = {
  newestTs: () => view.newestTs,
  setSound(on) { view.soundOn = on; },
  reset() {
    view.rows.clear(); view.rowOf.clear(); view.actions.clear(); view.newestTs = 0; view.unread = 0; document.title = baseTitle;
    el("alerts").replaceChildren();
    render();
  },
};

// -- alarm settings (localStorage) ---------------------------------------------------------------
export function alarmSettings() {
  let stored = {};
  try { stored = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}") || {}; } catch { stored = {}; }
  const interval = Number.isFinite(Number(stored.interval)) && stored.interval !== null ? Number(stored.interval) : 30;
  const rules = {};
  for (const rule of RULE_KEYS) {
    const on = !QUIET_BY_DEFAULT.has(rule);
    rules[rule] = { flash: on, sound: on, ...((stored.rules || {})[rule] || {}) };
  }
  return { interval: Math.max(0, interval), rules };
}

export function saveAlarmSettings(settings) {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

function beep() {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  } catch (err) { console.warn("no audio", err); }
}

function alarm(row) {
  const alert = primary(row);
  el("announcer").textContent = t("new_critical", { rule: rules(row).map(ruleName).join("、"),
                                                     agent: alert.agent_id || "—", conv: alert.conversation_id });
  const settings = alarmSettings();
  const now = Date.now();
  if (now - view.lastAlarm < settings.interval * 1000) return;  // quiet: at most once per interval
  const wanted = rules(row).map((r) => settings.rules[r] || { flash: true, sound: true });
  const flash = wanted.some((w) => w.flash), sound = view.soundOn && wanted.some((w) => w.sound);
  if (!flash && !sound) return;
  view.lastAlarm = now;
  if (flash) {
    const top = el("top");
    top.classList.remove("alarm");
    void top.offsetWidth;  // restart the animation
    top.classList.add("alarm");
    top.dataset.alarms = String(Number(top.dataset.alarms || 0) + 1);
  }
  if (sound) beep();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) { view.unread = 0; document.title = baseTitle; }
});

// -- the model ---------------------------------------------------------------------------------------
const keyOf = (alert) => (alert.message_id ? `${alert.conversation_id}|${alert.message_id}` : alert.alert_id);

function primary(row) {
  let best = null;
  for (const a of row.alerts.values()) {
    if (!best || (RANK[a.severity] || 0) > (RANK[best.severity] || 0)) best = a;
  }
  return best;
}
const severityOf = (row) => primary(row).severity;
function rules(row) {
  const sorted = [...row.alerts.values()].sort((a, b) => (RANK[b.severity] || 0) - (RANK[a.severity] || 0));
  return [...new Set(sorted.map((a) => a.rule))];
}
const tsOf = (row) => Math.min(...[...row.alerts.values()].map((a) => a.ts_ms || 0));

function stateOf(row) {
  const records = [...row.alerts.keys()].map((id) => view.actions.get(id) || { state: "open" });
  if (records.every((r) => FINAL.has(r.state))) {
    const first = view.actions.get(primary(row).alert_id) || records[0];
    return { state: first.state, who: first.resolved_by || first.claimed_by || "" };
  }
  const claimed = records.find((r) => r.state === "claimed" || FINAL.has(r.state));
  if (claimed) return { state: "claimed", who: claimed.claimed_by || "" };
  return { state: "open", who: "" };
}

function notesOf(row) {
  const seen = new Set();
  const out = [];
  for (const id of row.alerts.keys()) {
    for (const n of (view.actions.get(id) || {}).notes || []) {
      const key = `${n.by}|${n.at}|${n.text}`;
      if (!seen.has(key)) { seen.add(key); out.push(n); }
    }
  }
  return out.sort((a, b) => String(a.at).localeCompare(String(b.at)));
}

// fresh: it arrived live (not from a reload or a replay after a reconnect)
export function addAlert(alert, fresh) {
  if (!alert || typeof alert !== "object" || !alert.alert_id || !alert.conversation_id) return;
  const key = view.rowOf.get(alert.alert_id) || keyOf(alert);
  const row = view.rows.get(key) || { key, alerts: new Map(), tr: null };
  const known = row.alerts.get(alert.alert_id);
  if (known && (known.revision || 0) >= (alert.revision || 0)) return;  // de-duplicated by (alert_id, revision)
  const wasCritical = row.alerts.size > 0 && severityOf(row) === "critical";
  const isNewRow = row.alerts.size === 0;
  row.alerts.set(alert.alert_id, alert);
  view.rows.set(key, row);
  view.rowOf.set(alert.alert_id, key);
  if (alert.action) view.actions.set(alert.alert_id, alert.action);
  learnTeam(alert.team_id);
  if (isNewRow) evict();
  view.newestTs = Math.max(view.newestTs, alert.ts_ms || 0);
  if (!fresh || known) { schedule(); return; }
  row.fresh = true;
  if (isNewRow && document.hidden) { view.unread += 1; document.title = `(${view.unread}) ${baseTitle}`; }
  if (severityOf(row) === "critical" && !wasCritical && !FINAL.has(stateOf(row).state)) alarm(row);
  schedule();
}

export function applyAction(action) {
  if (!action || !action.alert_id) return;
  view.actions.set(action.alert_id, action);
  schedule();
}

// -- acting on a row ------------------------------------------------------------------------------
async function act(row, verb, answered = null) {
  const mine = session.user ? session.user.username : "";
  let note = answered ?? "";
  if (verb !== "claim" && answered === null) {
    const titles = { note: t("note_title"), resolved: t("resolve"), false_positive: t("false_positive") };
    const answer = await ask({ title: titles[verb], ok: verb === "note" ? t("save") : titles[verb],
      fields: [{ name: "note", type: "textarea", maxLength: NOTE_MAX, required: verb === "note",
                 label: verb === "note" ? t("note_prompt") : t("resolve_prompt") }] });
    if (answer === null) return;  // cancelled: nothing happens
    note = answer.note;
  }
  const run = async () => {
    const ids = [...row.alerts.keys()];
    const lead = primary(row).alert_id;
    const todo = verb === "note" ? [lead] : ids.filter((id) => {
      const current = view.actions.get(id) || { state: "open" };
      if (FINAL.has(current.state)) return false;
      return !(verb === "claim" && current.state === "claimed" && current.claimed_by === mine);
    });
    for (const id of todo.sort((a, b) => (a === lead ? -1 : b === lead ? 1 : 0))) {
      const path = verb === "claim" ? "claim" : verb === "note" ? "note" : `resolve?outcome=${verb}`;
      const body = { note: id === lead ? note : "" };
      applyAction(await api(`/api/alerts/${encodeURIComponent(id)}/${path}`, { method: "POST", body }));
    }
  };
  try {
    await run();
  } catch (err) {
    showError(t("action_failed", { why: message(err) }), () => act(row, verb, note));  // a retry keeps what was typed
  }
}

// -- the rows, built once and updated in place -------------------------------------------------------
function button(verb, label) {
  return node("button", { className: "act", text: label, attrs: { type: "button", "data-act": verb } });
}

function build(row) {
  const tr = node("tr", { className: "alert-row" });
  const conv = node("a", { className: "link mono conv-link" });
  conv.addEventListener("click", (event) => {
    event.preventDefault();
    const a = primary(row);
    openConversation(a.conversation_id, a.message_id);
  });
  const handling = node("td", { className: "handling" }, node("span", { className: "state" }),
                        node("span", { className: "buttons" }, button("claim", ""), button("note", ""),
                             button("resolved", ""), button("false_positive", "")));
  for (const b of handling.querySelectorAll("button")) b.addEventListener("click", () => act(row, b.dataset.act));
  tr.append(node("td", { className: "c-sev" }), node("td", { className: "c-rule" }), node("td", { className: "c-time" }),
            node("td", { className: "c-agent" }), node("td", { className: "c-team" }),
            node("td", { className: "c-conv" }, conv), node("td", { className: "excerpt" }), handling);
  row.tr = tr;
  return tr;
}

function setText(element, text) { if (element.textContent !== text) element.textContent = text; }

function excerptNodes(row) {
  const lead = primary(row);
  const text = lead.excerpt || "";
  const spans = [];
  for (const a of row.alerts.values()) {
    const [start, end] = Array.isArray(a.span) ? a.span : [0, 0];
    if ((a.excerpt || "") === text && end > start) spans.push([start, end]);
  }
  const out = [];
  for (const a of row.alerts.values()) {
    const detail = a.detail || {};
    if (a.rule === "slow_first_response") out.push(`${t("first_response", { n: seconds(detail.first_response_s) })} · `);
    if (a.rule === "customer_waiting") {
      const state = a.state === "cleared" ? ` · ${t("answered")}` : a.state === "unanswered" ? ` · ${t("unanswered")}` : "";
      out.push(`${t("waited", { n: wholeSeconds(detail.waited_s || 0) })}${state} · `);
    }
  }
  const wrap = node("span", { className: "text" }, ...marked(text, spans));
  const notes = notesOf(row);
  const list = notes.length ? node("ul", { className: "notes", attrs: { "aria-label": t("notes") } },
    ...notes.map((n) => node("li", { text: `${n.by}：${n.text}` }))) : null;
  return [...out, wrap, list];
}

function update(row) {
  const tr = row.tr || build(row);
  const lead = primary(row);
  const { state, who } = stateOf(row);
  const attrs = { "data-alert-id": lead.alert_id, "data-severity": lead.severity, "data-state": state,
                  "data-alert-state": lead.state || "open", "data-conversation": lead.conversation_id,
                  "data-message": lead.message_id || "", "data-findings": String(row.alerts.size) };
  for (const [name, value] of Object.entries(attrs)) if (tr.getAttribute(name) !== value) tr.setAttribute(name, value);
  const cells = tr.children;
  const sev = cells[0].firstChild || cells[0].appendChild(node("span"));
  sev.className = `sev sev-${lead.severity}`;
  setText(sev, severityName(lead.severity));
  const ruleText = rules(row).map(ruleName).join("、");
  if (cells[1].dataset.text !== ruleText) {
    cells[1].dataset.text = ruleText;
    cells[1].replaceChildren(...rules(row).map((r) => node("span", { className: "rule", text: ruleName(r),
                                                                       attrs: { "data-rule": r } })));
  }
  setText(cells[2], clock(tsOf(row)));
  setText(cells[3], lead.agent_id || "—");
  setText(cells[4], lead.team_id || "—");
  const link = cells[5].firstChild;
  setText(link, lead.conversation_id);
  link.setAttribute("href", `#conversation=${encodeURIComponent(lead.conversation_id)}`);
  const signature = JSON.stringify([[...row.alerts.values()].map((a) => [a.alert_id, a.revision || 0, a.state]),
                                    notesOf(row).length, document.documentElement.lang]);
  if (cells[6].dataset.signature !== signature) {
    cells[6].dataset.signature = signature;
    cells[6].replaceChildren(...excerptNodes(row).filter(Boolean));
  }
  setText(cells[7].firstChild, t(`state_${state}`, { who }));
  const allowed = session.can("claim");
  const labels = { claim: t("claim"), note: t("note"), resolved: t("resolve"), false_positive: t("false_positive") };
  for (const b of cells[7].querySelectorAll("button")) {
    const verb = b.dataset.act;
    setText(b, labels[verb]);
    b.hidden = !allowed || (FINAL.has(state) && verb !== "note") || (verb === "claim" && state !== "open");
  }
  if (row.fresh) { tr.classList.remove("fresh"); void tr.offsetWidth; tr.classList.add("fresh"); row.fresh = false; }
  return tr;
}

function matches(row) {
  const alert = primary(row);
  const team = el("f-team").value, agent = el("f-agent").value.trim(), rule = el("f-rule").value,
        severity = el("f-severity").value, status = el("f-status").value;
  const { state, who } = stateOf(row);
  const mine = session.user ? session.user.username : "";
  const statusOk = status === "all" || (status === "handled" ? FINAL.has(state)
    : status === "mine" ? state === "claimed" && who === mine : !FINAL.has(state));
  return statusOk && (!team || alert.team_id === team) && (!agent || (alert.agent_id || "").includes(agent))
      && (!rule || [...row.alerts.values()].some((a) => a.rule === rule)) && (!severity || alert.severity === severity);
}

function schedule() {
  if (view.pending) return;
  view.pending = setTimeout(() => { view.pending = null; render(); }, 30);
}

export function render() {
  clearTimeout(view.pending);
  view.pending = null;
  const ordered = [...view.rows.values()].sort((a, b) => tsOf(b) - tsOf(a));
  const shown = ordered.filter(matches);
  const focused = document.activeElement;
  const body = el("alerts");
  const wanted = new Set();
  let at = body.firstChild;
  for (const row of shown) {
    const tr = update(row);
    wanted.add(tr);
    if (tr === at) at = at.nextSibling;
    else body.insertBefore(tr, at);  // only rows out of place move: a new row on top moves nothing else
  }
  for (const child of [...body.children]) if (!wanted.has(child)) child.remove();
  if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({ preventScroll: true });
  el("empty").hidden = shown.length > 0;
  el("count").textContent = t("alerts_count", { n: shown.length });
  // what the filters hold, on the summary line (the only line of them shown on a phone until opened)
  el("filter-summary").textContent = ["f-status", "f-team", "f-agent", "f-rule", "f-severity"].map((id) => {
    const input = el(id);
    if (input.tagName === "SELECT") return input.value || id === "f-status" ? input.selectedOptions[0]?.textContent : "";
    return input.value.trim();
  }).filter(Boolean).join(" · ");
}

// -- changing the state: the team filter learns new teams, the oldest rows leave past MAX_ROWS -------------
function learnTeam(team) {
  if (!team || view.teams.has(team)) return;
  view.teams.add(team);
  const select = el("f-team");
  const next = [...select.options].slice(1).find((o) => o.value.localeCompare(team) > 0) || null;  // kept sorted
  select.insertBefore(node("option", { text: team, attrs: { value: team } }), next);
}

function evict() {
  if (view.rows.size <= MAX_ROWS) return;
  const ordered = [...view.rows.values()].sort((a, b) => tsOf(b) - tsOf(a));
  for (const stale of ordered.slice(MAX_ROWS)) {
    for (const id of stale.alerts.keys()) view.rowOf.delete(id);
    view.rows.delete(stale.key);
  }
}

export function relabel() {
  for (const row of view.rows.values()) if (row.tr) { row.tr.children[1].dataset.text = ""; }
  render();
}


export function setupFilters() {
  const ruleSelect = el("f-rule");
  const chosen = ruleSelect.value;
  ruleSelect.replaceChildren(ruleSelect.options[0], ...RULE_KEYS.map((r) => node("option", { text: ruleName(r), attrs: { value: r } })));
  ruleSelect.value = chosen;
  if (view.listening) return;
  view.listening = true;
  for (const id of ["f-status", "f-team", "f-agent", "f-rule", "f-severity"]) el(id).addEventListener("input", render);
  if (window.matchMedia("(max-width: 767px)").matches) el("filter-box").open = false;  // phones: one line
}

// -- the settings dialog ---------------------------------------------------------------------------------
export function setupSettings() {
  const dialog = el("settings");
  const fill = () => {
    const settings = alarmSettings();
    el("settings-interval").value = String(settings.interval);
    el("settings-rules").replaceChildren(...RULE_KEYS.map((rule) => {
      const box = (kind) => {
        const input = node("input", { attrs: { type: "checkbox", "data-rule": rule, "data-kind": kind,
                                               "aria-label": `${ruleName(rule)} ${t(`settings_${kind}`)}` } });
        input.checked = settings.rules[rule][kind];
        return node("td", {}, input);
      };
      return node("tr", {}, node("td", { text: ruleName(rule) }), box("flash"), box("sound"));
    }));
  };
  const save = () => {
    const settings = alarmSettings();
    const interval = Number(el("settings-interval").value);
    settings.interval = Number.isFinite(interval) && interval >= 0 ? interval : 30;
    for (const input of el("settings-rules").querySelectorAll("input")) {
      settings.rules[input.dataset.rule][input.dataset.kind] = input.checked;
    }
    saveAlarmSettings(settings);
  };
  el("settings-open").addEventListener("click", () => { fill(); dialog.showModal(); });
  el("settings-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("change", save);
}

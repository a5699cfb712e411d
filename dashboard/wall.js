// The alert wall: live alerts grouped per conversation and rule, filters, claim → resolve.
import { api, clock, el, marked, node, session } from "./api.js";
import { RULE_KEYS, ruleName, severityName, t } from "./i18n.js";
import { openConversation } from "./conversation.js";

const MAX_GROUPS = 500;
const groups = new Map();      // `${conversation_id}|${rule}` → { alerts: Map(alert_id → alert), latest }
const groupOf = new Map();     // alert_id → group key
const actions = new Map();     // alert_id → action record
const teams = new Set();
let newestTs = 0;
let soundOn = false;

export const wall = {
  newestTs: () => newestTs,
  setSound(on) { soundOn = on; },
  reset() { groups.clear(); groupOf.clear(); actions.clear(); newestTs = 0; render(); },
};

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

export function addAlert(alert, fresh) {
  if (!alert || !alert.alert_id) return;
  const key = `${alert.conversation_id}|${alert.rule}`;
  const group = groups.get(key) || { alerts: new Map(), latest: null };
  const known = group.alerts.get(alert.alert_id);
  if (known && (known.revision || 0) >= (alert.revision || 0)) return;  // newest revision wins
  group.alerts.set(alert.alert_id, alert);
  if (!group.latest || alert.ts_ms >= group.latest.ts_ms || group.latest.alert_id === alert.alert_id) group.latest = alert;
  group.fresh = fresh;
  groups.set(key, group);
  groupOf.set(alert.alert_id, key);
  if (alert.action) actions.set(alert.alert_id, alert.action);
  if (alert.team_id) teams.add(alert.team_id);
  newestTs = Math.max(newestTs, alert.ts_ms || 0);
  if (fresh && alert.severity === "critical" && !known) {
    el("top").classList.remove("alarm");
    void el("top").offsetWidth;  // restart the animation
    el("top").classList.add("alarm");
    if (soundOn) beep();
  }
}

export function applyAction(action) {
  actions.set(action.alert_id, action);
}

function actionCell(group) {
  const alert = group.latest;
  const action = actions.get(alert.alert_id) || { state: "open" };
  const cell = node("td", { className: "handling" });
  const who = action.resolved_by || action.claimed_by || "";
  cell.append(node("span", { className: "state", text: t(`state_${action.state}`, { who }) }));
  if (!session.can("claim") || action.state === "resolved" || action.state === "false_positive") return cell;
  const act = async (verb) => {
    const note = verb === "claim" ? "" : (window.prompt(t("note_prompt")) || "");
    const path = verb === "claim" ? "claim" : `resolve?outcome=${verb}`;
    try {
      applyAction(await api(`/api/alerts/${encodeURIComponent(alert.alert_id)}/${path}`, { method: "POST", body: { note } }));
      render();
    } catch (err) { window.alert(String(err.message || err)); }
  };
  if (action.state === "open") cell.append(node("button", { className: "small", text: t("claim"), attrs: { "data-act": "claim" } }));
  cell.append(node("button", { className: "small", text: t("resolve"), attrs: { "data-act": "resolved" } }),
              node("button", { className: "small", text: t("false_positive"), attrs: { "data-act": "false_positive" } }));
  for (const button of cell.querySelectorAll("button")) button.onclick = () => act(button.dataset.act);
  return cell;
}

function excerpt(alert) {
  const td = node("td", { className: "excerpt" });
  const [start, end] = Array.isArray(alert.span) ? alert.span : [0, 0];
  td.append(...marked(alert.excerpt || "", end > start ? [[start, end]] : []));
  const detail = alert.detail || {};
  if (alert.rule === "slow_first_response") td.prepend(`${t("first_response", { n: detail.first_response_s })} · `);
  if (alert.rule === "customer_waiting") {
    const state = alert.state === "cleared" ? ` · ${t("answered")}` : alert.state === "unanswered" ? ` · ${t("unanswered")}` : "";
    td.prepend(`${t("waited", { n: Math.round(detail.waited_s || 0) })}${state} · `);
  }
  return td;
}

function row(group) {
  const alert = group.latest;
  const action = actions.get(alert.alert_id) || { state: "open" };
  const tr = node("tr", { attrs: { "data-alert-id": alert.alert_id, "data-severity": alert.severity,
                                   "data-state": action.state, "data-alert-state": alert.state || "open",
                                   "data-conversation": alert.conversation_id } });
  if (group.fresh) tr.className = "fresh";
  const rule = node("td", {}, ruleName(alert.rule));
  if (group.alerts.size > 1) rule.append(node("span", { className: "repeats", text: t("repeats", { n: group.alerts.size }) }));
  const conv = node("a", { className: "link mono", text: alert.conversation_id });
  conv.onclick = () => openConversation(alert.conversation_id, alert.message_id);
  tr.append(node("td", {}, node("span", { className: `sev sev-${alert.severity}`, text: severityName(alert.severity) })),
            rule, node("td", { text: clock(alert.ts_ms) }), node("td", { text: alert.agent_id || "—" }),
            node("td", { text: alert.team_id || "—" }), node("td", {}, conv), excerpt(alert), actionCell(group));
  return tr;
}

function matches(alert) {
  const team = el("f-team").value, agent = el("f-agent").value.trim(), rule = el("f-rule").value,
        severity = el("f-severity").value;
  return (!team || alert.team_id === team) && (!agent || (alert.agent_id || "").includes(agent))
      && (!rule || alert.rule === rule) && (!severity || alert.severity === severity);
}

export function render() {
  const ordered = [...groups.values()].sort((a, b) => b.latest.ts_ms - a.latest.ts_ms);
  for (const stale of ordered.slice(MAX_GROUPS)) {
    for (const id of stale.alerts.keys()) groupOf.delete(id);
    groups.delete(`${stale.latest.conversation_id}|${stale.latest.rule}`);
  }
  const shown = ordered.slice(0, MAX_GROUPS).filter((g) => matches(g.latest));
  el("alerts").replaceChildren(...shown.map(row));
  for (const g of groups.values()) g.fresh = false;
  el("empty").hidden = shown.length > 0;
  el("count").textContent = t("alerts_count", { n: shown.length });
  const teamSelect = el("f-team");
  for (const team of [...teams].sort()) {
    if (![...teamSelect.options].some((o) => o.value === team)) teamSelect.append(node("option", { text: team, attrs: { value: team } }));
  }
}

let listening = false;

export function setupFilters() {
  const ruleSelect = el("f-rule");
  const chosen = ruleSelect.value;
  ruleSelect.replaceChildren(ruleSelect.options[0], ...RULE_KEYS.map((r) => node("option", { text: ruleName(r), attrs: { value: r } })));
  ruleSelect.value = chosen;
  if (listening) return;
  listening = true;
  for (const id of ["f-team", "f-agent", "f-rule", "f-severity"]) el(id).addEventListener("input", render);
}

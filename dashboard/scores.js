// The scoreboard: live running scores per agent with a sparkline of the shift, and one agent's day.
import { api, el, node } from "./api.js";
import { ruleName, t } from "./i18n.js";
import { openConversation } from "./conversation.js";

let refresh = null;

function sparkline(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "28");
  svg.setAttribute("class", "spark");
  if (points.length) {
    const xs = points.map((p, i) => (points.length === 1 ? 60 : 4 + (112 * i) / (points.length - 1)));
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map((p, i) => `${xs[i].toFixed(1)},${(26 - (24 * (p.mean_score || 0)) / 100).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#3e9ef5");
    line.setAttribute("stroke-width", "2");
    svg.append(line);
  }
  return svg;
}

async function load() {
  const body = await api("/api/agents");
  el("scoreboard").replaceChildren(...body.agents.map((a) => {
    const tr = node("tr", { attrs: { "data-agent-id": a.agent_id } },
      node("td", { text: a.agent_id }), node("td", { text: a.team_id || "—" }),
      node("td", { className: "num", text: a.mean_score ?? "—" }), node("td", { className: "num", text: a.conversations }),
      node("td", { className: "num", text: a.fatal }),
      node("td", { className: "num", text: a.first_response_mean_s != null ? `${a.first_response_mean_s} s` : "—" }),
      node("td", { className: "num", text: a.reply_rate != null ? `${Math.round(a.reply_rate * 100)}%` : "—" }),
      node("td", {}, sparkline(a.by_hour || [])));
    tr.onclick = () => showAgent(a.agent_id);
    return tr;
  }));
  el("scores-empty").hidden = body.agents.length > 0;
}

async function showAgent(agentId) {
  const a = await api(`/api/agents/${encodeURIComponent(agentId)}`);
  const panel = el("agent-detail");
  const dl = (entries) => node("dl", {}, ...entries.flatMap(([k, v]) => [node("dt", { text: k }), node("dd", { text: v ?? "—" })]));
  const findings = node("ol", { className: "findings" }, ...a.recent_findings.map((f) => {
    const li = node("li", {}, node("a", { className: "link", text: `${ruleName(f.label)} · ${f.matched || f.conversation_id}` }));
    li.querySelector("a").onclick = () => openConversation(f.conversation_id, f.message_id);
    return li;
  }));
  panel.replaceChildren(node("h2", { text: `${t("agent")} ${a.agent_id}` }),
    dl([[t("mean_score"), a.mean_score], [t("conversations"), a.conversations], [t("fatal"), a.fatal],
        [t("first_response_mean"), a.first_response_mean_s], [t("reply_rate"), a.reply_rate]]),
    node("h2", { text: t("sections") }), dl(Object.entries(a.sections || {})),
    node("h2", { text: t("labels") }), dl(Object.entries(a.labels || {}).map(([k, v]) => [ruleName(k), v])),
    node("h2", { text: t("recent_findings") }), findings);
  panel.hidden = false;
}

export function showScores(visible) {
  clearInterval(refresh);
  if (!visible) return;
  load().catch((err) => console.warn("scoreboard", err));
  refresh = setInterval(() => load().catch((err) => console.warn("scoreboard", err)), 15000);
}

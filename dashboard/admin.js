// The 管理 tab, on existing endpoints: the rules in force (view, edit with the validation error shown,
// history), users (list, add) for admins, and the audit log for QA.
import { ApiError, api, el, message, node, session } from "./api.js";
import { roleName, t } from "./i18n.js";

const ROLES = ["agent", "floor_lead", "supervisor", "qa", "admin"];

export function adminAllowed() {
  return session.can("rules") || session.can("users") || session.can("decide_appeal");
}

function table(headers, rows) {
  return node("table", { className: "admin-table" },
    node("thead", {}, node("tr", {}, ...headers.map((h) => node("th", { text: h })))),
    node("tbody", {}, ...rows.map((cells) => node("tr", {}, ...cells.map((c) => node("td", { text: c ?? "—" }))))));
}

async function loadRules() {
  const panel = el("admin-rules");
  panel.hidden = !session.can("view");
  const [current, history] = await Promise.all([api("/api/rules"), api("/api/rules/history")]);
  el("rules-version").textContent = t("rules_version", { version: current.version, revision: current.revision ?? "—" });
  const editor = el("rules-document");
  editor.value = JSON.stringify(current.document, null, 2);
  editor.readOnly = !session.can("rules");
  el("rules-save").hidden = !session.can("rules");
  el("rules-error").textContent = "";
  el("rules-history").replaceChildren(table([t("revision"), t("author"), t("at")],
    (history.revisions || []).map((r) => [String(r.revision), r.author, r.created_at])));
}

async function saveRules() {
  const out = el("rules-error");
  out.textContent = "";
  let document;
  try {
    document = JSON.parse(el("rules-document").value);
  } catch (err) {
    out.textContent = t("rules_bad_json", { why: String(err.message || err) });
    return;
  }
  try {
    const saved = await api("/api/rules", { method: "PUT", body: document });
    out.textContent = "";
    el("rules-saved").textContent = t("rules_saved", { version: saved.version });
    await loadRules();
  } catch (err) {
    // the server's reason for a 422 is the rule-set validator's sentence: show it as it is
    out.textContent = err instanceof ApiError && err.status === 422 ? t("rules_invalid", { why: err.message }) : message(err);
  }
}

async function loadUsers() {
  el("admin-users").hidden = !session.can("users");
  if (!session.can("users")) return;
  const body = await api("/api/users");
  el("users-list").replaceChildren(table([t("username"), t("display_name"), t("role"), t("team"), t("agent")],
    body.users.map((u) => [u.username, u.display_name, roleName(u.role), u.team_id, u.agent_id])));
}

async function addUser(event) {
  event.preventDefault();
  const out = el("user-error");
  out.textContent = "";
  const value = (id) => el(id).value.trim() || null;
  try {
    await api("/api/users", { method: "POST", body: {
      username: value("u-name"), password: el("u-password").value, role: el("u-role").value,
      team_id: value("u-team"), agent_id: value("u-agent"), display_name: value("u-display") } });
    el("user-form").reset();
    await loadUsers();
  } catch (err) { out.textContent = message(err); }
}

async function loadAudit() {
  el("admin-audit").hidden = !session.can("decide_appeal");
  if (!session.can("decide_appeal")) return;
  const body = await api("/api/audit");
  const entries = (body.entries || []).slice(-200).reverse();  // newest first
  el("audit-list").replaceChildren(table([t("at"), t("actor"), t("audit_action"), t("subject"), t("detail")],
    entries.map((e) => [e.at, e.actor, e.action, e.subject, JSON.stringify(e.detail)])));
}

const view = { wired: false };  // the admin view's state: whether its forms are wired
export function showAdmin(visible) {
  if (!visible) return;
  if (!view.wired) {
    view.wired = true;
    el("rules-save").addEventListener("click", saveRules);
    el("user-form").addEventListener("submit", addUser);
    el("u-role").replaceChildren(...ROLES.map((r) => node("option", { text: roleName(r), attrs: { value: r } })));
  }
  for (const [load, what] of [[loadRules, "rules"], [loadUsers, "users"], [loadAudit, "audit"]]) {
    load().catch((err) => { el(`${what}-status`).textContent = message(err); });
  }
}

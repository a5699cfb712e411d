// Search for the floor: a conversation by its id, an order number or a keyword in the transcript
// (GET /api/search, scoped by the server like every list). Results link to the conversation view at the
// matching message; "更多结果" pages on with the server's cursor.
//
// One state object; actions change it, then render() draws it (render only draws).
import { api, el, marked, message, node } from "./api.js";
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { openConversation } from "./conversation.js";

const PAGE = 20;

export function createSearchState() {
  return { q: "", results: [], next: null, loading: false, error: "", asked: 0 };
}

function result(hit) {
  const link = node("a", { className: "link", text: hit.conversation_id,
                           attrs: { href: `#conversation=${encodeURIComponent(hit.conversation_id)}`,
                                    "data-conversation-id": hit.conversation_id } });
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openConversation(hit.conversation_id, hit.message_id || undefined);
  });
  const meta = [hit.agent_id ? `${t("agent")} ${hit.agent_id}` : "", hit.team_id ? `${t("team")} ${hit.team_id}` : "",
                hit.status ? t(`status_${hit.status}`) : "", dateTime(hit.ts_ms ?? hit.last_match_ms),
                hit.matches ? t("search_matches", { n: hit.matches }) : t("search_id_match")].filter(Boolean).join(" · ");
  const [start, end] = Array.isArray(hit.match) ? hit.match : [0, 0];
  const said = hit.excerpt ? node("span", { className: "excerpt" },
    node("span", { className: "sender", text: `${hit.sender === "agent" ? hit.agent_id || t("agent") : t(hit.sender || "customer")}：` }),
    ...marked(hit.excerpt, [[start, end]])) : null;
  return node("li", { attrs: { "data-conversation-id": hit.conversation_id } }, link,
              node("span", { className: "meta", text: meta }), said);
}

export function renderSearch(state) {
  const panel = el("search-results");
  panel.hidden = !state.q;
  if (!state.q) return;
  panel.setAttribute("aria-busy", String(state.loading));
  el("search-summary").textContent = state.error || (state.loading && !state.results.length ? t("loading")
    : state.results.length ? t("search_count", { n: state.results.length }) : t("search_none"));
  el("search-list").replaceChildren(...state.results.map(result));
  el("search-more").hidden = !state.next || state.loading;
}

// Wire the box and the panel; returns { state, clear } (clear: signed out).
export function setupSearch() {
  const state = createSearchState();
  const run = async (more) => {
    const asked = ++state.asked;  // a newer search wins over a slow older answer
    state.loading = true;
    state.error = "";
    renderSearch(state);
    const params = new URLSearchParams({ q: state.q, limit: String(PAGE) });
    if (more && state.next) params.set("before", state.next);
    try {
      const body = await api(`/api/search?${params}`);
      if (asked !== state.asked) return;
      state.results = more ? [...state.results, ...body.results] : body.results;
      state.next = body.next_before;
    } catch (err) {
      if (asked !== state.asked) return;
      state.error = t("action_failed", { why: message(err) });
    }
    state.loading = false;
    renderSearch(state);
  };
  const clear = () => {
    state.asked += 1;
    Object.assign(state, createSearchState(), { asked: state.asked });
    el("search-q").value = "";
    renderSearch(state);
  };
  el("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = el("search-q").value.trim();
    if (!q) { clear(); return; }
    state.q = q;
    state.results = [];
    state.next = null;
    run(false);
  });
  el("search-q").addEventListener("keydown", (event) => { if (event.key === "Escape" && state.q) clear(); });
  el("search-more").addEventListener("click", () => run(true));
  el("search-close").addEventListener("click", () => { clear(); el("search-q").focus(); });
  document.addEventListener("zhijian:lang", () => renderSearch(state));
  return { state, clear };
}

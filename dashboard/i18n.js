// Chinese by default, English on request. Elements carry data-i18n="key" (text) or
// data-i18n-placeholder="key"; code calls t("key", {vars}).
const STRINGS = {
  zh: {
    title: "质检", subtitle: "实时质检", offline: "未连接", live: "实时", connecting: "连接中…", reconnecting: "重连中…",
    username: "用户名", password: "密码", enter: "登录", logout: "退出", wrong_login: "用户名或密码错误",
    bad_token: "令牌无效，请重新登录", tab_wall: "告警墙", tab_scores: "坐席排行", sound: "声音提示",
    lang: "EN", severity: "级别", rule: "规则", time: "时间", agent: "坐席", team: "组", conversation: "会话",
    content: "内容", handling: "处理", all_teams: "全部班组", all_rules: "全部规则", all_severities: "全部级别",
    agent_filter: "坐席筛选", no_alerts: "暂无告警，等待实时数据…", alerts_count: "{n} 条告警",
    waiting_title: "等待中的顾客", no_waiting: "没有顾客在等待", unassigned: "未分配", seconds: "{n} 秒",
    claim: "认领", resolve: "解决", false_positive: "误报", note: "备注", note_prompt: "备注（可选）",
    state_open: "待处理", state_claimed: "{who} 已认领", state_resolved: "{who} 已解决",
    state_false_positive: "{who} 标为误报", repeats: "×{n}", waited: "已等待 {n} 秒", answered: "已回复",
    unanswered: "未回复即结束", first_response: "首次响应 {n} 秒",
    scores_title: "坐席实时得分", mean_score: "平均分", conversations: "会话数", fatal: "致命", reply_rate: "回复率",
    first_response_mean: "首响均值", shift: "班次走势", no_scores: "今天还没有结束的会话", sections: "分项得分",
    labels: "问题分布", recent_findings: "最近问题", close: "关闭", transcript: "会话记录", customer: "顾客",
    bot: "机器人", transferred: "转接", ended: "结束", started: "开始", response: "响应 {n} 秒", late: "迟到",
    status_waiting: "等待中", status_open: "进行中", status_closed: "已结束", avg_response: "平均响应",
    waiting_now: "顾客已等待 {n} 秒", forbidden: "无权限", appeal: "申诉", appeal_prompt: "申诉理由",
    appeals_title: "待审申诉", accept: "通过", reject: "驳回", decision_prompt: "审核意见（可选）",
    finding_active: "有效", finding_appealed: "申诉中", finding_dismissed: "已撤销", finding_upheld: "维持",
    no_appeals: "没有待审申诉",
  },
  en: {
    title: "zhijian", subtitle: "live QA", offline: "offline", live: "live", connecting: "connecting…",
    reconnecting: "reconnecting…", username: "User name", password: "Password", enter: "Sign in", logout: "Sign out",
    wrong_login: "Wrong user name or password", bad_token: "Invalid token, please sign in again", tab_wall: "Alerts",
    tab_scores: "Scoreboard", sound: "Sound", lang: "中文", severity: "Severity", rule: "Rule", time: "Time",
    agent: "Agent", team: "Team", conversation: "Conversation", content: "Content", handling: "Handling",
    all_teams: "All teams", all_rules: "All rules", all_severities: "All severities", agent_filter: "Agent",
    no_alerts: "No alerts yet, waiting for live data…", alerts_count: "{n} alerts", waiting_title: "Customers waiting",
    no_waiting: "Nobody is waiting", unassigned: "unassigned", seconds: "{n} s", claim: "Claim", resolve: "Resolve",
    false_positive: "False positive", note: "Note", note_prompt: "Note (optional)", state_open: "Open",
    state_claimed: "claimed by {who}", state_resolved: "resolved by {who}",
    state_false_positive: "false positive ({who})", repeats: "×{n}", waited: "waited {n} s", answered: "answered",
    unanswered: "closed unanswered", first_response: "first response {n} s", scores_title: "Live agent scores",
    mean_score: "Mean", conversations: "Conversations", fatal: "Fatal", reply_rate: "Reply rate",
    first_response_mean: "First resp.", shift: "Shift", no_scores: "No closed conversations today",
    sections: "Sections", labels: "Findings by label", recent_findings: "Recent findings", close: "Close",
    transcript: "Transcript", customer: "Customer", bot: "Bot", transferred: "Transferred", ended: "Ended",
    started: "Started", response: "answered in {n} s", late: "late", status_waiting: "waiting",
    status_open: "open", status_closed: "closed", avg_response: "Avg response", waiting_now: "waiting {n} s",
    forbidden: "Not allowed", appeal: "Appeal", appeal_prompt: "Why is this finding wrong?",
    appeals_title: "Open appeals", accept: "Accept", reject: "Reject", decision_prompt: "Note (optional)",
    finding_active: "active", finding_appealed: "appealed", finding_dismissed: "dismissed",
    finding_upheld: "upheld", no_appeals: "No open appeals",
  },
};

const RULES = {
  zh: { banned_word: "禁忌用词", impolite_address: "称呼不当（你/您）", forbidden_phrase: "禁忌语句",
        conflict: "与顾客冲突", deflection: "推脱", pii_leak: "信息泄露", customer_anger: "顾客情绪激动（需安抚）",
        slow_first_response: "首次响应超时", customer_waiting: "顾客等待", unanswered_at_end: "回复中断",
        missing_greeting: "缺开头语", missing_closing: "缺结束语", politeness_rate: "礼貌用语不足" },
  en: { banned_word: "Banned word", impolite_address: "你 instead of 您", forbidden_phrase: "Forbidden phrase",
        conflict: "Conflict", deflection: "Deflection", pii_leak: "Data leak", customer_anger: "Angry customer",
        slow_first_response: "Slow first response", customer_waiting: "Customer waiting",
        unanswered_at_end: "Left unanswered", missing_greeting: "No greeting", missing_closing: "No closing",
        politeness_rate: "Politeness" },
};
const SEVERITIES = { zh: { critical: "严重", warning: "警告", info: "提示" },
                     en: { critical: "Critical", warning: "Warning", info: "Info" } };

let lang = localStorage.getItem("zhijian.lang") === "en" ? "en" : "zh";

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}
export const ruleName = (rule) => RULES[lang][rule] || rule;
export const severityName = (severity) => SEVERITIES[lang][severity] || severity;
export const currentLang = () => lang;

export function applyTranslations(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function toggleLang() {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("zhijian.lang", lang);
  applyTranslations();
  document.dispatchEvent(new CustomEvent("zhijian:lang"));
}

export const RULE_KEYS = Object.keys(RULES.zh);

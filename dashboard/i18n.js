// Chinese by default, English on request. Elements carry data-i18n="key" (text),
// data-i18n-placeholder="key" or data-i18n-label="key" (aria-label); code calls t("key", {vars}).
const STRINGS = {
  zh: {
    title: "质检", subtitle: "实时质检", offline: "未连接", live: "实时", connecting: "连接中…", interrupted: "数据中断",
    interrupted_banner: "数据中断：与服务器的实时连接已断开，正在重连。此刻看到的告警和等待队列可能不是最新的。",
    username: "用户名", password: "密码", enter: "登录", logout: "退出", wrong_login: "用户名或密码错误",
    bad_token: "登录已失效，请重新登录", session_ended: "登录已失效（已退出、改密码或账号停用），请重新登录",
    tab_wall: "告警墙", tab_scores: "坐席排行", sound: "声音提示", settings: "提醒设置",
    lang: "EN", severity: "级别", rule: "规则", time: "时间", agent: "坐席", team: "班组", conversation: "会话",
    content: "内容", handling: "处理", all_teams: "全部班组", all_rules: "全部规则", all_severities: "全部级别",
    agent_filter: "坐席筛选", no_alerts: "暂无告警，等待实时数据…", alerts_count: "{n} 条告警",
    waiting_title: "等待中的顾客", no_waiting: "没有顾客在等待", unassigned: "未分配", seconds: "{n} 秒",
    claim: "认领", resolve: "处理完成", false_positive: "误报", note: "备注", note_prompt: "备注内容",
    resolve_prompt: "处理说明（可选）",
    state_open: "待处理", state_claimed: "{who} 已认领", state_resolved: "{who} 已处理",
    state_false_positive: "{who} 标为误报", done_resolved: "已处理", done_false_positive: "标为误报",
    done_claimed: "已认领", waited: "已等待 {n}", answered: "已回复",
    unanswered: "未回复即结束", first_response: "首次响应 {n}",
    scores_title: "坐席实时得分", mean_score: "平均分", conversations: "会话数", fatal: "致命项", reply_rate: "回复率",
    first_response_mean: "平均首响", avg_response: "平响", shift: "班次走势", no_scores: "今天还没有结束的会话",
    sections: "分项得分", labels: "问题分布", recent_findings: "最近问题", close: "关闭", transcript: "会话记录",
    customer: "顾客", bot: "机器人", transferred: "转接", ended: "会话结束", started: "会话开始",
    response: "响应 {n}", late: "迟到",
    status_waiting: "等待中", status_open: "进行中", status_closed: "已结束",
    waiting_now: "顾客已等待 {n}", forbidden: "无权限", appeal: "申诉", appeal_prompt: "申诉理由",
    appeals_title: "待审申诉", accept: "通过", reject: "驳回", decision_prompt: "审核意见（可选）",
    finding_active: "已生效", finding_appealed: "申诉中", finding_dismissed: "已撤销", finding_upheld: "申诉驳回",
    no_appeals: "没有待审申诉", show_context: "查看会话",
    f_status: "处理状态", status_pending: "待处理", status_mine: "我认领的", status_handled: "已处理", status_all: "全部",
    notes: "备注", retry: "重试", dismiss: "知道了", loading: "加载中…",
    new_critical: "新的严重告警：{rule}，坐席 {agent}，会话 {conv}",
    settings_title: "提醒设置", settings_interval: "两次提醒至少间隔（秒）", settings_rule: "规则",
    settings_flash: "闪烁", settings_sound: "声音", settings_help: "只对严重告警提醒；声音需先勾选“声音提示”。",
    customer_gone: "顾客可能已离开", shop: "店铺", last_message: "顾客最后一句",
    score: "得分", score_total: "本会话得分 {n} / {max}", score_fatal: "致命项：本会话 0 分（{labels}）",
    deductions: "扣分", bonus: "亮点加分", not_scored: "尚未评分（会话结束后评分）", item_points: "{n} 分",
    alert_notes: "处理记录", appeal_reason: "申诉理由",
    err_network: "无法连接服务器，请检查网络后重试", err_claimed_by: "已被 {who} 认领",
    err_already: "该告警{state}，无需重复操作", err_appealed: "该问题已申诉过", err_not_found: "未找到（可能已删除或无权查看）",
    err_forbidden: "无权限执行此操作", err_conflict: "操作冲突，请刷新后重试", err_invalid: "输入有误：{detail}",
    err_server: "服务器出错（{status}），请稍后重试", err_http: "请求失败（{status}）",
    action_failed: "操作失败：{why}", date: "日期", shift_filter: "班次", filters: "筛选", all_shifts: "全部班次",
    open_chats: "进行中的会话", no_open_chats: "没有进行中的会话",
    tab_admin: "管理", rules_title: "质检规则", rules_document: "规则集（JSON）", rules_save: "保存为新版本",
    rules_history: "历史版本", rules_version: "当前版本 {version}（第 {revision} 版）", rules_saved: "已保存：{version}",
    rules_bad_json: "JSON 格式有误：{why}", rules_invalid: "规则未通过校验：{why}", revision: "版本", author: "修改人",
    at: "时间", users_title: "用户", display_name: "显示名", role: "角色", add_user: "添加用户",
    audit_title: "审计日志", actor: "操作人", audit_action: "操作", subject: "对象", detail: "详情",
    bonus_award: "亮点加分", bonus_points: "亮点加分（0–10 分）", bonus_note: "亮点说明",
    review_title: "人工质检 · 当日抽检样本", tab_review: "人工质检", review_reasons: "抽检原因", review_score: "得分",
    review_state: "状态", review_transcript: "会话记录", review_findings: "质检问题", review_add: "添加人工问题",
    review_label: "问题", review_message: "消息", review_add_button: "添加", review_items: "人工评分项",
    review_items_save: "保存评分", review_sign_off: "结果确认", review_confirm: "确认", review_reject: "驳回",
    review_to_review: "待质检", review_open: "质检中", review_signed_off: "已确认", review_pending: "待评分",
    review_empty: "当日没有抽检样本", review_fatal: "致命", review_manual: "人工", review_whole: "整通会话",
    review_confirmed: "已确认", review_rejected: "已驳回", review_undecided: "{n} 个问题待确认",
    review_points: "{score} 分", review_appeal_until: "坐席可申诉至 {at}",
    review_active: "待确认", review_review: "模型存疑", review_appealed: "申诉中", review_dismissed: "申诉通过",
    review_upheld: "申诉驳回",
    ok: "确定", cancel: "取消", save: "保存", field_required: "请填写此项", field_integer: "请输入整数",
    field_integer_range: "请输入 {min}–{max} 之间的整数", field_too_long: "最多 {n} 个字",
    note_title: "添加备注", appeal_submit: "提交申诉", accept_title: "通过申诉", reject_title: "驳回申诉",
    search: "搜索", search_label: "搜索会话", search_placeholder: "会话号、订单号或关键词",
    search_none: "没有找到匹配的会话", search_more: "更多结果", search_count: "找到 {n} 个会话",
    search_matches: "{n} 条消息匹配", search_id_match: "会话号匹配", search_close: "清除搜索",
  },
  en: {
    title: "zhijian", subtitle: "live QA", offline: "offline", live: "live", connecting: "connecting…",
    interrupted: "Data interrupted",
    interrupted_banner: "Data interrupted: the live connection to the server is lost; reconnecting. Alerts and the waiting "
      + "board may be out of date.",
    username: "User name", password: "Password", enter: "Sign in", logout: "Sign out",
    wrong_login: "Wrong user name or password", bad_token: "Signed out, please sign in again",
    session_ended: "Your session ended (signed out, password changed or account disabled); please sign in again",
    tab_wall: "Alerts", tab_scores: "Scoreboard", sound: "Sound", settings: "Alert settings", lang: "中文",
    severity: "Severity", rule: "Rule", time: "Time", agent: "Agent", team: "Team", conversation: "Conversation",
    content: "Content", handling: "Handling", all_teams: "All teams", all_rules: "All rules",
    all_severities: "All severities", agent_filter: "Agent", no_alerts: "No alerts yet, waiting for live data…",
    alerts_count: "{n} alerts", waiting_title: "Customers waiting", no_waiting: "Nobody is waiting",
    unassigned: "unassigned", seconds: "{n} s", claim: "Claim", resolve: "Resolve", false_positive: "False positive",
    note: "Note", note_prompt: "Note", resolve_prompt: "How was it handled? (optional)", state_open: "Open",
    state_claimed: "claimed by {who}", state_resolved: "resolved by {who}", state_false_positive: "false positive ({who})",
    done_resolved: "resolved", done_false_positive: "marked a false positive", done_claimed: "claimed",
    waited: "waited {n}", answered: "answered", unanswered: "closed unanswered", first_response: "first response {n}",
    scores_title: "Live agent scores", mean_score: "Mean", conversations: "Conversations", fatal: "Fatal",
    reply_rate: "Reply rate", first_response_mean: "First resp.", avg_response: "Avg resp.", shift: "Shift",
    no_scores: "No closed conversations today", sections: "Sections", labels: "Findings by label",
    recent_findings: "Recent findings", close: "Close", transcript: "Transcript", customer: "Customer", bot: "Bot",
    transferred: "Transferred", ended: "Conversation ended", started: "Conversation started", response: "answered in {n}",
    late: "late", status_waiting: "waiting", status_open: "open", status_closed: "closed", waiting_now: "waiting {n}",
    forbidden: "Not allowed", appeal: "Appeal", appeal_prompt: "Why is this finding wrong?",
    appeals_title: "Open appeals", accept: "Accept", reject: "Reject", decision_prompt: "Note (optional)",
    finding_active: "in effect", finding_appealed: "appealed", finding_dismissed: "dismissed",
    finding_upheld: "appeal rejected", no_appeals: "No open appeals", show_context: "Open conversation",
    f_status: "Handling", status_pending: "To do", status_mine: "Claimed by me", status_handled: "Handled",
    status_all: "All", notes: "Notes", retry: "Retry", dismiss: "Dismiss", loading: "Loading…",
    new_critical: "New critical alert: {rule}, agent {agent}, conversation {conv}",
    settings_title: "Alert settings", settings_interval: "At most one alert every (seconds)", settings_rule: "Rule",
    settings_flash: "Flash", settings_sound: "Sound", settings_help: "Critical alerts only; sound also needs “Sound”.",
    customer_gone: "Customer may have left", shop: "Shop", last_message: "Customer's last message",
    score: "Score", score_total: "Score {n} / {max}", score_fatal: "Fatal: this conversation scores 0 ({labels})",
    deductions: "Deductions", bonus: "Bonus", not_scored: "Not scored yet (scored when it closes)",
    item_points: "{n} pts", alert_notes: "Handling notes", appeal_reason: "Reason",
    err_network: "Cannot reach the server; check the connection and retry", err_claimed_by: "Already claimed by {who}",
    err_already: "This alert is already {state}", err_appealed: "This finding has already been appealed",
    err_not_found: "Not found (deleted, or outside your scope)", err_forbidden: "You may not do this",
    err_conflict: "Conflict; reload and retry", err_invalid: "Invalid input: {detail}",
    err_server: "Server error ({status}); retry later", err_http: "Request failed ({status})",
    action_failed: "Failed: {why}", date: "Date", shift_filter: "Shift", filters: "Filters", all_shifts: "All shifts",
    open_chats: "Open conversations", no_open_chats: "No open conversations",
    tab_admin: "Admin", rules_title: "QA rules", rules_document: "Rule set (JSON)", rules_save: "Save as a new revision",
    rules_history: "History", rules_version: "In force: {version} (revision {revision})", rules_saved: "Saved: {version}",
    rules_bad_json: "Not valid JSON: {why}", rules_invalid: "The rules were refused: {why}", revision: "Revision",
    author: "Author", at: "When", users_title: "Users", display_name: "Display name", role: "Role",
    add_user: "Add user", audit_title: "Audit log", actor: "Who", audit_action: "Action", subject: "Subject",
    detail: "Detail", bonus_award: "Award bonus", bonus_points: "Bonus points (0–10)", bonus_note: "Why (highlight)",
    review_title: "Review queue · the day's sample", tab_review: "Review", review_reasons: "Why sampled",
    review_score: "Score", review_state: "State", review_transcript: "Transcript", review_findings: "Findings",
    review_add: "Add a finding", review_label: "Finding", review_message: "Message", review_add_button: "Add",
    review_items: "Human items", review_items_save: "Save points", review_sign_off: "Sign off",
    review_confirm: "Confirm", review_reject: "Reject", review_to_review: "to review", review_open: "in review",
    review_signed_off: "signed off", review_pending: "pending review", review_empty: "No sample for this day",
    review_fatal: "fatal", review_manual: "manual", review_whole: "whole conversation", review_confirmed: "confirmed",
    review_rejected: "rejected", review_undecided: "{n} finding(s) to decide", review_points: "{score} points",
    review_appeal_until: "the agent may appeal until {at}",
    review_active: "to decide", review_review: "held back", review_appealed: "under appeal",
    review_dismissed: "appeal accepted", review_upheld: "appeal rejected",
    ok: "OK", cancel: "Cancel", save: "Save", field_required: "Please fill this in", field_integer: "Enter a whole number",
    field_integer_range: "Enter a whole number from {min} to {max}", field_too_long: "At most {n} characters",
    note_title: "Add a note", appeal_submit: "Submit appeal", accept_title: "Accept the appeal",
    reject_title: "Reject the appeal",
    search: "Search", search_label: "Search conversations", search_placeholder: "Conversation, order number or keyword",
    search_none: "No conversation matches", search_more: "More results", search_count: "{n} conversations found",
    search_matches: "{n} matching messages", search_id_match: "conversation id matches", search_close: "Clear search",
  },
};

const RULES = {
  zh: { banned_word: "语气词不当", impolite_address: "称呼不当（你/您）", forbidden_phrase: "服务禁语",
        conflict: "与顾客争执", deflection: "推诿", pii_leak: "泄露顾客隐私", customer_anger: "顾客情绪激动（需安抚）",
        slow_first_response: "首次响应超时", customer_waiting: "顾客等待", unanswered_at_end: "漏回复",
        missing_greeting: "缺开头语", missing_closing: "缺结束语", politeness_rate: "礼貌用语不足" },
  en: { banned_word: "Improper particle", impolite_address: "你 instead of 您", forbidden_phrase: "Forbidden phrase",
        conflict: "Arguing with the customer", deflection: "Passing the buck", pii_leak: "Customer data leak",
        customer_anger: "Angry customer", slow_first_response: "Slow first response",
        customer_waiting: "Customer waiting", unanswered_at_end: "Missed reply", missing_greeting: "No greeting",
        missing_closing: "No closing", politeness_rate: "Politeness" },
};
const SEVERITIES = { zh: { critical: "严重", warning: "警告", info: "提示" },
                     en: { critical: "Critical", warning: "Warning", info: "Info" } };
const ROLES = { zh: { admin: "管理员", supervisor: "主管", floor_lead: "组长", qa: "质检员", agent: "坐席" },
                en: { admin: "Admin", supervisor: "Supervisor", floor_lead: "Floor lead", qa: "QA", agent: "Agent" } };
const SECTIONS = { en: { 服务态度: "Attitude", 服务用语: "Language", 响应时效: "Responsiveness", 流程规范: "Procedure" } };
const ITEMS = {
  zh: { politeness: "礼貌用语", greeting: "开头语", closing: "结束语", first_response: "首次响应",
        avg_response: "平均响应", reply_rate: "回复率" },
  en: { politeness: "Politeness", greeting: "Greeting", closing: "Closing", first_response: "First response",
        avg_response: "Avg response", reply_rate: "Reply rate" },
};

let lang = localStorage.getItem("zhijian.lang") === "en" ? "en" : "zh";

export function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}
export const ruleName = (rule) => RULES[lang][rule] || rule;
export const severityName = (severity) => SEVERITIES[lang][severity] || severity;
export const roleName = (role) => ROLES[lang][role] || role;
export const sectionName = (name) => (SECTIONS[lang] || {})[name] || name;
export const itemName = (name) => ITEMS[lang][name] || ruleName(name);
export const currentLang = () => lang;

export function applyTranslations(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("option[data-severity]")) el.textContent = severityName(el.dataset.severity);
}

export function toggleLang() {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("zhijian.lang", lang);
  applyTranslations();
  document.dispatchEvent(new CustomEvent("zhijian:lang"));
}

export const RULE_KEYS = Object.keys(RULES.zh);

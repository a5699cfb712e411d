// Every number, time and duration the dashboard shows, formatted one way: one decimal, one unit style
// ("12.3 秒" / "12.3 s"), "—" for no figure. KPIs, percentages and durations go through here, nowhere else.
import { t } from "./i18n.js";

export const clock = (ms) => new Date(ms).toLocaleTimeString("zh-CN", { hour12: false });
// a day and a time (search results span days): "11/23 14:05:09"
export function dateTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return `${d.getMonth() + 1}/${d.getDate()} ${clock(ms)}`;
}

// One decimal, one unit style everywhere: "12.3 秒" / "12.3 s".
export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return t("seconds", { n: Number(value).toFixed(1) });
}
export function wholeSeconds(value) { return t("seconds", { n: Math.max(0, Math.floor(value)) }); }
export function oneDecimal(value) {
  return value === null || value === undefined || Number.isNaN(Number(value)) ? "—" : Number(value).toFixed(1);
}
export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(Number(rate) * 100).toFixed(1)}%`;
}

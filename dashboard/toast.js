// One place for a failed action: a message for people and a retry button (never a raw "Failed to fetch").
import { el } from "./api.js";

let retryAction = null;

export function showError(text, retry) {
  retryAction = retry || null;
  el("toast-text").textContent = text;
  el("toast-retry").hidden = !retry;
  el("toast").hidden = false;
}

export function hideError() {
  el("toast").hidden = true;
  retryAction = null;
}

export function setupToast() {
  el("toast-close").addEventListener("click", hideError);
  el("toast-retry").addEventListener("click", () => {
    const again = retryAction;
    hideError();
    if (again) again();
  });
}

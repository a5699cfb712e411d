// The page's own small dialog, in place of window.prompt/alert/confirm: a <dialog> with labelled inputs,
// validation messages beside them, Enter to confirm, Esc (or 取消) to cancel, focus moved in on open and back
// to where it was on close. On a phone it sits at the bottom of the screen with large buttons (one thumb).
//
//   const answer = await ask({ title: t("note"), fields: [{ name: "note", label: t("note_prompt"), required: true }] });
//   if (answer === null) return;  // cancelled
//   answer.note                  // the trimmed text (numbers as numbers)
//
// Field: { name, label, type: "text" | "textarea" | "integer", value, required, min, max, maxLength, help }.
import { node } from "./api.js";
import { t } from "./i18n.js";

let open = null;  // { dialog, finish } while a question is shown

function build() {
  const dialog = node("dialog", { className: "ask", attrs: { id: "ask", "aria-labelledby": "ask-title" } });
  document.body.append(dialog);
  return dialog;
}

function problem(field, raw) {
  const text = raw.trim();
  if (!text) return field.required ? t("field_required") : "";
  if (field.type === "integer") {
    const number = Number(text);
    const { min = -Infinity, max = Infinity } = field;
    if (!/^-?\d+$/.test(text) || number < min || number > max) {
      return Number.isFinite(min) && Number.isFinite(max) ? t("field_integer_range", { min, max }) : t("field_integer");
    }
  }
  if (field.maxLength && text.length > field.maxLength) return t("field_too_long", { n: field.maxLength });
  return "";
}

function value(field, raw) {
  const text = raw.trim();
  if (field.type === "integer") return text ? Number(text) : null;
  return text;
}

// Ask; resolves to { name: value, ... } when confirmed, null when cancelled (Esc, 取消, or another question).
export function ask({ title, message = "", fields = [], ok = t("ok"), cancel = t("cancel") }) {
  if (open) open.finish(null);
  const dialog = document.getElementById("ask") || build();
  const returnTo = document.activeElement;
  const inputs = fields.map((field, i) => {
    const id = `ask-${field.name}`;
    const input = field.type === "textarea"
      ? node("textarea", { attrs: { rows: "3" } })
      : node("input", { attrs: { type: "text", autocomplete: "off",
                                 ...(field.type === "integer" ? { inputmode: "numeric" } : {}) } });
    input.id = id;
    input.name = field.name;
    input.value = field.value === undefined || field.value === null ? "" : String(field.value);
    if (field.required) input.setAttribute("aria-required", "true");
    const error = node("p", { className: "field-error", attrs: { id: `${id}-error`, "aria-live": "polite" } });
    const help = field.help ? node("p", { className: "field-help", text: field.help, attrs: { id: `${id}-help` } }) : null;
    input.setAttribute("aria-describedby", [help ? `${id}-help` : "", `${id}-error`].filter(Boolean).join(" "));
    input.addEventListener("input", () => {  // the message goes once the input is right
      if (input.getAttribute("aria-invalid") === "true" && !problem(field, input.value)) {
        input.removeAttribute("aria-invalid");
        error.textContent = "";
      }
    });
    if (field.type === "textarea") {  // Enter confirms, Shift+Enter is a new line
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
      });
    }
    return { field, input, error, wrap: node("div", { className: "field", attrs: { "data-field": field.name, "data-index": String(i) } },
      node("label", { text: field.label, attrs: { for: id } }), input, help, error) };
  });
  const okButton = node("button", { className: "primary", text: ok, attrs: { type: "submit", id: "ask-ok" } });
  const cancelButton = node("button", { text: cancel, attrs: { type: "button", id: "ask-cancel" } });
  const form = node("form", { attrs: { novalidate: "" } },
    node("h2", { text: title, attrs: { id: "ask-title" } }),
    message ? node("p", { className: "ask-message", text: message }) : null,
    ...inputs.map((i) => i.wrap),
    node("div", { className: "ask-buttons" }, cancelButton, okButton));
  dialog.replaceChildren(form);

  return new Promise((resolve) => {
    const finish = (answer) => {
      if (!open || open.finish !== finish) return;
      open = null;
      dialog.removeEventListener("cancel", onCancel);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      if (returnTo && returnTo.isConnected && typeof returnTo.focus === "function") returnTo.focus({ preventScroll: true });
      resolve(answer);
    };
    const onCancel = (event) => { event.preventDefault(); finish(null); };  // Esc
    // closed some other way (a second Esc the browser does not ask about). The browser fires "close" in a later
    // task, so the close of the question before can arrive after this one is shown: that one is not ours.
    const onClose = () => { if (!dialog.open) finish(null); };
    dialog.addEventListener("cancel", onCancel);
    dialog.addEventListener("close", onClose);
    cancelButton.addEventListener("click", () => finish(null));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let first = null;
      for (const { field, input, error } of inputs) {
        const why = problem(field, input.value);
        error.textContent = why;
        if (why) { input.setAttribute("aria-invalid", "true"); first = first || input; } else input.removeAttribute("aria-invalid");
      }
      if (first) { first.focus(); return; }
      finish(Object.fromEntries(inputs.map(({ field, input }) => [field.name, value(field, input.value)])));
    });
    open = { dialog, finish };
    dialog.showModal();
    (inputs[0]?.input || okButton).focus();
  });
}

// A yes/no question (in place of window.confirm): true when confirmed.
export async function confirmAction({ title, message = "", ok = t("ok") }) {
  return (await ask({ title, message, ok })) !== null;
}

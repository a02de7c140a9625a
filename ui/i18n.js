// Fills the page from the shared catalog (i18n/*.json, served by the Rust side): elements with
// data-i18n get their text, data-i18n-label their aria-label, data-i18n-placeholder their hint.
import { catalog } from "./ipc.js";

let strings = {};

export function t(key, args = {}) {
  let text = strings[key] ?? key;
  for (const [name, value] of Object.entries(args)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export async function load() {
  const c = await catalog();
  strings = c.strings;
  document.documentElement.lang = c.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const title = document.querySelector("title[data-i18n]");
  if (title) document.title = title.textContent;
  return c.lang;
}

// Shows an error from the Rust side in the page's live region.
export function showError(region, e) {
  // The shell words its errors from the catalog by code; anything else (a raw string from the
  // webview or the IPC layer) is never shown as it is.
  region.textContent = e && e.code && e.message ? e.message : t("error.unknown");
  region.hidden = false;
}

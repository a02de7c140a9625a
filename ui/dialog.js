// The sync's questions. The safe choice is the default button (focused, and what Enter and
// Escape do): keep the files, log in later.
import * as ipc from "./ipc.js";
import { load, t } from "./i18n.js";

const kind = new URLSearchParams(location.search).get("kind") || "login_again";
const $ = (id) => document.getElementById(id);

const kinds = {
  mass_delete: { detail: "dialog.mass_delete.detail", buttons: [["delete", "dialog.mass_delete.delete", "danger"], ["send_back", "dialog.mass_delete.send_back", ""], ["keep", "dialog.mass_delete.keep", "primary"]], safe: "keep" },
  conflicts: { buttons: [["ok", "dialog.ok", "primary"]], safe: "ok" },
  no_space: { buttons: [["ok", "dialog.ok", "primary"]], safe: "ok" },
  login_again: { buttons: [["later", "dialog.later", ""], ["login", "dialog.login_again.button", "primary"]], safe: "later" },
};

async function start() {
  await load();
  const spec = kinds[kind] || kinds.login_again;
  $("title").textContent = t(`dialog.${kind}.title`);
  document.title = $("title").textContent;
  // Names and sizes come from the shell; the words from the catalog.
  const details = kind === "no_space" || kind === "conflicts" ? await ipc.dialogDetails() : { name: "", size: "", conflicts: [] };
  $("text").textContent = t(`dialog.${kind}.text`, { name: details.name, size: details.size });
  $("detail").textContent = spec.detail ? t(spec.detail) : "";
  for (const path of kind === "conflicts" ? details.conflicts : []) {
    const li = document.createElement("li");
    li.textContent = path;
    $("list").append(li);
  }
  const answer = (a) => ipc.dialogAnswer(kind, a);
  for (const [value, key, style] of spec.buttons) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = `answer-${value}`;
    b.className = style;
    b.textContent = t(key);
    b.addEventListener("click", () => answer(value));
    $("actions").append(b);
    if (value === spec.safe) setTimeout(() => b.focus(), 0);
  }
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") answer(spec.safe); });
}

start();

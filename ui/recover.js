// "Récupérer un fichier…": the server's trash (search by name, restore) and a file's earlier
// versions (open one read-only, restore one). Keyboard: the tabs move with the arrow keys,
// every row's buttons are in the Tab order, Escape closes.
import * as ipc from "./ipc.js";
import { load, t, showError } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let trash = [];
let current = null; // the file whose versions are shown

function say(text) {
  $("error").hidden = true;
  $("status").textContent = text;
}

function fail(e) {
  $("status").textContent = "";
  showError($("error"), e);
}

function button(label, aria, onClick, style = "") {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = style;
  if (aria) b.setAttribute("aria-label", aria);
  b.addEventListener("click", onClick);
  return b;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function showTrash() {
  const query = $("search").value.trim().toLowerCase();
  const rows = trash.filter((i) => !query || i.name.toLowerCase().includes(query));
  const body = $("trash");
  body.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    const when = item.by ? `${item.deleted} (${t("recover.by", { name: item.by })})` : item.deleted;
    tr.append(cell(item.name), cell(item.folder || t("recover.root")), cell(when, "num"), cell(item.size, "num"));
    const td = document.createElement("td");
    td.append(button(t("recover.restore"), t("recover.restore_label", { name: item.name }), () => restore(item), "primary"));
    tr.append(td);
    body.append(tr);
  }
  const empty = $("trash-empty");
  empty.hidden = rows.length > 0;
  empty.textContent = trash.length === 0 ? t("recover.trash.empty") : t("recover.trash.none_found");
}

async function loadTrash() {
  say(t("recover.loading"));
  try {
    trash = await ipc.recoverTrash();
    say("");
    showTrash();
  } catch (e) {
    fail(e);
  }
}

async function restore(item) {
  try {
    await ipc.recoverRestore(item.id);
    trash = trash.filter((i) => i.id !== item.id);
    showTrash();
    say(t("recover.restored", { name: item.name }));
    $("search").focus();
  } catch (e) {
    fail(e);
  }
}

async function showVersions(path) {
  current = path;
  $("versions-of").hidden = false;
  $("versions-of").textContent = t("recover.versions.of", { path });
  say(t("recover.loading"));
  try {
    const list = await ipc.recoverVersions(path);
    say("");
    const body = $("versions");
    body.replaceChildren();
    for (const v of list) {
      const tr = document.createElement("tr");
      tr.dataset.id = v.id;
      tr.append(cell(v.date, "num"), cell(v.author || ""), cell(v.size, "num"));
      const look = document.createElement("td");
      look.append(button(t("recover.look"), t("recover.look_label"), () => ipc.recoverOpenVersion(path, v.id).catch(fail)));
      const back = document.createElement("td");
      back.append(button(t("recover.restore"), t("recover.restore_version_label", { date: v.date }), async () => {
        try {
          await ipc.recoverRestoreVersion(path, v.id);
          say(t("recover.version_restored", { date: v.date }));
          await showVersions(path);
        } catch (e) {
          fail(e);
        }
      }, "primary"));
      tr.append(look, back);
      body.append(tr);
    }
    $("versions-table").hidden = list.length === 0;
    $("kept").hidden = list.length === 0;
    $("versions-empty").hidden = list.length > 0;
    $("versions-empty").textContent = t("recover.versions.none");
  } catch (e) {
    fail(e);
  }
}

let findTimer = null;
function findFiles() {
  clearTimeout(findTimer);
  findTimer = setTimeout(async () => {
    const query = $("file-search").value;
    try {
      const found = query.trim() ? await ipc.recoverFind(query) : [];
      const list = $("files");
      list.replaceChildren();
      for (const path of found) {
        const li = document.createElement("li");
        li.append(button(path, null, () => showVersions(path)));
        list.append(li);
      }
      $("pick").textContent = query.trim() && found.length === 0 ? t("recover.versions.no_match") : t("recover.versions.pick");
    } catch (e) {
      fail(e);
    }
  }, 200);
}

function select(tab) {
  for (const name of ["trash", "versions"]) {
    const on = name === tab;
    $(`tab-${name}`).setAttribute("aria-selected", String(on));
    $(`tab-${name}`).tabIndex = on ? 0 : -1;
    $(`panel-${name}`).hidden = !on;
  }
  $(tab === "trash" ? "search" : "file-search").focus();
}

async function start() {
  await load();
  $("search").addEventListener("input", showTrash);
  $("file-search").addEventListener("input", findFiles);
  $("tab-trash").addEventListener("click", () => select("trash"));
  $("tab-versions").addEventListener("click", () => select("versions"));
  $("tabs").addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      const next = $("tab-trash").getAttribute("aria-selected") === "true" ? "versions" : "trash";
      select(next);
      $(`tab-${next}`).focus();
    }
  });
  $("close").addEventListener("click", () => ipc.closeWindow());
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") ipc.closeWindow(); });
  const state = await ipc.recoverState();
  if (state.target) {
    select("versions");
    $("file-search").value = state.target.split("/").pop();
    await showVersions(state.target);
  } else {
    select("trash");
  }
  await loadTrash();
}

start();

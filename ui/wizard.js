// First run: organisation and login, folder, done. With a bundled profile: three clicks.
import * as ipc from "./ipc.js";
import { load, t, showError } from "./i18n.js";

const $ = (id) => document.getElementById(id);

function show(panel, n) {
  for (const id of ["org", "folder", "done"]) $(id).hidden = id !== panel;
  $("step").textContent = t("wizard.step", { n });
  const first = $(panel).querySelector("input, button");
  if (first) first.focus();
}

// The folder step proposes this account's folder (never another account's), the server
// folders and the room they take; nothing syncs before « Utiliser ce dossier ».
let choice = null;
let pathEdited = false;

function askChoice(serverFolder) {
  $("folder").dataset.ready = "";
  $("space").textContent = t("wizard.folder.looking");
  choice = ipc.wizardFolderChoice(serverFolder).then((c) => {
    if (!pathEdited) $("path").value = c.path || "";
    $("folder-note").textContent = c.note || "";
    $("folder-note").hidden = !c.note;
    const select = $("server-folder");
    const folders = c.server_folders || [];
    if (folders.length || c.server_folder) {
      const names = ["", ...folders];
      if (c.server_folder && !names.includes(c.server_folder)) names.push(c.server_folder);
      select.replaceChildren(...names.map((name) => {
        const o = document.createElement("option");
        o.value = name;
        o.textContent = name || t("wizard.folder.server_all");
        return o;
      }));
      select.value = c.server_folder || "";
      $("server-field").hidden = false;
    }
    $("space").textContent = c.problem ? c.problem.message : c.size ? t("wizard.folder.space", { size: c.size }) : "";
    $("folder").dataset.ready = "1";
    return c;
  }).catch((e) => {
    showError($("folder-error"), e);
    $("folder").dataset.ready = "1";
    return null;
  });
  return choice;
}

function toFolder(name, folder) {
  $("who").textContent = t("wizard.login.done", { name });
  $("path").value = folder || "";
  pathEdited = false;
  show("folder", 2);
  askChoice(null);
}

$("path").addEventListener("input", () => { pathEdited = true; });
$("server-folder").addEventListener("change", (e) => askChoice(e.target.value));
$("pick").addEventListener("click", async () => {
  $("folder-error").hidden = true;
  try {
    const picked = await ipc.pickFolder($("path").value || null);
    if (picked) {
      $("path").value = picked;
      pathEdited = true;
    }
  } catch (e) {
    showError($("folder-error"), e);
  }
});

async function start() {
  await load();
  const state = await ipc.wizardState();
  if (state.bundled_org) {
    $("bundled").textContent = t("wizard.org.bundled", { org: state.bundled_org });
    $("bundled").hidden = false;
  } else {
    $("domain-field").hidden = false;
  }
  if (state.logged_in) return toFolder(state.logged_in, state.default_folder);
  show("org", 1);
}

$("org").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("org-error").hidden = true;
  $("login").disabled = true;
  $("waiting").hidden = false;
  try {
    const domain = $("domain-field").hidden ? null : $("domain").value;
    const done = await ipc.wizardLogin(domain);
    toFolder(done.name, done.default_folder);
  } catch (e) {
    showError($("org-error"), e);
  } finally {
    $("login").disabled = false;
    $("waiting").hidden = true;
  }
});

$("folder").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("folder-error").hidden = true;
  try {
    await choice;
    const server = $("server-field").hidden ? null : $("server-folder").value;
    await ipc.wizardFolder($("path").value, server);
    show("done", 3);
  } catch (e) {
    showError($("folder-error"), e);
  }
});

$("done").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await ipc.wizardFinish().catch(() => ipc.closeWindow());
});

start().catch((e) => showError($("org-error"), e));

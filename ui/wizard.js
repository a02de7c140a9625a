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

function toFolder(name, folder) {
  $("who").textContent = t("wizard.login.done", { name });
  $("path").value = folder || "";
  show("folder", 2);
}

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
    await ipc.wizardFolder($("path").value);
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

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
  if (state.logged_in && !state.relogin) return toFolder(state.logged_in, state.default_folder);
  // A dead session ("Se reconnecter"): a real login, never a skip to the folder.
  $("relogin").hidden = !state.relogin;
  show("org", 1);
}

// The login: servers outside the domain to accept first, then the browser, which the member
// may stop waiting for (Annuler, Escape) or, when none opened, replace by pasting the link.
let accepted = [];   // servers outside the typed domain the member accepted
let attempt = 0;     // answers of an older attempt are ignored
let waiting = false;

function say(text) {
  $("org-status").textContent = text;
  $("org-status").hidden = !text;
}

function setWaiting(on) {
  waiting = on;
  $("login").disabled = on;
  $("login").hidden = on;
  $("domain").disabled = on;
  $("cancel-login").hidden = !on;
  $("waiting").hidden = !on;
  if (!on) {
    $("no-browser").hidden = true;
    $("copied").hidden = true;
  }
}

function uses(list) {
  const words = list.map((u) => t(`wizard.hosts.use.${u}`));
  return words.length < 2 ? words.join("") : words.slice(0, -1).join(", ") + t("wizard.hosts.and") + words[words.length - 1];
}

function showHosts(start) {
  $("hosts-heading").textContent = t("wizard.hosts.heading", { domain: start.domain });
  $("hosts-text").textContent = t("wizard.hosts.text", { domain: start.domain });
  $("hosts-list").replaceChildren(...start.servers.map((s) => {
    // The host name stands out; the words around it come from the catalog.
    const [before, after = ""] = t("wizard.hosts.item", { uses: uses(s.uses) }).split("{host}");
    const li = document.createElement("li");
    const host = document.createElement("strong");
    host.textContent = s.host;
    li.append(before, host, after);
    li.dataset.host = s.host;
    return li;
  }));
  $("hosts").hidden = false;
  $("login").hidden = true;
  $("hosts-refuse").focus();
}

function showLink(url) {
  $("login-link").value = url;
  $("waiting").hidden = true;
  $("no-browser").hidden = false;
  $("copy-link").focus();
}

async function login() {
  const mine = ++attempt;
  $("org-error").hidden = true;
  $("hosts").hidden = true;
  $("login").hidden = false;
  say("");
  $("login").disabled = true;
  let start;
  try {
    const domain = $("domain-field").hidden ? null : $("domain").value;
    start = await ipc.wizardLoginAccepting(domain, accepted);
  } catch (e) {
    $("login").disabled = false;
    return showError($("org-error"), e);
  }
  if (mine !== attempt) return;
  if (start.step === "hosts") {
    $("login").disabled = false;
    return showHosts(start);
  }
  setWaiting(true);
  if (start.opened) $("cancel-login").focus();
  else showLink(start.url);
  try {
    const done = await ipc.wizardLoginWait();
    if (mine !== attempt) return;
    setWaiting(false);
    toFolder(done.name, done.default_folder);
  } catch (e) {
    if (mine !== attempt) return;
    setWaiting(false);
    if (e && e.code === "login_stopped") {
      say(e.message);
      $("login").focus();
    } else {
      showError($("org-error"), e);
    }
  }
}

function cancelLogin() {
  if (waiting) ipc.wizardLoginCancel().catch(() => {});
}

$("org").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!waiting) login();
});
$("domain").addEventListener("input", () => { accepted = []; });
$("hosts-accept").addEventListener("click", () => {
  accepted = [...$("hosts-list").children].map((li) => li.dataset.host);
  login();
});
$("hosts-refuse").addEventListener("click", () => {
  accepted = [];
  $("hosts").hidden = true;
  $("login").hidden = false;
  say(t("wizard.hosts.refused"));
  ($("domain-field").hidden ? $("login") : $("domain")).focus();
});
$("cancel-login").addEventListener("click", cancelLogin);
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape") return;
  // Escape takes the safe way out: stop waiting, or refuse the other servers.
  if (waiting) {
    ev.preventDefault();
    cancelLogin();
  } else if (!$("hosts").hidden) {
    ev.preventDefault();
    $("hosts-refuse").click();
  }
});
$("login-link").addEventListener("focus", () => $("login-link").select());
$("copy-link").addEventListener("click", async () => {
  try {
    await ipc.wizardLoginCopy();
    $("copied").hidden = false;
  } catch (e) {
    showError($("org-error"), e);
  }
});
$("reopen").addEventListener("click", async () => {
  $("copied").hidden = true;
  try {
    const opened = await ipc.wizardLoginReopen();
    if (opened) {
      $("no-browser").hidden = true;
      $("waiting").hidden = false;
    }
    else $("login-link").select();
  } catch (e) {
    showError($("org-error"), e);
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

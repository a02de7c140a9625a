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

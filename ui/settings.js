// Settings: account, the calendar's and the chat's own credentials when a server needs them,
// folder and selective sync, pause, autostart, notifications, language, about.
import * as ipc from "./ipc.js";
import { load, t, showError } from "./i18n.js";

const $ = (id) => document.getElementById(id);

async function change(key, value) {
  $("error").hidden = true;
  try {
    await ipc.settingsSet(key, value);
    $("saved").textContent = t("settings.saved");
  } catch (e) {
    showError($("error"), e);
  }
}

async function render() {
  await load();
  const s = await ipc.settingsGet();
  const logged = Boolean(s.name);
  $("account").hidden = !logged;
  $("logout").hidden = !logged;
  $("no-account").hidden = logged;
  $("name").textContent = s.name || "";
  $("email").textContent = s.email || "";
  $("org").textContent = s.organisation || "";
  $("folder").textContent = s.folder || "";
  $("server-folder").textContent = s.server_folder || t("wizard.folder.server_all");
  const list = $("subfolders");
  list.replaceChildren();
  if (s.subfolders.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("settings.folder.none");
    list.append(li);
  }
  for (const name of s.subfolders) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !s.excluded_folders.includes(name);
    box.dataset.folder = name;
    box.addEventListener("change", () => {
      const excluded = [...list.querySelectorAll("input")].filter((b) => !b.checked).map((b) => b.dataset.folder);
      change("excluded_folders", excluded);
    });
    const span = document.createElement("span");
    span.textContent = name;
    label.append(box, span);
    li.append(label);
    list.append(li);
  }
  $("paused").checked = s.paused;
  $("autostart").checked = s.autostart;
  $("notifications").checked = s.notifications;
  $("language").value = s.language || "";
  $("version").textContent = t("settings.version", { version: s.version });
  renderCalendar(s.calendar);
  renderChat(s.chat_token);
}

// The calendar's own password: asked for only when its server is not the file server.
function renderCalendar(c) {
  const needed = Boolean(c) && c.password !== "not_needed";
  $("calendar-section").hidden = !needed;
  if (!needed) return;
  if (!$("calendar-user").value) $("calendar-user").value = c.user || "";
  let status;
  if (c.problem && c.problem !== "calendar_password_needed" && c.problem !== "no_password") {
    status = t(`error.${c.problem}`);
  } else if (c.password === "saved") {
    status = t("settings.calendar.saved", { user: c.user || "" });
  } else {
    status = t("settings.calendar.missing");
  }
  $("calendar-status").textContent = status;
  // A saved password that works needs nothing more: the form waits behind « Changer ».
  const settled = c.password === "saved" && !c.problem;
  $("calendar-change").hidden = !settled;
  $("calendar-form").hidden = settled;
}

$("calendar-change").addEventListener("click", () => {
  $("calendar-change").hidden = true;
  $("calendar-form").hidden = false;
  $("calendar-password").focus();
});

// A personal access token for a chat account the single login cannot open (two-factor).
function renderChat(problem) {
  $("chat-section").hidden = !problem;
  if (!problem) return;
  $("chat-help").textContent = t(problem === "chat_token_refused" ? "settings.chat.help_refused" : "settings.chat.help_two_factor");
}

$("calendar-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").hidden = true;
  $("calendar-save").disabled = true;
  try {
    await ipc.calendarPassword($("calendar-user").value, $("calendar-password").value);
    $("calendar-password").value = "";
    await render();
    $("calendar-status").textContent = t("settings.calendar.done");
    $("saved").textContent = t("settings.calendar.done");
  } catch (err) {
    showError($("error"), err);
    $("calendar-password").focus();
  } finally {
    $("calendar-save").disabled = false;
  }
});

$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").hidden = true;
  $("chat-save").disabled = true;
  try {
    await ipc.chatToken($("chat-user").value, $("chat-token").value);
    $("chat-token").value = "";
    $("chat-user").value = "";
    await render();
    $("saved").textContent = t("settings.chat.done");
  } catch (err) {
    showError($("error"), err);
    $("chat-token").focus();
  } finally {
    $("chat-save").disabled = false;
  }
});

$("paused").addEventListener("change", (e) => change("paused", e.target.checked));
// Both folders are chosen in one place, the wizard's folder step.
$("change-folder").addEventListener("click", () => ipc.changeFolder().catch((e) => showError($("error"), e)));
$("autostart").addEventListener("change", (e) => change("autostart", e.target.checked));
$("notifications").addEventListener("change", (e) => change("notifications", e.target.checked));
$("language").addEventListener("change", async (e) => {
  await change("language", e.target.value || null);
  await render();
  $("saved").textContent = t("settings.saved");
  $("language").focus();
});
// Logging out asks first; "Annuler" is the default.
$("logout").addEventListener("click", () => {
  $("logout-confirm").hidden = false;
  $("logout-no").focus();
});
$("logout-no").addEventListener("click", () => {
  $("logout-confirm").hidden = true;
  $("logout").focus();
});
$("logout-yes").addEventListener("click", async () => {
  $("logout-confirm").hidden = true;
  try {
    await ipc.logout();
    await render();
  } catch (e) {
    showError($("error"), e);
  }
});
$("logs").addEventListener("click", () => ipc.openLogs().catch((e) => showError($("error"), e)));
$("close").addEventListener("click", () => ipc.closeWindow());
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (!$("logout-confirm").hidden) {
    $("logout-no").click();
  } else {
    ipc.closeWindow();
  }
});

// Focus starts on the first setting, never on a button that ends something.
render()
  .then(() => [...document.querySelectorAll("main input, main select")].find((el) => el.offsetParent !== null)?.focus())
  .catch((e) => showError($("error"), e));

// Settings: account, folder and selective sync, pause, autostart, notifications, language, about.
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
}

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
  .then(() => document.querySelector("main input, main select")?.focus())
  .catch((e) => showError($("error"), e));

// The only place that talks to the Rust side. Every call resolves with the answer or rejects
// with {code, message}, where message is a plain sentence to show as is.
const core = window.__TAURI_INTERNALS__;

export async function call(command, args = {}) {
  if (!core) throw { code: "no_shell", message: "Passerelle's window must be opened from the app." };
  try {
    return await core.invoke(command, args);
  } catch (e) {
    if (e && typeof e === "object" && "code" in e) throw e;
    throw { code: "shell", message: String(e) };
  }
}

export const catalog = () => call("catalog");
// The wizard's login: servers to accept first, then the browser (see shell.rs `begin_login`).
export const wizardLoginAccepting = (domain, acceptHosts) => call("wizard_login", { domain, acceptHosts });
export const wizardLoginWait = () => call("wizard_login_wait");
export const wizardLoginCancel = () => call("wizard_login_cancel");
export const wizardLoginReopen = () => call("wizard_login_reopen");
export const wizardLoginCopy = () => call("wizard_login_copy");
export const wizardState = () => call("wizard_state");
export const wizardLogin = (domain) => call("wizard_login", { domain });
export const wizardFolder = (path, serverFolder) => call("wizard_folder", { path, serverFolder });
export const wizardFolderChoice = (serverFolder) => call("wizard_folder_choice", { serverFolder });
export const pickFolder = (start) => call("pick_folder", { start });
export const changeFolder = () => call("change_folder");
export const wizardFinish = () => call("wizard_finish");
export const settingsGet = () => call("settings_get");
export const settingsSet = (key, value) => call("settings_set", { change: { key, value } });
export const calendarPassword = (user, password) => call("calendar_password", { user, password });
export const chatToken = (userId, token) => call("chat_token", { userId, token });
export const logout = () => call("logout");
export const openLogs = () => call("open_logs");
export const dialogDetails = () => call("dialog_details");
export const dialogAnswer = (kind, answer) => call("dialog_answer", { kind, answer });
export const closeWindow = () => call("close_window");
export const recoverState = () => call("recover_state");
export const recoverTrash = () => call("recover_trash");
export const recoverRestore = (id) => call("recover_restore", { id });
export const recoverFind = (query) => call("recover_find", { query });
export const recoverVersions = (path) => call("recover_versions", { path });
export const recoverRestoreVersion = (path, id) => call("recover_restore_version", { path, id });
export const recoverOpenVersion = (path, id) => call("recover_open_version", { path, id });

//! The IPC commands the windows call (through `ui/ipc.js`, the only place calling `invoke`).
//! Each is a thin call into [`Shell`]; errors cross as `{code, message}`.
use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State, WebviewWindow, Wry};
use tauri_plugin_opener::OpenerExt;

use crate::{error::ShellError, shell::Shell, windows::DialogKind};

type Answer<T> = Result<T, ShellError>;

#[derive(Serialize)]
pub struct CatalogView {
    lang: &'static str,
    strings: BTreeMap<String, String>,
}

#[tauri::command]
pub fn catalog(shell: State<'_, Shell>) -> CatalogView {
    let c = shell.catalog();
    CatalogView { lang: c.lang.tag(), strings: c.strings().clone() }
}

#[derive(Serialize)]
pub struct WizardView {
    /// The organisation's name when this build carries a profile (or an earlier run saved
    /// one): no domain to type.
    bundled_org: Option<String>,
    /// A session is held but it has ended: the wizard runs a real login ("Se reconnecter"),
    /// never a skip to the folder with the dead session.
    relogin: bool,
    logged_in: Option<String>,
    default_folder: Option<PathBuf>,
}

#[tauri::command]
pub fn wizard_state(shell: State<'_, Shell>) -> WizardView {
    let bundled_org = shell
        .profile()
        .map(|(p, _)| if p.name.is_empty() { p.issuer.host_str().unwrap_or_default().to_string() } else { p.name });
    WizardView {
        bundled_org,
        relogin: shell.needs_relogin(),
        logged_in: shell.session().map(|s| s.identity().name.clone()),
        default_folder: shell.session().and_then(|s| shell.quick_folder(&s)),
    }
}

#[derive(Serialize)]
pub struct LoggedIn {
    name: String,
    default_folder: Option<PathBuf>,
}

/// "Se connecter": the servers to accept first, or the login page opened (or not: then the
/// wizard shows its address). `accept_hosts`: the servers outside the domain the member accepted.
#[tauri::command]
pub async fn wizard_login(app: AppHandle<Wry>, shell: State<'_, Shell>, domain: Option<String>, accept_hosts: Option<Vec<String>>) -> Answer<crate::shell::LoginStart> {
    shell.begin_login(&app, domain, accept_hosts.unwrap_or_default()).await
}

/// Waits for the browser of the login `wizard_login` started.
#[tauri::command]
pub async fn wizard_login_wait(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<LoggedIn> {
    let session = shell.finish_login(&app).await?;
    Ok(LoggedIn { name: session.identity().name.clone(), default_folder: shell.quick_folder(&session) })
}

/// "Annuler" or Escape while waiting for the browser.
#[tauri::command]
pub fn wizard_login_cancel(shell: State<'_, Shell>) {
    shell.cancel_login();
}

/// "Ouvrir à nouveau": true when a browser opened.
#[tauri::command]
pub fn wizard_login_reopen(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<bool> {
    shell.reopen_login(&app)
}

/// "Copier le lien".
#[tauri::command]
pub fn wizard_login_copy(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<()> {
    shell.copy_login_link(&app)
}

/// The folder step's proposal: this account's local folder, the server folders, the room taken.
#[tauri::command]
pub async fn wizard_folder_choice(app: AppHandle<Wry>, shell: State<'_, Shell>, server_folder: Option<String>) -> Answer<crate::shell::FolderChoice> {
    shell.folder_choice(&app, server_folder).await
}

/// « Utiliser ce dossier »: nothing syncs before it.
#[tauri::command]
pub async fn wizard_folder(app: AppHandle<Wry>, shell: State<'_, Shell>, path: String, server_folder: Option<String>) -> Answer<PathBuf> {
    shell.choose_folder(&app, PathBuf::from(path.trim()), server_folder).await
}

/// Paramètres' « Changer de dossier… »: the wizard's folder step, where both folders are chosen.
#[tauri::command]
pub fn change_folder(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<()> {
    Ok(crate::windows::open(&app, crate::windows::WindowKind::Wizard, &shell.catalog().t("wizard.title"))?)
}

/// The system's folder picker; `None` when the member closed it.
#[tauri::command]
pub async fn pick_folder(app: AppHandle<Wry>, shell: State<'_, Shell>, start: Option<String>) -> Answer<Option<PathBuf>> {
    crate::windows::pick_folder(&app, &shell.catalog().t("wizard.folder.pick_title"), start.map(PathBuf::from))
}

/// Setup is done: autostart goes on (the member can turn it off in the settings).
#[tauri::command]
pub fn wizard_finish(app: AppHandle<Wry>, shell: State<'_, Shell>, window: WebviewWindow<Wry>) -> Answer<()> {
    if shell.settings().autostart.is_none() {
        // Not fatal: a desktop without autostart support still gets a working app.
        shell.set_autostart(&app, true).ok();
    }
    window.destroy()?;
    Ok(())
}

#[derive(Serialize)]
pub struct SettingsView {
    name: Option<String>,
    email: Option<String>,
    organisation: Option<String>,
    folder: Option<PathBuf>,
    /// The server folder synced; "" for the whole space.
    server_folder: String,
    subfolders: Vec<String>,
    excluded_folders: Vec<String>,
    paused: bool,
    autostart: bool,
    notifications: bool,
    language: Option<String>,
    version: &'static str,
    /// The calendar's password, when its server asks for one of its own.
    calendar: Option<crate::agenda::CalendarView>,
    /// The chat's problem code when a personal access token is the way in (`chat_two_factor`,
    /// `chat_token_refused`).
    chat_token: Option<String>,
}

#[tauri::command]
pub fn settings_get(app: AppHandle<Wry>, shell: State<'_, Shell>) -> SettingsView {
    tracing::debug!("the settings window asks for the settings");
    let settings = shell.settings();
    let session = shell.session();
    // Another account's folder is not shown, nor its subfolders offered.
    let folder = shell.folder().filter(|_| session.as_ref().is_some_and(|s| shell.folder_confirmed(s)));
    let mut subfolders: Vec<String> = folder
        .as_ref()
        .and_then(|f| std::fs::read_dir(f).ok())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    subfolders.sort();
    SettingsView {
        name: session.as_ref().map(|s| s.identity().name.clone()),
        email: session.as_ref().and_then(|s| s.identity().email.clone()),
        organisation: shell.profile().map(|(p, _)| if p.name.is_empty() { p.issuer.to_string() } else { p.name }),
        folder: folder.clone(),
        server_folder: settings.remote_path.clone().unwrap_or_default(),
        subfolders,
        excluded_folders: settings.excluded_folders.clone(),
        paused: settings.paused,
        autostart: settings.autostart.unwrap_or(false),
        notifications: settings.notifications.unwrap_or(true),
        language: settings.language.clone(),
        version: env!("CARGO_PKG_VERSION"),
        calendar: crate::agenda::view(&app),
        chat_token: shell.chat_token_problem(),
    }
}

/// The calendar server's own password, typed once in the settings.
#[tauri::command]
pub async fn calendar_password(app: AppHandle<Wry>, user: String, password: String) -> Answer<()> {
    crate::agenda::save_password(&app, &user, &password).await
}

/// A chat personal access token and its user id, pasted in the settings.
#[tauri::command]
pub async fn chat_token(app: AppHandle<Wry>, shell: State<'_, Shell>, user_id: String, token: String) -> Answer<()> {
    shell.use_chat_token(&app, &user_id, &token).await
}

/// One setting changed by the member.
#[derive(Debug, Deserialize)]
#[serde(tag = "key", content = "value", rename_all = "snake_case")]
pub enum SettingChange {
    Paused(bool),
    Autostart(bool),
    Notifications(bool),
    /// `None` follows the OS.
    Language(Option<String>),
    ExcludedFolders(Vec<String>),
}

#[tauri::command]
pub fn settings_set(app: AppHandle<Wry>, shell: State<'_, Shell>, change: SettingChange) -> Answer<()> {
    tracing::info!(?change, "setting changed");
    match change {
        SettingChange::Paused(p) => shell.set_paused(p),
        SettingChange::Autostart(on) => shell.set_autostart(&app, on),
        SettingChange::Notifications(on) => shell.update_settings(|s| s.notifications = Some(on)).map(drop),
        SettingChange::Language(tag) => shell.set_language(&app, tag.filter(|t| t == "fr" || t == "en")),
        SettingChange::ExcludedFolders(list) => shell.exclude_folders(list),
    }
}

#[tauri::command]
pub async fn logout(shell: State<'_, Shell>) -> Answer<()> {
    shell.logout().await
}

#[tauri::command]
pub fn open_logs(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<()> {
    app.opener()
        .open_path(shell.dirs.logs.display().to_string(), None::<&str>)
        .map_err(|e| ShellError::logged("browser", &e))
}

/// What a sync dialog shows: the file refused for lack of space, the conflicts' list.
#[tauri::command]
pub fn dialog_details(shell: State<'_, Shell>) -> crate::shell::DialogDetails {
    shell.dialog_details()
}

/// The member's answer to a dialog; the window closes.
#[tauri::command]
pub fn dialog_answer(app: AppHandle<Wry>, shell: State<'_, Shell>, window: WebviewWindow<Wry>, kind: DialogKind, answer: DialogAnswer) -> Answer<()> {
    tracing::info!(?kind, ?answer, "dialog answered");
    window.destroy()?;
    match (kind, answer) {
        (DialogKind::MassDelete, DialogAnswer::Delete) => shell.drive_event(passerelle::drive::Event::ConfirmDeletes(true)),
        (DialogKind::MassDelete, DialogAnswer::SendBack) => shell.drive_event(passerelle::drive::Event::SendBack),
        // Anything but an explicit "delete" keeps the files: the safe default.
        (DialogKind::MassDelete, _) => shell.drive_event(passerelle::drive::Event::ConfirmDeletes(false)),
        (DialogKind::LoginAgain, DialogAnswer::Login) => {
            let t = shell.catalog();
            crate::windows::open(&app, crate::windows::WindowKind::Wizard, &t.t("wizard.title"))?;
        }
        _ => {}
    }
    Ok(())
}

/// The buttons a dialog can have.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogAnswer {
    Keep,
    Delete,
    SendBack,
    Ok,
    Later,
    Login,
}

/// What the recover window opens on (the file of `--recover PATH`, if any).
#[tauri::command]
pub fn recover_state(shell: State<'_, Shell>) -> crate::shell::RecoverState {
    shell.recover_state()
}

#[tauri::command]
pub async fn recover_trash(app: AppHandle<Wry>, shell: State<'_, Shell>) -> Answer<Vec<crate::shell::TrashView>> {
    shell.recover_trash(&app).await
}

/// Restores a trash item by its id; answers its name. A sync starts at once.
#[tauri::command]
pub async fn recover_restore(app: AppHandle<Wry>, shell: State<'_, Shell>, id: String) -> Answer<String> {
    shell.recover_restore(&app, &id).await
}

/// Walks the member's folder: off the main thread (a sync command would run on it).
#[tauri::command(async)]
pub fn recover_find(shell: State<'_, Shell>, query: String) -> Answer<Vec<String>> {
    shell.recover_find(&query)
}

#[tauri::command]
pub async fn recover_versions(app: AppHandle<Wry>, shell: State<'_, Shell>, path: String) -> Answer<Vec<crate::shell::VersionView>> {
    shell.recover_versions(&app, &path).await
}

#[tauri::command]
pub async fn recover_restore_version(app: AppHandle<Wry>, shell: State<'_, Shell>, path: String, id: String) -> Answer<()> {
    shell.recover_restore_version(&app, &path, &id).await
}

#[tauri::command]
pub async fn recover_open_version(app: AppHandle<Wry>, shell: State<'_, Shell>, path: String, id: String) -> Answer<()> {
    shell.recover_open_version(&app, &path, &id).await
}

/// Closes the calling window (destroyed, not hidden).
#[tauri::command]
pub fn close_window(window: WebviewWindow<Wry>) -> Answer<()> {
    window.destroy()?;
    Ok(())
}

//! Passerelle's desktop shell: a tray-first Tauri app over the `passerelle` core. It starts with
//! no window (so no webview); windows are created on demand and destroyed on close.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod agenda;
mod autostart;
mod commands;
mod error;
mod idle;
use passerelle::i18n;
mod icon;
mod ipc_commands;
mod logs;
mod notify;
mod shell;
mod tray;
mod windows;

use passerelle::paths::Dirs;
use tauri::{tray::TrayIconBuilder, Manager, RunEvent};
use tauri_plugin_notification::NotificationExt;

use crate::{shell::Shell, tray::MenuAction, windows::WindowKind};

/// `--recover [PATH]`: the recover window, on PATH's versions when given (relative to `cwd`).
/// `Some(None)`: the window without a file.
fn recover_arg(argv: &[String], cwd: &std::path::Path) -> Option<Option<std::path::PathBuf>> {
    let at = argv.iter().position(|a| a == "--recover")?;
    Some(argv.get(at + 1).filter(|p| !p.starts_with("--")).map(|p| cwd.join(p)))
}

fn main() {
    let started = std::time::Instant::now();
    let dirs = Dirs::discover();
    let _log_guard = logs::init(&dirs.logs);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting");

    // libayatana-appindicator publishes GLib's application name as the tray's title; unset,
    // it is the binary's name ("passerelle-desktop").
    #[cfg(target_os = "linux")]
    glib::set_application_name("Passerelle");

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            let shell = app.state::<Shell>();
            // `passerelle-desktop --recover PATH` (the file manager's "Versions précédentes…")
            // while the app runs: the running app opens the window.
            if let Some(path) = recover_arg(&argv, std::path::Path::new(&cwd)) {
                tracing::info!("second launch: opening the recover window");
                if let Err(e) = shell.open_recover(app, path.as_deref()) {
                    shell.act_failed(app, &e);
                }
                return;
            }
            // The file manager's "Copier un lien de partage" / "Ouvrir en ligne" while the app
            // runs: the running app answers.
            if let Some(request) = shell::request_in(&argv, std::path::Path::new(&cwd)) {
                tracing::info!(action = ?request.action, "file manager request");
                shell.file_request(app, request);
                return;
            }
            // A second launch: bring the first one forward instead of starting twice.
            tracing::info!("second launch: focusing the running app");
            let t = shell.catalog();
            let target = match windows::any_open(app) {
                Some(window) => {
                    window.set_focus().ok();
                    return;
                }
                None if shell.session().is_some() => (WindowKind::Settings, t.t("settings.title")),
                None => (WindowKind::Wizard, t.t("wizard.title")),
            };
            windows::open(app, target.0, &target.1).ok();
        }))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::Builder::new().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .manage(Shell::new(dirs))
        .manage(agenda::Agenda::default())
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Destroyed = event {
                // The wizard closed while waiting for the browser: nobody will finish that login.
                if window.label() == "wizard" {
                    window.app_handle().state::<Shell>().cancel_login();
                }
                windows::on_destroyed(window.app_handle(), window.label());
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::catalog,
            commands::wizard_state,
            commands::wizard_login,
            commands::wizard_login_wait,
            commands::wizard_login_cancel,
            commands::wizard_login_reopen,
            commands::wizard_login_copy,
            commands::wizard_folder,
            commands::wizard_folder_choice,
            commands::pick_folder,
            commands::change_folder,
            commands::wizard_finish,
            commands::settings_get,
            commands::settings_set,
            commands::calendar_password,
            commands::chat_token,
            commands::logout,
            commands::open_logs,
            commands::dialog_answer,
            commands::dialog_details,
            commands::close_window,
            commands::recover_state,
            commands::recover_trash,
            commands::recover_restore,
            commands::recover_find,
            commands::recover_versions,
            commands::recover_restore_version,
            commands::recover_open_version,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let shell = app.state::<Shell>();
            let t = shell.catalog();
            TrayIconBuilder::with_id(tray::TRAY_ID)
                .icon(icon::render(icon::TrayState::LoggedOut, icon::Theme::detect(), &icon::Badge::None)?)
                .tooltip(t.t("app.name"))
                .menu(&tray::build_menu(&handle, &tray::TrayModel::default(), &t)?)
                .show_menu_on_left_click(true)
                .on_menu_event(|app, event| match MenuAction::parse(event.id().as_ref()) {
                    Some(action) => app.state::<Shell>().act(app, action),
                    None => tracing::debug!(id = ?event.id(), "informative menu line"),
                })
                .build(app)?;

            // A click on a Nextcloud notification's OS notification opens it and marks it read.
            // The plugin calls this on its signal thread: the work goes to the runtime.
            let click_handle = handle.clone();
            let clicks = handle.notification().on_action(move |performed| {
                let Some(id) = notify::nextcloud_clicked(performed) else { return };
                let app = click_handle.clone();
                tauri::async_runtime::spawn(async move {
                    let shell = app.state::<Shell>();
                    if let Err(e) = shell.open_notice_id(&app, id) {
                        shell.act_failed(&app, &e);
                    }
                });
            });
            if let Err(e) = clicks {
                tracing::warn!(error = %e, "clicks on notifications will not be seen");
            }

            // The tray follows the model; the model follows the core's streams. No polling.
            let mut model = shell.model();
            let redraw_handle = handle.clone();
            tauri::async_runtime::spawn(async move {
                loop {
                    let current = model.borrow_and_update().clone();
                    redraw_handle.state::<Shell>().redraw(&redraw_handle, &current);
                    if model.changed().await.is_err() {
                        break;
                    }
                }
            });

            // An entry written by an earlier version (English, or without the installation's
            // folder) is rewritten once at start.
            if shell.settings().autostart == Some(true) {
                if let Err(e) = autostart::set(&handle, true) {
                    tracing::warn!(error = %e, "the autostart entry could not be refreshed");
                }
            }

            let restore_handle = handle.clone();
            tauri::async_runtime::spawn(async move {
                restore_handle.state::<Shell>().restore(&restore_handle);
                let shell = restore_handle.state::<Shell>();
                let here = std::env::current_dir().unwrap_or_default();
                let argv: Vec<String> = std::env::args().collect();
                if let (Some(path), true) = (recover_arg(&argv, &here), shell.session().is_some()) {
                    if let Err(e) = shell.open_recover(&restore_handle, path.as_deref()) {
                        shell.act_failed(&restore_handle, &e);
                    }
                }
                // Started by a file-manager action: answer it once connected.
                if let (Some(request), true) = (shell::request_in(&argv, &here), shell.session().is_some()) {
                    shell.file_request(&restore_handle, request);
                }
                // No login, or a login whose folder is not confirmed yet: the wizard asks.
                if !shell.session().is_some_and(|s| shell.folder_confirmed(&s)) {
                    let t = shell.catalog();
                    if let Err(e) = windows::open(&restore_handle, WindowKind::Wizard, &t.t("wizard.title")) {
                        tracing::warn!(error = %e, "the wizard could not open");
                    }
                }
            });
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "tray ready");
            Ok(())
        })
        .build(tauri::generate_context!());

    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "Passerelle could not start");
            std::process::exit(1);
        }
    };
    app.run(|_app, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event {
            // The last window closing is not a reason to quit: the app lives in the tray.
            // "Quitter" calls exit with a code, which goes through.
            if code.is_none() {
                api.prevent_exit();
            }
        }
    });
}

// Included by build.rs too (no inner attributes or `use` here).

/// The shell's IPC commands, the only ones the windows may call. build.rs hands this list to
/// Tauri, which then generates an `allow-<command>` permission for each and refuses any command
/// a window's capability does not grant (without the list, every registered command is open
/// to every window). Keep it in step with `generate_handler!` in main.rs.
#[allow(dead_code)] // read by build.rs and the tests
pub const COMMANDS: &[&str] = &[
    "catalog",
    "wizard_state",
    "wizard_login",
    "wizard_login_wait",
    "wizard_login_cancel",
    "wizard_login_reopen",
    "wizard_login_copy",
    "wizard_folder",
    "wizard_folder_choice",
    "pick_folder",
    "change_folder",
    "wizard_finish",
    "settings_get",
    "settings_set",
    "calendar_password",
    "chat_token",
    "logout",
    "open_logs",
    "dialog_answer",
    "dialog_details",
    "close_window",
    "recover_state",
    "recover_trash",
    "recover_restore",
    "recover_find",
    "recover_versions",
    "recover_restore_version",
    "recover_open_version",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::COMMANDS;

    /// Issue 12, item 16: the windows' capability granted `core:default` (tray, menu, event
    /// emit, image loading from a path) while the UI needs only the shell's commands. The
    /// capability now lists exactly one `allow-` permission per shell command, `ui/ipc.js` (the
    /// only caller of `invoke`) calls exactly those, and no other UI file reaches Tauri.
    #[test]
    fn the_windows_may_call_the_shells_commands_and_nothing_else() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/default.json")).expect("capability JSON");
        let granted: Vec<&str> = capability["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .map(|p| p.as_str().expect("a plain permission name"))
            .collect();
        let expected: Vec<String> = COMMANDS.iter().map(|c| format!("allow-{}", c.replace('_', "-"))).collect();
        assert_eq!(granted, expected);

        let ipc = include_str!("../../ui/ipc.js");
        let called: BTreeSet<&str> = ipc.split("call(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
        assert_eq!(called, COMMANDS.iter().copied().collect::<BTreeSet<_>>());
        for (name, text) in [
            ("dialog.js", include_str!("../../ui/dialog.js")),
            ("settings.js", include_str!("../../ui/settings.js")),
            ("wizard.js", include_str!("../../ui/wizard.js")),
            ("i18n.js", include_str!("../../ui/i18n.js")),
            ("recover.js", include_str!("../../ui/recover.js")),
        ] {
            assert!(!text.contains("__TAURI"), "{name} reaches Tauri directly");
        }
    }
}

//! Generates Tauri's context (config, capabilities, embedded UI) for the shell, and one
//! `allow-<command>` permission per IPC command (`src/ipc_commands.rs`).
fn main() {
    println!("cargo:rerun-if-changed=../i18n");
    println!("cargo:rerun-if-changed=../icons");
    println!("cargo:rerun-if-changed=src/ipc_commands.rs");
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        panic!("tauri-build: {e:#}");
    }
}

include!("src/ipc_commands.rs");

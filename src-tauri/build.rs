//! Generates Tauri's context (config, capabilities, embedded UI) for the shell.
fn main() {
    println!("cargo:rerun-if-changed=../i18n");
    println!("cargo:rerun-if-changed=../icons");
    tauri_build::build()
}

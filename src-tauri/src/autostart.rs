//! Starting with the computer. On Linux the XDG autostart entry is written here: the plugin's
//! entry is named after the binary, says "passerelle-desktop startup script" in English, and
//! drops the environment that chose the installation, so a copy run with `PASSERELLE_HOME` (the
//! demo of `scripts/run`) came back at login as a second, unconfigured Passerelle. Elsewhere the
//! autostart plugin does it.
use std::path::{Path, PathBuf};

use passerelle::i18n::{Catalog, Lang};
use tauri::{AppHandle, Wry};

/// The entry's file name: the plugin's own for the usual installation (so an entry it wrote
/// earlier is replaced, not doubled), one per folder for an installation under
/// `PASSERELLE_HOME`, so that the demo never replaces the member's real entry.
fn file_name(home: Option<&Path>) -> String {
    match home {
        None => "passerelle-desktop.desktop".into(),
        Some(home) => {
            // FNV-1a: stable across builds and runs (std's hasher is not).
            let hash = home.to_string_lossy().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
            format!("passerelle-desktop-{:08x}.desktop", hash as u32)
        }
    }
}

/// One argument of `Exec`, quoted as the Desktop Entry spec asks (then escaped as a string
/// value: backslashes doubled), `%` doubled.
fn exec_arg(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=,:@".contains(c) || !c.is_ascii());
    let quoted = if plain {
        arg.to_string()
    } else {
        let mut q = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    };
    quoted.replace('\\', "\\\\").replace('%', "%%")
}

/// The entry's text: the app's name and what it does in French and English (from the
/// catalogs), and the command that starts this very installation.
pub fn entry_text(exe: &Path, home: Option<&Path>) -> String {
    let (fr, en) = (Catalog::load(Lang::Fr), Catalog::load(Lang::En));
    let one_line = |s: String| s.replace(['\n', '\r'], " ");
    let mut exec = String::new();
    if let Some(home) = home {
        exec.push_str("env ");
        exec.push_str(&exec_arg(&format!("PASSERELLE_HOME={}", home.display())));
        exec.push(' ');
    }
    exec.push_str(&exec_arg(&exe.display().to_string()));
    format!(
        "[Desktop Entry]\nType=Application\nVersion=1.0\nName={name}\nComment={comment_en}\nComment[fr]={comment_fr}\n\
         Exec={exec}\nIcon=passerelle-desktop\nTerminal=false\nStartupNotify=false\nX-GNOME-Autostart-enabled=true\n",
        name = one_line(en.t("app.name")),
        comment_en = one_line(en.t("desktop.comment")),
        comment_fr = one_line(fr.t("desktop.comment")),
    )
}

/// The user's autostart folder (`$XDG_CONFIG_HOME/autostart`, else `~/.config/autostart`).
fn autostart_dir() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("autostart"))
}

/// The installation folder when `PASSERELLE_HOME` chose it.
fn installation() -> Option<PathBuf> {
    std::env::var_os("PASSERELLE_HOME").filter(|h| !h.is_empty()).map(PathBuf::from).map(|p| std::path::absolute(&p).unwrap_or(p))
}

/// Turns starting with the computer on or off.
pub fn set(app: &AppHandle<Wry>, on: bool) -> Result<(), String> {
    if cfg!(target_os = "linux") {
        let _ = app;
        let dir = autostart_dir().ok_or("no home folder")?;
        let home = installation();
        let path = dir.join(file_name(home.as_deref()));
        if on {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(&path, entry_text(&exe, home.as_deref())).map_err(|e| e.to_string())?;
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
                _ => {}
            }
        }
        return Ok(());
    }
    use tauri_plugin_autostart::ManagerExt as _;
    let launcher = app.autolaunch();
    if on { launcher.enable() } else { launcher.disable() }.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14, items 9 and 18: the entry speaks French and English, and starts the same
    /// installation (the demo's `PASSERELLE_HOME`), never an unconfigured copy.
    #[test]
    fn the_entry_is_in_both_languages_and_starts_this_installation() {
        let text = entry_text(Path::new("/opt/Passerelle/passerelle-desktop"), None);
        assert!(text.contains("\nName=Passerelle\n"), "{text}");
        let fr = Catalog::load(Lang::Fr).t("desktop.comment");
        assert!(text.contains(&format!("\nComment[fr]={fr}\n")) && fr.contains("coopérative"), "{text}");
        assert!(text.contains(&format!("\nComment={}\n", Catalog::load(Lang::En).t("desktop.comment"))), "{text}");
        assert!(!text.contains("startup script"), "{text}");
        assert!(text.contains("\nExec=/opt/Passerelle/passerelle-desktop\n"), "{text}");

        let demo = entry_text(Path::new("/srv/passerelle/target/debug/passerelle-desktop"), Some(Path::new("/srv/passerelle/.stack/demo home")));
        assert!(
            demo.contains("\nExec=env \"PASSERELLE_HOME=/srv/passerelle/.stack/demo home\" /srv/passerelle/target/debug/passerelle-desktop\n"),
            "{demo}"
        );
        assert_ne!(file_name(Some(Path::new("/a"))), file_name(None), "the demo would replace the member's entry");
        assert_eq!(file_name(Some(Path::new("/a"))), file_name(Some(Path::new("/a"))));
        assert_eq!(exec_arg("50%$x"), "\"50%%\\\\$x\"");
    }

    /// The package's menu entry (`linux/passerelle.desktop`, the bundler's template) carries
    /// the catalogs' words too.
    #[test]
    fn the_package_entry_uses_the_catalogs_words() {
        let template = include_str!("../linux/passerelle.desktop");
        for (key, lang) in [("Comment", Lang::En), ("Comment[fr]", Lang::Fr)] {
            let line = format!("\n{key}={}\n", Catalog::load(lang).t("desktop.comment"));
            assert!(template.contains(&line), "{line:?} not in the template");
        }
        let conf: serde_json::Value = serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json");
        assert_eq!(conf["bundle"]["linux"]["deb"]["desktopTemplate"], "linux/passerelle.desktop");
    }
}

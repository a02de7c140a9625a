//! The member's words, in French (default) and English, from the catalogs in `i18n/` shared by
//! the CLI, the desktop shell and its windows (flat JSON maps, `{name}` placeholders).
//!
//! Errors are worded here and nowhere else: a core error carries a stable `code()`, and the
//! front ends show [`Catalog::error`] for it (`error.<code>` in the catalogs). The English
//! `Display` of an error is for logs only: it may hold a URL, a path or an OS message that means
//! nothing to a member. `tests/i18n_codes.rs` fails on any code without a sentence.
use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU8, Ordering},
};

const FR: &str = include_str!("../i18n/fr.json");
const EN: &str = include_str!("../i18n/en.json");

/// The process's language, set once by the front end from the member's choice (and again when
/// it changes): errors are worded far from where the front end holds its catalog.
static CURRENT: AtomicU8 = AtomicU8::new(0);

/// The languages Passerelle speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fr = 0,
    En = 1,
}

impl Lang {
    /// From a setting ("fr", "en") or an OS locale ("en_GB.UTF-8"); French unless it says English.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    /// The member's choice, else the OS locale (`LC_ALL`, `LC_MESSAGES`, `LANG`, as gettext).
    pub fn choose(setting: Option<&str>) -> Lang {
        if let Some(tag) = setting.filter(|t| !t.trim().is_empty()) {
            return Lang::from_tag(tag);
        }
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
            .map(|v| Lang::from_tag(&v))
            .unwrap_or(Lang::Fr)
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// Makes this the process's language (see [`Catalog::current`]).
    pub fn make_current(self) {
        CURRENT.store(self as u8, Ordering::Relaxed);
    }

    pub fn current() -> Lang {
        match CURRENT.load(Ordering::Relaxed) {
            1 => Lang::En,
            _ => Lang::Fr,
        }
    }
}

/// One language's strings.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub lang: Lang,
    strings: BTreeMap<String, String>,
}

impl Catalog {
    pub fn load(lang: Lang) -> Catalog {
        let text = match lang {
            Lang::Fr => FR,
            Lang::En => EN,
        };
        // The catalogs are part of the build and checked by a test; a broken one shows keys.
        let strings = serde_json::from_str(text).unwrap_or_else(|e| {
            tracing::error!(error = %e, lang = lang.tag(), "the catalog is not valid JSON");
            BTreeMap::new()
        });
        Catalog { lang, strings }
    }

    /// The catalog of the process's language.
    pub fn current() -> Catalog {
        Catalog::load(Lang::current())
    }

    /// What to tell the member about an error, by its stable code: what happened and what to
    /// do, with no URL, path or OS message. An unknown code gets the general sentence.
    pub fn error(&self, code: &str) -> String {
        self.strings.get(&format!("error.{code}")).cloned().unwrap_or_else(|| self.t("error.unknown"))
    }

    pub fn strings(&self) -> &BTreeMap<String, String> {
        &self.strings
    }

    /// The string for `key`; the key itself when missing, so a gap is visible but harmless.
    pub fn t(&self, key: &str) -> String {
        self.strings.get(key).cloned().unwrap_or_else(|| key.to_string())
    }

    /// The string for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key);
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// A size in the member's words: "42 Mo", "1,5 Go". Binary units, as Nextcloud counts
    /// them, so that the coop's "150 Mo" quota reads 150 Mo here too, not 157.
    pub fn size(&self, bytes: u64) -> String {
        const K: f64 = 1024.0;
        let (key, value) = match bytes {
            b if b < 1024 => return self.f("size.bytes", &[("n", &b.to_string())]),
            b if b < 1024 * 1024 => ("size.kb", b as f64 / K),
            b if b < 1024 * 1024 * 1024 => ("size.mb", b as f64 / (K * K)),
            b => ("size.gb", b as f64 / (K * K * K)),
        };
        let mut n = if value < 10.0 { format!("{value:.1}") } else { format!("{value:.0}") };
        if n.ends_with(".0") {
            n.truncate(n.len() - 2);
        }
        if self.lang == Lang::Fr {
            n = n.replace('.', ",");
        }
        self.f(key, &[("n", &n)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_parse_and_have_the_same_keys() {
        let fr: BTreeMap<String, String> = serde_json::from_str(FR).unwrap();
        let en: BTreeMap<String, String> = serde_json::from_str(EN).unwrap();
        let fr_keys: Vec<_> = fr.keys().collect();
        let en_keys: Vec<_> = en.keys().collect();
        assert_eq!(fr_keys, en_keys);
        // Same placeholders on both sides.
        let holes = |s: &str| s.split('{').skip(1).filter_map(|p| p.split('}').next()).map(str::to_owned).collect::<Vec<_>>();
        for (k, v) in &fr {
            assert_eq!(holes(v), holes(&en[k]), "placeholders of {k}");
        }
    }

    #[test]
    fn french_unless_english() {
        assert_eq!(Lang::from_tag("en_GB.UTF-8"), Lang::En);
        assert_eq!(Lang::from_tag("de_DE.UTF-8"), Lang::Fr);
        assert_eq!(Lang::choose(Some("en")), Lang::En);
    }

    #[test]
    fn sizes_read_naturally() {
        let fr = Catalog::load(Lang::Fr);
        const MIB: u64 = 1024 * 1024;
        assert_eq!(fr.size(42 * MIB), "42 Mo");
        // The coop's quota as Nextcloud sets it (157,286,400 bytes) reads as it was announced.
        assert_eq!(fr.size(157_286_400), "150 Mo");
        assert_eq!(fr.size(1536 * MIB), "1,5 Go");
        assert_eq!(Catalog::load(Lang::En).size(1536 * MIB), "1.5 GB");
        assert_eq!(fr.size(2048), "2 Ko");
        assert_eq!(fr.f("tray.quota", &[("used", &fr.size(42 * MIB)), ("total", &fr.size(157_286_400))]), "42 Mo sur 150 Mo");
    }
}

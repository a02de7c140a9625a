//! Every error a member can be shown is worded in both catalogs: this walks the sources for the
//! stable codes (each error enum's `code()`, and the codes the desktop shell raises itself) and
//! fails on any code without an `error.<code>` sentence in `i18n/fr.json` and `i18n/en.json`.
//! The sentences themselves must read as plain words: no URL, no path, no OS message.
use std::{collections::BTreeSet, path::Path};

use passerelle::i18n::{Catalog, Lang};

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).expect("read")));
        }
    }
}

/// The string literal right after `marker` (`marker"code"`), for each occurrence.
fn literals_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = text[i + marker.len()..].trim_start().strip_prefix('"')?;
            rest.split('"').next()
        })
        .collect()
}

/// The codes a `pub fn code(&self) -> &'static str` returns: the literals after `=>` in its body.
fn codes_of_code_fns(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (start, _) in text.match_indices("fn code(&self) -> &'static str") {
        let body = &text[start..];
        // The body ends at the first line that closes the function at its indentation.
        let end = body.find("\n    }\n").unwrap_or(body.len());
        out.extend(literals_after(&body[..end], "=>"));
    }
    out
}

fn all_codes() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("src-tauri/src"), &mut files);
    let mut codes = BTreeSet::new();
    for (_, text) in &files {
        codes.extend(codes_of_code_fns(text).into_iter().map(str::to_owned));
        for marker in ["ShellError::new(", "ShellError::logged(", "SyncLine::Error("] {
            codes.extend(literals_after(text, marker).into_iter().map(str::to_owned));
        }
    }
    codes
}

#[test]
fn every_error_code_has_a_sentence_in_both_languages() {
    let codes = all_codes();
    // The walk itself must find the codes, or this test would pass on nothing.
    for known in ["offline", "login_required", "quota_exceeded", "folder_missing", "discovery_unreachable", "not_logged_in"] {
        assert!(codes.contains(known), "the source walk missed {known}: {codes:?}");
    }
    let mut missing = Vec::new();
    for lang in [Lang::Fr, Lang::En] {
        let catalog = Catalog::load(lang);
        for code in &codes {
            if !catalog.strings().contains_key(&format!("error.{code}")) {
                missing.push(format!("{}: error.{code}", lang.tag()));
            }
        }
    }
    assert!(missing.is_empty(), "error codes without a sentence:\n{}", missing.join("\n"));
}

#[test]
fn error_sentences_are_plain_words() {
    for lang in [Lang::Fr, Lang::En] {
        let catalog = Catalog::load(lang);
        for (key, text) in catalog.strings().iter().filter(|(k, _)| k.starts_with("error.")) {
            let lower = text.to_lowercase();
            for jargon in ["://", "os error", "exitstatus", "errno", "http", "mounted", "monté", "{", "}"] {
                assert!(!lower.contains(jargon), "{}: {key} says {jargon:?}: {text}", lang.tag());
            }
            assert!(text.ends_with('.') || text.ends_with('!'), "{}: {key} is not a sentence: {text}", lang.tag());
        }
    }
}

#[test]
fn an_unknown_code_reads_as_the_general_sentence() {
    let fr = Catalog::load(Lang::Fr);
    assert_eq!(fr.error("no-such-code"), fr.t("error.unknown"));
    assert!(!fr.error("offline").starts_with("error."));
}

/// A key written twice in a catalog silently keeps only its last sentence: two error codes
/// once both read `locked` (the folder synced by another window, and a file being edited
/// online), and the tray told a member whose file was locked that their folder was busy.
#[test]
fn no_key_is_written_twice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["fr.json", "en.json"] {
        let text = std::fs::read_to_string(root.join("i18n").join(name)).expect("catalog");
        let mut seen = BTreeSet::new();
        let mut twice = Vec::new();
        // The catalogs are flat, one `"key": "sentence"` per line.
        for key in text.lines().filter_map(|l| l.trim_start().strip_prefix('"')?.split_once("\":").map(|(k, _)| k)) {
            if !seen.insert(key) {
                twice.push(key);
            }
        }
        assert!(seen.len() > 100, "{name}: the line walk found only {} keys", seen.len());
        assert!(twice.is_empty(), "{name}: keys written twice: {twice:?}");
    }
}

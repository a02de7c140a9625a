//! Which names may be synced. Every remote name is untrusted: a name that could escape the sync
//! root or that this computer cannot hold is refused with a reason, and the rest of the sync
//! goes on. Paths inside the engine are "keys": relative, `/`-separated, in Unicode NFC, so that
//! the NFC and NFD spellings of one name are the same item.
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// Prefix of our own temporary download files (hidden, in the target's folder).
pub const TEMP_PREFIX: &str = ".passerelle-tmp-";
/// The member's ignore file at the root of the sync folder: one glob pattern per line.
pub const IGNORE_FILE: &str = ".passerelle-ignore";
/// The longest name most file systems accept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// An item that is not synced, and why (shown to the member as is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The path as it was seen (possibly the server's raw spelling).
    pub path: String,
    pub reason: String,
}

/// The NFC form of a name: the key under which it is compared on both sides.
pub fn key(name: &str) -> String {
    // Most names are already NFC (all ASCII ones are): the quick check spares the normaliser.
    if name.is_ascii() || unicode_normalization::is_nfc_quick(name.chars()) == unicode_normalization::IsNormalized::Yes {
        return name.to_string();
    }
    name.nfc().collect()
}

/// Checks one remote name (a single path segment, already percent-decoded). `Err` is the reason.
pub fn check_remote_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name == "." || name == ".." {
        return Err(format!("“{name}” would point outside its folder"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err("the name contains a slash or a backslash".into());
    }
    if name.contains('\0') {
        return Err("the name contains a NUL character".into());
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("the name contains a control character".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("the name is {} bytes long; the limit is {MAX_NAME_BYTES}", name.len()));
    }
    Ok(())
}

/// The system whose naming rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    /// Linux, macOS and the other Unix systems.
    Unix,
}

impl Platform {
    /// The system this program runs on.
    pub const fn current() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Unix
        }
    }
}

/// What becomes of a name the server lists, on `platform`: `Err(reason)` when it is refused,
/// `Ok(Some(warning))` when it is synced but could not exist on Windows (other members may be
/// on Windows), `Ok(None)` when all is well. On Windows such a name is refused: `a:b` would
/// write the stream `b` of the file `a`, `CON` is the console, and a trailing dot or space is
/// silently dropped, so the file would land under another name.
pub fn judge_remote_name(name: &str, platform: Platform) -> Result<Option<String>, String> {
    check_remote_name(name)?;
    match (windows_problem(name), platform) {
        (Some(problem), Platform::Windows) => Err(problem),
        (problem, _) => Ok(problem),
    }
}

/// Why a name cannot exist on Windows, if it cannot (see [`judge_remote_name`]).
pub fn windows_problem(name: &str) -> Option<String> {
    if let Some(c) = name.chars().find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')) {
        return Some(format!("“{c}” is not allowed in names on Windows"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("names ending with a dot or a space are not allowed on Windows".into());
    }
    let stem = name.split('.').next().unwrap_or("").trim_end().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0');
    reserved.then(|| format!("“{name}” is a reserved name on Windows"))
}

/// Built-in and member-defined patterns of names that are never synced.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// Each pattern as characters (matched once per scanned name, so decoded once here), and
    /// whether it holds a `/` (then it matches the whole path).
    patterns: Vec<(Vec<char>, bool)>,
}

/// Editor locks, Office owner files, OS junk, and our own temporary files.
const BUILT_IN: &[&str] = &[".~lock.*#", "~$*", ".DS_Store", "Thumbs.db", "desktop.ini", ".passerelle-tmp-*", ".passerelle-ignore"];

impl Ignore {
    /// The built-in patterns plus the lines of the ignore file's text (`#` starts a comment).
    pub fn new(ignore_file: &str) -> Ignore {
        let member = ignore_file
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.trim_end_matches('/'));
        let patterns = BUILT_IN.iter().copied().chain(member).map(|p| (p.chars().collect(), p.contains('/'))).collect();
        Ignore { patterns }
    }

    /// Reads the ignore file of a sync root (absent file: built-ins only).
    pub fn load(root: &std::path::Path) -> Ignore {
        Ignore::new(&std::fs::read_to_string(root.join(IGNORE_FILE)).unwrap_or_default())
    }

    /// True when the item at `path` (a key) is ignored: a pattern with a `/` matches the whole
    /// path, one without matches the last name.
    pub fn is_ignored(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.patterns.iter().any(|(p, whole)| if *whole { glob(p, path) } else { glob(p, name) })
    }
}

/// `*` (any run of characters) and `?` (one character) glob matching. Walks the text by byte
/// offsets, one character at a time, so nothing is allocated per name.
fn glob(p: &[char], text: &str) -> bool {
    let next = |at: usize| text[at..].chars().next();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while let Some(c) = next(ti) {
        if pi < p.len() && (p[pi] == '?' || p[pi] == c) {
            pi += 1;
            ti += c.len_utf8();
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += next(mark).map_or(1, char::len_utf8);
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The conflict copy's name: `NAME (conflit YYYY-MM-DD HHMMSS).EXT`, beside the original.
pub fn conflict_name(path: &str, when: time::PrimitiveDateTime) -> String {
    conflict_name_nth(path, when, 1)
}

/// The `n`-th conflict copy name of the same second (`n` > 1 adds a counter), for when an
/// earlier copy already took the plain name.
pub fn conflict_name_nth(path: &str, when: time::PrimitiveDateTime, n: u32) -> String {
    let (dir, name) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let stamp = format!(
        "{:04}-{:02}-{:02} {:02}{:02}{:02}",
        when.year(),
        u8::from(when.month()),
        when.day(),
        when.hour(),
        when.minute(),
        when.second()
    );
    let counter = if n > 1 { format!(" {n}") } else { String::new() };
    format!("{dir}{stem} (conflit {stamp}{counter}){ext}")
}

/// The parent key of a key ("" for the root's children).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// True when `path` is `dir` itself or inside it.
pub fn is_within(path: &str, dir: &str) -> bool {
    path == dir || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in ["", ".", "..", "a/b", "..\\..", "a\0b", "x\ny"] {
            assert!(check_remote_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_remote_name(&"é".repeat(200)).is_err());
        assert!(check_remote_name("Compte rendu (v2).odt").is_ok());
    }

    #[test]
    fn ignores() {
        let ig = Ignore::new("*.tmp\nbuild/\n# comment\ndocs/*.bak");
        for p in [".~lock.rapport.odt#", "a/~$rapport.docx", ".DS_Store", "x/Thumbs.db", "a.tmp", "build", "docs/x.bak", ".passerelle-tmp-1"] {
            assert!(ig.is_ignored(p), "{p}");
        }
        for p in ["rapport.odt", "a/tmp", "other/x.bak", "builder"] {
            assert!(!ig.is_ignored(p), "{p}");
        }
        // `?` is one character, not one byte; `*` backtracks over multi-byte characters.
        let ig = Ignore::new("é?.txt\n*ü*é");
        for p in ["éa.txt", "d/éé.txt", "üé", "aüxxé", "üéé"] {
            assert!(ig.is_ignored(p), "{p}");
        }
        for p in ["é.txt", "éab.txt", "eé.txt", "üe", "éü"] {
            assert!(!ig.is_ignored(p), "{p}");
        }
    }

    /// Issue 12, item 18: Windows-invalid names were only warnings on Windows too. The rule,
    /// run here for both systems: refused on Windows, a warning elsewhere.
    #[test]
    fn windows_invalid_names_are_refused_on_windows_only() {
        for name in ["a:b", "CON", "con.txt", "LPT1", "trailing.", "trailing ", "what?", "x|y"] {
            assert!(judge_remote_name(name, Platform::Windows).is_err(), "{name} on Windows");
            assert!(matches!(judge_remote_name(name, Platform::Unix), Ok(Some(_))), "{name} elsewhere");
        }
        for name in ["rapport.odt", "console.txt", "COM0", ".bashrc"] {
            assert_eq!(judge_remote_name(name, Platform::Windows), Ok(None), "{name}");
        }
        assert!(judge_remote_name("..", Platform::Unix).is_err());
        assert_eq!(Platform::current(), if cfg!(windows) { Platform::Windows } else { Platform::Unix });
    }

    #[test]
    fn windows_names() {
        assert!(windows_problem("a:b").is_some());
        assert!(windows_problem("CON.txt").is_some());
        assert!(windows_problem("com1").is_some());
        assert!(windows_problem("trailing.").is_some());
        assert!(windows_problem("console.txt").is_none());
    }

    #[test]
    fn conflict_names() {
        let when = time::macros::datetime!(2026-03-04 05:06:07);
        assert_eq!(conflict_name("a/rapport.odt", when), "a/rapport (conflit 2026-03-04 050607).odt");
        assert_eq!(conflict_name("README", when), "README (conflit 2026-03-04 050607)");
        assert_eq!(conflict_name(".bashrc", when), ".bashrc (conflit 2026-03-04 050607)");
        assert_eq!(key("e\u{301}"), "é");
        assert_eq!(key("caf\u{e9} e\u{301}t\u{e9}"), "café été");
        assert_eq!(key("plain.txt"), "plain.txt");
    }
}

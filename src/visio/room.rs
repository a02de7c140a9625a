//! Unguessable ad-hoc room names that people can still read aloud: seven French words (no
//! accents) and four digits, e.g. `pomme-ours-velo-lune-sable-radis-tigre-4821`.
//!
//! 7 words from a list of 1024 give 70 bits, the digits 13.3 more: 83.3 bits, above the 80 bits
//! asked for. Draws come from the OS random source (`OsRng`) with uniform sampling, so each bit
//! counts. Only `a-z`, `0-9` and `-`: the name is unchanged by Jitsi's NFKC and lower-casing.
use rand::{rngs::OsRng, CryptoRng, Rng, TryRngCore};

/// The word list: 1024 common French words, 3 to 7 letters, ASCII only, one per line.
const WORD_LIST: &str = include_str!("words.txt");

/// Number of words in a room name.
pub const ROOM_WORDS: usize = 7;
/// Number of digits at the end of a room name.
pub const ROOM_DIGITS: u32 = 4;

/// The words, in list order.
pub static WORDS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| WORD_LIST.lines().map(str::trim).filter(|w| !w.is_empty()).collect());

/// Entropy of one room name, in bits: `ROOM_WORDS * log2(len(WORDS)) + ROOM_DIGITS * log2(10)`.
pub static ROOM_ENTROPY_BITS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
    ROOM_WORDS as f64 * (WORDS.len() as f64).log2() + f64::from(ROOM_DIGITS) * 10f64.log2()
});

/// A fresh room name from the OS random source.
pub fn new_room() -> String {
    new_room_with(&mut OsRng.unwrap_err())
}

/// A fresh room name from `rng`, which must be a cryptographic generator (the type says so).
pub fn new_room_with<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> String {
    let words = &*WORDS;
    let mut parts: Vec<String> = (0..ROOM_WORDS).map(|_| words[rng.random_range(0..words.len())].to_string()).collect();
    let digits = rng.random_range(0..10u32.pow(ROOM_DIGITS));
    parts.push(format!("{digits:0width$}", width = ROOM_DIGITS as usize));
    parts.join("-")
}

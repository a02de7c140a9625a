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

/// How long a copied invite waits for its "start a visio": long enough to paste it into a mail
/// and start, short enough that a guest of that meeting cannot walk into next week's.
pub const INVITE_WAITS: chrono::Duration = chrono::Duration::hours(1);

/// The desktop's ad-hoc room. Each "start a visio" gets a fresh, unguessable room, so a guest
/// of an earlier meeting cannot join a later one; the one exception is a "copy the invite" just
/// before, whose room the start then joins (the guests were sent there), once. The time is
/// passed in.
#[derive(Debug, Default)]
pub struct AdHocRoom {
    /// The room of the last copied invite, not yet started, and when it was copied.
    invited: Option<(String, chrono::DateTime<chrono::Utc>)>,
}

impl AdHocRoom {
    /// The room for "copy the invite": the one already waiting (copying twice gives the same
    /// link), else a fresh one that the next start will join.
    pub fn for_invite(&mut self, now: chrono::DateTime<chrono::Utc>) -> String {
        match &self.invited {
            Some((room, at)) if now - *at < INVITE_WAITS && now >= *at => {
                let room = room.clone();
                self.invited = Some((room.clone(), now));
                room
            }
            _ => {
                let room = new_room();
                self.invited = Some((room.clone(), now));
                room
            }
        }
    }

    /// The room for "start a visio": the invited room if its invite is fresh (then forgotten),
    /// else a fresh one.
    pub fn for_start(&mut self, now: chrono::DateTime<chrono::Utc>) -> String {
        match self.invited.take() {
            Some((room, at)) if now - at < INVITE_WAITS && now >= at => room,
            _ => new_room(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes)
    }

    /// Issue 12, item 17: the desktop app reused one ad-hoc room for as long as it ran (weeks),
    /// so a guest of an earlier meeting could join later ones. Each start is now a fresh room,
    /// except right after copying an invite, which the start joins once.
    #[test]
    fn each_start_is_a_fresh_room_unless_an_invite_was_just_copied() {
        let mut rooms = AdHocRoom::default();
        let first = rooms.for_start(at(0));
        let second = rooms.for_start(at(1));
        assert_ne!(first, second);

        let invited = rooms.for_invite(at(10));
        assert_eq!(rooms.for_invite(at(12)), invited, "copying twice gives the same link");
        assert_eq!(rooms.for_start(at(20)), invited, "the start joins the guests");
        let after = rooms.for_start(at(21));
        assert_ne!(after, invited, "the next start is a fresh room again");

        let stale = rooms.for_invite(at(100));
        assert_ne!(rooms.for_start(at(100 + 61)), stale, "an invite older than an hour is forgotten");
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        assert!((0..50).all(|i| seen.insert(rooms.for_start(at(200 + i)))));
    }
}

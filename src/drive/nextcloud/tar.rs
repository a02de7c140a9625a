//! Reading the tar archive Nextcloud streams for a folder download (`ZipFolderPlugin`, asked
//! with `Accept: application/x-tar` and a `files` filter). Only what a batched download needs:
//! regular files, their names and bytes, held in memory (small files only). Anything odd (a bad
//! header checksum, sizes past the end, an error page appended mid-stream, which a whole-folder
//! download on Nextcloud 34.0.1 did with a PHP TypeError) ends the reading: the entries read
//! whole before it are kept, the rest are fetched one by one by the caller.
//!
//! Observed on 34.0.1: ustar headers, the file name in `name` and "/" in `prefix` (so `tar tv`
//! shows `//f000.txt`), mode 0777, uid/gid 0.

const BLOCK: usize = 512;

/// One regular file of the archive: its name (leading slashes removed) and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    pub name: String,
    pub content: Vec<u8>,
}

/// The regular files read whole, in archive order, up to the first thing that is not a valid
/// entry.
pub fn files(archive: &[u8]) -> Vec<TarFile> {
    let mut out = Vec::new();
    let mut at = 0usize;
    // A GNU long name ('L') or a pax `path` ('x') applies to the next entry.
    let mut long_name: Option<String> = None;
    while at + BLOCK <= archive.len() {
        let header = &archive[at..at + BLOCK];
        if header.iter().all(|b| *b == 0) {
            break; // end of archive
        }
        if !checksum_ok(header) {
            tracing::debug!(offset = at, "tar: bad header checksum, reading stops");
            break;
        }
        let Some(size) = octal(&header[124..136]) else { break };
        let Ok(size) = usize::try_from(size) else { break };
        let data_start = at + BLOCK;
        let Some(data_end) = data_start.checked_add(size).filter(|e| *e <= archive.len()) else {
            tracing::debug!(offset = at, "tar: an entry runs past the end, reading stops");
            break;
        };
        let data = &archive[data_start..data_end];
        match header[156] {
            b'0' | 0 => {
                let name = long_name.take().unwrap_or_else(|| ustar_name(header));
                let name = name.trim_start_matches('/').to_string();
                if !name.is_empty() {
                    out.push(TarFile { name, content: data.to_vec() });
                }
            }
            b'L' => long_name = Some(cstr(data)),
            b'x' => long_name = pax_path(data),
            _ => long_name = None, // folders, links, anything else: not ours to write
        }
        at = data_start + size.div_ceil(BLOCK) * BLOCK;
    }
    out
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn ustar_name(header: &[u8]) -> String {
    let name = cstr(&header[0..100]);
    let prefix = if &header[257..262] == b"ustar" { cstr(&header[345..500]) } else { String::new() };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// A numeric field: octal digits, NUL/space padded (base-256 sizes are not expected here).
fn octal(field: &[u8]) -> Option<u64> {
    let digits: Vec<u8> = field.iter().copied().skip_while(|b| *b == b' ').take_while(|b| (b'0'..=b'7').contains(b)).collect();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 8).ok()
}

fn checksum_ok(header: &[u8]) -> bool {
    let Some(stored) = octal(&header[148..156]) else { return false };
    let sum: u64 = header.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(*b) }).sum();
    sum == stored
}

/// The `path` record of a pax extended header ("LEN path=VALUE\n" records).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines().find_map(|line| line.split_once(' ').and_then(|(_, kv)| kv.strip_prefix("path=")).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One ustar entry as Nextcloud 34.0.1 writes it (name in `name`, "/" in `prefix`).
    fn entry(name: &str, content: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000777");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
        h[136..147].copy_from_slice(b"15303132410");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[345] = b'/';
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut out = h;
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    #[test]
    fn reads_nextcloud_entries_and_stops_at_garbage() {
        let mut archive = entry("f000.txt", &[7u8; 10240]);
        archive.extend(entry("é ü.txt", b"accents"));
        archive.extend(entry("empty", b""));
        archive.extend(vec![0u8; 2 * BLOCK]);
        let got = files(&archive);
        assert_eq!(got.iter().map(|f| (f.name.as_str(), f.content.len())).collect::<Vec<_>>(), [("f000.txt", 10240), ("é ü.txt", 7), ("empty", 0)]);
        assert_eq!(got[1].content, b"accents");

        // An error page appended mid-stream (observed on a whole-folder download): the entry
        // read before it stays, nothing after it is taken.
        let mut broken = entry("a.txt", b"aaa");
        broken.extend(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error>TypeError</d:error>".iter().copied().chain(std::iter::repeat_n(b' ', 600)));
        assert_eq!(files(&broken).len(), 1);

        // Cut short: the half entry is not taken.
        let whole = entry("big.bin", &[1u8; 4000]);
        assert!(files(&whole[..BLOCK + 1000]).is_empty());
    }
}

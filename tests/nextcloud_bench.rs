//! Nextcloud benchmarks against the test double (ignored tests; `scripts/bench-nextcloud` runs
//! each in its own process so peak RSS is the benchmark's own). Each prints one Markdown row of
//! the BENCHMARKS.md table on stdout, prefixed with `ROW `, only after checking the result (the
//! listing is complete, every uploaded file reads back byte for byte), so a broken run panics
//! instead of printing a figure.
mod nextcloud_double;

use std::{io::Write, time::Instant};

use nextcloud_double::{noise, Double};
use passerelle::drive::nextcloud::{
    bulk::{self, BulkFile, BulkOptions},
    chunked::{self, ChunkOptions, MIB},
    walk::{self, TreeCache},
};
use passerelle::drive::remote::Precondition;
use serde_json::json;

fn row(line: String) {
    let _ = writeln!(std::io::stdout(), "ROW {line}");
}

/// Panics unless the server's file has exactly the bytes of the local one.
async fn same_as_server(nc: &Double, remote: &str, local: &std::path::Path) {
    use futures_util::StreamExt;
    use std::io::Read;
    let r = nc
        .http
        .get(nc.url.join(&format!("remote.php/dav/files/{}/{remote}", nextcloud_double::USER)).unwrap())
        .basic_auth(nextcloud_double::USER, Some(nextcloud_double::APP_PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {remote}: {}", r.status());
    let mut file = std::io::BufReader::new(std::fs::File::open(local).unwrap());
    let mut body = r.bytes_stream();
    let mut offset = 0u64;
    while let Some(piece) = body.next().await {
        let piece = piece.unwrap();
        let mut mine = vec![0u8; piece.len()];
        file.read_exact(&mut mine).unwrap_or_else(|_| panic!("{remote} is longer on the server"));
        assert!(mine[..] == piece[..], "{remote} differs from the local file near byte {offset}");
        offset += piece.len() as u64;
    }
    assert_eq!(file.read(&mut [0u8; 1]).unwrap(), 0, "{remote} is shorter on the server ({offset} bytes)");
}

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    if ok {
        usage.ru_maxrss as f64 / 1024.0
    } else {
        f64::NAN
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-nextcloud"]
async fn bench_noop_poll_10000() {
    let nc = Double::start(None);
    nc.control("_test/seed", json!({"user": "alice", "files": 10000, "per_folder": 100})).await;
    let client = nc.connect().await;
    let mut cache = TreeCache::default();
    let t = Instant::now();
    let first = walk::walk(&client, "", &mut cache).await.expect("walk");
    let full_ms = t.elapsed().as_secs_f64() * 1000.0;
    let files = first.entries().values().filter(|e| !e.is_dir).count();
    assert_eq!(files, 10_000, "the first walk lists every seeded file");
    let mut times = Vec::new();
    let mut requests = 0;
    for _ in 0..20 {
        nc.reset().await;
        let t = Instant::now();
        let w = walk::walk(&client, "", &mut cache).await.expect("poll");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(w.unchanged);
        requests = nc.requests().await;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    row(format!(
        "| no-op poll, 10,000 files (folder ETags) | {requests} request | {:.1} ms (median of 20) | first full walk: {} requests, {:.0} ms |",
        times[10], first.requests, full_ms
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-nextcloud"]
async fn bench_upload_300_small_2_big() {
    for bulk_on in [true, false] {
        let nc = Double::start(None);
        nc.control("_test/capabilities", json!({"bulkupload": bulk_on})).await;
        let client = nc.connect().await;
        let dir = tempfile::tempdir().unwrap();
        let mut small = Vec::new();
        for i in 0..300u64 {
            let rel = format!("bench/small/f{i:03}.txt");
            small.push(BulkFile { path: rel.clone(), source: nextcloud_double::write(dir.path(), &rel, &noise(10_240, i)), mtime: 1_700_000_000 });
        }
        let a = nextcloud_double::write(dir.path(), "a.bin", &noise(10 << 20, 1));
        let b = nextcloud_double::write(dir.path(), "b.bin", &noise(10 << 20, 2));
        nc.reset().await;
        let t = Instant::now();
        let options = BulkOptions::default();
        let (report, ra, rb) = tokio::join!(
            bulk::upload(&client, small, &options),
            bulk::put_file(&client, "a.bin", &a, 1, Precondition::Create),
            bulk::put_file(&client, "b.bin", &b, 1, Precondition::Create),
        );
        let secs = t.elapsed().as_secs_f64();
        assert!(report.failed.is_empty() && ra.is_ok() && rb.is_ok());
        let requests = nc.requests().await;
        // The files really arrived, byte for byte (read back after the count).
        for i in 0..300u64 {
            let rel = format!("bench/small/f{i:03}.txt");
            assert!(nc.read(&rel).await.as_deref() == Some(&noise(10_240, i)[..]), "{rel} differs on the server");
        }
        assert!(nc.read("a.bin").await.as_deref() == Some(&noise(10 << 20, 1)[..]), "a.bin differs on the server");
        assert!(nc.read("b.bin").await.as_deref() == Some(&noise(10 << 20, 2)[..]), "b.bin differs on the server");
        row(format!(
            "| upload 300 × 10 KB + 2 × 10 MB, {} | {requests} requests | {secs:.2} s | |",
            if bulk_on { "bulk upload (dav.bulkupload)" } else { "bulk off: one PUT per file, 4 at once" }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-nextcloud"]
async fn bench_chunked_1gb() {
    let nc = Double::start(Some(4 << 30));
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1g.bin");
    {
        // Written in pieces so the benchmark's own memory stays out of the figure.
        let mut f = std::fs::File::create(&path).unwrap();
        for i in 0..64u64 {
            f.write_all(&noise(16 << 20, i + 1)).unwrap();
        }
    }
    let before = peak_rss_mb();
    nc.reset().await;
    let t = Instant::now();
    let done = chunked::upload(&client, &path, "1g.bin", 1_700_000_000, None, &ChunkOptions::default()).await.expect("upload");
    let secs = t.elapsed().as_secs_f64();
    assert!(done.mtime_accepted);
    let peak = peak_rss_mb();
    let requests = nc.requests().await;
    let mb = (1u64 << 30) as f64 / 1e6;
    let chunks = nc.stats().await["chunk_puts"].as_array().map(|a| a.len()).unwrap_or(0);
    // The file really arrived, byte for byte: streamed back and compared piece by piece, after
    // the peak RSS was read so the check does not count in it.
    same_as_server(&nc, "1g.bin", &path).await;
    row(format!(
        "| chunked upload v2, 1 GiB ({chunks} × {} MiB chunks, 3 in flight) | {requests} requests | {:.0} MB/s ({secs:.1} s) | peak RSS {peak:.0} MB (before the upload: {before:.0} MB) |",
        ChunkOptions::default().chunk_size / MIB,
        mb / secs,
    ));
}

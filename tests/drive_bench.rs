//! The local cost of a no-op sync, apart from any network: 10,000 unchanged files (100 folders
//! of 100) synced once to the in-memory remote, then synced again and again with nothing to do.
//! An ignored test (a benchmark, not a timed test: nothing here asserts on speed); run it with
//! `cargo test --release --test drive_bench -- --ignored --nocapture`. It prints one Markdown
//! row prefixed with `ROW ` after checking that every run succeeded and did nothing, and that
//! the remote holds every file byte for byte.
use std::{io::Write, path::Path};

use passerelle::drive::{
    memory::MemoryRemote,
    run::{sync_once, FolderPaths, Outcome, RunOptions, Timings},
};

const FOLDERS: usize = 100;
const PER_FOLDER: usize = 100;
const RUNS: usize = 21;

fn make_tree(root: &Path) {
    for d in 0..FOLDERS {
        let dir = root.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..PER_FOLDER {
            std::fs::write(dir.join(format!("f{f}.txt")), format!("{d} {f}\n")).unwrap();
        }
    }
}

/// CPU time of the whole process so far (user + system, every thread), in ms: on a shared,
/// loaded machine the wall-clock phases also count the time spent waiting for a core.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test drive_bench -- --ignored --nocapture"]
async fn bench_noop_local_10000() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Passerelle");
    make_tree(&root);
    let remote = MemoryRemote::new();
    let folder = FolderPaths::new(&dir.path().join("data"), &root, "memory");
    let options = RunOptions::default();

    match sync_once(&folder, &remote, &options, None).await.expect("first sync") {
        Outcome::Done(s) => assert!(s.report.failed.is_empty() && s.report.done >= FOLDERS * PER_FOLDER, "{:?}", s.report),
        other => panic!("first sync: {other:?}"),
    }
    // The files really arrived, byte for byte.
    let snapshot = remote.snapshot();
    assert_eq!(snapshot.len(), FOLDERS * (PER_FOLDER + 1));
    for d in 0..FOLDERS {
        for f in 0..PER_FOLDER {
            let key = format!("d{d}/f{f}.txt");
            let data = snapshot.get(&key).and_then(|x| x.as_ref()).unwrap_or_else(|| panic!("{key} missing"));
            assert_eq!(&data[..], format!("{d} {f}\n").as_bytes(), "{key}");
        }
    }

    let mut all: Vec<Timings> = Vec::new();
    let mut cpu: Vec<f64> = Vec::new();
    for _ in 0..RUNS {
        let before = cpu_ms();
        let outcome = sync_once(&folder, &remote, &options, None).await.expect("no-op sync");
        cpu.push(cpu_ms() - before);
        match outcome {
            Outcome::Done(s) => {
                assert_eq!((s.report.done, s.report.failed.len(), s.passes), (0, 0, 1), "a no-op run did something");
                all.push(s.timings);
            }
            other => panic!("no-op sync: {other:?}"),
        }
    }
    let m = |f: fn(&Timings) -> f64| median(all.iter().map(f).collect());
    let _ = writeln!(
        std::io::stdout(),
        "ROW | no-op run, 10,000 unchanged files, in-memory remote (median of {RUNS}) | {:.1} ms local (wall) | CPU of the whole run (user + sys, all threads, listing included) {:.1} ms; wall: journal {:.1} ms, scan {:.1} ms, plan {:.1} ms, remote listing {:.1} ms, whole run {:.1} ms |",
        m(|t| t.local_ms),
        median(cpu),
        m(|t| t.journal_ms),
        m(|t| t.scan_ms),
        m(|t| t.plan_ms),
        m(|t| t.remote_list_ms),
        m(|t| t.total_ms),
    );
}

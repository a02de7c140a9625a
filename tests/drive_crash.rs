//! Crash test: a child `passerelle sync` is killed with SIGKILL at random points during a large
//! sync (uploads in half the trials, downloads in the other half), against the real rclone
//! WebDAV server. After a restart it converges, nothing is lost, and no partial file ever shows
//! under a real name. CI runs 20 trials; `PASSERELLE_SOAK=1` runs 50.
mod drive_support;

use std::time::{Duration, Instant};

use drive_support::*;
use rand::Rng;

fn trials() -> usize {
    if std::env::var("PASSERELLE_SOAK").is_ok_and(|v| v == "1") {
        50
    } else {
        20
    }
}

fn files(seed: u64) -> Tree {
    let mut rng = rand::rng();
    let mut tree = Tree::new();
    for d in 0..5 {
        tree.insert(format!("dir {d}"), None);
        for f in 0..40 {
            let len = rng.random_range(1000..8000);
            let data: Vec<u8> = (0..len).map(|i| ((i as u64 * 31 + seed + f) % 251) as u8).collect();
            tree.insert(format!("dir {d}/file {f}.bin"), Some(data));
        }
    }
    for b in 0..2 {
        tree.insert(format!("big {b}.bin"), Some(vec![b as u8 + 1; 600 * 1024]));
    }
    tree
}

fn materialise(root: &std::path::Path, tree: &Tree) {
    for (path, data) in tree {
        match data {
            None => std::fs::create_dir_all(root.join(path)).expect("mkdir"),
            Some(d) => write(root, path, d),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_syncs_converge_without_loss() {
    let served_dir = std::path::PathBuf::from(std::env::var("PASSERELLE_TEST_RCLONE_DAV_DIR").expect("stack env"));
    let mut rng = rand::rng();
    let mut kills = 0;
    for trial in 0..trials() {
        let (url, dav) = fresh("PASSERELLE_TEST_RCLONE_DAV").await;
        let cli = Cli::new(&url);
        let expected = files(trial as u64);
        let upload = trial % 2 == 0;
        if upload {
            materialise(&cli.folder, &expected);
        } else {
            // Another device put them there: write straight into the served folder.
            let name = url.path_segments().and_then(|mut s| s.rfind(|x| !x.is_empty())).expect("name").to_string();
            materialise(&served_dir.join(name), &expected);
        }
        for _ in 0..3 {
            let mut child = cli.command().arg("--once").spawn().expect("spawn");
            let delay = Duration::from_millis(rng.random_range(30..700));
            let started = Instant::now();
            // Kill at a random point, unless it finished first.
            loop {
                if child.try_wait().expect("wait").is_some() {
                    break;
                }
                if started.elapsed() >= delay {
                    child.kill().expect("SIGKILL");
                    let _ = child.wait();
                    kills += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // Whatever happened, no real name holds a partial file.
            let now = if cli.folder.exists() { local_tree(&cli.folder) } else { Tree::new() };
            for (path, data) in now {
                if path.contains(".passerelle-tmp-") {
                    continue;
                }
                if let Some(d) = data {
                    assert_eq!(Some(&d), expected.get(&path).and_then(|x| x.as_ref()), "partial or wrong {path} in trial {trial}");
                }
            }
        }
        cli.sync_ok();
        let local = local_tree(&cli.folder);
        assert_eq!(local, expected, "trial {trial}: local side");
        same(&local, &remote_tree(&dav).await);
        assert!(cli.sync_ok().contains("synced: 0 done"), "trial {trial}: converged");
    }
    eprintln!("{} trials, {kills} kills", trials());
    assert!(kills >= trials(), "the children were actually killed");
}

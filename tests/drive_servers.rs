//! End to end: the `passerelle sync` binary against the three real WebDAV servers of the stack
//! (`rclone serve webdav`, WsgiDAV and Apache mod_dav), and the safety stops.
mod drive_support;

use drive_support::*;
use passerelle::drive::Remote;

const NEEDS_CONFIRMATION: i32 = 5;

async fn two_way(server: &str) {
    let (url, dav) = fresh(server).await;
    let cli = Cli::new(&url);
    std::fs::create_dir_all(&cli.folder).unwrap();
    write(&cli.folder, "notes.txt", b"hello");
    write(&cli.folder, "Compte rendu/réunion été.odt", "contenu accentué".as_bytes());
    write(&cli.folder, "empty.txt", b"");
    write(&cli.folder, "deep/a/b/c.bin", &vec![7u8; 3 * 1024 * 1024 + 17]);
    write(&cli.folder, ".DS_Store", b"junk");
    std::fs::create_dir_all(cli.folder.join("empty folder")).unwrap();

    // Dry run: prints the plan, changes nothing.
    let out = cli.sync(&["--dry-run"]);
    assert!(out.status.success());
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("upload new notes.txt") && plan.contains("mkdir remote deep/a/b"), "{plan}");
    assert!(remote_tree(&dav).await.is_empty());

    cli.sync_ok();
    let mut local = local_tree(&cli.folder);
    local.remove(".DS_Store");
    same(&local, &remote_tree(&dav).await);

    // A no-op sync does nothing.
    assert!(cli.sync_ok().contains("synced: 0 done"));

    // Changes on both sides.
    put(&dav, "from-server.txt", b"made elsewhere").await;
    put(&dav, "notes.txt", b"edited elsewhere").await;
    dav.mkdir("server folder").await.unwrap();
    put(&dav, "server folder/x.txt", b"x").await;
    dav.delete("empty.txt", None).await.unwrap();
    write(&cli.folder, "deep/a/new.txt", b"new here");
    std::fs::remove_dir_all(cli.folder.join("empty folder")).unwrap();
    cli.sync_ok();
    let mut local = local_tree(&cli.folder);
    local.remove(".DS_Store");
    same(&local, &remote_tree(&dav).await);
    assert_eq!(local["notes.txt"].as_deref(), Some(&b"edited elsewhere"[..]));
    assert_eq!(local["server folder/x.txt"].as_deref(), Some(&b"x"[..]));
    assert!(!local.contains_key("empty.txt") && !local.contains_key("empty folder"));
    assert!(local.contains_key("deep/a/new.txt"));

    // A conflict: both sides edit one file; both versions survive on both sides.
    put(&dav, "notes.txt", b"server version").await;
    // Make sure the local edit changes size and mtime whatever the clock's resolution.
    write(&cli.folder, "notes.txt", b"local version, longer");
    cli.sync_ok();
    let mut local = local_tree(&cli.folder);
    local.remove(".DS_Store");
    same(&local, &remote_tree(&dav).await);
    assert_eq!(local["notes.txt"].as_deref(), Some(&b"server version"[..]));
    let copies: Vec<_> = local.iter().filter(|(k, _)| k.starts_with("notes (conflit ")).collect();
    assert_eq!(copies.len(), 1, "{:?}", local.keys());
    assert_eq!(copies[0].1.as_deref(), Some(&b"local version, longer"[..]));
    assert!(copies[0].0.ends_with(").txt"));

    // A local rename is a MOVE (the server keeps the same bytes under the new name).
    std::fs::rename(cli.folder.join("deep"), cli.folder.join("renamed deep")).unwrap();
    let out = cli.sync(&["--dry-run"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("move remote deep -> renamed deep"));
    cli.sync_ok();
    let mut local = local_tree(&cli.folder);
    local.remove(".DS_Store");
    same(&local, &remote_tree(&dav).await);

    let status = cli.status_json();
    assert_eq!(status["state"], "idle");
    assert!(status["items"].as_u64().unwrap() >= 8, "{status}");
    assert!(status["last_sync"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_way_sync_against_rclone() {
    two_way("PASSERELLE_TEST_RCLONE_DAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_way_sync_against_wsgidav() {
    two_way("PASSERELLE_TEST_WSGIDAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_way_sync_against_apache() {
    two_way("PASSERELLE_TEST_APACHE_DAV").await;
}

async fn synced_folder(server: &str, files: usize) -> (Cli, passerelle::drive::WebDav) {
    let (url, dav) = fresh(server).await;
    let cli = Cli::new(&url);
    for i in 0..files {
        write(&cli.folder, &format!("f{i}.txt"), format!("file {i}").as_bytes());
    }
    cli.sync_ok();
    (cli, dav)
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_stop_when_the_server_is_wiped() {
    for server in SERVERS {
        let (cli, dav) = synced_folder(server, 6).await;
        for i in 0..6 {
            dav.delete(&format!("f{i}.txt"), None).await.unwrap();
        }
        let out = cli.sync(&[]);
        assert_eq!(out.status.code(), Some(NEEDS_CONFIRMATION));
        assert!(String::from_utf8_lossy(&out.stderr).contains("the server shows an empty folder"));
        assert_eq!(local_tree(&cli.folder).len(), 6, "nothing deleted locally");
        assert_eq!(cli.status_json()["state"], "needs_confirmation");
        // Saying yes goes ahead.
        assert!(cli.sync(&["--allow-deletes"]).status.success());
        assert!(local_tree(&cli.folder).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_stop_when_most_local_files_are_deleted() {
    let (cli, dav) = synced_folder("PASSERELLE_TEST_RCLONE_DAV", 10).await;
    for i in 0..7 {
        std::fs::remove_file(cli.folder.join(format!("f{i}.txt"))).unwrap();
    }
    let out = cli.sync(&[]);
    assert_eq!(out.status.code(), Some(NEEDS_CONFIRMATION));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would delete 7 of 10 files on the server"));
    assert_eq!(remote_tree(&dav).await.len(), 10, "nothing deleted on the server");
    // A smaller share goes through without asking.
    let (cli, dav) = synced_folder("PASSERELLE_TEST_WSGIDAV", 10).await;
    for i in 0..3 {
        std::fs::remove_file(cli.folder.join(format!("f{i}.txt"))).unwrap();
    }
    cli.sync_ok();
    assert_eq!(remote_tree(&dav).await.len(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_stop_when_the_local_folder_is_gone_or_empty() {
    let (cli, dav) = synced_folder("PASSERELLE_TEST_RCLONE_DAV", 4).await;
    // Emptied (an unmounted disk leaves an empty mount point).
    for i in 0..4 {
        std::fs::remove_file(cli.folder.join(format!("f{i}.txt"))).unwrap();
    }
    let out = cli.sync(&[]);
    assert_eq!(out.status.code(), Some(NEEDS_CONFIRMATION));
    assert!(String::from_utf8_lossy(&out.stderr).contains("local folder is empty"));
    // Removed altogether.
    std::fs::remove_dir(&cli.folder).unwrap();
    let out = cli.sync(&[]);
    assert_eq!(out.status.code(), Some(NEEDS_CONFIRMATION));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[folder_missing]"));
    assert!(!cli.folder.exists(), "the folder is not re-created");
    assert_eq!(remote_tree(&dav).await.len(), 4, "nothing deleted on the server");
}

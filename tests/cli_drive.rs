//! `passerelle status --json` shows the Nextcloud quota, and `passerelle drive trash` lists the
//! server's trash, after a real login (Nextcloud test server from the stack, bearer token).
mod support;

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_quota_and_drive_lists_the_trash() {
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(url::Url::parse(&support::env("PASSERELLE_TEST_NEXTCLOUD")).expect("URL"));
    support::login_with("bob", "bob-pass-1", &home, &profile).await.expect("login");
    let folder = home.folder();
    std::fs::create_dir_all(&folder).expect("folder");

    let out = support::cli(&home).args(["status", "--json", "--folder"]).arg(&folder).output().expect("status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status: {stderr}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["quota"]["total_bytes"], 157_286_400u64, "the 150 MB quota: {status}");
    assert!(status["quota"]["used_bytes"].is_u64(), "{status}");

    let out = support::cli(&home).args(["drive", "trash", "--json"]).output().expect("trash");
    assert!(out.status.success(), "trash: {}", String::from_utf8_lossy(&out.stderr));
    let trash: serde_json::Value = serde_json::from_slice(&out.stdout).expect("trash JSON");
    assert!(trash.is_array(), "{trash}");
}

mod nextcloud_double;

/// Issue 11, defects 7, 9 and 12 through the CLI, against a throwaway Nextcloud double: a
/// server sub-folder synced with `--remote-path` (kept in the settings), items that could not be
/// synced give exit code 7, and logout after a Login Flow v2 login says it logged out.
#[tokio::test(flavor = "multi_thread")]
async fn remote_path_failed_items_exit_code_and_logout_after_login_flow() {
    use nextcloud_double::{write, Double};
    use passerelle::drive::nextcloud;
    let nc = Double::start(Some(1_000_000));
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(nc.url.clone());
    profile.webdav = None;
    home.save_profile(&profile);
    // Login Flow v2, approved at once, into the home's store (no login of our own).
    let client = nc.flow_login(&home.secrets(), None, None).await;
    client.mkdirs("Team/Projects").await.unwrap();
    client.mkdirs("Other").await.unwrap();
    let src = tempfile::tempdir().unwrap();
    let plan = write(src.path(), "plan.txt", b"the plan");
    nextcloud::bulk::put_file(&client, "Team/Projects/plan.txt", &plan, 1, passerelle::drive::remote::Precondition::Create).await.unwrap();
    nextcloud::bulk::put_file(&client, "Other/x.txt", &plan, 1, passerelle::drive::remote::Precondition::Create).await.unwrap();

    // 12: only the chosen server folder.
    let folder = home.folder();
    let out = support::cli(&home).args(["sync", "--once", "--remote-path", "/Team/Projects/", "--folder"]).arg(&folder).output().unwrap();
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(folder.join("plan.txt")).unwrap(), b"the plan");
    assert!(!folder.join("Other").exists() && !folder.join("Team").exists());
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.dirs().config.join("settings.json")).unwrap()).unwrap();
    assert_eq!(settings["remote_path"], "Team/Projects");

    // 7: an item that cannot fit fails the run with exit code 7 (the settings keep the folder).
    write(&folder, "too-big.bin", &nextcloud_double::noise(2_000_000, 1));
    write(&folder, "small.txt", b"fits");
    let out = support::cli(&home).args(["sync", "--once", "--folder"]).arg(&folder).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("failed: too-big.bin"), "{stdout}");
    assert_eq!(nc.read("Team/Projects/small.txt").await.unwrap(), b"fits");

    // status reads the same folder's journal and says how fresh the quota is.
    let out = support::cli(&home).args(["status", "--json", "--folder"]).arg(&folder).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["quota"]["may_lag_seconds"], 0, "oc:size gives a fresh count: {status}");
    assert!(status["failures"].to_string().contains("too-big.bin"), "{status}");

    // 9: logout after a Login Flow v2 login.
    let out = support::cli(&home).arg("logout").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Logged out."), "{stderr}");
    assert_eq!(nextcloud::saved_mode(&home.secrets(), &nc.url), None);
}

/// Issue 14, item 13 through the CLI: bob's folder, once synced, is refused to alice on the same
/// server, even with `--allow-deletes` (it used to read every file as deleted on the server),
/// and nothing of it moves; she syncs a folder of her own.
#[tokio::test(flavor = "multi_thread")]
async fn a_folder_is_refused_to_another_account() {
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(url::Url::parse(&support::env("PASSERELLE_TEST_NEXTCLOUD")).expect("URL"));
    profile.webdav = None;
    support::login_with("bob", "bob-pass-1", &home, &profile).await.expect("login");
    let folder = home.folder().join(format!("owner-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..4 {
        std::fs::write(folder.join(format!("bob-{i}.txt")), format!("bob {i}")).unwrap();
    }
    let out = support::cli(&home).args(["sync", "--once", "--folder"]).arg(&folder).output().unwrap();
    assert!(out.status.success(), "bob's sync: {}", String::from_utf8_lossy(&out.stderr));

    let out = support::cli(&home).args(["logout"]).output().unwrap();
    assert!(out.status.success(), "logout: {}", String::from_utf8_lossy(&out.stderr));
    support::login_with("alice", "alice-pass-1", &home, &profile).await.expect("login");
    let out = support::cli(&home).args(["sync", "--once", "--allow-deletes", "--folder"]).arg(&folder).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "alice synced bob's folder");
    // Worded in the member's language (the catalog); the code is the same in every language.
    assert!(stderr.contains("[folder_other_account]"), "{stderr}");
    let mut left: Vec<String> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    // Bob's space on the shared server may hold other files, downloaded with his first sync.
    for i in 0..4 {
        assert!(left.contains(&format!("bob-{i}.txt")), "bob's files are all there: {left:?}");
    }

    let hers = home.folder().join(format!("owner-alice-{}", std::process::id()));
    let out = support::cli(&home).args(["sync", "--once", "--dry-run", "--folder"]).arg(&hers).output().unwrap();
    assert!(out.status.success(), "alice's own folder: {}", String::from_utf8_lossy(&out.stderr));
}

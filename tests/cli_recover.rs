//! `passerelle trash`, `versions`, `recent` and `notifications` (issue 15) through the CLI,
//! against a throwaway Nextcloud test double (tests/servers/nextcloud.py, NOT Nextcloud), logged
//! in with Login Flow v2 into the test home's store.
mod nextcloud_double;
mod support;

use nextcloud_double::{write, Double, USER};
use passerelle::{
    config::Settings,
    drive::{nextcloud, remote::Precondition},
};
use serde_json::{json, Value};

fn run(home: &support::Home, args: &[&str]) -> Value {
    let out = support::cli(home).args(args).output().expect("run passerelle");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    if args.contains(&"--json") {
        serde_json::from_slice(&out.stdout).expect("JSON")
    } else {
        Value::String(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trash_versions_recent_and_notifications_from_the_command_line() {
    let nc = Double::start(None);
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(nc.url.clone());
    profile.webdav = None;
    home.save_profile(&profile);
    let dirs = home.dirs();
    let mut settings = Settings::load(&dirs).unwrap();
    settings.folder = Some(home.folder());
    settings.save(&dirs).unwrap();
    std::fs::create_dir_all(home.folder()).unwrap();
    let client = nc.flow_login(&home.secrets(), None, None).await;

    let src = tempfile::tempdir().unwrap();
    let v1 = write(src.path(), "v1", b"premier jet");
    nextcloud::bulk::put_file(&client, "rapport.txt", &v1, 1_700_000_000, Precondition::Create).await.unwrap();
    nc.control("_test/write-as", json!({"user": USER, "actor": "bob", "path": "rapport.txt", "content": "corrigé par Bob"})).await;
    nextcloud::bulk::put_file(&client, "vieux.txt", &v1, 1_700_000_000, Precondition::Create).await.unwrap();
    client.send(reqwest::Method::DELETE, client.files_url("vieux.txt"), |b| b).await.unwrap();

    // The trash, searched by name, and a restore by path.
    let trash = run(&home, &["trash", "--search", "VIEUX", "--json"]);
    assert_eq!(trash[0]["name"], "vieux.txt", "{trash}");
    assert_eq!(trash[0]["deleted_by"], "Alice");
    assert_eq!(run(&home, &["trash", "--search", "rien", "--json"]), json!([]));
    run(&home, &["trash", "--restore", "vieux.txt"]);
    assert_eq!(nc.read("vieux.txt").await.unwrap(), b"premier jet");

    // Versions of a file named by its local path in the synced folder.
    let local = write(&home.folder(), "rapport.txt", "corrigé par Bob".as_bytes());
    let local = local.to_str().unwrap();
    let versions = run(&home, &["versions", local, "--json"]);
    assert_eq!(versions[0]["author"], USER, "{versions}");
    assert_eq!(versions[0]["size"], 11);
    let id = versions[0]["id"].as_str().unwrap().to_string();
    let copy = run(&home, &["versions", local, "--open", &id]);
    let copy = std::path::PathBuf::from(copy.as_str().unwrap().trim());
    assert_eq!(std::fs::read(&copy).unwrap(), b"premier jet");
    assert!(std::fs::metadata(&copy).unwrap().permissions().readonly());
    // A path outside the synced folder is refused with its own code.
    let out = support::cli(&home).args(["versions", src.path().join("v1").to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[outside_folder]"), "{}", String::from_utf8_lossy(&out.stderr));
    run(&home, &["versions", "rapport.txt", "--restore", &id]);
    assert_eq!(nc.read("rapport.txt").await.unwrap(), b"premier jet");

    // Recent changes, whoever made them.
    let recent = run(&home, &["recent", "--json"]);
    let changes: Vec<(String, String)> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["actor"].as_str().unwrap().to_string()))
        .collect();
    assert!(changes.contains(&("rapport.txt".into(), "bob".into())), "{recent}");
    assert!(changes.contains(&("vieux.txt".into(), USER.into())), "{recent}");

    // Notifications, and one marked read.
    nc.control("_test/notifications", json!({"user": USER, "kind": "share", "actor": "bob", "path": "devis.txt"})).await;
    let list = run(&home, &["notifications", "--json"]);
    assert_eq!(list[0]["app"], "files_sharing", "{list}");
    let nid = list[0]["id"].as_i64().unwrap().to_string();
    run(&home, &["notifications", "--read", &nid]);
    assert_eq!(run(&home, &["notifications", "--json"]), json!([]));
}

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

//! Public links in one click (issue 15, "Share in one click") against the Nextcloud test double
//! (tests/servers/nextcloud.py, NOT Nextcloud; its share answers were observed on Nextcloud
//! 34.0.1), one throwaway copy per test since the tests turn the admin's sharing switches.
mod nextcloud_double;

use chrono::{Days, Local};
use nextcloud_double::{write, Double, USER};
use passerelle::{
    drive::{
        nextcloud::{
            self,
            share::{self, Password, ShareError, ShareOptions},
            NextcloudRemote,
        },
        run::{self, FolderPaths, Outcome, RunOptions},
    },
    i18n::{Catalog, Lang},
};
use serde_json::{json, Value};

async fn links(nc: &Double) -> Vec<Value> {
    let url = nc.url.join(&format!("_test/shares?user={USER}")).unwrap();
    nc.http.get(url).send().await.unwrap().json::<Vec<Value>>().await.unwrap()
}

async fn put(client: &nextcloud::Nextcloud, path: &str, content: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let local = write(dir.path(), "f", content);
    nextcloud::bulk::put_file(client, path, &local, 1, passerelle::drive::remote::Precondition::Create).await.expect("put");
}

fn in_days(days: u64) -> String {
    Local::now().date_naive().checked_add_days(Days::new(days)).unwrap().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn a_link_is_made_with_two_requests_then_reused_with_one() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    client.mkdirs("Devis").await.unwrap();
    put(&client, "Devis/devis client.pdf", b"quote").await;

    nc.reset().await;
    let first = share::share(&client, "Devis/devis client.pdf", &ShareOptions::default()).await.expect("share");
    assert!(first.created && !first.has_password && first.password.is_none() && first.expires.is_none(), "{first:?}");
    assert_eq!(first.requests, 2, "a GET of the path's links, then a POST");
    assert_eq!(nc.requests().await, 2, "the server saw the same");
    let token = links(&nc).await[0]["token"].as_str().unwrap().to_string();
    assert_eq!(first.url, nc.url.join(&format!("index.php/s/{token}")).unwrap().as_str());

    nc.reset().await;
    let again = share::share(&client, "/Devis/devis client.pdf", &ShareOptions::default()).await.expect("share again");
    assert_eq!((again.created, again.requests, nc.requests().await), (false, 1, 1), "{again:?}");
    assert_eq!(again.url, first.url);
    assert_eq!(links(&nc).await.len(), 1, "no second link");

    // A folder is shared the same way.
    let folder = share::share(&client, "Devis", &ShareOptions::default()).await.expect("share a folder");
    assert!(folder.created && folder.url != first.url);
}

#[tokio::test]
async fn an_enforced_password_is_generated_shown_once_and_a_reused_link_says_it_has_one() {
    let nc = Double::start(None);
    nc.control("_test/sharing", json!({"password_enforced": true})).await;
    let client = nc.connect().await;
    put(&client, "offre.odt", b"offer").await;

    let made = share::share(&client, "offre.odt", &ShareOptions::default()).await.expect("share");
    let password = made.password.clone().expect("a generated password to show");
    assert!(made.created && made.has_password && password.len() >= 10);
    assert_eq!(links(&nc).await[0]["password"], password.as_str(), "the server got the shown password");

    let reused = share::share(&client, "offre.odt", &ShareOptions::default()).await.expect("reuse");
    assert!(!reused.created && reused.has_password && reused.password.is_none(), "{reused:?}");

    // A password the member typed that the policy refuses: the server's refusal, in plain words.
    let typed = ShareOptions { password: Password::Given("short".into()), ..ShareOptions::default() };
    let e = share::share(&client, "offre.odt", &typed).await.unwrap_err();
    assert_eq!(e.code(), "share_password_refused", "{e}");
    assert!(e.to_string().contains("at least 10 characters"), "{e}");
    // Asking for a password makes a new link with a password we can show.
    let asked = ShareOptions { password: Password::Given("Correct-Horse-42".into()), ..ShareOptions::default() };
    let own = share::share(&client, "offre.odt", &asked).await.expect("own password");
    assert!(own.created && own.password.as_deref() == Some("Correct-Horse-42"));
}

#[tokio::test]
async fn the_expiry_follows_the_server_default_the_asked_days_and_the_enforced_maximum() {
    let nc = Double::start(None);
    nc.control("_test/sharing", json!({"expire_default": true, "expire_days": 7})).await;
    let client = nc.connect().await;
    put(&client, "a.txt", b"a").await;
    put(&client, "b.txt", b"b").await;

    let default = share::share(&client, "a.txt", &ShareOptions::default()).await.unwrap();
    assert_eq!(default.expires.as_deref(), Some(in_days(7).as_str()), "the server's default");
    let three = ShareOptions { days: Some(3), ..ShareOptions::default() };
    let asked = share::share(&client, "a.txt", &three).await.unwrap();
    assert!(asked.created, "the 7-day link does not end in 3 days: a new one");
    assert_eq!(asked.expires.as_deref(), Some(in_days(3).as_str()));
    assert!(!share::share(&client, "a.txt", &three).await.unwrap().created, "the 3-day link is reused");

    nc.control("_test/sharing", json!({"expire_enforced": true})).await;
    let client = nc.connect().await;
    nc.reset().await;
    let far = ShareOptions { days: Some(30), ..ShareOptions::default() };
    let e = share::share(&client, "b.txt", &far).await.unwrap_err();
    assert!(matches!(e, ShareError::ExpiryTooFar { max_days: 7 }), "{e:?}");
    assert_eq!(nc.requests().await, 0, "refused from the capabilities, before asking the server");
    let within = share::share(&client, "b.txt", &ShareOptions { days: Some(7), ..ShareOptions::default() }).await.unwrap();
    assert_eq!(within.expires.as_deref(), Some(in_days(7).as_str()));
}

#[tokio::test]
async fn links_disabled_or_sharing_off_give_a_plain_sentence_without_asking_the_server() {
    let nc = Double::start(None);
    nc.control("_test/sharing", json!({"links": false})).await;
    let client = nc.connect().await;
    put(&client, "a.txt", b"a").await;
    nc.reset().await;
    let e = share::share(&client, "a.txt", &ShareOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "share_links_disabled");
    assert_eq!(nc.requests().await, 0);
    let fr = Catalog::load(Lang::Fr);
    assert!(fr.error(e.code()).contains("lien"), "{}", fr.error(e.code()));

    nc.control("_test/sharing", json!({"links": true, "api": false})).await;
    let client = nc.connect().await;
    assert_eq!(share::share(&client, "a.txt", &ShareOptions::default()).await.unwrap_err().code(), "share_disabled");
}

#[tokio::test]
async fn a_policy_tightened_since_the_capabilities_were_read_is_learnt_from_the_refusal() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    put(&client, "a.txt", b"a").await;
    // The admin enforces passwords after we read the capabilities (kept for a day).
    nc.control("_test/sharing", json!({"password_enforced": true})).await;
    nc.reset().await;
    let made = share::share(&client, "a.txt", &ShareOptions::default()).await.expect("share");
    assert!(made.created && made.password.is_some(), "{made:?}");
    assert_eq!(made.requests, 3, "GET, POST refused with 403, POST with a password");
    assert_eq!(links(&nc).await.len(), 1);

    // The same for links turned off: the server's 404 and its message.
    nc.control("_test/sharing", json!({"links": false})).await;
    put(&client, "b.txt", b"b").await;
    let e = share::share(&client, "b.txt", &ShareOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "share_refused");
    assert!(e.to_string().contains("Public link sharing is disabled by the administrator"), "{e}");
}

#[tokio::test]
async fn an_item_shared_with_the_member_without_the_right_to_share_is_said_as_such() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    client.mkdirs("Recu").await.unwrap();
    put(&client, "Recu/note.txt", b"n").await;
    // A share received read-only, without resharing: no `R` in oc:permissions.
    nc.control("_test/permissions", json!({"user": USER, "path": "Recu", "permissions": "SGD"})).await;
    let e = share::share(&client, "Recu/note.txt", &ShareOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "share_not_allowed", "{e:?}");
    assert!(e.to_string().contains("You are not allowed to share note.txt"), "{e}");
}

#[tokio::test]
async fn too_many_new_links_in_ten_minutes_is_said_as_such() {
    let nc = Double::start(None);
    nc.control("_test/sharing", json!({"rate_limit": 1})).await;
    let client = nc.connect().await;
    put(&client, "a.txt", b"a").await;
    put(&client, "b.txt", b"b").await;
    share::share(&client, "a.txt", &ShareOptions::default()).await.expect("the first link");
    let e = share::share(&client, "b.txt", &ShareOptions::default()).await.unwrap_err();
    assert_eq!(e.code(), "share_rate_limited", "{e:?}");
    // Reusing a link is not limited.
    assert!(!share::share(&client, "a.txt", &ShareOptions::default()).await.unwrap().created);
}

#[tokio::test]
async fn a_new_local_file_is_uploaded_first_then_shared_under_the_remote_root() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    client.mkdirs("Team").await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("Cloud");
    std::fs::create_dir_all(&root).unwrap();
    let folder = FolderPaths::new(&data.path().join("state"), &root, "nc#Team");
    let remote = NextcloudRemote::new(client.clone(), "Team", None);
    let outcome = run::sync_once(&folder, &remote, &RunOptions::default(), None).await.expect("first sync");
    assert!(matches!(outcome, Outcome::Done(_)));

    // Written just now: not on the server yet.
    let local = write(&root, "Devis/nouveau devis.pdf", b"new quote");
    let path = share::server_path(&root, "Team", &local).expect("in the folder");
    assert_eq!(path, "Team/Devis/nouveau devis.pdf");
    let link = share::share_or_upload(&client, &path, &ShareOptions::default(), || async {
        run::sync_once(&folder, &remote, &RunOptions::default(), None)
            .await
            .map(drop)
            .map_err(|e| ShareError::Upload(e.to_string()))
    })
    .await
    .expect("uploaded, then shared");
    assert!(link.uploaded && link.created, "{link:?}");
    assert_eq!(nc.read("Team/Devis/nouveau devis.pdf").await.as_deref(), Some(&b"new quote"[..]));
    assert_eq!(links(&nc).await[0]["path"], "/Team/Devis/nouveau devis.pdf");

    // Outside the folder: a sentence, and nothing asked of the server.
    let elsewhere = write(data.path(), "elsewhere.txt", b"x");
    let e = share::server_path(&root, "Team", &elsewhere).unwrap_err();
    assert_eq!(e.code(), "share_outside_folder");
    assert!(Catalog::load(Lang::En).error(e.code()).contains("synced folder"));

    // A name the server refuses (a backslash: 400 on 34.0.1) can be neither there nor
    // uploaded: said as such, not "not on the server yet".
    #[cfg(unix)]
    {
        let refused = write(&root, "Devis/a\\b.pdf", b"x");
        let e = share::server_path(&root, "Team", &refused).unwrap_err();
        assert_eq!(e.code(), "share_name_refused");
        assert!(Catalog::load(Lang::En).error(e.code()).contains("name"));
    }
}

#[tokio::test]
async fn open_online_names_the_files_page_of_the_item() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    put(&client, "plan.txt", b"plan").await;
    let url = share::online_url(&client, "plan.txt").await.expect("online url");
    let props = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>"#;
    let items = client.propfind(client.files_url("plan.txt"), 0, props).await.unwrap().unwrap();
    let id = items[0].file_id.clone().expect("a file id");
    assert_eq!(url.as_str(), nc.url.join(&format!("index.php/f/{id}")).unwrap().as_str());
    assert_eq!(share::online_url(&client, "nope.txt").await.unwrap_err().code(), "share_not_on_server");
}

mod support;

/// The command line: `share` uploads a new file first and gives the link as JSON, then reuses it
/// with one request; a file outside the folder gets the catalog's sentence; `open-online --print`
/// names the file's page. No clipboard in the test's environment: it says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_shares_reuses_refuses_outside_and_opens_online() {
    use passerelle::config::Settings;
    let nc = Double::start(None);
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(nc.url.clone());
    home.save_profile(&profile);
    let dirs = home.dirs();
    let mut settings = Settings::load(&dirs).unwrap();
    settings.folder = Some(home.folder());
    settings.language = Some("en".into());
    settings.save(&dirs).unwrap();
    // Login Flow v2, approved at once, into the home's store.
    nc.flow_login(&home.secrets(), None, None).await;
    let folder = home.folder();
    std::fs::create_dir_all(&folder).unwrap();
    let out = support::cli(&home).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));

    let file = write(&folder, "Devis/devis 42.pdf", b"quote 42");
    let cli = |args: &[&str]| {
        let mut c = support::cli(&home);
        c.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY").args(args);
        c
    };
    let out = cli(&["share", "--json"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "share: {}", String::from_utf8_lossy(&out.stderr));
    let made: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((made["created"].as_bool(), made["uploaded"].as_bool(), made["copied"].as_bool()), (Some(true), Some(true), Some(false)), "{made}");
    assert_eq!(nc.read("Devis/devis 42.pdf").await.as_deref(), Some(&b"quote 42"[..]));

    nc.reset().await;
    let out = cli(&["share"]).arg(&file).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), made["url"].as_str().unwrap(), "the same link");
    assert!(stderr.contains("Your existing link") && stderr.contains("No clipboard here"), "{stderr}");
    assert_eq!(nc.requests().await, 1, "the kept server facts and one GET");

    let outside = write(home.path(), "notes.txt", b"x");
    let out = cli(&["share"]).arg(&outside).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not in your synced folder") && stderr.contains("[share_outside_folder]"), "{stderr}");

    let out = cli(&["open-online", "--print"]).arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim().starts_with(nc.url.join("index.php/f/").unwrap().as_str()), "{stdout}");
}

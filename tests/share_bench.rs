//! The "Share in one click" figure (issue 15): from the click to the link in the clipboard, and
//! the requests it took. Ignored test; `scripts/bench-share` runs it against the Nextcloud test
//! double and, with `--live`, a real Nextcloud. A click is what a file-manager action does: one
//! `passerelle share --json FILE` process (settings, the kept server facts, the OCS requests, the
//! clipboard tool). Each run is checked before it counts: the JSON says created/reused as
//! expected, the clipboard holds exactly the link (read back with `xclip -o` when a display is
//! there), and the link's public page answers 200. Prints `ROW` lines for the table.
mod nextcloud_double;
mod support;

use std::{process::Command, time::Instant};

use passerelle::{
    config::Settings,
    drive::nextcloud::{Credentials, Nextcloud},
};
use serde_json::{json, Value};

struct Target {
    name: String,
    url: url::Url,
    user: String,
    password: String,
    _double: Option<nextcloud_double::Double>,
}

fn target() -> Target {
    match std::env::var("PASSERELLE_BENCH_SHARE_URL") {
        Ok(url) => Target {
            name: "Nextcloud 34.0.1 (loopback)".into(),
            url: url::Url::parse(&url).expect("URL"),
            user: std::env::var("PASSERELLE_BENCH_SHARE_USER").expect("PASSERELLE_BENCH_SHARE_USER"),
            password: std::env::var("PASSERELLE_BENCH_SHARE_APP_PASSWORD").expect("PASSERELLE_BENCH_SHARE_APP_PASSWORD"),
            _double: None,
        },
        Err(_) => {
            let double = nextcloud_double::Double::start(None);
            Target {
                name: "test double".into(),
                url: double.url.clone(),
                user: nextcloud_double::USER.into(),
                password: nextcloud_double::APP_PASSWORD.into(),
                _double: Some(double),
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn ocs(t: &Target, method: reqwest::Method, path: &str) -> Value {
    let url = t.url.join(&format!("ocs/v2.php/apps/files_sharing/api/v1/{path}")).unwrap();
    let r = reqwest::Client::new()
        .request(method, url)
        .basic_auth(&t.user, Some(&t.password))
        .header("OCS-APIRequest", "true")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

/// Deletes every link of `path` (between the "create" runs; not timed).
async fn unshare(t: &Target, path: &str) {
    let q = format!("shares?format=json&reshares=false&path={}", urlencode(&format!("/{path}")));
    let list = ocs(t, reqwest::Method::GET, &q).await;
    for s in list["ocs"]["data"].as_array().cloned().unwrap_or_default() {
        let id = s["id"].as_str().map(str::to_string).unwrap_or_else(|| s["id"].to_string());
        ocs(t, reqwest::Method::DELETE, &format!("shares/{id}?format=json")).await;
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn clipboard() -> Option<String> {
    std::env::var_os("DISPLAY")?;
    let out = Command::new("xclip").args(["-o", "-selection", "clipboard"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: scripts/bench-share"]
async fn share_click_to_clipboard() {
    let runs_create: usize = std::env::var("PASSERELLE_BENCH_SHARE_CREATE").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let runs_reuse: usize = std::env::var("PASSERELLE_BENCH_SHARE_REUSE").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let t = target();
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(t.url.clone());
    home.save_profile(&profile);
    // The bench's own server folder, so that nothing else of the account is touched.
    let sub = format!("share-bench-{}", std::process::id());
    let dirs = home.dirs();
    let mut settings = Settings::load(&dirs).unwrap();
    settings.folder = Some(home.folder());
    settings.remote_path = Some(sub.clone());
    settings.language = Some("en".into());
    settings.save(&dirs).unwrap();
    let base = t.url.as_str().trim_end_matches('/').to_string();
    let saved = json!({"mode": "app_password", "login": t.user, "app_password": t.password});
    home.secrets().set(&format!("nextcloud:{base}"), &saved.to_string()).unwrap();
    let creds = Credentials::AppPassword { login: t.user.clone(), password: t.password.clone() };
    let info = passerelle::drive::nextcloud::server_info(&passerelle::http::client(), &t.url, &creds).await.unwrap().unwrap();
    let nc = Nextcloud::new(passerelle::http::client(), &t.url, &t.user, creds, info);
    nc.mkdirs(&sub).await.expect("the bench folder");

    let folder = home.folder();
    std::fs::create_dir_all(&folder).unwrap();
    let file = nextcloud_double::write(&folder, "Devis client.pdf", &nextcloud_double::noise(100 * 1024, 7));
    let out = support::cli(&home).args(["sync", "--once"]).output().unwrap();
    assert!(out.status.success(), "sync: {}", String::from_utf8_lossy(&out.stderr));
    let server_path = format!("{sub}/Devis client.pdf");

    let click = |expect_created: bool| {
        let started = Instant::now();
        let out = support::cli(&home).args(["share", "--json"]).arg(&file).output().unwrap();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert!(out.status.success(), "share: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["created"].as_bool(), Some(expect_created), "{v}");
        let copied = v["copied"].as_bool() == Some(true);
        if copied {
            assert_eq!(clipboard().as_deref(), v["url"].as_str(), "the clipboard holds the link");
        }
        (ms, v["requests"].as_u64().unwrap(), copied, v["url"].as_str().unwrap().to_string())
    };

    let mut rows = Vec::new();
    for (case, created, runs) in [("link created", true, runs_create), ("link exists", false, runs_reuse)] {
        let (mut times, mut requests, mut copied) = (Vec::new(), Vec::new(), true);
        for _ in 0..runs {
            if created {
                unshare(&t, &server_path).await;
            }
            let (ms, n, c, url) = click(created);
            let page = reqwest::get(&url).await.unwrap().status().as_u16();
            assert_eq!(page, 200, "the link's page answers");
            times.push(ms);
            requests.push(n);
            copied &= c;
        }
        requests.dedup();
        let max = times.iter().cloned().fold(0.0, f64::max);
        rows.push(format!(
            "| {} | {case} | {runs} | {} | {:.0} ms | {:.0} ms | {} |",
            t.name,
            requests.iter().map(u64::to_string).collect::<Vec<_>>().join("/"),
            median(times),
            max,
            if copied { "yes (xclip, read back)" } else { "no display" }
        ));
    }
    unshare(&t, &server_path).await;
    let _ = nc.send(reqwest::Method::DELETE, nc.files_url(&sub), |b| b).await;
    for r in rows {
        println!("ROW {r}");
    }
}

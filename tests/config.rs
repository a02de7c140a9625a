//! The organisation profile: discovery from `/.well-known/passerelle.json` over real HTTP, and
//! the plain-words errors a member sees when it goes wrong.
use passerelle::config::{self, Profile, Settings, Source};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A one-page web server: answers every request with `status` and `body`.
async fn serve(status: u16, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    addr.to_string()
}

const PROFILE: &str = r#"{"name":"Coop","issuer":"https://sso.example.coop/realms/coop","client_id":"passerelle",
 "nextcloud":"https://cloud.example.coop","jitsi":"https://visio.example.coop",
 "links":[{"name":"Wiki","url":"https://wiki.example.coop"}]}"#;

#[tokio::test]
async fn a_domain_publishes_its_profile() {
    let domain = serve(200, PROFILE).await;
    let http = passerelle::http::client();
    // Its servers are not under the typed address (127.0.0.1): the member accepted them.
    let accepted = ["sso.example.coop".to_string(), "cloud.example.coop".to_string()];
    let (profile, source) =
        config::resolve(&http, &Settings::default(), Some(&domain), None, &accepted).await.expect("discovered");
    assert_eq!(source, Source::Discovered);
    assert_eq!(profile.issuer.as_str(), "https://sso.example.coop/realms/coop");
    assert_eq!(profile.links[0].name, "Wiki");
    assert_eq!(profile.folder_name, "Passerelle");
}

#[tokio::test]
async fn a_domain_without_a_profile_is_told_plainly() {
    let domain = serve(404, "").await;
    let err = Profile::discover(&passerelle::http::client(), &domain).await.expect_err("404");
    assert_eq!(err.code(), "discovery_not_published");
    assert!(err.to_string().contains("does not publish Passerelle settings"), "{err}");
}

#[tokio::test]
async fn a_broken_profile_names_what_is_missing() {
    let domain = serve(200, r#"{"issuer":"https://sso.example.coop/realms/coop"}"#).await;
    let err = Profile::discover(&passerelle::http::client(), &domain).await.expect_err("missing");
    assert_eq!(err.to_string(), "the organisation profile has no “client_id”");
    let domain = serve(200, "<html>not json</html>").await;
    let err = Profile::discover(&passerelle::http::client(), &domain).await.expect_err("garbage");
    assert_eq!(err.code(), "profile_unreadable");
}

#[tokio::test]
async fn an_unreachable_domain_is_reported_as_such() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err = Profile::discover(&passerelle::http::client(), &format!("127.0.0.1:{port}")).await.expect_err("down");
    assert_eq!(err.code(), "discovery_unreachable");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}

#[test]
fn the_cli_without_an_organisation_says_what_to_do() {
    let home = tempfile::tempdir().expect("home");
    let whoami = |lang: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .env("PASSERELLE_HOME", home.path())
            .env("PASSERELLE_SECRETS", "file")
            .env("LANG", lang)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .arg("whoami")
            .output()
            .expect("run")
    };
    // The member's words from the catalog, in the OS language; the code for scripts.
    let out = whoami("en_GB.UTF-8");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "passerelle: No organisation is set up yet: run “passerelle login --org DOMAIN”. [no_profile]"
    );
    let out = whoami("fr_FR.UTF-8");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "passerelle: Aucune organisation n'est configurée : lancez « passerelle login --org DOMAINE ». [no_profile]"
    );
    // The language chosen in the settings wins over the OS's.
    std::fs::create_dir_all(home.path().join("config")).expect("config dir");
    std::fs::write(home.path().join("config/settings.json"), r#"{"language": "en"}"#).expect("settings");
    let out = whoami("fr_FR.UTF-8");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No organisation is set up yet"), "{}", String::from_utf8_lossy(&out.stderr));
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle")).arg("--help").output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    for command in ["login", "whoami", "logout", "sync", "status", "chat", "visio", "meetings"] {
        assert!(help.contains(&format!("  {command} ")), "--help lists {command}: {help}");
    }
}

//! Two members on one computer: a login as another account, without a logout first, must never
//! send the first account's secrets (Nextcloud app password, chat login token, calendar
//! password) with the second one's requests. Real Keycloak (alice, bob), the Nextcloud test
//! double (a throwaway copy, NOT Nextcloud), the Rocket.Chat test double and Radicale.
//!
//! Needs the test stack: `eval "$(scripts/stack up)"`.
mod nextcloud_double;
mod support;

use nextcloud_double::Double;
use passerelle::{
    browser::Opener,
    calendar::{self, CalDavAuth},
    chat,
    drive::nextcloud::{self, ConnectOptions, Credentials},
};
use serde_json::{json, Value};

/// Requests the Rocket.Chat double counted for `endpoint`, made with `user`'s chat login.
async fn chat_requests(endpoint: &str, user: &str) -> u64 {
    let control = support::env("PASSERELLE_TEST_ROCKETCHAT_CONTROL");
    let stats: Value = reqwest::get(format!("{control}/stats")).await.expect("chat stats").json().await.expect("JSON");
    stats["requests"][endpoint][user].as_u64().unwrap_or(0)
}

/// Every entry of the home's file store, as saved (whatever its inner format).
fn saved_entries(home: &support::Home) -> serde_json::Map<String, Value> {
    let path = home.secrets().file_path().expect("file store").to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "{}".into());
    serde_json::from_str(&text).expect("secrets file is JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_as_another_account_never_uses_the_previous_accounts_secrets() {
    let nc = Double::start(None);
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = Some(nc.url.clone());
    let http = passerelle::http::client();
    let store = home.secrets();

    // Alice logs in; her Nextcloud refuses bearer tokens, so Login Flow v2 gives her an app
    // password; the chat gives her a login token; she saves the calendar server's password.
    let alice = support::login_with("alice", "alice-pass-1", &home, &profile).await.expect("alice logs in");
    nc.control("_test/bearer", json!({"enabled": false})).await;
    let files = nc.flow_login(&store, Some(&alice), None).await;
    assert_eq!(files.user(), "alice");
    let Credentials::AppPassword { password: alice_app_password, .. } = files.credentials().clone() else {
        panic!("Login Flow v2 gives an app password")
    };
    chat::fetch_counts(&alice).await.expect("alice's chat");
    let calendar_root = calendar::separate_server(&profile).expect("the stack's calendar (Radicale) is a separate server");
    let alice_calendar_password = support::caldav_password("alice");
    calendar::save_password(&http, &store, &calendar_root, "alice", &alice_calendar_password).await.expect("alice's calendar password");
    let before = saved_entries(&home);
    let alice_chat = before.get("chat").cloned().expect("alice's chat token is saved");
    let all_before = serde_json::to_string(&before).unwrap();
    assert!(all_before.contains(&alice_app_password) && all_before.contains(&alice_calendar_password), "the test's premise");

    // Bob logs in on the same computer; alice never logged out. Bearer works again.
    nc.control("_test/bearer", json!({"enabled": true})).await;
    let bob = support::login_with("bob", "bob-pass-1", &home, &profile).await.expect("bob logs in");

    // 1. Nothing of alice's is left in the store.
    let after = saved_entries(&home);
    let all_after = serde_json::to_string(&after).unwrap();
    assert!(!all_after.contains(&alice_app_password), "alice's Nextcloud app password outlived bob's login: {:?}", after.keys());
    assert!(!all_after.contains(&alice_calendar_password), "alice's calendar password outlived bob's login");
    assert_ne!(after.get("chat"), Some(&alice_chat), "alice's chat token outlived bob's login");

    // 2. Every way in speaks as bob, never as alice.
    let never = Opener::hook(|_| panic!("no browser: bob's bearer token works"));
    let options = ConnectOptions { opener: never, non_interactive: true, ..ConnectOptions::default() };
    let files = nextcloud::connect(&http, &nc.url, Some(&bob), &store, &options).await.expect("bob's files");
    assert_eq!(files.user(), "bob", "bob's files went out with another account's credentials");
    assert!(matches!(files.credentials(), Credentials::Bearer(_)));
    match calendar::auth_for(&http, &profile, Some(&bob), &store).await.expect("bob's calendar") {
        CalDavAuth::Basic { user, .. } => panic!("bob's calendar would go out as {user}"),
        CalDavAuth::Bearer(session) => assert_eq!(session.identity().username.as_deref(), Some("bob")),
    }
    let alice_chat_before = chat_requests("GET /api/v1/subscriptions.get", "alice").await;
    chat::fetch_counts(&bob).await.expect("bob's chat");
    assert_eq!(chat_requests("GET /api/v1/subscriptions.get", "alice").await, alice_chat_before, "bob's chat went out as alice");
    assert!(chat_requests("POST /api/v1/login", "bob").await >= 1, "bob logged in to the chat himself");

    // 3. Alice's access also ends on the servers, as her logout would have ended it: deleted
    // here, a live app password, chat token or login session would outlive her on this computer.
    let alice_login: Value = serde_json::from_str(before["oidc"].as_str().expect("alice's login entry")).expect("login JSON");
    let alice_refresh = alice_login["refresh_token"].as_str().expect("alice's refresh token").to_string();
    let refresh_with = |token: String| {
        let http = http.clone();
        let token_url = format!("{}/protocol/openid-connect/token", profile.issuer.as_str().trim_end_matches('/'));
        let client_id = profile.client_id.clone();
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("client_id", client_id.as_str())];
            http.post(token_url).form(&form).send().await.expect("Keycloak answers").status().as_u16()
        }
    };
    let alice_logouts = chat_requests("POST /api/v1/logout", "alice").await;
    passerelle::account::end_replaced(&http, &bob).await;
    let nc_user_url = nc.url.join("ocs/v2.php/cloud/user?format=json").unwrap();
    let answer = http.get(nc_user_url).basic_auth("alice", Some(&alice_app_password)).header("OCS-APIRequest", "true").send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 401, "alice's app password still opens her files on the server");
    assert_eq!(chat_requests("POST /api/v1/logout", "alice").await, alice_logouts + 1, "alice's chat token was not revoked");
    assert_eq!(refresh_with(alice_refresh).await, 400, "alice's Keycloak session outlived bob's login");
    assert!(bob.take_replaced().is_none(), "ended once");
    // Bob's own access is untouched.
    chat::fetch_counts(&bob).await.expect("bob's chat still works");
    assert!(nextcloud::connect(&http, &nc.url, Some(&bob), &store, &options).await.is_ok(), "bob's files still work");
}

//! `chat`: the unread and mention counts, once (`--json` for scripts) or live (`--watch`), and
//! the advanced personal access token (`--token-user ID`, the token from
//! `PASSERELLE_CHAT_TOKEN` or the first line of stdin, never from the command line where other
//! users could read it).
use std::io::{BufRead, Write};

use clap::Args;
use passerelle::chat::{self, Chat, ChatCounts, ChatError, ChatState};

use super::{exit, print_json, Context, Failure};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Print JSON (one object; with --watch, one line per change).
    #[arg(long)]
    pub json: bool,
    /// Stay connected and print each change and notification as it arrives.
    #[arg(long, conflicts_with_all = ["token_user", "forget_token"])]
    pub watch: bool,
    /// Advanced: use a personal access token of this chat user id instead of the one login.
    /// The token is read from PASSERELLE_CHAT_TOKEN, else from the first line of stdin.
    #[arg(long, value_name = "USER_ID")]
    pub token_user: Option<String>,
    /// Forget the chat login or personal access token kept in the keychain.
    #[arg(long, conflicts_with = "token_user")]
    pub forget_token: bool,
}

impl From<ChatError> for Failure {
    fn from(e: ChatError) -> Failure {
        let code = match &e {
            ChatError::Auth(a) if a.needs_login() => exit::LOGIN_REQUIRED,
            ChatError::Auth(passerelle::auth::AuthError::Network(_)) | ChatError::Network(_) => exit::OFFLINE,
            ChatError::NotConfigured => exit::NOT_CONFIGURED,
            _ => exit::FAILURE,
        };
        Failure::coded(code, e.code(), &e)
    }
}

pub async fn chat(ctx: Context, args: ChatArgs) -> Result<(), Failure> {
    let session = ctx.session()?;
    if args.forget_token {
        chat::forget(&session)?;
        eprintln!("The chat login was forgotten; the next run logs in again.");
        return Ok(());
    }
    if let Some(user_id) = args.token_user {
        let token = match std::env::var("PASSERELLE_CHAT_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t,
            _ => {
                eprintln!("Paste the personal access token, then press Enter:");
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Failure::coded(exit::FAILURE, "input", &e))?;
                line
            }
        };
        if token.trim().is_empty() {
            return Err(Failure::coded(exit::FAILURE, "chat_token_missing", &"no token given"));
        }
        chat::use_personal_token(&session, &user_id, &token).await?;
        eprintln!("The personal access token works and is kept in the keychain.");
        return Ok(());
    }
    if args.watch {
        return watch(session, args.json).await;
    }
    let state = match chat::fetch_counts(&session).await {
        Ok(counts) => ChatState::Ready(counts),
        // Not a failure of the command: the server simply offers no counts.
        Err(ChatError::Unavailable(detail)) => ChatState::Unavailable {
            reason: format!("{}: {detail}", chat::UNAVAILABLE),
            chat_url: chat::chat_url(&session).map(|u| u.to_string()),
        },
        Err(e) => return Err(e.into()),
    };
    if args.json {
        return print_json(&state);
    }
    print_state(&state);
    Ok(())
}

fn print_counts(counts: &ChatCounts) {
    let total = if counts.total == 0 && counts.dot { "new activity".to_string() } else { format!("{} unread", counts.total) };
    println!("{total}, {} mention{}", counts.mentions, if counts.mentions == 1 { "" } else { "s" });
    for room in &counts.rooms {
        let mentions = if room.mentions > 0 { format!(" ({} for you)", room.mentions) } else { String::new() };
        println!("  {:>4}  {}{}  {}", room.unread, room.name, mentions, room.url);
    }
    if counts.degraded {
        println!("(some of the chat server's data was unreadable: the figures may be too low)");
    }
}

fn print_state(state: &ChatState) {
    match state {
        ChatState::Loading => println!("loading…"),
        ChatState::Ready(counts) => print_counts(counts),
        ChatState::Offline { last, reason } => {
            println!("offline ({reason}); retrying");
            if let Some(counts) = last {
                print_counts(counts);
            }
        }
        ChatState::Unavailable { reason, chat_url } => {
            println!("{reason}");
            if let Some(url) = chat_url {
                println!("The chat opens in the browser: {url}");
            }
        }
        ChatState::NotConfigured => println!("no chat server is set up for this organisation"),
        // The catalog's words for the code; the server's own message is for the log.
        ChatState::Failed { code, message } => {
            tracing::info!(code, "{message}");
            let t = passerelle::i18n::Catalog::current();
            let key = format!("cli.error.{code}");
            let sentence = if t.strings().contains_key(&key) { t.t(&key) } else { t.error(code) };
            println!("{sentence} [{code}]");
        }
    }
}

/// Prints each state change and notification until interrupted (or until the task stops).
async fn watch(session: passerelle::auth::Session, json: bool) -> Result<(), Failure> {
    let handle = Chat::start(session);
    let mut states = handle.counts();
    let mut events = handle.events();
    let line = |value: &serde_json::Value| {
        println!("{value}");
        let _ = std::io::stdout().flush();
    };
    loop {
        let stopped = {
            let state = states.borrow_and_update().clone();
            if json {
                line(&serde_json::json!({"type": "state", "state": state}));
            } else {
                print_state(&state);
                let _ = std::io::stdout().flush();
            }
            matches!(state, ChatState::Failed { .. } | ChatState::NotConfigured | ChatState::Unavailable { .. })
        };
        if stopped {
            return Ok(());
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return Ok(()) },
            event = events.recv() => match event {
                Ok(event) if json => line(&serde_json::json!({"type": "event", "event": event})),
                Ok(event) => {
                    let excerpt = event.excerpt.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                    println!("» {} in {}{excerpt}  {}", event.sender, event.room, event.url);
                    let _ = std::io::stdout().flush();
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(n, "missed notifications"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

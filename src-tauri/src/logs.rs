//! The shell's log: daily files in the OS log dir (`Dirs::logs`), seven kept. Nothing here or
//! in the core logs a token: sessions print only their subject.
use std::path::Path;

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Starts logging; keep the guard alive for the life of the app so the last lines get written.
pub fn init(dir: &Path) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_from_env("PASSERELLE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file = std::fs::create_dir_all(dir).ok().and_then(|()| {
        rolling::Builder::new()
            .rotation(rolling::Rotation::DAILY)
            .filename_prefix("passerelle-desktop")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
            .ok()
    });
    // No colours anywhere: layers share the formatted span fields, and the file must stay plain.
    let stderr = fmt::layer().with_ansi(false).with_writer(std::io::stderr).with_filter(filter());
    match file {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file_layer = fmt::layer().with_ansi(false).with_writer(writer).with_filter(filter());
            tracing_subscriber::registry().with(stderr).with(file_layer).try_init().ok();
            Some(guard)
        }
        None => {
            tracing_subscriber::registry().with(stderr).try_init().ok();
            tracing::warn!(dir = %dir.display(), "the log folder cannot be written: logging to the terminal only");
            None
        }
    }
}

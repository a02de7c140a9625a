//! `passerelle`: the core, headless. Login, sync, status, chat and visio from a terminal, for
//! tests, scripts and power users. Every command is a thin caller of the library.
use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("passerelle: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("passerelle: {}", failure.message);
            ExitCode::from(failure.exit)
        }
    }
}

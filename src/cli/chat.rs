//! `chat` (being written).
use clap::Args;

use super::{exit, Context, Failure};

#[derive(Debug, Args)]
pub struct ChatArgs {}

pub async fn chat(_ctx: Context, _args: ChatArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "chat is not available yet"))
}

//! `visio`, `meetings`, `links` (being written).
use clap::Args;

use super::{exit, Context, Failure};

#[derive(Debug, Args)]
pub struct VisioArgs {}
#[derive(Debug, Args)]
pub struct MeetingsArgs {}
#[derive(Debug, Args)]
pub struct LinksArgs {}

pub async fn visio(_ctx: Context, _args: VisioArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "visio is not available yet"))
}
pub async fn meetings(_ctx: Context, _args: MeetingsArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "meetings is not available yet"))
}
pub async fn links(_ctx: Context, _args: LinksArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "links is not available yet"))
}

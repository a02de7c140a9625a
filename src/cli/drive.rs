//! `sync`, `status`, `drive` (being written).
use clap::Args;

use super::{exit, Context, Failure};

#[derive(Debug, Args)]
pub struct SyncArgs {}
#[derive(Debug, Args)]
pub struct StatusArgs {}
#[derive(Debug, Args)]
pub struct DriveArgs {}

pub async fn sync(_ctx: Context, _args: SyncArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "sync is not available yet"))
}
pub async fn status(_ctx: Context, _args: StatusArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "status is not available yet"))
}
pub async fn drive(_ctx: Context, _args: DriveArgs) -> Result<(), Failure> {
    Err(Failure::new(exit::FAILURE, "drive is not available yet"))
}

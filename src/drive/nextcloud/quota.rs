//! The member's quota: read from `quota-used-bytes` / `quota-available-bytes` on the files root
//! (one Depth-0 PROPFIND, the same request as the change check), used to skip files that cannot
//! fit before sending a byte, and to warn at 90 %.
use serde::Serialize;

use super::{client::Nextcloud, NextcloudError};

/// Warn from this share of the quota used.
pub const WARN_AT_PERCENT: u64 = 90;

/// Space used and free on the server, in bytes. `free` is `None` when unlimited or unknown
/// (Nextcloud answers negative values then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub used: u64,
    pub free: Option<u64>,
    /// used + free, when limited.
    pub total: Option<u64>,
    /// Counted now, not the server's cached figure (which may be up to 5 minutes old).
    pub fresh: bool,
}

impl Quota {
    /// From the quota properties alone: the server's cached figure.
    pub fn from_props(used: Option<i64>, available: Option<i64>) -> Quota {
        let used = used.unwrap_or(0).max(0) as u64;
        let free = available.filter(|a| *a >= 0).map(|a| a as u64);
        Quota { used, free, total: free.map(|f| f + used), fresh: false }
    }

    /// From the account root's quota properties and its `oc:size`: the total is stable, the
    /// size is counted fresh (observed on Nextcloud 34.0.1), so used and free are up to date
    /// even while the quota properties are stale.
    pub fn from_root(used: Option<i64>, available: Option<i64>, size: Option<u64>) -> Quota {
        let stale = Quota::from_props(used, available);
        match (size, stale.total) {
            (Some(size), Some(total)) => Quota { used: size, free: Some(total.saturating_sub(size)), total: Some(total), fresh: true },
            (Some(size), None) => Quota { used: size, free: None, total: None, fresh: true },
            _ => stale,
        }
    }

    /// Whether a file of `size` bytes fits in what is free.
    pub fn fits(&self, size: u64) -> bool {
        self.free.is_none_or(|f| size <= f)
    }

    /// Share of the quota used, 0-100, when limited.
    pub fn percent_used(&self) -> Option<u64> {
        match self.total {
            Some(0) | None => None,
            Some(t) => Some(self.used.saturating_mul(100) / t),
        }
    }

    /// A warning for the member from 90 % use.
    pub fn warning(&self) -> Option<String> {
        let p = self.percent_used()?;
        (p >= WARN_AT_PERCENT).then(|| {
            format!(
                "your space on the server is {p}% full ({} MB of {} MB used)",
                self.used / MIB,
                self.total.unwrap_or(0) / MIB
            )
        })
    }

    /// Counts an upload against the free space (so a batch does not overfill it).
    pub fn take(&mut self, size: u64) {
        self.used += size;
        if let Some(f) = self.free.as_mut() {
            *f = f.saturating_sub(size);
        }
    }
}

/// The status of a file skipped for lack of space.
pub fn not_enough_space(free: u64) -> String {
    NextcloudError::InsufficientStorage { free: Some(free) }.to_string()
}

impl Nextcloud {
    /// The quota, from the files root.
    pub async fn quota(&self) -> Result<Quota, NextcloudError> {
        let root = self.root_item("").await?;
        Ok(Quota::from_root(root.quota_used, root.quota_available, root.size))
    }
}

/// Nextcloud counts in binary units: its "150 MB" quota is 150 MiB.
const MIB: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_at_ninety_percent_and_checks_fit() {
        let q = Quota::from_props(Some(141_557_760), Some(15_728_640));
        assert_eq!(q.total, Some(157_286_400));
        assert_eq!(q.percent_used(), Some(90));
        // Binary units, as Nextcloud shows them: the 150 MB quota reads 150, not 157.
        assert_eq!(q.warning().unwrap(), "your space on the server is 90% full (135 MB of 150 MB used)");
        assert!(q.fits(15_728_640));
        assert!(!q.fits(15_728_641));
        let low = Quota::from_props(Some(1), Some(157_286_399));
        assert_eq!(low.warning(), None);
        let unlimited = Quota::from_props(Some(5), Some(-3));
        assert!(unlimited.fits(u64::MAX));
        assert_eq!(unlimited.warning(), None);
        assert_eq!(not_enough_space(12 * MIB + 500_000), "not enough space on the server (12 MB free)");
    }
}

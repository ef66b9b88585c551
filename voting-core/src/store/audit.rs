//! Reading the audit log (lines are written by each action, in its transaction).

use mysql::prelude::Queryable;

use super::{rfc3339, AdminSession, Store};
use crate::error::Result;
use crate::types::AuditEntry;

/// Most audit lines returned by one call.
pub const AUDIT_PAGE_MAX: u32 = 10_000;

impl Store {
    /// Audit lines after `after_id` (0 for the beginning), oldest first, at most
    /// `limit` (capped at [`AUDIT_PAGE_MAX`]).
    pub fn audit_log(
        &self,
        _admin: &AdminSession,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows: Vec<(u64, String, String, String, String)> = self.conn()?.exec(
            format!(
                "SELECT id, {}, actor, action, detail FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
                rfc3339("at")
            ),
            (after_id, limit.min(AUDIT_PAGE_MAX)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, detail)| AuditEntry {
                id,
                at,
                actor,
                action,
                detail,
            })
            .collect())
    }
}

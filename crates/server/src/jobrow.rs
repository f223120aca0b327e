//! One mapping from a row of the `jobs` table to a [`Job`], for both job stores (SQLite in
//! [`crate::db`], PostgreSQL in [`crate::pg`]): each only says how to read a column of its
//! row type. The column order is the one both stores' `SELECT`s use.

use crate::model::{
    rfc3339, BaselineKind, BundleFormat, BundleInfo, Job, JobError, JobMode, Progress, State,
};

/// How a store reads the columns of a job row.
pub(crate) trait JobRow {
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A boolean column (SQLite stores 0 or 1).
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// The job of a row; a value the model cannot parse falls back to the safe default (a job in
/// an unknown state reads as failed).
pub(crate) fn job_from_row<R: JobRow>(r: &R) -> Result<Job, R::Error> {
    let state = r.text(1)?;
    let packages = r.text(4)?;
    let progress = r.text(11)?;
    let err_code = r.opt_text(12)?;
    let bundle_file = r.opt_text(14)?;
    let bundle = match bundle_file {
        Some(file_name) => Some(BundleInfo {
            file_name,
            size: r.opt_int(15)?.unwrap_or(0) as u64,
            sha256: r.opt_text(16)?.unwrap_or_default(),
            package_count: r.opt_int(17)?.unwrap_or(0) as u64,
            expires_at: rfc3339(r.opt_int(18)?.unwrap_or(0)),
            expired: r.flag(19)?,
        }),
        None => None,
    };
    Ok(Job {
        id: r.text(0)?,
        state: State::parse(&state).unwrap_or(State::Failed),
        distro: r.text(2)?,
        arch: r.text(3)?,
        packages: serde_json::from_str(&packages).unwrap_or_default(),
        recommends: r.flag(5)?,
        baseline: BaselineKind::parse(&r.text(6)?).unwrap_or(BaselineKind::Minimal),
        format: BundleFormat::parse(&r.text(7)?).unwrap_or(BundleFormat::TarGz),
        created_at: rfc3339(r.int(8)?),
        started_at: r.opt_int(9)?.map(rfc3339),
        finished_at: r.opt_int(10)?.map(rfc3339),
        progress: serde_json::from_str(&progress).unwrap_or_else(|_| Progress::queued()),
        error: match err_code {
            Some(code) => Some(JobError {
                code,
                message: r.opt_text(13)?.unwrap_or_default(),
                index: r.opt_int(20)?.and_then(|i| u32::try_from(i).ok()),
                package: r.opt_text(21)?,
            }),
            None => None,
        },
        bundle,
        mode: JobMode::parse(&r.text(22)?).unwrap_or(JobMode::Install),
        security_only: r.flag(23)?,
        hosts: r
            .opt_text(24)?
            .and_then(|h| serde_json::from_str(&h).ok())
            .unwrap_or_default(),
        plan: r.opt_text(25)?.and_then(|p| serde_json::from_str(&p).ok()),
    })
}

/// Every state with its count, zeros included, from a `SELECT state, count(*) … GROUP BY
/// state` (a state the model does not know is left out).
pub(crate) fn counts_by_state(found: &[(String, i64)]) -> Vec<(State, u64)> {
    State::ALL
        .into_iter()
        .map(|s| {
            let n = found
                .iter()
                .find(|(k, _)| k == s.as_str())
                .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
            (s, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_counted_zeros_included_and_unknown_ones_left_out() {
        let found = vec![
            ("failed".to_string(), 2),
            ("queued".to_string(), 5),
            ("from-a-newer-version".to_string(), 9),
        ];
        let counts = counts_by_state(&found);
        assert_eq!(
            counts.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            State::ALL.to_vec()
        );
        let n = |st: State| counts.iter().find(|(s, _)| *s == st).map(|(_, n)| *n);
        assert_eq!(n(State::Queued), Some(5));
        assert_eq!(n(State::Failed), Some(2));
        assert_eq!(n(State::Resolving), Some(0));
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u64>(), 7);
    }
}

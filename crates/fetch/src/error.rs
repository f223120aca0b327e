//! The typed errors of a fetch: one variant per failure a caller must tell apart
//! (network, HTTP status, integrity, local disk).

use std::path::PathBuf;

/// Why a [`fetch_all`](crate::fetch_all) failed.
///
/// Classification for exit codes: [`FetchError::is_integrity`] (hash or size mismatch: the
/// mirror serves something other than what the signed index promised), [`FetchError::is_network`]
/// (unreachable mirror, HTTP error), everything else is local (disk, I/O, bad input).
/// [`FetchError::AllMirrorsFailed`] carries the last mirror's error as its `source`, and the
/// classification looks through it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with an unusable status (after retries for 5xx and 429).
    #[error("{url}: HTTP {status}{}", if *status == 404 || *status == 410 { " (not on this mirror)" } else { "" })]
    Http { url: String, status: u16 },

    /// Connecting, sending or receiving failed (refused, reset, dropped mid-body, timed out).
    #[error("{url}: cannot connect or read ({message}); is the mirror up and reachable?")]
    Network { url: String, message: String },

    /// The downloaded file does not have the SHA256 the (signed) index gave.
    #[error("{name}: SHA256 mismatch for {url}: expected {expected}, got {got}")]
    HashMismatch {
        name: String,
        url: String,
        expected: String,
        got: String,
    },

    /// The server sent a complete response of the wrong length.
    #[error("{name}: size mismatch for {url}: expected {expected} bytes, got {got}")]
    SizeMismatch {
        name: String,
        url: String,
        expected: u64,
        got: u64,
    },

    /// A local file (in the cache, or a `file://` mirror) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Every URL of an item failed; `tried` lists them in the order they were tried and
    /// `source` is the last one's error (`last` is its text).
    #[error("{name}: all {} mirrors failed (tried {})", tried.len(), tried.join(", "))]
    AllMirrorsFailed {
        name: String,
        tried: Vec<String>,
        last: String,
        #[source]
        source: Box<FetchError>,
    },

    /// The disk holding the cache is full (ENOSPC or quota). The partial file was removed.
    #[error(
        "no space left on the device while writing {}; free some space or use another cache directory",
        path.display()
    )]
    DiskFull { path: PathBuf },

    /// An item that cannot be fetched as given (bad SHA256, no URL, the same hash listed
    /// twice with different sizes).
    /// [`crate::Progress::cancelled`] said stop; the files that arrived stay in the store.
    #[error("cancelled")]
    Cancelled,

    #[error("{name}: invalid download item: {reason}")]
    InvalidItem { name: String, reason: String },
}

impl FetchError {
    /// The error behind [`FetchError::AllMirrorsFailed`] (the last mirror's), else `self`.
    pub fn root_cause(&self) -> &FetchError {
        match self {
            FetchError::AllMirrorsFailed { source, .. } => source.root_cause(),
            e => e,
        }
    }

    /// A hash or size mismatch: the mirror serves other bytes than the index promised.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self.root_cause(),
            FetchError::HashMismatch { .. } | FetchError::SizeMismatch { .. }
        )
    }

    /// The mirror could not be reached or answered with an HTTP error.
    pub fn is_network(&self) -> bool {
        matches!(
            self.root_cause(),
            FetchError::Http { .. } | FetchError::Network { .. }
        )
    }
}

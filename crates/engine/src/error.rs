//! One error type for the front ends, with a kind that maps to CLI exit codes and API codes.

use opaas_repo::store::RepoError;

/// What kind of failure, for exit codes (CLI) and status codes (API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Bad input: unknown distro, arch, component, version; bad request syntax; bad status file.
    BadInput,
    /// The package does not exist (suggestions may be attached).
    UnknownPackage,
    /// The request cannot be satisfied.
    Unsatisfiable,
    /// Signature, hash, size or corrupt data.
    Trust,
    /// Mirror unreachable or HTTP error.
    Network,
    /// `--offline` and nothing cached.
    NotCached,
    DiskFull,
    Cancelled,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: Kind,
    pub message: String,
    /// The request field the error is about (`distro`, `arch`, `packages`, `baseline`, …).
    pub field: Option<&'static str>,
    /// Which entry of the request list the error is about (0-based), when it is about one.
    /// (`u32` keeps the error under clippy's large-`Err` size; request lists are short.)
    pub index: Option<u32>,
    /// The package the error is about (an unknown name, the package whose dependency breaks).
    pub package: Option<String>,
    pub suggestions: Vec<String>,
    /// The typed cause, kept for `source()` chains and for front ends that want more than text.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl EngineError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
            field: None,
            index: None,
            package: None,
            suggestions: Vec::new(),
            source: None,
        }
    }
    pub fn field(mut self, f: &'static str) -> Self {
        self.field = Some(f);
        self
    }
    /// The request entry (0-based) the error is about.
    pub fn index(mut self, i: usize) -> Self {
        self.index = u32::try_from(i).ok();
        self
    }
    /// The package the error is about.
    pub fn package(mut self, p: impl Into<String>) -> Self {
        self.package = Some(p.into());
        self
    }
    /// Keep the typed cause.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }

    /// The CLI's exit code (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::BadInput | Kind::UnknownPackage => 3,
            Kind::Trust => 4,
            Kind::Network => 5,
            Kind::NotCached => 6,
            Kind::Unsatisfiable => 7,
            Kind::Cancelled => 130,
            Kind::DiskFull | Kind::Internal => 1,
        }
    }
}

impl From<RepoError> for EngineError {
    fn from(e: RepoError) -> Self {
        let kind = match &e {
            RepoError::Http(_) => Kind::Network,
            RepoError::NotCached { .. } => Kind::NotCached,
            RepoError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                Kind::DiskFull
            }
            RepoError::Io { .. } => Kind::Internal,
            RepoError::MissingIndex { .. } => Kind::BadInput,
            _ => Kind::Trust,
        };
        EngineError::new(kind, e.to_string()).with_source(e)
    }
}

impl From<opaas_fetch::FetchError> for EngineError {
    fn from(e: opaas_fetch::FetchError) -> Self {
        let kind = if e.is_integrity() {
            Kind::Trust
        } else if e.is_network() {
            Kind::Network
        } else if matches!(e, opaas_fetch::FetchError::DiskFull { .. }) {
            Kind::DiskFull
        } else if matches!(e, opaas_fetch::FetchError::Cancelled) {
            Kind::Cancelled
        } else {
            Kind::Internal
        };
        EngineError::new(kind, e.to_string()).with_source(e)
    }
}

impl From<opaas_bundle::BundleError> for EngineError {
    fn from(e: opaas_bundle::BundleError) -> Self {
        let kind = match e {
            opaas_bundle::BundleError::DiskFull { .. } => Kind::DiskFull,
            _ => Kind::Internal,
        };
        EngineError::new(kind, e.to_string()).with_source(e)
    }
}

//! `opaas-deb`: the Debian package vocabulary shared by every other OPaaS crate.
//!
//! * [`version`]: dpkg version ordering, a transcription of dpkg's `verrevcmp`.
//! * [`deb822`]: zero-copy paragraphs and fields of Packages, Release and status files.
//! * [`relation`]: Depends-style relation fields parsed into and/or groups.
//!
//! Nothing here does I/O: this crate is pure parsing and comparison, so every other crate can
//! depend on it.

pub mod deb822;
pub mod relation;
pub mod version;

pub use deb822::{paragraphs, paragraphs_with_offsets, Paragraph};
pub use relation::{parse_one, parse_relations, Op, Relation, Relations};
pub use version::compare as compare_versions;

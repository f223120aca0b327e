//! The answer: what apt would install (with why) and what it would remove.

use crate::depcache::{DepCache, Reason};
use crate::explain::Why;
use crate::model::Mode;
use opaas_repo::universe::PkgRef;
use serde::Serialize;

/// One package of the result.
#[derive(Debug, Clone, Serialize)]
pub struct Chosen {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub upgrade_from: Option<String>,
    #[serde(skip)]
    pub pref: Option<PkgRef>,
    pub reason: Why,
}

/// An installed package with a newer candidate that apt-get upgrade keeps at its version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeptBack {
    pub name: String,
    pub arch: String,
    pub installed: String,
    pub candidate: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub install: Vec<Chosen>,
    /// Installed packages apt would remove (a bundle cannot do that; reported, not hidden).
    pub remove: Vec<String>,
    /// Upgrades apt would hold back (upgrade modes only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_back: Vec<KeptBack>,
    pub notes: Vec<String>,
}

impl DepCache<'_> {
    /// The marks as a result, sorted by name and architecture.
    pub(crate) fn result(&self) -> Resolution {
        let mut install = Vec::new();
        let mut remove = Vec::new();
        for (id, p) in self.pkgs.iter().enumerate() {
            match p.mode {
                Mode::Install => {
                    let Some(v) = p.inst else { continue };
                    install.push(Chosen {
                        name: p.name.clone(),
                        arch: p.arch.clone(),
                        version: self.vers[v].version.clone(),
                        upgrade_from: p.current.map(|c| self.vers[c].version.clone()),
                        pref: self.vers[v].pref,
                        reason: self.render(p.reason.unwrap_or(Reason::Requested)),
                    });
                }
                Mode::Delete if p.current.is_some() => remove.push(self.pkg_name(id).to_string()),
                _ => {}
            }
        }
        install.sort_by(|a, b| a.name.cmp(&b.name).then(a.arch.cmp(&b.arch)));
        Resolution {
            install,
            remove,
            kept_back: Vec::new(),
            notes: Vec::new(),
        }
    }
}

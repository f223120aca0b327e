//! What is left broken after marking: apt-get's broken check (`pkgDepCache::BrokenCount`
//! and the "unmet dependencies" report of apt-private/private-output.cc).
//!
//! It runs after `pkgProblemResolver` ([`crate::resolver`]) had its turn: what is still broken
//! is what apt also leaves broken ("Unable to correct problems"), reported with the chain that
//! pulled in each side.

use crate::depcache::DepCache;
use crate::error::{Broken, Problem, ResolveError, Unsatisfiable};
use crate::model::{PkgId, Which};

impl DepCache<'_> {
    /// Every requested package not installable and every critical dependency left unsatisfied,
    /// with the chain that pulled each side in.
    pub(crate) fn check_broken(&mut self, targets: &[PkgId]) -> Result<(), ResolveError> {
        let mut problems = Vec::new();
        for (index, &t) in targets.iter().enumerate() {
            if self.not_installable(t) {
                problems.push(Problem::NotInstallable {
                    index,
                    package: self.pkg_name(t),
                });
            }
        }
        for p in 0..self.pkgs.len() {
            let Some(v) = self.pkgs[p].inst else { continue };
            let deps = self.vers[v].deps.clone();
            for g in deps.iter().filter(|g| g.kind.critical()) {
                if self.group_satisfied(v, g, Which::Inst) {
                    continue;
                }
                let wanted_by = self.chain(p);
                let alternatives = self.why_unsatisfied(v, g);
                problems.push(Problem::Broken(Broken {
                    package: self.pkg_version(v),
                    kind: g.kind,
                    relation: g.text(),
                    wanted_by,
                    alternatives,
                }));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            // the same report twice in a row says nothing new
            problems.dedup_by(|a, b| a.to_string() == b.to_string());
            Err(ResolveError::Unsatisfiable(Unsatisfiable { problems }))
        }
    }
}

//! From the command line to marks: apt-get's `DoInstall` (apt-private/private-install.cc) and
//! the request forms of apt-pkg/cacheset.cc (`pkg`, `pkg=version`, `pkg/release`,
//! `pkg:arch`, a virtual name with one provider).
//!
//! apt-get marks every requested package first, without dependencies and protected, then
//! installs each one's dependencies in command-line order; `pkg/release` also moves the
//! dependencies the default candidates cannot satisfy to that release
//! (`SetCandidateRelease`). Errors name the request entry by its index.

use crate::baseline::Baseline;
use crate::depcache::{DepCache, Options, Reason};
use crate::error::ResolveError;
use crate::model::{DepGroup, Mode, PkgId, VerId, Which};
use crate::request::Request;
use crate::resolution::Resolution;
use opaas_repo::universe::Universe;
use std::collections::HashSet;

/// Resolves `reqs` on top of `base`, as `apt-get install` would.
pub fn resolve(
    u: &Universe,
    base: &Baseline,
    reqs: &[Request],
    opts: Options,
) -> Result<Resolution, ResolveError> {
    let mut arches: Vec<String> = vec![u.native_arch.clone()];
    for s in &u.sources {
        if !arches.contains(&s.arch) {
            arches.push(s.arch.clone());
        }
    }
    let mut s = DepCache::new(u, base, opts, &arches);
    s.install(reqs)
}

/// `apt-get upgrade` / `apt-get dist-upgrade` of `base` (a real dpkg status), with `reqs`
/// (possibly none) installed in the same run, as apt-get's UpgradeHelper does: the requests
/// are marked first, then the upgrade runs over every installed package.
pub fn resolve_upgrade(
    u: &Universe,
    base: &Baseline,
    reqs: &[Request],
    opts: Options,
    mode: crate::upgrade::UpgradeMode,
    phased: crate::upgrade::Phased,
) -> Result<Resolution, ResolveError> {
    let arches: Vec<String> = vec![u.native_arch.clone()];
    let mut s = DepCache::new(u, base, opts, &arches);
    // CheckDeps(AllowBroken=false): an upgrade of a broken system stops at once
    if s.system_broken() {
        s.check_broken(&[])?;
    }
    let targets = s.mark_requests(reqs)?;
    if let Err(why) = s.upgrade(mode, phased) {
        return Err(ResolveError::Internal(why));
    }
    s.check_broken(&targets)?;
    s.do_automatic_remove();
    let mut r = s.result();
    r.kept_back = s
        .kept_back()
        .into_iter()
        .map(|p| {
            let k = &s.pkgs[p];
            crate::resolution::KeptBack {
                name: k.name.clone(),
                arch: k.arch.clone(),
                installed: k
                    .current
                    .map(|v| s.vers[v].version.clone())
                    .unwrap_or_default(),
                candidate: k
                    .cand
                    .map(|v| s.vers[v].version.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    Ok(r)
}

impl DepCache<'_> {
    /// apt-get install: pass 1 marks every request (no dependencies, protected), pass 2
    /// installs their dependencies in command-line order, then what is left broken is reported.
    pub(crate) fn install(&mut self, reqs: &[Request]) -> Result<Resolution, ResolveError> {
        let broken_fix = self.system_broken();
        let targets = self.mark_requests(reqs)?;
        // Fix->Resolve(true): the problem resolver, with the requests protected (not when the
        // installed system was broken already: apt-get stops first)
        if !broken_fix && self.broken_count() > 0 {
            let mut fx = crate::resolver::Fixer::new(self.pkgs.len());
            for &t in &targets {
                fx.protect(self, t);
            }
            self.resolve_internal(&mut fx, true);
        }
        self.check_broken(&targets)?;
        self.do_automatic_remove();
        Ok(self.result())
    }

    /// Both passes of apt-get's request marking; the requested packages, in order.
    pub(crate) fn mark_requests(&mut self, reqs: &[Request]) -> Result<Vec<PkgId>, ResolveError> {
        let mut targets = Vec::new();
        for (index, r) in reqs.iter().enumerate() {
            let p = self.request_pkg(index, r)?;
            targets.push(p);
        }
        self.requested = targets.clone();
        // pass 1: mark without dependencies, protected
        for &p in &targets {
            // TryToInstall: a requested package is manual from now on
            self.pkgs[p].auto = false;
            self.pkgs[p].protect = true;
            self.mark_install(p, false, 0, true, Some(Reason::Requested));
        }
        // pass 2: dependencies, in command-line order
        for &p in &targets {
            self.mark_install(p, true, 0, true, Some(Reason::Requested));
        }
        Ok(targets)
    }

    /// The package request entry `index` names, with its candidate set as the request asks.
    fn request_pkg(&mut self, index: usize, r: &Request) -> Result<PkgId, ResolveError> {
        let arch = r.arch.clone().unwrap_or_else(|| self.native.clone());
        let p = self.pkg(&r.name, &arch);
        if let Some(ver) = &r.version {
            let found = self
                .u
                .versions(&r.name, &arch)
                .into_iter()
                .find(|c| c.version == ver.as_str())
                .map(|c| (c.version.to_string(), c.main));
            let cur = self.pkgs[p].current;
            if cur.is_some_and(|c| &self.vers[c].version == ver) {
                self.pkgs[p].cand = cur;
            } else if let Some((v, pref)) = found {
                let vid = self.make_ver(p, &v, Some(pref), None);
                self.pkgs[p].cand = Some(vid);
            } else {
                let available = self
                    .u
                    .versions(&r.name, &arch)
                    .iter()
                    .map(|c| c.version.to_string())
                    .collect::<Vec<_>>();
                if available.is_empty() {
                    return Err(self.unknown(index, &r.name, &arch));
                }
                return Err(ResolveError::UnknownVersion {
                    index,
                    name: r.name.clone(),
                    version: ver.clone(),
                    available,
                });
            }
        }
        if let Some(suite) = &r.suite {
            let versions = self.u.versions(&r.name, &arch);
            let hit = versions
                .iter()
                .find(|c| {
                    c.refs.iter().any(|x| {
                        self.u.source(*x).suite == *suite || self.u.source(*x).codename == *suite
                    })
                })
                .map(|c| (c.version.to_string(), c.main));
            match hit {
                Some((v, pref)) => {
                    let vid = self.make_ver(p, &v, Some(pref), None);
                    self.pkgs[p].cand = Some(vid);
                    self.set_candidate_release(vid, suite);
                }
                None => {
                    if versions.is_empty() {
                        return Err(self.unknown(index, &r.name, &arch));
                    }
                    let available = versions
                        .iter()
                        .map(|c| {
                            (
                                c.version.to_string(),
                                c.refs
                                    .iter()
                                    .map(|x| self.u.source(*x).suite.clone())
                                    .collect::<Vec<_>>(),
                            )
                        })
                        .collect::<Vec<_>>();
                    return Err(ResolveError::UnknownSuite {
                        index,
                        name: r.name.clone(),
                        suite: suite.clone(),
                        available,
                    });
                }
            }
        }
        if self.pkgs[p].cand.is_none() {
            // a virtual package: apt picks the provider only when all are one package
            let provs = self.providers(&r.name);
            let mut owners: Vec<String> = provs.iter().map(|(n, _, _, _)| n.clone()).collect();
            owners.sort();
            owners.dedup();
            // only providers whose candidate is the providing version count
            let mut live = Vec::new();
            for (n, a, v, _) in provs.iter() {
                let q = self.pkg(n, a);
                if self.pkgs[q]
                    .cand
                    .is_some_and(|c| &self.vers[c].version == v)
                    && !live.contains(&q)
                {
                    live.push(q);
                }
            }
            let names: HashSet<String> = live.iter().map(|&q| self.pkgs[q].name.clone()).collect();
            if names.len() == 1 {
                let q = live
                    .iter()
                    .copied()
                    .find(|&q| self.pkgs[q].arch == arch)
                    .unwrap_or(live[0]);
                return Ok(q);
            }
            if owners.is_empty() {
                return Err(self.unknown(index, &r.name, &arch));
            }
            return Err(ResolveError::VirtualPackage {
                index,
                name: r.name.clone(),
                providers: owners,
            });
        }
        Ok(p)
    }

    /// cacheset's SetCandidateRelease for `pkg/release`: dependencies the default candidates
    /// cannot satisfy switch to that release too.
    fn set_candidate_release(&mut self, v: VerId, suite: &str) {
        let deps = self.vers[v].deps.clone();
        let deps: Vec<&DepGroup> = deps
            .iter()
            .filter(|g| !g.kind.negative() && self.important(g.kind))
            .collect();
        for g in deps.iter() {
            if g.alts.iter().any(|a| {
                !self.alt_solutions(v, a, Which::Now, false).is_empty()
                    || !self.alt_solutions(v, a, Which::Cand, false).is_empty()
            }) {
                continue;
            }
            for a in &g.alts {
                let arch = self.parent_arch(v);
                let tp = self.pkg(a.name, &arch);
                let versions = self.u.versions(a.name, &arch);
                let hit = versions
                    .iter()
                    .find(|c| {
                        c.refs.iter().any(|x| {
                            self.u.source(*x).suite == suite || self.u.source(*x).codename == suite
                        }) && a
                            .cons
                            .as_ref()
                            .is_none_or(|(op, w)| op.matches(c.version, w))
                    })
                    .map(|c| (c.version.to_string(), c.main));
                if let Some((ver, pref)) = hit {
                    let nv = self.make_ver(tp, &ver, Some(pref), None);
                    self.pkgs[tp].cand = Some(nv);
                    self.set_candidate_release(nv, suite);
                    break;
                }
            }
        }
    }

    fn unknown(&mut self, index: usize, name: &str, arch: &str) -> ResolveError {
        ResolveError::UnknownPackage {
            index,
            name: name.to_string(),
            arch: arch.to_string(),
            hint: crate::suggest::hint(self.u, name),
        }
    }

    /// True when a requested package ended up neither marked nor installed.
    pub(crate) fn not_installable(&self, p: PkgId) -> bool {
        self.pkgs[p].mode != Mode::Install && self.pkgs[p].current.is_none()
    }
}

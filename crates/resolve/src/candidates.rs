//! Which versions can satisfy a dependency, and in which order apt tries them.
//!
//! * the default candidate version: apt-pkg/policy.cc `GetCandidateVer` (pins from the
//!   Release files, see `Universe::candidate`);
//! * the versions an or-group member reaches, directly or through Provides, with the
//!   Multi-Arch rules: pkgCache::DepIterator::AllTargets;
//! * their order: `CompareProviders` and `getAllPossibleSolutions` (apt-pkg/depcache.cc).
//!
//! The order decides which alternative or provider apt installs, so it is kept in one place.

use crate::depcache::DepCache;
use crate::model::{Alt, DepGroup, Mode, MultiArch, PkgId, VerId, Which};
use opaas_repo::universe::Universe;

impl<'u> DepCache<'u> {
    /// The candidate of a package just created (policy.cc `GetCandidateVer`): `current` when
    /// the policy picks the installed version or nothing.
    pub(crate) fn default_candidate(
        &mut self,
        id: PkgId,
        installed: Option<&str>,
        current: Option<VerId>,
    ) -> Option<VerId> {
        let u: &'u Universe = self.u;
        let found = u.candidate(&self.pkgs[id].name, &self.pkgs[id].arch, installed);
        match found {
            Some(c) if Some(c.version) == installed => current,
            Some(c) => Some(self.make_ver(id, c.version, Some(c.main), None)),
            None => current,
        }
    }

    /// Target packages an alternative can be satisfied by directly, with whether the
    /// Multi-Arch rule for another architecture applies.
    pub(crate) fn direct_targets(
        &mut self,
        alt: &Alt,
        parent_arch: &str,
        negative: bool,
    ) -> Vec<(PkgId, bool)> {
        // (pkg, needs_foreign_or_allowed)
        let mut out = Vec::new();
        let arches = std::rc::Rc::clone(&self.arches);
        match alt.arch {
            Some("any") => {
                for a in arches.iter() {
                    out.push((self.pkg(alt.name, a), true));
                }
            }
            Some(a) => out.push((self.pkg(alt.name, a), false)),
            None => {
                out.push((self.pkg(alt.name, parent_arch), false));
                for a in arches.iter() {
                    if a != parent_arch {
                        // negative dependencies apply to every architecture of the target
                        out.push((self.pkg(alt.name, a), !negative));
                    }
                }
            }
        }
        out
    }

    fn arch_ok(&self, v: VerId, alt: &Alt, needs_other: bool) -> bool {
        if !needs_other {
            return true;
        }
        match alt.arch {
            Some("any") => {
                self.vers[v].multi_arch == MultiArch::Allowed
                    || self.pkgs[self.vers[v].pkg].arch == self.native
                        && self.vers[v].multi_arch == MultiArch::Foreign
            }
            _ => self.vers[v].multi_arch == MultiArch::Foreign,
        }
    }

    /// Versions (of kind `w`) that satisfy `alt` (for negative kinds: that match it).
    pub(crate) fn alt_solutions(
        &mut self,
        parent: VerId,
        alt: &Alt,
        w: Which,
        negative: bool,
    ) -> Vec<VerId> {
        let parent_arch = self.parent_arch(parent);
        let parent_pkg = self.vers[parent].pkg;
        let mut out = Vec::new();
        for (p, needs_other) in self.direct_targets(alt, &parent_arch, negative) {
            if negative && self.pkgs[p].name == self.pkgs[parent_pkg].name {
                continue; // self-conflicts are ignored (IsIgnorable)
            }
            if let Some(v) = self.ver_of(p, w) {
                let ok_ver = alt
                    .cons
                    .as_ref()
                    .is_none_or(|(op, want)| op.matches(&self.vers[v].version, want));
                if ok_ver && self.arch_ok(v, alt, needs_other) && !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        for (on, oa, ov, pv) in self.providers(alt.name).iter() {
            if negative && *on == self.pkgs[parent_pkg].name {
                continue;
            }
            // a versioned dependency needs a versioned Provides
            if let Some((op, want)) = &alt.cons {
                match &pv {
                    Some(pv) if op.matches(pv, want) => {}
                    _ => continue,
                }
            }
            let arch_fits = match alt.arch {
                Some("any") | None if negative => true,
                Some("any") => true,
                Some(a) => oa == a,
                None => *oa == parent_arch,
            };
            let p = self.pkg(on, oa);
            let Some(v) = self.ver_of(p, w) else { continue };
            if self.vers[v].version != *ov {
                continue;
            }
            let fits = arch_fits || self.vers[v].multi_arch == MultiArch::Foreign;
            if fits && !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    fn group_has_installed(&self, name: &str) -> bool {
        self.arches.iter().any(|a| {
            self.pkg_id(name, a)
                .is_some_and(|p| self.pkgs[p].current.is_some())
        })
    }

    /// apt's CompareProviders: `Less` when `a` should be tried before `b`.
    fn compare_providers(&self, a: VerId, b: VerId, target: &str) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        let (pa, pb) = (&self.pkgs[self.vers[a].pkg], &self.pkgs[self.vers[b].pkg]);
        let first = |x: bool| if x { Less } else { Greater };
        if pa.protect != pb.protect {
            return first(pa.protect);
        }
        if self.vers[a].multi_arch == MultiArch::Same || self.vers[b].multi_arch == MultiArch::Same
        {
            let (ia, ib) = (
                self.group_has_installed(&pa.name),
                self.group_has_installed(&pb.name),
            );
            if ia != ib {
                return first(ia);
            }
        }
        if (pa.current.is_none() || pb.current.is_none())
            && pa.current.is_some() != pb.current.is_some()
        {
            return first(pa.current.is_some());
        }
        if pa.name != pb.name {
            if pa.name == target && pb.name != target {
                return Less;
            }
            if pb.name == target && pa.name != target {
                return Greater;
            }
        }
        if pa.essential != pb.essential {
            return first(pa.essential);
        }
        if pa.important != pb.important {
            return first(pa.important);
        }
        if pa.arch != pb.arch {
            if pa.arch == self.native {
                return Less;
            }
            if pb.arch == self.native {
                return Greater;
            }
            let ia = self.arches.iter().position(|x| *x == pa.arch);
            let ib = self.arches.iter().position(|x| *x == pb.arch);
            if ia != ib {
                return ia.unwrap_or(usize::MAX).cmp(&ib.unwrap_or(usize::MAX));
            }
        }
        let (qa, qb) = (self.vers[a].prio, self.vers[b].prio);
        if qa != qb {
            return qa.cmp(&qb);
        }
        pb.order.cmp(&pa.order)
    }

    /// getAllPossibleSolutions(Start, End, w, sorted=true): per member, its versions in
    /// CompareProviders order; upgrades of installed packages before new installs; for positive
    /// groups without protected packages that are to be removed or kept uninstalled.
    pub(crate) fn possible_solutions(
        &mut self,
        parent: VerId,
        g: &DepGroup,
        w: Which,
    ) -> Vec<VerId> {
        let neg = g.kind.negative();
        let mut upgrades = Vec::new();
        let mut news = Vec::new();
        for alt in &g.alts {
            let mut list = self.alt_solutions(parent, alt, w, neg);
            list.sort_by(|&a, &b| self.compare_providers(a, b, alt.name));
            for v in list {
                if self.pkgs[self.vers[v].pkg].current.is_some() {
                    upgrades.push(v);
                } else {
                    news.push(v);
                }
            }
        }
        upgrades.extend(news);
        upgrades.dedup();
        if !neg {
            upgrades.retain(|&v| {
                let p = &self.pkgs[self.vers[v].pkg];
                !(p.protect
                    && (p.mode == Mode::Delete || (p.mode == Mode::Keep && p.current.is_none())))
            });
        }
        upgrades
    }
}

//! pkgProblemResolver (apt-pkg/algorithms.cc): `ResolveInternal` and `DoUpgrade`, the scored
//! fixer apt runs after marking when something is left broken. It keeps back, removes or
//! upgrades packages, highest score first, until nothing is broken or 20 rounds passed.
//!
//! The port follows the C++ statement by statement (the `Start`/`End` walk over or-groups, the
//! kill list, `OrOp`), including its quirks: `Flags &= ReInstateTried` clears every flag
//! instead of setting one, and a keep "by the user" (`MarkKeep(I)` with its default
//! arguments) where nothing can satisfy a dependency. One difference is documented: apt sorts
//! the packages by score with `std::sort` (not stable) over every package of its cache; here
//! equal scores keep `PkgBegin` order.

use crate::depcache::{DepCache, Reason};
use crate::model::{Alt, DepGroup, DepKind, DepRef, Mode, PkgId, VerId, Which};
use std::collections::HashMap;

const PROTECTED: u8 = 1 << 0;
const PRE_INSTALLED: u8 = 1 << 1;
const UPGRADABLE: u8 = 1 << 2;
const REINSTATE_TRIED: u8 = 1 << 3;
const TO_REMOVE: u8 = 1 << 4;

/// The resolver's own state (pkgProblemResolver's Flags and Scores).
pub(crate) struct Fixer {
    flags: Vec<u8>,
    scores: HashMap<PkgId, i64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OrOp {
    Remove,
    Keep,
}

impl Fixer {
    pub(crate) fn new(n: usize) -> Fixer {
        Fixer {
            flags: vec![0; n],
            scores: HashMap::new(),
        }
    }

    fn flag(&self, p: PkgId) -> u8 {
        self.flags.get(p).copied().unwrap_or(0)
    }

    fn flag_mut(&mut self, p: PkgId) -> &mut u8 {
        if p >= self.flags.len() {
            self.flags.resize(p + 1, 0);
        }
        &mut self.flags[p]
    }

    fn score(&self, p: PkgId) -> i64 {
        self.scores.get(&p).copied().unwrap_or(0)
    }

    /// pkgProblemResolver::Protect: the resolver may not change `p` (and neither may the
    /// marking: pkgDepCache::MarkProtected).
    pub(crate) fn protect(&mut self, dc: &mut DepCache<'_>, p: PkgId) {
        *self.flag_mut(p) |= PROTECTED;
        dc.pkgs[p].protect = true;
    }

    pub(crate) fn protected_list(&self) -> Vec<bool> {
        self.flags.iter().map(|f| f & PROTECTED != 0).collect()
    }
}

impl DepCache<'_> {
    /// pkgDepCache::BrokenCount: packages whose install version has a critical dependency
    /// the install versions do not satisfy.
    pub(crate) fn broken_count(&mut self) -> usize {
        let mut n = 0;
        for p in 0..self.pkgs.len() {
            if self.pkgs[p].inst.is_some() && self.inst_broken(p, false) {
                n += 1;
            }
        }
        n
    }

    /// Whether the installed system itself is broken (pkgDepCache::BrokenCount right after
    /// opening the cache): apt-get then runs in "broken fix" mode and, when marking the
    /// request leaves anything broken, stops with "Unmet dependencies. Try 'apt --fix-broken
    /// install'" before the problem resolver could run (DoCacheManipulationFromCommandLine).
    pub(crate) fn system_broken(&mut self) -> bool {
        (0..self.pkgs.len()).any(|p| self.pkgs[p].current.is_some() && self.now_broken(p))
    }

    /// NowBroken: a critical dependency of the current version is not satisfied now.
    fn now_broken(&mut self, p: PkgId) -> bool {
        let Some(v) = self.pkgs[p].current else {
            return false;
        };
        let deps = self.vers[v].deps.clone();
        deps.iter().any(|g| {
            g.kind.critical()
                && !self.now_satisfied_directly(v, g)
                && !self.group_satisfied(v, g, Which::Now)
        })
    }

    /// A sound shortcut of `group_satisfied(.., Which::Now)` for the common case, without
    /// creating any package: a positive group one of whose members names an installed package
    /// of the parent's architecture at a matching version, or a negative group none of whose
    /// names is installed or provided by an installed package. False means "ask properly".
    fn now_satisfied_directly(&self, parent: VerId, g: &DepGroup) -> bool {
        let arch = &self.pkgs[self.vers[parent].pkg].arch;
        if g.kind.negative() {
            return g.alts.iter().all(|a| {
                !self.status_provides.contains_key(a.name)
                    && self
                        .base
                        .packages
                        .range((a.name.to_string(), String::new())..)
                        .next()
                        .is_none_or(|((n, _), _)| n != a.name)
            });
        }
        g.alts.iter().any(|a| {
            a.arch.is_none()
                && self
                    .base
                    .packages
                    .get(&(a.name.to_string(), arch.clone()))
                    .is_some_and(|i| {
                        a.cons
                            .as_ref()
                            .is_none_or(|(op, want)| op.matches(&i.version, want))
                    })
        })
    }

    /// The per-member dependency state (DepNow, DepCVer, …): for a positive member, some `w`
    /// version satisfies it; for a negative one, no `w` version matches it.
    fn alt_ok(&mut self, parent: VerId, alt: &Alt, kind: DepKind, w: Which) -> bool {
        let neg = kind.negative();
        let any = !self.alt_solutions(parent, alt, w, neg).is_empty();
        any != neg
    }

    /// StateCache::Upgradable: a candidate that is new or newer than the installed version.
    fn upgradable(&self, p: PkgId) -> bool {
        let k = &self.pkgs[p];
        match (k.current, k.cand) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(c), Some(n)) => {
                opaas_deb::compare_versions(&self.vers[n].version, &self.vers[c].version).is_gt()
            }
        }
    }

    /// The packages of `Start.AllTargets()`: every version of the target that satisfies the
    /// member (any version, not only the candidate), then every providing version; for
    /// negative members whether that version is the package's install version.
    fn all_targets(&mut self, parent: VerId, alt: &Alt, kind: DepKind) -> Vec<(PkgId, bool)> {
        let neg = kind.negative();
        let arch = self.parent_arch(parent);
        let parent_name = self.pkgs[self.vers[parent].pkg].name.clone();
        let mut out = Vec::new();
        for (t, _) in self.direct_targets(alt, &arch, neg) {
            if neg && self.pkgs[t].name == parent_name {
                continue;
            }
            let (name, tarch) = (self.pkgs[t].name.clone(), self.pkgs[t].arch.clone());
            let mut versions: Vec<String> = self
                .u
                .versions(&name, &tarch)
                .iter()
                .map(|c| c.version.to_string())
                .collect();
            if let Some(c) = self.pkgs[t].current {
                let cv = self.vers[c].version.clone();
                if !versions.contains(&cv) {
                    versions.push(cv);
                }
            }
            versions.sort_by(|a, b| opaas_deb::compare_versions(b, a));
            let inst = self.pkgs[t].inst.map(|v| self.vers[v].version.clone());
            for v in versions {
                let ok = alt
                    .cons
                    .as_ref()
                    .is_none_or(|(op, want)| op.matches(&v, want));
                if ok {
                    out.push((t, inst.as_deref() == Some(v.as_str())));
                }
            }
        }
        for (on, oa, ov, pv) in self.providers(alt.name).iter() {
            if neg && *on == parent_name {
                continue;
            }
            if let Some((op, want)) = &alt.cons {
                match &pv {
                    Some(pv) if op.matches(pv, want) => {}
                    _ => continue,
                }
            }
            let p = self.pkg(on, oa);
            let is_inst = self.pkgs[p]
                .inst
                .is_some_and(|v| self.vers[v].version == *ov);
            out.push((p, is_inst));
        }
        out
    }

    /// DepIterator::SmartTargetPkg: the target, or its only provider when it has no versions.
    fn smart_target(&mut self, parent: VerId, alt: &Alt) -> Option<PkgId> {
        let arch = self.parent_arch(parent);
        let t = self
            .direct_targets(alt, &arch, false)
            .first()
            .map(|&(t, _)| t)?;
        let has_versions = self.pkgs[t].current.is_some()
            || !self
                .u
                .versions(&self.pkgs[t].name.clone(), &self.pkgs[t].arch.clone())
                .is_empty();
        if has_versions {
            return Some(t);
        }
        let provs = self.providers(alt.name);
        let mut owners: Vec<(String, String)> = provs
            .iter()
            .map(|(n, a, _, _)| (n.clone(), a.clone()))
            .collect();
        owners.dedup();
        if owners.len() == 1 {
            let (n, a) = owners[0].clone();
            return Some(self.pkg(&n, &a));
        }
        Some(t)
    }

    /// pkgProblemResolver::DoUpgrade.
    fn do_upgrade(&mut self, fx: &mut Fixer, p: PkgId) -> bool {
        if fx.flag(p) & UPGRADABLE == 0 || !self.upgradable(p) {
            return false;
        }
        if fx.flag(p) & PROTECTED != 0 {
            return false;
        }
        *fx.flag_mut(p) &= !UPGRADABLE;
        let was_kept = self.pkgs[p].mode == Mode::Keep;
        self.mark_install(p, false, 0, false, Some(Reason::Upgrade));
        let Some(iv) = self.pkgs[p].inst else {
            return false;
        };
        let deps = self.vers[iv].deps.clone();
        let mut fail = false;
        for (gi, g) in deps.iter().enumerate() {
            if !g.kind.critical() {
                continue;
            }
            for alt in &g.alts {
                if self.group_satisfied(iv, &deps[gi], Which::Inst) {
                    break;
                }
                let target = self.smart_target(iv, alt);
                if target.is_some_and(|t| fx.flag(t) & PROTECTED != 0) {
                    fail = true;
                } else if self.alt_ok(iv, alt, g.kind, Which::Cand) {
                    match target {
                        Some(t) if self.do_upgrade(fx, t) => {
                            fail = false;
                            break;
                        }
                        _ => fail = true,
                    }
                } else {
                    if g.kind.negative() {
                        break;
                    }
                    fail = true;
                }
            }
            if fail {
                break;
            }
        }
        if fail {
            if was_kept {
                self.mark_keep(p, false);
            } else {
                self.mark_delete(p, false);
            }
            return false;
        }
        true
    }

    /// pkgProblemResolver::ResolveInternal(BrokenFix). Err when something stays broken.
    pub(crate) fn resolve_internal(&mut self, fx: &mut Fixer, broken_fix: bool) -> bool {
        loop {
            let mut again = false;
            for i in self.pkg_begin_order() {
                if self.pkgs[i].mode == Mode::Install {
                    *fx.flag_mut(i) |= PRE_INSTALLED;
                } else {
                    if broken_fix && self.pkgs[i].inst.is_some() && self.inst_broken(i, false) {
                        self.mark_install(i, false, 0, false, Some(Reason::Upgrade));
                        if self.pkgs[i].mode == Mode::Install {
                            again = true;
                        }
                    }
                    *fx.flag_mut(i) &= !PRE_INSTALLED;
                }
                *fx.flag_mut(i) |= UPGRADABLE;
            }
            if !again {
                break;
            }
        }
        if self.broken_count() == 0 {
            return true;
        }
        fx.scores = self.make_scores(&fx.protected_list());
        let mut plist = self.pkg_begin_order();
        plist.sort_by_key(|p| std::cmp::Reverse(fx.score(*p)));
        let mut change = true;
        let mut counter = 0;
        let mut kill: Vec<(PkgId, VerId, usize)> = Vec::new();
        while counter < 20 && change {
            change = false;
            for &i in &plist {
                // reinstate an upgrade that was undone, if it breaks nothing
                if self.pkgs[i].cand != self.pkgs[i].inst
                    && self.pkgs[i].current.is_some()
                    && self.pkgs[i].inst.is_some()
                    && fx.flag(i) & PRE_INSTALLED != 0
                    && !self.pkgs[i].protect
                    && fx.flag(i) & REINSTATE_TRIED == 0
                {
                    let old_breaks = self.broken_count();
                    let old_ver = self.pkgs[i].inst;
                    *fx.flag_mut(i) &= REINSTATE_TRIED; // sic (apt clears every flag here)
                    self.mark_install(i, false, 0, false, Some(Reason::Upgrade));
                    if self.inst_broken(i, false) || old_breaks < self.broken_count() {
                        if old_ver.is_none() {
                            self.mark_delete(i, false);
                        } else {
                            self.mark_keep(i, false);
                        }
                    }
                }
                let Some(iv) = self.pkgs[i].inst else {
                    continue;
                };
                if !self.inst_broken(i, false) {
                    continue;
                }
                kill.clear();
                let deps = self.vers[iv].deps.clone();
                self.fix_package(
                    fx,
                    i,
                    iv,
                    &deps,
                    broken_fix,
                    counter,
                    &mut kill,
                    &mut change,
                );
                if self.pkgs[i].inst.is_some() {
                    for &(pkg, dv, dg) in kill.iter() {
                        let mut found = false;
                        let deps = self.vers[dv].deps.clone();
                        let g = &deps[dg];
                        if !self.group_satisfied(dv, g, Which::Now) {
                            if g.kind.negative() && self.mark_delete(pkg, false) {
                                found = true;
                            }
                        } else if self.mark_keep(pkg, false) {
                            found = true;
                        }
                        if (!found || counter > 1) && fx.score(i) > fx.score(pkg) {
                            let s = fx.score(i);
                            fx.scores.insert(pkg, s);
                            change = true;
                        }
                        if found {
                            change = true;
                        }
                    }
                }
            }
            counter += 1;
        }
        self.broken_count() == 0
    }

    /// The or-group walk of ResolveInternal for one broken package `i` (install version `iv`).
    #[allow(clippy::too_many_arguments)]
    fn fix_package(
        &mut self,
        fx: &mut Fixer,
        i: PkgId,
        iv: VerId,
        deps: &[DepGroup],
        broken_fix: bool,
        counter: usize,
        kill: &mut Vec<(PkgId, VerId, usize)>,
        change: &mut bool,
    ) {
        let mut next_group = 0;
        let mut cur: Option<(usize, usize)> = None;
        let mut in_or = false;
        let mut old_size = 0;
        let mut or_op = OrOp::Remove;
        loop {
            if next_group >= deps.len() && !in_or {
                break;
            }
            let at_end = match cur {
                None => true,
                Some((g, a)) => a + 1 >= deps[g].alts.len(),
            };
            if at_end {
                if in_or && old_size == kill.len() {
                    match or_op {
                        OrOp::Remove => {
                            if !self.pkgs[i].protect {
                                self.mark_delete(i, false);
                                *change = true;
                            }
                        }
                        OrOp::Keep => {
                            self.mark_keep(i, false);
                            *change = true;
                        }
                    }
                }
                in_or = false;
                or_op = OrOp::Remove;
                if next_group >= deps.len() {
                    break;
                }
                let g = next_group;
                next_group += 1;
                cur = Some((g, 0));
                if !deps[g].kind.critical() {
                    continue;
                }
                in_or = deps[g].alts.len() > 1;
                old_size = kill.len();
            } else if let Some((g, a)) = cur {
                cur = Some((g, a + 1));
                if !deps[g].kind.critical() {
                    continue;
                }
            }
            let Some((g, a)) = cur else { break };
            let group = &deps[g];
            let alt = &group.alts[a];
            let neg = group.kind.negative();
            if self.group_satisfied(iv, group, Which::Inst) {
                in_or = false;
                continue;
            }
            let vlist = self.all_targets(iv, alt, group.kind);
            if vlist.is_empty() && !self.pkgs[i].protect && !neg && !self.now_broken(i) {
                if in_or {
                    continue;
                }
                *change = true;
                self.mark_keep(i, false);
                break;
            }
            let mut done = false;
            for &(pkg, is_inst) in &vlist {
                if neg && !is_inst {
                    continue;
                }
                let now_ok = self.alt_ok(iv, alt, group.kind, Which::Now);
                if fx.score(i) <= fx.score(pkg) || (!now_ok && !neg) {
                    if self.pkgs[i].protect {
                        if self.do_upgrade(fx, pkg) {
                            if fx.score(pkg) > fx.score(i) {
                                let s = fx.score(i);
                                fx.scores.insert(pkg, s);
                            }
                            break;
                        }
                        continue;
                    }
                    let installed = self.pkgs[i].mode == Mode::Install;
                    self.mark_keep(i, false);
                    if !self.inst_broken(i, false) {
                        if or_op == OrOp::Remove {
                            or_op = OrOp::Keep;
                        }
                        if in_or && installed {
                            self.mark_install(i, false, 0, false, Some(Reason::Upgrade));
                        }
                    } else if !broken_fix || !self.do_upgrade(fx, i) {
                        if !in_or {
                            self.mark_delete(i, false);
                            if counter > 1 && fx.score(pkg) > fx.score(i) {
                                let s = fx.score(pkg);
                                fx.scores.insert(i, s);
                            }
                        } else {
                            let arch = self.parent_arch(iv);
                            let target = self
                                .direct_targets(alt, &arch, false)
                                .first()
                                .map(|&(t, _)| t);
                            if let Some(t) = target {
                                let ok = self.pkgs[t].current.is_none()
                                    && self.pkgs[t].mode != Mode::Delete
                                    && fx.flag(t) & TO_REMOVE == 0
                                    && self.pkgs[t].cand.is_some();
                                if ok {
                                    let old_broken = self.broken_count();
                                    let choice = self.pkgs[t].cand.unwrap_or(iv);
                                    let reason = Reason::Dependency {
                                        dep: DepRef { ver: iv, group: g },
                                        choice,
                                    };
                                    self.mark_install(t, true, 1, false, Some(reason));
                                    if self.inst_broken(t, false)
                                        || self.broken_count() > old_broken
                                    {
                                        self.mark_delete(t, false);
                                    }
                                }
                            }
                        }
                    }
                    *change = true;
                    done = true;
                    break;
                } else {
                    if group.kind == DepKind::Breaks && self.group_satisfied(iv, group, Which::Cand)
                    {
                        self.mark_install(pkg, false, 0, false, Some(Reason::Upgrade));
                        continue;
                    }
                    if self.pkgs[pkg].protect && self.pkgs[pkg].mode != Mode::Delete {
                        continue;
                    }
                    kill.push((pkg, iv, g));
                    if !neg {
                        break;
                    }
                }
            }
            if vlist.is_empty() && !neg && !self.pkgs[i].protect {
                let installed = self.pkgs[i].mode == Mode::Install;
                // MarkKeep(I) with its default arguments: as the user
                self.mark_keep(i, true);
                if !self.inst_broken(i, false) {
                    if or_op == OrOp::Remove {
                        or_op = OrOp::Keep;
                    }
                    if in_or && installed {
                        self.mark_install(i, false, 0, false, Some(Reason::Upgrade));
                    }
                } else if !in_or {
                    self.mark_delete(i, false);
                }
                *change = true;
                done = true;
            }
            if in_or {
                continue;
            }
            if done {
                break;
            }
        }
    }
}

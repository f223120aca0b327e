//! pkgDepCache::MarkInstall, MarkKeep and MarkDelete (apt-pkg/depcache.cc, apt 2.6–2.8).
//!
//! `mark_install` is a short driver calling one Rust function per `MarkInstall_*` helper of
//! depcache.cc, in the same order (StateChange, CollectDependencies,
//! RemoveConflictsIfNotUpgradeable, CollectReverseDepends, UpgradeOtherBinaries,
//! UpgradeOrRemoveConflicts, InstallDependencies, the delayed removals, DiscardInstall), so that
//! a change in apt maps to one place here. docs/apt-semantics.md §3 has the apt pseudo-code.

use super::{DepCache, Reason};
use crate::model::{DepRef, Mode, PkgId, VerId, Which};
use std::collections::HashSet;

/// What MarkInstall_RemoveConflictsIfNotUpgradeable and CollectReverseDepends leave to do.
#[derive(Default)]
struct Pending {
    /// Installed packages to upgrade (or remove), each with why.
    to_upgrade: Vec<(PkgId, Reason)>,
    /// Installed packages to remove once the dependencies are in.
    delayed_remove: Vec<PkgId>,
}

impl DepCache<'_> {
    /// pkgDepCache::MarkInstall.
    pub(crate) fn mark_install(
        &mut self,
        p: PkgId,
        auto_inst: bool,
        depth: u32,
        from_user: bool,
        reason: Option<Reason>,
    ) -> bool {
        let (protect, mode, cand, cur) = (
            self.pkgs[p].protect,
            self.pkgs[p].mode,
            self.pkgs[p].cand,
            self.pkgs[p].current,
        );
        if protect && mode == Mode::Keep && cand.is_some() && cand == cur {
            // only propagating protection
        } else if !from_user
            && (depth > 3000
                || (protect && mode != Mode::Install)
                || (self.pkgs[p].held && mode != Mode::Install))
        {
            // IsModeChangeOk: protected packages and dpkg holds are not the solver's to change
            return false;
        }
        let Some(cv) = cand else { return false };
        if !protect && !self.inst_broken(p, true) {
            if cand == cur {
                if self.pkgs[p].inst.is_none() {
                    return self.mark_keep(p, from_user);
                }
                return true;
            } else if mode == Mode::Install {
                return true;
            }
        }
        if !self.install_ok(p, auto_inst) {
            return false;
        }
        if from_user {
            self.mark_install_state_change(p, reason, true, auto_inst);
        }
        let fail_early = !protect && !from_user;
        let mut failed = false;
        let mut to_install: Vec<usize> = Vec::new();
        let mut pending = Pending::default();
        if auto_inst {
            let (install, remove) = self.mark_install_collect_dependencies(cv, protect);
            to_install = install;
            if !self.mark_install_remove_conflicts_if_not_upgradeable(
                cv,
                &remove,
                protect,
                fail_early,
                &mut pending,
            ) {
                if fail_early {
                    return false;
                }
                failed = true;
            }
            if cur.is_some() {
                self.mark_install_collect_reverse_depends(p, cv, &mut pending.to_upgrade);
            }
        }
        if !from_user {
            self.mark_install_state_change(p, reason, false, auto_inst);
        }
        if !auto_inst {
            return !failed;
        }
        // the package is protected while its dependencies are marked (apt's ScopedProtected)
        let was_protected = self.pkgs[p].protect;
        self.pkgs[p].protect = true;
        let ok = self.mark_install_dependencies_and_conflicts(
            p,
            cv,
            depth,
            protect,
            from_user,
            &to_install,
            &pending,
            &mut failed,
        );
        self.pkgs[p].protect = was_protected;
        if !ok {
            self.mark_install_discard_install(p);
            return false;
        }
        !failed
    }

    /// The part of MarkInstall that runs with the package protected: UpgradeOtherBinaries,
    /// UpgradeOrRemoveConflicts, InstallDependencies and the delayed removals. False means
    /// "fail early": the caller discards the install.
    #[allow(clippy::too_many_arguments)]
    fn mark_install_dependencies_and_conflicts(
        &mut self,
        p: PkgId,
        cv: VerId,
        depth: u32,
        propagate_protected: bool,
        from_user: bool,
        to_install: &[usize],
        pending: &Pending,
        failed: &mut bool,
    ) -> bool {
        let fail_early = !propagate_protected && !from_user;
        self.mark_install_upgrade_other_binaries(p, cv, depth);
        if !self.mark_install_upgrade_or_remove_conflicts(&pending.to_upgrade, depth, fail_early) {
            *failed = true;
            if fail_early {
                return false;
            }
        }
        if !self.mark_install_install_dependencies(
            p,
            cv,
            to_install,
            depth,
            propagate_protected,
            from_user,
        ) {
            *failed = true;
            if fail_early {
                return false;
            }
        }
        if !self.mark_install_delayed_remove(&pending.delayed_remove, fail_early) {
            *failed = true;
            if fail_early {
                return false;
            }
        }
        true
    }

    /// MarkInstall_StateChange: mode Install, InstallVer = candidate (Keep when that is the
    /// installed version); the first reason sticks, except that a request always wins. The
    /// Auto flag: a user's mark makes the package manual, a new install by the solver is auto.
    fn mark_install_state_change(
        &mut self,
        p: PkgId,
        reason: Option<Reason>,
        from_user: bool,
        _auto_inst: bool,
    ) {
        let pk = &mut self.pkgs[p];
        let new_install = pk.current.is_none() && pk.cand.is_some();
        if from_user {
            // apt: Status == 2 || (installed && (AutoInst || !Marked)); Marked is false here
            pk.auto = false;
        } else if new_install {
            pk.auto = true;
        }
        pk.mode = Mode::Install;
        pk.inst = pk.cand;
        if pk.cand == pk.current {
            pk.mode = Mode::Keep;
        }
        if pk.reason.is_none() || matches!(reason, Some(Reason::Requested)) {
            if let Some(r) = reason {
                pk.reason = Some(r);
            }
        }
    }

    /// MarkInstall_CollectDependencies: the important or-groups of `cv` not yet satisfied (all
    /// of them for a protected package), as (positive, negative) group indices in stored order.
    fn mark_install_collect_dependencies(
        &mut self,
        cv: VerId,
        propagate_protected: bool,
    ) -> (Vec<usize>, Vec<usize>) {
        let deps = self.vers[cv].deps.clone();
        let (mut to_install, mut to_remove) = (Vec::new(), Vec::new());
        for (gi, g) in deps.iter().enumerate() {
            let satisfied = self.group_satisfied(cv, g, Which::Inst);
            if satisfied && !propagate_protected {
                continue;
            }
            if !self.important(g.kind) {
                continue;
            }
            if g.kind.negative() {
                to_remove.push(gi);
            } else {
                to_install.push(gi);
            }
        }
        (to_install, to_remove)
    }

    /// MarkInstall_RemoveConflictsIfNotUpgradeable: for each Conflicts/Breaks group, a
    /// conflicting new install is kept back, a conflicting installed package is upgraded away
    /// when its candidate no longer conflicts, or removed after the dependencies are in.
    fn mark_install_remove_conflicts_if_not_upgradeable(
        &mut self,
        cv: VerId,
        to_remove: &[usize],
        protect: bool,
        fail_early: bool,
        pending: &mut Pending,
    ) -> bool {
        let mut failed = false;
        let mut bad_cand: HashSet<PkgId> = HashSet::new();
        for &gi in to_remove {
            let deps = self.vers[cv].deps.clone();
            let g = &deps[gi];
            for v in self.possible_solutions(cv, g, Which::Cand) {
                let tp = self.vers[v].pkg;
                if self.pkgs[tp].cand != Some(v) {
                    continue;
                }
                if self.pkgs[tp].current != Some(v) {
                    if self.pkgs[tp].mode == Mode::Install && !self.mark_keep(tp, false) {
                        failed = true;
                        if fail_early {
                            return false;
                        }
                    } else if protect {
                        let pk = &mut self.pkgs[tp];
                        pk.cand = pk.inst;
                        if pk.current.is_none() {
                            pk.protect = true;
                        }
                    } else {
                        bad_cand.insert(tp);
                    }
                } else if !self.pkgs[tp].protect && !self.pkgs[tp].essential {
                    pending.delayed_remove.push(tp);
                } else {
                    failed = true;
                    if fail_early {
                        return false;
                    }
                }
            }
            for v in self.possible_solutions(cv, g, Which::Now) {
                let tp = self.vers[v].pkg;
                let tc = self.pkgs[tp].cand;
                if tc != Some(v) && tc.is_some() && !bad_cand.contains(&tp) {
                    let r = Reason::ConflictUpgrade {
                        parent: cv,
                        dep: DepRef { ver: cv, group: gi },
                    };
                    if !pending.to_upgrade.iter().any(|(x, _)| *x == tp) {
                        pending.to_upgrade.push((tp, r));
                    }
                } else if tc == self.pkgs[tp].current {
                } else if !self.pkgs[tp].protect && !self.pkgs[tp].essential {
                    pending.delayed_remove.push(tp);
                } else {
                    failed = true;
                    if fail_early {
                        return false;
                    }
                }
            }
        }
        !failed
    }

    /// MarkInstall_CollectReverseDepends: installed packages whose dependency on this package
    /// the new version no longer satisfies get upgraded.
    fn mark_install_collect_reverse_depends(
        &mut self,
        p: PkgId,
        cv: VerId,
        to_upgrade: &mut Vec<(PkgId, Reason)>,
    ) {
        let name = self.pkgs[p].name.clone();
        let new_version = self.vers[cv].version.clone();
        let cur_version = self.pkgs[p]
            .current
            .map(|v| self.vers[v].version.clone())
            .unwrap_or_default();
        let installed: Vec<PkgId> = (0..self.pkgs.len())
            .filter(|&q| self.pkgs[q].current.is_some() && self.pkgs[q].mode != Mode::Install)
            .collect();
        for q in installed {
            let Some(qv) = self.pkgs[q].current else {
                continue;
            };
            let deps = self.vers[qv].deps.clone();
            for (gi, g) in deps
                .iter()
                .enumerate()
                .filter(|(_, g)| !g.kind.negative() && self.important(g.kind))
            {
                for a in g.alts.iter().filter(|a| a.name == name) {
                    let sat =
                        |v: &str| a.cons.as_ref().is_none_or(|(op, want)| op.matches(v, want));
                    if sat(&cur_version)
                        && !sat(&new_version)
                        && !to_upgrade.iter().any(|(x, _)| *x == q)
                    {
                        let r = Reason::ConflictUpgrade {
                            parent: cv,
                            dep: DepRef { ver: qv, group: gi },
                        };
                        to_upgrade.push((q, r));
                    }
                }
            }
        }
    }

    /// MarkInstall_UpgradeOtherBinaries: installed binaries of the same source follow along
    /// (`APT::Get::Upgrade-By-Source-Package`).
    fn mark_install_upgrade_other_binaries(&mut self, p: PkgId, cv: VerId, depth: u32) {
        let (src, srcver) = self.vers[cv].source.clone();
        let mut others = Vec::new();
        for q in 0..self.pkgs.len() {
            if q == p {
                continue;
            }
            let (Some(cur), Some(cand)) = (self.pkgs[q].current, self.pkgs[q].cand) else {
                continue;
            };
            if cur == cand
                || (self.pkgs[q].mode == Mode::Install && self.pkgs[q].inst == Some(cand))
            {
                continue;
            }
            if self.vers[cand].source.0 == src && self.vers[cand].source.1 == srcver {
                others.push(q);
            }
        }
        others.sort_by_key(|&q| self.pkgs[q].order);
        let r = Reason::SameSource { sibling: cv };
        for &q in &others {
            self.mark_install(q, false, depth + 1, false, Some(r));
        }
        for &q in &others {
            self.mark_install(q, true, depth + 1, false, Some(r));
        }
    }

    /// MarkInstall_UpgradeOrRemoveConflicts: each collected installed package is upgraded, or
    /// removed when it cannot be.
    fn mark_install_upgrade_or_remove_conflicts(
        &mut self,
        to_upgrade: &[(PkgId, Reason)],
        depth: u32,
        fail_early: bool,
    ) -> bool {
        let mut failed = false;
        for &(tp, r) in to_upgrade {
            if self.pkgs[tp].mode != Mode::Install
                && !self.mark_install(tp, true, depth + 1, false, Some(r))
                && !self.mark_delete(tp, false)
            {
                failed = true;
                if fail_early {
                    return false;
                }
            }
        }
        !failed
    }

    /// MarkInstall_InstallDependencies: for each collected positive or-group, the first of
    /// getAllPossibleSolutions that can be marked (protection propagates to a unique solution;
    /// a Recommends an upgrade did not add is not re-installed).
    fn mark_install_install_dependencies(
        &mut self,
        p: PkgId,
        cv: VerId,
        to_install: &[usize],
        depth: u32,
        propagate_protected: bool,
        from_user: bool,
    ) -> bool {
        let mut failed = false;
        for &gi in to_install {
            let deps = self.vers[cv].deps.clone();
            let g = &deps[gi];
            let dep = DepRef { ver: cv, group: gi };
            let critical = g.kind.critical();
            let found = self.group_satisfied(cv, g, Which::Inst);
            if found && !propagate_protected {
                continue;
            }
            if found {
                if !critical {
                    continue;
                }
                // propagate protection to a unique solution
                let mut sols: Vec<VerId> = Vec::new();
                for a in &g.alts {
                    for w in [Which::Cand, Which::Now] {
                        for v in self.alt_solutions(cv, a, w, false) {
                            if !sols.contains(&v) {
                                sols.push(v);
                            }
                        }
                    }
                }
                if sols.len() != 1 {
                    continue;
                }
                let sp = self.vers[sols[0]].pkg;
                if self.pkgs[sp].protect {
                    continue;
                }
                self.pkgs[sp].protect = true;
                let r = Reason::Dependency {
                    dep,
                    choice: sols[0],
                };
                if !self.mark_install(sp, true, depth + 1, false, Some(r)) {
                    failed = true;
                }
                continue;
            }
            // "new Recommends" rule for upgrades
            if let Some(curv) = self.pkgs[p].current {
                if !critical {
                    let old = self.vers[curv].deps.clone();
                    let mut is_new = true;
                    let mut prev_sat = false;
                    let old: Vec<_> = old
                        .iter()
                        .filter(|d| !d.kind.critical() && self.important(d.kind))
                        .collect();
                    for od in old.iter() {
                        if od.alts.first().map(|a| &a.name) != g.alts.first().map(|a| &a.name) {
                            continue;
                        }
                        is_new = false;
                        prev_sat = self.group_satisfied(curv, od, Which::Now);
                        if prev_sat {
                            break;
                        }
                    }
                    if !is_new && !prev_sat {
                        continue;
                    }
                }
            }
            let sols = self.possible_solutions(cv, g, Which::Cand);
            let mut found = false;
            let n_sols = sols.len();
            for v in sols {
                let sp = self.vers[v].pkg;
                if self.pkgs[sp].cand != Some(v) {
                    continue;
                }
                let r = Reason::Dependency { dep, choice: v };
                if propagate_protected && critical && n_sols == 1 {
                    if !self.mark_install(sp, false, depth + 1, false, Some(r)) {
                        continue;
                    }
                    self.pkgs[sp].protect = true;
                }
                if !self.mark_install(sp, true, depth + 1, false, Some(r)) {
                    continue;
                }
                found = true;
                break;
            }
            if !found && critical {
                failed = true;
                if !propagate_protected && !from_user {
                    break;
                }
            }
        }
        !failed
    }

    /// The delayed removals of MarkInstall (installed packages that conflict and cannot be
    /// upgraded), done once the dependencies are in.
    fn mark_install_delayed_remove(&mut self, delayed_remove: &[PkgId], fail_early: bool) -> bool {
        let mut failed = false;
        for &tp in delayed_remove {
            if !self.mark_delete(tp, false) {
                failed = true;
                if fail_early {
                    return false;
                }
            }
        }
        !failed
    }

    /// MarkInstall_DiscardInstall: back to keep, and the candidate is dropped for the rest of
    /// the run.
    fn mark_install_discard_install(&mut self, p: PkgId) {
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Keep;
        pk.inst = pk.current;
        pk.cand = pk.inst;
    }

    /// pkgDepCache::MarkKeep.
    pub(crate) fn mark_keep(&mut self, p: PkgId, from_user: bool) -> bool {
        if !from_user && self.pkgs[p].protect && self.pkgs[p].mode != Mode::Keep {
            return false;
        }
        let pk = &mut self.pkgs[p];
        pk.mode = Mode::Keep;
        pk.inst = pk.current;
        true
    }

    /// pkgDepCache::MarkDelete (with IsModeChangeOk: no solver removal of protected, Essential
    /// or Important packages).
    pub(crate) fn mark_delete(&mut self, p: PkgId, from_user: bool) -> bool {
        let pk = &self.pkgs[p];
        if !from_user
            && pk.mode != Mode::Delete
            && (pk.protect || pk.held || pk.essential || pk.important)
        {
            return false;
        }
        // already marked for removal, or nothing to remove
        if pk.mode == Mode::Delete || pk.inst.is_none() {
            return true;
        }
        // IsDeleteOkProtectInstallRequests: the solver does not undo a requested new install
        if !from_user
            && pk.current.is_none()
            && pk.inst.is_some()
            && pk.reason == Some(Reason::Requested)
        {
            return false;
        }
        let pk = &mut self.pkgs[p];
        // a package that is not installed goes back to keep
        pk.mode = if pk.current.is_none() {
            Mode::Keep
        } else {
            Mode::Delete
        };
        pk.inst = None;
        true
    }
}

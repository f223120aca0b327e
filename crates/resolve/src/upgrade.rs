//! `apt-get upgrade` and `apt-get dist-upgrade` (apt-pkg/upgrade.cc), with the parts of
//! `pkgProblemResolver` (apt-pkg/algorithms.cc) they use: `MakeScores` and `ResolveByKeep`.
//!
//! * upgrade (`pkgAllUpgradeNoNewPackages`): every installed package is marked for its
//!   candidate without dependencies, packages already to be installed (the requests) are
//!   protected, then `ResolveByKeep` keeps back each package whose new version breaks a
//!   dependency — or newly breaks a Recommends — walking the packages by score.
//! * dist-upgrade (`pkgDistUpgrade`): every installed package is marked without, then with
//!   dependencies (new packages may come in), missing Essential packages are installed, every
//!   installed package is marked again to force the conflict resolution, holds are kept, and
//!   the problem resolver ([`crate::resolver`]) runs with BrokenFix=false.
//!
//! Order: apt walks `Cache.PkgBegin()`, the package hash table (§7 of docs/apt-semantics.md):
//! bucket `djb2(tolower(name)) % 196613`, then (name length, bytes), then architecture in
//! creation order. [`DepCache::pkg_begin_order`] sorts by that key.

use crate::depcache::{DepCache, Reason};
use crate::model::{DepKind, Mode, PkgId, Which};
use crate::resolver::Fixer;
use std::collections::HashMap;

/// Which of apt's upgrade commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// `apt-get upgrade`: no new packages, no removals; what needs them is kept back.
    Upgrade,
    /// `apt-get dist-upgrade` / `full-upgrade`: new packages and removals allowed.
    FullUpgrade,
}

/// Ubuntu's phased updates (`Phased-Update-Percentage`), as apt 2.x on the target decides
/// them (upgrade.cc `PhasedUpgrader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phased {
    /// Include every phased update (`APT::Get::Always-Include-Phased-Updates`; also what apt
    /// does in a chroot, without a machine id, or under SOURCE_DATE_EPOCH). The default: an
    /// offline bundle is built once for a fleet, and install.sh passes the same option.
    #[default]
    Include,
    /// Keep back every update still phasing (`APT::Get::Never-Include-Phased-Updates`),
    /// unless a security update lies between the installed and the new version.
    Exclude,
}

const HASH_TABLE_SIZE: u32 = 196_613;

/// pkgCache::sHash: djb2 over the lower-cased name, modulo the table size.
fn bucket(name: &str) -> u32 {
    let mut h: u32 = 5381;
    for b in name.bytes() {
        h = h
            .wrapping_mul(33)
            .wrapping_add(b.to_ascii_lowercase() as u32);
    }
    h % HASH_TABLE_SIZE
}

impl DepCache<'_> {
    /// Every package of the cache that has a current or an install version, in
    /// `Cache.PkgBegin()` order.
    pub(crate) fn pkg_begin_order(&self) -> Vec<PkgId> {
        let mut ids: Vec<PkgId> = (0..self.pkgs.len())
            .filter(|&p| self.pkgs[p].current.is_some() || self.pkgs[p].inst.is_some())
            .collect();
        ids.sort_by_cached_key(|&p| self.pkg_begin_key(p));
        ids
    }

    /// A package's place in `Cache.PkgBegin()`: hash bucket, then (name length, bytes), then
    /// architecture in creation order.
    fn pkg_begin_key(&self, p: PkgId) -> (u32, usize, String, u64) {
        let k = &self.pkgs[p];
        (bucket(&k.name), k.name.len(), k.name.clone(), k.order)
    }

    /// Installed packages, in PkgBegin order.
    fn installed_in_order(&self) -> Vec<PkgId> {
        let mut v = self.pkg_begin_order();
        v.retain(|&p| self.pkgs[p].current.is_some());
        v
    }

    /// A dependency of the current version is not satisfied by what is installed now (apt's
    /// NowPolicyBroken when `policy`, else NowBroken).
    fn broken_as(&mut self, p: PkgId, w: Which, policy: bool) -> bool {
        let Some(v) = self.ver_of(p, w) else {
            return false;
        };
        let deps = self.vers[v].deps.clone();
        deps.iter().any(|g| {
            let relevant = if policy {
                !g.kind.critical() && self.important(g.kind)
            } else {
                g.kind.critical()
            };
            relevant && !self.group_satisfied(v, g, w)
        })
    }

    /// pkgProblemResolver::InstOrNewPolicyBroken.
    fn inst_or_new_policy_broken(&mut self, p: PkgId) -> bool {
        if self.broken_as(p, Which::Inst, false) {
            return true;
        }
        !self.broken_as(p, Which::Now, true) && self.broken_as(p, Which::Inst, true)
    }

    /// pkgProblemResolver::MakeScores, over the packages this cache holds.
    pub(crate) fn make_scores(&mut self, fix_protected: &[bool]) -> HashMap<PkgId, i64> {
        let order = self.pkg_begin_order();
        let mut scores: HashMap<PkgId, i64> = HashMap::new();
        let prio_map = |prio: u8| -> i64 {
            match prio {
                1 => 3,
                2 => 2,
                3 => 1,
                4 => -1,
                _ => -2,
            }
        };
        let weight = |k: DepKind| -> i64 {
            match k {
                DepKind::Depends | DepKind::PreDepends | DepKind::Recommends => 1,
                DepKind::Conflicts | DepKind::Breaks => -1,
                _ => 0,
            }
        };
        for &i in &order {
            let Some(iv) = self.pkgs[i].inst else {
                continue;
            };
            let mut s = 0;
            if self.pkgs[i].essential || self.pkgs[i].important {
                s += 100;
            }
            let prio = self.vers[iv].prio;
            // priority 0 (no field) maps to 0; only downloadable versions get theirs
            if self.vers[iv].pref.is_some() {
                s += if prio == 0 { 0 } else { prio_map(prio) };
            } else {
                s += prio_map(5);
            }
            if let (Some(_), Some(c)) = (self.pkgs[i].current, self.pkgs[i].cand) {
                if self.vers[c].pref.is_some() {
                    s += 1;
                }
            }
            *scores.entry(i).or_default() += s;
            let deps = self.vers[iv].deps.clone();
            let arch = self.parent_arch(iv);
            for g in deps.iter() {
                let w = weight(g.kind);
                if w == 0 {
                    continue;
                }
                let neg = g.kind.negative();
                for a in &g.alts {
                    let sols = self.alt_solutions(iv, a, Which::Inst, neg);
                    let targets = self.direct_targets(a, &arch, neg);
                    for &(t, _) in &targets {
                        if neg && self.pkgs[t].name == self.pkgs[i].name {
                            continue;
                        }
                        let counts = match &a.cons {
                            None => true,
                            Some(_) => self.pkgs[t].inst.is_some_and(|tv| sols.contains(&tv)),
                        };
                        if counts {
                            *scores.entry(t).or_default() += w;
                        }
                    }
                    let mut provs: Vec<PkgId> = sols
                        .iter()
                        .map(|&v| self.vers[v].pkg)
                        .filter(|p| !targets.iter().any(|(t, _)| t == p))
                        .collect();
                    provs.sort_unstable();
                    provs.dedup();
                    for p in provs {
                        *scores.entry(p).or_default() += w;
                    }
                }
            }
        }
        let old = scores.clone();
        // one level of inheritance from the packages that depend on each package
        for &parent in &order {
            let Some(pv) = self.pkgs[parent].inst else {
                continue;
            };
            let ps = old.get(&parent).copied().unwrap_or(0);
            if ps <= 0 {
                continue;
            }
            let deps = self.vers[pv].deps.clone();
            let arch = self.parent_arch(pv);
            for g in deps.iter().filter(|g| {
                matches!(
                    g.kind,
                    DepKind::Depends | DepKind::PreDepends | DepKind::Recommends
                )
            }) {
                for a in &g.alts {
                    for (t, _) in self.direct_targets(a, &arch, false) {
                        if self.pkgs[t].inst.is_some() {
                            *scores.entry(t).or_default() += ps;
                        }
                    }
                }
            }
        }
        // along Provides
        for &i in &order {
            let transfer =
                (scores.get(&i).copied().unwrap_or(0) - old.get(&i).copied().unwrap_or(0)).abs();
            if transfer == 0 {
                continue;
            }
            let name = self.pkgs[i].name.clone();
            let mut provs: Vec<PkgId> = Vec::new();
            for (on, oa, ov, _) in self.providers(&name).iter() {
                let p = self.pkg(on, oa);
                if self.pkgs[p]
                    .inst
                    .is_some_and(|v| self.vers[v].version == *ov)
                {
                    provs.push(p);
                }
            }
            provs.sort_unstable();
            provs.dedup();
            for p in provs {
                *scores.entry(p).or_default() += transfer;
            }
        }
        for &i in &order {
            if fix_protected.get(i).copied().unwrap_or(false) {
                *scores.entry(i).or_default() += 10_000;
            }
            if self.pkgs[i].essential || self.pkgs[i].important {
                *scores.entry(i).or_default() += 5_000;
            }
        }
        scores
    }

    /// pkgProblemResolver::ResolveByKeepInternal: keeps back what breaks, highest score first.
    fn resolve_by_keep(&mut self, fix_protected: &[bool]) -> Result<(), String> {
        let scores = self.make_scores(fix_protected);
        let mut plist = self.pkg_begin_order();
        // apt sorts with std::sort (not stable); ties keep PkgBegin order here
        plist.sort_by_key(|p| std::cmp::Reverse(scores.get(p).copied().unwrap_or(0)));
        let mut last_stop: Option<usize> = None;
        let mut k = 0;
        while k < plist.len() {
            let i = plist[k];
            k += 1;
            if self.pkgs[i].inst.is_none() || !self.inst_or_new_policy_broken(i) {
                continue;
            }
            if !self.pkgs[i].protect {
                self.mark_keep(i, false);
                if !self.inst_or_new_policy_broken(i) {
                    k = 0;
                    continue;
                }
            }
            if let Some(iv) = self.pkgs[i].inst {
                let deps = self.vers[iv].deps.clone();
                let arch = self.parent_arch(iv);
                'groups: for g in deps.iter().filter(|g| g.kind.critical()) {
                    if self.group_satisfied(iv, g, Which::Inst) {
                        continue;
                    }
                    for a in &g.alts {
                        // Start.AllTargets(): every version of the target and of its providers
                        let mut pk: Vec<PkgId> = self
                            .direct_targets(a, &arch, g.kind.negative())
                            .into_iter()
                            .map(|(t, _)| t)
                            .collect();
                        for (on, oa, _, _) in self.providers(a.name).iter() {
                            pk.push(self.pkg(on, oa));
                        }
                        for p in pk {
                            if self.pkgs[p].inst.is_none() || self.pkgs[p].current.is_none() {
                                continue;
                            }
                            if !self.pkgs[p].protect {
                                self.mark_keep(p, false);
                            }
                            if !self.inst_or_new_policy_broken(i) {
                                break;
                            }
                        }
                        if !self.inst_or_new_policy_broken(i) {
                            break 'groups;
                        }
                    }
                }
            }
            if self.inst_or_new_policy_broken(i) {
                continue;
            }
            if last_stop == Some(k) {
                return Err(format!(
                    "apt's ResolveByKeep would loop on package {}",
                    self.pkgs[i].name
                ));
            }
            last_stop = Some(k);
            k = 0;
        }
        Ok(())
    }

    /// upgrade.cc's PhasedUpgrader::ShouldKeep (on the version to be installed) for
    /// `Phased::Exclude`.
    fn phased_keep(&self, p: PkgId, phased: Phased) -> bool {
        if phased == Phased::Include {
            return false;
        }
        let pk = &self.pkgs[p];
        let (Some(cur), Some(iv)) = (pk.current, pk.inst) else {
            return false;
        };
        let pct = self.vers[iv]
            .pref
            .and_then(|r| {
                self.u
                    .paragraph(r)
                    .get("Phased-Update-Percentage")
                    .and_then(|v| v.trim().parse::<u32>().ok())
            })
            .unwrap_or(100);
        if pct >= 100 {
            return false;
        }
        // IsSecurityUpdate: a version below the new one (down to the installed one, or every
        // lower one when the new one is the installed one) comes from a -security suite
        let new = self.vers[iv].version.clone();
        let old = self.vers[cur].version.clone();
        let security = self
            .u
            .versions(&pk.name, &pk.arch)
            .iter()
            .filter(|c| {
                opaas_deb::compare_versions(c.version, &new).is_lt()
                    && (cur == iv || opaas_deb::compare_versions(c.version, &old).is_gt())
            })
            .any(|c| {
                c.refs
                    .iter()
                    .any(|r| self.u.source(*r).suite.ends_with("-security"))
            });
        !security
    }

    /// HoldBackIgnoredPhasedUpdates: keep and protect each held-back phased update (and tell
    /// the problem resolver, when there is one yet).
    fn hold_back_phased(&mut self, phased: Phased, mut fx: Option<&mut Fixer>) {
        for p in self.installed_in_order() {
            if self.phased_keep(p, phased) {
                self.mark_keep(p, false);
                self.pkgs[p].protect = true;
                if let Some(fx) = fx.as_deref_mut() {
                    fx.protect(self, p);
                }
            }
        }
    }

    /// apt-get upgrade / dist-upgrade after the requests (if any) were marked.
    pub(crate) fn upgrade(&mut self, mode: UpgradeMode, phased: Phased) -> Result<(), String> {
        let installed = self.installed_in_order();
        let mut fx = Fixer::new(self.pkgs.len());
        match mode {
            UpgradeMode::Upgrade => {
                // pkgAllUpgradeNoNewPackages: what is marked already (the requests and their
                // dependencies) is protected; each installed package is marked for its candidate
                for p in 0..self.pkgs.len() {
                    if self.pkgs[p].mode == Mode::Install {
                        fx.protect(self, p);
                    }
                }
                for &p in &installed {
                    if self.pkgs[p].held || self.phased_keep(p, phased) {
                        continue;
                    }
                    self.mark_install(p, false, 0, false, Some(Reason::Upgrade));
                }
                self.hold_back_phased(phased, Some(&mut fx));
                self.resolve_by_keep(&fx.protected_list())
            }
            UpgradeMode::FullUpgrade => {
                self.hold_back_phased(phased, None);
                for auto_inst in [false, true] {
                    for &p in &installed {
                        self.mark_install(p, auto_inst, 0, false, Some(Reason::Upgrade));
                    }
                }
                self.install_missing_essentials();
                for &p in &installed {
                    self.mark_install(p, false, 0, false, Some(Reason::Upgrade));
                }
                for &p in &installed {
                    if self.pkgs[p].held {
                        fx.protect(self, p);
                        self.mark_keep(p, false);
                    }
                }
                self.hold_back_phased(phased, Some(&mut fx));
                self.resolve_internal(&mut fx, false);
                Ok(())
            }
        }
    }

    /// pkgDistUpgrade: each Essential package not installed and not to be installed.
    fn install_missing_essentials(&mut self) {
        let mut names: Vec<String> = Vec::new();
        for r in self.u.marked(opaas_repo::index::MARK_ESSENTIAL) {
            let name = self.u.name(r);
            if self.u.arch(r) != self.native || self.pkg_id(name, &self.native).is_some() {
                continue;
            }
            names.push(name.to_string());
        }
        names.sort();
        names.dedup();
        let native = self.native.clone();
        let mut ps: Vec<PkgId> = names.iter().map(|n| self.pkg(n, &native)).collect();
        // in group (hash) order
        ps.sort_by_cached_key(|&p| self.pkg_begin_key(p));
        for p in ps {
            if !self.pkgs[p].essential || self.pkgs[p].mode == Mode::Install {
                continue;
            }
            if self.pkgs[p].current.is_some() {
                continue;
            }
            self.mark_install(p, true, 0, false, Some(Reason::Upgrade));
        }
    }

    /// Installed packages with a newer candidate that stay at their version.
    pub(crate) fn kept_back(&self) -> Vec<PkgId> {
        let mut v: Vec<PkgId> = (0..self.pkgs.len())
            .filter(|&p| {
                let k = &self.pkgs[p];
                k.current.is_some()
                    && k.cand.is_some()
                    && k.cand != k.current
                    && k.mode == Mode::Keep
            })
            .collect();
        v.sort_by(|&a, &b| self.pkgs[a].name.cmp(&self.pkgs[b].name));
        v
    }
}

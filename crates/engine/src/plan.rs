//! Upgrade plans of collected systems (issue 10): what `apt-get upgrade` / `dist-upgrade` does
//! to each host, as every front end shows it (security updates first), and fleet bundles — one
//! bundle for several collected hosts of the same distro and architecture.

use crate::collect::Collected;
use crate::error::{EngineError, Kind};
use crate::pipeline::{
    assemble, finish, resolve_with, BuildProgress, Built, IndexProgress, Phase, Request, Resolved,
    Reuse,
};
use crate::session::Settings;
use opaas_bundle::{Format, HostPlan};
use serde::Serialize;
use std::path::Path;

/// One package of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    /// `security` (an upgrade from a security pocket), `upgrade` (any other upgrade) or `new`
    /// (newly pulled in: full upgrades and requests only).
    pub kind: &'static str,
    pub name: String,
    pub arch: String,
    /// The installed version (absent for `new`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    /// `suite/component` the new version comes from.
    pub pocket: String,
}

/// An upgrade apt holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanKept {
    pub name: String,
    pub installed: String,
    pub candidate: String,
    /// Why: `hold` (held on the host), `new-or-removal` (apt-get upgrade: the new version needs
    /// new packages or removals), `conflict` (dist-upgrade cannot fit it in).
    pub code: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// Counts of a plan, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct PlanCounts {
    pub security: usize,
    pub upgrade: usize,
    pub new: usize,
    pub kept_back: usize,
    pub remove: usize,
}

/// The plan of one collected host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradePlan {
    pub host: String,
    /// When the collect script ran (as it recorded it).
    pub collected: String,
    pub distro: String,
    pub arch: String,
    /// `upgrade` or `full-upgrade`.
    pub mode: &'static str,
    pub security_only: bool,
    /// Packages installed on the host.
    pub installed: usize,
    /// Security updates first, then other upgrades, then new packages; by name within each.
    pub plan: Vec<PlanItem>,
    pub kept_back: Vec<PlanKept>,
    /// Installed packages the plan removes (full upgrades only).
    pub remove: Vec<String>,
    /// Installed packages the archive has no version of (local or obsolete; left as they are).
    pub not_in_archive: Vec<String>,
    pub counts: PlanCounts,
}

/// The plan of `c` from its resolution `r` (of `req`).
pub fn upgrade_plan(c: &Collected, r: &Resolved, req: &Request) -> UpgradePlan {
    let security_only = req.security_only;
    let u = &r.universe;
    let mut items: Vec<(u8, PlanItem)> = Vec::new();
    for ch in &r.result.install {
        let info = crate::pipeline::package_info(u, ch);
        let security = info
            .pocket
            .split('/')
            .next()
            .unwrap_or("")
            .ends_with("-security");
        let (rank, kind) = match (&ch.upgrade_from, security) {
            (Some(_), true) => (0, "security"),
            (Some(_), false) => (1, "upgrade"),
            (None, _) => (2, "new"),
        };
        items.push((
            rank,
            PlanItem {
                kind,
                name: ch.name.clone(),
                arch: info.arch.clone(),
                from: ch.upgrade_from.clone(),
                to: ch.version.clone(),
                pocket: info.pocket,
            },
        ));
    }
    items.sort_by(|a, b| (a.0, &a.1.name, &a.1.arch).cmp(&(b.0, &b.1.name, &b.1.arch)));
    let kept_back: Vec<PlanKept> = r
        .result
        .kept_back
        .iter()
        .map(|k| PlanKept {
            name: k.name.clone(),
            installed: k.installed.clone(),
            candidate: k.candidate.clone(),
            code: kept_code(c, req, &k.name),
            reason: match kept_code(c, req, &k.name) {
                "hold" => "held on the server (apt-mark hold)",
                "conflict" => "apt's dist-upgrade keeps it: its new version cannot be installed with the rest of the plan",
                _ => "the new version needs new packages or removals (apt-get upgrade keeps it back; a full upgrade allows them)",
            }
            .into(),
        })
        .collect();
    let not_in_archive = if security_only {
        // the universe holds only the security pockets: most packages are not in it
        Vec::new()
    } else {
        missing_from_archive(c, r)
    };
    let n = |k: u8| items.iter().filter(|(r, _)| *r == k).count();
    let counts = PlanCounts {
        security: n(0),
        upgrade: n(1),
        new: n(2),
        kept_back: kept_back.len(),
        remove: r.result.remove.len(),
    };
    UpgradePlan {
        host: c.hostname.clone(),
        collected: c.collected.clone(),
        distro: c.distro.clone(),
        arch: c.arch.clone(),
        mode: match req.upgrade {
            Some(opaas_resolve::UpgradeMode::FullUpgrade) => "full-upgrade",
            _ => "upgrade",
        },
        security_only,
        installed: r.assumed.len(),
        plan: items.into_iter().map(|(_, i)| i).collect(),
        kept_back,
        remove: r.result.remove.clone(),
        not_in_archive,
        counts,
    }
}

/// Why apt keeps `name` back (see [`PlanKept::code`]).
fn kept_code(c: &Collected, req: &Request, name: &str) -> &'static str {
    if c.holds.iter().any(|h| h == name) {
        "hold"
    } else if req.upgrade == Some(opaas_resolve::UpgradeMode::FullUpgrade) {
        "conflict"
    } else {
        "new-or-removal"
    }
}

/// Installed packages (`name:arch`) of which the archive has no version at all.
fn missing_from_archive(c: &Collected, r: &Resolved) -> Vec<String> {
    let base = opaas_resolve::Baseline::from_status(&c.status, &c.arch);
    base.packages
        .values()
        .filter(|i| r.universe.versions(&i.name, &i.arch).is_empty())
        .map(|i| format!("{}:{}", i.name, i.arch))
        .collect()
}

/// The engine request of a collected host: `apt-get upgrade` (or `dist-upgrade`) of its status.
pub fn collected_request(c: &Collected, base: &Request) -> Request {
    let mut req = base.clone();
    req.distro = c.distro.clone();
    req.arch = c.arch.clone();
    req.baseline = crate::pipeline::Baseline::Host {
        status: c.status.clone(),
        extended_states: c.extended_states.clone(),
    };
    req.host = Some(c.hostname.clone());
    req
}

/// Checks a fleet before anything is resolved: one distro and architecture for every file, no
/// host twice. `names` labels each file in messages (its path or upload name).
pub fn check_fleet(hosts: &[(String, Collected)]) -> Result<(), EngineError> {
    let Some((first_name, first)) = hosts.first() else {
        return Err(EngineError::new(Kind::BadInput, "no collected file given").field("from"));
    };
    for (name, c) in &hosts[1..] {
        if c.distro != first.distro || c.arch != first.arch {
            return Err(EngineError::new(
                Kind::BadInput,
                format!(
                    "{name}: {} is {} {}, but {first_name} ({}) is {} {}: a fleet bundle is for one distro and architecture; build one bundle per distro and architecture",
                    c.hostname, c.distro, c.arch, first.hostname, first.distro, first.arch
                ),
            )
            .field("from"));
        }
    }
    for (i, (name, c)) in hosts.iter().enumerate() {
        if let Some((other, _)) = hosts[..i].iter().find(|(_, o)| o.hostname == c.hostname) {
            return Err(EngineError::new(
                Kind::BadInput,
                format!(
                    "{name} and {other} were both collected on host '{}': give each host once (install.sh picks a plan by host name)",
                    c.hostname
                ),
            )
            .field("from"));
        }
    }
    Ok(())
}

/// A plan that cannot be: none of the host's installed packages is in the archive (another
/// distribution's status, or a mirror that lost the release).
pub fn check_plan(name: &str, p: &UpgradePlan) -> Result<(), EngineError> {
    if !p.security_only && p.installed > 0 && p.not_in_archive.len() == p.installed {
        return Err(EngineError::new(
            Kind::BadInput,
            format!(
                "{name}: none of the {} packages installed on {} exists in the {} {} archive (e.g. {}): this file does not describe a {} system, or the mirror no longer has it",
                p.installed,
                p.host,
                p.distro,
                p.arch,
                p.not_in_archive.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                p.distro
            ),
        )
        .field("from"));
    }
    Ok(())
}

/// Resolves the upgrade of every host of a fleet: (resolution, plan) per host, in order.
pub fn plan_fleet(
    settings: &Settings,
    base: &Request,
    hosts: &[(String, Collected)],
    progress: &dyn BuildProgress,
) -> Result<Vec<(Resolved, UpgradePlan)>, EngineError> {
    check_fleet(hosts)?;
    let mut out = Vec::with_capacity(hosts.len());
    for (name, c) in hosts {
        let req = collected_request(c, base);
        let r = resolve_with(settings, &req, &IndexProgress(progress)).map_err(|mut e| {
            e.message = format!("{name} ({}): {}", c.hostname, e.message);
            e
        })?;
        let plan = upgrade_plan(c, &r, &req);
        check_plan(name, &plan)?;
        out.push((r, plan));
    }
    Ok(out)
}

/// Builds one bundle for a fleet of collected hosts (at least two): the union of their plans'
/// .debs, and an install.sh that picks the plan of the host it runs on. Always unsigned (a
/// flat repository with an index per plan).
pub fn build_fleet(
    settings: &Settings,
    base: &Request,
    hosts: &[(String, Collected)],
    out_dir: &Path,
    format: Format,
    progress: &dyn BuildProgress,
    reuse: &dyn Reuse,
) -> Result<(Built, Vec<UpgradePlan>), EngineError> {
    progress.phase(Phase::Resolving);
    let planned = plan_fleet(settings, base, hosts, progress)?;
    let mut settings = settings.clone();
    settings.unsigned = true;
    let mut merged: Option<(opaas_bundle::BundleInput, Vec<opaas_fetch::Item>)> = None;
    let mut host_plans = Vec::new();
    let mut plans = Vec::new();
    for ((r, plan), (_, c)) in planned.iter().zip(hosts) {
        let req = collected_request(c, base);
        let (input, items) = assemble(&settings, &req, r, progress)?;
        let host_log = input.build_log.clone();
        let mut assumed = r.assumed.clone();
        assumed.sort();
        host_plans.push(HostPlan {
            host: c.hostname.clone(),
            digest: HostPlan::digest_of(&assumed),
            assumed,
            files: input.packages.iter().map(|p| p.filename.clone()).collect(),
            remove: input.remove.clone(),
        });
        plans.push(plan.clone());
        match &mut merged {
            None => merged = Some((input, items)),
            Some((all, all_items)) => {
                for (p, it) in input.packages.into_iter().zip(items) {
                    match all.packages.iter().find(|q| q.filename == p.filename) {
                        Some(q) if q.sha256 == p.sha256 => {}
                        Some(q) => {
                            return Err(EngineError::new(
                                Kind::Trust,
                                format!(
                                    "{} has two different contents in the plans ({} and {})",
                                    p.filename, q.sha256, p.sha256
                                ),
                            ))
                        }
                        None => {
                            all.packages.push(p);
                            all_items.push(it);
                        }
                    }
                }
                all.build_log
                    .push_str(&format!("\n---- plan of {}\n{host_log}", c.hostname));
            }
        }
    }
    let Some((mut input, items)) = merged else {
        return Err(EngineError::new(Kind::BadInput, "no collected file given").field("from"));
    };
    input.host = host_plans
        .iter()
        .map(|h| h.host.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    input.assumed = Vec::new();
    input.remove = Vec::new();
    input.hosts = host_plans;
    let mut log = format!(
        "fleet upgrade bundle for {} hosts: {}\n",
        input.hosts.len(),
        input.host
    );
    for p in &plans {
        log.push_str(&format!(
            "  {}: {} security, {} other upgrades, {} new, {} kept back, {} removed\n",
            p.host,
            p.counts.security,
            p.counts.upgrade,
            p.counts.new,
            p.counts.kept_back,
            p.counts.remove
        ));
    }
    log.push('\n');
    log.push_str(&input.build_log);
    input.build_log = log;
    let session = &planned[0].0.session;
    let built = finish(
        &settings, session, input, &items, out_dir, format, progress, reuse,
    )?;
    Ok((built, plans))
}

//! install.sh and README.txt from their templates. Only plain `{{ var }}` substitutions are
//! used; list values are rendered as single-quoted bash words (package names are validated by
//! the resolver: `[a-z0-9][a-z0-9+.-]+`, so no quoting surprise is possible, but we quote anyway).

use crate::write::keyring_paths;
use crate::{BundleError, BundleInput, KeyringSource};
use minijinja::{context, Environment};

const INSTALL_SH: &str = include_str!("../templates/install.sh.j2");
const README: &str = include_str!("../templates/README.txt.j2");

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn words(v: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    v.into_iter()
        .map(|s| sh_quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn render(
    name: &'static str,
    tpl: &str,
    input: &BundleInput,
    id: &str,
) -> Result<String, BundleError> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    let err = |e: minijinja::Error| BundleError::Template {
        name,
        message: e.to_string(),
    };
    env.add_template(name, tpl).map_err(err)?;
    let t = env.get_template(name).map_err(err)?;
    let download: u64 = input.packages.iter().map(|p| p.size).sum();
    let suites = input.archive.as_ref().map_or(&[][..], |a| &a.suites[..]);
    let (keyrings, keyring_package) = match input.archive.as_ref().map(|a| &a.keyring) {
        None => (Vec::new(), String::new()),
        Some(k @ KeyringSource::Target { package, .. }) => (keyring_paths(k), package.clone()),
        Some(k) => (keyring_paths(k), String::new()),
    };
    let installed: u64 = input.packages.iter().map(|p| p.installed_size_kb).sum();
    let pkgver = |p: &crate::BundlePackage| {
        let arch = if p.arch == "all" {
            &input.arch
        } else {
            &p.arch
        };
        format!("{}:{arch}={}", p.name, p.version)
    };
    // a fleet: one case per host, setting that host's plan (every value single-quoted)
    let mut plan_cases = String::new();
    for (i, h) in input.hosts.iter().enumerate() {
        let mine: Vec<&crate::BundlePackage> = input
            .packages
            .iter()
            .filter(|p| h.files.contains(&p.filename))
            .collect();
        plan_cases.push_str(&format!(
            "    {i}) PLAN_HOST={}; PLAN_DIR='plans/{}'\n       ASSUMED=({})\n       PKGVERS=({})\n       PACKAGES=({})\n       REMOVALS=({}) ;;\n",
            sh_quote(&h.host),
            i + 1,
            words(&h.assumed),
            words(mine.iter().map(|p| pkgver(p))),
            words(mine.iter().map(|p| p.name.as_str())),
            words(&h.remove),
        ));
    }
    t.render(context! {
        bundle_id => id,
        distro_id => input.distro.id,
        os_id => input.distro.os_id,
        codename => input.distro.codename,
        arch => input.arch,
        requested => words(&input.request),
        requested_plain => input.request.join(" "),
        packages => words(input.packages.iter().map(|p| p.name.as_str())),
        removals => words(&input.remove),
        mode => if input.mode.is_empty() { "install" } else { input.mode.as_str() },
        assumed => words(&input.assumed),
        pkgvers => words(input.packages.iter().map(pkgver)),
        host => sh_quote(&input.host),
        fleet => if input.hosts.is_empty() { "0" } else { "1" },
        fleet_hosts => words(input.hosts.iter().map(|h| h.host.as_str())),
        fleet_digests => words(input.hosts.iter().map(|h| h.digest.as_str())),
        plan_cases => plan_cases,
        phased_opt => if input.phased == "exclude" {
            "APT::Get::Never-Include-Phased-Updates=true"
        } else {
            "APT::Get::Always-Include-Phased-Updates=true"
        },
        recommends => if input.recommends { "true" } else { "false" },
        installed_size_kb => installed,
        download_size => download,
        package_count => input.packages.len(),
        tool_version => input.tool_version,
        created => input.created,
        signed => if input.archive.is_some() { "1" } else { "0" },
        suites => words(suites.iter().map(|s| s.suite.as_str())),
        suite_components => words(suites.iter().map(|s| s.components.join(" "))),
        suite_signers => words(suites.iter().map(|s| s.signed_by.as_str())),
        suite_valid_until => words(suites.iter().map(|s| s.valid_until.as_deref().unwrap_or(""))),
        suite_arches => words(suites.iter().map(|s| s.arches.join(","))),
        keyrings => words(&keyrings),
        keyrings_plain => keyrings.join(", "),
        keyring_package => keyring_package,
    })
    .map_err(err)
}

pub fn render_install_sh(input: &BundleInput, id: &str) -> Result<String, BundleError> {
    render("install.sh", INSTALL_SH, input, id)
}

pub fn render_readme(input: &BundleInput, id: &str) -> Result<String, BundleError> {
    render("README.txt", README, input, id)
}

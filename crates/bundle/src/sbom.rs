//! `sbom.cdx.json`: the bundle's software bill of materials, CycloneDX 1.6 JSON. One component
//! per .deb (purl `pkg:deb/<os>/<name>@<version>?arch=<arch>&distro=<distro id>`, SHA-256, source
//! package and version as properties) and the dependency edges of the resolution: for each
//! package, the bundled package that satisfies each of its Pre-Depends/Depends (and Recommends
//! when they were installed) groups; a group the target already satisfies (baseline) has no
//! edge. Deterministic: the same bundle gives the same bytes (no clock, no random serial).

use crate::{BundleError, BundleInput, BundlePackage};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Percent-encodes a purl segment (everything but `A-Z a-z 0-9 . - _ ~`).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package URL of a bundled package.
pub fn purl(os_id: &str, distro_id: &str, p: &BundlePackage) -> String {
    format!(
        "pkg:deb/{}/{}@{}?arch={}&distro={}",
        pct(os_id),
        pct(&p.name),
        pct(&p.version),
        pct(&p.arch),
        pct(distro_id)
    )
}

/// `Source: name (version)` of a stanza, defaulting to the binary's own name and version.
fn source_of(p: &BundlePackage) -> (String, String) {
    let para = opaas_deb::Paragraph::new(&p.stanza);
    match para.get("Source") {
        Some(s) => {
            let mut it = s.split_whitespace();
            let name = it.next().unwrap_or(&p.name).to_string();
            let ver = it
                .next()
                .map(|v| v.trim_start_matches('(').trim_end_matches(')').to_string())
                .unwrap_or_else(|| p.version.clone());
            (name, ver)
        }
        None => (p.name.clone(), p.version.clone()),
    }
}

/// For each package, the indices of the bundled packages its relation groups are satisfied by.
fn edges(pkgs: &[BundlePackage], arch: &str, recommends: bool) -> Vec<Vec<usize>> {
    let provides: Vec<Vec<String>> = pkgs
        .iter()
        .map(|p| {
            let para = opaas_deb::Paragraph::new(&p.stanza);
            opaas_deb::parse_relations(para.get("Provides").unwrap_or(""))
                .map(|r| r.iter().flatten().map(|x| x.name.to_string()).collect())
                .unwrap_or_default()
        })
        .collect();
    let satisfies = |i: usize, rel: &opaas_deb::Relation| {
        let q = &pkgs[i];
        (q.name == rel.name && rel.version_matches(&q.version))
            || (rel.constraint.is_none() && provides[i].iter().any(|n| n == rel.name))
    };
    let mut fields = vec!["Pre-Depends", "Depends"];
    if recommends {
        fields.push("Recommends");
    }
    pkgs.iter()
        .enumerate()
        .map(|(me, p)| {
            let para = opaas_deb::Paragraph::new(&p.stanza);
            let mut out = Vec::new();
            for f in &fields {
                let Ok(groups) = opaas_deb::parse_relations(para.get(f).unwrap_or("")) else {
                    continue;
                };
                for g in groups {
                    let hit = g
                        .iter()
                        .filter(|r| r.applies_to(arch))
                        .find_map(|r| (0..pkgs.len()).find(|&i| i != me && satisfies(i, r)));
                    if let Some(i) = hit {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                }
            }
            out.sort_unstable();
            out
        })
        .collect()
}

/// A UUID (RFC 9562 version 8: custom) from a digest, for a reproducible `serialNumber`.
fn uuid_from(digest: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The SBOM of a bundle (`pkgs` in the bundle's order), as pretty JSON bytes.
pub fn sbom_json(
    input: &BundleInput,
    id: &str,
    pkgs: &[BundlePackage],
    lock_digest: Option<&str>,
) -> Result<Vec<u8>, BundleError> {
    let os = &input.distro.os_id;
    let distro = &input.distro.id;
    let purls: Vec<String> = pkgs.iter().map(|p| purl(os, distro, p)).collect();
    let mut h = Sha256::new();
    h.update(format!("opaas sbom {id}\n").as_bytes());
    for (p, u) in pkgs.iter().zip(&purls) {
        h.update(format!("{u} {}\n", p.sha256).as_bytes());
    }
    let serial = uuid_from(&h.finalize());
    let components: Vec<Value> = pkgs
        .iter()
        .zip(&purls)
        .map(|(p, u)| {
            let (src, src_ver) = source_of(p);
            let mut props = vec![
                json!({"name": "opaas:source-package", "value": src}),
                json!({"name": "opaas:source-version", "value": src_ver}),
                json!({"name": "opaas:pocket", "value": p.pocket}),
                json!({"name": "opaas:filename", "value": if p.pool_path.is_empty() { &p.filename } else { &p.pool_path }}),
                json!({"name": "opaas:why", "value": p.why}),
            ];
            if let Some(from) = &p.upgrade_from {
                props.push(json!({"name": "opaas:upgrade-from", "value": from}));
            }
            json!({
                "type": "library",
                "bom-ref": u,
                "name": p.name,
                "version": p.version,
                "purl": u,
                "hashes": [{"alg": "SHA-256", "content": p.sha256}],
                "properties": props,
            })
        })
        .collect();
    let deps = edges(pkgs, &input.arch, input.recommends);
    let top_ref = format!("offline_pkg_{}_{}_{id}", distro, input.arch);
    let requested: Vec<&str> = input
        .request
        .iter()
        .map(|r| r.split([':', '=', '/']).next().unwrap_or(r))
        .collect();
    let mut dependencies = vec![json!({
        "ref": top_ref,
        "dependsOn": pkgs
            .iter()
            .zip(&purls)
            .filter(|(p, _)| requested.contains(&p.name.as_str()))
            .map(|(_, u)| u.clone())
            .collect::<Vec<_>>(),
    })];
    for (i, u) in purls.iter().enumerate() {
        dependencies.push(json!({
            "ref": u,
            "dependsOn": deps[i].iter().map(|&j| purls[j].clone()).collect::<Vec<_>>(),
        }));
    }
    let mut meta_props = vec![
        json!({"name": "opaas:distro", "value": distro}),
        json!({"name": "opaas:arch", "value": input.arch}),
        json!({"name": "opaas:request", "value": input.request.join(" ")}),
        json!({"name": "opaas:recommends", "value": input.recommends.to_string()}),
        json!({"name": "opaas:baseline", "value": input.baseline}),
        json!({"name": "opaas:signed", "value": input.archive.is_some().to_string()}),
    ];
    if let Some(d) = lock_digest {
        meta_props.push(json!({"name": "opaas:lock-sha256", "value": d}));
    }
    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": input.created,
            "tools": {"components": [{"type": "application", "name": "opaas", "version": input.tool_version}]},
            "component": {
                "type": "application",
                "bom-ref": top_ref,
                "name": top_ref,
                "version": id,
                "description": format!("OPaaS offline bundle for {distro} {}: {}", input.arch, input.request.join(" ")),
            },
            "properties": meta_props,
        },
        "components": components,
        "dependencies": dependencies,
    });
    serde_json::to_vec_pretty(&doc).map_err(|e| BundleError::Invalid(e.to_string()))
}

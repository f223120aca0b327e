//! Package search: one or more words, ranked like a person would rank them.
//!
//! Every word must match somewhere (the name, a `Provides` name, the description). Order:
//! 1. the name is the query (words joined with `-`), 2. the name starts with it, 3. the name
//!    holds every word, 4. every word is in the name or a provided name (`httpd` finds nginx),
//! 5. every word is in the name, provides or the summary line, 6. some word only in the long
//!    description. Within a tier, packages where more words are whole words (of the name split on
//!    `-`, provides or the summary: "web" in "web/proxy server", not in "WebDAV") come first;
//!    then the package's `Priority` (required first), then shorter names, then by name.

use opaas_repo::universe::Universe;

/// A search hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub name: String,
    pub version: String,
    pub summary: String,
}

/// The best `limit` hits and how many matched in all.
#[derive(Debug, Clone)]
pub struct Hits {
    pub hits: Vec<Hit>,
    pub total: usize,
}

/// The best `limit` hits for `query` (whitespace-separated words, case-insensitive).
pub fn search(u: &Universe, query: &str, limit: usize) -> Vec<Hit> {
    search_counted(u, query, limit).hits
}

fn priority_rank(p: &str) -> u8 {
    match p.trim() {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        _ => 4,
    }
}

/// The names a `Provides` field offers, lowercase, without versions or arch qualifiers.
fn provided(field: &str) -> Vec<String> {
    field
        .split([',', '|'])
        .filter_map(|a| a.split_whitespace().next())
        .map(|n| n.split(':').next().unwrap_or(n).to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The whole words of a package's name (split on `-`, `.`, `+`), provided names and summary,
/// lowercase.
fn whole_words(name_l: &str, provides: &str, summary: &str) -> Vec<String> {
    let mut out: Vec<String> = name_l
        .split(['-', '.', '+'])
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    for n in provided(provides) {
        out.extend(n.split(['-', '.', '+']).map(String::from));
    }
    out.extend(
        summary
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase),
    );
    out
}

/// Like [`search`], with the number of all matches (to say how many the limit cut).
pub fn search_counted(u: &Universe, query: &str, limit: usize) -> Hits {
    let words: Vec<String> = query
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        return Hits {
            hits: Vec::new(),
            total: 0,
        };
    }
    let joined = words.join("-");
    // (tier, words only part of a word, priority, name length, name, version, summary)
    let mut scored: Vec<(u8, usize, u8, usize, &str, &str, &str)> = Vec::new();
    for name in u.names() {
        let Some(c) = u.candidate(name, &u.native_arch, None) else {
            continue;
        };
        let p = u.paragraph(c.main);
        let desc = p.get("Description").unwrap_or("");
        let summary = opaas_deb::deb822::first_line(desc);
        let name_l = name.to_ascii_lowercase();
        let tier = if name_l == joined {
            0
        } else if name_l.starts_with(&joined) {
            1
        } else if words.iter().all(|w| name_l.contains(w.as_str())) {
            2
        } else {
            let prov = provided(p.get("Provides").unwrap_or(""));
            let in_names = |w: &str| name_l.contains(w) || prov.iter().any(|n| n.contains(w));
            if words.iter().all(|w| in_names(w)) {
                3
            } else {
                let sum_l = summary.to_ascii_lowercase();
                let desc_l = desc.to_ascii_lowercase();
                if words
                    .iter()
                    .all(|w| in_names(w) || sum_l.contains(w.as_str()))
                {
                    4
                } else if words
                    .iter()
                    .all(|w| in_names(w) || desc_l.contains(w.as_str()))
                {
                    5
                } else {
                    continue;
                }
            }
        };
        let prio = priority_rank(p.get("Priority").unwrap_or(""));
        let whole = whole_words(&name_l, p.get("Provides").unwrap_or(""), summary);
        let partial = words
            .iter()
            .filter(|w| {
                !whole
                    .iter()
                    .any(|t| t == *w || t.strip_suffix('s') == Some(w))
            })
            .count();
        scored.push((tier, partial, prio, name.len(), name, c.version, summary));
    }
    scored.sort_unstable_by(|a, b| (a.0, a.1, a.2, a.3, a.4).cmp(&(b.0, b.1, b.2, b.3, b.4)));
    let total = scored.len();
    let hits = scored
        .into_iter()
        .take(limit)
        .map(|(_, _, _, _, name, version, summary)| Hit {
            name: name.to_string(),
            version: version.to_string(),
            summary: summary.to_string(),
        })
        .collect();
    Hits { hits, total }
}

//! "Did you mean": close names for an unknown package.

use opaas_repo::universe::Universe;

/// Providers when `name` is virtual, else up to 8 names within edit distance 2 (or with
/// `name` as a prefix), closest first.
pub fn suggestions(u: &Universe, name: &str) -> Vec<String> {
    let mut provs: Vec<String> = u
        .providers(name)
        .iter()
        .map(|&r| u.name(r).to_string())
        .collect();
    provs.sort();
    provs.dedup();
    if !provs.is_empty() {
        return provs;
    }
    let mut scored: Vec<(usize, &str)> = u
        .names()
        .filter_map(|n| {
            let d = levenshtein(name, n);
            (d <= 2 || (name.len() >= 3 && n.starts_with(name))).then_some((d, n))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(8)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// Edit distance, capped: anything above 2 reports 3.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 {
        return 3;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1)
                .min(cur[j - 1] + 1)
                .min(prev[j - 1] + usize::from(a[i - 1] != b[j - 1]));
        }
        prev = cur;
    }
    prev[b.len()].min(3)
}

/// The hint appended to an unknown-package error.
pub fn hint(u: &Universe, name: &str) -> String {
    let s = suggestions(u, name);
    if s.is_empty() {
        String::new()
    } else if !u.providers(name).is_empty() {
        format!("; it is a virtual package provided by: {}", s.join(", "))
    } else {
        format!("; did you mean: {}?", s.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn distance() {
        assert_eq!(super::levenshtein("ngnix", "nginx"), 2);
        assert_eq!(super::levenshtein("jq", "jq"), 0);
        assert_eq!(super::levenshtein("a", "abcdef"), 3);
    }
}

//! deb822 paragraphs (Packages, Release, dpkg status, `.sources` files), zero-copy.
//!
//! A [`Paragraph`] is a slice of the original text; field look-ups scan it. Field names compare
//! ASCII-case-insensitively as in Debian policy §5.1. Continuation lines stay in the value
//! (callers that need one logical line, such as relation parsing, treat newlines as spaces).
//! Lines starting with `#` are comments (allowed in `.sources` files, absent from indices).

/// One paragraph: a run of non-blank lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paragraph<'a> {
    text: &'a str,
}

impl<'a> Paragraph<'a> {
    pub fn new(text: &'a str) -> Self {
        Paragraph { text }
    }

    /// The raw text of the paragraph (no trailing blank line).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Iterates `(name, value)`; the value is trimmed and keeps its continuation lines.
    pub fn fields(&self) -> Fields<'a> {
        Fields { rest: self.text }
    }

    /// The value of field `name` (case-insensitive), trimmed.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Iterator over the fields of a paragraph.
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            // find the end of this field: the next line that does not start with space/tab
            let bytes = self.rest.as_bytes();
            let mut end = 0;
            loop {
                match memchr_nl(&bytes[end..]) {
                    Some(i) => {
                        let next = end + i + 1;
                        if next < bytes.len() && (bytes[next] == b' ' || bytes[next] == b'\t') {
                            end = next;
                            continue;
                        }
                        end = next;
                        break;
                    }
                    None => {
                        end = bytes.len();
                        break;
                    }
                }
            }
            let field = &self.rest[..end];
            self.rest = &self.rest[end..];
            if field.starts_with('#') {
                continue;
            }
            if let Some(colon) = memchr::memchr(b':', field.as_bytes()) {
                let name = field[..colon].trim();
                let value = field[colon + 1..].trim();
                return Some((name, value));
            }
            // a line without a colon is malformed; skip it rather than fail the whole index
        }
    }
}

#[inline]
fn memchr_nl(b: &[u8]) -> Option<usize> {
    // SIMD search: a paragraph's Description is most of its bytes, walked line by line
    memchr::memchr(b'\n', b)
}

/// Iterates the paragraphs of a deb822 text with their byte offsets.
pub fn paragraphs_with_offsets(text: &str) -> impl Iterator<Item = (usize, Paragraph<'_>)> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let bytes = text.as_bytes();
        // skip blank lines
        loop {
            if pos >= bytes.len() {
                return None;
            }
            let line_end = memchr_nl(&bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            if text[pos..line_end].trim().is_empty() {
                pos = line_end + 1;
                continue;
            }
            break;
        }
        let start = pos;
        let mut end;
        loop {
            let line_end = memchr_nl(&bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            if text[pos..line_end].trim().is_empty() {
                end = pos;
                pos = line_end + 1;
                break;
            }
            end = line_end;
            pos = line_end + 1;
            if pos >= bytes.len() {
                end = bytes.len().min(end + 1);
                break;
            }
        }
        let t = text[start..end].trim_end_matches(['\n', '\r']);
        Some((start, Paragraph::new(t)))
    })
}

/// Iterates the paragraphs of a deb822 text.
pub fn paragraphs(text: &str) -> impl Iterator<Item = Paragraph<'_>> {
    paragraphs_with_offsets(text).map(|(_, p)| p)
}

/// The first line of a multi-line value (e.g. the short description).
pub fn first_line(v: &str) -> &str {
    v.split('\n').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs_and_fields() {
        let t = "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\n# c\nPackage: b\r\nDepends: x,\n y\n";
        let ps: Vec<_> = paragraphs_with_offsets(t).collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].0, 0);
        let a = ps[0].1;
        assert_eq!(a.get("package"), Some("a"));
        assert_eq!(a.get("VERSION"), Some("1"));
        assert_eq!(first_line(a.get("Description").unwrap_or("")), "short");
        assert!(a.get("Description").unwrap_or("").ends_with("more"));
        let b = ps[1].1;
        assert_eq!(b.get("Package"), Some("b"));
        assert_eq!(b.get("Depends"), Some("x,\n y"));
        assert_eq!(b.get("Missing"), None);
        assert_eq!(t[ps[1].0..].lines().nth(1), Some("Package: b"));
    }

    #[test]
    fn no_trailing_newline_and_whitespace_blank_lines() {
        let t = "A: 1\n \t\nB: 2";
        let ps: Vec<_> = paragraphs(t).collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[1].get("b"), Some("2"));
    }
}

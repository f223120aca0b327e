//! Output caps (issue 16): what the service stores or echoes is bounded whatever the input. A long
//! text (an unsatisfiable explanation over an 8 MB status file) keeps its head and says how much
//! was left out: `… N more lines`.

/// Stored job errors (database, job log, `end` event) and API error messages, at most.
pub const MAX_MESSAGE_BYTES: usize = 4096;
pub const MAX_MESSAGE_LINES: usize = 40;
/// Suggestions in an error, at most.
pub const MAX_SUGGESTIONS: usize = 20;
/// A `field` in an error, at most (characters).
pub const MAX_FIELD_CHARS: usize = 64;

/// `text` cut to at most `max_lines` lines and about `max_bytes` bytes (at a line end when one
/// is near, else at a character boundary), followed by `… N more lines` (or `… N more bytes`
/// when the cut is inside a line). Short texts come back unchanged.
pub fn truncate(text: &str, max_bytes: usize, max_lines: usize) -> String {
    let total_lines = text.lines().count();
    if text.len() <= max_bytes && total_lines <= max_lines {
        return text.to_string();
    }
    // the end of the last whole line that fits both limits
    let mut end = 0;
    let mut lines = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            if i > max_bytes || lines + 1 > max_lines {
                break;
            }
            end = i;
            lines += 1;
        }
    }
    if lines > 0 && end >= max_bytes / 2 || lines == max_lines {
        let rest = total_lines.saturating_sub(lines);
        return format!("{}\n… {rest} more lines", &text[..end]);
    }
    // one huge line: cut inside it
    let mut cut = max_bytes.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… {} more bytes", &text[..cut], text.len() - cut)
}

/// [`truncate`] with the limits of messages.
pub fn message(text: &str) -> String {
    truncate(text, MAX_MESSAGE_BYTES, MAX_MESSAGE_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_unchanged() {
        assert_eq!(message("unknown package 'x'"), "unknown package 'x'");
        assert_eq!(truncate("a\nb\nc", 100, 3), "a\nb\nc");
    }

    #[test]
    fn long_explanations_keep_their_head() {
        let text: String = (0..100_000)
            .map(|i| format!("pkg{i} depends on missing lib{i}\n"))
            .collect();
        let t = message(&text);
        assert!(t.len() <= MAX_MESSAGE_BYTES + 40, "{}", t.len());
        assert!(t.starts_with("pkg0 depends on missing lib0\n"));
        let lines = t.lines().count();
        assert!(lines <= MAX_MESSAGE_LINES + 1, "{lines}");
        assert!(
            t.ends_with(&format!("… {} more lines", 100_000 - (lines - 1))),
            "{}",
            &t[t.len() - 40..]
        );
        let t = truncate("a\nb\nc\nd\n", 100, 2);
        assert_eq!(t, "a\nb\n… 2 more lines");
    }

    #[test]
    fn one_long_line_is_cut_at_a_character() {
        let text = "é".repeat(100_000);
        let t = truncate(&text, 1001, 10);
        assert!(t.ends_with("… 199000 more bytes"), "{}", &t[t.len() - 30..]);
        assert!(t.starts_with("éé"));
        assert!(t.len() < 1100);
    }
}

//! Wire values made safe to print: every control character shown escaped.
//!
//! A value that came off the wire (a `state`, an IdP's description, a header)
//! can carry escape sequences that drive the terminal (OSC, CSI), line
//! breaks that forge whole lines, or bidi controls that reorder what is
//! shown. Every human-readable output passes such values through
//! [`escape_controls`]; JSON output escapes by its own rules and does not.

use std::borrow::Cow;

/// `text` with each control character shown as its Rust escape (`\r`, `\n`,
/// `\u{1b}`, `\u{202e}`): C0, DEL, C1, and the Unicode bidi embeddings,
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069). Borrowed when
/// there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// A character that must not reach a terminal or a document as is.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` safe inside HTML text and quoted attribute values (the five
/// characters that matter there, as entities).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped_the_rest_kept() {
        assert!(matches!(escape_controls("plain ✔ text"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n✔\t\u{7f}\u{9b}"),
            r"\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n✔\t\u{7f}\u{9b}"
        );
        assert_eq!(
            escape_controls("a\u{202e}b\u{2066}c\u{2069}\u{202a}"),
            r"a\u{202e}b\u{2066}c\u{2069}\u{202a}"
        );
    }
}

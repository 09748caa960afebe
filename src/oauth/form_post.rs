//! The `response_mode=form_post` page: an auto-submitting HTML form whose
//! hidden inputs carry the authorization response.
//!
//! A deliberately small, forgiving tag scanner, not an HTML parser: it finds
//! the first `<form>` and the `<input name=… value=…>` elements inside it.
//! Arbitrary bytes must never make it panic, so it works on ASCII-lowercased
//! copies and only slices at positions found in them.

use super::params::Params;

/// What the first form of a page would submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlForm {
    /// The `action` attribute, entity-decoded.
    pub action: Option<String>,
    /// The `method` attribute, upper-cased (`POST` when absent is not assumed).
    pub method: Option<String>,
    /// The named inputs, in document order.
    pub fields: Params,
}

/// Finds the first `<form>` in `html` and its named inputs.
pub fn parse_form(html: &str) -> Option<HtmlForm> {
    let lower = html.to_ascii_lowercase();
    let form_at = find_tag(&lower, "form", 0)?;
    let form_tag_end = tag_end(&lower, form_at);
    let form_attrs = attributes(&html[form_at..form_tag_end]);
    let body_end = lower[form_tag_end..]
        .find("</form")
        .map_or(html.len(), |i| form_tag_end + i);

    let mut fields = Vec::new();
    let mut cursor = form_tag_end;
    while let Some(at) = find_tag(&lower[..body_end], "input", cursor) {
        let end = tag_end(&lower, at).min(body_end.max(at + 1));
        let attrs = attributes(&html[at..end]);
        if let Some(name) = attr(&attrs, "name") {
            let value = attr(&attrs, "value").unwrap_or_default();
            fields.push((name, value));
        }
        cursor = end.max(at + 1);
    }
    Some(HtmlForm {
        action: attr(&form_attrs, "action"),
        method: attr(&form_attrs, "method").map(|m| m.to_ascii_uppercase()),
        fields: Params::from_pairs(fields),
    })
}

/// Position of the next `<name` tag (followed by whitespace, `>` or `/`).
fn find_tag(lower: &str, name: &str, from: usize) -> Option<usize> {
    let needle = format!("<{name}");
    let mut from = from;
    while from <= lower.len() {
        let at = from + lower.get(from..)?.find(&needle)?;
        let next = lower.as_bytes().get(at + needle.len()).copied();
        if matches!(next, Some(b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')) {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

/// End (exclusive) of the tag starting at `at`: just past its `>`, honouring quotes.
fn tag_end(lower: &str, at: usize) -> usize {
    let bytes = lower.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = at;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return i + 1,
            None => {}
        }
        i += 1;
    }
    bytes.len()
}

/// `name="value"` pairs of one tag (names lower-cased, values entity-decoded).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let bytes = tag.as_bytes();
    let mut out = Vec::new();
    // Skip `<tagname`.
    let mut i = 1;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' && bytes[i] != b'/' {
        i += 1;
    }
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            break;
        }
        let name_start = i;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                let start = i + 1;
                let end = tag[start..]
                    .find(q as char)
                    .map_or(tag.len(), |e| start + e);
                value = decode_entities(&tag[start..end]);
                i = (end + 1).min(bytes.len());
            } else {
                let start = i;
                while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&tag[start..i]);
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
        if i == name_start {
            // No progress (a stray `=`): step over it.
            i += 1;
        }
    }
    out
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Decodes the character references an IdP puts in attribute values.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|num| {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_entra_style_form_post_page() {
        let html = r#"<html><head><title>Working...</title></head><body>
            <form method="POST" name="hiddenform" action="https://app.example.com/signin-oidc?x=1&amp;y=2">
            <input type="hidden" name="code" value="0.AXk&#x2F;abc" />
            <input type='hidden' name='state' value='st&#61;1'>
            <input type=hidden name=session_state value=sess>
            <noscript><p>Script is disabled.</p><input type="submit" value="Continue" /></noscript>
            </form><script>document.forms[0].submit()</script></body></html>"#;
        let form = parse_form(html).unwrap();
        assert_eq!(
            form.action.as_deref(),
            Some("https://app.example.com/signin-oidc?x=1&y=2")
        );
        assert_eq!(form.method.as_deref(), Some("POST"));
        assert_eq!(form.fields.get("code"), Some("0.AXk/abc"));
        assert_eq!(form.fields.get("state"), Some("st=1"));
        assert_eq!(form.fields.get("session_state"), Some("sess"));
        assert_eq!(form.fields.iter().count(), 3);
    }

    #[test]
    fn no_form_no_result() {
        assert_eq!(parse_form("<html><formula></formula></html>"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let samples = [
            "<form",
            "<form action=\"",
            "<form action='x'><input name=\"a\" value=\"b",
            "<FORM ACTION=x><INPUT NAME=code VALUE=é&#xFFFFFFFF;&#;&",
            "<form><input =><input name=><input name",
            "<form>\u{0}<input\u{7f} name=a>é<input name='é' value='ü'></form>",
        ];
        for s in samples {
            let _ = parse_form(s);
        }
        assert_eq!(
            parse_form("<FORM ACTION=x><INPUT NAME=code VALUE=1&amp;2></FORM>")
                .unwrap()
                .fields
                .get("code"),
            Some("1&2")
        );
    }
}

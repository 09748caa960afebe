//! `application/x-www-form-urlencoded` parameters (query strings and form
//! bodies), parsed leniently and keeping each raw value.
//!
//! OAuth messages are judged on what was actually sent, so nothing here
//! rejects input: a broken escape stays literal, invalid UTF-8 becomes U+FFFD,
//! and repeated names are kept in order so duplicates can be reported.

/// Upper bound on parameters kept from one message (memory stays bounded on
/// hostile input).
const MAX_PARAMS: usize = 512;

/// One `name=value` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// Decoded value (`+` is a space, `%XX` a byte).
    pub value: String,
    /// The value exactly as sent, before decoding.
    pub raw_value: String,
}

/// An ordered list of parameters; names may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<Param>,
}

impl Params {
    /// Parses `a=1&b=2` (no leading `?`). Never fails.
    pub fn parse(raw: &str) -> Params {
        let pairs = raw
            .split('&')
            .filter(|piece| !piece.is_empty())
            .take(MAX_PARAMS)
            .map(|piece| {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                Param {
                    name: decode_component(name),
                    value: decode_component(value),
                    raw_value: value.to_owned(),
                }
            })
            .collect();
        Params { pairs }
    }

    /// Parameters from already decoded pairs (a JSON body, an HTML form).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Params {
        let pairs = pairs
            .into_iter()
            .take(MAX_PARAMS)
            .map(|(name, value)| Param {
                name,
                raw_value: value.clone(),
                value,
            })
            .collect();
        Params { pairs }
    }

    /// The first value of `name`, when it is present and not empty (an empty
    /// value counts as absent in OAuth).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.first(name)
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The first occurrence of `name`, even with an empty value.
    pub fn first(&self, name: &str) -> Option<&Param> {
        self.pairs.iter().find(|p| p.name == name)
    }

    /// True when `name` is present (possibly empty).
    pub fn contains(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// Names that occur more than once, in first-seen order.
    pub fn duplicates(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        let mut repeated: Vec<&str> = Vec::new();
        for p in &self.pairs {
            if seen.contains(&p.name.as_str()) {
                if !repeated.contains(&p.name.as_str()) {
                    repeated.push(&p.name);
                }
            } else {
                seen.push(&p.name);
            }
        }
        repeated
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.pairs.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one form component: `+` is a space, valid `%XX` escapes are bytes,
/// anything else stays as it is.
pub fn decode_component(raw: &str) -> String {
    percent_decode(raw, true)
}

/// Decodes `%XX` escapes only (for URLs, where `+` is literal).
pub fn percent_decode_url(raw: &str) -> String {
    percent_decode(raw, false)
}

fn percent_decode(raw: &str, plus_is_space: bool) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `value` still holds a `%XX` escape (a sign of double encoding
/// once it has been decoded once).
pub fn has_percent_escape(value: &str) -> bool {
    let b = value.as_bytes();
    b.windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_keeping_raw_and_order() {
        let p = Params::parse("a=1&b=x%2By+z&a=2&empty=&flag");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x+y z"));
        assert_eq!(p.first("b").unwrap().raw_value, "x%2By+z");
        assert_eq!(p.get("empty"), None);
        assert!(p.contains("empty"));
        assert!(p.contains("flag"));
        assert_eq!(p.duplicates(), vec!["a"]);
    }

    #[test]
    fn broken_escapes_and_bad_utf8_never_fail() {
        assert_eq!(decode_component("%"), "%");
        assert_eq!(decode_component("%4"), "%4");
        assert_eq!(decode_component("%zz%41"), "%zzA");
        assert_eq!(decode_component("%ff"), "\u{fffd}");
        assert_eq!(percent_decode_url("a+b%20c"), "a+b c");
        let p = Params::parse("&&=&%%%=%%&\u{0}=\u{1}");
        assert!(p.iter().count() >= 2);
    }

    #[test]
    fn detects_leftover_escapes() {
        assert!(has_percent_escape("https%3A%2F%2Fapp"));
        assert!(!has_percent_escape("100%"));
        assert!(!has_percent_escape("abc"));
    }

    #[test]
    fn bounded_number_of_params() {
        let raw = "a=1&".repeat(10_000);
        assert_eq!(Params::parse(&raw).iter().count(), MAX_PARAMS);
    }
}

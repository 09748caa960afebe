//! The net of [`super::Redactor`]: every secret learnt so far, in each of the
//! forms it takes in a text, found in one pass over that text, however many
//! secrets are known.
//!
//! One Aho-Corasick automaton per batch of secrets, batches merged like the
//! digits of a binary counter (a new batch merges into the previous one
//! once it is a quarter of its size), so the automata are compiled only
//! when secrets were learnt since the last scan, each secret is compiled
//! O(log n) times over a run, and a scan runs at most a handful of
//! automata. An automaton looks for the last [`TAIL`] bytes of each form; a
//! hit is confirmed by a hash of the whole form ending there, so a long
//! token (an id_token, a SAML assertion) costs the automaton no more than a
//! short one and its text is not kept twice. Nothing here knows what a
//! secret is: the redactor decides that.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// How many bytes of the end of a form the automaton looks for.
const TAIL: usize = 48;
/// A batch merges into the one before it once it is at least this fraction
/// (1/FANOUT) of its size.
const FANOUT: usize = 4;

/// Secrets by the hash of their value, each with what replaces it.
#[derive(Default)]
pub(super) struct Net {
    hasher: RandomState,
    /// hash(secret) -> its replacement in the raw form.
    known: HashMap<u64, Arc<Replacement>>,
    /// Oldest first, for forgetting beyond the cap.
    order: VecDeque<u64>,
    /// The most secrets remembered (0: no cap).
    cap: usize,
    /// Forms learnt since the last compile.
    pending: Vec<Form>,
    /// Compiled batches, oldest (and largest) first.
    batches: Vec<Batch>,
}

/// What replaces one secret.
#[derive(Debug)]
pub(super) struct Replacement {
    pub raw: String,
    /// For the percent-encoded forms.
    pub percent: String,
}

/// One form of one secret (raw, percent-encoded, JSON-escaped, …).
#[derive(Clone)]
struct Form {
    tail: Box<[u8]>,
    len: usize,
    hash: u64,
    /// Which secret it belongs to (its hash), to drop forgotten ones.
    secret: u64,
    percent: bool,
    replacement: Arc<Replacement>,
}

/// The forms sharing one tail (usually one), longest first.
struct Batch {
    automaton: AhoCorasick,
    tails: Vec<Vec<Form>>,
    forms: usize,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("known", &self.known.len())
            .field("pending", &self.pending.len())
            .field("batches", &self.batches.len())
            .finish()
    }
}

/// A replacement found in a text: `start..end` becomes `with`.
struct Hit<'a> {
    start: usize,
    end: usize,
    with: &'a str,
}

impl Net {
    pub fn with_cap(cap: usize) -> Net {
        Net {
            cap,
            ..Net::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one(bytes)
    }

    /// The replacement remembered for `secret`, if any.
    pub fn get(&self, secret: &str) -> Option<&Replacement> {
        self.known
            .get(&self.hash(secret.as_bytes()))
            .map(|r| r.as_ref())
    }

    /// Remembers `secret`, replaced by `replacement`: `forms` are the texts
    /// it can take, each with whether it is percent-encoded (replaced by
    /// the percent-encoded replacement).
    pub fn insert(&mut self, secret: &str, replacement: Replacement, forms: &[(String, bool)]) {
        let id = self.hash(secret.as_bytes());
        if self.known.contains_key(&id) {
            return;
        }
        if self.cap > 0 && self.order.len() >= self.cap {
            // Forgotten: the automata drop its forms when they are next
            // merged (until then they keep replacing it, which is safe).
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
        let replacement = Arc::new(replacement);
        self.order.push_back(id);
        self.known.insert(id, replacement.clone());
        let mut seen: Vec<&str> = Vec::with_capacity(forms.len());
        for (text, percent) in forms {
            if text.is_empty() || seen.contains(&text.as_str()) {
                continue;
            }
            seen.push(text);
            let bytes = text.as_bytes();
            self.pending.push(Form {
                tail: bytes[bytes.len().saturating_sub(TAIL)..].into(),
                len: bytes.len(),
                hash: self.hash(bytes),
                secret: id,
                percent: *percent,
                replacement: replacement.clone(),
            });
        }
    }

    /// Compiles what was learnt since the last call (nothing when nothing
    /// was).
    pub fn compile(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let forms = std::mem::take(&mut self.pending);
        let mut batch = self.batch(forms);
        while let Some(previous) = self.batches.last() {
            if batch.forms * FANOUT < previous.forms {
                break;
            }
            let previous = self.batches.pop().unwrap_or_else(|| unreachable!());
            let mut forms: Vec<Form> = previous.tails.into_iter().flatten().collect();
            forms.extend(batch.tails.into_iter().flatten());
            forms.retain(|f| self.known.contains_key(&f.secret));
            batch = self.batch(forms);
        }
        if batch.forms > 0 {
            self.batches.push(batch);
        }
    }

    fn batch(&self, forms: Vec<Form>) -> Batch {
        let mut by_tail: HashMap<Box<[u8]>, Vec<Form>> = HashMap::new();
        let mut count = 0;
        for form in forms {
            let same = by_tail.entry(form.tail.clone()).or_default();
            if !same
                .iter()
                .any(|f| f.hash == form.hash && f.len == form.len)
            {
                same.push(form);
                count += 1;
            }
        }
        let mut tails: Vec<Vec<Form>> = by_tail.into_values().collect();
        for same in &mut tails {
            same.sort_by_key(|f| std::cmp::Reverse(f.len));
        }
        // Standard semantics so overlapping hits can be listed: the
        // choice between overlapping secrets is made in `hits`. A
        // contiguous NFA: compact for thousands of patterns and quick to
        // build, which matters more here than the last bit of scan speed.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(tails.iter().map(|same| &same[0].tail))
            .unwrap_or_else(|e| {
                // Only a pattern set beyond the automaton's state limit
                // (2^31 states) fails: tails of TAIL bytes, at most six
                // forms per secret and the redactor's cap on secrets keep
                // it below 1% of that.
                unreachable!("the net's automaton cannot be built: {e}")
            });
        Batch {
            automaton,
            tails,
            forms: count,
        }
    }

    /// Every confirmed secret in `text`, leftmost first, longest first
    /// among those starting at the same place, none overlapping.
    fn hits<'a>(&'a self, text: &[u8]) -> Vec<Hit<'a>> {
        let mut hits = Vec::new();
        for batch in &self.batches {
            for m in batch.automaton.find_overlapping_iter(text) {
                let end = m.end();
                for form in &batch.tails[m.pattern().as_usize()] {
                    let Some(start) = end.checked_sub(form.len) else {
                        continue;
                    };
                    if self.hash(&text[start..end]) == form.hash {
                        let r = &form.replacement;
                        let with = if form.percent { &r.percent } else { &r.raw };
                        hits.push(Hit { start, end, with });
                        break;
                    }
                }
            }
        }
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        let mut kept: Vec<Hit<'a>> = Vec::with_capacity(hits.len());
        for hit in hits {
            if kept.last().is_none_or(|last| hit.start >= last.end) {
                kept.push(hit);
            }
        }
        kept
    }

    /// `bytes` with every known secret replaced; `None` when there was none.
    /// Call [`Net::compile`] first.
    pub fn replace_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.batches.is_empty() {
            return None;
        }
        let hits = self.hits(bytes);
        if hits.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for hit in hits {
            out.extend_from_slice(&bytes[at..hit.start]);
            out.extend_from_slice(hit.with.as_bytes());
            at = hit.end;
        }
        out.extend_from_slice(&bytes[at..]);
        Some(out)
    }

    /// `text` with every known secret replaced; `None` when there was none.
    /// Call [`Net::compile`] first.
    pub fn replace(&self, text: &str) -> Option<String> {
        let bytes = self.replace_bytes(text.as_bytes())?;
        // A confirmed hit is a whole UTF-8 form, so the splice stays UTF-8;
        // a hash collision could cut a character, which must not panic.
        Some(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learn(net: &mut Net, secret: &str, print: &str) {
        net.insert(
            secret,
            Replacement {
                raw: print.into(),
                percent: print.replace('#', "%23"),
            },
            &[(secret.into(), false)],
        );
    }

    #[test]
    fn finds_every_secret_in_one_pass_longest_first() {
        let mut net = Net::default();
        learn(&mut net, "abcdefgh", "A");
        learn(&mut net, "xxabcdefgh", "B");
        let long = "L".repeat(5000) + "-end";
        learn(&mut net, &long, "C");
        net.compile();
        assert_eq!(
            net.replace("1 xxabcdefgh 2 abcdefgh 3").unwrap(),
            "1 B 2 A 3"
        );
        assert_eq!(net.replace(&format!("<{long}>")).unwrap(), "<C>");
        // The tail alone is not the secret.
        assert!(net.replace(&long[100..]).is_none());
        assert!(net.replace("nothing here").is_none());
    }

    #[test]
    fn many_batches_behave_as_one_and_the_cap_forgets_the_oldest() {
        let mut net = Net::with_cap(100);
        for i in 0..300 {
            learn(&mut net, &format!("secret-{i:05}"), &format!("s#{i}"));
            if i % 7 == 0 {
                net.compile();
            }
        }
        net.compile();
        assert_eq!(net.known.len(), 100);
        assert!(net.batches.len() < 12, "{}", net.batches.len());
        assert_eq!(
            net.replace("a secret-00299 b secret-00200").unwrap(),
            "a s#299 b s#200"
        );
        assert!(net.get("secret-00000").is_none());
        assert!(net.get("secret-00250").is_some());
    }

    #[test]
    fn bytes_that_are_not_text_are_searched_too() {
        let mut net = Net::default();
        learn(&mut net, "token-123456", "t#1");
        net.compile();
        let out = net.replace_bytes(b"\xff\x00token-123456\xfe").unwrap();
        assert_eq!(out, b"\xff\x00t#1\xfe");
    }
}

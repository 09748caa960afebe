//! The live terminal log: one line per leg, findings indented under the leg
//! that triggered them, a one-line verdict when an attempt completes.
//!
//! Pure: events in, lines out (without newlines). Colour and the width are
//! decided once, in `config`, and passed in [`LiveLogOptions`]. Lines wider
//! than that wrap with a hanging indent, between a leg's fields or a
//! finding's words: nothing a finding says is ever cut. By default GUIDs are
//! shortened (`11111111-…`), the verdict names its cause without repeating
//! it, and each fix is shown once; `--verbose` shows every value in full,
//! as the JSON lines always do.

use std::borrow::Cow;

use time::OffsetDateTime;

use crate::oauth::event::{
    AuthorizeEvent, CodeEvent, DecodedToken, DeviceAuthorizationEvent, Event, Finding, Outcome,
    Rule, Severity, TokenEvent, TokenResponseEvent, Verdict, human_duration,
};
use crate::oauth::jwt::Jwt;
use crate::oauth::message::{DEVICE_CODE, JWT_BEARER, TOKEN_EXCHANGE};
use crate::output::escape::escape_controls;

/// The width of a log that goes to a file or a pipe (and of tests): wide
/// enough for a leg line, narrow enough to read in an editor or a ticket.
pub const DEFAULT_WIDTH: usize = 120;

/// How the log looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLogOptions {
    /// ANSI colours (decided once in `config`: see `ColorChoice`).
    pub color: bool,
    /// Every value in full, extra facts on each leg, the evidence under each
    /// finding.
    pub verbose: bool,
    /// Columns a line may take (decided once, with the colour).
    pub width: usize,
}

impl Default for LiveLogOptions {
    fn default() -> Self {
        LiveLogOptions {
            color: false,
            verbose: false,
            width: DEFAULT_WIDTH,
        }
    }
}

/// The live log of one run: renders each event to its lines.
///
/// It remembers the fixes already shown for the exchange being rendered:
/// the IdP's refusal (`idp-error`) carries the fix of the finding that
/// explains it, and one fix is shown once. The analyzer hands on the events
/// of one exchange together, so the last exchange is all it needs to keep.
#[derive(Debug)]
pub struct LiveLog {
    options: LiveLogOptions,
    /// The exchange of the last finding, and the fixes shown under it.
    fixes: Option<(u64, Vec<String>)>,
    /// The last exchange whose `--fault` note was shown (once, under its
    /// first leg).
    injected_shown: Option<u64>,
}

impl LiveLog {
    pub fn new(options: LiveLogOptions) -> LiveLog {
        LiveLog {
            options,
            fixes: None,
            injected_shown: None,
        }
    }

    /// The lines for one event.
    pub fn render(&mut self, event: &Event) -> Vec<String> {
        let o = self.options;
        let mut lines = match event {
            Event::Authorize(e) => vec![authorize(e, o)],
            Event::Code(e) => vec![code(e, o)],
            // A device-code poll answered `authorization_pending` is the
            // normal wait for the user: one line for the first, the count
            // on the poll that ends the wait.
            Event::Token(e) if e.pending_poll.is_some() => Vec::new(),
            Event::TokenResponse(e) if e.pending_poll.is_some_and(|n| n > 1) => Vec::new(),
            Event::TokenResponse(e) if e.pending_poll.is_some() => vec![pending_poll(e, o)],
            Event::Token(e) => vec![token(e, o)],
            Event::TokenResponse(e) => {
                let mut lines = vec![token_response(e, o)];
                lines.extend(token_claims(e, o));
                lines
            }
            Event::DeviceAuthorization(e) => vec![device_authorization(e, o)],
            Event::Finding(f) => {
                let show_fix = self.first_time_fix(f);
                finding(f, show_fix, o)
            }
            Event::Verdict(v) => vec![verdict(v, o)],
        };
        if let Some(note) = self.injected_note(event) {
            lines.insert(lines.len().min(1), note);
        }
        lines.iter().flat_map(|l| l.lay_out(o)).collect()
    }

    /// `injected reuse-code: redeemed code#912f80 first, …` under the first
    /// leg of an exchange a `--fault` changed, where it happened.
    fn injected_note(&mut self, event: &Event) -> Option<Line> {
        let injected = event.injected()?;
        let exchange = match event {
            Event::Authorize(e) => e.exchange,
            Event::Code(e) => e.exchange,
            Event::Token(e) => e.exchange,
            Event::TokenResponse(e) => e.exchange,
            Event::DeviceAuthorization(e) => e.exchange,
            Event::Finding(_) | Event::Verdict(_) => return None,
        };
        if self.injected_shown.replace(exchange) == Some(exchange) {
            return None;
        }
        // Escaped piece by piece (`Piece::new`), as every wire value is.
        let note = &injected.note;
        let text = if note.starts_with("injected ") {
            note.to_owned()
        } else {
            format!("injected {}: {note}", injected.fault)
        };
        Some(Line {
            indent: DETAIL_INDENT,
            hang: DETAIL_INDENT,
            head: Vec::new(),
            body: words(&text, Some(CYAN)).collect(),
        })
    }

    /// False when this finding's fix was already shown for its exchange.
    fn first_time_fix(&mut self, f: &Finding) -> bool {
        let (exchange, shown) = self.fixes.get_or_insert_with(|| (f.exchange, Vec::new()));
        if *exchange != f.exchange {
            *exchange = f.exchange;
            shown.clear();
        }
        if shown.contains(&f.fix) {
            return false;
        }
        shown.push(f.fix.clone());
        true
    }
}

/// A notice from authlens itself (an output that cannot be written), as
/// one line: `authlens: ` and the text, control characters escaped, in bold
/// red when coloured.
pub fn notice(text: &str, options: LiveLogOptions) -> String {
    let text = format!("authlens: {}", escape_controls(text));
    if options.color {
        format!("\x1b[{BOLD};{RED}m{text}\x1b[0m")
    } else {
        text
    }
}

// === layout ===

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

/// Columns taken by the head of a leg line (`10:02:11.250 #3   token-response `):
/// a wrapped leg line continues under its first field.
const HEAD_WIDTH: usize = 34;
/// Findings are indented under their leg; their wrapped text, fix and
/// evidence a little further.
const FINDING_INDENT: usize = 4;
const DETAIL_INDENT: usize = 6;
/// Below this many columns for a leg's fields, wrapped fields go under the
/// findings' details instead of under the first field.
const MIN_FIELDS_WIDTH: usize = 40;

/// One logical line of the log, kept in pieces so that it can be wrapped
/// between them, and painted only once laid out (colour takes no columns).
struct Line {
    indent: usize,
    /// Where wrapped rows start.
    hang: usize,
    /// Always on the first row (time, attempt and leg; a finding's rule).
    head: Vec<Piece>,
    /// Laid out after the head, as many per row as fit.
    body: Vec<Piece>,
}

/// Text that is never cut, with what separates it from the piece before.
struct Piece {
    sep: &'static str,
    text: String,
    style: Option<&'static str>,
}

impl Piece {
    /// Control characters in `text` (a line break in an IdP's description,
    /// an escape sequence in a hostile `state`, a bidi override) are shown
    /// escaped (`\r`, `\u{1b}`): they would break the layout, drive the
    /// terminal, or reorder what is shown.
    fn new(sep: &'static str, text: &str, style: Option<&'static str>) -> Piece {
        Piece {
            sep,
            text: escape_controls(text).into_owned(),
            style,
        }
    }
}

fn piece(sep: &'static str, text: impl AsRef<str>) -> Piece {
    Piece::new(sep, text.as_ref(), None)
}

fn painted(sep: &'static str, style: &'static str, text: impl AsRef<str>) -> Piece {
    Piece::new(sep, text.as_ref(), Some(style))
}

/// Prose (a message, a fix) as one piece per word, so it wraps between words.
fn words<'a>(text: &'a str, style: Option<&'static str>) -> impl Iterator<Item = Piece> + 'a {
    text.split_whitespace()
        .map(move |w| Piece::new(" ", w, style))
}

/// A field of a few words (`aud 11111111-… (id_token), …`): one piece
/// when it fits in `room`, the columns of a wrapped row, else one per word
/// (a narrow terminal).
fn field(sep: &'static str, text: &str, style: Option<&'static str>, room: usize) -> Vec<Piece> {
    if columns(text) <= room {
        return vec![Piece::new(sep, text, style)];
    }
    let mut pieces: Vec<Piece> = words(text, style).collect();
    if let Some(first) = pieces.first_mut() {
        first.sep = sep;
    }
    pieces
}

/// Columns a text takes on a terminal (a wide character two). Pieces are
/// measured before they are painted, so colour takes none.
fn columns(text: &str) -> usize {
    // Measured as it will be printed: control characters escaped (an ESC
    // would otherwise count as nothing and then print as six columns).
    console::measure_text_width(&escape_controls(text))
}

impl Line {
    /// The rows, at most `width` columns wide. A piece that does not fit
    /// starts a new row at `hang`; one wider than a whole row (a long URL in
    /// a message) has a row of its own and overflows it rather than be cut.
    fn lay_out(&self, o: LiveLogOptions) -> Vec<String> {
        let mut rows: Vec<(usize, Vec<(&str, &Piece)>)> = vec![(self.indent, Vec::new())];
        let mut used = self.indent;
        for p in &self.head {
            let row = &mut rows[0].1;
            let sep = if row.is_empty() { "" } else { p.sep };
            used += columns(sep) + columns(&p.text);
            row.push((sep, p));
        }
        for p in &self.body {
            let width = columns(&p.text);
            let empty = rows.last().is_some_and(|(_, row)| row.is_empty());
            if !empty && used + columns(p.sep) + width > o.width {
                rows.push((self.hang, Vec::new()));
                used = self.hang;
            }
            let (_, row) = rows.last_mut().expect("there is always a row");
            let sep = if row.is_empty() { "" } else { p.sep };
            used += columns(sep) + width;
            row.push((sep, p));
        }
        rows.into_iter()
            .map(|(indent, row)| paint_row(indent, &row, o.color))
            .collect()
    }
}

/// One row as text: pieces of one style in a row share one colour run.
fn paint_row(indent: usize, row: &[(&str, &Piece)], color: bool) -> String {
    let mut out = " ".repeat(indent);
    let mut run: Option<&str> = None;
    for (sep, p) in row {
        let style = p.style.filter(|_| color);
        if run.is_some() && style != run {
            out.push_str("\x1b[0m");
            run = None;
        }
        out.push_str(sep);
        if let Some(code) = style
            && run.is_none()
        {
            out.push_str(&format!("\x1b[{code}m"));
            run = Some(code);
        }
        out.push_str(&p.text);
    }
    if run.is_some() {
        out.push_str("\x1b[0m");
    }
    out
}

/// A leg line: `10:02:11.250 #3   token-response ` (time, attempt, leg),
/// then its fields, two spaces apart; wrapped fields continue under the
/// first one.
fn leg(
    time: OffsetDateTime,
    attempt: Option<u64>,
    name: &str,
    fields: Vec<Piece>,
    o: LiveLogOptions,
) -> Line {
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    );
    let attempt = attempt.map_or_else(|| "--".to_owned(), |a| format!("#{a}"));
    Line {
        indent: 0,
        hang: leg_hang(o),
        head: vec![
            painted("", DIM, time),
            piece(" ", format!("{attempt:<4}")),
            painted(" ", BOLD, format!("{name:<15}")),
        ],
        body: fields,
    }
}

/// The fields of a leg line.
struct Fields {
    pieces: Vec<Piece>,
    /// The columns of a wrapped row.
    room: usize,
    options: LiveLogOptions,
}

impl Fields {
    fn new(o: LiveLogOptions) -> Fields {
        Fields {
            pieces: Vec::new(),
            room: o.width.saturating_sub(leg_hang(o)),
            options: o,
        }
    }

    /// What separates the next field from the one before (the head ends
    /// with its padding, one space away).
    fn sep(&self) -> &'static str {
        if self.pieces.is_empty() { " " } else { "  " }
    }

    fn add(&mut self, text: impl AsRef<str>) {
        let pieces = field(self.sep(), text.as_ref(), None, self.room);
        self.pieces.extend(pieces);
    }

    fn paint(&mut self, style: &'static str, text: impl AsRef<str>) {
        let pieces = field(self.sep(), text.as_ref(), Some(style), self.room);
        self.pieces.extend(pieces);
    }

    /// Items one space apart (token fingerprints), each its own piece.
    fn list(&mut self, items: &[String]) {
        for (i, item) in items.iter().enumerate() {
            let sep = if i == 0 { self.sep() } else { " " };
            self.pieces.push(piece(sep, item));
        }
    }

    /// `label` and a text that wraps between its words (an IdP's description).
    fn prose(&mut self, label: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.add(label);
            self.pieces.extend(words(text, None));
        }
    }

    /// `label value` (or the value alone), when there is a value.
    fn labelled(&mut self, label: &str, value: Option<&str>) {
        match value {
            Some(v) if label.is_empty() => self.add(v),
            Some(v) => self.add(format!("{label} {v}")),
            None => {}
        }
    }

    /// `→ https://app.example.com/callback`, shortened in the middle by
    /// default when it would not fit on a row of its own.
    fn url(&mut self, label: &str, url: Option<&str>) {
        if let Some(url) = url {
            let url = if self.options.verbose {
                Cow::Borrowed(url)
            } else {
                elide_middle(url, self.room.saturating_sub(columns(label) + 1))
            };
            // Never split from its label: whole with --verbose, even if wider than a row.
            self.pieces
                .push(piece(self.sep(), format!("{label} {url}")));
        }
    }

    fn line(self, time: OffsetDateTime, attempt: Option<u64>, name: &str) -> Line {
        leg(time, attempt, name, self.pieces, self.options)
    }
}

/// Where a leg's wrapped fields start: under the first field, unless that
/// leaves too little room.
fn leg_hang(o: LiveLogOptions) -> usize {
    if o.width >= HEAD_WIDTH + MIN_FIELDS_WIDTH {
        HEAD_WIDTH
    } else {
        DETAIL_INDENT
    }
}

/// `https://app.example.com/sig…/callback`: the start (scheme, host) and the
/// end kept, the middle elided when the text is wider than `room`.
fn elide_middle(text: &str, room: usize) -> Cow<'_, str> {
    let count = text.chars().count();
    if count <= room || room < 16 {
        return Cow::Borrowed(text);
    }
    let keep = room - 1;
    let tail = keep / 3;
    let start: String = text.chars().take(keep - tail).collect();
    let end: String = text.chars().skip(count - tail).collect();
    Cow::Owned(format!("{start}…{end}"))
}

/// A GUID (a client id, a tenant id, an audience) as its first group,
/// `11111111-…`, unless `--verbose`: enough to tell apps apart at a glance,
/// while `--verbose` and the JSON lines keep it whole. Anything else as is.
fn short_id(value: &str, o: LiveLogOptions) -> Cow<'_, str> {
    if o.verbose || !is_guid(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("{}-…", &value[..8]))
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

// === legs ===

fn authorize(e: &AuthorizeEvent, o: LiveLogOptions) -> Line {
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    f.add(format!("client {}", short_id(&e.client_id, o)));
    let mut where_ = e.provider.to_owned();
    let tenant = e.tenant.as_deref().map(|t| short_id(t, o));
    for part in [e.version, tenant.as_deref(), e.policy.as_deref()]
        .into_iter()
        .flatten()
    {
        where_.push(' ');
        where_.push_str(part);
    }
    f.add(where_);
    match e.via {
        Some("par") => f.add("via PAR"),
        Some("request_object") => f.add("via request object"),
        Some(other) => f.add(format!("via {other}")),
        None => {}
    }
    f.url("→", e.redirect_uri.as_deref());
    f.labelled("mode", e.response_mode.as_deref());
    f.labelled("pkce", e.pkce_method.as_deref());
    f.labelled("state", e.state.as_deref());
    if o.verbose {
        f.labelled("response_type", Some(&e.response_type));
        f.labelled("scope", e.scope.as_deref());
        f.labelled("nonce", e.nonce.as_deref());
    }
    if let Some(note) = &e.via_note {
        f.paint(YELLOW, format!("({note})"));
    }
    f.line(e.time, Some(e.attempt.0), "authorize")
}

fn code(e: &CodeEvent, o: LiveLogOptions) -> Line {
    let leg = if e.error.is_some() {
        "authorize-error"
    } else {
        "code"
    };
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    client(&mut f, e.client_id.as_deref(), o);
    if let Some(error) = &e.error {
        let mut text = error.clone();
        for c in &e.error_codes {
            text.push(' ');
            text.push_str(c);
        }
        f.paint(RED, text);
    }
    f.labelled("", e.code.as_deref());
    f.url("→", e.redirect_to.as_deref());
    let mut how = vec![
        e.mode.to_owned(),
        format!("paired by {}", e.pairing.as_str()),
    ];
    if let Some(d) = e.since_authorize {
        how.push(format!("{} after authorize", human_duration(d)));
    }
    f.add(format!("({})", how.join(", ")));
    if o.verbose {
        f.labelled("state", e.state.as_deref());
        f.labelled("iss", e.iss.as_deref());
        f.prose("description", e.error_description.as_deref());
    }
    f.line(e.time, e.attempt.map(|a| a.0), leg)
}

fn client(f: &mut Fields, client_id: Option<&str>, o: LiveLogOptions) {
    if let Some(id) = client_id {
        f.add(format!("client {}", short_id(id, o)));
    }
}

/// How a token line names a grant other than the code grant: `refresh`,
/// `device code`, …; an unknown one by name, said to be unknown.
fn grant_label(grant_type: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(match grant_type {
        "authorization_code" => return None,
        "refresh_token" => "refresh",
        "client_credentials" => "client_credentials",
        "password" => "password (ROPC)",
        DEVICE_CODE => "device code poll",
        JWT_BEARER => "jwt-bearer",
        TOKEN_EXCHANGE => "token-exchange",
        other => {
            return Some(Cow::Owned(format!(
                "grant_type {other} (not a grant authlens knows)"
            )));
        }
    }))
}

fn token(e: &TokenEvent, o: LiveLogOptions) -> Line {
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    client(&mut f, e.client_id.as_deref(), o);
    // Another grant than the code grant: named, with its scope (what a
    // refresh or a client_credentials call is judged on).
    let other_grant = e
        .grant_type
        .as_deref()
        .filter(|_| e.code.is_none())
        .and_then(grant_label);
    let scope_shown = other_grant.is_some();
    if let Some(label) = other_grant {
        f.paint(CYAN, label);
    }
    if let Some(credential) = &e.grant_credential {
        match e.grant_credential_format {
            Some(format) => f.add(format!("{credential} ({format})")),
            None => f.add(credential.clone()),
        }
    }
    if e.pending_before > 0 {
        let n = e.pending_before;
        f.add(format!(
            "after {n} authorization_pending poll{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if let Some(code) = &e.code {
        match e.code_age {
            Some(age) => f.add(format!("{code} (age {})", human_duration(age))),
            None => f.add(code.clone()),
        }
    }
    f.add(e.method.clone());
    if !e.client_auth.is_empty() {
        f.labelled("auth", Some(&e.client_auth.join("+")));
    }
    f.labelled("pkce", e.code_verifier.as_deref());
    if scope_shown {
        f.labelled("scope", e.scope.as_deref());
    }
    if o.verbose {
        f.url("endpoint", Some(&e.endpoint));
        f.labelled("content-type", e.content_type.as_deref());
        f.labelled("grant_type", e.grant_type.as_deref());
        f.url("redirect_uri", e.redirect_uri.as_deref());
        if !scope_shown {
            f.labelled("scope", e.scope.as_deref());
        }
    }
    f.line(e.time, e.attempt.map(|a| a.0), "token")
}

fn token_response(e: &TokenResponseEvent, o: LiveLogOptions) -> Line {
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    client(&mut f, e.client_id.as_deref(), o);
    let mut status = e.status.to_string();
    if let Some(error) = &e.error {
        status.push(' ');
        status.push_str(error);
    }
    for c in &e.error_codes {
        status.push(' ');
        status.push_str(c);
    }
    f.paint(if e.failed { RED } else { GREEN }, status);
    f.list(&e.tokens);
    if let Some(d) = e.elapsed {
        f.add(format!("({})", human_duration(d)));
    }
    if o.verbose {
        f.labelled("scope", e.scope.as_deref());
        f.labelled("expires_in", e.expires_in.as_deref());
        f.labelled("trace_id", e.trace_id.as_deref());
        f.labelled("correlation_id", e.correlation_id.as_deref());
        f.prose("description", e.error_description.as_deref());
    }
    f.line(e.time, e.attempt.map(|a| a.0), "token-response")
}

/// The first `authorization_pending` answer to a device-code poll: the user
/// has not finished signing in yet. Later ones are counted, not shown.
fn pending_poll(e: &TokenResponseEvent, o: LiveLogOptions) -> Line {
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    client(&mut f, e.client_id.as_deref(), o);
    let mut status = format!("{} authorization_pending", e.status);
    for c in &e.error_codes {
        status.push(' ');
        status.push_str(c);
    }
    f.paint(YELLOW, status);
    f.add(
        "waiting for the user to finish signing in (normal; further polls are counted, not shown)",
    );
    f.line(e.time, e.attempt.map(|a| a.0), "device-poll")
}

/// The device authorization request and its answer: the user code and
/// where to type it, the code's lifetime and the polling interval.
fn device_authorization(e: &DeviceAuthorizationEvent, o: LiveLogOptions) -> Line {
    let mut f = Fields::new(o);
    f.add(e.host.clone());
    client(&mut f, e.client_id.as_deref(), o);
    if let Some(status) = e.status {
        let mut text = status.to_string();
        if let Some(error) = &e.error {
            text.push(' ');
            text.push_str(error);
        }
        for c in &e.error_codes {
            text.push(' ');
            text.push_str(c);
        }
        f.paint(if e.failed { RED } else { GREEN }, text);
    }
    f.labelled("", e.device_code.as_deref());
    f.labelled("user_code", e.user_code.as_deref());
    f.url("→", e.verification_uri.as_deref());
    if let Some(secs) = e.expires_in {
        f.add(format!("expires_in {secs} s"));
    }
    if let Some(secs) = e.interval {
        f.add(format!("interval {secs} s"));
    }
    if let Some(note) = &e.note {
        f.paint(YELLOW, note);
    }
    if o.verbose {
        f.url("endpoint", Some(&e.endpoint));
        f.labelled("scope", e.scope.as_deref());
        f.prose("description", e.error_description.as_deref());
    }
    f.line(e.time, None, "device-auth")
}

/// A detail under a leg (`      tokens: …`), its parts two spaces apart.
fn detail(label: &str, parts: Vec<Piece>) -> Line {
    Line {
        indent: DETAIL_INDENT,
        hang: DETAIL_INDENT + columns(label) + 1,
        head: vec![painted("", DIM, label)],
        body: parts,
    }
}

/// Under a token response: by default one line saying who the tokens are
/// for and until when; with `--verbose`, each token's header and claims.
fn token_claims(e: &TokenResponseEvent, o: LiveLogOptions) -> Vec<Line> {
    if e.decoded.is_empty() {
        return Vec::new();
    }
    let unverified = || painted("  ", DIM, "(signature not verified)");
    if !o.verbose {
        let label = "tokens:";
        let room = o.width.saturating_sub(DETAIL_INDENT + columns(label) + 1);
        let mut parts: Vec<Piece> = token_summary(&e.decoded, e.time, o)
            .iter()
            .flat_map(|part| field("  ", part, None, room))
            .collect();
        parts.push(unverified());
        parts[0].sep = " ";
        return vec![detail(label, parts)];
    }
    let mut lines = Vec::new();
    for d in &e.decoded {
        let mut head = Fields::new(o);
        match &d.jwt {
            Ok(jwt) => {
                head.add("JWT");
                head.labelled("alg", jwt.alg.as_deref());
                head.labelled("kid", jwt.kid.as_deref());
                head.labelled("typ", jwt.typ.as_deref());
                head.pieces.push(unverified());
                lines.push(token_line(&d.shown, head.pieces));
                lines.push(Line {
                    indent: DETAIL_INDENT + 2,
                    hang: DETAIL_INDENT + 4,
                    head: Vec::new(),
                    body: claims(jwt).into_iter().map(|c| piece("  ", c)).collect(),
                });
            }
            Err(err) => {
                head.paint(YELLOW, format!("cannot read: {err}"));
                lines.push(token_line(&d.shown, head.pieces));
            }
        }
    }
    lines
}

/// `      id_token#e119ca  JWT  alg RS256 …`
fn token_line(shown: &str, mut parts: Vec<Piece>) -> Line {
    for p in &mut parts {
        p.sep = "  ";
    }
    Line {
        indent: DETAIL_INDENT,
        hang: DETAIL_INDENT + 2,
        head: vec![piece("", shown)],
        body: parts,
    }
}

/// `sub 8kq…`, `aud 1111… (id_token), https://graph… (access_token)`,
/// `expires 11:00:00 (in 60 min)`: the user (the id_token's subject), who
/// each token is for, and when the access token (else the id_token) expires.
fn token_summary(decoded: &[DecodedToken], now: OffsetDateTime, o: LiveLogOptions) -> Vec<String> {
    let readable: Vec<(&str, &Jwt)> = decoded
        .iter()
        .filter_map(|d| d.jwt.as_ref().ok().map(|jwt| (d.kind, jwt)))
        .collect();
    let first = |kinds: [&str; 2], pick: &dyn Fn(&Jwt) -> bool| {
        kinds.into_iter().find_map(|kind| {
            readable
                .iter()
                .find(|(k, jwt)| *k == kind && pick(jwt))
                .map(|(_, jwt)| *jwt)
        })
    };
    let mut parts = Vec::new();
    if let Some(sub) =
        first(["id_token", "access_token"], &|j| j.sub.is_some()).and_then(|j| j.sub.as_deref())
    {
        parts.push(format!("sub {sub}"));
    }
    let audiences: Vec<String> = readable
        .iter()
        .filter(|(_, jwt)| !jwt.aud.is_empty())
        .map(|(kind, jwt)| {
            let aud: Vec<Cow<'_, str>> = jwt.aud.iter().map(|a| short_id(a, o)).collect();
            format!("{} ({kind})", aud.join(","))
        })
        .collect();
    if !audiences.is_empty() {
        parts.push(format!("aud {}", audiences.join(", ")));
    }
    if let Some(exp) = first(["access_token", "id_token"], &|j| j.exp.is_some()).and_then(|j| j.exp)
    {
        let left = exp - now;
        let when = if left.is_negative() {
            format!("expired {} ago", human_duration(left.unsigned_abs()))
        } else {
            format!("in {}", human_duration(left.unsigned_abs()))
        };
        parts.push(format!(
            "expires {} ({when})",
            crate::oauth::event::clock(exp.to_offset(now.offset()))
        ));
    }
    for d in decoded {
        if let Err(err) = &d.jwt {
            parts.push(format!("{} unreadable ({err})", d.kind));
        }
    }
    parts
}

/// Every claim a developer checks, times in RFC 3339.
fn claims(jwt: &Jwt) -> Vec<String> {
    let time = |t: Option<OffsetDateTime>| t.map(crate::oauth::event::rfc3339);
    let list = |values: &[String]| (!values.is_empty()).then(|| values.join(","));
    [
        ("iss", jwt.iss.clone()),
        ("aud", list(&jwt.aud)),
        ("tid", jwt.tid.clone()),
        ("oid", jwt.oid.clone()),
        ("sub", jwt.sub.clone()),
        ("scp", jwt.scp.clone()),
        ("roles", list(&jwt.roles)),
        ("exp", time(jwt.exp)),
        ("iat", time(jwt.iat)),
        ("nbf", time(jwt.nbf)),
        ("nonce", jwt.nonce.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| format!("{name} {v}")))
    .collect()
}

// === findings and verdicts ===

/// `    ✖ error code-reused [code]: message`, then its fix (unless already
/// shown for this exchange) and, with `--verbose`, its evidence.
fn finding(f: &Finding, show_fix: bool, o: LiveLogOptions) -> Vec<Line> {
    // Caused on purpose by --fault: never shown as the app's bug.
    let (mark, colour) = match (f.severity, f.injected.is_some()) {
        (Severity::Error, true) => ("⚑ injected error", CYAN),
        (Severity::Warning, true) => ("⚑ injected warning", CYAN),
        (Severity::Error, false) => ("✖ error", RED),
        (Severity::Warning, false) => ("▲ warning", YELLOW),
        (Severity::Info, _) => ("• info", CYAN),
    };
    let field = f
        .field
        .as_deref()
        .map(|x| format!(" [{x}]"))
        .unwrap_or_default();
    let mut lines = vec![Line {
        indent: FINDING_INDENT,
        hang: DETAIL_INDENT,
        head: vec![
            painted("", colour, mark),
            painted(" ", BOLD, f.rule.id()),
            piece("", format!("{field}:")),
        ],
        body: words(&f.message, None).collect(),
    }];
    if show_fix {
        lines.push(detail("fix:", words(&f.fix, None).collect()));
    }
    if o.verbose && !f.evidence.is_empty() {
        lines.push(detail("evidence:", evidence(&f.evidence)));
    }
    lines
}

/// The evidence as compact JSON, one piece per member so that it wraps
/// between members and still reads as JSON.
fn evidence(evidence: &serde_json::Map<String, serde_json::Value>) -> Vec<Piece> {
    let last = evidence.len().saturating_sub(1);
    evidence
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let member = format!("{}:{value}", serde_json::Value::from(key.as_str()));
            let open = if i == 0 { "{" } else { "" };
            let close = if i == last { "}" } else { "," };
            piece(
                if i == 0 { " " } else { "" },
                format!("{open}{member}{close}"),
            )
        })
        .collect()
}

fn verdict(v: &Verdict, o: LiveLogOptions) -> Line {
    let (mark, colour) = match (v.outcome, v.errors + v.warnings) {
        (Outcome::SignedIn, 0) => ("✔", GREEN),
        (Outcome::SignedIn, _) => ("✔", YELLOW),
        (Outcome::Failed, _) if v.injected.is_some() => ("⚑", CYAN),
        (Outcome::Failed, _) => ("✖", RED),
    };
    let summary = if o.verbose {
        Cow::Borrowed(v.summary.as_str())
    } else {
        compact(&v.summary)
    };
    let mut body: Vec<Piece> = std::iter::once(painted(" ", colour, mark))
        .chain(words(&summary, Some(colour)))
        .collect();
    if let Some(injected) = &v.injected {
        let fault = &injected.fault;
        body.push(painted(
            " ",
            CYAN,
            match v.outcome {
                Outcome::Failed => {
                    format!("(caused on purpose by --fault {fault}, not an app bug)")
                }
                Outcome::SignedIn => format!("(--fault {fault} at work)"),
            },
        ));
    }
    if let Some(d) = v.duration {
        body.push(piece(
            "  ",
            format!("({} since authorize)", human_duration(d)),
        ));
    }
    leg(v.time, v.attempt.map(|a| a.0), "verdict", body, o)
}

/// The verdict naming its cause without repeating it:
/// `sign-in failed at /token: AADSTS54005 (code-reused: code first redeemed
/// at 10:02:11)` becomes `… AADSTS54005 (code-reused)`, the finding above
/// it saying the rest. A summary of any other shape is shown as it is.
fn compact(summary: &str) -> Cow<'_, str> {
    if !summary.ends_with(')') {
        return Cow::Borrowed(summary);
    }
    Rule::ALL
        .into_iter()
        .filter_map(|rule| {
            let at = summary.find(&format!(" ({}: ", rule.id()))?;
            Some((at, rule))
        })
        .min_by_key(|(at, _)| *at)
        .map_or(Cow::Borrowed(summary), |(at, rule)| {
            Cow::Owned(format!("{} ({})", &summary[..at], rule.id()))
        })
}

#[cfg(test)]
mod tests;

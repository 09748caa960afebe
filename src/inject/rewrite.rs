//! The request-rewriting faults, as pure edits of a redemption: its method,
//! URL, headers and form. Each edit says what it did, or why it cannot
//! apply; the raw text of every parameter it does not touch is kept as sent.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Uri};

use crate::oauth::params::{decode_component, encode_component};
use crate::oauth::provider::Endpoint;
use crate::oauth::secret::SecretPolicy;

/// A code redemption on its way to the IdP, open for editing.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The form's pairs as sent (raw, still encoded), in order.
    pub form: Vec<(String, Option<String>)>,
    /// Set when the parameters no longer travel as a form (`json-body`,
    /// `get-token`): the body to send instead.
    pub replaced_body: Option<String>,
}

/// What one edit did.
pub type Edit = Result<String, String>;

impl Redemption {
    pub fn new(method: Method, uri: Uri, headers: HeaderMap, body: &str) -> Redemption {
        let form = body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (pair.to_string(), None),
            })
            .collect();
        Redemption {
            method,
            uri,
            headers,
            form,
            replaced_body: None,
        }
    }

    /// The body to send.
    pub fn body(&self) -> String {
        match &self.replaced_body {
            Some(body) => body.clone(),
            None => encode_form(&self.form),
        }
    }

    /// The decoded value of the first `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.position(name)
            .map(|i| decode_component(self.form[i].1.as_deref().unwrap_or_default()))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.form
            .iter()
            .position(|(n, _)| decode_component(n) == name)
    }

    fn set(&mut self, name: &str, value: &str) {
        if let Some(i) = self.position(name) {
            self.form[i].1 = Some(encode_component(value));
        }
    }

    // === the faults ===

    pub fn redirect_mismatch(&mut self) -> Edit {
        let Some(uri) = self.param("redirect_uri") else {
            return Err("the redemption sends no redirect_uri".into());
        };
        let changed = match uri.strip_suffix('/') {
            Some(without) => without.to_string(),
            None => format!("{uri}/"),
        };
        self.set("redirect_uri", &changed);
        Ok(format!("redirect_uri {uri} -> {changed}"))
    }

    pub fn wrong_verifier(&mut self, secrets: &SecretPolicy) -> Edit {
        let Some(old) = self.param("code_verifier") else {
            return Err("the redemption sends no code_verifier (no PKCE)".into());
        };
        let new = loop {
            let v = random_unreserved(43);
            if v != old {
                break v;
            }
        };
        self.set("code_verifier", &new);
        Ok(format!(
            "code_verifier {} -> {} (valid, but not the one the challenge was made from)",
            secrets.show("code_verifier", &old),
            secrets.show("code_verifier", &new)
        ))
    }

    pub fn drop_param(&mut self, name: &str) -> Edit {
        let before = self.form.len();
        self.form.retain(|(n, _)| decode_component(n) != name);
        if self.form.len() == before {
            return Err(format!("the redemption sends no {name}"));
        }
        Ok(format!("removed {name}"))
    }

    pub fn duplicate_param(&mut self, name: &str) -> Edit {
        let Some(i) = self.position(name) else {
            return Err(format!("the redemption sends no {name}"));
        };
        let copy = self.form[i].clone();
        self.form.push(copy);
        Ok(format!("sent {name} twice"))
    }

    pub fn unknown_code(&mut self, secrets: &SecretPolicy) -> Edit {
        let Some(old) = self.param("code") else {
            return Err("the redemption sends no code".into());
        };
        let new = random_unreserved(old.len().clamp(32, 512));
        self.set("code", &new);
        Ok(format!(
            "{} -> {}, a code the IdP never issued",
            secrets.show("code", &old),
            secrets.show("code", &new)
        ))
    }

    pub fn wrong_tenant(&mut self) -> Edit {
        let endpoint = self.entra_endpoint()?;
        let Some(tenant) = endpoint.tenant.clone() else {
            return Err("the token URL has no tenant segment".into());
        };
        let other = match tenant.to_ascii_lowercase().as_str() {
            "common" | "organizations" => "consumers",
            "consumers" => "organizations",
            _ => "common",
        };
        let path = self.uri.path();
        let Some(rest) = path.strip_prefix(&format!("/{tenant}/")) else {
            return Err("the tenant is not the first path segment".into());
        };
        let new_path = format!("/{other}/{rest}");
        self.uri = with_path(&self.uri, &new_path);
        Ok(format!("redeemed at /{other} instead of /{tenant}"))
    }

    pub fn wrong_version(&mut self) -> Edit {
        self.entra_endpoint()?;
        let path = self.uri.path().to_string();
        let (from, to) = if path.contains("/oauth2/v2.0/token") {
            ("/oauth2/v2.0/token", "/oauth2/token")
        } else if path.contains("/oauth2/token") {
            ("/oauth2/token", "/oauth2/v2.0/token")
        } else {
            return Err("the token URL is neither …/oauth2/v2.0/token nor …/oauth2/token".into());
        };
        self.uri = with_path(&self.uri, &path.replacen(from, to, 1));
        Ok(format!("redeemed at {to} instead of {from}"))
    }

    fn entra_endpoint(&self) -> Result<Endpoint, String> {
        let endpoint = Endpoint::from_uri(&self.uri);
        match endpoint.provider {
            p if p.is_entra() => Ok(endpoint),
            other => Err(format!("Entra only, and this IdP is {other}")),
        }
    }

    pub fn json_body(&mut self) -> Edit {
        let mut object = serde_json::Map::new();
        for (n, v) in &self.form {
            object
                .entry(decode_component(n))
                .or_insert_with(|| decode_component(v.as_deref().unwrap_or_default()).into());
        }
        self.replaced_body = Some(serde_json::Value::Object(object).to_string());
        self.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok("sent the parameters as a JSON body instead of a form".into())
    }

    pub fn get_token(&mut self) -> Edit {
        let form = encode_form(&self.form);
        let query = match self.uri.query() {
            Some(q) if !q.is_empty() => format!("{q}&{form}"),
            _ => form,
        };
        let path = format!("{}?{query}", self.uri.path());
        self.uri = with_path(&self.uri, &path);
        self.method = Method::GET;
        self.form.clear();
        self.replaced_body = Some(String::new());
        self.headers.remove(header::CONTENT_TYPE);
        self.headers.remove(header::CONTENT_LENGTH);
        Ok("sent the redemption as a GET with its parameters in the query string".into())
    }

    pub fn strip_origin(&mut self) -> Edit {
        match self.headers.remove(header::ORIGIN) {
            Some(origin) => Ok(format!(
                "removed the Origin header ({})",
                origin.to_str().unwrap_or("?")
            )),
            None => Err("the redemption has no Origin header (not a browser redemption)".into()),
        }
    }

    pub fn add_origin(&mut self) -> Edit {
        if self.headers.contains_key(header::ORIGIN) {
            return Err("the redemption already has an Origin header".into());
        }
        let origin = self
            .param("redirect_uri")
            .and_then(|r| r.parse::<Uri>().ok())
            .and_then(|u| Some(format!("{}://{}", u.scheme_str()?, u.authority()?)))
            .unwrap_or_else(|| "https://app.authlens.invalid".into());
        let Ok(value) = HeaderValue::from_str(&origin) else {
            return Err(format!("{origin:?} cannot be a header"));
        };
        self.headers.insert(header::ORIGIN, value);
        Ok(format!("added Origin: {origin}"))
    }
}

fn encode_form(form: &[(String, Option<String>)]) -> String {
    form.iter()
        .map(|(n, v)| match v {
            Some(v) => format!("{n}={v}"),
            None => n.clone(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `uri` with another path and query (`path_and_query`).
fn with_path(uri: &Uri, path_and_query: &str) -> Uri {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// `len` random characters of `[A-Za-z0-9-._~]` (what codes and verifiers
/// are made of).
pub fn random_unreserved(len: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    (0..len)
        .map(|_| SET[usize::from(rand::random::<u8>()) % SET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "grant_type=authorization_code&code=abcdefghijklmnop1234&redirect_uri=https%3A%2F%2Fapp.test%2Fcallback&client_id=c1&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&x=a+b";

    fn redemption(url: &str) -> Redemption {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        Redemption::new(Method::POST, url.parse().unwrap(), headers, FORM)
    }

    const ENTRA: &str =
        "https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/oauth2/v2.0/token";

    #[test]
    fn untouched_pairs_keep_their_raw_text() {
        let mut r = redemption(ENTRA);
        assert_eq!(r.body(), FORM);
        r.redirect_mismatch().unwrap();
        assert_eq!(
            r.body(),
            FORM.replace("callback&", "callback%2F&"),
            "only redirect_uri changes"
        );
        r.redirect_mismatch().unwrap();
        assert_eq!(
            r.param("redirect_uri").unwrap(),
            "https://app.test/callback"
        );
    }

    #[test]
    fn parameters_are_dropped_duplicated_and_replaced() {
        let secrets = SecretPolicy::default();
        let mut r = redemption(ENTRA);
        r.drop_param("code_verifier").unwrap();
        assert!(r.param("code_verifier").is_none());
        assert!(r.drop_param("code_verifier").is_err());
        assert!(r.wrong_verifier(&secrets).is_err(), "no verifier left");
        r.duplicate_param("code").unwrap();
        assert_eq!(r.body().matches("code=abcdefghijklmnop1234").count(), 2);
        let mut r = redemption(ENTRA);
        let note = r.wrong_verifier(&secrets).unwrap();
        assert!(!note.contains("dBjft"), "secrets are fingerprinted: {note}");
        let v = r.param("code_verifier").unwrap();
        assert_eq!(v.len(), 43);
        assert_eq!(crate::oauth::pkce::check_verifier(&v), Ok(()));
        r.unknown_code(&secrets).unwrap();
        assert_ne!(r.param("code").unwrap(), "abcdefghijklmnop1234");
    }

    #[test]
    fn entra_endpoints_change_tenant_and_version() {
        let mut r = redemption(ENTRA);
        r.wrong_tenant().unwrap();
        assert_eq!(
            r.uri.to_string(),
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        r.wrong_tenant().unwrap();
        assert!(r.uri.path().starts_with("/consumers/"));
        r.wrong_version().unwrap();
        assert_eq!(r.uri.path(), "/consumers/oauth2/token");
        r.wrong_version().unwrap();
        assert_eq!(r.uri.path(), "/consumers/oauth2/v2.0/token");

        let mut okta = redemption("https://dev-1.okta.com/oauth2/v1/token");
        let why = okta.wrong_tenant().unwrap_err();
        assert!(why.contains("Entra only"), "{why}");
        assert!(okta.wrong_version().is_err());
    }

    #[test]
    fn the_shape_of_the_request_changes() {
        let mut r = redemption(ENTRA);
        r.json_body().unwrap();
        let json: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(json["redirect_uri"], "https://app.test/callback");
        assert_eq!(json["x"], "a b");
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");

        let mut r = redemption(ENTRA);
        r.get_token().unwrap();
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.body(), "");
        assert_eq!(r.uri.query().unwrap(), FORM);
        assert!(!r.headers.contains_key(header::CONTENT_TYPE));

        let mut r = redemption(ENTRA);
        assert!(r.strip_origin().is_err());
        r.add_origin().unwrap();
        assert_eq!(r.headers[header::ORIGIN], "https://app.test");
        assert!(r.add_origin().is_err());
        r.strip_origin().unwrap();
        assert!(!r.headers.contains_key(header::ORIGIN));
    }
}

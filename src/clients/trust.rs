//! Trust files handed to clients: the authlens CA as PEM and DER, a bundle
//! of the system CAs plus the authlens CA for variables that replace a
//! client's whole trust list, and a PKCS#12 trust store for Java. Only
//! public certificates are written here; the CA key never leaves `--certs`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use super::env::{BUNDLE_VARIABLES, JAVA_TRUSTSTORE_PASSWORD, TrustPaths};

/// The Node.js preload `authlens run` passes through NODE_OPTIONS.
pub const NODE_PRELOAD: &str = include_str!("node_preload.js");

/// Alias of the authlens CA in PKCS#12 trust stores (and for `keytool`).
pub const CA_ALIAS: &str = "authlens-ca";

/// Why a trust file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TrustFileError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a temporary directory for the trust files: {0}")]
    TempDir(std::io::Error),
    #[error("cannot build the PKCS#12 trust store: {0}")]
    Pkcs12(#[from] p12_keystore::error::Error),
}

/// The certificates a client should trust: the system's, the ones the user
/// already pointed the trust variables at, and the authlens CA last.
#[derive(Debug, Default)]
pub struct TrustSet {
    certs: Vec<CertificateDer<'static>>,
    /// How many came from the system store.
    pub system: usize,
    /// How many came from files named by the user's own trust variables.
    pub inherited: usize,
    /// Problems reading the system store or the user's files (not fatal).
    pub warnings: Vec<String>,
}

impl TrustSet {
    /// Reads the system CAs (rustls-native-certs: the OpenSSL locations on
    /// Linux, honouring SSL_CERT_FILE/SSL_CERT_DIR; the keychain on macOS;
    /// the certificate store on Windows), then every PEM file named by the
    /// trust variables in `current` so a corporate CA the user already
    /// relies on keeps working, then adds `ca`.
    pub fn gather(ca: &CertificateDer<'_>, current: impl Fn(&str) -> Option<OsString>) -> Self {
        let mut set = TrustSet::default();
        let native = rustls_native_certs::load_native_certs();
        for e in native.errors {
            set.warnings.push(format!("reading the system CAs: {e}"));
        }
        for cert in native.certs {
            if set.push(cert) {
                set.system += 1;
            }
        }
        if set.system == 0 {
            set.warnings.push(
                "no system CA certificates found: only hosts authlens intercepts will verify"
                    .into(),
            );
        }
        for name in BUNDLE_VARIABLES {
            let Some(path) = current(name).filter(|p| !p.is_empty()) else {
                continue;
            };
            let path = PathBuf::from(path);
            match crate::tls::read_pem_certs(&path) {
                Ok(certs) => {
                    for cert in certs {
                        if set.push(cert) {
                            set.inherited += 1;
                        }
                    }
                }
                Err(e) => set.warnings.push(format!("{name}: {e}")),
            }
        }
        set.push(ca.clone().into_owned());
        set
    }

    /// Only the authlens CA.
    pub fn only(ca: &CertificateDer<'_>) -> Self {
        let mut set = TrustSet::default();
        set.push(ca.clone().into_owned());
        set
    }

    fn push(&mut self, cert: CertificateDer<'static>) -> bool {
        if self.certs.contains(&cert) {
            return false;
        }
        self.certs.push(cert);
        true
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// All certificates as one PEM bundle.
    pub fn to_pem(&self) -> String {
        self.certs.iter().map(|c| pem(c)).collect()
    }

    /// All certificates as a PKCS#12 trust store Java accepts (each a
    /// trusted-certificate entry; the authlens CA under [`CA_ALIAS`]).
    /// Certificates Java could not parse either are left out.
    pub fn to_pkcs12(&self, password: &str) -> Result<Vec<u8>, TrustFileError> {
        use p12_keystore::{Certificate, KeyStore, KeyStoreEntry};
        let mut store = KeyStore::new();
        let last = self.certs.len().saturating_sub(1);
        for (i, der) in self.certs.iter().enumerate() {
            let Ok(cert) = Certificate::from_der(der) else {
                continue;
            };
            let alias = if i == last {
                CA_ALIAS.to_string()
            } else {
                format!("system-{i:03}")
            };
            store.add_entry(&alias, KeyStoreEntry::Certificate(cert));
        }
        Ok(store.writer(password).write()?)
    }
}

/// A certificate in PEM form.
pub fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn write(path: &Path, contents: &[u8]) -> Result<(), TrustFileError> {
    fs::write(path, contents).map_err(|source| TrustFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The trust files of one `authlens run`, in a temporary directory removed
/// when this value is dropped (after the command has exited).
#[derive(Debug)]
pub struct TrustFiles {
    _dir: tempfile::TempDir,
    paths: TrustPaths,
}

impl TrustFiles {
    /// Writes the bundle, the Java trust store and the Node preload for `set`.
    pub fn create(set: &TrustSet) -> Result<TrustFiles, TrustFileError> {
        let dir = tempfile::Builder::new()
            .prefix("authlens-run-")
            .tempdir()
            .map_err(TrustFileError::TempDir)?;
        let paths = TrustPaths {
            bundle_pem: dir.path().join("authlens-bundle.pem"),
            java_truststore: dir.path().join("authlens-truststore.p12"),
            node_preload: dir.path().join("authlens-node-preload.js"),
        };
        write(&paths.bundle_pem, set.to_pem().as_bytes())?;
        write(
            &paths.java_truststore,
            &set.to_pkcs12(JAVA_TRUSTSTORE_PASSWORD)?,
        )?;
        write(&paths.node_preload, NODE_PRELOAD.as_bytes())?;
        Ok(TrustFiles { _dir: dir, paths })
    }

    pub fn paths(&self) -> &TrustPaths {
        &self.paths
    }
}

/// One file written by [`export`], with what it is for.
#[derive(Debug, Clone)]
pub struct ExportedFile {
    pub path: PathBuf,
    pub purpose: &'static str,
}

/// `authlens ca --export DIR`: the CA as PEM, as DER `.crt` (Windows and
/// macOS import), as a PKCS#12 trust store (Java `keytool`, password
/// `changeit`), and a bundle of the system CAs plus the CA (for
/// REQUESTS_CA_BUNDLE and friends, which replace the trust list).
pub fn export(
    dir: &Path,
    ca: &CertificateDer<'_>,
    bundle: &TrustSet,
) -> Result<Vec<ExportedFile>, TrustFileError> {
    fs::create_dir_all(dir).map_err(|source| TrustFileError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = [
        (
            "authlens-ca.pem",
            pem(ca).into_bytes(),
            "PEM: Linux trust stores, Firefox, curl --cacert, NODE_EXTRA_CA_CERTS",
        ),
        (
            "authlens-ca.crt",
            ca.to_vec(),
            "DER: double-click import on Windows and macOS",
        ),
        (
            "authlens-ca.p12",
            TrustSet::only(ca).to_pkcs12(JAVA_TRUSTSTORE_PASSWORD)?,
            "PKCS#12 trust store (password changeit): Java, keytool -importkeystore",
        ),
        (
            "authlens-bundle.pem",
            bundle.to_pem().into_bytes(),
            "system CAs + authlens CA: REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE",
        ),
    ];
    let mut written = Vec::new();
    for (name, contents, purpose) in files {
        let path = dir.join(name);
        write(&path, &contents)?;
        written.push(ExportedFile { path, purpose });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::CertificateAuthority;

    fn ca() -> (tempfile::TempDir, CertificateAuthority) {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(
            dir.path(),
            &crate::tls::provider(),
            crate::ca::OpenKey::Refuse,
        )
        .unwrap();
        (dir, ca)
    }

    #[test]
    fn pem_round_trips_and_matches_the_ca_file() {
        let (_dir, ca) = ca();
        let text = pem(ca.cert_der());
        assert_eq!(
            text,
            fs::read_to_string(ca.cert_path())
                .unwrap()
                .replace("\r\n", "\n")
        );
        assert!(text.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn the_bundle_holds_the_system_cas_inherited_files_and_the_ca_once() {
        let (dir, ca) = ca();
        let other = tempfile::tempdir().unwrap();
        let corporate = CertificateAuthority::load_or_create(
            other.path(),
            &crate::tls::provider(),
            crate::ca::OpenKey::Refuse,
        )
        .unwrap();
        let corporate_file = dir.path().join("corporate.pem");
        fs::write(&corporate_file, pem(corporate.cert_der())).unwrap();
        let empty_file = dir.path().join("empty.pem");
        fs::write(&empty_file, "no certificate here").unwrap();
        let set = TrustSet::gather(ca.cert_der(), |name| match name {
            "REQUESTS_CA_BUNDLE" | "CURL_CA_BUNDLE" => Some(corporate_file.clone().into()),
            "AWS_CA_BUNDLE" => Some("/nonexistent/bundle.pem".into()),
            "GIT_SSL_CAINFO" => Some(empty_file.clone().into()),
            _ => None,
        });
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("empty.pem") && w.contains("no usable PEM certificate")),
            "{:?}",
            set.warnings
        );
        assert_eq!(set.inherited, 1, "deduplicated");
        assert_eq!(set.len(), set.system + set.inherited + 1);
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("/nonexistent/bundle.pem"))
        );
        let bundle = set.to_pem();
        use rustls_pki_types::pem::PemObject;
        let parsed: Vec<_> = CertificateDer::pem_slice_iter(bundle.as_bytes())
            .map(Result::unwrap)
            .collect();
        assert_eq!(parsed.len(), set.len());
        assert_eq!(parsed.last().unwrap(), ca.cert_der());
        assert!(parsed.contains(corporate.cert_der()));
    }

    #[test]
    fn the_pkcs12_store_reads_back_with_the_ca_as_a_trusted_entry() {
        let (_dir, ca) = ca();
        let bytes = TrustSet::only(ca.cert_der()).to_pkcs12("changeit").unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &bytes,
            "changeit",
            // Strict drops certificates without the trusted attribute.
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        match store.entry(CA_ALIAS) {
            Some(p12_keystore::KeyStoreEntry::Certificate(cert)) => {
                assert_eq!(cert.as_der(), ca.cert_der().as_ref())
            }
            other => panic!("no trusted entry for the CA: {other:?}"),
        }
        assert!(
            p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                "wrong",
                p12_keystore::Pkcs12ImportPolicy::Relaxed
            )
            .is_err()
        );
    }

    #[test]
    fn export_writes_four_files() {
        let (dir, ca) = ca();
        let out = dir.path().join("export");
        let files = export(&out, ca.cert_der(), &TrustSet::only(ca.cert_der())).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "authlens-ca.pem",
                "authlens-ca.crt",
                "authlens-ca.p12",
                "authlens-bundle.pem"
            ]
        );
        assert_eq!(
            fs::read(out.join("authlens-ca.crt")).unwrap(),
            ca.cert_der().as_ref()
        );
    }
}

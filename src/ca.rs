//! The local certificate authority and the leaf certificates it mints.
//!
//! The CA is created once per certificate directory and reused on every later
//! run; its private key never leaves that directory (mode 0600). Leaf
//! certificates are minted per host on first contact and cached, all sharing
//! one P-256 key so minting is one signature and browsers can be told a single
//! SPKI hash. That key is kept beside the CA (also mode 0600), so another
//! authlens process (`authlens browser` joining a running proxy) can compute
//! the same hash. Nothing here does network IO.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate inside the certificate directory.
pub const CA_CERT_FILE: &str = "authlens-ca.pem";
/// File name of the CA private key inside the certificate directory.
pub const CA_KEY_FILE: &str = "authlens-ca-key.pem";
/// File name of the key shared by every leaf certificate.
pub const LEAF_KEY_FILE: &str = "authlens-leaf-key.pem";

/// How many hosts' leaf certificates are kept before the cache is reset.
const LEAF_CACHE_LIMIT: usize = 10_000;
/// Longest leaf validity browsers accept (CA/Browser Forum baseline).
const LEAF_VALIDITY_DAYS: i64 = 397;

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {path}: {source}{}", certs_hint(source, "read"))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}{}", certs_hint(source, "write to"))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--certs {dir} is a file, not a directory: name the directory that holds (or will hold) the CA"
    )]
    NotADirectory { dir: PathBuf },
    #[error(
        "{path} is not a usable authlens CA file ({reason}); fix or delete it (deleting both CA files makes authlens create a new CA, which clients must trust again)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "only one of {present} and {missing} exists; restore the missing file or delete the other to create a new CA"
    )]
    HalfPresent { present: PathBuf, missing: PathBuf },
    #[error(
        "{path} is readable by other users (mode {mode:03o}): whoever reads it can impersonate any HTTPS site to clients that trust this CA. Fix it with `chmod 600 {}`, or pass --allow-open-key to use it anyway", path.display()
    )]
    OpenKey { path: PathBuf, mode: u32 },
    #[error("cannot mint a certificate for {host:?}: {reason}")]
    Mint { host: String, reason: String },
    #[error(
        "no authlens CA in {dir} ({CA_CERT_FILE} is missing); pass --certs with the directory the proxy uses"
    )]
    Missing { dir: PathBuf },
}

/// Whether a private key that other users can read is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OpenKey {
    /// Refuse it ([`CaError::OpenKey`]), saying how to fix it.
    #[default]
    Refuse,
    /// Use it anyway (`--allow-open-key`), with a warning.
    Allow,
}

/// Points a permission problem at the flag that chose the directory.
fn certs_hint(error: &std::io::Error, access: &str) -> String {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        format!(" (--certs names the CA directory: pass one you can {access})")
    } else {
        String::new()
    }
}

/// The authlens certificate authority: loads or creates the CA and mints
/// cached leaf certificates for intercepted hosts.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_cert_der: CertificateDer<'static>,
    ca_not_after: OffsetDateTime,
    /// The CA's subject common name (what trust stores list it as).
    ca_name: String,
    cert_path: PathBuf,
    /// Shared by every leaf; kept in the certificate directory so every
    /// authlens process using that directory presents the same key.
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    minted: AtomicU64,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the CA from `dir`, creating the directory and a new CA when
    /// neither file exists. A present but unreadable or corrupt file is an
    /// error, never a reason to regenerate silently; so is a key other users
    /// can read, unless `open_key` allows it. A directory anyone can write
    /// to is only warned about (someone could replace the CA in it).
    pub fn load_or_create(
        dir: &Path,
        provider: &CryptoProvider,
        open_key: OpenKey,
    ) -> Result<Self, CaError> {
        not_a_file(dir)?;
        if let Some(warning) = open_directory_warning(dir) {
            tracing::warn!("{warning}");
        }
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let (cert_pem, key_pem) = match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                check_private(&key_path, open_key)?;
                (read(&cert_path)?, read(&key_path)?)
            }
            (false, false) => create_ca(dir, &cert_path, &key_path)?,
            (true, false) => {
                return Err(CaError::HalfPresent {
                    present: cert_path,
                    missing: key_path,
                });
            }
            (false, true) => {
                return Err(CaError::HalfPresent {
                    present: key_path,
                    missing: cert_path,
                });
            }
        };
        let leaf_key = load_or_create_leaf_key(&dir.join(LEAF_KEY_FILE), open_key)?;
        Self::from_pem(
            &cert_pem, &key_pem, leaf_key, &cert_path, &key_path, provider,
        )
    }

    /// Loads the CA from `dir` without ever creating one: for commands that
    /// join a proxy already running on that directory.
    pub fn load(dir: &Path, provider: &CryptoProvider, open_key: OpenKey) -> Result<Self, CaError> {
        not_a_file(dir)?;
        if !dir.join(CA_CERT_FILE).exists() {
            return Err(CaError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        Self::load_or_create(dir, provider, open_key)
    }

    /// Replaces the CA and the leaf key in `dir` with new ones. Every client
    /// that trusted the old CA must be given the new one.
    pub fn regenerate(dir: &Path, provider: &CryptoProvider) -> Result<Self, CaError> {
        for name in [CA_CERT_FILE, CA_KEY_FILE, LEAF_KEY_FILE] {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CaError::Write { path, source }),
            }
        }
        Self::load_or_create(dir, provider, OpenKey::Refuse)
    }

    fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        leaf_key: KeyPair,
        cert_path: &Path,
        key_path: &Path,
        provider: &CryptoProvider,
    ) -> Result<Self, CaError> {
        let corrupt = |path: &Path, reason: String| CaError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let ca_key = KeyPair::from_pem(key_pem)
            .map_err(|e| corrupt(key_path, format!("no valid private key: {e}")))?;
        let ca_cert_der = first_certificate(cert_pem)
            .ok_or_else(|| corrupt(cert_path, "no PEM certificate found".into()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca_cert_der)
            .map_err(|e| corrupt(cert_path, format!("certificate does not parse: {e}")))?;
        if parsed.public_key().raw != ca_key.subject_public_key_info().as_slice() {
            return Err(corrupt(
                key_path,
                format!(
                    "this key does not belong to the certificate in {}",
                    cert_path.display()
                ),
            ));
        }
        let ca_not_after = parsed.validity().not_after.to_datetime();
        let ca_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let issuer = Issuer::from_ca_cert_der(&ca_cert_der, ca_key)
            .map_err(|e| corrupt(cert_path, format!("not usable as an issuer: {e}")))?;

        let leaf_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = provider
            .key_provider
            .load_private_key(leaf_der)
            .map_err(|e| CaError::Mint {
                host: String::new(),
                reason: format!("leaf key not loadable: {e}"),
            })?;

        Ok(CertificateAuthority {
            issuer,
            ca_cert_der,
            ca_not_after,
            ca_name,
            cert_path: cert_path.to_path_buf(),
            leaf_key,
            signing_key,
            cache: Mutex::new(HashMap::new()),
            minted: AtomicU64::new(0),
        })
    }

    /// Path of the CA certificate (what clients must trust).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The CA certificate in DER form.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.ca_cert_der
    }

    /// The CA's subject common name (`authlens local CA 1a2b3c4d`).
    pub fn name(&self) -> &str {
        &self.ca_name
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.ca_not_after
    }

    /// SHA-256 of the CA certificate, as `AB:CD:…` (the form `openssl x509
    /// -fingerprint -sha256`, browsers and OS trust dialogs show).
    pub fn fingerprint_sha256(&self) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.ca_cert_der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// DER SubjectPublicKeyInfo of the key shared by every leaf certificate.
    pub fn leaf_spki_der(&self) -> Vec<u8> {
        self.leaf_key.subject_public_key_info()
    }

    /// Base64 of the SHA-256 of [`Self::leaf_spki_der`]: what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes.
    pub fn leaf_spki_sha256_base64(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(self.leaf_spki_der()))
    }

    /// How many leaf certificates have been minted since start.
    pub fn minted_count(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// The certificate chain and key to present for `host` (a DNS name or an
    /// IP literal, brackets allowed). Minted on first use, then cached; two
    /// concurrent first requests for one host mint once.
    pub fn leaf_for(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let host = normalize_host(host);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(&host) {
            return Ok(found.clone());
        }
        // Minting under the lock is one ECDSA signature (tens of microseconds),
        // cheaper than coordinating waiters, and guarantees a single mint.
        let leaf = Arc::new(self.mint(&host)?);
        if cache.len() >= LEAF_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(host, leaf.clone());
        Ok(leaf)
    }

    fn mint(&self, host: &str) -> Result<CertifiedKey, CaError> {
        let fail = |reason: String| CaError::Mint {
            host: host.to_string(),
            reason,
        };
        let mut params = CertificateParams::default();
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.to_string()
                    .try_into()
                    .map_err(|e| fail(format!("not a valid DNS name: {e}")))?,
            ),
        };
        params.subject_alt_names = vec![san];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        dn.push(DnType::OrganizationName, "authlens");
        params.distinguished_name = dn;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = (params.not_before + Duration::days(LEAF_VALIDITY_DAYS))
            .min(self.ca_not_after)
            .max(now);
        params.serial_number = Some(random_serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|e| fail(e.to_string()))?;
        self.minted.fetch_add(1, Ordering::Relaxed);
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_cert_der.clone()],
            self.signing_key.clone(),
        ))
    }
}

/// Lower-cases names and strips IPv6 brackets so `[::1]` and `::1` share a
/// certificate.
fn normalize_host(host: &str) -> String {
    let trimmed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    trimmed.trim_end_matches('.').to_ascii_lowercase()
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and without a leading zero byte, as DER INTEGER wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// The certificate directory may be missing (it is created), not a file.
fn not_a_file(dir: &Path) -> Result<(), CaError> {
    if dir.exists() && !dir.is_dir() {
        return Err(CaError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn first_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .and_then(Result::ok)
}

/// Creates a new CA in `dir`: P-256, ten years, a name with a random suffix so
/// two installations are never confused in a trust store.
fn create_ca(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(String, String), CaError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mint_err = |e: rcgen::Error| CaError::Mint {
        host: "authlens CA".into(),
        reason: e.to_string(),
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint_err)?;
    let suffix: u32 = rand::random();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("authlens local CA {suffix:08x}"),
    );
    dn.push(DnType::OrganizationName, "authlens");
    dn.push(
        DnType::OrganizationalUnitName,
        "local debugging proxy, do not trust on shared machines",
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(random_serial());
    let cert = params.self_signed(&key).map_err(mint_err)?;
    let key_pem = key.serialize_pem();
    write_private(key_path, key_pem.as_bytes()).map_err(write_err(key_path))?;
    write_new(cert_path, cert.pem().as_bytes(), 0o644).map_err(write_err(cert_path))?;
    Ok((cert.pem(), key_pem))
}

/// Reads the shared leaf key at `path`, creating it when absent. Two
/// processes starting at once agree: the loser of `create_new` reads the
/// winner's key.
fn load_or_create_leaf_key(path: &Path, open_key: OpenKey) -> Result<KeyPair, CaError> {
    let corrupt = |reason: String| CaError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| CaError::Mint {
            host: String::new(),
            reason: format!("leaf key generation failed: {e}"),
        })?;
        match write_private(path, key.serialize_pem().as_bytes()) {
            Ok(()) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CaError::Write {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    check_private(path, open_key)?;
    let pem = read(path)?;
    KeyPair::from_pem(&pem).map_err(|e| corrupt(format!("no valid private key: {e}")))
}

/// Refuses a private key that group or others may read (unless allowed).
/// The mode bits are what is checked, not whether this process can read
/// it: root reads everything, and the question is who else can.
fn check_private(path: &Path, open_key: OpenKey) -> Result<(), CaError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|source| CaError::Read {
                path: path.to_path_buf(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o044 != 0 {
            let error = CaError::OpenKey {
                path: path.to_path_buf(),
                mode,
            };
            match open_key {
                OpenKey::Refuse => return Err(error),
                OpenKey::Allow => tracing::warn!("{error} (--allow-open-key: using it anyway)"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, open_key);
    Ok(())
}

/// What to say about a certificate directory other users can write to
/// (they could replace the CA files, or plant their own before the first
/// run), or `None` when only its owner can.
fn open_directory_warning(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).ok()?.permissions().mode() & 0o777;
        if mode & 0o002 != 0 {
            return Some(format!(
                "the CA directory {} is writable by every user (mode {mode:03o}): anyone on this machine can replace the CA that your clients trust. Fix it with `chmod 700 {}`, or pass --certs with a private directory",
                dir.display(),
                dir.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    None
}

/// Writes a file readable by its owner only, created with that mode so the
/// key is never briefly world-readable.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_new(path, contents, 0o600)
}

/// Creates `path` with `contents` atomically: the data goes to a temporary
/// file in the same directory (created with `mode`), is synced, then linked
/// into place. A reader never sees a half-written file, and when two
/// processes race, the loser gets `AlreadyExists` and nothing is overwritten.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::hard_link(&temp, path)
    })();
    let _ = fs::remove_file(&temp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    #[test]
    fn creates_then_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        let second =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        assert_eq!(first.cert_der(), second.cert_der());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let made =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        for name in [CA_KEY_FILE, LEAF_KEY_FILE] {
            let key = dir.path().join(name);
            for mode in [0o644, 0o640, 0o604] {
                chmod(&key, mode);
                let err =
                    CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse)
                        .unwrap_err();
                assert!(matches!(err, CaError::OpenKey { .. }), "{err}");
                let text = err.to_string();
                assert!(text.contains(&format!("mode {mode:03o}")), "{text}");
                assert!(
                    text.contains(&format!("chmod 600 {}", key.display())),
                    "{text}"
                );
                assert!(text.contains("--allow-open-key"), "{text}");
                let err = CertificateAuthority::load(dir.path(), &provider(), OpenKey::Refuse)
                    .unwrap_err();
                assert!(matches!(err, CaError::OpenKey { .. }), "{err}");

                let allowed =
                    CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Allow)
                        .unwrap();
                assert_eq!(
                    allowed.cert_der(),
                    made.cert_der(),
                    "the same CA, not a new one"
                );
            }
            // Owner-only modes, writable or not, are fine.
            for mode in [0o600, 0o400, 0o700] {
                chmod(&key, mode);
                CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse)
                    .unwrap();
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_anyone_can_write_to_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o700);
        assert_eq!(open_directory_warning(dir.path()), None);
        chmod(dir.path(), 0o755);
        assert_eq!(open_directory_warning(dir.path()), None);
        chmod(dir.path(), 0o777);
        let warning = open_directory_warning(dir.path()).expect("a warning");
        assert!(
            warning.contains("writable by every user (mode 777)"),
            "{warning}"
        );
        assert!(
            warning.contains(&format!("chmod 700 {}", dir.path().display())),
            "{warning}"
        );
        // Only a warning: the CA is still made and used.
        CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
    }

    #[test]
    fn the_leaf_key_is_shared_by_every_process_on_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        let second = CertificateAuthority::load(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        assert_eq!(first.leaf_spki_der(), second.leaf_spki_der());
        assert_eq!(
            first.leaf_spki_sha256_base64(),
            second.leaf_spki_sha256_base64()
        );
        let leaf = first.leaf_for("idp.test").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf.cert[0]).unwrap();
        assert_eq!(cert.public_key().raw, second.leaf_spki_der().as_slice());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(LEAF_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn load_never_creates_and_regenerate_replaces_everything() {
        let dir = tempfile::tempdir().unwrap();
        let err = CertificateAuthority::load(dir.path(), &provider(), OpenKey::Refuse).unwrap_err();
        assert!(matches!(err, CaError::Missing { .. }), "{err}");
        assert!(!dir.path().join(CA_KEY_FILE).exists());

        let old =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        let new = CertificateAuthority::regenerate(dir.path(), &provider()).unwrap();
        assert_ne!(old.cert_der(), new.cert_der());
        assert_ne!(old.leaf_spki_der(), new.leaf_spki_der());
        assert_ne!(old.fingerprint_sha256(), new.fingerprint_sha256());
        let again = CertificateAuthority::load(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        assert_eq!(again.cert_der(), new.cert_der());
        let fp = new.fingerprint_sha256();
        assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
        assert!(new.not_after() > OffsetDateTime::now_utc() + Duration::days(3000));
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        fs::write(dir.path().join(CA_CERT_FILE), "garbage").unwrap();
        let err = CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse)
            .unwrap_err();
        assert!(matches!(err, CaError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(CA_CERT_FILE), "{err}");

        fs::remove_file(dir.path().join(CA_CERT_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse)
            .unwrap_err();
        assert!(matches!(err, CaError::HalfPresent { .. }), "{err}");
    }

    #[test]
    fn a_file_or_a_forbidden_directory_is_blamed_on_certs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hostname");
        fs::write(&file, "a file").unwrap();
        let err =
            CertificateAuthority::load_or_create(&file, &provider(), OpenKey::Refuse).unwrap_err();
        assert!(matches!(err, CaError::NotADirectory { .. }), "{err}");
        assert!(
            err.to_string().contains("is a file, not a directory"),
            "{err}"
        );

        // Root may write anywhere, so the message is checked on its own.
        let denied = CaError::Write {
            path: "/srv/certs/authlens-ca-key.pem".into(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        };
        let text = denied.to_string();
        assert!(
            text.contains("--certs") && text.contains("write to"),
            "{text}"
        );
        let other = CaError::Read {
            path: "/srv/certs/authlens-ca.pem".into(),
            source: std::io::ErrorKind::InvalidData.into(),
        };
        assert!(!other.to_string().contains("--certs"), "{other}");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(a.path(), &provider(), OpenKey::Refuse).unwrap();
        CertificateAuthority::load_or_create(b.path(), &provider(), OpenKey::Refuse).unwrap();
        fs::copy(b.path().join(CA_KEY_FILE), a.path().join(CA_KEY_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(a.path(), &provider(), OpenKey::Refuse)
            .unwrap_err();
        assert!(err.to_string().contains(CA_KEY_FILE), "{err}");
    }

    #[test]
    fn leaves_carry_the_right_san_and_validity() {
        let dir = tempfile::tempdir().unwrap();
        let ca =
            CertificateAuthority::load_or_create(dir.path(), &provider(), OpenKey::Refuse).unwrap();
        for (host, want) in [
            ("idp.test", "idp.test"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "::1"),
        ] {
            let leaf = ca.leaf_for(host).unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(&leaf.cert[0]).unwrap();
            let san = cert.subject_alternative_name().unwrap().unwrap();
            let names: Vec<String> = san
                .value
                .general_names
                .iter()
                .map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string(),
                        _ => IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string(),
                    },
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(names, vec![want.to_string()]);
            let validity = cert.validity();
            let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
            assert!(days <= LEAF_VALIDITY_DAYS, "{days}");
            assert!(validity.not_before.timestamp() < OffsetDateTime::now_utc().unix_timestamp());
        }
        assert_eq!(ca.minted_count(), 3);
        ca.leaf_for("IDP.test").unwrap();
        assert_eq!(ca.minted_count(), 3, "cached, case-insensitively");
    }
}

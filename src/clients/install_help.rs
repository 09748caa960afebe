//! The text of `authlens ca --install-help`: exact steps to trust the
//! authlens CA permanently, per operating system and runtime, with the real
//! paths and names filled in. Printing only; nothing is installed.

use std::path::Path;

/// The instructions for the CA at `ca_pem` named `name` with SHA-256
/// `fingerprint`.
pub fn text(ca_pem: &Path, name: &str, fingerprint: &str) -> String {
    let pem = ca_pem.display();
    format!(
        r#"Trusting the authlens CA permanently

Most of the time you do not need this: `authlens run -- <command>` and `authlens browser` make
their clients trust the CA for that run only. Install it only on a machine you alone use: anyone
holding its key ({key}) can impersonate any site to this machine. Remove it when you are done.

  CA certificate   {pem}
  name             {name}
  SHA-256          {fingerprint}

`authlens ca --export DIR` also writes authlens-ca.crt (DER), authlens-ca.p12 (PKCS#12 trust store,
password changeit) and authlens-bundle.pem (the system CAs plus this one).

Debian / Ubuntu (curl, wget, git, Python ssl, .NET, Go and everything using OpenSSL's store)
  sudo cp {pem} /usr/local/share/ca-certificates/authlens-ca.crt
  sudo update-ca-certificates
  remove: sudo rm /usr/local/share/ca-certificates/authlens-ca.crt && sudo update-ca-certificates --fresh

Fedora / RHEL / CentOS
  sudo cp {pem} /etc/pki/ca-trust/source/anchors/authlens-ca.pem
  sudo update-ca-trust
  remove: sudo rm /etc/pki/ca-trust/source/anchors/authlens-ca.pem && sudo update-ca-trust

macOS (Safari, Chrome, curl, and every app using the keychain)
  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
  remove: sudo security delete-certificate -c "{name}" /Library/Keychains/System.keychain

Windows (Edge, Chrome, .NET, PowerShell; run in the folder of `authlens ca --export`)
  certutil -user -addstore Root authlens-ca.crt          (current user; confirm the dialog)
  certutil -addstore Root authlens-ca.crt                (whole machine, from an elevated prompt)
  remove: certutil -user -delstore Root "{name}"

Firefox (its own store on every OS)
  Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import...
  choose {pem}, tick "Trust this CA to identify websites".
  Or let it use the OS store after the OS step above (Windows, macOS):
  about:config > security.enterprise_roots.enabled = true
  To see localhost callbacks through the proxy: about:config >
  network.proxy.allow_hijacking_localhost = true, and set the proxy in Settings > Network Settings.

Java (keytool; the JDK's cacerts, needs write access to it)
  keytool -importcert -noprompt -cacerts -storepass changeit -alias authlens-ca -file {pem}
  remove: keytool -delete -cacerts -storepass changeit -alias authlens-ca
  per run instead: -Djavax.net.ssl.trustStore=DIR/authlens-ca.p12 -Djavax.net.ssl.trustStoreType=PKCS12
  -Djavax.net.ssl.trustStorePassword=changeit (trusts only authlens: `authlens run` builds a store
  with the system CAs too)

Python
  requests uses certifi, not the OS store:   export REQUESTS_CA_BUNDLE=DIR/authlens-bundle.pem
  ssl, urllib, httpx, aiohttp:               export SSL_CERT_FILE=DIR/authlens-bundle.pem
  pip:                                       pip config set global.cert DIR/authlens-bundle.pem
  (the bundle holds the public CAs too; pointing these at {pem} alone breaks every other host)

Node.js
  export NODE_EXTRA_CA_CERTS={pem}     (read at start-up, added to Node's own roots)
  Node does not read the OS store by default. Node 20 ignores HTTPS_PROXY in fetch and in the
  http/https modules: use `authlens run -- node app.js`, which preloads a module that routes both
  through authlens. Newer Node releases honour HTTPS_PROXY with NODE_USE_ENV_PROXY=1.

.NET
  Linux: the Debian/Ubuntu or Fedora step above (.NET reads OpenSSL's store; SSL_CERT_FILE works
  too). Windows and macOS: the OS step above. HttpClient honours HTTPS_PROXY / HTTP_PROXY /
  NO_PROXY.
"#,
        key = ca_pem
            .parent()
            .map(|d| d.join(crate::ca::CA_KEY_FILE).display().to_string())
            .unwrap_or_else(|| crate::ca::CA_KEY_FILE.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_real_files_and_every_platform() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::ca::CertificateAuthority::load_or_create(
            dir.path(),
            &crate::tls::provider(),
            crate::ca::OpenKey::Refuse,
        )
        .unwrap();
        let name = ca.name().to_owned();
        assert!(name.starts_with("authlens local CA "), "{name}");
        let text = text(ca.cert_path(), &name, &ca.fingerprint_sha256());
        for want in [
            "Debian / Ubuntu",
            "update-ca-certificates",
            "Fedora",
            "update-ca-trust",
            "macOS",
            "add-trusted-cert",
            "Windows",
            "certutil",
            "Firefox",
            "Java",
            "keytool",
            "Python",
            "REQUESTS_CA_BUNDLE",
            "Node.js",
            "NODE_EXTRA_CA_CERTS",
            ".NET",
        ] {
            assert!(text.contains(want), "{want} missing");
        }
        assert!(text.contains(&ca.cert_path().display().to_string()));
        assert!(text.contains(&format!("delete-certificate -c \"{name}\"")));
        assert!(text.contains(&ca.fingerprint_sha256()));
    }
}

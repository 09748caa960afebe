//! A mock Microsoft Entra ID over TLS, for trying authlens by hand.
//!
//! `cargo run --example mock_idp [-- PORT]` serves it on 127.0.0.1:PORT
//! (default 8443; 0 picks a free one) as `login.microsoftonline.com`, with a
//! CA made at start in a temporary directory, and prints the authlens and
//! curl commands to use.

use testkit::mock_idp::MockIdp;

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 8443,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!(
                "usage: cargo run --example mock_idp [-- PORT]  (PORT is a number, default 8443, 0 for any free port)"
            );
            std::process::exit(2);
        }
    };
    let ca = testkit::TestCa::new();
    let addr = ([127, 0, 0, 1], port).into();
    let (idp, server) =
        match testkit::lab::serve_mock_idp(&ca, MockIdp::default_config(), addr).await {
            Ok(served) => served,
            Err(e) => {
                eprintln!("mock_idp: cannot listen on {addr}: {e}");
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    eprintln!(
                        "  another program (another mock_idp?) uses port {port}: pass another one, \
                         `cargo run --example mock_idp -- {}`, or 0 for any free port",
                        port.wrapping_add(1).max(1024)
                    );
                }
                std::process::exit(1);
            }
        };
    let config = idp.config();
    let tenant = &config.tenant;
    let web = &config.clients[0];
    println!(
        "mock Entra ID on https://127.0.0.1:{} as login.microsoftonline.com",
        server.addr.port()
    );
    println!("  tenant    {tenant}");
    println!(
        "  clients   web {} (secret {}, redirect {})",
        web.client_id,
        web.secret.as_deref().unwrap_or("-"),
        web.redirect_uris[0]
    );
    println!(
        "            public {} (redirect {}, any port)",
        config.clients[1].client_id, config.clients[1].redirect_uris[0]
    );
    println!("  CA        {}", ca.pem_path.display());
    println!();
    println!("Run authlens in front of it:");
    println!(
        "  cargo run --release -- --connect-to login.microsoftonline.com:443:127.0.0.1:{} --upstream-ca {}",
        server.addr.port(),
        ca.pem_path.display()
    );
    println!("Then sign in by hand (authorize, read the code from Location, redeem it):");
    println!(
        "  curl -si -x http://127.0.0.1:8080 --cacert certs/authlens-ca.pem 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.test%2Fcallback&scope=openid&state=s1' | grep -i location",
        web.client_id
    );
    println!(
        "  curl -s -x http://127.0.0.1:8080 --cacert certs/authlens-ca.pem https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token -d grant_type=authorization_code -d code=CODE -d client_id={} -d client_secret={} --data-urlencode redirect_uri=https://app.test/callback",
        web.client_id,
        web.secret.as_deref().unwrap_or("")
    );
    println!("Or push the request first (PAR) and send only its request_uri to /authorize:");
    println!(
        "  curl -s -x http://127.0.0.1:8080 --cacert certs/authlens-ca.pem https://login.microsoftonline.com/{tenant}/oauth2/v2.0/par -d response_type=code -d client_id={} -d client_secret={} --data-urlencode redirect_uri=https://app.test/callback -d scope=openid -d state=s2",
        web.client_id,
        web.secret.as_deref().unwrap_or("")
    );
    println!(
        "  curl -si -x http://127.0.0.1:8080 --cacert certs/authlens-ca.pem 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize?client_id={}&request_uri=REQUEST_URI' | grep -i location",
        web.client_id
    );
    println!(
        "Redeem the same code twice, wait 10 minutes, change redirect_uri, or use a request_uri twice to see authlens flag it."
    );
    let curl = "curl -s -x http://127.0.0.1:8080 --cacert certs/authlens-ca.pem";
    let base = format!("https://login.microsoftonline.com/{tenant}");
    println!("The rest of the lifecycle (add scope=offline_access above to get a refresh token):");
    println!(
        "  {curl} {base}/oauth2/v2.0/token -d grant_type=refresh_token -d refresh_token=RT -d client_id={} -d client_secret={}   (twice: refresh-token-reused; accepted, as Entra does)",
        web.client_id,
        web.secret.as_deref().unwrap_or("")
    );
    println!(
        "  {curl} {base}/oauth2/v2.0/devicecode -d client_id={} -d scope=openid   (then poll, and sign in with:)",
        config.clients[1].client_id
    );
    println!(
        "  {curl} {base}/oauth2/v2.0/token -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=DC -d client_id={}",
        config.clients[1].client_id
    );
    println!("  {curl} {base}/devicelogin -d user_code=USER_CODE");
    println!(
        "  {curl} {base}/oauth2/v2.0/token -d grant_type=client_credentials -d client_id={} -d client_secret={} -d scope=User.Read   (not /.default: AADSTS1002012)",
        web.client_id,
        web.secret.as_deref().unwrap_or("")
    );
    println!("Ctrl-C stops the mock.");
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
}

//! The integration tests, as one binary so the harness (the `testkit` crate:
//! a test CA, HTTPS upstreams, the mock Entra ID, the sign-in lab) and the
//! tests themselves compile once. Each module under `it/` drives the real
//! proxy or the real `authlens` binary over loopback; nothing reaches the
//! network.

mod it;

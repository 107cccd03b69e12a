use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P384_SHA384, PKCS_ED25519};
use tempfile::TempDir;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;

use household_client::{new_key_and_csr, tls_config};

use super::*;

/// An RSA-2048 CSR made with `openssl req -new -newkey rsa:2048`.
const RSA_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIICUzCCATsCAQAwDjEMMAoGA1UEAwwDcnNhMIIBIjANBgkqhkiG9w0BAQEFAAOC
AQ8AMIIBCgKCAQEAoAr2e3088f5yLWYORTzTCfRHJuRjJlaXul/oLvOdIF3w+hC9
LPqJT4ahR3i2ZTiMFtx9iWSnemkhlFjlr/c+ZoKN8258adm2ldCnHTMpnF1hbdF3
D8spwyEaCMaAa47ZEnZR3xLzyTlEN4nOc5beWmIiyk0uFjNr/2mQFIY42AnBcrQD
o/Te/sEuDfKS4RGujWN+kTT0V1iK6NNTi0muf+43jb6ISaV+y4BhqjJj3Pcni5Y7
DG+XGrPjr6m3O4PH2c+gskdmTUrS4MGO3SxgjqlffFqOWvE2Ow3ibK1muaZU4cOU
JgnSzaK9tmNaecl006Nw/iLFW5aUTsqrd+YkHwIDAQABoAAwDQYJKoZIhvcNAQEL
BQADggEBAHEBa/8vqLDPygP5/fpxk0aXnJ2ekcHuUV67lpCiY2IMsVm4isTEKP7b
P/uLRuMayvN3h+It22DrtYuSSt1HgBtTqlICmqkI87lMaeTCj81cDdrqCFBiMBlo
Pj01zY0QFBr44JC2RO1g/bB/BWrLE334PDGKp2U8eurKE+LWoO/BYikrkewue2P9
Nk5EuOK7RyMo9fWWr0wehE95f4q3Nl/oFC1XFYCFHD5CDYjBXfY17MyeJeRLwvWc
GbwXO+3OpwXlSsLDU4CcbfCjj9U6GFUtJuaV9Lx5/fjREUro5DewHZ06v6f0Xt4z
ebS7wYpbp9iIKQkXW1lcGSLicHb2Lws=
-----END CERTIFICATE REQUEST-----
";

/// A P-256 CSR made the way `docs/api.md` shows:
/// `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=anna`.
const OPENSSL_P256_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHKMHECAQAwDzENMAsGA1UEAwwEYW5uYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABCVs/VwH4SbRjaePnJH2bDitdn/fkmUWc+/k9i2t3PvBUTMZpsoOr40WxEPA
tq3FvYt4DIMTRjEgXcvqsEB963SgADAKBggqhkjOPQQDAgNJADBGAiEA2icAJ8Dl
KDqMRn4OHyIkZ2F+HAnhy6teF7S0IZbyJvMCIQDm3JB6G3NhbDZtbbzqEkpMSZZ/
wp4q4VN96Foq1reGEw==
-----END CERTIFICATE REQUEST-----
";

const A_DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn guardian(id: &str) -> ClientSubject {
    ClientSubject {
        role: ClientRole::Guardian,
        identity_id: id.to_owned(),
    }
}

fn device(id: &str) -> ClientSubject {
    ClientSubject {
        role: ClientRole::Device,
        identity_id: id.to_owned(),
    }
}

fn new_ca() -> (TempDir, HouseholdCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = HouseholdCa::load_or_create(dir.path()).unwrap();
    (dir, ca)
}

/// The DER of every certificate in a PEM chain, in order.
fn chain_ders(chain_pem: &str) -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(chain_pem.as_bytes())
        .map(|pem| pem.unwrap().contents)
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A CSR for a fresh key of `algorithm`.
fn csr_for(algorithm: &'static rcgen::SignatureAlgorithm) -> String {
    let key = KeyPair::generate_for(algorithm).unwrap();
    CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

// ---- The CA ----

#[test]
fn the_ca_is_made_once_and_reloaded_unchanged() {
    let (dir, first) = new_ca();
    let again = HouseholdCa::load_or_create(dir.path()).unwrap();
    assert_eq!(first.sha256(), again.sha256());
    assert_eq!(first.cert_pem(), again.cert_pem());
    assert_eq!(first.sha256_hex(), sha256_hex(first.cert_der()));
    assert_eq!(first.sha256_hex().len(), 64);
    assert!(
        first
            .sha256_hex()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );

    let (_, cert) = X509Certificate::from_der(first.cert_der()).unwrap();
    assert!(cert.is_ca());
    let common_name = cert.subject().iter_common_name().next().unwrap();
    assert!(common_name.as_str().unwrap().starts_with("Household CA "));
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    let years = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (365 * 24 * 60 * 60);
    assert!(years >= 19, "{years} years");
}

#[test]
fn a_copy_of_the_ca_loads_as_the_same_ca() {
    let (_dir, ca) = new_ca();
    let backup = tempfile::tempdir().unwrap();
    let copy_dir = backup.path().join("tls");
    ca.copy_to(&copy_dir).unwrap();
    assert_eq!(mode_of(&copy_dir.join("ca.key")), 0o600);
    let restored = HouseholdCa::load_or_create(&copy_dir).unwrap();
    assert_eq!(restored.sha256(), ca.sha256());
    // The restored CA signs what the original's clients trust.
    let (_key, csr) = new_key_and_csr("anna").unwrap();
    let issued = restored
        .sign_client_csr(&csr, &guardian("anna"), A_DAY)
        .unwrap();
    let (_, cert) = X509Certificate::from_der(&issued.cert_der).unwrap();
    let (_, original) = X509Certificate::from_der(ca.cert_der()).unwrap();
    cert.verify_signature(Some(original.public_key())).unwrap();
}

#[test]
fn the_ca_key_is_readable_by_its_owner_only() {
    let (dir, _ca) = new_ca();
    assert_eq!(mode_of(&dir.path().join("ca.key")), 0o600);
    assert!(!dir.path().join("ca.key.tmp").exists());
}

#[test]
fn a_ca_key_others_can_read_is_refused() {
    let (dir, _ca) = new_ca();
    let key = dir.path().join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = HouseholdCa::load_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(error, TrustError::KeyFileTooOpen { mode: 0o644, .. }),
        "{error}"
    );
}

#[test]
fn a_ca_certificate_without_its_key_is_not_replaced() {
    let (dir, _ca) = new_ca();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    let error = HouseholdCa::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(error, TrustError::CaKeyMissing { .. }), "{error}");
}

#[test]
fn a_ca_key_left_alone_by_a_crash_is_replaced() {
    let (dir, first) = new_ca();
    std::fs::remove_file(dir.path().join("ca.pem")).unwrap();
    let second = HouseholdCa::load_or_create(dir.path()).unwrap();
    assert_ne!(first.sha256(), second.sha256());
}

#[test]
fn a_ca_key_that_does_not_match_is_refused() {
    let (dir, _first) = new_ca();
    let (other, _second) = new_ca();
    std::fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    let error = HouseholdCa::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(error, TrustError::KeyMismatch { .. }), "{error}");
}

// ---- Client certificates ----

#[test]
fn a_signed_csr_names_the_subject_the_hub_chose() {
    let (_dir, ca) = new_ca();
    // The CSR asks to be a guardian called "root"; the hub decides otherwise.
    let (_key, csr) = new_key_and_csr("guardian root").unwrap();
    let issued = ca.sign_client_csr(&csr, &device("dev-7"), A_DAY).unwrap();

    assert_eq!(
        subject_from_peer_cert(&issued.cert_der).unwrap(),
        device("dev-7")
    );
    assert_eq!(issued.sha256_hex, sha256_hex(&issued.cert_der));
    assert_eq!(
        chain_ders(&issued.chain_pem),
        [issued.cert_der.clone(), ca.cert_der().to_vec()]
    );

    let (_, cert) = X509Certificate::from_der(&issued.cert_der).unwrap();
    let common_name = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(common_name.as_str().unwrap(), "dev-7");
    let (_, ca_cert) = X509Certificate::from_der(ca.cert_der()).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    let usage = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(usage.client_auth && !usage.server_auth);
    assert_eq!(
        issued.not_after_unix_micros,
        cert.validity().not_after.timestamp() * 1_000_000
    );
    let now = x509_parser::time::ASN1Time::now().timestamp();
    let day_later = cert.validity().not_after.timestamp() - now;
    assert!(
        (A_DAY.as_secs() as i64 - day_later).abs() < 60,
        "{day_later}"
    );
}

#[test]
fn guardian_and_ed25519_and_openssl_csrs_are_accepted() {
    let (_dir, ca) = new_ca();
    let issued = ca
        .sign_client_csr(&csr_for(&PKCS_ED25519), &guardian("anna"), A_DAY)
        .unwrap();
    assert_eq!(
        subject_from_peer_cert(&issued.cert_der).unwrap(),
        guardian("anna")
    );

    let issued = ca
        .sign_client_csr(OPENSSL_P256_CSR, &guardian("anna"), A_DAY)
        .unwrap();
    assert_eq!(
        subject_from_peer_cert(&issued.cert_der).unwrap(),
        guardian("anna")
    );
}

#[test]
fn keys_other_than_p256_and_ed25519_are_refused_by_name() {
    let (_dir, ca) = new_ca();
    let error = ca
        .sign_client_csr(RSA_CSR, &guardian("anna"), A_DAY)
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::UnsupportedKey(what) if what == "RSA (2048 bits)"),
        "{error}"
    );
    let error = ca
        .sign_client_csr(&csr_for(&PKCS_ECDSA_P384_SHA384), &guardian("anna"), A_DAY)
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::UnsupportedKey(what) if what == "ECDSA P-384"),
        "{error}"
    );
}

#[test]
fn malformed_and_forged_csrs_are_refused() {
    let (_dir, ca) = new_ca();
    let subject = guardian("anna");
    for not_a_csr in ["", "hello", ca.cert_pem()] {
        let error = ca.sign_client_csr(not_a_csr, &subject, A_DAY).unwrap_err();
        assert!(matches!(error, TrustError::MalformedCsr(_)), "{error}");
    }

    // The same request with a few bits of its signature changed: the last line of the
    // PEM holds the end of the signature's second integer.
    let forged = OPENSSL_P256_CSR.replace("wp4q4VN96", "xp4q4VN96");
    assert_ne!(forged, OPENSSL_P256_CSR);
    let error = ca.sign_client_csr(&forged, &subject, A_DAY).unwrap_err();
    assert!(matches!(error, TrustError::CsrSignature), "{error}");
}

#[test]
fn identity_ids_that_would_garble_the_uri_are_refused() {
    let (_dir, ca) = new_ca();
    let (_key, csr) = new_key_and_csr("x").unwrap();
    for id in ["", "a:b", "anna smith", "ä"] {
        let error = ca.sign_client_csr(&csr, &guardian(id), A_DAY).unwrap_err();
        assert!(
            matches!(error, TrustError::InvalidIdentityId(_)),
            "{id:?}: {error}"
        );
    }
}

#[test]
fn a_certificate_without_a_household_uri_names_nobody() {
    let (dir, ca) = new_ca();
    let server = ca.server_identity(dir.path(), &[]).unwrap();
    let error = subject_from_peer_cert(&chain_ders(&server.chain_pem)[0]).unwrap_err();
    assert!(matches!(error, TrustError::NoPeerIdentity(_)), "{error}");
    let error = subject_from_peer_cert(b"not a certificate").unwrap_err();
    assert!(matches!(error, TrustError::NoPeerIdentity(_)), "{error}");
}

// ---- The server certificate ----

/// The DNS names and IP addresses a server certificate names, as text.
fn names_of(server: &ServerCertificate) -> Vec<String> {
    let der = &chain_ders(&server.chain_pem)[0];
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => dns.to_string(),
            x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
            },
            other => panic!("unexpected name {other:?}"),
        })
        .collect()
}

#[test]
fn the_server_certificate_names_what_was_asked_and_the_usual_names() {
    let (dir, ca) = new_ca();
    let asked = ["hub.home.arpa".to_owned(), "192.168.1.20".to_owned()];
    let server = ca.server_identity(dir.path(), &asked).unwrap();
    let names = names_of(&server);
    for name in [
        "hub.home.arpa",
        "192.168.1.20",
        "localhost",
        "127.0.0.1",
        "::1",
    ] {
        assert!(
            names.contains(&name.to_owned()),
            "{name} missing from {names:?}"
        );
    }
    let host = host_name().to_ascii_lowercase();
    assert!(names.contains(&host), "{host} missing from {names:?}");
    assert!(
        names.iter().any(|name| name.ends_with(".local")),
        "{names:?}"
    );

    let chain = chain_ders(&server.chain_pem);
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], ca.cert_der());
    assert_eq!(mode_of(&dir.path().join("server.key")), 0o600);
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
}

#[test]
fn the_server_certificate_is_reused_until_a_new_name_is_asked_for() {
    let (dir, ca) = new_ca();
    let asked = vec!["hub.home.arpa".to_owned(), "192.168.1.20".to_owned()];
    let first = ca.server_identity(dir.path(), &asked).unwrap();

    // The same names, or fewer, or the same in another spelling: the same certificate.
    let again = ca.server_identity(dir.path(), &asked).unwrap();
    assert_eq!(first.chain_pem, again.chain_pem);
    assert_eq!(first.key_pem, again.key_pem);
    let fewer = ca
        .server_identity(dir.path(), &["HUB.home.arpa.".to_owned()])
        .unwrap();
    assert_eq!(first.chain_pem, fewer.chain_pem);

    let more = [asked.clone(), vec!["fe80::1".to_owned()]].concat();
    let renewed = ca.server_identity(dir.path(), &more).unwrap();
    assert_ne!(first.chain_pem, renewed.chain_pem);
    assert_ne!(first.key_pem, renewed.key_pem);
    assert!(names_of(&renewed).contains(&"fe80::1".to_owned()));
}

#[test]
fn a_server_certificate_from_another_ca_is_replaced() {
    let (dir, first_ca) = new_ca();
    let old = first_ca.server_identity(dir.path(), &[]).unwrap();
    let (_other_dir, second_ca) = new_ca();
    let new = second_ca.server_identity(dir.path(), &[]).unwrap();
    assert_ne!(old.chain_pem, new.chain_pem);
    assert_eq!(chain_ders(&new.chain_pem)[1], second_ca.cert_der());
}

#[test]
fn names_that_are_neither_hosts_nor_addresses_are_refused() {
    let (dir, ca) = new_ca();
    for bad in ["", "hub home", "hüb.local", "http://hub"] {
        let error = ca
            .server_identity(dir.path(), &[bad.to_owned()])
            .unwrap_err();
        assert!(
            matches!(error, TrustError::InvalidServerName(_)),
            "{bad:?}: {error}"
        );
    }
}

// ---- TLS, end to end ----

/// Calls the health service at `port` with `tls`; true if it answered.
async fn health_answers(port: u16, tls: tonic::transport::ClientTlsConfig) -> bool {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .timeout(Duration::from_secs(5));
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn mutual_tls_carries_the_identity_and_refuses_strangers() {
    let (dir, ca) = new_ca();
    let server = ca.server_identity(dir.path(), &[]).unwrap();

    // Records, for every call, whom the client certificate named (None: no certificate).
    let callers: Arc<Mutex<Vec<Option<ClientSubject>>>> = Arc::default();
    let record = {
        let callers = Arc::clone(&callers);
        move |request: tonic::Request<()>| {
            let subject = request.peer_certs().and_then(|certs| {
                certs
                    .first()
                    .map(|der| subject_from_peer_cert(der).unwrap())
            });
            callers.lock().unwrap().push(subject);
            Ok(request)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let hub = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(tonic::service::InterceptorLayer::new(record))
            .add_service(health)
            .serve_with_incoming(tls::incoming(listener, ca.server_tls(&server).unwrap())),
    );

    // Enrolled: the hub sees who is calling.
    let (key, csr) = new_key_and_csr("anna").unwrap();
    let issued = ca.sign_client_csr(&csr, &guardian("anna"), A_DAY).unwrap();
    let enrolled = tls_config(ca.cert_pem(), Some((&issued.chain_pem, &key)));
    assert!(health_answers(port, enrolled).await);

    // Not yet enrolled: allowed in, as nobody.
    let newcomer = tls_config(ca.cert_pem(), None);
    assert!(health_answers(port, newcomer).await);

    // A certificate from another household: the handshake fails.
    let (_other_dir, other_ca) = new_ca();
    let (key, csr) = new_key_and_csr("mallory").unwrap();
    let stranger = other_ca
        .sign_client_csr(&csr, &guardian("anna"), A_DAY)
        .unwrap();
    let stranger = tls_config(ca.cert_pem(), Some((&stranger.chain_pem, &key)));
    assert!(!health_answers(port, stranger).await);

    // A client that pins another household's CA does not trust this hub.
    let lost = tls_config(other_ca.cert_pem(), None);
    assert!(!health_answers(port, lost).await);

    hub.abort();
    assert_eq!(*callers.lock().unwrap(), [Some(guardian("anna")), None]);
}

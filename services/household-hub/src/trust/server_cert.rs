//! The hub's own TLS certificate, issued by the household CA.
//!
//! Clients reach the hub by whatever name works on their network: `localhost` on the hub
//! itself, `myhost.local` through mDNS, a bare IP address from a pairing QR code. The
//! certificate has to name every one of them, or the client's TLS check fails. So the
//! hub asks for the names it knows on each start, and the certificate on disk is kept
//! only while it still covers them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use rcgen::{ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType};
use tracing::{info, warn};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::time::ASN1Time;

use super::ca::{certificate_params, parse_key, pem_contents};
use super::{HouseholdCa, TrustError, files};

/// The hub's TLS key.
const SERVER_KEY_FILE: &str = "server.key";
/// The hub's certificate followed by the CA's.
const SERVER_CERT_FILE: &str = "server.pem";
/// How long a server certificate is issued for.
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A certificate with less left than this is replaced at start, so a hub that is
/// restarted now and then never serves an expired one.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Where a PEM certificate block ends.
const PEM_CERTIFICATE_END: &str = "-----END CERTIFICATE-----";

/// The hub's TLS identity, ready for [`HouseholdCa::server_tls`].
#[derive(Clone)]
pub struct ServerCertificate {
    /// The server certificate, then the CA certificate, PEM. The CA is sent along so a
    /// new client can compare its fingerprint with the pairing code before enrolling.
    pub chain_pem: String,
    /// The server's private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl fmt::Debug for ServerCertificate {
    /// Leaves the key out: it must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain_pem", &self.chain_pem)
            .finish_non_exhaustive()
    }
}

impl HouseholdCa {
    /// The hub's server certificate for `names` (DNS names and IP addresses, as text),
    /// kept in `dir`.
    ///
    /// The certificate always also names `localhost`, `127.0.0.1`, `::1`, this machine's
    /// host name and `<host>.local`. The one on disk is reused while it was issued by this
    /// CA, covers every name, and has more than 30 days left; otherwise a new key and
    /// certificate (valid for a year) replace it.
    pub fn server_identity(
        &self,
        dir: &Path,
        names: &[String],
    ) -> Result<ServerCertificate, TrustError> {
        files::ensure_directory(dir)?;
        let wanted = wanted_names(names)?;
        let key_path = dir.join(SERVER_KEY_FILE);
        let cert_path = dir.join(SERVER_CERT_FILE);
        match self.judge_server_certificate(&key_path, &cert_path, &wanted)? {
            OnDisk::Reusable(existing) => {
                info!(path = %cert_path.display(), "reusing the hub's server certificate");
                Ok(existing)
            }
            OnDisk::Replace(because) => {
                info!(path = %cert_path.display(), because, "issuing a new server certificate");
                self.issue_server_certificate(&key_path, &cert_path, &wanted)
            }
        }
    }

    /// Whether the certificate and key on disk may be served as they are. Anything
    /// unreadable is a reason to replace them, not an error: unlike the CA, the server
    /// certificate can always be replaced without anyone noticing.
    fn judge_server_certificate(
        &self,
        key_path: &Path,
        cert_path: &Path,
        wanted: &BTreeSet<ServerName>,
    ) -> Result<OnDisk, TrustError> {
        let key_pem = match files::read_if_present(key_path, files::read_private) {
            Ok(Some(key_pem)) => key_pem,
            Ok(None) => return Ok(OnDisk::Replace("there is none yet")),
            Err(TrustError::KeyFileTooOpen { path, mode }) => {
                let mode = format!("{mode:o}");
                warn!(path = %path.display(), mode, "the server key is readable by others");
                return Ok(OnDisk::Replace("its key was readable by others"));
            }
            Err(other) => return Err(other),
        };
        let Some(chain_pem) = files::read_if_present(cert_path, files::read_public)? else {
            return Ok(OnDisk::Replace("there is none yet"));
        };
        let Ok(key) = parse_key(key_path, &key_pem) else {
            return Ok(OnDisk::Replace("its key is unreadable"));
        };
        let Ok(cert_der) = pem_contents(cert_path, &chain_pem, "certificate") else {
            return Ok(OnDisk::Replace("it is unreadable"));
        };
        let Ok((_, cert)) = X509Certificate::from_der(&cert_der) else {
            return Ok(OnDisk::Replace("it is unreadable"));
        };
        let Ok((_, ca_cert)) = X509Certificate::from_der(self.cert_der()) else {
            return Ok(OnDisk::Replace("the CA certificate is unreadable"));
        };
        if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
            return Ok(OnDisk::Replace("it was issued by another CA"));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Ok(OnDisk::Replace("its key does not match"));
        }
        let seconds_left = cert.validity().not_after.timestamp() - ASN1Time::now().timestamp();
        if seconds_left < RENEW_BEFORE.as_secs().cast_signed() {
            return Ok(OnDisk::Replace("it expires within 30 days"));
        }
        if !wanted.is_subset(&names_in(&cert)) {
            return Ok(OnDisk::Replace(
                "it does not name every address the hub is reached by",
            ));
        }
        let Some(end) = chain_pem.find(PEM_CERTIFICATE_END) else {
            return Ok(OnDisk::Replace("it is unreadable"));
        };
        let leaf_pem = &chain_pem[..end + PEM_CERTIFICATE_END.len()];
        Ok(OnDisk::Reusable(ServerCertificate {
            // The chain is rebuilt with the CA as it is now, whatever followed on disk.
            chain_pem: format!("{leaf_pem}\n{}", self.cert_pem()),
            key_pem,
        }))
    }

    /// Makes a new key and certificate for `names` and writes them, the key first: a
    /// crash in between leaves a key that fails to match, which the next start replaces.
    fn issue_server_certificate(
        &self,
        key_path: &Path,
        cert_path: &Path,
        names: &BTreeSet<ServerName>,
    ) -> Result<ServerCertificate, TrustError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let host = host_name();
        let mut params = certificate_params(&format!("Household hub {host}"), SERVER_VALIDITY);
        params.subject_alt_names = names
            .iter()
            .map(ServerName::to_san)
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, self.issuer())?;

        let server = ServerCertificate {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem()),
            key_pem: key.serialize_pem(),
        };
        files::write_private(key_path, &server.key_pem)?;
        files::write_public(cert_path, &server.chain_pem)?;
        Ok(server)
    }
}

/// What to do with the server certificate found on disk.
enum OnDisk {
    /// Serve it again.
    Reusable(ServerCertificate),
    /// Issue a new one, for the reason given (for the log).
    Replace(&'static str),
}

/// One name a server certificate vouches for. DNS names are kept in lower case and IP
/// addresses as addresses, so `::1` and `0:0::1` are the same name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ServerName {
    Dns(String),
    Ip(IpAddr),
}

impl ServerName {
    /// Reads a name as given on the command line or in the configuration.
    fn parse(text: &str) -> Result<ServerName, TrustError> {
        let trimmed = text.trim();
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return Ok(ServerName::Ip(ip));
        }
        let dns = trimmed.trim_end_matches('.').to_ascii_lowercase();
        let is_host_name = !dns.is_empty()
            && dns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'));
        if is_host_name {
            Ok(ServerName::Dns(dns))
        } else {
            Err(TrustError::InvalidServerName(text.to_owned()))
        }
    }

    fn to_san(&self) -> Result<SanType, TrustError> {
        Ok(match self {
            ServerName::Dns(name) => SanType::DnsName(name.clone().try_into()?),
            ServerName::Ip(ip) => SanType::IpAddress(*ip),
        })
    }
}

/// The names asked for, plus those every hub certificate carries.
fn wanted_names(names: &[String]) -> Result<BTreeSet<ServerName>, TrustError> {
    let mut wanted: BTreeSet<ServerName> = names
        .iter()
        .map(|name| ServerName::parse(name))
        .collect::<Result<_, _>>()?;
    wanted.insert(ServerName::Dns("localhost".to_owned()));
    wanted.insert(ServerName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    wanted.insert(ServerName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    if let Some(host) = read_host_name() {
        // The mDNS name is the first label of the host name under `.local`.
        let first_label = host.split('.').next().unwrap_or(&host);
        for name in [host.as_str(), &format!("{first_label}.local")] {
            match ServerName::parse(name) {
                Ok(name) => {
                    wanted.insert(name);
                }
                Err(e) => warn!(error = %e, "leaving the host name out of the server certificate"),
            }
        }
    }
    Ok(wanted)
}

/// The DNS names and IP addresses in a certificate's SAN extension.
fn names_in(cert: &X509Certificate<'_>) -> BTreeSet<ServerName> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return BTreeSet::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(ServerName::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(ServerName::Ip),
            _ => None,
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
    }
}

/// This machine's host name, or `localhost` if it cannot be read: the name the hub
/// puts in its certificate and announces over mDNS (as `<host name>.local.`).
pub fn host_name() -> String {
    read_host_name().unwrap_or_else(|| "localhost".to_owned())
}

/// This machine's host name, as `gethostname(2)` tells it.
fn read_host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call;
    // gethostname writes at most that many bytes into it.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        warn!(error = %std::io::Error::last_os_error(), "cannot read the host name");
        return None;
    }
    // POSIX leaves the name unterminated when it is truncated; take it up to the first
    // NUL or the whole buffer.
    let length = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8(buffer[..length].to_vec())
        .ok()
        .filter(|name| !name.is_empty())
}

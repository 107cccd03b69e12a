//! `household-hub invite`, `backup` and `health`: small clients of the Admin
//! service on the local socket, for whoever runs the hub.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use household_client::qr;
use household_proto::v1::{self, admin_client::AdminClient};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A client of the admin socket at `path`.
pub async fn connect(path: &Path) -> anyhow::Result<AdminClient<Channel>> {
    Ok(AdminClient::new(connect_channel(path).await?))
}

/// A channel to the admin socket at `path`.
async fn connect_channel(path: &Path) -> anyhow::Result<Channel> {
    let path: PathBuf = path.to_owned();
    let shown = path.display().to_string();
    // The URI is required by the API and never used: the connector dials the socket.
    let channel = Endpoint::try_from("http://admin.socket")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connecting to the admin socket {shown} (is the hub running, and are you its owner?)"))?;
    Ok(channel)
}

/// Makes an invite and prints it, the pairing code on the last line; with `page_host`
/// (the hub's HOST:PORT as phones reach it), also a guardian's phone's pairing page as a
/// QR code and a URL.
pub async fn invite(
    socket: &Path,
    request: v1::CreateInviteRequest,
    page_host: Option<&str>,
) -> anyhow::Result<()> {
    let guardian = request.role == v1::Role::Guardian as i32;
    anyhow::ensure!(
        guardian || page_host.is_none(),
        "--qr is for a guardian's phone; a device enrolls with the code itself"
    );
    let mut client = connect(socket).await?;
    let response = client
        .create_invite(request)
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused: {}", status.message()))?
        .into_inner();
    let invite = response.invite.context("the hub sent no invite")?;
    let expires = jiff::Timestamp::from_microsecond(invite.expires_unix_micros)
        .map(|t| t.to_string())
        .unwrap_or_default();
    println!("invited {} ({})", invite.display_name, invite.identity_id);
    println!("valid until {expires}; it works once");
    println!(
        "household CA fingerprint (SHA-256): {}",
        qr::fingerprint_groups(&invite.ca_sha256_hex)
    );
    if let Some(host) = page_host {
        let url = qr::pairing_page(host, &invite.pairing_code);
        let colours = if std::io::stdout().is_terminal() {
            qr::Colours::Terminal
        } else {
            qr::Colours::Plain
        };
        // The invite exists now: without a picture the code is still printed.
        match qr::lines(&url, colours) {
            Ok(picture) => picture.iter().for_each(|line| println!("{line}")),
            Err(err) => eprintln!("household-hub: no QR code for this pairing page ({err})"),
        }
        println!("or open on the phone: {url}");
    }
    println!("{}", invite.pairing_code);
    Ok(())
}

/// Asks the hub over its admin socket whether the guardian API is serving; an error when it is not,
/// so the exit code answers a health check.
pub async fn health(socket: &Path) -> anyhow::Result<()> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = connect_channel(socket).await?;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: v1::household_server::SERVICE_NAME.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused: {}", status.message()))?
        .into_inner()
        .status();
    println!("{}", status.as_str_name());
    anyhow::ensure!(status == ServingStatus::Serving, "the hub is not serving");
    Ok(())
}

/// Writes a backup to `to` and prints its summary.
pub async fn backup(socket: &Path, to: &Path) -> anyhow::Result<()> {
    let to = if to.is_absolute() {
        to.to_owned()
    } else {
        std::env::current_dir()?.join(to)
    };
    let mut client = connect(socket).await?;
    let summary = client
        .backup(v1::BackupRequest {
            path: to.display().to_string(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused: {}", status.message()))?
        .into_inner()
        .summary
        .context("the hub sent no summary")?;
    println!(
        "backup of events up to seq {} written to {} ({} bytes, sha256 {})",
        summary.last_seq, summary.path, summary.size_bytes, summary.sha256_hex
    );
    println!("restore: household-hub serve --data-dir {}", summary.path);
    Ok(())
}

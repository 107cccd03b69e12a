//! `household credentials list|revoke`: the household's guardians and devices with the
//! keys they act with, and taking one away (a lost phone, a sold laptop).

use clap::Subcommand;
use household_proto::v1;
use serde_json::json;

use crate::hub::{CliError, Hub};

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Every guardian and device with its credentials.
    List {
        /// Revoked ones too.
        #[arg(long)]
        all: bool,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one credential (or every credential of an identity): it stops working at
    /// once, open streams included.
    Revoke {
        /// A credential id from `credentials list` (or the first characters of one), or
        /// an identity id (g-…, d-…) for all its credentials.
        id: String,
    },
}

pub async fn run(hub: &mut Hub, command: CredentialsCommand) -> Result<(), CliError> {
    match command {
        CredentialsCommand::List { all, json: as_json } => {
            let identities = identities(hub, all).await?;
            if as_json {
                let list: Vec<_> = identities.iter().map(identity_json).collect();
                println!("{}", json!({ "identities": list }));
                return Ok(());
            }
            for identity in &identities {
                println!(
                    "{}  {} ({}){}",
                    identity.identity_id,
                    identity.display_name,
                    role_name(identity.role),
                    if identity.revoked { ", revoked" } else { "" }
                );
                for credential in &identity.credentials {
                    println!(
                        "    {}  {:<11}  {}{}",
                        &credential.credential_id[..credential.credential_id.len().min(16)],
                        kind_words(credential.kind),
                        credential.label,
                        if credential.revoked { ", revoked" } else { "" }
                    );
                }
            }
        }
        CredentialsCommand::Revoke { id } => {
            let identities = identities(hub, false).await?;
            let (identity_id, credential_id) = resolve(&identities, &id)?;
            if identity_id == hub.profile.identity_id
                && (credential_id.is_empty() || hub.profile.credential_id == credential_id)
            {
                return Err(CliError::Refused(
                    "that is the credential this terminal acts with; revoke it from another guardian's terminal".into(),
                ));
            }
            hub.client
                .revoke_credential(v1::RevokeCredentialRequest {
                    identity_id,
                    credential_id,
                })
                .await
                .map_err(|s| hub.refused(s))?;
            println!("revoked");
        }
    }
    Ok(())
}

async fn identities(hub: &mut Hub, include_revoked: bool) -> Result<Vec<v1::Identity>, CliError> {
    Ok(hub
        .client
        .list_credentials(v1::ListCredentialsRequest { include_revoked })
        .await
        .map_err(|s| hub.refused(s))?
        .into_inner()
        .identities)
}

/// An identity id, or a credential id or its unambiguous beginning.
fn resolve(identities: &[v1::Identity], id: &str) -> Result<(String, String), CliError> {
    if let Some(identity) = identities.iter().find(|i| i.identity_id == id) {
        return Ok((identity.identity_id.clone(), String::new()));
    }
    let matches: Vec<(&v1::Identity, &v1::Credential)> = identities
        .iter()
        .flat_map(|i| i.credentials.iter().map(move |c| (i, c)))
        .filter(|(_, c)| !c.revoked && c.credential_id.starts_with(&id.to_lowercase()))
        .collect();
    match matches.as_slice() {
        [(identity, credential)] => Ok((
            identity.identity_id.clone(),
            credential.credential_id.clone(),
        )),
        [] => Err(CliError::Refused(format!(
            "no identity or credential {id:?}; `household credentials list` shows them"
        ))),
        _ => Err(CliError::Refused(format!(
            "{id:?} begins {} credentials; give more of it",
            matches.len()
        ))),
    }
}

fn role_name(role: i32) -> &'static str {
    match v1::Role::try_from(role) {
        Ok(v1::Role::Guardian) => "guardian",
        Ok(v1::Role::Device) => "device",
        _ => "unknown",
    }
}

/// A credential's kind for people: a computer's certificate or a phone's web token. A
/// kind this CLI does not know yet (a newer hub's) is said to be unknown, not hidden.
fn kind_words(kind: i32) -> &'static str {
    match v1::CredentialKind::try_from(kind) {
        Ok(v1::CredentialKind::Certificate) => "certificate",
        Ok(v1::CredentialKind::BearerToken) => "web token",
        _ => "unknown",
    }
}

/// The same, for `--json`.
fn kind_name(kind: i32) -> &'static str {
    match v1::CredentialKind::try_from(kind) {
        Ok(v1::CredentialKind::Certificate) => "certificate",
        Ok(v1::CredentialKind::BearerToken) => "bearer_token",
        _ => "unknown",
    }
}

fn identity_json(identity: &v1::Identity) -> serde_json::Value {
    json!({
        "identity_id": identity.identity_id,
        "name": identity.display_name,
        "role": role_name(identity.role),
        "child_id": identity.child_id,
        "revoked": identity.revoked,
        "credentials": identity.credentials.iter().map(|c| json!({
            "credential_id": c.credential_id,
            "kind": kind_name(c.kind),
            "label": c.label,
            "expires_unix_micros": c.expires_unix_micros,
            "revoked": c.revoked,
            "last_used_unix_micros": c.last_used_unix_micros,
        })).collect::<Vec<_>>(),
    })
}

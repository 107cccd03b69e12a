//! Talking to the hub as the profile's guardian, and turning its refusals into
//! sentences.

use std::path::Path;

use household_proto::v1::{self, household_client::HouseholdClient};
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::profile::Profile;

/// Why a command failed, with the exit code the documentation promises.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The hub answered and said no (exit 1).
    #[error("{0}")]
    Refused(String),
    /// No usable profile (exit 3).
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// The hub could not be reached (exit 4).
    #[error("cannot reach the hub at {hub}: {reason}")]
    Unreachable { hub: String, reason: String },
    /// An argument's value is not one it may have; the message names the argument and
    /// what it may be (exit 2, as for the arguments clap checks).
    #[error("{0}")]
    BadArgument(String),
    /// The terminal could not be set up, or the output not written (exit 1).
    #[error("writing the output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Refused(_) | CliError::Output(_) => 1,
            CliError::BadArgument(_) => 2,
            CliError::Profile(_) => 3,
            CliError::Unreachable { .. } => 4,
        }
    }
}

/// A connection to the hub as the profile's guardian.
pub struct Hub {
    pub client: HouseholdClient<Channel>,
    pub profile: Profile,
}

impl Hub {
    /// Loads the profile at `path` and connects.
    pub async fn open(path: &Path) -> Result<Hub, CliError> {
        let profile = Profile::load(path)?;
        let channel = household_client::connect(
            &profile.hub,
            &profile.ca_pem,
            Some((&profile.chain_pem, &profile.key_pem)),
        )
        .await
        .map_err(|err| CliError::Unreachable {
            hub: profile.hub.clone(),
            reason: source_chain(&err),
        })?;
        Ok(Hub {
            client: HouseholdClient::new(channel),
            profile,
        })
    }

    /// The hub's error as a sentence and an exit code.
    pub fn refused(&self, status: tonic::Status) -> CliError {
        refusal(&self.profile.hub, status)
    }

    /// The household's children, in the order they were added.
    pub async fn children(&mut self) -> Result<Vec<v1::Child>, CliError> {
        Ok(self
            .client
            .list_children(v1::ListChildrenRequest {})
            .await
            .map_err(|s| self.refused(s))?
            .into_inner()
            .children)
    }

    /// The child whose id or display name (any case) is `name`.
    pub async fn child(&mut self, name: &str) -> Result<v1::Child, CliError> {
        let children = self.children().await?;
        let wanted = name.to_lowercase();
        let names: Vec<String> = children.iter().map(|c| c.display_name.clone()).collect();
        children
            .into_iter()
            .find(|c| c.child_id == name || c.display_name.to_lowercase() == wanted)
            .ok_or_else(|| {
                CliError::Refused(if names.is_empty() {
                    format!("no child called {name:?}: the household has no children yet")
                } else {
                    format!(
                        "no child called {name:?}; the children are {}",
                        names.join(", ")
                    )
                })
            })
    }
}

/// A status from the hub at `hub` as a sentence: transport failures say the hub is
/// unreachable, refusals say what the hub refused and why, in its words.
pub fn refusal(hub: &str, status: tonic::Status) -> CliError {
    if matches!(status.code(), tonic::Code::Unavailable) && status.message().contains("transport") {
        return CliError::Unreachable {
            hub: hub.to_owned(),
            reason: status.message().to_owned(),
        };
    }
    let details = status.get_error_details();
    if let Some(bad) = details.bad_request()
        && let Some(violation) = bad.field_violations.first()
    {
        return CliError::Refused(format!(
            "the hub refused: {} {}",
            violation.field, violation.description
        ));
    }
    // The hub's message is a sentence for people; its ErrorInfo reason is for programs.
    CliError::Refused(format!("the hub refused: {}", status.message()))
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

//! `household children list|add NAME`.

use clap::Subcommand;
use household_proto::v1;
use serde_json::json;

use crate::hub::{CliError, Hub};

#[derive(Subcommand)]
pub enum ChildrenCommand {
    /// List the household's children.
    List {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add a child with the default policy.
    Add {
        /// The child's name.
        name: String,
    },
    /// Give a child another name.
    Rename {
        /// The child's name or id now.
        child: String,
        /// The new name.
        name: String,
    },
    /// Remove a child (their devices first). Their history stays.
    Remove {
        /// The child's name or id.
        child: String,
    },
}

pub async fn run(hub: &mut Hub, command: ChildrenCommand) -> Result<(), CliError> {
    match command {
        ChildrenCommand::List { json: as_json } => {
            let children = hub.children().await?;
            if as_json {
                let list: Vec<_> = children
                    .iter()
                    .map(|c| json!({ "child_id": c.child_id, "name": c.display_name, "device_ids": c.device_ids }))
                    .collect();
                println!("{}", json!({ "children": list }));
            } else {
                for child in &children {
                    println!(
                        "{}  {} ({} device(s))",
                        child.child_id,
                        child.display_name,
                        child.device_ids.len()
                    );
                }
            }
        }
        ChildrenCommand::Add { name } => {
            let child = hub
                .client
                .add_child(v1::AddChildRequest {
                    display_name: name,
                    policy: None,
                    idempotency_key: crate::act::idempotency_key(),
                })
                .await
                .map_err(|s| hub.refused(s))?
                .into_inner()
                .child
                .unwrap_or_default();
            println!("added {} ({})", child.display_name, child.child_id);
        }
        ChildrenCommand::Rename { child, name } => {
            let child = hub.child(&child).await?;
            hub.client
                .rename_child(v1::RenameChildRequest {
                    child_id: child.child_id,
                    display_name: name.clone(),
                })
                .await
                .map_err(|s| hub.refused(s))?;
            println!("{} is now {name}", child.display_name);
        }
        ChildrenCommand::Remove { child } => {
            let child = hub.child(&child).await?;
            hub.client
                .remove_child(v1::RemoveChildRequest {
                    child_id: child.child_id,
                })
                .await
                .map_err(|s| hub.refused(s))?;
            println!("removed {}; their history stays", child.display_name);
        }
    }
    Ok(())
}

//! Enrollment, the CA fingerprint, and who may call what.

mod common;

use common::{Hub, enroll, reason};
use household_proto::v1;
use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;

/// Every RPC of a service in the descriptor set, as gRPC paths.
fn paths_of(service: &str) -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(household_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    set.file
        .iter()
        .flat_map(|file| file.service.iter())
        .filter(|s| s.name() == service)
        .flat_map(|s| {
            s.method
                .iter()
                .map(|m| format!("/household.v1.{service}/{}", m.name()))
        })
        .collect()
}

/// Calls `path` with an empty message and returns the status.
async fn call(channel: tonic::transport::Channel, path: &str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc
        .unary(
            tonic::Request::new(()),
            PathAndQuery::try_from(path).expect("path"),
            codec,
        )
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guardian_enrolls_with_a_code_once_and_a_wrong_fingerprint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let code = hub.invite("guardian", "Anna", None);
    assert!(code.starts_with("hh1."), "{code}");

    // A code naming another CA: the client refuses the hub before sending anything.
    let mut forged = code.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    let err = hub.ca_for(&forged).await.unwrap_err();
    assert!(err.contains("fingerprint"), "{err}");

    let anna = enroll(hub.addr, &code).await.expect("enroll");
    assert_eq!(anna.response.role, v1::Role::Guardian as i32);
    assert_eq!(anna.response.display_name, "Anna");

    // One use only.
    let again = enroll(hub.addr, &code).await.unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
    assert_eq!(reason(&again), "PAIRING_CODE_INVALID");

    // The hub also refuses a code whose fingerprint is not its CA's.
    let ca = hub.ca_for(&code).await.unwrap();
    let mut agent = v1::agent_client::AgentClient::new(common::channel(hub.addr, &ca, None).await);
    let (_, csr) = household_client::new_key_and_csr("x").unwrap();
    let err = agent
        .enroll(v1::EnrollRequest {
            pairing_code: forged,
            credential: Some(v1::enroll_request::Credential::CsrPem(csr)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "PAIRING_CODE_INVALID");

    // A malformed code names the field.
    let err = agent
        .enroll(v1::EnrollRequest {
            pairing_code: "hh1.nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("pairing_code"), "{}", err.message());

    let mut guardian = common::guardian(hub.addr, &anna).await;
    let guardians = guardian
        .list_guardians(v1::ListGuardiansRequest {})
        .await
        .unwrap()
        .into_inner()
        .guardians;
    assert_eq!(guardians.len(), 1);
    assert!(guardians[0].enrolled);
}

/// A guardian's code typed into a child's device (which enrolls as a device) is
/// refused before it is redeemed: it still works for the guardian afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_code_for_the_other_role_is_refused_and_stays_unused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let code = hub.invite("guardian", "Anna", None);
    let err = common::enroll_as(hub.addr, &code, v1::Role::Device)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("expected_role") && err.message().contains("guardian"),
        "{}",
        err.message()
    );
    let anna = common::enroll_as(hub.addr, &code, v1::Role::Guardian)
        .await
        .expect("the code still works for its own role");
    assert_eq!(anna.response.display_name, "Anna");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_refuses_the_wrong_role_and_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut household = common::guardian(hub.addr, &anna).await;
    let mia = household
        .add_child(v1::AddChildRequest {
            display_name: "Mia".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .child
        .unwrap();
    let device_code = hub.invite("device", "Mia's laptop", Some(&mia.child_id));
    let laptop = enroll(hub.addr, &device_code).await.expect("enroll device");
    assert_eq!(laptop.response.role, v1::Role::Device as i32);

    let as_device = common::channel(
        hub.addr,
        &laptop.ca_pem,
        Some((&laptop.chain_pem, &laptop.key_pem)),
    )
    .await;
    let anonymous = common::channel(hub.addr, &anna.ca_pem, None).await;
    let as_guardian = common::channel(
        hub.addr,
        &anna.ca_pem,
        Some((&anna.chain_pem, &anna.key_pem)),
    )
    .await;

    let guardian_rpcs = paths_of("Household");
    assert!(guardian_rpcs.len() >= 20, "{guardian_rpcs:?}");
    for path in &guardian_rpcs {
        let status = call(as_device.clone(), path).await;
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{path} as a device: {status:?}"
        );
        assert_eq!(reason(&status), "GUARDIAN_ROLE_REQUIRED", "{path}");
        let status = call(anonymous.clone(), path).await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} with no credential"
        );
        assert_eq!(reason(&status), "CREDENTIAL_MISSING", "{path}");
    }
    let session = "/household.v1.Agent/Session";
    let status = call(as_guardian.clone(), session).await;
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "Session as a guardian"
    );
    assert_eq!(reason(&status), "DEVICE_ROLE_REQUIRED");
    for path in [session, "/household.v1.Agent/RenewCertificate"] {
        let status = call(anonymous.clone(), path).await;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} with no credential"
        );
    }
    // Admin is not served on the TLS port at all.
    let status = call(as_guardian.clone(), "/household.v1.Admin/CreateInvite").await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    // Revoking the device ends what its certificate may do.
    household
        .revoke_credential(v1::RevokeCredentialRequest {
            identity_id: laptop.response.identity_id.clone(),
            credential_id: String::new(),
        })
        .await
        .unwrap();
    let status = call(as_device.clone(), session).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "CREDENTIAL_INVALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_phone_is_revoked_from_the_other_parents_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, anna) = common::hub_with_guardian(dir.path()).await;
    let mut annas = common::guardian(hub.addr, &anna).await;
    let invite = common::invite_guardian(&mut annas, "Ben").await;
    let ben = enroll(hub.addr, &invite.pairing_code).await.unwrap();
    let mut bens = common::guardian(hub.addr, &ben).await;
    bens.list_children(v1::ListChildrenRequest {})
        .await
        .unwrap();

    let listed = annas
        .list_credentials(v1::ListCredentialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .identities;
    let ben_listed = listed
        .iter()
        .find(|i| i.identity_id == ben.response.identity_id)
        .expect("Ben is listed");
    assert_eq!(ben_listed.credentials.len(), 1);
    assert!(ben_listed.credentials[0].last_used_unix_micros > 0);

    annas
        .revoke_credential(v1::RevokeCredentialRequest {
            identity_id: ben.response.identity_id.clone(),
            credential_id: ben.credential_id(),
        })
        .await
        .unwrap();
    let err = bens
        .list_children(v1::ListChildrenRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    annas
        .list_children(v1::ListChildrenRequest {})
        .await
        .unwrap();

    let history = annas
        .get_history(v1::GetHistoryRequest {
            kinds: vec![v1::EventKind::IdentityRevoked as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(history.len(), 1);
    let actor = history[0].actor.clone().unwrap();
    assert_eq!(
        actor.credential_id,
        anna.credential_id(),
        "names Anna's credential"
    );
}

//! The browser's door: what the TLS port does for the guardians' web app.
//!
//! The web app is served by the hub itself, so its calls are same-origin and a browser
//! never sends a CORS preflight for them. The hub therefore grants no cross-origin
//! access at all: [`SameOriginLayer`], the outermost layer on the TLS port, answers
//! every `OPTIONS` request (a preflight) and every request whose `Origin` header is not
//! the hub's own with 403 Forbidden and no `Access-Control-Allow-*` header, before
//! anything else looks at it. A page on another site can thus neither read an answer
//! nor make a phone's browser act. Native gRPC clients (the CLI, agents, grpcurl) send
//! no `Origin` and pass untouched.
//!
//! The hub's own origin is `https://` and the host the request was sent to (its
//! `:authority`, or `Host` over HTTP/1.1): a browser sets both, and a page cannot forge
//! either. Comparing the two needs no list of the hub's names, which change with the
//! network (an IP address, `hub.local`, a name given with `--advertise`).
//!
//! CSRF has nothing to ride on besides: the web app sends its bearer token in the
//! `authorization` header, which a browser never adds by itself the way it adds a
//! cookie, and the hub sets no cookies.
//!
//! Behind this layer, `tonic_web::GrpcWebLayer` turns `application/grpc-web` and
//! `application/grpc-web-text` calls (HTTP/1.1 or HTTP/2) into gRPC for the services.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};

/// Why a browser's request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A CORS preflight: only a page of another origin sends one.
    Preflight,
    /// An `Origin` header naming another site than the hub (or more than one).
    ForeignOrigin,
}

impl Refusal {
    /// The sentence sent as the 403's body.
    fn message(self) -> &'static str {
        match self {
            Refusal::Preflight => {
                "cross-origin requests are refused: the household web app is served by the hub itself\n"
            }
            Refusal::ForeignOrigin => {
                "this request comes from a page of another origin, which the hub does not serve; open the web app from the hub's own address\n"
            }
        }
    }
}

/// Whether a request may go on, by its method, `Origin` and authority.
pub fn verdict<B>(request: &http::Request<B>) -> Result<(), Refusal> {
    if request.method() == http::Method::OPTIONS {
        return Err(Refusal::Preflight);
    }
    let mut origins = request.headers().get_all(http::header::ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return Ok(());
    };
    if origins.next().is_some() {
        return Err(Refusal::ForeignOrigin);
    }
    let authority = request.uri().authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok())
    });
    match authority {
        Some(authority) if same_origin(origin.as_bytes(), authority) => Ok(()),
        _ => Err(Refusal::ForeignOrigin),
    }
}

/// Whether `origin` (an `Origin` header's value) is `https://` + `authority`, the
/// default port 443 written or not on either side.
pub fn same_origin(origin: &[u8], authority: &str) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    let origin = origin.to_ascii_lowercase();
    let Some(host) = origin.strip_prefix("https://") else {
        return false;
    };
    !host.is_empty()
        && without_default_port(host) == without_default_port(&authority.to_ascii_lowercase())
}

fn without_default_port(host: &str) -> &str {
    host.strip_suffix(":443").unwrap_or(host)
}

/// The layer; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SameOriginLayer;

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOrigin<S>;

    fn layer(&self, inner: S) -> SameOrigin<S> {
        SameOrigin { inner }
    }
}

/// The service [`SameOriginLayer`] wraps around the TLS port's stack.
#[derive(Debug, Clone)]
pub struct SameOrigin<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for SameOrigin<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match verdict(&request) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(refusal) => {
                // The path and the kind of refusal only: headers are never logged.
                tracing::debug!(path = %request.uri().path(), ?refusal, "browser request refused");
                let mut response =
                    http::Response::new(tonic::body::Body::new(refusal.message().to_owned()));
                *response.status_mut() = http::StatusCode::FORBIDDEN;
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("a request")
    }

    #[test]
    fn only_the_hubs_own_origin_passes() {
        assert!(same_origin(b"https://hub.local:7443", "hub.local:7443"));
        assert!(same_origin(b"https://HUB.local:7443", "hub.LOCAL:7443"));
        assert!(same_origin(b"https://192.168.1.5:7443", "192.168.1.5:7443"));
        assert!(same_origin(b"https://hub.local", "hub.local:443"));
        assert!(same_origin(b"https://hub.local:443", "hub.local"));
        assert!(!same_origin(b"http://hub.local:7443", "hub.local:7443"));
        assert!(!same_origin(b"https://hub.local:7444", "hub.local:7443"));
        assert!(!same_origin(b"https://evil.example", "hub.local:7443"));
        assert!(!same_origin(
            b"https://hub.local:7443.evil.example",
            "hub.local:7443"
        ));
        assert!(!same_origin(b"https://hub.local:7443/", "hub.local:7443"));
        assert!(!same_origin(b"null", "hub.local:7443"));
        assert!(!same_origin(b"https://", ""));
        assert!(!same_origin(&[0xff, 0xfe], "hub.local:7443"));
    }

    #[test]
    fn preflights_and_foreign_origins_are_refused_native_calls_pass() {
        let path = "/household.v1.Household/GetStatus";
        // grpcurl, the CLI, agents: no Origin.
        assert_eq!(verdict(&request("POST", path, &[])), Ok(()));
        // The web app, over HTTP/1.1 (Host) and HTTP/2 (:authority in the URI).
        let same = [
            ("origin", "https://hub.local:7443"),
            ("host", "hub.local:7443"),
        ];
        assert_eq!(verdict(&request("POST", path, &same)), Ok(()));
        let h2 = format!("https://hub.local:7443{path}");
        let origin = [("origin", "https://hub.local:7443")];
        assert_eq!(verdict(&request("POST", &h2, &origin)), Ok(()));

        let foreign = [
            ("origin", "https://evil.example"),
            ("host", "hub.local:7443"),
        ];
        assert_eq!(
            verdict(&request("POST", path, &foreign)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(
            verdict(&request("POST", path, &origin)),
            Err(Refusal::ForeignOrigin),
            "an Origin with no authority to compare it with"
        );
        let twice = [
            ("origin", "https://hub.local:7443"),
            ("origin", "https://evil.example"),
            ("host", "hub.local:7443"),
        ];
        assert_eq!(
            verdict(&request("POST", path, &twice)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(
            verdict(&request("OPTIONS", path, &same)),
            Err(Refusal::Preflight)
        );
    }
}

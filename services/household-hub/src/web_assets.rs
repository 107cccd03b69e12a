//! The guardians' web app, served by the hub itself on its TLS port.
//!
//! The app's files (`web/dist`, built from `web/` and committed) are embedded at compile
//! time by `build.rs`, so the hub stays one file. [`WebAssetsLayer`] sits right inside
//! [`crate::web::SameOriginLayer`] and answers `GET` and `HEAD` for the app's paths
//! before gRPC routing sees them; everything else (gRPC and gRPC-Web calls are `POST`)
//! passes on untouched.
//!
//! * `/` and `/pair` are the app's page (`index.html`); the pairing code travels in the
//!   URL fragment (`/pair#hh1.…`), which a browser never sends.
//! * `/ca.pem` is the household CA certificate (public anyway: every TLS handshake
//!   shows it), for a phone to install as trusted; its fingerprint is in the code.
//! * Every other file of `web/dist` is served by its name. Names with a content hash
//!   (`app-HASH.js`) are cached for a year; the rest must be revalidated.
//!
//! Bodies are sent gzip-compressed when the browser accepts gzip (the build writes a
//! `.gz` copy of each file). Every answer carries a strict `Content-Security-Policy`
//! (only this origin's scripts, styles, images and connections; no inline script or
//! style, no framing), `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::Full;
use tonic::codegen::{Bytes, http};
use tower::{Layer, Service};

/// One embedded file.
pub struct Asset {
    /// Its file name in `web/dist`.
    pub name: &'static str,
    /// Its contents.
    pub body: &'static [u8],
    /// Its gzip copy, if the build made one.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The policy sent with every page and file.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether the web app was embedded (`web/dist` existed when the hub was built).
pub fn embedded() -> bool {
    ASSETS.iter().any(|a| a.name == "index.html")
}

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webmanifest") => "application/manifest+json",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A name with a content hash, as esbuild writes them (`app-7QK2ZJ4M.js`).
fn is_hashed(name: &str) -> bool {
    name.split_once('-').is_some_and(|(_, rest)| {
        rest.split_once('.').is_some_and(|(hash, _)| {
            hash.len() >= 8
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
    })
}

fn accepts_gzip<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// What the hub answers to a `GET` or `HEAD` of `path`, if the path is the app's.
/// `ca_pem` is the household CA certificate in PEM.
pub fn respond<B>(
    request: &http::Request<B>,
    ca_pem: &Bytes,
) -> Option<http::Response<tonic::body::Body>> {
    let method = request.method();
    if method != http::Method::GET && method != http::Method::HEAD {
        return None;
    }
    let path = request.uri().path();
    let (body, content_type, cache, gzipped) = if path == "/ca.pem" {
        // What iOS offers to install as a profile, and Android as a CA certificate.
        (
            ca_pem.clone(),
            "application/x-x509-ca-cert",
            "no-cache",
            false,
        )
    } else {
        let name = match path {
            "/" | "/pair" | "/index.html" => "index.html",
            other => other.strip_prefix('/')?,
        };
        if name.contains('/') || name.ends_with(".gz") {
            return None;
        }
        let asset = asset(name)?;
        let cache = if is_hashed(name) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        match asset.gzip {
            Some(z) if accepts_gzip(request) => {
                (Bytes::from_static(z), content_type(name), cache, true)
            }
            _ => (
                Bytes::from_static(asset.body),
                content_type(name),
                cache,
                false,
            ),
        }
    };
    let mut response = http::Response::builder()
        .status(http::StatusCode::OK)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, cache)
        .header(
            http::header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        )
        .header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(http::header::REFERRER_POLICY, "no-referrer")
        .header(http::header::VARY, "Accept-Encoding");
    if gzipped {
        response = response.header(http::header::CONTENT_ENCODING, "gzip");
    }
    if path == "/ca.pem" {
        response = response.header(
            http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"household-ca.pem\"",
        );
    }
    let body = if method == http::Method::HEAD {
        tonic::body::Body::empty()
    } else {
        tonic::body::Body::new(Full::new(body))
    };
    Some(response.body(body).expect("valid static headers"))
}

/// Serves the web app in front of the services; see the module docs.
#[derive(Clone)]
pub struct WebAssetsLayer {
    ca_pem: Bytes,
}

impl WebAssetsLayer {
    /// `ca_pem`: the household CA certificate, served as `/ca.pem`.
    pub fn new(ca_pem: &str) -> WebAssetsLayer {
        WebAssetsLayer {
            ca_pem: Bytes::from(ca_pem.to_owned()),
        }
    }
}

impl<S> Layer<S> for WebAssetsLayer {
    type Service = WebAssets<S>;

    fn layer(&self, inner: S) -> WebAssets<S> {
        WebAssets {
            inner,
            ca_pem: self.ca_pem.clone(),
        }
    }
}

/// The service [`WebAssetsLayer`] wraps around the rest of the TLS port's stack.
#[derive(Clone)]
pub struct WebAssets<S> {
    inner: S,
    ca_pem: Bytes,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for WebAssets<S>
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
        match respond(&request, &self.ca_pem) {
            Some(response) => Box::pin(async move { Ok(response) }),
            None => Box::pin(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, gzip: bool) -> Option<http::Response<tonic::body::Body>> {
        let mut request = http::Request::get(path);
        if gzip {
            request = request.header(http::header::ACCEPT_ENCODING, "gzip, deflate, br");
        }
        respond(&request.body(()).unwrap(), &Bytes::from_static(b"PEM"))
    }

    #[test]
    fn serves_the_page_the_ca_and_hashed_assets() {
        assert!(embedded(), "web/dist must be built and committed");
        let page = get("/", false).unwrap();
        assert_eq!(
            page.headers()[http::header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(page.headers()[http::header::CACHE_CONTROL], "no-cache");
        assert!(
            page.headers()[http::header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'")
        );
        assert!(get("/pair", true).unwrap().headers()[http::header::CONTENT_ENCODING] == "gzip");
        assert_eq!(
            get("/ca.pem", true).unwrap().headers()[http::header::CONTENT_LENGTH],
            "3"
        );
        let js = ASSETS.iter().find(|a| a.name.ends_with(".js")).unwrap();
        let js = get(&format!("/{}", js.name), false).unwrap();
        assert_eq!(
            js.headers()[http::header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        assert!(get("/household.v1.Household/Watch", false).is_none());
        assert!(get("/nope.js", false).is_none());
        assert!(get("/index.html.gz", false).is_none());
        assert!(get("/../Cargo.toml", false).is_none());
        let post = http::Request::post("/").body(()).unwrap();
        assert!(respond(&post, &Bytes::new()).is_none());
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(
            get("/", false)
                .unwrap()
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .is_none()
        );
        let request = http::Request::get("/")
            .header(http::header::ACCEPT_ENCODING, "gzip;q=0, br")
            .body(())
            .unwrap();
        assert!(!accepts_gzip(&request));
        assert!(is_hashed("app-WTI6G3TM.js"));
        assert!(!is_hashed("icon-192.png"));
        assert!(!is_hashed("manifest.webmanifest"));
    }
}

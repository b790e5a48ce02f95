//! GraphiQL at `/graphiql`, served entirely from the binary: GraphiQL, React and ReactDOM are
//! vendored at pinned versions in `crates/api/assets/graphiql/` (by `scripts/vendor-graphiql.sh`,
//! with their SHA-256 sums in `SHA256SUMS`, checked by this module's tests) and embedded here, so
//! the page works offline and behind firewalls, and its `Content-Security-Policy` allows nothing
//! outside this origin.
//!
//! The page loads only `/graphiql/assets/<tag>/…`, where the tag is the GraphiQL version and a
//! digest of every embedded asset: the assets are cached as immutable, and any change to any of
//! them (a new vendored version, or Cohort's own `init.js`) changes every URL. Other names, and
//! other tags, are 404. The routes (and the off switch, `COHORT_GRAPHIQL`) are in [`crate::http`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The vendored GraphiQL (npm `graphiql`), as in `assets/graphiql/VERSIONS`.
pub const GRAPHIQL_VERSION: &str = "3.9.0";
/// The vendored React and ReactDOM (their UMD production builds), as in `VERSIONS`.
pub const REACT_VERSION: &str = "18.3.1";

/// The page's policy: scripts, styles, fonts, images and `fetch` from this origin only (fonts and
/// images also as `data:` URLs, which GraphiQL's stylesheet embeds), no framing, no `<base>`, no
/// form targets. `'unsafe-inline'` for styles only: GraphiQL's dialogs (settings, short keys;
/// react-remove-scroll) insert a `<style>` element, which Chromium refuses without it. No inline
/// or evaluated script, no workers (GraphiQL 3 needs neither).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// Where the assets are mounted; the asset route is `{ASSETS_PATH}/{*path}`.
pub const ASSETS_PATH: &str = "/graphiql/assets";

/// Cache lifetime of an asset: a year, immutable (the URL changes with the content).
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the page loads, in the order the page loads them.
const ASSETS: &[Asset] = &[
    Asset { name: "graphiql.min.css", content_type: CSS, bytes: include_bytes!("../assets/graphiql/graphiql.min.css") },
    Asset { name: "page.css", content_type: CSS, bytes: include_bytes!("../assets/graphiql/page.css") },
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset { name: "graphiql.min.js", content_type: JS, bytes: include_bytes!("../assets/graphiql/graphiql.min.js") },
    Asset { name: "init.js", content_type: JS, bytes: include_bytes!("../assets/graphiql/init.js") },
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<GraphiQL version>-<12 hex digits of a SHA-256 over every asset>`, the assets' path segment.
pub fn tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let mut h = Sha256::new();
        for a in ASSETS {
            h.update(a.name.as_bytes());
            h.update((a.bytes.len() as u64).to_le_bytes());
            h.update(a.bytes);
        }
        format!("{GRAPHIQL_VERSION}-{}", &hex(&h.finalize())[..12])
    })
}

/// The URL path of the asset `name`.
pub fn asset_url(name: &str) -> String {
    format!("{ASSETS_PATH}/{}/{name}", tag())
}

/// `GET /graphiql`'s HTML: nothing but links to the assets (no inline script or style).
pub fn page_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        let mut head = String::new();
        for a in ASSETS {
            if a.content_type == CSS {
                head.push_str(&format!("    <link rel=\"stylesheet\" href=\"{}\">\n", asset_url(a.name)));
            } else {
                head.push_str(&format!("    <script src=\"{}\" defer></script>\n", asset_url(a.name)));
            }
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"utf-8\">\n    \
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n    \
             <meta name=\"robots\" content=\"noindex\">\n    <title>Cohort GraphiQL</title>\n    \
             <link rel=\"icon\" href=\"data:,\">\n{head}  </head>\n  \
             <body>\n    <div id=\"graphiql\">Loading…</div>\n    \
             <noscript>GraphiQL needs JavaScript.</noscript>\n  </body>\n</html>\n"
        )
    })
}

/// The page's response headers besides its content type (`text/html`): its policy, and no
/// caching of the page itself (its asset URLs change with the assets).
pub fn page_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

fn find(path: &str) -> Option<&'static Asset> {
    let (t, name) = path.split_once('/')?;
    if t != tag() {
        return None;
    }
    ASSETS.iter().find(|a| a.name == name)
}

/// `<tag>/<name>` (the part of the path after [`ASSETS_PATH`]): the asset, or 404. `If-None-Match`
/// with the asset's ETag is answered 304.
pub fn asset(path: &str, headers: &HeaderMap) -> Response {
    let Some(a) = find(path) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such asset\n")
            .into_response();
    };
    // The tag digests every asset's bytes (and is in the URL): it identifies this one's too.
    let etag = HeaderValue::from_str(&format!("\"{}\"", tag())).expect("a quoted version and digest is a header value");
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "*" || v.trim().trim_start_matches("W/") == etag.to_str().unwrap_or_default());
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE)),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type))], a.bytes).into_response()
}

/// `GET /graphiql/assets/{*path}`: 404 (as `/graphiql`) when GraphiQL is off.
pub async fn asset_handler(
    State(st): State<crate::http::AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !st.graphiql {
        return StatusCode::NOT_FOUND.into_response();
    }
    asset(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256SUMS: &str = include_str!("../assets/graphiql/SHA256SUMS");
    const VERSIONS: &str = include_str!("../assets/graphiql/VERSIONS");

    #[test]
    fn graphiql_embedded_assets_match_sha256sums() {
        let mut listed = 0;
        for line in SHA256SUMS.lines().filter(|l| !l.trim().is_empty()) {
            let (sum, name) = line.split_once("  ").unwrap_or_else(|| panic!("not sha256sum format: {line:?}"));
            let a = ASSETS.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert_eq!(
                hex(&Sha256::digest(a.bytes)),
                sum,
                "{name} differs from SHA256SUMS (re-run the vendor script?)"
            );
            listed += 1;
        }
        // Every embedded file is either vendored (and listed) or Cohort's own.
        let own = ["init.js", "page.css"];
        for a in ASSETS {
            assert!(
                own.contains(&a.name) || SHA256SUMS.lines().any(|l| l.ends_with(&format!("  {}", a.name))),
                "{} is embedded but not in SHA256SUMS",
                a.name
            );
        }
        assert_eq!(listed, ASSETS.len() - own.len());
    }

    #[test]
    fn graphiql_versions_match_the_vendored_files() {
        for (package, version) in
            [("graphiql", GRAPHIQL_VERSION), ("react", REACT_VERSION), ("react-dom", REACT_VERSION)]
        {
            let line = VERSIONS
                .lines()
                .find(|l| l.split(' ').next() == Some(package))
                .unwrap_or_else(|| panic!("{package} is not in VERSIONS"));
            assert_eq!(line.split(' ').nth(1), Some(version), "VERSIONS: {line}");
        }
        assert!(tag().starts_with(&format!("{GRAPHIQL_VERSION}-")));
    }

    #[test]
    fn graphiql_page_loads_only_its_own_assets() {
        let html = page_html();
        assert!(!html.contains("//"), "no absolute or protocol-relative URL:\n{html}");
        assert!(!html.contains("<script>") && !html.contains("<style"), "no inline script or style:\n{html}");
        for a in ASSETS {
            assert!(html.contains(&format!("\"{}\"", asset_url(a.name))), "{} is not loaded:\n{html}", a.name);
        }
        for src in html.split("src=\"").skip(1).chain(html.split("href=\"").skip(1)) {
            let url = &src[..src.find('"').expect("test value")];
            // The empty icon spares the browser its request for /favicon.ico.
            assert!(url == "data:," || url.starts_with(&format!("{ASSETS_PATH}/{}/", tag())), "{url}");
        }
    }

    #[test]
    fn graphiql_assets_are_served_by_tag_and_name() {
        let none = HeaderMap::new();
        let ok = asset(&format!("{}/graphiql.min.js", tag()), &none);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], JS);
        assert_eq!(ok.headers()[header::CACHE_CONTROL], ASSET_CACHE);
        let etag = ok.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(asset(&format!("{}/graphiql.min.js", tag()), &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(asset(&format!("{}/graphiql.min.css", tag()), &none).headers()[header::CONTENT_TYPE], CSS);
        for bad in [
            format!("{}/nope.js", tag()),
            format!("{}/../graphiql.min.js", tag()),
            format!("{}/SHA256SUMS", tag()),
            format!("{GRAPHIQL_VERSION}-000000000000/graphiql.min.js"),
            "graphiql.min.js".to_owned(),
            String::new(),
        ] {
            assert_eq!(asset(&bad, &none).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }
}

//! Persisted queries: a request may name its document by SHA-256 instead of sending it.
//!
//! - **Automatic persisted queries** (Apollo's `extensions.persistedQuery` protocol,
//!   `{version: 1, sha256Hash}`): a client sends the hash alone; an unknown hash answers
//!   `PERSISTED_QUERY_NOT_FOUND` and the client sends hash and document together, which is
//!   checked (the hash must be the document's SHA-256, or the request is refused and nothing is
//!   stored), run, and remembered in a bounded LRU cache (`COHORT_APQ_CACHE_SIZE`, 0 = off) once it
//!   has passed parsing, validation and the limits. Hash-only requests make short, stable `GET`
//!   URLs.
//! - **Trusted documents** (`COHORT_TRUSTED_DOCUMENTS`, the production mode the OWASP GraphQL
//!   cheat sheet recommends): only the documents of a manifest run — named by hash, or sent as
//!   text whose SHA-256 is in the manifest. Every entry's hash is checked when the configuration
//!   is read, before the database is touched. Where introspection is enabled
//!   (`COHORT_INTROSPECTION`), documents that only introspect (`__schema`, `__type`,
//!   `__typename`) run without being listed; where it is off, they are refused like any other.
//!
//! The document is resolved before anything else looks at the request, so a persisted document
//! is treated exactly like a sent one: the same limits (depth, complexity, aliases), and a
//! mutation over `GET` is refused whether it was sent or named. The GraphQL-over-HTTP spec's
//! `documentId: "sha256:<hex>"` parameter (its persisted-documents appendix) names a document
//! the same way.

use crate::config::ConfigError;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// `COHORT_APQ_CACHE_SIZE` unless set.
pub const DEFAULT_APQ_CACHE_SIZE: usize = 1000;
/// The most `COHORT_APQ_CACHE_SIZE` may be.
pub const MAX_APQ_CACHE_SIZE: usize = 1_000_000;
/// What the cached documents may take in all (their text and hashes): the least recently used
/// go first beyond it, however many entries the cache may hold.
pub const APQ_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// How requests may name their documents (`COHORT_APQ_CACHE_SIZE`, `COHORT_TRUSTED_DOCUMENTS`).
#[derive(Debug, Clone)]
pub struct PersistedSettings {
    /// Documents the automatic-persisted-query cache holds; 0 turns it off.
    pub apq_cache_size: usize,
    /// When set, only these documents run (and the cache is not used).
    pub trusted: Option<Arc<TrustedDocuments>>,
}

impl Default for PersistedSettings {
    fn default() -> Self {
        PersistedSettings { apq_cache_size: DEFAULT_APQ_CACHE_SIZE, trusted: None }
    }
}

/// The SHA-256 of a document's text, in lower-case hex (what Apollo's clients send).
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------------
// Trusted documents

/// The documents of a trusted-documents manifest, by SHA-256.
pub struct TrustedDocuments {
    source: String,
    docs: HashMap<String, Arc<str>>,
}

impl std::fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedDocuments({}, {} documents)", self.source, self.docs.len())
    }
}

const VAR: &str = "COHORT_TRUSTED_DOCUMENTS";

impl TrustedDocuments {
    /// Reads and checks the manifest at `path` (see [`TrustedDocuments::parse`]).
    pub fn load(path: &Path) -> Result<TrustedDocuments, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{VAR}: cannot read '{}': {e}", path.display())))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// A manifest in either format:
    /// - Apollo's (`generate-persisted-query-manifest`): `{"format":
    ///   "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name", "type",
    ///   "body"}]}`, `id` being the SHA-256 of `body`;
    /// - a plain object `{"<sha256>": "<document>"}` (keys may carry the `sha256:` prefix).
    ///
    /// Every entry's hash must be its document's SHA-256 and every document must parse; the
    /// first entry that fails is named in the error. An empty manifest is refused too (nothing
    /// could run).
    pub fn parse(source: &str, text: &str) -> Result<TrustedDocuments, ConfigError> {
        let err = |m: String| ConfigError(format!("{VAR}: '{source}': {m}"));
        let v: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(err("expected a JSON object (Apollo's manifest, or {\"<sha256>\": \"<document>\"})".into()));
        };
        // (label for errors, claimed hash, document)
        let mut entries: Vec<(String, String, String)> = vec![];
        if let Some(format) = obj.get("format") {
            if format != "apollo-persisted-query-manifest" {
                return Err(err(format!("unknown manifest format {format}")));
            }
            if obj.get("version") != Some(&json!(1)) {
                return Err(err("only version 1 of apollo-persisted-query-manifest is supported".into()));
            }
            let Some(Value::Array(ops)) = obj.get("operations") else {
                return Err(err("'operations' must be a list".into()));
            };
            for (i, op) in ops.iter().enumerate() {
                let name = op.get("name").and_then(Value::as_str);
                let label = match name {
                    Some(n) => format!("operations[{i}] (\"{n}\")"),
                    None => format!("operations[{i}]"),
                };
                let (Some(id), Some(body)) =
                    (op.get("id").and_then(Value::as_str), op.get("body").and_then(Value::as_str))
                else {
                    return Err(err(format!("entry {label} needs a string 'id' and a string 'body'")));
                };
                entries.push((label, id.to_owned(), body.to_owned()));
            }
        } else {
            for (k, v) in &obj {
                let Some(body) = v.as_str() else {
                    return Err(err(format!("entry \"{k}\": the document must be a string")));
                };
                let id = k.strip_prefix("sha256:").unwrap_or(k);
                entries.push((format!("\"{k}\""), id.to_owned(), body.to_owned()));
            }
        }
        if entries.is_empty() {
            return Err(err("the manifest lists no documents, so nothing could run".into()));
        }
        let mut docs = HashMap::with_capacity(entries.len());
        for (label, id, body) in entries {
            if !is_sha256_hex(&id) {
                return Err(err(format!("entry {label}: '{id}' is not a SHA-256 hash (64 hex digits)")));
            }
            let actual = sha256_hex(&body);
            if actual != id.to_ascii_lowercase() {
                return Err(err(format!(
                    "entry {label}: '{id}' is not the SHA-256 of its document (that is {actual})"
                )));
            }
            if crate::graphql::has_surrogate_escape(&body) {
                return Err(err(format!(
                    "entry {label}: the document does not parse (a \\u escape names a surrogate)"
                )));
            }
            if let Err(e) = async_graphql::parser::parse_query(&body) {
                return Err(err(format!("entry {label}: the document does not parse: {e}")));
            }
            docs.insert(actual, Arc::from(body));
        }
        Ok(TrustedDocuments { source: source.to_owned(), docs })
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.docs.get(hash).cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// The APQ cache

/// A least-recently-used map from hash to document, bounded in entries and bytes.
struct Lru {
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    clock: u64,
    entries: HashMap<String, (Arc<str>, u64)>,
    by_use: BTreeMap<u64, String>,
}

impl Lru {
    fn new(capacity: usize, max_bytes: usize) -> Lru {
        Lru { capacity, max_bytes, bytes: 0, clock: 0, entries: HashMap::new(), by_use: BTreeMap::new() }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn get(&mut self, key: &str) -> Option<Arc<str>> {
        let now = self.tick();
        let (doc, used) = self.entries.get_mut(key)?;
        let doc = doc.clone();
        let before = std::mem::replace(used, now);
        self.by_use.remove(&before);
        self.by_use.insert(now, key.to_owned());
        Some(doc)
    }

    fn put(&mut self, key: String, doc: Arc<str>) {
        let size = key.len() + doc.len();
        if self.capacity == 0 || size > self.max_bytes {
            return;
        }
        if self.get(&key).is_some() {
            return;
        }
        let now = self.tick();
        self.by_use.insert(now, key.clone());
        self.entries.insert(key, (doc, now));
        self.bytes += size;
        while self.entries.len() > self.capacity || self.bytes > self.max_bytes {
            let Some((_, oldest)) = self.by_use.pop_first() else { break };
            if let Some((doc, _)) = self.entries.remove(&oldest) {
                self.bytes -= oldest.len() + doc.len();
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving a request's document

enum Mode {
    /// `COHORT_APQ_CACHE_SIZE=0`: hashes are not understood.
    Off,
    Automatic(Mutex<Lru>),
    Trusted {
        docs: Arc<TrustedDocuments>,
        introspection: bool,
    },
}

/// How this server resolves persisted documents; one per process (in the HTTP state).
pub struct Persisted {
    mode: Mode,
}

/// A document sent with its hash, to be remembered once it has run (see [`Persisted::settle`]).
pub struct Pending {
    hash: String,
    doc: Arc<str>,
}

/// Why a request's document could not be resolved. Each answers with one error and no `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed `persistedQuery` extension or `documentId` (400, `BAD_REQUEST`).
    Malformed(String),
    /// The hash is not the SHA-256 of the document sent with it (400, `BAD_USER_INPUT`); nothing
    /// is stored.
    HashMismatch,
    /// Automatic persisted queries: the hash is unknown, send the document with it (200,
    /// `PERSISTED_QUERY_NOT_FOUND`).
    NotFound,
    /// Automatic persisted queries are off (200, `PERSISTED_QUERY_NOT_SUPPORTED`): send the
    /// document itself.
    NotSupported,
    /// Trusted documents: no document of the manifest has this hash (`PERSISTED_QUERY_NOT_FOUND`,
    /// status as for a document that fails validation).
    UnknownTrusted,
    /// Trusted documents: the document sent is not in the manifest (`TRUSTED_DOCUMENT_REQUIRED`,
    /// status as for a document that fails validation).
    NotTrusted,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "BAD_REQUEST",
            Refusal::HashMismatch => "BAD_USER_INPUT",
            Refusal::NotFound | Refusal::UnknownTrusted => "PERSISTED_QUERY_NOT_FOUND",
            Refusal::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Refusal::NotTrusted => "TRUSTED_DOCUMENT_REQUIRED",
        }
    }

    /// The messages Apollo's clients recognise (`PersistedQueryNotFound`,
    /// `PersistedQueryNotSupported`, as Apollo Server words them) where they apply.
    pub fn message(&self) -> String {
        match self {
            Refusal::Malformed(m) => m.clone(),
            Refusal::HashMismatch => "provided sha does not match query".into(),
            Refusal::NotFound | Refusal::UnknownTrusted => "PersistedQueryNotFound".into(),
            Refusal::NotSupported => "PersistedQueryNotSupported".into(),
            Refusal::NotTrusted => {
                "this server runs trusted documents only, and this document is not one of them".into()
            }
        }
    }

    /// The HTTP status. `graphql_response`: the response is `application/graphql-response+json`.
    ///
    /// Malformed requests are 400 under either media type. The trusted-documents refusals are
    /// like a document that fails validation: 400 under `application/graphql-response+json`,
    /// 200 under `application/json` (the GraphQL-over-HTTP spec). The automatic-persisted-query
    /// answers `PERSISTED_QUERY_NOT_FOUND` / `_NOT_SUPPORTED` are 200 under both, as Apollo
    /// Server answers them: they are a step of the protocol, not a failed request, and clients
    /// (Apollo Client 3, Apollo Kotlin) treat a 4xx there as "no persisted queries here" or as a
    /// transport failure instead of sending the document.
    pub fn status(&self, graphql_response: bool) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::HashMismatch => 400,
            Refusal::NotFound | Refusal::NotSupported => 200,
            Refusal::UnknownTrusted | Refusal::NotTrusted => {
                if graphql_response {
                    400
                } else {
                    200
                }
            }
        }
    }

    /// The response body: one error with its code, no `data`.
    pub fn body(&self) -> Value {
        json!({ "errors": [ { "message": self.message(), "extensions": { "code": self.code() } } ] })
    }
}

/// The `persistedQuery` extension or the `documentId` parameter: the hash a request names.
fn named_hash(obj: &Map<String, Value>) -> Result<Option<String>, Refusal> {
    let malformed = |m: &str| Err(Refusal::Malformed(m.to_owned()));
    let from_extension = match obj.get("extensions").and_then(|e| e.get("persistedQuery")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(pq)) => {
            if pq.get("version").and_then(Value::as_i64) != Some(1) {
                return malformed("only version 1 of extensions.persistedQuery is supported");
            }
            match pq.get("sha256Hash").and_then(Value::as_str) {
                Some(h) if is_sha256_hex(h) => Some(h.to_ascii_lowercase()),
                _ => return malformed("extensions.persistedQuery.sha256Hash must be a SHA-256 hash (64 hex digits)"),
            }
        }
        Some(_) => return malformed("extensions.persistedQuery must be an object {version: 1, sha256Hash}"),
    };
    let from_document_id = match obj.get("documentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => match id.strip_prefix("sha256:") {
            Some(h) if is_sha256_hex(h) => Some(h.to_ascii_lowercase()),
            _ => return malformed("'documentId' must be \"sha256:\" and 64 hex digits"),
        },
        Some(_) => return malformed("'documentId' must be a string"),
    };
    match (from_extension, from_document_id) {
        (Some(a), Some(b)) if a != b => malformed("extensions.persistedQuery and 'documentId' name different hashes"),
        (a, b) => Ok(a.or(b)),
    }
}

/// Whether every operation of `doc` selects only `__schema`, `__type` and `__typename` at its
/// root (through fragments).
fn only_introspection(doc: &ExecutableDocument) -> bool {
    fn set_ok(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
        depth < 16
            && set.items.iter().all(|s| match &s.node {
                Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type" | "__typename"),
                Selection::InlineFragment(f) => set_ok(doc, &f.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(f) => doc
                    .fragments
                    .get(&f.node.fragment_name.node)
                    .is_some_and(|fr| set_ok(doc, &fr.node.selection_set.node, depth + 1)),
            })
    }
    let ops: Vec<&SelectionSet> = match &doc.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(m) => m.values().map(|op| &op.node.selection_set.node).collect(),
    };
    !ops.is_empty() && ops.into_iter().all(|set| set_ok(doc, set, 0))
}

fn is_introspection(text: &str) -> bool {
    !crate::graphql::has_surrogate_escape(text)
        && async_graphql::parser::parse_query(text).is_ok_and(|doc| only_introspection(&doc))
}

impl Persisted {
    pub fn new(settings: &PersistedSettings, introspection: bool) -> Persisted {
        let mode = match (&settings.trusted, settings.apq_cache_size) {
            (Some(docs), _) => {
                tracing::info!(documents = docs.len(), source = %docs.source, "only trusted documents run");
                Mode::Trusted { docs: docs.clone(), introspection }
            }
            (None, 0) => Mode::Off,
            (None, n) => Mode::Automatic(Mutex::new(Lru::new(n, APQ_CACHE_BYTES))),
        };
        Persisted { mode }
    }

    /// Resolves the document of one request (a JSON object of GraphQL-over-HTTP parameters):
    /// puts the persisted document into its `query` where it names one by hash, and checks a
    /// sent document against the hash it came with or the trusted documents. Returns the
    /// parameters to run, and the document to remember once it has run (see
    /// [`Persisted::settle`]). Parameters of the wrong type are left for the caller to refuse.
    pub fn resolve(&self, mut obj: Map<String, Value>) -> Result<(Map<String, Value>, Option<Pending>), Refusal> {
        let hash = named_hash(&obj)?;
        let sent = obj.get("query").and_then(Value::as_str).map(Arc::<str>::from);
        match &self.mode {
            Mode::Off if hash.is_some() => Err(Refusal::NotSupported),
            Mode::Off => Ok((obj, None)),
            Mode::Automatic(cache) => match (hash, sent) {
                (None, _) => Ok((obj, None)),
                (Some(hash), Some(doc)) => {
                    if sha256_hex(&doc) != hash {
                        return Err(Refusal::HashMismatch);
                    }
                    Ok((obj, Some(Pending { hash, doc })))
                }
                (Some(hash), None) => {
                    let doc = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&hash).ok_or(Refusal::NotFound)?;
                    obj.insert("query".into(), Value::String(doc.to_string()));
                    Ok((obj, None))
                }
            },
            Mode::Trusted { docs, introspection } => match (hash, sent) {
                (Some(hash), Some(doc)) => {
                    if sha256_hex(&doc) != hash {
                        return Err(Refusal::HashMismatch);
                    }
                    if docs.get(&hash).is_none() {
                        return Err(Refusal::NotTrusted);
                    }
                    Ok((obj, None))
                }
                (Some(hash), None) => {
                    let doc = docs.get(&hash).ok_or(Refusal::UnknownTrusted)?;
                    obj.insert("query".into(), Value::String(doc.to_string()));
                    Ok((obj, None))
                }
                (None, Some(doc)) => {
                    if docs.get(&sha256_hex(&doc)).is_some() || (*introspection && is_introspection(&doc)) {
                        Ok((obj, None))
                    } else {
                        Err(Refusal::NotTrusted)
                    }
                }
                // No document at all (or `query` of the wrong type): the caller refuses it.
                (None, None) => Ok((obj, None)),
            },
        }
    }

    /// Remembers a document sent with its hash, once it has run: `failed` = it was refused
    /// before execution (parse, validation, limits, …), and then it is not stored.
    pub fn settle(&self, pending: Option<Pending>, failed: bool) {
        let (Some(p), false) = (pending, failed) else { return };
        if let Mode::Automatic(cache) = &self.mode {
            cache.lock().unwrap_or_else(|e| e.into_inner()).put(p.hash, p.doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "{ __typename }";

    #[test]
    fn the_cache_forgets_the_least_recently_used_first() {
        let mut lru = Lru::new(2, 1024);
        lru.put("a".into(), "A".into());
        lru.put("b".into(), "B".into());
        assert!(lru.get("a").is_some()); // `b` is now the least recently used
        lru.put("c".into(), "C".into());
        assert_eq!(
            (lru.get("a").as_deref(), lru.get("b").as_deref(), lru.get("c").as_deref()),
            (Some("A"), None, Some("C"))
        );
        // Bounded in bytes, too: a big document pushes out older ones; one bigger than the whole
        // budget is never stored.
        let mut lru = Lru::new(10, 10);
        lru.put("a".into(), "12345".into());
        lru.put("b".into(), "12345".into());
        assert_eq!((lru.len(), lru.bytes), (1, 6));
        assert!(lru.get("b").is_some());
        lru.put("c".into(), "12345678901".into());
        assert!(lru.get("c").is_none());
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn manifests_in_both_formats_are_checked_entry_by_entry() {
        let h = sha256_hex(Q);
        let apollo = json!({"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": h, "name": "T", "type": "query", "body": Q}]});
        let t = TrustedDocuments::parse("m.json", &apollo.to_string()).unwrap(); // ok: unit test
        assert_eq!(t.get(&h).as_deref(), Some(Q));
        let plain = json!({ format!("sha256:{h}"): Q });
        assert_eq!(TrustedDocuments::parse("m.json", &plain.to_string()).unwrap().len(), 1); // ok: unit test
        let wrong = json!({"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": h, "name": "Good", "body": Q}, {"id": h, "name": "Bad", "body": "{ viewer { user { id } } }"}]});
        let e = TrustedDocuments::parse("m.json", &wrong.to_string()).unwrap_err().0; // ok: unit test
        assert!(e.contains("operations[1] (\"Bad\")") && e.contains("COHORT_TRUSTED_DOCUMENTS"), "{e}");
        for (bad, says) in [
            (json!({"x": Q}).to_string(), "not a SHA-256"),
            (json!({ sha256_hex("{"): "{" }).to_string(), "does not parse"),
            ("{}".into(), "no documents"),
            ("[]".into(), "expected a JSON object"),
            ("{".into(), "not valid JSON"),
            (
                json!({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}).to_string(),
                "version 1",
            ),
        ] {
            let e = TrustedDocuments::parse("m.json", &bad).unwrap_err().0; // ok: unit test
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn only_pure_introspection_documents_count_as_introspection() {
        assert!(is_introspection("{ __schema { types { name } } }"));
        assert!(is_introspection("query { ...F __typename } fragment F on Query { __type(name: \"X\") { name } }"));
        assert!(!is_introspection("{ __schema { types { name } } viewer { user { id } } }"));
        assert!(!is_introspection("query { ...F } fragment F on Query { viewer { user { id } } }"));
        assert!(!is_introspection("mutation { __typename } query { __typename } {"));
    }

    fn req(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap() // ok: unit test
    }

    #[test]
    fn named_hashes_are_checked_for_shape() {
        let h = sha256_hex(Q);
        let pq = |v: Value| named_hash(&req(json!({"extensions": {"persistedQuery": v}})));
        assert_eq!(pq(json!({"version": 1, "sha256Hash": h.to_uppercase()})), Ok(Some(h.clone())));
        assert!(matches!(pq(json!({"version": 2, "sha256Hash": h})), Err(Refusal::Malformed(_))));
        assert!(matches!(pq(json!({"version": 1, "sha256Hash": "abc"})), Err(Refusal::Malformed(_))));
        assert!(matches!(pq(json!("x")), Err(Refusal::Malformed(_))));
        assert_eq!(named_hash(&req(json!({"documentId": format!("sha256:{h}")}))), Ok(Some(h.clone())));
        assert!(matches!(named_hash(&req(json!({"documentId": h}))), Err(Refusal::Malformed(_))));
        assert_eq!(named_hash(&req(json!({"query": Q}))), Ok(None));
    }
}

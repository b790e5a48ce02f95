//! The README runs verbatim: every example in README.md is run, in the README's order, against a
//! fresh `cohort serve --demo` started from the built binary (SQLite in a temporary directory,
//! `COHORT_JWT_SECRET` set, so that `cohort token` issues tokens it accepts — as the README says).
//!
//! # The convention
//!
//! Fenced blocks are examples; a block may be preceded (on the line before its opening fence) by
//! an HTML comment the reader does not see, `<!-- readme-test: {JSON} -->`, with:
//!
//! - `"skip": "why"` — not run (a ```graphql block is still validated). Every block in another
//!   language than `graphql` and `sh` (and ```json answers, below) must say why it is skipped or
//!   name a harness: nothing is left out silently.
//! - `"vars": {...}` — the GraphQL variables. A string `"@kind:name"` stands for the id of the
//!   demo record of that kind and name ([`LOOKUPS`]), looked up when the block runs — so it may
//!   name what an earlier example created. The text next to the block tells the reader which
//!   record each variable is.
//! - `"as": "AGENT"` — the shell variable holding the token to use (default `TOKEN`). The tokens
//!   are the ones the README's own `cohort token` commands put into the shell.
//! - `"error": "CODE"` — the example shows a refusal: the request must fail with this code.
//! - `"errors": ["CODE", ...]` (shell) — answers with these error codes are expected.
//! - `"harness": "script" | "subscribe" | "verify-webhook"` (Python) — how the block is run
//!   (below).
//!
//! # What is checked
//!
//! - Every ```graphql block is parsed and validated by the live server (sent with an operation
//!   name it does not contain: a valid document gets exactly "Unknown operation named"), holds
//!   exactly one operation, and — unless skipped — is executed with no `errors` (or the declared
//!   code). Subscriptions run over WebSocket (`graphql-transport-ws`), replaying from `$after`.
//! - Every ```sh block runs in one `bash` session, like a reader's terminal (variables and
//!   functions carry over), with the binary's directory on `PATH`, `COHORT_JWT_SECRET` exported
//!   and `:8080` replaced by the test server's port (in the test, not in the README). Its output
//!   must be JSON answers only (bash or jq complaints fail it), none an error unless declared.
//! - `# → key: value` comments (in GraphQL, and after shell commands) state results: each
//!   `key: <JSON scalar>` pair (also `"key": …`) must occur in the answer (a string with `…`
//!   matches by its beginning and end). In a shell block each comment is matched against one
//!   answer, in order. A ```json block right after a ```graphql block is its complete answer.
//! - Numbers the prose states about the demo ([`CLAIMS`]) match what the fresh demo returns.
//! - The demo honours `COHORT_JWT_SECRET`: the admin token it prints is signed with it.
//! - Python: `verify-webhook` runs the block's `verify` on a message signed as the worker signs
//!   (it must accept it, and refuse it tampered with or too old); `script` runs the block to its
//!   end (it must print JSON answers without errors, matching its `# →` comments); `subscribe`
//!   runs the block as a `gql` client and waits for the event of a change made meanwhile. Without python3 (or its
//!   `gql`) they are skipped, loudly; `COHORT_TEST_REQUIRE_PYTHON_TOOLS=1`, set by `.ci/run`,
//!   makes that a failure. `bash`, `curl` and `jq` are needed: without one the test is skipped,
//!   loudly, unless `COHORT_TEST_REQUIRE_README_TOOLS=1` (set by `.ci/run`, which installs them).
//!
//! # Order and state
//!
//! One demo server for the whole README, blocks in the README's order: examples build on earlier
//! ones as a reader's would (the ERP creates Paula Novak, the erasure example erases her). The
//! claims are checked first, with tokens from `cohort token`, before any example changes the
//! demo. An example that changes what a later one counts must come after it — the test says
//! which number moved. `@event:first` is the oldest event (a replay point for subscriptions).

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "readme-test-secret-readme-test-secret-0123";
/// How long one block may take before the test gives up on it (a hang guard, not a timing check).
const BLOCK_LIMIT: Duration = Duration::from_secs(120);
/// An operation name no README document contains: validation runs, execution never does.
const VALIDATE_ONLY: &str = "ReadmeTestValidateOnly";

/// Numbers the README's prose states about the demo: the text with `{n}` where the number
/// stands, who asks (subject, role), the query, and where the number is in the answer's `data`.
const CLAIMS: &[(&str, (&str, &str), &str, &str)] = &[
    (
        "creates a demo tenant ({n} address books",
        ("demo-admin", "admin"),
        "{ addressBooks { totalCount } }",
        "/addressBooks/totalCount",
    ),
    (
        "grants, {n} contacts, a group hierarchy",
        ("demo-admin", "admin"),
        "{ contacts { totalCount } }",
        "/contacts/totalCount",
    ),
    (
        "the agent sees {n} of the three books",
        ("demo-agent", "agent"),
        "{ addressBooks { totalCount } }",
        "/addressBooks/totalCount",
    ),
];

/// `@kind:name` → the query listing that kind, the list in its `data`, and each item's name
/// and id within the item.
const LOOKUPS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "book",
        "{ addressBooks(first: 100) { edges { node { id name } } } }",
        "/addressBooks/edges",
        "/node/name",
        "/node/id",
    ),
    ("group", "{ groups(first: 100) { edges { node { id name } } } }", "/groups/edges", "/node/name", "/node/id"),
    (
        "contact",
        "{ contacts(first: 100) { edges { node { id displayName } } } }",
        "/contacts/edges",
        "/node/displayName",
        "/node/id",
    ),
    ("user", "{ users(first: 100) { edges { node { id subject } } } }", "/users/edges", "/node/subject", "/node/id"),
    (
        "userGroup",
        "{ userGroups(first: 100) { edges { node { id name } } } }",
        "/userGroups/edges",
        "/node/name",
        "/node/id",
    ),
    ("processingArea", "{ processingAreas { id name } }", "/processingAreas", "/name", "/id"),
    ("processArea", "{ processAreas { id key } }", "/processAreas", "/key", "/id"),
    (
        "ticket",
        "{ tickets(first: 100) { edges { node { id subject } } } }",
        "/tickets/edges",
        "/node/subject",
        "/node/id",
    ),
    ("consentText", "{ consentTexts { id purpose } }", "/consentTexts", "/purpose", "/id"),
    // `@event:first`: the oldest event (a replay point for subscriptions).
    ("event", "{ events(first: 1) { edges { node { id } } } }", "/events/edges", "", "/node/id"),
];

// ---------------------------------------------------------------------------------------------
// The README's blocks

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    text: String,
    note: Value,
    /// A ```json block right after a ```graphql block: its answer (line, text).
    answer: Option<(usize, String)>,
}

impl Block {
    fn note_str(&self, key: &str) -> Option<&str> {
        self.note.get(key).and_then(Value::as_str)
    }
}

fn readme_blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks: Vec<Block> = vec![];
    // (index in `blocks`, last line) of the block before, to attach answers.
    let mut previous: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(lang) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let start = i;
        let mut body = vec![];
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let l = lines[i];
            body.push(if l.len() >= indent && l[..indent].trim().is_empty() { &l[indent..] } else { l.trim_start() });
            i += 1;
        }
        assert!(i < lines.len(), "README line {}: a fence that is never closed", start + 1);
        let note = note_before(&lines, start);
        let block = Block {
            line: start + 1,
            lang: lang.trim().to_owned(),
            text: body.join("\n") + "\n",
            note: note.unwrap_or(Value::Null),
            answer: None,
        };
        let follows_directly =
            previous.is_some_and(|(_, end)| lines[end + 1..start].iter().all(|l| l.trim().is_empty()));
        match previous {
            Some((p, _))
                if block.lang == "json" && block.note.is_null() && follows_directly && blocks[p].lang == "graphql" =>
            {
                blocks[p].answer = Some((block.line, block.text));
            }
            _ => blocks.push(block),
        }
        previous = Some((blocks.len() - 1, i));
        i += 1;
    }
    blocks
}

/// The `<!-- readme-test: {...} -->` note on the line before `fence`, if any.
fn note_before(lines: &[&str], fence: usize) -> Option<Value> {
    let line = lines.get(fence.checked_sub(1)?)?.trim();
    let json = line.strip_prefix("<!-- readme-test:")?.strip_suffix("-->")?;
    match serde_json::from_str::<Value>(json.trim()) {
        Ok(v) if v.is_object() => Some(v),
        _ => panic!("README line {fence}: a readme-test note must hold one JSON object: {line}"),
    }
}

/// The kinds (`query`, `mutation`, `subscription`, `fragment`) of a document's top-level
/// definitions, skipping comments and strings.
fn definitions(doc: &str) -> Vec<String> {
    let chars: Vec<char> = doc.chars().collect();
    let (mut depth, mut i, mut expect, mut kinds) = (0usize, 0usize, true, vec![]);
    while i < chars.len() {
        match chars[i] {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let block = chars[i..].starts_with(&['"', '"', '"']);
                i += if block { 3 } else { 1 };
                while i < chars.len() {
                    if block && chars[i..].starts_with(&['"', '"', '"']) {
                        i += 2;
                        break;
                    }
                    if !block && chars[i] == '\\' {
                        i += 1;
                    } else if !block && chars[i] == '"' {
                        break;
                    }
                    i += 1;
                }
            }
            '{' => {
                if depth == 0 && expect {
                    kinds.push("query".to_owned());
                    expect = false;
                }
                depth += 1;
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    expect = true;
                }
            }
            c if depth == 0 && expect && c.is_ascii_alphabetic() => {
                let word: String = chars[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').collect();
                i += word.len() - 1;
                kinds.push(word);
                expect = false;
            }
            _ => {}
        }
        i += 1;
    }
    kinds
}

/// The `# →` comments of a block, each with its continuation lines (comment lines right after
/// it that hold no arrow of their own).
fn arrow_comments(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut open = false;
    for line in text.lines() {
        if let Some(pos) = line.find("# →") {
            out.push(line[pos + "# →".len()..].to_owned());
            open = true;
        } else if open && line.trim_start().starts_with('#') {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim_start().trim_start_matches('#'));
            }
        } else {
            open = false;
        }
    }
    out
}

/// The `key: value` pairs of a `# →` comment whose value is a JSON scalar.
fn stated_pairs(comment: &str) -> Vec<(String, Value)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut pairs = vec![];
    let mut i = 0;
    while i < comment.len() {
        let rest = &comment[i..];
        let Some(c) = rest.chars().next() else { break };
        let prev_ident = comment[..i].chars().next_back().is_some_and(is_ident);
        let key_end = if c == '"' {
            rest[1..].find('"').map(|e| (&rest[1..1 + e], e + 2))
        } else if (c.is_ascii_alphabetic() || c == '_') && !prev_ident {
            let e = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            Some((&rest[..e], e))
        } else {
            None
        };
        let Some((key, end)) = key_end else {
            i += c.len_utf8();
            continue;
        };
        let value = rest[end..].strip_prefix(": ").and_then(scalar);
        match value {
            Some((v, len)) if !key.is_empty() && key.chars().all(is_ident) => {
                pairs.push((key.to_owned(), v));
                i += end + 2 + len;
            }
            _ => i += end.max(1),
        }
    }
    pairs
}

/// The JSON scalar at the start of `text` (a string, number, `true`, `false` or `null`, which
/// prose may follow directly: `120;`) and its length.
fn scalar(text: &str) -> Option<(Value, usize)> {
    let len = if text.starts_with('"') {
        let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        values.next()?.ok()?;
        values.byte_offset()
    } else {
        let token = text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))).next()?;
        token.trim_end_matches('.').len()
    };
    let v: Value = serde_json::from_str(&text[..len]).ok()?;
    (!v.is_object() && !v.is_array()).then_some((v, len))
}

/// Whether `actual` matches a stated value: equal, or for a string with `…`, the same beginning
/// and end.
fn agrees(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::String(a)) if e.contains('…') => {
            let (head, tail) = e.split_once('…').unwrap_or((e, ""));
            a.starts_with(head) && a.ends_with(tail) && a.len() >= head.len() + tail.len()
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        _ => expected == actual,
    }
}

/// Whether some object in `v` has `key` with a value matching `expected`.
fn contains_pair(v: &Value, key: &str, expected: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.get(key).is_some_and(|a| agrees(expected, a)) || m.values().any(|x| contains_pair(x, key, expected))
        }
        Value::Array(a) => a.iter().any(|x| contains_pair(x, key, expected)),
        _ => false,
    }
}

/// "three" → 3, "1,440" → 1440.
fn number_word(w: &str) -> Option<i64> {
    const WORDS: &[&str] =
        &["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
    let w = w.to_lowercase();
    WORDS.iter().position(|x| *x == w).map(|n| n as i64).or_else(|| w.replace(',', "").parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The demo server and the shell

/// The database and the shell's block files; removed afterwards, also when the test failed.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("cohort-readme-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cohort serve --demo` on a free port over a SQLite file in `dir`.
struct Demo {
    child: Child,
    port: u16,
    /// What the server printed on stdout (the banner with its tokens).
    stdout: Arc<Mutex<Vec<String>>>,
    /// The server's log, for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // The public links point at the listen address, so the port must be known before start: a
    // port the system just handed out (and took back) is free but for an unlikely race.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

impl Demo {
    fn start(dir: &Path) -> Demo {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
            .args(["serve", "--demo"])
            .env_clear()
            .env("COHORT_DATABASE_URL", format!("sqlite://{}", dir.join("demo.db").display()))
            .env("COHORT_LISTEN", format!("127.0.0.1:{port}"))
            .env("COHORT_JWT_SECRET", SECRET)
            .env("COHORT_LOG", "warn")
            // The webhook example registers https://erp.example.com/…: with the delivery worker
            // off, nothing leaves this machine (the worker would resolve and call that host).
            .env("COHORT_WEBHOOK_WORKER", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cohort serve --demo");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let kept = stdout.clone();
        // Ready once the admin token is printed (after the listener is bound); should the server
        // exit, the sender goes with the thread and the wait below ends at once.
        std::thread::spawn(move || {
            let mut token_next = false;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let done = token_next;
                token_next = line.starts_with("Admin token");
                kept.lock().expect("stdout lines").push(line);
                if done {
                    let _ = ready_tx.send(());
                }
            }
        });
        let err = child.stderr.take().expect("stderr");
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                kept.lock().expect("stderr lines").push(line);
            }
        });
        let demo = Demo { child, port, stdout, stderr };
        if ready.recv_timeout(BLOCK_LIMIT).is_err() {
            panic!("serve --demo did not print its admin token; it logged:\n{}", demo.log());
        }
        demo
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        let lines = self.stderr.lock().expect("stderr lines");
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// One `bash` for the whole README, like a reader's terminal.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    dir: PathBuf,
    port: u16,
    runs: usize,
}

const END: &str = "__readme_test_block_end__";

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shell {
    fn start(dir: &Path, port: u16) -> Shell {
        let bin = Path::new(env!("CARGO_BIN_EXE_cohort")).parent().expect("the binary's directory").to_owned();
        let path = std::env::join_paths(
            std::iter::once(bin).chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths)),
        )
        .expect("PATH");
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"]);
        // The reader's shell: their PATH with the binary on it, the demo's secret exported — and
        // none of the developer's own COHORT_* settings.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("COHORT_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .env("PATH", path)
            .env("COHORT_JWT_SECRET", SECRET)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the README's shell examples need bash");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell { child, stdin, lines, dir: dir.to_owned(), port, runs: 0 };
        for tool in ["curl", "jq"] {
            let (status, out) = shell.run(&format!("command -v {tool} >/dev/null"));
            assert!(status == 0, "the README's shell examples need {tool} on the PATH ({out})");
        }
        shell
    }

    /// Runs `script` (with `:8080` pointing at the test server) in the session; its exit status
    /// and what it printed (stdout and stderr).
    fn run(&mut self, script: &str) -> (i32, String) {
        self.runs += 1;
        let file = self.dir.join(format!("block-{}.sh", self.runs));
        std::fs::write(&file, script.replace(":8080", &format!(":{}", self.port))).expect("write the block");
        // Sourced, so that variables and functions stay for later blocks; stdin is /dev/null so
        // that no command in it can read the session's input.
        writeln!(self.stdin, "source '{}' </dev/null 2>&1; printf '\\n{END} %d\\n' $?", file.display())
            .and_then(|_| self.stdin.flush())
            .expect("write to bash");
        let mut out = vec![];
        loop {
            match self.lines.recv_timeout(BLOCK_LIMIT) {
                Ok(line) => match line.strip_prefix(END) {
                    Some(status) => {
                        // The marker's own leading newline.
                        if out.last().is_some_and(|l: &String| l.is_empty()) {
                            out.pop();
                        }
                        return (status.trim().parse().unwrap_or(-1), out.join("\n"));
                    }
                    None => out.push(line),
                },
                Err(_) => panic!("the shell ended or hung; it printed:\n{}", out.join("\n")),
            }
        }
    }

    /// The value of a shell variable (a token the README's commands set).
    fn var(&mut self, name: &str) -> String {
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "not a variable name: {name}");
        let (_, value) = self.run(&format!("printf '%s' \"${{{name}}}\""));
        assert!(!value.is_empty(), "the README has not set ${name} before it is needed");
        value
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

struct Run {
    demo: Demo,
    shell: Shell,
    http: reqwest::Client,
    executed: Vec<String>,
    validated_only: Vec<String>,
    skipped: Vec<String>,
}

impl Run {
    async fn post(&self, token: Option<&str>, body: &Value) -> Value {
        let mut req = self.http.post(self.demo.url("/graphql")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("POST /graphql");
        let text = resp.text().await.expect("answer");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    /// `data` of a query the test itself needs, as the admin.
    async fn admin_data(&mut self, query: &str, variables: Value) -> Value {
        let token = self.shell.var("TOKEN");
        let v = self.post(Some(&token), &json!({"query": query, "variables": variables})).await;
        assert!(v.get("errors").is_none(), "{query}: {v}");
        v["data"].clone()
    }

    /// Replaces every `"@kind:name"` in `vars` by that record's id.
    async fn resolve(&mut self, vars: &Value, at: usize) -> Value {
        match vars {
            Value::String(s) if s.starts_with('@') => {
                let (kind, name) = s[1..].split_once(':').unwrap_or_else(|| panic!("README line {at}: bad id {s}"));
                let &(_, query, list, name_at, id_at) = LOOKUPS
                    .iter()
                    .find(|l| l.0 == kind)
                    .unwrap_or_else(|| panic!("README line {at}: no look-up for the kind '{kind}' in {s}"));
                let data = self.admin_data(query, json!({})).await;
                let items = data.pointer(list).and_then(Value::as_array).cloned().unwrap_or_default();
                let found: Vec<&Value> = items
                    .iter()
                    .filter(|item| name_at.is_empty() || item.pointer(name_at).and_then(Value::as_str) == Some(name))
                    .collect();
                assert!(
                    found.len() == 1 || (name_at.is_empty() && !found.is_empty()),
                    "README line {at}: {s} names {} demo records (one expected)",
                    found.len()
                );
                found[0].pointer(id_at).cloned().unwrap_or(Value::Null)
            }
            Value::Array(a) => {
                let mut out = vec![];
                for v in a {
                    out.push(Box::pin(self.resolve(v, at)).await);
                }
                Value::Array(out)
            }
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), Box::pin(self.resolve(v, at)).await);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    /// Parses and validates a document on the live server without running it.
    async fn validate(&self, b: &Block) {
        let kinds = definitions(&b.text);
        let operations: Vec<&String> = kinds.iter().filter(|k| *k != "fragment").collect();
        assert!(
            operations.len() == 1,
            "README line {}: one operation per block (and request), found {kinds:?}",
            b.line
        );
        if operations[0] == "subscription" {
            return; // validated where it runs: over WebSocket
        }
        if let Some(v) = self.validation_failure(&b.text).await {
            panic!("README line {}: the document does not validate against the schema: {v}", b.line);
        }
    }

    /// The server's answer if `doc` does not parse and validate, `None` if it does. The document
    /// is sent (anonymously) with an operation name it does not contain: the server parses and
    /// validates it first, then refuses to pick an operation — and so runs nothing.
    async fn validation_failure(&self, doc: &str) -> Option<Value> {
        let v = self.post(None, &json!({"query": doc, "operationName": VALIDATE_ONLY})).await;
        let expected = format!("Unknown operation named \"{VALIDATE_ONLY}\"");
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        (errors.len() != 1 || errors[0]["message"] != expected.as_str()).then_some(v)
    }

    async fn graphql(&mut self, b: &Block) {
        self.validate(b).await;
        if let Some(why) = b.note_str("skip") {
            self.validated_only.push(format!("line {}: {why}", b.line));
            return;
        }
        let token = self.shell.var(b.note_str("as").unwrap_or("TOKEN"));
        let vars = self.resolve(b.note.get("vars").unwrap_or(&json!({})), b.line).await;
        let answer = if definitions(&b.text).iter().any(|k| k == "subscription") {
            self.subscribe(b, &token, vars).await
        } else {
            self.post(Some(&token), &json!({"query": b.text, "variables": vars})).await
        };
        match b.note_str("error") {
            Some(code) => assert_eq!(
                answer["errors"][0]["extensions"]["code"].as_str(),
                Some(code),
                "README line {}: expected the error {code}: {answer}",
                b.line
            ),
            None => assert!(
                answer.get("errors").is_none() && !answer["data"].is_null(),
                "README line {}: the example failed: {answer}",
                b.line
            ),
        }
        for comment in arrow_comments(&b.text) {
            for (key, value) in stated_pairs(&comment) {
                assert!(
                    contains_pair(&answer, &key, &value),
                    "README line {}: the text says {key}: {value}, the demo answered {}",
                    b.line,
                    brief(&answer)
                );
            }
        }
        if let Some((line, text)) = &b.answer {
            let expected: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("README line {line}: the answer is not JSON: {e}"));
            assert!(
                expected == answer,
                "README line {line}: the answer shown differs from the demo's:\n{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
        }
        self.executed.push(format!("line {}: graphql", b.line));
    }

    /// Runs a subscription over WebSocket until its first event (or error).
    async fn subscribe(&self, b: &Block, token: &str, vars: Value) -> Value {
        let mut req = format!("ws://127.0.0.1:{}/graphql", self.demo.port).into_client_request().expect("request");
        req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header"));
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("WebSocket");
        let send = |v: Value| Message::Text(v.to_string().into());
        ws.send(send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})))
            .await
            .expect("connection_init");
        let subscribe = json!({"id": "readme", "type": "subscribe", "payload": {"query": b.text, "variables": vars}});
        let mut subscribed = false;
        loop {
            let msg = tokio::time::timeout(BLOCK_LIMIT, ws.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = msg else {
                panic!("README line {}: the subscription ended without an event: {msg:?}", b.line);
            };
            let m: Value = serde_json::from_str(&text).expect("a JSON message");
            match m["type"].as_str() {
                Some("connection_ack") if !subscribed => {
                    ws.send(send(subscribe.clone())).await.expect("subscribe");
                    subscribed = true;
                }
                Some("next") => {
                    let _ = ws.send(send(json!({"id": "readme", "type": "complete"}))).await;
                    let _ = ws.close(None).await;
                    return m["payload"].clone();
                }
                Some("error") => return json!({"data": null, "errors": m["payload"]}),
                Some("ping") => ws.send(send(json!({"type": "pong"}))).await.expect("pong"),
                _ => {}
            }
        }
    }

    fn sh(&mut self, b: &Block) {
        if let Some(why) = b.note_str("skip") {
            self.skipped.push(format!("line {}: sh: {why}", b.line));
            return;
        }
        let allowed: Vec<&str> =
            b.note.get("errors").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let (status, out) = self.shell.run(&b.text);
        let answers = json_stream(&out)
            .unwrap_or_else(|| panic!("README line {}: the block printed more than JSON answers:\n{out}", b.line));
        assert!(status == 0, "README line {}: the block exited with {status}:\n{out}", b.line);
        for a in &answers {
            let code = error_code(a);
            assert!(
                code.as_deref().is_none_or(|c| allowed.contains(&c)),
                "README line {}: an answer is an error: {a}",
                b.line
            );
        }
        let mut from = 0;
        for comment in arrow_comments(&b.text) {
            let pairs = stated_pairs(&comment);
            if pairs.is_empty() {
                continue;
            }
            let found =
                answers[from..].iter().position(|a| pairs.iter().all(|(k, v)| contains_pair(a, k, v))).unwrap_or_else(
                    || panic!("README line {}: no answer has what `# →{comment}` says; the answers:\n{out}", b.line),
                );
            from += found;
        }
        self.executed.push(format!("line {}: sh ({} answers)", b.line, answers.len()));
    }

    async fn python(&mut self, b: &Block) {
        match (b.note_str("skip"), b.note_str("harness")) {
            (Some(why), _) => self.skipped.push(format!("line {}: python: {why}", b.line)),
            (None, Some("verify-webhook")) => {
                if python_has("base64") {
                    verify_webhook(b);
                    self.executed.push(format!("line {}: python (webhook verification)", b.line));
                } else {
                    self.skipped.push(format!("line {}: python: no python3", b.line));
                }
            }
            (None, Some("script")) => {
                if python_has("gql") {
                    self.python_script(b);
                    self.executed.push(format!("line {}: python (gql script)", b.line));
                } else {
                    self.skipped.push(format!("line {}: python: python3 cannot import gql", b.line));
                }
            }
            (None, Some("subscribe")) => {
                if python_has("gql") {
                    self.python_subscription(b).await;
                    self.executed.push(format!("line {}: python (gql subscription)", b.line));
                } else {
                    self.skipped.push(format!("line {}: python: python3 cannot import gql", b.line));
                }
            }
            _ => panic!("README line {}: a python block needs a harness or a skip reason", b.line),
        }
    }

    /// Runs a README script to its end (with `TOKEN` from the shell session): it must succeed and
    /// print JSON answers without `errors`, each matching the block's `# →` comments.
    fn python_script(&mut self, b: &Block) {
        let token = self.shell.var("TOKEN");
        let code = b.text.replace(":8080", &format!(":{}", self.demo.port));
        let out = Command::new("python3").args(["-c", &code]).env("TOKEN", &token).output().expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "README line {}: the script failed: {stdout}\n{}",
            b.line,
            String::from_utf8_lossy(&out.stderr)
        );
        let answers = json_stream(&stdout)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| panic!("README line {}: the script printed more than JSON: {stdout}", b.line));
        for a in &answers {
            assert!(a.get("errors").is_none(), "README line {}: {}", b.line, brief(a));
        }
        for comment in arrow_comments(&b.text) {
            let pairs = stated_pairs(&comment);
            assert!(
                answers.iter().any(|a| pairs.iter().all(|(k, v)| contains_pair(a, k, v))),
                "README line {}: no answer has what `# →{comment}` says: {stdout}",
                b.line
            );
        }
    }

    /// Runs the README's `gql` client, changes a group until an event arrives, and stops it.
    async fn python_subscription(&mut self, b: &Block) {
        let token = self.shell.var("TOKEN");
        let code = b.text.replace(":8080", &format!(":{}", self.demo.port));
        let mut child = Command::new("python3")
            .args(["-c", &code])
            .env("TOKEN", &token)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let group = self.resolve(&json!("@group:Newsletter"), b.line).await;
        let mut got = None;
        // The client subscribes in its own time: change the group until an event comes through.
        for round in 0..120 {
            self.admin_data(
                "mutation($i: UpdateGroupInput!) { updateGroup(input: $i) { group { id } } }",
                json!({"i": {"id": group, "description": format!("News and offers (revision {round})")}}),
            )
            .await;
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
                got = Some(line);
                break;
            }
        }
        let _ = child.kill();
        let output = child.wait_with_output().expect("python3");
        let got = got.unwrap_or_else(|| {
            panic!(
                "README line {}: the gql client printed nothing: {}",
                b.line,
                String::from_utf8_lossy(&output.stderr)
            )
        });
        assert!(got.contains("group.updated"), "README line {}: the client printed {got}", b.line);
    }
}

/// The answers a shell block printed, or `None` if it printed anything else.
fn json_stream(out: &str) -> Option<Vec<Value>> {
    let mut values = vec![];
    let mut stream = serde_json::Deserializer::from_str(out).into_iter::<Value>();
    for v in stream.by_ref() {
        values.push(v.ok()?);
    }
    Some(values)
}

/// An answer for a failure message, cut to a readable length.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(1500) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The error code of a GraphQL or RFC 9457 answer.
fn error_code(a: &Value) -> Option<String> {
    if let Some(errors) = a.get("errors") {
        return Some(errors[0]["extensions"]["code"].as_str().unwrap_or("(no code)").to_owned());
    }
    if a.get("status").and_then(Value::as_u64).is_some_and(|s| s >= 400) {
        return Some(a["code"].as_str().unwrap_or("(no code)").to_owned());
    }
    None
}

/// Whether python3 can import `module` (`.ci/run` installs `gql` and sets
/// `COHORT_TEST_REQUIRE_PYTHON_TOOLS=1`, which turns a missing one into a failure).
fn python_has(module: &str) -> bool {
    let required = std::env::var("COHORT_TEST_REQUIRE_PYTHON_TOOLS").is_ok_and(|v| v == "1");
    let has =
        Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    assert!(has || !required, "COHORT_TEST_REQUIRE_PYTHON_TOOLS=1 but python3 cannot import {module}");
    if !has {
        eprintln!("README: a Python example is SKIPPED: python3 cannot import {module}");
    }
    has
}

/// The README's `verify` against a message signed as the worker signs it, the same message
/// tampered with, and one too old.
fn verify_webhook(b: &Block) {
    use base64::Engine;
    let secret =
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(b"readme-webhook-secret-0123456789"));
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"type":"group.created","data":{}}"#;
    let sign = |ts: i64| cohort_api::webhooks::sign(std::slice::from_ref(&secret), "msg_1", ts, body.as_bytes());
    let cases = json!([
        [sign(now), now, body],
        [sign(now), now, body.replace("created", "deleted")],
        [sign(now - 3600), now - 3600, body],
    ]);
    let harness = r#"
import json, sys
secret, cases = sys.argv[1], json.loads(sys.argv[2])
print(json.dumps([verify(secret, {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": sig},
                         body.encode()) for sig, ts, body in cases]))
"#;
    let out = Command::new("python3")
        .args(["-c", &format!("{}\n{harness}", b.text), &secret, &cases.to_string()])
        .output()
        .expect("the README's webhook example needs python3");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        "[true, false, false]",
        "README line {}: verify() should accept the signed message and refuse the tampered and the old one; stderr: {}",
        b.line,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A token from `cohort token`, as the README issues them.
fn mint(subject: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["token", "--tenant", "demo", "--subject", subject, "--role", role])
        .env_clear()
        .env("COHORT_JWT_SECRET", SECRET)
        .output()
        .expect("cohort token");
    assert!(out.status.success(), "cohort token: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Checks the numbers the prose states about the fresh demo.
async fn check_claims(run: &mut Run, readme: &str) {
    let prose = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for &(sentence, (subject, role), query, at) in CLAIMS {
        let (before, after) = sentence.split_once("{n}").expect("a claim has {n}");
        let stated = prose
            .match_indices(before)
            .find_map(|(i, _)| {
                let rest = &prose[i + before.len()..];
                let word_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == ',')).unwrap_or(rest.len());
                let (word, tail) = rest.split_at(word_end);
                tail.starts_with(after).then(|| number_word(word.trim_end_matches(','))).flatten()
            })
            .unwrap_or_else(|| panic!("the README no longer says \"{sentence}\": update CLAIMS in tests/readme.rs"));
        let v = run.post(Some(&mint(subject, role)), &json!({"query": query})).await;
        let actual = v["data"].pointer(at).and_then(Value::as_i64);
        assert_eq!(actual, Some(stated), "the README says \"{sentence}\" with {stated}; the demo answers {v}");
        run.executed.push(format!("claim: {}", sentence.replace("{n}", &stated.to_string())));
    }
}

/// The first of the tools the shell examples use that is not on the PATH. `.ci/run` installs
/// them and sets `COHORT_TEST_REQUIRE_README_TOOLS=1`, which turns a missing one into a failure;
/// elsewhere the test says loudly that it was skipped.
fn missing_shell_tools() -> Option<&'static str> {
    ["bash", "curl", "jq"].into_iter().find(|tool| {
        !Command::new("sh").args(["-c", &format!("command -v {tool} >/dev/null")]).status().is_ok_and(|s| s.success())
    })
}

#[tokio::test]
async fn every_readme_example_runs_against_a_fresh_demo() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let blocks = readme_blocks(&readme);
    // Nothing is left out silently: every block the test does not run says why.
    for b in &blocks {
        let runs = matches!(b.lang.as_str(), "graphql" | "sh")
            || (b.lang == "python" && b.note.get("harness").is_some())
            || b.lang.is_empty();
        assert!(
            runs || b.note.get("skip").is_some(),
            "README line {}: a ```{} block the test cannot run: give it a <!-- readme-test: {{\"skip\": \"why\"}} --> note",
            b.line,
            b.lang
        );
    }

    if let Some(missing) = missing_shell_tools() {
        let required = std::env::var("COHORT_TEST_REQUIRE_README_TOOLS").is_ok_and(|v| v == "1");
        assert!(!required, "COHORT_TEST_REQUIRE_README_TOOLS=1 but {missing} is not installed");
        eprintln!(
            "\n!!!!!!!!!! SKIPPED: the README examples need bash, curl and jq; {missing} is missing \
             (apt-get install {missing})\n"
        );
        return;
    }
    let dir = TempDir::new();
    let demo = Demo::start(&dir.0);
    let shell = Shell::start(&dir.0, demo.port);
    let mut run =
        Run { demo, shell, http: reqwest::Client::new(), executed: vec![], validated_only: vec![], skipped: vec![] };

    // The demo honours COHORT_JWT_SECRET: the admin token it printed is signed with it.
    let banner = run.demo.stdout.lock().expect("stdout").clone();
    let printed = banner
        .iter()
        .skip_while(|l| !l.starts_with("Admin token"))
        .nth(1)
        .cloned()
        .unwrap_or_else(|| panic!("no admin token in the banner: {banner:?}"));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["cohort-api"]);
    validation.set_issuer(&["cohort"]);
    let claims = jsonwebtoken::decode::<Value>(
        &printed,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("the printed admin token is signed with COHORT_JWT_SECRET")
    .claims;
    assert_eq!((claims["tid"].as_str(), claims["sub"].as_str()), (Some("demo"), Some("demo-admin")));

    // The validation check tells valid documents from invalid ones (it relies on the server
    // validating before it picks the operation).
    assert!(run.validation_failure("query Q { contacts { totalCount } }").await.is_none());
    for bad in ["query Q { contacts { nope } }", "query Q { contacts(first: \"x\") { totalCount } }", "query Q {"] {
        assert!(run.validation_failure(bad).await.is_some(), "{bad} passed validation");
    }
    // The claims are about the fresh demo: checked before any example changes it.
    check_claims(&mut run, &readme).await;
    for b in &blocks {
        match b.lang.as_str() {
            "graphql" => run.graphql(b).await,
            "sh" => run.sh(b),
            "python" => run.python(b).await,
            "" => {}
            other => run.skipped.push(format!("line {}: {other}: {}", b.line, b.note_str("skip").unwrap_or_default())),
        }
    }
    eprintln!(
        "README: {} run, {} only validated, {} skipped\n  run: {}\n  validated only: {}\n  skipped: {}",
        run.executed.len(),
        run.validated_only.len(),
        run.skipped.len(),
        run.executed.join("; "),
        run.validated_only.join("; "),
        run.skipped.join("; ")
    );
    drop(run);
}

#[test]
fn readme_conventions_parse_as_documented() {
    assert_eq!(definitions("query A { a } # { b }\nfragment F on X { y }"), ["query", "fragment"]);
    assert_eq!(definitions("{ a(s: \"{\") { b } }"), ["query"]);
    assert_eq!(definitions("mutation M { a }\nmutation N { b }"), ["mutation", "mutation"]);
    let pairs =
        stated_pairs(r#" dueResolutionAt: null (the clock stands still), "key": "wf_…", n: 120; due Tuesday 09:00"#);
    assert_eq!(
        pairs,
        [("dueResolutionAt".to_owned(), Value::Null), ("key".to_owned(), json!("wf_…")), ("n".to_owned(), json!(120))]
    );
    assert!(agrees(&json!("wf_…"), &json!("wf_abc")));
    assert!(!agrees(&json!("wf_…"), &json!("xf_abc")));
    assert_eq!(number_word("three"), Some(3));
    assert_eq!(number_word("1,440"), Some(1440));
    let blocks = readme_blocks(
        "a\n<!-- readme-test: {\"skip\": \"x\"} -->\n```sh\necho\n```\n\n```graphql\n{ a }\n```\n\n```json\n{}\n```\n",
    );
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].note_str("skip"), Some("x"));
    assert_eq!(blocks[1].answer.as_ref().map(|a| a.1.as_str()), Some("{}\n"));
}

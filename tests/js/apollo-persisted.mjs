// Apollo Client's persisted-query link against a Cohort server (run by tests/api/persisted.rs).
//
//   node apollo-persisted.mjs apq     <graphql url> <token> <manifest to write>
//   node apollo-persisted.mjs trusted <graphql url> <token>
//
// `apq`: automatic persisted queries. Each operation's first request names its document by hash
// only, misses, and is sent again with the document; later ones are hash-only (over POST, and
// over GET with `useGETForHashedQueries`). Writes the documents the client sent as an Apollo
// persisted-query manifest (`apollo-persisted-query-manifest`, version 1) — what Apollo's
// `generate-persisted-query-manifest` produces from the same documents.
// `trusted`: against a server that runs only that manifest's documents. Listed operations run
// hash-only from their first request; an unlisted one is refused.
//
// Every HTTP request goes through a counting `fetch`; prints one JSON object: for each step, its
// requests (method, status, whether the document was sent, the hash), and its data or error.
// Needs @apollo/client 4 (core, no React), graphql 16 and rxjs, resolvable from this file.

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";

const [mode, uri, token, manifestPath] = process.argv.slice(2);
if (!["apq", "trusted"].includes(mode) || !uri || !token || (mode === "apq" && !manifestPath)) {
  console.error("usage: apollo-persisted.mjs apq|trusted <graphql url> <token> [<manifest to write>]");
  process.exit(2);
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

let requests = [];
/** Every document the client sent in full, by hash: the manifest. */
const sent = new Map();

async function countingFetch(input, init = {}) {
  const url = new URL(String(input));
  const method = (init.method ?? "GET").toUpperCase();
  let params;
  if (method === "GET") {
    const ext = url.searchParams.get("extensions");
    params = {
      query: url.searchParams.get("query") ?? undefined,
      operationName: url.searchParams.get("operationName") ?? undefined,
      extensions: ext ? JSON.parse(ext) : undefined,
    };
  } else {
    params = JSON.parse(init.body);
  }
  const response = await fetch(input, init);
  const hash = params.extensions?.persistedQuery?.sha256Hash ?? null;
  requests.push({ method, status: response.status, sentDocument: typeof params.query === "string", hash });
  if (typeof params.query === "string") {
    sent.set(sha256(params.query), { name: params.operationName ?? null, body: params.query });
  }
  return response;
}

function client({ useGET }) {
  const persisted = new PersistedQueryLink({ sha256, useGETForHashedQueries: useGET });
  const http = new HttpLink({ uri, fetch: countingFetch, headers: { authorization: `Bearer ${token}` } });
  return new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() });
}

/** The error's `extensions.code`s, however Apollo Client 4 wraps them. */
function codes(error) {
  if (Array.isArray(error?.errors)) return error.errors.map((e) => e.extensions?.code ?? null);
  if (typeof error?.bodyText === "string") {
    try {
      return (JSON.parse(error.bodyText).errors ?? []).map((e) => e.extensions?.code ?? null);
    } catch {}
  }
  return [String(error)];
}

const steps = {};
async function step(name, run) {
  requests = [];
  try {
    const result = await run();
    steps[name] = { requests, data: result.data ?? null, error: result.error ? codes(result.error) : null };
  } catch (error) {
    steps[name] = { requests, data: null, error: codes(error) };
  }
}

const VIEWER = gql`
  query Viewer {
    viewer {
      user {
        id
        subject
      }
    }
  }
`;
const BOOKS = gql`
  query Books($first: Int) {
    addressBooks(first: $first) {
      totalCount
      edges {
        node {
          id
          name
        }
      }
    }
  }
`;
const CREATE_BOOK = gql`
  mutation CreateBook($name: String!) {
    createAddressBook(input: { name: $name }) {
      addressBook {
        id
        name
      }
    }
  }
`;
const UNLISTED = gql`
  query Unlisted {
    viewer {
      user {
        id
        name
      }
    }
  }
`;

const post = client({ useGET: false });
const get = client({ useGET: true });
const query = (c, q, variables = {}) => c.query({ query: q, variables, fetchPolicy: "network-only" });

if (mode === "apq") {
  await step("first", () => query(post, VIEWER));
  await step("again", () => query(post, VIEWER));
  await step("getKnown", () => query(get, VIEWER));
  await step("getNew", () => query(get, BOOKS, { first: 5 }));
  await step("getNewAgain", () => query(get, BOOKS, { first: 5 }));
  await step("mutation", () => post.mutate({ mutation: CREATE_BOOK, variables: { name: "APQ one" } }));
  await step("mutationAgain", () => post.mutate({ mutation: CREATE_BOOK, variables: { name: "APQ two" } }));
  const operations = [...sent].map(([id, { name, body }]) => ({
    id,
    name,
    type: /^\s*mutation\b/.test(body) ? "mutation" : "query",
    body,
  }));
  writeFileSync(
    manifestPath,
    JSON.stringify({ format: "apollo-persisted-query-manifest", version: 1, operations }, null, 2),
  );
} else {
  await step("first", () => query(post, VIEWER));
  await step("getKnown", () => query(get, BOOKS, { first: 5 }));
  await step("mutation", () => post.mutate({ mutation: CREATE_BOOK, variables: { name: "Trusted" } }));
  await step("unlisted", () => query(post, UNLISTED));
  await step("afterUnlisted", () => query(post, VIEWER));
}

console.log(JSON.stringify({ mode, steps }));

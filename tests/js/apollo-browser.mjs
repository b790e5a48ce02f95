// Apollo Client 4 in a real browser, on another origin than the API (run by
// tests/api/browser_apollo.rs: bundled with esbuild, served from a second local server, opened
// in headless Chromium).
//
// The page reads its settings from the query string (`api`, `ws`, `token`, `after`, `book`) and
// runs, in order:
//   cors         a query with the headers real front ends add (Apollo's client awareness,
//                W3C `traceparent`/`tracestate`, `baggage`): the preflight must admit them, and
//                the exposed `x-request-id` must be readable;
//   cache        two queries selecting different sub-fields of the same contact, its business
//                status and its e-mails; then the first again, cache-first: no request, and the
//                normalised cache holds both selections merged;
//   errors       a refused query: Apollo surfaces the server's `extensions.code`;
//   apq          Apollo's persisted-query link (hashes from WebCrypto, hashed queries over GET):
//                a miss, the retry with the document, then a hash-only hit;
//   subscription `graphql-ws` through Apollo's `GraphQLWsLink`: `events` from the given cursor,
//                then a mutation over HTTP; its event arrives over the WebSocket.
// Every HTTP request goes through a counting `fetch`. The outcome is written to the page (for
// the screenshot) and to `window.__cohort` (for the test), with `done: true` at the end.

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";

const params = new URLSearchParams(location.search);
const API = params.get("api");
const WS = params.get("ws");
const TOKEN = params.get("token");
const AFTER = params.get("after");
const CONTACT = params.get("contact");

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

let requests = [];
async function countingFetch(input, init = {}) {
  const method = (init.method ?? "GET").toUpperCase();
  const url = new URL(String(input));
  let body = null;
  if (method === "POST" && typeof init.body === "string") body = JSON.parse(init.body);
  const ext = body?.extensions ?? (url.searchParams.get("extensions") ? JSON.parse(url.searchParams.get("extensions")) : null);
  const response = await fetch(input, init);
  requests.push({
    method,
    status: response.status,
    operation: body?.operationName ?? url.searchParams.get("operationName"),
    sentDocument: typeof (body?.query ?? url.searchParams.get("query")) === "string",
    hash: ext?.persistedQuery?.sha256Hash ?? null,
    requestId: response.headers.get("x-request-id"),
  });
  return response;
}

const headers = {
  authorization: `Bearer ${TOKEN}`,
  traceparent: TRACEPARENT,
  tracestate: "cohort=browser-test",
  baggage: "session.id=browser-test",
};

function plainClient() {
  return new ApolloClient({
    link: new HttpLink({ uri: API, fetch: countingFetch, headers }),
    cache: new InMemoryCache(),
    clientAwareness: { name: "cohort-browser-test", version: "1.0.0" },
  });
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The error's `extensions.code`s, however Apollo Client 4 wraps them. */
function codes(error) {
  if (Array.isArray(error?.errors)) return error.errors.map((e) => e.extensions?.code ?? null);
  return [String(error)];
}

const steps = {};
window.__cohort = { done: false, steps };

function show() {
  const rows = Object.entries(steps)
    .map(([name, s]) => `<tr><td>${s.ok ? "✔" : "✘"}</td><th>${name}</th><td><pre>${escape(JSON.stringify(s.detail, null, 1))}</pre></td></tr>`)
    .join("");
  document.getElementById("out").innerHTML = `<table>${rows}</table>`;
}
function escape(s) {
  return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
}

async function step(name, run) {
  requests = [];
  try {
    const detail = await run();
    steps[name] = { ok: true, detail: { ...detail, requests } };
  } catch (error) {
    steps[name] = { ok: false, detail: { error: String(error?.stack ?? error), requests } };
  }
  show();
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
const CONTACT_A = gql`
  query ContactA($id: ID!) {
    contact(id: $id) {
      id
      displayName
      businessStatus {
        id
        key
        label
      }
      emails {
        id
        address
      }
    }
  }
`;
const CONTACT_B = gql`
  query ContactB($id: ID!) {
    contact(id: $id) {
      id
      businessStatus {
        id
        key
        category
      }
      emails {
        id
        label
      }
    }
  }
`;
const TOO_MANY = gql`
  query TooMany {
    contacts(first: 500) {
      totalCount
    }
  }
`;
const BOOKS = gql`
  query Books {
    addressBooks(first: 50) {
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
const EVENTS = gql`
  subscription Events($after: String) {
    events(types: ["address_book.*"], after: $after) {
      id
      type
      subjects
      payload
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

async function main() {
  const client = plainClient();

  await step("cors", async () => {
    const { data } = await client.query({ query: VIEWER, fetchPolicy: "network-only" });
    return { subject: data.viewer.user.subject };
  });

  await step("cache", async () => {
    const a = await client.query({ query: CONTACT_A, variables: { id: CONTACT } });
    const afterA = requests.length;
    const b = await client.query({ query: CONTACT_B, variables: { id: CONTACT } });
    const afterB = requests.length;
    const again = await client.query({ query: CONTACT_A, variables: { id: CONTACT }, fetchPolicy: "cache-first" });
    const afterAgain = requests.length;
    const cached = client.readQuery({ query: CONTACT_A, variables: { id: CONTACT } });
    const status = client.cache.extract()[client.cache.identify(a.data.contact.businessStatus)];
    return {
      requestsAfterA: afterA,
      requestsAfterB: afterB,
      requestsAfterAgain: afterAgain,
      first: a.data.contact,
      second: b.data.contact,
      again: again.data.contact,
      cached: cached?.contact ?? null,
      statusEntity: status ?? null,
    };
  });

  await step("errors", async () => {
    try {
      const result = await client.query({ query: TOO_MANY, fetchPolicy: "network-only" });
      return { codes: result.error ? codes(result.error) : [], data: result.data ?? null };
    } catch (error) {
      return { codes: codes(error) };
    }
  });

  await step("apq", async () => {
    const persisted = new PersistedQueryLink({ sha256, useGETForHashedQueries: true });
    const apq = new ApolloClient({
      link: persisted.concat(new HttpLink({ uri: API, fetch: countingFetch, headers })),
      cache: new InMemoryCache(),
    });
    const first = await apq.query({ query: BOOKS, fetchPolicy: "network-only" });
    const second = await apq.query({ query: BOOKS, fetchPolicy: "network-only" });
    return { first: first.data.addressBooks.totalCount, second: second.data.addressBooks.totalCount };
  });

  await step("subscription", async () => {
    let acknowledged = false;
    const ws = createClient({
      url: WS,
      connectionParams: { authorization: `Bearer ${TOKEN}` },
      on: { connected: () => (acknowledged = true) },
    });
    const link = ApolloLink.split(
      ({ query }) => {
        const def = getMainDefinition(query);
        return def.kind === "OperationDefinition" && def.operation === "subscription";
      },
      new GraphQLWsLink(ws),
      new HttpLink({ uri: API, fetch: countingFetch, headers }),
    );
    const live = new ApolloClient({ link, cache: new InMemoryCache() });
    const name = `Browser book ${Date.now()}`;
    // Every event received, and a check run on each arrival: the mutation's answer (the new
    // book's id) may come before or after its event.
    const seen = [];
    let check = () => {};
    let failure = null;
    const sub = live.subscribe({ query: EVENTS, variables: { after: AFTER } }).subscribe({
      next: (result) => {
        if (result.error) failure = result.error;
        else seen.push(result.data.events);
        check();
      },
      error: (error) => {
        failure = error;
        check();
      },
    });
    const created = await live.mutate({ mutation: CREATE_BOOK, variables: { name } });
    const book = created.data.createAddressBook.addressBook;
    const event = await new Promise((resolve, reject) => {
      // Bounded: a missing event fails the step (with what did arrive) instead of hanging.
      const timer = setTimeout(() => reject(new Error(`no event within 20 s; received: ${JSON.stringify(seen)}`)), 20000);
      check = () => {
        const e = seen.find((e) => e.type === "address_book.created" && e.subjects.includes(book.id));
        if (failure || e) clearTimeout(timer);
        if (failure) reject(failure);
        else if (e) resolve(e);
      };
      check();
    });
    sub.unsubscribe();
    await ws.dispose();
    return { acknowledged, name, created: book, event, received: seen.length };
  });

  window.__cohort.done = true;
  document.body.dataset.done = "1";
  show();
}

main().catch((error) => {
  steps.fatal = { ok: false, detail: { error: String(error?.stack ?? error) } };
  window.__cohort.done = true;
  show();
});

// authgate from TypeScript on Node 20: fetch only, no dependencies.
//
// Creates a connect link, completes it (against the sandbox a consent preset
// lets the link finish without a person; with real providers it prints the
// link for you to open), waits for the connection, asks for a token, and
// handles reauth_required by printing the problem's agent_hint.
//
//   export AUTHGATE_URL=http://127.0.0.1:8080 AUTHGATE_API_KEY=ag_...
//   node examples/typescript/connect_and_token.ts
//
// Node 20 cannot strip type annotations, so this file carries none: it is
// valid TypeScript (tsc compiles it with noImplicitAny off) and Node 20 runs
// it as it is. Types are in JSDoc for editors; add real annotations when you
// compile with tsc.

const BASE = (process.env.AUTHGATE_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
// AUTHGATE_API_KEY is the name every authgate tool reads; AUTHGATE_KEY is
// the older one, still accepted.
const KEY = process.env.AUTHGATE_API_KEY || process.env.AUTHGATE_KEY || "";
const USER = process.env.AUTHGATE_EXAMPLE_USER ?? "ts-example-user";
const SANDBOX = (process.env.AUTHGATE_EXAMPLE_SANDBOX ?? "1") === "1";

/** An RFC 9457 problem from authgate; `type` is the class to branch on. */
class Problem extends Error {
  /** @type {number} */ status;
  /** @type {Record<string, any>} */ doc;
  constructor(status, doc) {
    super(doc.detail ?? doc.title);
    this.status = status;
    this.doc = doc;
  }
  /** @returns {string} */
  get type() { return this.doc.type; }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function call(method, path, body, key = KEY) {
  const headers = {};
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const isJSON = (resp.headers.get("content-type") ?? "").includes("json");
  const doc = resp.status === 204 ? null : isJSON ? await resp.json() : { title: await resp.text() };
  if (!resp.ok) throw new Problem(resp.status, doc);
  return doc;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * browse follows redirects the way a browser does, keeping cookies.
 * @param {string} url
 */
async function browse(url) {
  const jar = new Map();
  for (let hop = 0; hop < 10; hop++) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const resp = await fetch(url, { redirect: "manual", headers: cookie ? { cookie } : {} });
    for (const c of resp.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    const next = resp.headers.get("location");
    await resp.text();
    if (resp.status < 300 || resp.status >= 400 || !next) return resp.status;
    url = new URL(next, url).toString();
  }
  throw new Error("too many redirects");
}

async function main() {
  if (!KEY) throw new Error("set AUTHGATE_API_KEY to the admin key `authgate serve` printed");
  if (!SANDBOX) return run();
  // The sandbox's consent preset answers the consent screen for us. While it
  // is set, every Google connect on this server completes as grace: take it
  // away however the example ends.
  await call("POST", "/sandbox/admin/consent", { provider: "google", account: "grace@example.com" }, "");
  try {
    await run();
  } finally {
    await call("DELETE", "/sandbox/admin/consent?provider=google", undefined, "");
  }
}

async function run() {
  const session = await call("POST", "/v1/connect-sessions", { user_id: USER, provider: "google", actions: ["drive.files.list"] });
  console.log(`connect link: ${session.connect_url} (expires ${session.expires_at})`);
  if (SANDBOX) {
    // Following the redirects is what the user's browser does:
    // connect link -> provider -> /oauth/callback -> result page. Like a
    // browser it keeps cookies: the flow is bound to the browser that
    // opened the link (fetch keeps none, so carry them by hand).
    await browse(session.connect_url);
  } else {
    console.log("open it in a browser; waiting for the connection…");
  }

  // Wait for the user: the session's state is the outcome (the return URL's
  // parameters are only hints).
  let state = { state: "pending" };
  for (let i = 0; i < (SANDBOX ? 50 : 600) && state.state === "pending"; i++) {
    state = await call("GET", `/v1/connect-sessions/${session.id}`);
    if (state.state === "pending") await sleep(SANDBOX ? 100 : 1000);
  }
  if (state.state !== "connected" && state.state !== "partial") throw new Error(`not connected: ${state.state} ${state.error ?? ""}`);
  const cred = await call("GET", `/v1/credentials/${state.credential_id}`);
  console.log(`connected: ${cred.id} ${cred.account.email ?? ""}`);

  const tok = await call("POST", `/v1/credentials/${cred.id}/token`, { min_valid_seconds: 300 });
  console.log(`token fingerprint: ${tok.fingerprint} expires ${tok.expires_at}`);

  if (SANDBOX) {
    // Show the failure path: the user revokes access at the provider.
    await call("POST", "/sandbox/admin/faults", { provider: "google", fault: "revoke", account: "grace@example.com" }, "");
  }
  try {
    // The provider answered 401 to this token: say so, and authgate
    // refreshes instead of serving it again.
    await call("POST", `/v1/credentials/${cred.id}/token`, { rejected_fingerprint: tok.fingerprint });
    console.log("token refreshed");
  } catch (e) {
    if (!(e instanceof Problem) || e.type !== "reauth_required") throw e;
    console.log(`reauth_required: ${e.doc.agent_hint ?? e.doc.detail}`);
    console.log(`reconnect link: ${e.doc.reconnect_url}`);
  }
}

main().catch((e) => { console.error(e instanceof Problem ? `${e.type}: ${e.message}` : e); process.exit(1); });

#!/usr/bin/env python3
"""authgate from Python, standard library only.

Creates a connect link, completes it (against the sandbox a consent preset
lets the link finish without a person; with real providers it prints the
link for you to open), waits for the connection, asks for a token, and
handles reauth_required by printing the problem's agent_hint.

    export AUTHGATE_URL=http://127.0.0.1:8080 AUTHGATE_API_KEY=ag_...
    python3 examples/python/connect_and_token.py
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ.get("AUTHGATE_URL", "http://127.0.0.1:8080").rstrip("/")
# AUTHGATE_API_KEY is the name every authgate tool reads; AUTHGATE_KEY is
# the older one, still accepted.
KEY = os.environ.get("AUTHGATE_API_KEY") or os.environ.get("AUTHGATE_KEY", "")
USER = os.environ.get("AUTHGATE_EXAMPLE_USER", "py-example-user")
SANDBOX = os.environ.get("AUTHGATE_EXAMPLE_SANDBOX", "1") == "1"


class Problem(Exception):
    """An RFC 9457 problem from authgate; .type is the class to branch on."""

    def __init__(self, status, doc):
        super().__init__(doc.get("detail") or doc.get("title"))
        self.status, self.doc, self.type = status, doc, doc.get("type")


def call(method, path, body=None, key=KEY):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp) if resp.status != 204 else None
    except urllib.error.HTTPError as e:
        doc = json.load(e) if "json" in (e.headers.get("Content-Type") or "") else {"title": str(e)}
        raise Problem(e.code, doc) from None


def main():
    if not KEY:
        sys.exit("set AUTHGATE_API_KEY to the admin key `authgate serve` printed")
    if not SANDBOX:
        run()
        return
    # The sandbox's consent preset answers the consent screen for us. While
    # it is set, every Google connect on this server completes as ada: take
    # it away however the example ends.
    call("POST", "/sandbox/admin/consent", {"provider": "google", "account": "ada@example.com"}, key="")
    try:
        run()
    finally:
        call("DELETE", "/sandbox/admin/consent?provider=google", key="")


def run():
    session = call("POST", "/v1/connect-sessions",
                   {"user_id": USER, "provider": "google", "actions": ["drive.files.list"]})
    print("connect link:", session["connect_url"], "(expires", session["expires_at"] + ")")
    if SANDBOX:
        # Following the link's redirects is what the user's browser does:
        # connect link -> provider -> /oauth/callback -> result page. Like a
        # browser it keeps cookies: the flow is bound to the browser that
        # opened the link.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(session["connect_url"], timeout=30) as resp:
            resp.read()
    else:
        print("open it in a browser; waiting for the connection…")

    # Wait for the user: the session's state is the outcome (the return
    # URL's parameters are only hints).
    state = {}
    for _ in range(600 if not SANDBOX else 50):
        state = call("GET", "/v1/connect-sessions/" + session["id"])
        if state["state"] != "pending":
            break
        time.sleep(1 if not SANDBOX else 0.1)
    if state.get("state") not in ("connected", "partial"):
        sys.exit("not connected: %s %s" % (state.get("state"), state.get("error", "")))
    cred = call("GET", "/v1/credentials/" + state["credential_id"])
    print("connected:", cred["id"], cred["account"].get("email"))

    tok = call("POST", "/v1/credentials/%s/token" % cred["id"], {"min_valid_seconds": 300})
    print("token fingerprint:", tok["fingerprint"], "expires", tok["expires_at"])

    if SANDBOX:
        # Show the failure path: the user revokes access at the provider.
        call("POST", "/sandbox/admin/faults", {"provider": "google", "fault": "revoke", "account": "ada@example.com"}, key="")
    try:
        # The provider answered 401 to this token: say so, and authgate
        # refreshes instead of serving it again.
        call("POST", "/v1/credentials/%s/token" % cred["id"], {"rejected_fingerprint": tok["fingerprint"]})
        print("token refreshed")
    except Problem as p:
        if p.type != "reauth_required":
            raise
        print("reauth_required:", p.doc.get("agent_hint") or p.doc.get("detail"))
        print("reconnect link:", p.doc.get("reconnect_url"))


if __name__ == "__main__":
    main()

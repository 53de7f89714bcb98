// Package diagnose holds the client-side diagnostics that run against a
// running authgate server: democheck (the pre-demo fresh sign-in checklist)
// and the demo driver behind `authgate demo`. Both go through the public
// API, so what they check is what an app sees, and they share the server's
// checks rather than repeating them: the scopes item is POST
// /v1/credentials/{id}/verify (internal/verify), the same checks the doctor
// (internal/doctor) runs as its repro.
//
// It must never print or return a token (fingerprints only), and on a
// sandbox server it signs in through the sandbox's consent page without
// leaving a consent preset behind.
package diagnose

package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/gate"
)

var _ gate.Preflighter = (*Verifier)(nil)

// Preflight runs one binding's provider checks at run start: a token valid
// for the safety window (refreshed if need be), the live identity against
// the stored one, the granted scopes against the run's actions this
// provider knows, and the declared targets of this provider (the connectors'
// minimal checks, minus those that write). The result is recorded on the
// credential like any verification. A check that needs the user carries a
// reconnect link asking for exactly what is missing.
func (v *Verifier) Preflight(ctx context.Context, in gate.PreflightInput) []authgate.PreflightCheck {
	c := in.Credential
	p, ok := v.cfg.Providers.Get(c.Provider)
	if !ok {
		return []authgate.PreflightCheck{{Binding: in.Binding, Check: "provider", Status: authgate.PreflightFailed, Class: authgate.ClassClientMisconfigured,
			Detail: fmt.Sprintf("provider %s is not configured here", c.Provider)}}
	}
	req := authgate.VerifyRequest{Actions: p.KnownActions(in.Actions)}
	var all authgate.VerifyTargets
	if len(in.Targets) > 0 {
		if err := json.Unmarshal(in.Targets, &all); err != nil {
			return []authgate.PreflightCheck{{Binding: in.Binding, Check: "targets", Status: authgate.PreflightFailed, Class: authgate.ClassInvalidRequest,
				Detail: "targets must name drive_folder, notion_page, notion_database or slack_channel"}}
		}
	}
	if t := targetsFor(p.Kind, all); t != (authgate.VerifyTargets{}) {
		req.Targets = &t
	}
	res, err := v.verify(ctx, in.Credential.TenantID, c.ID, req, "preflight", true)
	if err != nil {
		ae := authgate.Errorf(authgate.ClassInternal, "the checks could not run")
		errors.As(err, &ae)
		return []authgate.PreflightCheck{{Binding: in.Binding, Check: "verify", Status: authgate.PreflightFailed, Class: ae.Class, Detail: ae.Detail}}
	}
	return preflightChecks(in.Binding, res)
}

// targetsFor keeps the targets a provider of kind k can reach.
func targetsFor(k catalog.Kind, t authgate.VerifyTargets) authgate.VerifyTargets {
	switch k {
	case catalog.KindGoogle:
		return authgate.VerifyTargets{DriveFolder: t.DriveFolder}
	case catalog.KindNotion:
		return authgate.VerifyTargets{NotionPage: t.NotionPage, NotionDatabase: t.NotionDatabase}
	case catalog.KindSlack:
		return authgate.VerifyTargets{SlackChannel: t.SlackChannel}
	}
	return authgate.VerifyTargets{}
}

// checkKind groups the verification's checks under the preflight's names.
func checkKind(name string) string {
	switch {
	case name == "credential":
		return "status"
	case name == "token":
		return "token"
	case name == "google.userinfo", name == "notion.users_me", name == "slack.auth_test", name == "identity_matches_stored":
		return "identity"
	}
	return "target"
}

// preflightChecks turns a verification into a binding's preflight checks,
// with a scopes check of its own.
func preflightChecks(binding string, res authgate.Verification) []authgate.PreflightCheck {
	var out []authgate.PreflightCheck
	for _, c := range res.Checks {
		pc := authgate.PreflightCheck{Binding: binding, Check: checkKind(c.Name), Status: authgate.PreflightOK, Detail: c.Detail}
		switch {
		case c.Status == authgate.CheckFail && (c.Class == authgate.ClassRateLimited || c.Class == authgate.ClassTransient):
			// Busy is not broken: the steps retry such answers.
			pc.Status, pc.Class = authgate.PreflightInconclusive, c.Class
		case c.Status == authgate.CheckFail:
			pc.Status, pc.Class, pc.Fix = authgate.PreflightFailed, c.Class, c.Fix
			if gate.IsAuthClass(c.Class) {
				pc.ReconnectURL = res.ReconnectURL
			}
		}
		if c.Name != checkKind(c.Name) {
			pc.Detail = c.Name + ": " + pc.Detail
		}
		out = append(out, pc)
	}
	sc := authgate.PreflightCheck{Binding: binding, Check: "scopes", Status: authgate.PreflightOK, Detail: "the granted scopes cover the run's actions"}
	if len(res.Scopes.Missing) > 0 {
		sc.Status, sc.Class, sc.MissingScopes, sc.ReconnectURL = authgate.PreflightFailed, authgate.ClassInsufficientScope, res.Scopes.Missing, res.ReconnectURL
		sc.Detail = "the run's actions need " + strings.Join(res.Scopes.Missing, ", ") + ", which were not granted"
		sc.Fix = "Reconnect and allow " + strings.Join(res.Scopes.Missing, ", ") + "."
	}
	return append(out, sc)
}

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/vault"
)

// exitError carries an exit status other than 1 (main honours it).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// couldNotRun is exit status 2: the doctor could not run.
func couldNotRun(err error) error { return &exitError{code: 2, err: err} }

// newDoctorCmd runs the debugging runbook on one credential: through a
// running server (live checks) or on the database directly (offline).
func newDoctorCmd(g *globals) *cobra.Command {
	var credID, user, provider, runID, target, serverURL, apiKey string
	var actions []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Diagnose one credential: repro, identity, scopes, lifecycle, storage, clock, environment, verdict",
		Long: `Runs the debugging runbook against one credential and prints each check as
pass / warn / fail with its evidence and fix, then a verdict naming the root
cause (verdict.cause in --json) and the next action.

With AUTHGATE_URL and AUTHGATE_API_KEY (or --server/--api-key) it calls the
running server (POST /v1/credentials/{id}/diagnose; live provider checks).
Without them it opens the database directly (--db, on the server's host) and
runs the offline checks only.

Exit status: 0 healthy, 1 problems found, 2 could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			serverURL, apiKey = serverAndKey(serverURL, apiKey)
			if credID == "" && runID == "" && (user == "" || provider == "") {
				return couldNotRun(errors.New("name a credential: --credential ID, --run ID, or --user U --provider P"))
			}
			req := authgate.DiagnoseRequest{Actions: actions}
			var d authgate.Diagnosis
			var err error
			if serverURL != "" && apiKey != "" {
				d, err = doctorRemote(cmd.Context(), authgate.NewClient(serverURL, apiKey), credID, user, provider, runID, target, req)
			} else {
				d, err = g.doctorLocal(cmd.Context(), credID, user, provider, runID, req)
			}
			if err != nil {
				// No such credential because of a typo in --provider: say
				// that, with the likely name, rather than "0 credentials".
				if perr := checkProvider(provider); perr != nil {
					return couldNotRun(perr)
				}
				return couldNotRun(err)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), d); err != nil {
					return couldNotRun(err)
				}
			} else {
				printDiagnosis(cmd.OutOrStdout(), d)
			}
			if !d.Healthy() {
				return &exitError{code: 1, err: fmt.Errorf("%s: %s", d.Verdict.Cause, d.Verdict.NextAction)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&credID, "credential", "", "credential id")
	f.StringVar(&user, "user", "", "user id (with --provider)")
	f.StringVar(&provider, "provider", "", "provider (with --user)")
	f.StringVar(&runID, "run", "", "run id: diagnose the credential its blocked step used")
	f.StringVar(&target, "target", "", "resource the workflow touches: Drive folder, Notion database or Slack channel id")
	f.StringSliceVar(&actions, "action", nil, "catalog action the workflow performs (repeatable)")
	f.StringVar(&serverURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	f.StringVar(&apiKey, "api-key", "", "tenant API key (default $AUTHGATE_API_KEY)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func doctorRemote(ctx context.Context, c *authgate.Client, id, user, provider, run, target string, req authgate.DiagnoseRequest) (authgate.Diagnosis, error) {
	if run != "" && id == "" {
		r, err := c.Run(ctx, authgate.RunID(run))
		if err != nil {
			return authgate.Diagnosis{}, fmt.Errorf("run %s: %w", run, err)
		}
		cid, err := runCredential(r)
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		id = string(cid)
	}
	if id == "" {
		page, err := c.Credentials(ctx, authgate.CredentialFilter{UserID: user, Provider: provider})
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		if len(page.Credentials) != 1 {
			return authgate.Diagnosis{}, fmt.Errorf("user %s has %d %s credentials; name one with --credential", user, len(page.Credentials), provider)
		}
		id = string(page.Credentials[0].ID)
	}
	if target != "" {
		cred, err := c.Credential(ctx, authgate.CredentialID(id))
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		req.Targets = targetFor(cred.Provider, target)
	}
	return c.Diagnose(ctx, authgate.CredentialID(id), req)
}

// runCredential is the credential a run's blocked step used, or its only
// binding's (the same rule as the offline doctor.ResolveRun).
func runCredential(r authgate.Run) (authgate.CredentialID, error) {
	if r.Blocked != nil && r.Blocked.CredentialID != "" {
		return r.Blocked.CredentialID, nil
	}
	if len(r.Bindings) == 1 {
		for _, id := range r.Bindings {
			return id, nil
		}
	}
	return "", fmt.Errorf("run %s is %s, not blocked on a credential, and binds %d; name one with --credential", r.ID, r.State, len(r.Bindings))
}

// targetFor reads --target by the credential's provider.
func targetFor(provider, target string) *authgate.VerifyTargets {
	switch provider {
	case "notion":
		return &authgate.VerifyTargets{NotionDatabase: target}
	case "slack":
		return &authgate.VerifyTargets{SlackChannel: target}
	}
	return &authgate.VerifyTargets{DriveFolder: target}
}

func (g *globals) doctorLocal(ctx context.Context, id, user, provider, run string, req authgate.DiagnoseRequest) (authgate.Diagnosis, error) {
	core, err := g.openCore(ctx)
	if err != nil {
		return authgate.Diagnosis{}, err
	}
	defer core.Close()
	cfg, err := g.config()
	if err != nil {
		return authgate.Diagnosis{}, err
	}
	doc, err := core.Doctor(cfg)
	if err != nil {
		return authgate.Diagnosis{}, err
	}
	var tenant authgate.TenantID
	switch {
	case id != "":
		c, err := findCredential(ctx, core, authgate.CredentialID(id))
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		tenant = c.TenantID
	case run != "":
		// Runs are per tenant: try each.
		tenants, err := core.Tenancy.List(ctx)
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		for _, t := range tenants {
			if cid, err := doc.ResolveRun(ctx, t.ID, authgate.RunID(run)); err == nil {
				tenant, id = t.ID, string(cid)
				break
			}
		}
		if id == "" {
			return authgate.Diagnosis{}, fmt.Errorf("no run %s blocked on a credential in any tenant", run)
		}
	default:
		list, _, err := core.Vault.List(ctx, vault.ListParams{AllTenants: true, UserID: user, Provider: provider, Limit: 2})
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		if len(list) != 1 {
			return authgate.Diagnosis{}, fmt.Errorf("user %s has %d %s credentials; name one with --credential", user, len(list), provider)
		}
		tenant, id = list[0].TenantID, string(list[0].ID)
	}
	return doc.Diagnose(ctx, tenant, authgate.CredentialID(id), req, "cli:doctor")
}

// printDiagnosis writes the report short enough to paste into a ticket.
func printDiagnosis(w io.Writer, d authgate.Diagnosis) {
	c := d.Credential
	fmt.Fprintf(w, "authgate doctor · %s · %s · user %s · %s (%s)\n", c.ID, c.Provider, c.UserID, cmp.Or(c.Account.Email, c.Account.Subject), c.Status)
	mark := map[authgate.CheckStatus]string{authgate.CheckPass: "✓", authgate.CheckWarn: "!", authgate.CheckFail: "✗"}
	section := ""
	for _, ch := range d.Checks {
		if ch.Section != section {
			section = ch.Section
			fmt.Fprintf(w, "%s\n", strings.ToUpper(section))
		}
		fmt.Fprintf(w, "  %s %-22s %s\n", mark[ch.Status], ch.Name, ch.Evidence)
		if ch.Status != authgate.CheckPass && ch.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", ch.Fix)
		}
	}
	s := d.Scopes
	fmt.Fprintf(w, "SCOPES  requested %s | granted %s | required %s | missing %s\n", dash(strings.Join(s.Requested, " ")), dash(strings.Join(s.Granted, " ")),
		dash(strings.Join(s.Required, " ")), dash(strings.Join(s.Missing, " ")))
	fmt.Fprintf(w, "VERDICT %s — %s\nNEXT    %s\n", d.Verdict.Cause, d.Verdict.Summary, d.Verdict.NextAction)
}

package api

import (
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// operatorOnly is what stands in for an operator-only detail in a
// diagnosis shown to a service or user key.
const operatorOnly = "details are shown to admin API keys only"

// forCaller removes from a diagnosis what only the installation's operator
// should read — master key ids, the key file's and database's location (the
// environment section and the storage decrypt check) — unless the caller
// holds an admin key. The checks and their verdicts stay, so the answer
// still says what is wrong and that the operator must act.
func forCaller(d authgate.Diagnosis, p tenancy.Principal) authgate.Diagnosis {
	if p.Allows(authgate.RoleAdmin) {
		return d
	}
	checks := make([]authgate.DiagnosisCheck, len(d.Checks))
	for i, c := range d.Checks {
		if c.Section == authgate.SectionEnvironment || (c.Section == authgate.SectionStorage && c.Name == "decrypts") {
			if c.Evidence != "" {
				d.Verdict.Summary = strings.ReplaceAll(d.Verdict.Summary, c.Evidence, operatorOnly)
				d.Verdict.NextAction = strings.ReplaceAll(d.Verdict.NextAction, c.Evidence, operatorOnly)
			}
			c.Evidence = operatorOnly
		}
		checks[i] = c
	}
	d.Checks = checks
	return d
}

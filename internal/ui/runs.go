package ui

import (
	"net/http"
	"slices"

	"github.com/authgate/authgate"
)

// runStates are the filters of the runs page, in the order shown.
var runStates = []authgate.RunState{authgate.RunStateBlockedOnAuth, authgate.RunStateRunning, authgate.RunStatePending,
	authgate.RunStateSucceeded, authgate.RunStateFailed, authgate.RunStateCanceled}

type runsPage struct {
	Runs   []authgate.Run
	State  authgate.RunState
	States []authgate.RunState
}

// maxRunsListed bounds the runs page: the newest this many.
const maxRunsListed = 500

func (c *Console) runs(w http.ResponseWriter, r *http.Request, s *session) error {
	state := authgate.RunState(r.URL.Query().Get("state"))
	if state != "" && !state.Valid() {
		return authgate.Errorf(authgate.ClassInvalidRequest, "unknown run state %q", state)
	}
	api := c.cfg.Client(s.Tenant)
	f := authgate.RunFilter{State: state}
	var all []authgate.Run
	for len(all) < 10*maxRunsListed {
		page, err := api.Runs(r.Context(), f)
		if err != nil {
			return err
		}
		all = append(all, page.Runs...)
		if page.NextAfter == "" {
			break
		}
		f.After = page.NextAfter
	}
	// Newest first: the API pages by id; order by creation here.
	slices.SortStableFunc(all, func(a, b authgate.Run) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(all) > maxRunsListed {
		all = all[:maxRunsListed]
	}
	c.render(w, r, s, "runs", "Runs", runsPage{Runs: all, State: state, States: runStates})
	return nil
}

type runPage struct {
	Run authgate.Run
	// BlockedTitle is the blocked class in words.
	BlockedTitle string
	// Live is whether the page keeps polling (the run is not finished).
	Live bool
}

// classTitle is a class in words, as the API's problem titles say it.
func classTitle(c authgate.Class) string { return authgate.Errorf(c, "").Title }

func (c *Console) run(w http.ResponseWriter, r *http.Request, s *session) error {
	run, err := c.cfg.Client(s.Tenant).Run(r.Context(), authgate.RunID(r.PathValue("id")))
	if err != nil {
		return err
	}
	p := runPage{Run: run, Live: !run.State.Terminal()}
	if run.Blocked != nil {
		p.BlockedTitle = classTitle(run.Blocked.Class)
	}
	c.render(w, r, s, "run", "Run "+string(run.ID), p)
	return nil
}

package refresh

// The in-doubt record and the database's clock.
//
// A refresh token presented to a rotating provider is spent the moment the
// provider processes the request, whether or not its answer reaches us. A
// flight therefore records durably, just before the token leaves (in the
// transport, when the request body that carries it is first read: on
// HTTP/1.1 the headers are still in the connection's buffer then; on HTTP/2
// they may have gone, but a request whose body never follows is reset, not
// processed), which refresh token it is about to present, by which lease holder, and until when that request may still land:
// the moment of the record plus the stall the sender tolerates (one lease
// period), the provider's token timeout and a margin. The record is written
// only while the flight still holds its lease, so a holder frozen past its
// lease (a GC pause, SIGSTOP, a VM migration) that resumes after another
// process took over never sends. A flight that takes over and finds another
// holder's record for the stored refresh token never presents it before the
// deadline; after it, introspection (where the provider has it) tells a
// rotation whose answer was lost (reauth_required) from a request that never
// landed (safe to send).
//
// Leases and records are compared with the database's time (Store.ClockNow):
// two hosts whose clocks disagree by more than a lease period would
// otherwise both believe they hold one. The hot path cannot ask the database
// the time on every request, so it uses this process's clock corrected by
// the offset measured at each such read.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// offsetNoise is the largest difference between this process's clock and
// the database's that is treated as measurement noise rather than skew.
const offsetNoise = 50 * time.Millisecond

// dbNow asks the database the time and remembers how far this process's
// clock is from it.
func (r *Refresher) dbNow(ctx context.Context) (time.Time, error) {
	before := r.cfg.Clock.Now()
	t, err := r.cfg.Store.ClockNow(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("database clock: %w", err)
	}
	after := r.cfg.Clock.Now()
	half := after.Sub(before) / 2
	off := t.Sub(before.Add(half))
	if off <= half+offsetNoise && off >= -half-offsetNoise {
		off = 0
	}
	if prev := time.Duration(r.offset.Swap(int64(off))); (prev - off).Abs() > time.Second {
		r.cfg.Logger.Warn("this process's clock differs from the database's; leases and expiries follow the database", slog.Duration("offset", off))
	}
	return t, nil
}

// now is the database's time as this process best knows it without asking:
// its clock plus the last measured offset.
func (r *Refresher) now() time.Time {
	return r.cfg.Clock.Now().Add(time.Duration(r.offset.Load()))
}

// sendDeadline is how long after a record its request may still land: the
// sender's tolerated stall between record and send (one lease period), the
// call timeout, and the margin for a provider still processing a request
// its client gave up on.
func (r *Refresher) sendDeadline(p *catalog.Provider) time.Duration {
	return r.cfg.LeaseTTL + r.callTimeout(p) + r.cfg.SendMargin
}

// priorSend looks at another flight's in-doubt record for the stored refresh
// token. While its request may still land, it returns a transient error
// (never a second presentation); after that it says the token must be
// introspected before it is presented (prior true). holder is the caller's
// own lease holder name ("" when it holds none).
func (r *Refresher) priorSend(ctx context.Context, l *vault.Loaded, p *catalog.Provider, holder string) (prior bool, err error) {
	if l.SendHolder == "" || l.SendHolder == holder || l.SendRefreshFP != l.RefreshTokenFingerprint || l.SendDeadline.IsZero() {
		return false, nil
	}
	now, err := r.dbNow(ctx)
	if err != nil {
		return false, fmt.Errorf("refresh %s: %w", l.ID, err)
	}
	if left := l.SendDeadline.Sub(now); left > 0 {
		return false, inDoubt(l.ID, p, left)
	}
	return true, nil
}

// errLeaseLost: the flight no longer held its lease when it was about to
// send; nothing was sent.
var errLeaseLost = errors.New("the refresh lease was lost before the request was sent; not sent")

// sendGuard writes the in-doubt record as the request is about to leave,
// and refuses to let it leave when the flight lost its lease, the call's
// deadline passed, or the process stalled between the record and the send.
type sendGuard struct {
	r       *Refresher
	id      authgate.CredentialID
	holder  string
	fp      string
	timeout time.Duration // the whole deadline after a record
	base    http.RoundTripper

	mu       sync.Mutex
	marked   bool  // a record of ours may be in the database
	refusal  error // sticky: once refused, no body of this call leaves
	leaseErr bool  // the refusal was a lost lease (start over) rather than a failing database
}

func (r *Refresher) newSendGuard(id authgate.CredentialID, holder, fp string, p *catalog.Provider) *sendGuard {
	return &sendGuard{r: r, id: id, holder: holder, fp: fp, timeout: r.sendDeadline(p)}
}

// transport wraps base so that each request body, read first when the
// transport writes the request, runs the check.
func (g *sendGuard) transport(base http.RoundTripper) http.RoundTripper {
	g.base = base
	return g
}

func (g *sendGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		if err := g.check(req.Context()); err != nil {
			return nil, err
		}
		return g.base.RoundTrip(req)
	}
	r2 := req.Clone(req.Context())
	r2.Body = &guardedBody{rc: req.Body, g: g, ctx: req.Context()}
	if get := req.GetBody; get != nil {
		// The transport rewinds with GetBody when it retries on a fresh
		// connection: the retry is checked too.
		r2.GetBody = func() (io.ReadCloser, error) {
			b, err := get()
			if err != nil {
				return nil, err
			}
			return &guardedBody{rc: b, g: g, ctx: req.Context()}, nil
		}
	}
	return g.base.RoundTrip(r2)
}

// check records the send, or refuses it.
func (g *sendGuard) check(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refusal != nil {
		return g.refusal
	}
	refuse := func(err error, lease bool) error {
		g.refusal, g.leaseErr = err, lease
		if g.marked {
			// Nothing left: the record must not make others wait for it.
			g.clear(context.WithoutCancel(ctx))
		}
		return err
	}
	if ctx.Err() != nil {
		return refuse(fmt.Errorf("the token call's deadline passed before the request was sent: %w", ctx.Err()), false)
	}
	r := g.r
	at, err := r.dbNow(ctx)
	if err != nil {
		return refuse(err, false)
	}
	ok, err := r.cfg.Store.CredentialSendMark(ctx, storage.CredentialSendParams{ID: g.id, Holder: g.holder, RefreshFP: g.fp,
		At: at, Deadline: at.Add(g.timeout), LeaseUntil: at.Add(r.cfg.LeaseTTL)})
	if err != nil {
		return refuse(fmt.Errorf("record the refresh about to be sent: %w", err), false)
	}
	if !ok {
		return refuse(errLeaseLost, true)
	}
	g.marked = true
	// The record's deadline counts from at: a process frozen between the
	// record and here would send later than the record says. Such a stall
	// is refused; one shorter than a lease period is in the deadline.
	after, err := r.dbNow(ctx)
	if err != nil {
		return refuse(err, false)
	}
	if stall := after.Sub(at); stall > r.cfg.LeaseTTL {
		r.cfg.Logger.Warn("stalled between recording a refresh and sending it; not sent", slog.String("credential_id", string(g.id)), slog.Duration("stall", stall))
		return refuse(errLeaseLost, true)
	}
	if ctx.Err() != nil {
		return refuse(fmt.Errorf("the token call's deadline passed before the request was sent: %w", ctx.Err()), false)
	}
	return nil
}

// clear removes our record after an answer that settles the request (or a
// refusal): the token was not spent, or the answer says how.
func (g *sendGuard) clear(ctx context.Context) {
	if !g.marked {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := g.r.cfg.Store.CredentialSendClear(ctx, storage.CredentialSendParams{ID: g.id, Holder: g.holder}); err != nil {
		// Harmless: a takeover waits for the deadline, then introspects.
		g.r.cfg.Logger.Warn("clear the in-doubt refresh record", slog.String("credential_id", string(g.id)), slog.String("error", err.Error()))
		return
	}
	g.marked = false
}

// refused reports why the request was kept from leaving (nil: it left, or
// was never tried), and whether it was the lease that was lost.
func (g *sendGuard) refused() (err error, lease bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refusal, g.leaseErr
}

// settled is called once the request's fate is known (the provider refused
// it, or its answer is stored): the record has served its purpose.
func (g *sendGuard) settled(ctx context.Context) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.clear(context.WithoutCancel(ctx))
}

// guardedBody runs the guard's check on its first read.
type guardedBody struct {
	rc      io.ReadCloser
	g       *sendGuard
	ctx     context.Context
	checked bool
	err     error
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if !b.checked {
		b.checked = true
		b.err = b.g.check(b.ctx)
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rc.Read(p)
}

func (b *guardedBody) Close() error { return b.rc.Close() }

// notSent is the outcome of a call the guard kept from leaving.
func notSent(id authgate.CredentialID, p *catalog.Provider, err error) *authgate.Error {
	e := authgate.Errorf(authgate.ClassTransient, "the refresh of this %s connection was not sent (%s); ask again shortly", p.DisplayName, err.Error())
	e.CredentialID, e.RetryAfter = id, authgate.Duration(time.Second)
	return e
}

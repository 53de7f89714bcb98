package googlesim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// tokenHeaders are the headers Google's token endpoint sends (reference §1.9).
func (s *Sim) tokenHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Mon, 01 Jan 1990 00:00:00 GMT")
	h.Set("Server", "scaffolding on HTTPServer2")
	oauthcore.SetDate(w, s.providerNow())
}

// tokenError writes a token-endpoint error the way Google does: pretty
// printed with two spaces.
func (s *Sim) tokenError(w http.ResponseWriter, status int, code, description string) {
	s.tokenHeaders(w)
	oauthcore.WriteJSON(w, status, map[string]string{"error": code, "error_description": description}, "  ")
}

// The description of a dead refresh token. Google later shortens it to "Bad
// Request"; the classifier must match on `error` only.
const deadRefresh = "Token has been expired or revoked."

func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	s.core.CountTokenRequest()
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Invalid request body.")
		return
	}
	id, secret, _ := oauthcore.ClientCredentials(r)
	if id == "" {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return
	}
	client, err := s.core.AuthenticateClient(id, secret)
	switch oauthcore.KindOf(err) {
	case oauthcore.KindClientUnknown:
		s.tokenError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case oauthcore.KindClientSecret:
		s.tokenError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return
	}
	grant := r.PostForm.Get("grant_type")
	account := ""
	switch grant {
	case "authorization_code":
		if c, ok := s.core.PeekCode(r.PostForm.Get("code")); ok {
			account = s.emailOf(c.AccountID)
		}
	case "refresh_token":
		if t, ok := s.core.PeekRefresh(r.PostForm.Get("refresh_token")); ok {
			account = s.emailOf(t.AccountID)
		}
	}
	// Count what arrived, before any injected fault answers it.
	switch grant {
	case "authorization_code":
		s.core.CountExchange()
	case "refresh_token":
		s.core.CountRefresh(r.PostForm.Get("refresh_token"))
	}
	if s.requestFaults(w, r, account, fault.TargetToken) {
		return
	}
	switch grant {
	case "authorization_code":
		s.exchange(w, r, client)
	case "refresh_token":
		s.refresh(w, r, client, account)
	default:
		s.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+grant)
	}
}

func (s *Sim) emailOf(sub string) string {
	if a := s.accountBySub(sub); a != nil {
		return a.Email
	}
	return ""
}

// requestFaults applies injected latency, rate limits and server errors to
// one request. It reports whether it answered the request.
func (s *Sim) requestFaults(w http.ResponseWriter, r *http.Request, account, target string) bool {
	d := s.faults.Decide(Provider, account, target)
	oauthcore.Sleep(r.Context(), d.Latency)
	switch {
	case d.RateLimited && target == fault.TargetToken:
		// Unconfirmed (reference §9): Google's token endpoint rate-limit body
		// is not captured; an RFC 6749-shaped body with Retry-After is used.
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
		s.tokenError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit exceeded.")
		return true
	case d.RateLimited:
		s.apiRateLimited(w, r, d)
		return true
	case d.ServerError != 0 && target == fault.TargetToken:
		// Google's front ends answer 5xx with an HTML page, not JSON.
		oauthcore.SetDate(w, s.providerNow())
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(d.ServerError)
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error %d (Server Error)!!1</title><p><b>%d.</b> <ins>That’s an error.</ins><p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.  <ins>That’s all we know.</ins>\n", d.ServerError, d.ServerError)
		return true
	case d.ServerError != 0:
		s.apiError(w, d.ServerError, legacyError(d.ServerError, "global", "backendError", "Backend Error"), legacyIndent(r))
		return true
	}
	return false
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

func (s *Sim) exchange(w http.ResponseWriter, r *http.Request, client *oauthcore.Client) {
	iss, err := s.core.Exchange(oauthcore.ExchangeParams{
		ClientID: client.ID, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"),
		Verifier: r.PostForm.Get("code_verifier"), RedirectRequired: true,
	})
	switch oauthcore.KindOf(err) {
	case 0:
	case oauthcore.KindCodeUnknown:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "Malformed auth code.")
		return
	case oauthcore.KindCodeUsed:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "Code was already redeemed.")
		return
	case oauthcore.KindRedirectMismatch:
		// The code and status are confirmed; the description is not (reference §9).
		s.tokenError(w, http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
		return
	case oauthcore.KindVerifierMissing:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "Missing code verifier.")
		return
	case oauthcore.KindVerifierNotNeeded:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier or verifier is not needed")
		return
	case oauthcore.KindVerifierInvalid:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
		return
	default: // expired, issued to another client
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	resp := tokenResponse{AccessToken: iss.Access.Value, ExpiresIn: int64(iss.ExpiresIn / time.Second), Scope: strings.Join(iss.Access.Scopes, " "), TokenType: "Bearer"}
	if iss.Refresh != nil {
		resp.RefreshToken = iss.Refresh.Value
	}
	if slices.Contains(iss.Access.Scopes, "openid") {
		idt, err := s.idToken(r, client.ID, iss.Access, iss.Code.Extra["nonce"])
		if err != nil {
			s.tokenError(w, http.StatusInternalServerError, "internal_failure", "Backend Error")
			return
		}
		resp.IDToken = idt
	}
	s.tokenHeaders(w)
	oauthcore.WriteJSON(w, http.StatusOK, resp, "  ")
}

func (s *Sim) refresh(w http.ResponseWriter, r *http.Request, client *oauthcore.Client, account string) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	if s.faults.TakeInvalidGrant(Provider, account) {
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", deadRefresh)
		return
	}
	if account != "" {
		if a := s.AccountFor(account); s.faults.AdminBlocked(Provider, a.Email, a.Domain) {
			// Unconfirmed body (reference §9): the code is documented, the JSON is not.
			s.tokenError(w, http.StatusBadRequest, "admin_policy_enforced", "Access to your account data is restricted by policies within your organization.")
			return
		}
	}
	iss, err := s.core.Refresh(client.ID, rt)
	switch oauthcore.KindOf(err) {
	case 0:
	case oauthcore.KindRefreshWrongClient:
		s.tokenError(w, http.StatusUnauthorized, "unauthorized_client", "Unauthorized")
		return
	default:
		s.tokenError(w, http.StatusBadRequest, "invalid_grant", deadRefresh)
		return
	}
	// Google does not rotate: no refresh_token, and (unconfirmed, §9) no id_token.
	s.tokenHeaders(w)
	oauthcore.WriteJSON(w, http.StatusOK, tokenResponse{
		AccessToken: iss.Access.Value, ExpiresIn: int64(iss.ExpiresIn / time.Second), Scope: strings.Join(iss.Access.Scopes, " "), TokenType: "Bearer",
	}, "  ")
}

func (s *Sim) idToken(r *http.Request, clientID string, a *oauthcore.Access, nonce string) (string, error) {
	acct := s.accountBySub(a.AccountID)
	now := s.providerNow()
	claims := map[string]any{
		"iss": issuer(r), "azp": clientID, "aud": clientID, "sub": a.AccountID, "at_hash": oauthcore.AtHash(a.Value),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if slices.Contains(a.Scopes, ScopeEmail) {
		claims["email"], claims["email_verified"] = acct.Email, true
	}
	if slices.Contains(a.Scopes, ScopeProfile) {
		claims["name"], claims["given_name"], claims["family_name"], claims["locale"] = acct.Name, acct.GivenName, acct.FamilyName, "en"
		claims["picture"] = "https://lh3.googleusercontent.com/a/sandbox"
	}
	if acct.Domain != "" {
		claims["hd"] = acct.Domain
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	return oauthcore.SignJWT(claims)
}

// revoke is the revocation endpoint. Revoking either token of a grant
// removes the app's access for that account entirely.
func (s *Sim) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Invalid request body.")
		return
	}
	tok := cmp.Or(r.Form.Get("token"), r.URL.Query().Get("token"))
	var clientID, sub string
	if a, err := s.core.LookupAccess(tok); err == nil {
		clientID, sub = a.ClientID, a.AccountID
	} else if rt, ok := s.core.PeekRefresh(tok); ok {
		clientID, sub = rt.ClientID, rt.AccountID
	}
	if sub == "" {
		// Unconfirmed (reference §9): the failure body is not captured from Google.
		s.tokenError(w, http.StatusBadRequest, "invalid_token", "Token expired or revoked")
		return
	}
	s.core.Revoke(tok)
	s.core.RevokeGrant(clientID, sub)
	s.tokenHeaders(w)
	w.WriteHeader(http.StatusOK)
}

// userinfo answers the OIDC userinfo endpoint.
func (s *Sim) userinfo(w http.ResponseWriter, r *http.Request) {
	s.core.CountAPI() // the identity call of a connector check is an API call
	oauthcore.SetDate(w, s.providerNow())
	a, err := s.core.LookupAccess(oauthcore.BearerToken(r))
	if err != nil {
		// Inferred: RFC 6750 challenge plus a Google-style JSON error.
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		oauthcore.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "Invalid Credentials"}, "  ")
		return
	}
	acct := s.accountBySub(a.AccountID)
	out := map[string]any{"sub": a.AccountID}
	if slices.Contains(a.Scopes, ScopeEmail) {
		out["email"], out["email_verified"] = acct.Email, true
	}
	if slices.Contains(a.Scopes, ScopeProfile) {
		out["name"], out["given_name"], out["family_name"], out["picture"] = acct.Name, acct.GivenName, acct.FamilyName, "https://lh3.googleusercontent.com/a/sandbox"
	}
	if acct.Domain != "" {
		out["hd"] = acct.Domain
	}
	oauthcore.WriteJSON(w, http.StatusOK, out, "  ")
}

// tokeninfo describes an access token; every value is a string, as Google's are.
func (s *Sim) tokeninfo(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	_ = r.ParseForm()
	if idt := r.Form.Get("id_token"); idt != "" {
		claims, err := oauthcore.VerifyJWT(idt, s.providerNow())
		if err != nil {
			oauthcore.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_token", "error_description": "Invalid Value"}, "  ")
			return
		}
		// tokeninfo renders every claim as a string.
		out := map[string]string{"alg": "RS256", "typ": "JWT"}
		for k, v := range claims {
			switch x := v.(type) {
			case string:
				out[k] = x
			case float64:
				out[k] = strconv.FormatInt(int64(x), 10)
			case bool:
				out[k] = strconv.FormatBool(x)
			}
		}
		oauthcore.WriteJSON(w, http.StatusOK, out, "  ")
		return
	}
	tok := r.Form.Get("access_token")
	a, err := s.core.LookupAccess(tok)
	if tok == "" || err != nil {
		oauthcore.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_token", "error_description": "Invalid Value"}, "  ")
		return
	}
	acct := s.accountBySub(a.AccountID)
	out := map[string]string{"azp": a.ClientID, "aud": a.ClientID, "sub": a.AccountID, "scope": strings.Join(a.Scopes, " "), "access_type": "online"}
	if s.core.HasLiveRefresh(a.ClientID, a.AccountID) {
		out["access_type"] = "offline"
	}
	if !a.ExpiresAt.IsZero() {
		out["exp"] = strconv.FormatInt(a.ExpiresAt.Add(s.faults.ClockOffset(Provider)).Unix(), 10)
		out["expires_in"] = strconv.FormatInt(int64(a.ExpiresAt.Sub(s.now())/time.Second), 10)
	}
	if slices.Contains(a.Scopes, ScopeEmail) {
		out["email"], out["email_verified"] = acct.Email, "true"
	}
	oauthcore.WriteJSON(w, http.StatusOK, out, "  ")
}

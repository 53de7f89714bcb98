package authgate

import (
	"context"
	"net/http"
	"net/url"
)

// CreateRun starts a run: every binding is preflighted, and the run comes
// back running, blocked_on_auth or failed with its checks.
func (c *Client) CreateRun(ctx context.Context, req RunCreateRequest) (Run, error) {
	var out Run
	err := c.do(ctx, http.MethodPost, "/v1/runs", req, &out)
	return out, err
}

// Run reads a run with its steps and timeline.
func (c *Client) Run(ctx context.Context, id RunID) (Run, error) {
	var out Run
	err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(string(id)), nil, &out)
	return out, err
}

// RunFilter selects runs; zero fields match all.
type RunFilter struct {
	State  RunState
	UserID string
	After  RunID
}

// Runs lists a page of the tenant's runs.
func (c *Client) Runs(ctx context.Context, f RunFilter) (RunPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": string(f.State), "user_id": f.UserID, "after": string(f.After)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/v1/runs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out RunPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CancelRun cancels a run that has not finished.
func (c *Client) CancelRun(ctx context.Context, id RunID) (Run, error) {
	var out Run
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(string(id))+"/cancel", nil, &out)
	return out, err
}

// FinishRun ends a run as succeeded or failed.
func (c *Client) FinishRun(ctx context.Context, id RunID, req RunFinishRequest) (Run, error) {
	var out Run
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(string(id))+"/finish", req, &out)
	return out, err
}

// GateStep asks to run a step: tokens per binding, or the recorded output
// of a step completed before, or an *Error of class blocked_on_auth.
func (c *Client) GateStep(ctx context.Context, id RunID, req StepGateRequest) (StepGateResponse, error) {
	var out StepGateResponse
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(string(id))+"/steps", req, &out)
	return out, err
}

// CompleteStep records a step's checkpoint once.
func (c *Client) CompleteStep(ctx context.Context, id RunID, key string, req StepCompleteRequest) (Step, error) {
	var out Step
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(string(id))+"/steps/"+url.PathEscape(key)+"/complete", req, &out)
	return out, err
}

// FailStep reports a provider's answer to a step and says what to do next.
func (c *Client) FailStep(ctx context.Context, id RunID, key string, req StepFailRequest) (StepFailResponse, error) {
	var out StepFailResponse
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(string(id))+"/steps/"+url.PathEscape(key)+"/fail", req, &out)
	return out, err
}

// CreateWebhook adds a webhook endpoint; the answer's Secret is shown this
// once (keep it to verify deliveries with package webhook).
func (c *Client) CreateWebhook(ctx context.Context, req WebhookEndpointCreateRequest) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.do(ctx, http.MethodPost, "/v1/webhooks", req, &out)
	return out, err
}

// Webhooks lists the tenant's webhook endpoints (without secrets).
func (c *Client) Webhooks(ctx context.Context) (WebhookEndpointList, error) {
	var out WebhookEndpointList
	err := c.do(ctx, http.MethodGet, "/v1/webhooks", nil, &out)
	return out, err
}

// WebhookDeliveries lists the tenant's webhook deliveries, newest first;
// status ("pending", "delivered", "dead" or "") filters them.
func (c *Client) WebhookDeliveries(ctx context.Context, status WebhookDeliveryStatus, before WebhookDeliveryID) (WebhookDeliveryPage, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", string(status))
	}
	if before != "" {
		q.Set("before", string(before))
	}
	path := "/v1/webhooks/deliveries"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out WebhookDeliveryPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// DeleteWebhook removes an endpoint and its pending deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id WebhookEndpointID) error {
	return c.do(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(string(id)), nil, nil)
}

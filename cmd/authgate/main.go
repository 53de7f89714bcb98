// Command authgate runs the authgate service and its operator tools: one
// cobra command per file, each turning flags and AUTHGATE_* environment
// variables into a server.Config. No behaviour lives here.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/authgate/authgate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authgate: "+oneLine(err))
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// oneLine renders an error for a terminal on one line: the end-user detail
// of an *authgate.Error, the message otherwise. Lines are joined, not cut,
// so what follows the first one survives: cobra's "Did you mean this?",
// the YAML decoder's "line 3: field colour not found".
func oneLine(err error) string {
	var ae *authgate.Error
	msg := err.Error()
	if errors.As(err, &ae) && ae.Detail != "" {
		msg = ae.Detail
	}
	var b strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if prev := b.String(); strings.HasSuffix(prev, ":") || strings.HasSuffix(prev, "?") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

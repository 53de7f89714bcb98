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
	"syscall"

	"github.com/authgate/authgate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authgate: "+oneLine(err))
		os.Exit(1)
	}
}

// oneLine renders an error for a terminal: the end-user detail of an
// *authgate.Error, the message otherwise, on one line.
func oneLine(err error) string {
	var ae *authgate.Error
	msg := err.Error()
	if errors.As(err, &ae) && ae.Detail != "" {
		msg = ae.Detail
	}
	for i, r := range msg {
		if r == '\n' {
			return msg[:i] + " …"
		}
	}
	return msg
}

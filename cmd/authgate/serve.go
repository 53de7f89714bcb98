package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/server"
)

func newServeCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authgate HTTP API (zero configuration: SQLite file and key file in the working directory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			cfg.Addr = addr
			if err := cfg.WithDefaults().Validate(); err != nil {
				return err
			}
			// Listen first: a taken port fails before a database, a key file
			// or a once-only admin key is created.
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (another process has the port? choose one with --addr)", addr, err)
			}
			cfg.Addr = ln.Addr().String() // the real port when --addr ends in :0
			out := cmd.OutOrStdout()
			key := &keyCatcher{w: out}
			cfg.Stdout = key
			srv, err := server.Open(cmd.Context(), cfg)
			if err != nil {
				ln.Close()
				return err
			}
			defer srv.Close()
			return srv.ServeListener(cmd.Context(), ln, func(a net.Addr) {
				if srv.Sandbox != nil {
					// Development (the sandbox is mounted): a console link
					// at once, rather than a second command. Printed before
					// the serving line, which scripts wait for.
					if l, err := srv.ConsoleLoginLink(cmd.Context()); err == nil {
						fmt.Fprintf(out, "web console (this link opens once, within 5 minutes): %s\n", l.URL)
					}
				}
				fmt.Fprintf(out, "authgate is serving on http://%s (Ctrl-C stops it)\n", a)
				if f, ok := out.(*os.File); ok && isTerminal(f) {
					nextSteps(out, srv.PublicURL(), key.get(), srv.Sandbox != nil)
				}
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("AUTHGATE_ADDR", "127.0.0.1:8080"), "listen address [$AUTHGATE_ADDR]")
	return cmd
}

// nextSteps tells a person at a terminal what to do now: the lines are
// ready to paste.
func nextSteps(w io.Writer, base, adminKey string, sandbox bool) {
	base = strings.TrimRight(base, "/")
	fmt.Fprintln(w, "\nNext steps:")
	if adminKey != "" {
		fmt.Fprintf(w, "  export AUTHGATE_API_KEY=%s   # the admin key: shown once, keep it\n", adminKey)
	} else {
		fmt.Fprintln(w, "  export AUTHGATE_API_KEY=ag_…   # the admin key printed when this database was created")
	}
	fmt.Fprintf(w, "  export AUTHGATE_URL=%s\n", base)
	if sandbox {
		fmt.Fprintf(w, "  Sandbox providers (google, notion, slack, oidc) at %s/sandbox/ — no real accounts needed.\n", base)
	}
	fmt.Fprintln(w, "  Create a connect link, then open its connect_url in a browser:")
	fmt.Fprintln(w, `    curl -s -X POST "$AUTHGATE_URL/v1/connect-sessions" -H "Authorization: Bearer $AUTHGATE_API_KEY" \`)
	fmt.Fprintln(w, `      -H 'Content-Type: application/json' -d '{"user_id":"alice","provider":"google","actions":["drive.files.list"]}'`)
	fmt.Fprintf(w, "  API reference: %s/v1/openapi.json\n\n", base)
}

// keyCatcher passes serve's stdout through and remembers the one-time
// "admin key: …" line, so the next steps can show it as an export line.
type keyCatcher struct {
	w   io.Writer
	mu  sync.Mutex
	key string
}

func (k *keyCatcher) Write(p []byte) (int, error) {
	k.mu.Lock()
	for _, line := range bytes.Split(p, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("admin key: ")); ok {
			k.key = string(bytes.TrimSpace(v))
		}
	}
	k.mu.Unlock()
	return k.w.Write(p)
}

func (k *keyCatcher) get() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.key
}

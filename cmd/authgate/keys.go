package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/vault"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the master keys that encrypt stored secrets"}
	cmd.AddCommand(newKeysRotateCmd(g))
	return cmd
}

func newKeysRotateCmd(g *globals) *cobra.Command {
	var generate bool
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every stored secret with the primary key (safe to interrupt and run again)",
		Long: `Re-encrypt every stored secret with the primary key: the first key in
$AUTHGATE_MASTER_KEYS, or the first in the key file. Keep the old keys loaded
(after the new primary) until rotation reports 0 remaining; then they can go.

With --generate (key file only) a fresh key is first added to the top of the
key file as the new primary.

Each batch commits on its own and never overwrites a concurrent refresh, so the
command can run while authgate serves, and an interrupted run resumes where it
stopped when run again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if generate {
				if cfg.MasterKeys != "" {
					return errors.New("--generate adds a key to the key file, but keys come from $AUTHGATE_MASTER_KEYS: put the new key first there instead")
				}
				if _, err := os.Stat(cfg.KeyFile); err != nil {
					return fmt.Errorf("master key file %s not found", cfg.KeyFile)
				}
				_, id, err := keyring.AddPrimaryToFile(cfg.KeyFile, cfg.Clock.Now())
				if err != nil {
					return fmt.Errorf("add key: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added key %s as the primary in %s\n", id, cfg.KeyFile)
			}
			core, err := g.openCore(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "rotating to key %s\n", core.Keys.Primary())
			res, err := core.Vault.RotateKeys(cmd.Context(), vault.RotateOptions{BatchSize: batch, OnBatch: func(r vault.RotateResult) {
				fmt.Fprintf(out, "  re-encrypted %d so far\n", r.Rotated)
			}})
			fmt.Fprintf(out, "re-encrypted %d, skipped %d (changed meanwhile), failed %d, remaining on other keys %d; webhook secrets re-encrypted %d\n", res.Rotated, res.Skipped, res.Failed, res.Remaining, res.Webhooks)
			if err != nil {
				return err
			}
			if res.Remaining > 0 {
				return fmt.Errorf("%d credentials still use another key: run keys rotate again", res.Remaining)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&generate, "generate", false, "first add a new primary key to the key file")
	cmd.Flags().IntVar(&batch, "batch", 500, "credentials per transaction")
	return cmd
}

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarybot/canarybot/internal/demo"
	"github.com/canarybot/canarybot/pkg/canary"
)

func newDemo(g *globals) *cobra.Command {
	o := demo.Options{}
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run two whole canary rollouts on this machine: v2 promoted, v3 reverted",
		Long: "demo needs nothing but the prometheus binary. It creates a GitOps repo, an OCI registry,\n" +
			"a local Argo CD stand-in, simulated model servers and a real Prometheus, then rolls out\n" +
			"v2 (healthy, promoted) and v3 (40% slower, reverted). State lives in --dir: run it again\n" +
			"with the same --dir to resume.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if o.Dir == "" {
				if o.Dir, err = demo.DefaultDir(); err != nil {
					return err
				}
			}
			o.Out, o.Log, o.Clock = g.stdout, log, canary.SystemClock{}
			if err := demo.Run(cmd.Context(), o); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", "", "keep all state here (default: a new temporary directory)")
	c.Flags().StringVar(&o.Prometheus, "prometheus", "", "prometheus binary (default: from PATH)")
	c.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up after this long")
	c.Flags().Float64Var(&o.RPS, "rps", 40, "simulated requests per second")
	return c
}

// Command sleepy is a test sink that takes its time: each Flush sleeps for
// the configured duration before it returns.
package main

import (
	"context"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

type config struct {
	Sleep string `hcl:"sleep,optional"`
	// Token stands for a credential: veneurd must never show it.
	Token string `hcl:"token,optional" sensitive:"true"`
}

type sink struct{ sleep time.Duration }

func (s *sink) Config() any { return &config{Sleep: "1s"} }

func (s *sink) Configure(_ context.Context, _ sdk.Env, c any) error {
	d, err := time.ParseDuration(c.(*config).Sleep)
	if err != nil {
		return &sdk.AttrError{Attribute: "sleep", Summary: "Invalid duration", Detail: err.Error()}
	}
	s.sleep = d
	return nil
}

func (s *sink) Start(context.Context) error { return nil }
func (s *sink) Stop(context.Context) error  { return nil }

func (s *sink) Flush(ctx context.Context, _ *sdk.Flush) error {
	select {
	case <-time.After(s.sleep):
	case <-ctx.Done():
	}
	return nil
}

func main() { sdk.Serve(&sink{}) }

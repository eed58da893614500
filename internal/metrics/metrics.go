// Package metrics registers the module's Prometheus collectors so that two
// packages may share one: a counter that manaauth and spaces both
// increment (mails not sent, hooks that failed) is registered once, and the
// second registration gets the first collector back.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterVec returns a counter vector registered on reg, or the one
// already registered there under the same name, help and labels. reg nil
// leaves it unregistered.
func CounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(opts, labels)
	got, err := register(reg, c)
	if err != nil {
		return nil, err
	}
	v, ok := got.(*prometheus.CounterVec)
	if !ok {
		return nil, fmt.Errorf("metrics: %s is registered as another kind of collector", opts.Name)
	}
	return v, nil
}

// Counter is CounterVec without labels.
func Counter(reg prometheus.Registerer, opts prometheus.CounterOpts) (prometheus.Counter, error) {
	c := prometheus.NewCounter(opts)
	got, err := register(reg, c)
	if err != nil {
		return nil, err
	}
	v, ok := got.(prometheus.Counter)
	if !ok {
		return nil, fmt.Errorf("metrics: %s is registered as another kind of collector", opts.Name)
	}
	return v, nil
}

func register(reg prometheus.Registerer, c prometheus.Collector) (prometheus.Collector, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &dup):
		return dup.ExistingCollector, nil
	default:
		return nil, fmt.Errorf("metrics: register: %w", err)
	}
}

// HookFailures is mana_auth_hook_failures_total{hook}, the hooks that
// failed after their action committed, shared by every package that runs
// hooks.
func HookFailures(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	return CounterVec(reg, prometheus.CounterOpts{
		Name: "mana_auth_hook_failures_total",
		Help: "Account hooks that failed after their action committed (each logged at warn).",
	}, "hook")
}

// MailFailures is mana_auth_mail_failures_total, the mails that could not
// be sent, shared by every package that sends mail.
func MailFailures(reg prometheus.Registerer) (prometheus.Counter, error) {
	return Counter(reg, prometheus.CounterOpts{
		Name: "mana_auth_mail_failures_total",
		Help: "Mails that could not be sent (each logged at warn with its cause).",
	})
}

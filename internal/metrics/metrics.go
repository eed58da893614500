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

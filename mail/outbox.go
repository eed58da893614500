package mail

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Outbox sends mails in the background, so that the timing of an answer
// does not tell whether a mail was sent (which would reveal whether an
// address has an account). A failure is logged at warn with its cause and
// counted; nothing is retried. Close waits for the mails still being sent.
//
// The zero Outbox is not usable; build one with NewOutbox.
type Outbox struct {
	mailer  Mailer
	logger  *slog.Logger
	failed  func()
	timeout time.Duration
	wg      sync.WaitGroup
}

// NewOutbox sends through m. logger nil means slog.Default(); failed, when
// set, is called once per mail that could not be sent (a metric's Inc).
func NewOutbox(m Mailer, logger *slog.Logger, failed func()) *Outbox {
	if logger == nil {
		logger = slog.Default()
	}
	if failed == nil {
		failed = func() {}
	}
	return &Outbox{mailer: m, logger: logger, failed: failed, timeout: time.Minute}
}

// Post starts sending msg and returns at once. kind names the mail in the
// log ("verification", "invitation", …); the message itself is never
// logged. The send outlives ctx's cancellation (the request that posted it
// may be answered already) but not a minute.
func (o *Outbox) Post(ctx context.Context, kind string, msg Message) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.timeout)
		defer cancel()
		if err := o.mailer.Send(ctx, msg); err != nil {
			o.failed()
			o.logger.Warn("mail not sent", "kind", kind, "err", err)
		}
	}()
}

// Close waits until every posted mail was sent or failed.
func (o *Outbox) Close() { o.wg.Wait() }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/manaauth"
)

// The operator commands of api.md: `server users …` and `server migrate`.
// Each opens the database as the server does (migrating it first), prints
// what it did on out — a line for people, or one JSON document with
// -json — and its log lines on logOut.

const usersUsage = `usage: server users <command> [flags]

commands:
  list [-q EMAIL-PART] [-limit N]   accounts whose email contains EMAIL-PART, by email
  show EMAIL                        one account: verified, disabled, locked, live sessions, last sign-in
  unlock EMAIL                      lift the lockout of EMAIL (writes LOCKOUT_CLEARED)
  disable EMAIL [-reason TEXT]      refuse every sign-in of EMAIL (403 ACCOUNT_DISABLED) and revoke its sessions
  enable EMAIL                      let a disabled account sign in again
  revoke-sessions EMAIL             sign EMAIL out everywhere

every command takes -json for machine output`

// migrateCommand applies the migrations and exits.
func migrateCommand(ctx context.Context, getenv func(string) string, out, logOut io.Writer, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(logOut)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	dbs, err := openDatabases(ctx, cfg, sources(), newLogger(cfg, logOut))
	if err != nil {
		return err
	}
	defer dbs.Close()
	ids := make([]string, len(dbs.applied))
	for i, f := range dbs.applied {
		ids[i] = f.ID()
	}
	if *asJSON {
		return writeJSON(out, map[string]any{"applied": ids})
	}
	if len(ids) == 0 {
		_, err = fmt.Fprintln(out, "migrations are current; nothing to apply")
		return err
	}
	for _, id := range ids {
		if _, err := fmt.Fprintln(out, "applied "+id); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(out, "%d migrations applied\n", len(ids))
	return err
}

// usersCommand runs `server users <command>`.
func usersCommand(ctx context.Context, getenv func(string) string, out, logOut io.Writer, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, err := fmt.Fprintln(out, usersUsage)
		if len(args) == 0 {
			return errors.New("users: a command is required")
		}
		return err
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("users "+cmd, flag.ContinueOnError)
	fs.SetOutput(logOut)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	var query, reason *string
	var limit *int
	needEmail := true
	switch cmd {
	case "list":
		query = fs.String("q", "", "only accounts whose email contains this")
		limit = fs.Int("limit", 100, "at most this many (1-1000)")
		needEmail = false
	case "disable":
		reason = fs.String("reason", "", "why (kept in the ACCOUNT_DISABLED event)")
	case "show", "unlock", "enable", "revoke-sessions":
	default:
		return fmt.Errorf("users: unknown command %q\n%s", cmd, usersUsage)
	}
	email, err := parseInterspersed(fs, args, needEmail)
	if err != nil {
		return fmt.Errorf("users %s: %w", cmd, err)
	}

	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, logOut)
	dbs, err := openDatabases(ctx, cfg, sources(), logger)
	if err != nil {
		return err
	}
	defer dbs.Close()
	stack, err := newAuthStack(ctx, cfg, dbs.runtime, prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := stack.Close(); cerr != nil {
			logger.Warn("close auth stack", "err", cerr)
		}
	}()
	op := operator{svc: stack.svc, out: out, json: *asJSON}
	switch cmd {
	case "list":
		return op.list(ctx, *query, *limit)
	case "show":
		return op.show(ctx, email)
	case "unlock":
		return op.unlock(ctx, email)
	case "disable":
		return op.disable(ctx, email, *reason)
	case "enable":
		return op.enable(ctx, email)
	default: // revoke-sessions
		return op.revokeSessions(ctx, email)
	}
}

// parseInterspersed parses flags before and after the one positional
// argument (EMAIL), so `users disable a@b -reason x` and
// `users disable -reason x a@b` both work.
func parseInterspersed(fs *flag.FlagSet, args []string, needEmail bool) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	var email string
	if fs.NArg() > 0 {
		email = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	switch {
	case fs.NArg() > 0:
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case needEmail && email == "":
		return "", errors.New("an EMAIL is required")
	case !needEmail && email != "":
		return "", fmt.Errorf("unexpected argument %q", email)
	}
	return email, nil
}

type operator struct {
	svc  *manaauth.Service
	out  io.Writer
	json bool
}

// say prints the line, or v as JSON with -json.
func (o operator) say(v any, format string, args ...any) error {
	if o.json {
		return writeJSON(o.out, v)
	}
	_, err := fmt.Fprintf(o.out, format+"\n", args...)
	return err
}

func (o operator) list(ctx context.Context, query string, limit int) error {
	users, err := o.svc.Users(ctx, query, limit)
	if err != nil {
		return operatorError(err)
	}
	if o.json {
		if users == nil {
			users = []manaauth.UserInfo{}
		}
		return writeJSON(o.out, map[string]any{"users": users})
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tID\tVERIFIED\tDISABLED\tLOCKED\tSESSIONS\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", u.Email, u.ID, yesNo(u.EmailVerified), yesNo(u.DisabledAt != nil),
			lockedText(u), u.ActiveSessions, u.CreatedAt.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.out, "%d accounts\n", len(users))
	return err
}

func (o operator) show(ctx context.Context, email string) error {
	u, err := o.svc.UserByEmail(ctx, email)
	if err != nil {
		return operatorError(err)
	}
	if o.json {
		return writeJSON(o.out, u)
	}
	last := "never"
	if u.LastLoginAt != nil {
		last = u.LastLoginAt.UTC().Format(time.RFC3339)
	}
	disabled := "no"
	if u.DisabledAt != nil {
		disabled = "since " + u.DisabledAt.UTC().Format(time.RFC3339)
	}
	name := ""
	if u.Name != nil {
		name = *u.Name
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"email", u.Email}, {"id", u.ID.String()}, {"name", name}, {"verified", yesNo(u.EmailVerified)},
		{"created", u.CreatedAt.Format(time.RFC3339)}, {"disabled", disabled}, {"locked", lockedText(u)},
		{"live sessions", fmt.Sprint(u.ActiveSessions)}, {"last sign-in", last},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func (o operator) unlock(ctx context.Context, email string) error {
	was, err := o.svc.Unlock(ctx, email)
	if err != nil {
		return operatorError(err)
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if was {
		return o.say(map[string]any{"email": email, "wasLocked": true}, "unlocked %s", email)
	}
	return o.say(map[string]any{"email": email, "wasLocked": false}, "%s was not locked; failures forgotten", email)
}

func (o operator) disable(ctx context.Context, email, reason string) error {
	u, err := o.svc.UserByEmail(ctx, email)
	if err != nil {
		return operatorError(err)
	}
	changed, revoked, err := o.svc.Disable(ctx, u.ID, reason)
	if err != nil {
		return operatorError(err)
	}
	v := map[string]any{"email": u.Email, "id": u.ID, "changed": changed, "revokedSessions": revoked}
	if !changed {
		return o.say(v, "%s was already disabled; revoked %d sessions", u.Email, revoked)
	}
	return o.say(v, "disabled %s; revoked %d sessions", u.Email, revoked)
}

func (o operator) enable(ctx context.Context, email string) error {
	u, err := o.svc.UserByEmail(ctx, email)
	if err != nil {
		return operatorError(err)
	}
	changed, err := o.svc.Enable(ctx, u.ID)
	if err != nil {
		return operatorError(err)
	}
	v := map[string]any{"email": u.Email, "id": u.ID, "changed": changed}
	if !changed {
		return o.say(v, "%s was not disabled", u.Email)
	}
	return o.say(v, "enabled %s", u.Email)
}

func (o operator) revokeSessions(ctx context.Context, email string) error {
	u, err := o.svc.UserByEmail(ctx, email)
	if err != nil {
		return operatorError(err)
	}
	n, err := o.svc.RevokeAllSessions(ctx, u.ID)
	if err != nil {
		return operatorError(err)
	}
	return o.say(map[string]any{"email": u.Email, "id": u.ID, "revokedSessions": n}, "revoked %d sessions of %s", n, u.Email)
}

// operatorError turns a service error into a line for the operator: the
// client-safe message of a 4xx, the cause of anything else.
func operatorError(err error) error {
	e := autherr.Classify(err)
	if e.Status() < 500 {
		if fields, ok := e.Details["fields"].(map[string]string); ok {
			for f, msg := range fields {
				return fmt.Errorf("%s: %s", f, msg)
			}
		}
		if e.Message != "" {
			return errors.New(e.Message)
		}
		return errors.New(string(e.Code))
	}
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func lockedText(u manaauth.UserInfo) string {
	if !u.Locked {
		return "no"
	}
	return fmt.Sprintf("yes (%ds left)", u.LockedSeconds)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

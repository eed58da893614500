package main

import (
	"fmt"
	"io"
	"strings"
)

// envVar is one variable of the server's environment, as `server --help`
// and README.md's configuration table show it. Text between backticks is
// code: kept in the README, printed without the backticks by --help.
type envVar struct {
	Name    string
	Default string
	Meaning string
}

// environment is every variable LoadConfig reads — the one table behind
// `server --help` and README.md (a test fails when LoadConfig reads a
// variable missing here, or when README's table differs from it).
var environment = []envVar{
	{"MANA_AUTH_ENV", "`development`", "`production` makes every missing secret fatal at boot"},
	{"MANA_AUTH_ADDR", "`127.0.0.1:8080`", "listen address"},
	{"MANA_AUTH_BASE_URL", "`http://localhost:<port>` on the port of `MANA_AUTH_ADDR` (its host instead of localhost when it names one)",
		"public URL: links in mails, token issuer, WebAuthn origin (https in production)"},
	{"WEBAUTHN_RP_ID", "host of `MANA_AUTH_BASE_URL`", "the passkeys' relying party id: a domain, not an IP address, the base URL's host or a parent domain of it. Passkeys are on when `MANA_AUTH_BASE_URL` is https (or http on `localhost`); ceremonies may come from its origin and from every `MANA_AUTH_CORS_ORIGINS` origin on the RP ID"},
	{"DATABASE_URL", "local PostgreSQL, started if need be", "runtime connection (the runtime role in production); may go through PgBouncer in transaction mode. pgx URL parameters apply: `pool_max_conns` (pool size; default 16 connections, opened on demand; see [docs/capacity.md](docs/capacity.md)), `default_query_exec_mode` (default `cache_describe`, safe behind any pooler; see [docs/deploy.md](docs/deploy.md))"},
	{"MIGRATE_DATABASE_URL", "`DATABASE_URL`", "owner connection for migrations; must be direct (or session pooling): the migrations hold an advisory lock"},
	{"MANA_AUTH_IP_RATE", "`300/min`", "per-IP limit over the credential endpoints (`N/s`, `N/min`, `N/h`); `0` disables"},
	{"MANA_AUTH_PASSKEY_OPTIONS_RATE", "`20/min`", "per-IP limit over the two passkey options routes (registration and sign-in), as `MANA_AUTH_IP_RATE`; `0` disables (load tests only)"},
	{"MANA_AUTH_TRUSTED_PROXIES", "none", "comma-separated CIDRs or IPs whose `X-Forwarded-For` is believed"},
	{"MANA_AUTH_CORS_ORIGINS", "none", "comma-separated origins (`https://app.example.com`) whose pages may call the API with credentials (CORS, preflights answered) and make cookie-authenticated calls; `*` is refused"},
	{"MANA_AUTH_KEK", "dev: 32 zero bytes (id `dev`) + warning", "base64 of the 32-byte vault key-encryption key (id `1`)"},
	{"MANA_AUTH_KEKS", "unset", "several KEKs for rotation, `id:base64,id:base64`, the first active; then run `server rewrap`"},
	{"MANA_AUTH_SIGNING_KEY", "dev: generated in the state dir", "Ed25519 private key (PEM) for access tokens"},
	{"MANA_AUTH_ARGON2ID", "`m=19456,t=2,p=1`", "argon2id cost of new password hashes (memory KiB, passes, lanes); a warning is logged below OWASP's minimum; older hashes keep verifying and are rehashed at the next login"},
	{"MANA_AI_PUBLIC_KEY_PEM", "unset: grants answer 503", "RSA public key for mission grants (PKIX or PKCS#1, at least 2048 bits; 3072 recommended)"},
	{"MAX_DAILY_SIGNUPS", "unlimited", "daily signup cap"},
	{"SMTP_URL", "unset: mails are logged", "`smtp://user:pass@host:port`, `smtps://…`, `?starttls=required`"},
	{"MAIL_FROM", "`no-reply@localhost`", "sender"},
	{"REDIS_URL", "unset: in-process limits", "shared rate-limit state for several instances (the per-IP limit and the passkey limits)"},
	{"MANA_AUTH_SERVICE_KEY", "unset", "service credential for `/api/v1/api-keys/validate` (32+ characters)"},
	{"MANA_AUTH_REQUIRE_EMAIL_VERIFICATION", "`true`", "login needs a verified address"},
	{"MANA_AUTH_REFRESH_GRACE", "`10s`", "how long a spent refresh token still gets the same new pair when presented again (two tabs refreshing at once); a Go duration from `1s` to `60s`. After it, presenting the spent token is a reuse: 401 and the whole session is revoked"},
	{"MANA_AUTH_LOG_LEVEL", "`info`", "`debug`, `info`, `warn` or `error`"},
	{"MANA_AUTH_LOG_FORMAT", "`json` in production, `text` otherwise", "`json` or `text`"},
	{"MANA_AUTH_DEBUG_ADDR", "unset: none", "loopback `host:port` (e.g. `127.0.0.1:6060`) serving `net/http/pprof` under `/debug/pprof/` on a listener of its own (never on the API address); for profiling, not for production"},
	{"GOMEMLIMIT", "the password hasher's working memory + 16 MiB (54 MiB on two cores)",
		"the Go runtime's soft memory limit (`server serve` sets the default when unset); `off` for none, or a size such as `200MiB`"},
	{"MANA_AUTH_STATE_DIR", "`$XDG_STATE_HOME/mana-auth` or `~/.local/state/mana-auth`", "development state: private PostgreSQL cluster, runtime role password, development keys"},
}

// commands are the server's subcommands, as --help lists them.
var commands = []struct{ usage, meaning string }{
	{"server [serve]", "run the server (the default)"},
	{"server rewrap [-batch N]", "move every vault row and TOTP secret to the active KEK (the first of MANA_AUTH_KEKS), a line per batch"},
	{"server migrate [-json]", "apply the migrations and exit"},
	{"server users <command> [-json]", "operator commands: list [-q PART], show, unlock, disable [-reason], enable, revoke-sessions EMAIL"},
	{"server version [-json]", "print the module version, VCS revision and Go version"},
	{"server help | -h | --help", "print this help"},
}

// writeHelp prints the commands and every environment variable.
func writeHelp(w io.Writer) error {
	var b strings.Builder
	b.WriteString("mana-auth reference server: every package of the module mounted on one mux,\n" +
		"configured from the environment. With no configuration it runs in development\n" +
		"mode on a local PostgreSQL.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-27s %s\n", c.usage, c.meaning)
	}
	b.WriteString("\nEnvironment (a bad value stops the server at start, naming the variable):\n")
	plain := strings.NewReplacer("`", "")
	for _, v := range environment {
		fmt.Fprintf(&b, "  %s\n      default: %s\n      %s\n", v.Name, plain.Replace(v.Default), plain.Replace(v.Meaning))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdownEnvironment is README.md's configuration table.
func markdownEnvironment() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, v := range environment {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, v.Default, v.Meaning)
	}
	return b.String()
}

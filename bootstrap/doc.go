// Package bootstrap creates the server-side singleton records of
// mana_sync.sync_changes, each exactly once, and serves the endpoint that
// reconciles them.
//
// # The singletons
//
// Every user has one context record and every space one kontext document.
// Created by the clients, they would race: two devices of a new user would
// each insert one. So the server inserts them, as rows of the sync log with
// client_id "system:bootstrap", origin "system" and op "insert":
//
//	record        app_id   table_name   record_id  user_id  space_id  data
//	user context  profile  userContext  user id    user     NULL      {}
//	kontext doc   kontext  kontextDoc   space id   owner    space id  {"blocks": []}
//
// data is the empty default (UserContextData, KontextDocData): the user
// context has no field until a client writes one, so no server default can
// win over a client's value; the kontext document has its one field, an
// empty list of blocks. field_meta comes from the one helper FieldMeta: for
// every top-level field of data {"updatedAt": <now>, "origin": "system"},
// so {} and {"blocks": {…}}. created_at is the same instant (milliseconds).
//
// # Exactly once
//
// The unique partial index sync_changes_bootstrap_once on (app_id,
// table_name, record_id) WHERE client_id = 'system:bootstrap' allows one
// bootstrap row per record, and every insert is INSERT … ON CONFLICT DO
// NOTHING on that index, RETURNING the row: of any number of concurrent
// calls one inserts (true), the others wait for it and insert nothing
// (false). No existence check decides it: a check runs before the insert
// and every concurrent caller can pass it. The insert additionally skips a
// record that has any row yet, a client's included, so a default never
// shadows what a client already wrote (a client that writes the record at
// the very moment of the bootstrap is not excluded; the index still keeps
// the system's rows to one).
//
// # Typical flow
//
// At signup the user's context row and the Personal space's kontext
// document are inserted (manaauth's user-created hook; BootstrapUserSingletonsTx
// and BootstrapSpaceSingletonsTx join the caller's transaction under a
// savepoint, so a failure leaves that transaction usable and the caller
// decides). Creating a space inserts its kontext document in the same
// transaction. If a bootstrap failed (the signup went through and logged
// it), the client calls POST /api/v1/me/bootstrap-singletons, which runs
// Reconcile: it inserts whatever is missing for the caller and the spaces
// the caller belongs to and answers
//
//	{"ok": true, "bootstrapped": {"userContext": false, "spaces": {"<spaceId>": true}}}
//
// true where a row was inserted now, false where it already existed.
//
// # Data
//
// The migration (Source) creates mana_sync.sync_changes with api.md's
// columns. user_id cascades with auth.users; space_id has no foreign key,
// since spaces belong to another package. The runtime role may SELECT and
// INSERT, never UPDATE or DELETE.
//
// # Mounting
//
// NewHandler serves "POST /" relative to its mount point. Mount it for the
// exact path, behind the host's authentication:
//
//	const prefix = "/api/v1/me/bootstrap-singletons"
//	mux.Handle("POST "+prefix, authenticate(http.StripPrefix(prefix, h)))
//
// (A pattern ending in "/" would make the standard mux redirect the exact
// path.) HandlerOptions.UserFromRequest names the caller and
// HandlerOptions.Spaces lists the caller's spaces.
package bootstrap

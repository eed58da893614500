// Package grantpg stores the AI service's decrypt audit —
// mana_ai.decrypt_audit, one row per unwrap attempt — in PostgreSQL. It is
// the grant.Auditor an AI service plugs into grant.Unwrapper; it lives
// apart from package grant so that importing grant pulls in no database
// driver.
//
// The table is append-only for the runtime role (INSERT and SELECT only)
// and has FORCE ROW LEVEL SECURITY on the transaction-local setting
// app.current_user_id: Store writes each row in a transaction that set it
// to the row's user, and List reads only the given user's rows.
//
//	store, err := grantpg.New(grantpg.Config{Pool: runtimePool})
//	u, err := grant.NewUnwrapper(grant.UnwrapperConfig{PrivateKeyPEM: …, Keys: …, Auditor: store})
package grantpg

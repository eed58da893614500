// Package manaauth owns the user accounts of mana-auth: the auth.users table
// and, as it grows, registration, login, sessions, tokens and mail.
//
// A host applies its schema with migrate, after migrate.Foundation:
//
//	migrate.New(migrate.Config{Pool: owner, Sources: []migrate.Source{
//		migrate.Foundation(), manaauth.Source(),
//	}})
//
// auth.users stores each email canonical (trimmed, lower-cased) under a
// UNIQUE constraint, so addresses are unique case-insensitively.
package manaauth

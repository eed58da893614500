package spaces

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mana-how/mana-auth/autherr"
	"github.com/mana-how/mana-auth/internal/dbtx"
	"github.com/mana-how/mana-auth/internal/metrics"
	"github.com/mana-how/mana-auth/internal/secret"
	"github.com/mana-how/mana-auth/mail"
	"github.com/mana-how/mana-auth/web"
)

// Hooks let other packages take part in a space's life without spaces
// importing them.
type Hooks struct {
	// SpaceCreated runs inside the transaction that creates a space (the
	// Personal space at registration, every CreateSpace), after the space
	// and its owner's membership are written: bootstrapping the space's
	// kontextDoc. Its error does not fail the creation: what it wrote is
	// rolled back to a savepoint, the error is logged at warn with its
	// cause and counted in mana_auth_hook_failures_total{hook="space_created"},
	// and the bootstrap reconcile endpoint catches up later.
	SpaceCreated func(ctx context.Context, tx pgx.Tx, spaceID, ownerID uuid.UUID) error
}

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	Pool   *pgxpool.Pool // runtime role; required
	Mailer mail.Mailer   // required: invitations are mailed
	Links  mail.Links    // required: the invitation link comes from here only
	Hooks  Hooks         // optional
	// InvitationTTL is how long an invitation can be accepted; default 7
	// days.
	InvitationTTL time.Duration
	Now           func() time.Time // default time.Now
	Rand          io.Reader        // default crypto/rand.Reader
	Logger        *slog.Logger     // default slog.Default()
	// Registerer receives mana_auth_hook_failures_total{hook} and
	// mana_auth_mail_failures_total (shared with manaauth when both are
	// registered on one registry); nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Service implements api.md's Organizations section: spaces, members,
// roles and invitations.
type Service struct {
	cfg          Config
	pool         *pgxpool.Pool
	now          func() time.Time
	rand         io.Reader
	logger       *slog.Logger
	outbox       *mail.Outbox
	hookFailures *prometheus.CounterVec
}

// New validates cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("spaces: Config.Pool is required")
	case cfg.Mailer == nil:
		return nil, errors.New("spaces: Config.Mailer is required")
	case cfg.Links.BaseURL == nil:
		return nil, errors.New("spaces: Config.Links.BaseURL is required")
	case cfg.InvitationTTL < 0:
		return nil, errors.New("spaces: InvitationTTL must not be negative")
	}
	if cfg.InvitationTTL == 0 {
		cfg.InvitationTTL = 7 * 24 * time.Hour
	}
	s := &Service{cfg: cfg, pool: cfg.Pool, now: cfg.Now, rand: cfg.Rand, logger: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	var err error
	if s.hookFailures, err = metrics.HookFailures(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("spaces: %w", err)
	}
	mailFailures, err := metrics.MailFailures(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("spaces: %w", err)
	}
	s.outbox = mail.NewOutbox(cfg.Mailer, s.logger, mailFailures.Inc)
	return s, nil
}

// Close waits for invitation mails still being sent.
func (s *Service) Close() { s.outbox.Close() }

func (s *Service) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return dbtx.Run(ctx, s.pool, s.logger, "spaces: "+what, fn)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func invalidField(field, msg string) error { return web.Invalid(map[string]string{field: msg}) }

// Role is a member's role in a space. Only the canonical, lower-case
// spellings are valid: " owner" or "Owner" is refused (VALIDATION_FAILED),
// never mended, so no other spelling is stored or compared anywhere (the
// database refuses them too).
type Role string

// The roles, from most to least powerful. Owners may do everything; admins
// rename the space, invite, and change or remove members who are not
// owners; members read the space and its members and may leave.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is one of the canonical roles.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleMember:
		return true
	}
	return false
}

// Type is the kind of a space.
type Type string

// The space types. A Personal space is made for every user at registration,
// only then, and goes only with its user; the others are made by users.
const (
	TypePersonal Type = "personal"
	TypeBrand    Type = "brand"
	TypeClub     Type = "club"
	TypeFamily   Type = "family"
	TypeTeam     Type = "team"
	TypePractice Type = "practice"
)

// PersonalName is the name of the Personal space made at registration.
const PersonalName = "Personal"

// Space is a space as its member sees it (api.md's guild): Role is the
// caller's role in it.
type Space struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Type      Type      `json:"type"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

// Member is one member of a space.
type Member struct {
	UserID   uuid.UUID `json:"userId"`
	Email    string    `json:"email"`
	Name     *string   `json:"name"`
	Role     Role      `json:"role"`
	JoinedAt time.Time `json:"joinedAt"`
}

// Invitation statuses: an open invitation is pending until it expires.
const (
	InvitationPending = "pending"
	InvitationExpired = "expired"
)

// Invitation is an open (neither accepted nor revoked) invitation into a
// space.
type Invitation struct {
	ID        uuid.UUID  `json:"id"`
	Email     string     `json:"email"`
	Role      Role       `json:"role"`
	Status    string     `json:"status"`    // InvitationPending or InvitationExpired
	InvitedBy *uuid.UUID `json:"invitedBy"` // null once the inviter's account is gone
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt time.Time  `json:"expiresAt"`
}

// Row locks taken on the space by the transactions that change it:
// membership changes serialise on the space row, so two owners demoting
// themselves at once cannot leave the space without an owner.
const (
	spaceNoLock     = ""
	spaceLockChange = " FOR NO KEY UPDATE OF s"
	spaceLockDelete = " FOR UPDATE OF s"
)

func spaceNotFound() error { return autherr.New(autherr.NotFound, "space not found") }

func spaceForbidden(msg string) error { return autherr.New(autherr.Forbidden, msg) }

func spaceConflict(reason, msg string) error {
	return &autherr.Error{Code: autherr.Conflict, Message: msg, Details: map[string]any{"reason": reason}}
}

// CreateSpace makes a space of type typ (not personal) owned by userID. The
// name is trimmed and must have 1 to 100 characters, none of them control
// characters, and must not look like a link (it is shown in invitation
// mails).
//
// Errors: VALIDATION_FAILED (name, type), NOT_FOUND (the account is gone),
// SERVICE_UNAVAILABLE.
func (s *Service) CreateSpace(ctx context.Context, userID uuid.UUID, name string, typ Type) (Space, error) {
	bad := map[string]string{}
	name, msg := spaceName(name)
	if msg != "" {
		bad["name"] = msg
	}
	if msg := spaceTypeProblem(typ); msg != "" {
		bad["type"] = msg
	}
	if len(bad) > 0 {
		return Space{}, web.Invalid(bad)
	}
	var sp Space
	err := s.inTx(ctx, "create space", func(tx pgx.Tx) error {
		var err error
		sp, err = s.createSpace(ctx, tx, userID, name, typ, s.now().UTC().Truncate(time.Microsecond))
		return err
	})
	return sp, err
}

// CreatePersonalTx makes the Personal space of a new user inside tx, the
// registration transaction: wire it as manaauth's Hooks.UserCreatedTx. Its
// error fails the registration.
//
// Errors: NOT_FOUND (no such user in tx), SERVICE_UNAVAILABLE.
func (s *Service) CreatePersonalTx(ctx context.Context, tx pgx.Tx, userID uuid.UUID) (Space, error) {
	return s.createSpace(ctx, tx, userID, PersonalName, TypePersonal, s.now().UTC().Truncate(time.Microsecond))
}

func (s *Service) createSpace(ctx context.Context, tx pgx.Tx, owner uuid.UUID, name string, typ Type, now time.Time) (Space, error) {
	sp := Space{Name: name, Type: typ, Role: RoleOwner, CreatedAt: now}
	err := tx.QueryRow(ctx, `INSERT INTO auth.spaces (name, type, created_at, created_by)
		SELECT $1, $2, $3, u.id FROM auth.users u WHERE u.id = $4 RETURNING id`, name, string(typ), now, owner).Scan(&sp.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Space{}, autherr.New(autherr.NotFound, "user not found")
	}
	if err != nil {
		return Space{}, fmt.Errorf("insert space: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO auth.space_members (space_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`,
		sp.ID, owner, string(RoleOwner), now); err != nil {
		return Space{}, fmt.Errorf("insert owner: %w", err)
	}
	return sp, s.spaceCreated(ctx, tx, sp.ID, owner)
}

// spaceCreated runs Hooks.SpaceCreated inside a savepoint: a failing hook
// loses only its own writes (see Hooks.SpaceCreated). When even the
// savepoint cannot be rolled back the transaction is lost and the creation
// fails.
func (s *Service) spaceCreated(ctx context.Context, tx pgx.Tx, spaceID, owner uuid.UUID) error {
	hook := s.cfg.Hooks.SpaceCreated
	if hook == nil {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("space-created hook: savepoint: %w", err)
	}
	if herr := hook(ctx, sp, spaceID, owner); herr != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return fmt.Errorf("space-created hook: %w", errors.Join(herr, rerr))
		}
		s.hookFailures.WithLabelValues("space_created").Inc()
		s.logger.Warn("spaces: space-created hook failed; its writes are rolled back, the space is created",
			"space_id", spaceID.String(), "user_id", owner.String(), "err", herr)
		return nil
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("space-created hook: release savepoint: %w", err)
	}
	return nil
}

// ListSpaces returns every space userID belongs to, the Personal space
// first, then by age.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) ListSpaces(ctx context.Context, userID uuid.UUID) ([]Space, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.id, s.name, s.type, s.created_at, m.role
		FROM auth.space_members m JOIN auth.spaces s ON s.id = m.space_id
		WHERE m.user_id = $1
		ORDER BY s.type = 'personal' DESC, s.created_at, s.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("spaces: list spaces: %w", err)
	}
	spaces, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Space, error) { return scanSpace(r) })
	if err != nil {
		return nil, fmt.Errorf("spaces: list spaces: %w", err)
	}
	return spaces, nil
}

// GetSpace returns a space userID belongs to.
//
// Errors: NOT_FOUND (no such space, or not a member), SERVICE_UNAVAILABLE.
func (s *Service) GetSpace(ctx context.Context, userID, spaceID uuid.UUID) (Space, error) {
	sp, err := s.membership(ctx, s.pool, spaceID, userID, spaceNoLock)
	if err != nil {
		return Space{}, fmt.Errorf("spaces: get space: %w", err)
	}
	return sp, nil
}

// RenameSpace renames a space; owners and admins may. The name follows
// CreateSpace's rules.
//
// Errors: VALIDATION_FAILED, NOT_FOUND, FORBIDDEN (a member),
// SERVICE_UNAVAILABLE.
func (s *Service) RenameSpace(ctx context.Context, userID, spaceID uuid.UUID, name string) (Space, error) {
	name, msg := spaceName(name)
	if msg != "" {
		return Space{}, invalidField("name", msg)
	}
	var sp Space
	err := s.inTx(ctx, "rename space", func(tx pgx.Tx) error {
		var err error
		if sp, err = s.membership(ctx, tx, spaceID, userID, spaceLockChange); err != nil {
			return err
		}
		if sp.Role == RoleMember {
			return spaceForbidden("only owners and admins may rename the space")
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.spaces SET name = $2 WHERE id = $1`, spaceID, name); err != nil {
			return err
		}
		sp.Name = name
		return nil
	})
	return sp, err
}

// DeleteSpace deletes a space with its memberships and invitations; only
// owners may, and never the Personal space (it goes with its user).
//
// Errors: NOT_FOUND, FORBIDDEN (not an owner, or the Personal space),
// SERVICE_UNAVAILABLE.
func (s *Service) DeleteSpace(ctx context.Context, userID, spaceID uuid.UUID) error {
	return s.inTx(ctx, "delete space", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceLockDelete)
		if err != nil {
			return err
		}
		if sp.Role != RoleOwner {
			return spaceForbidden("only owners may delete the space")
		}
		if sp.Type == TypePersonal {
			return spaceForbidden("the Personal space cannot be deleted; it goes with the account")
		}
		_, err = tx.Exec(ctx, `DELETE FROM auth.spaces WHERE id = $1`, spaceID)
		return err
	})
}

// Members lists the members of a space userID belongs to: owners first,
// then admins, then members, each by the time they joined.
//
// Errors: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *Service) Members(ctx context.Context, userID, spaceID uuid.UUID) ([]Member, error) {
	// One statement: the caller's own row is always among the answer, so
	// an empty answer means the caller is no member (or there is no such
	// space).
	rows, err := s.pool.Query(ctx, `SELECT m.user_id, u.email, u.name, m.role, m.joined_at
		FROM auth.space_members m JOIN auth.users u ON u.id = m.user_id
		WHERE m.space_id = $1
		  AND EXISTS (SELECT 1 FROM auth.space_members me WHERE me.space_id = $1 AND me.user_id = $2)
		ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, m.joined_at, m.user_id`, spaceID, userID)
	if err != nil {
		return nil, fmt.Errorf("spaces: members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("spaces: members: %w", err)
	}
	if len(members) == 0 {
		return nil, spaceNotFound()
	}
	return members, nil
}

// SetRole changes the role of member memberID. role must be canonical; it
// is checked before anything is read or stored. Owners may set any role;
// admins may change members and admins, but neither make nor change an
// owner; members may change nothing. The last owner cannot step down.
//
// Errors: VALIDATION_FAILED (role), NOT_FOUND (space, or no such member),
// FORBIDDEN, CONFLICT (details.reason "last_owner"), SERVICE_UNAVAILABLE.
func (s *Service) SetRole(ctx context.Context, userID, spaceID, memberID uuid.UUID, role Role) (Member, error) {
	if !role.Valid() {
		return Member{}, spaceInvalidRole()
	}
	var m Member
	err := s.inTx(ctx, "set role", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceLockChange)
		if err != nil {
			return err
		}
		if sp.Role == RoleMember {
			return spaceForbidden("only owners and admins may change roles")
		}
		current, err := spaceMemberRole(ctx, tx, spaceID, memberID)
		if err != nil {
			return err
		}
		if sp.Role == RoleAdmin && (current == RoleOwner || role == RoleOwner) {
			return spaceForbidden("an admin can neither make nor change an owner")
		}
		if current == RoleOwner && role != RoleOwner {
			if err := spaceLastOwnerCheck(ctx, tx, spaceID); err != nil {
				return err
			}
		}
		m, err = scanMember(tx.QueryRow(ctx, `UPDATE auth.space_members m SET role = $3
			FROM auth.users u WHERE u.id = m.user_id AND m.space_id = $1 AND m.user_id = $2
			RETURNING m.user_id, u.email, u.name, m.role, m.joined_at`, spaceID, memberID, string(role)))
		return err
	})
	return m, err
}

// RemoveMember removes memberID from the space. Everyone may leave (remove
// themselves) except the last owner; owners may remove anyone, admins
// anyone but owners, members nobody else.
//
// Errors: NOT_FOUND, FORBIDDEN, CONFLICT (details.reason "last_owner"),
// SERVICE_UNAVAILABLE.
func (s *Service) RemoveMember(ctx context.Context, userID, spaceID, memberID uuid.UUID) error {
	return s.inTx(ctx, "remove member", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceLockChange)
		if err != nil {
			return err
		}
		if memberID != userID && sp.Role == RoleMember {
			return spaceForbidden("only owners and admins may remove other members")
		}
		current, err := spaceMemberRole(ctx, tx, spaceID, memberID)
		if err != nil {
			return err
		}
		if memberID != userID && sp.Role == RoleAdmin && current == RoleOwner {
			return spaceForbidden("an admin cannot remove an owner")
		}
		if current == RoleOwner {
			if err := spaceLastOwnerCheck(ctx, tx, spaceID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM auth.space_members WHERE space_id = $1 AND user_id = $2`, spaceID, memberID)
		return err
	})
}

// Invite invites email into the space with role and mails the invitation
// link (<base>/accept-invitation?token=…, valid for Config.InvitationTTL,
// single use). Owners may invite with any role, admins as admin or member.
// An open invitation of the same address into the space is revoked by the
// new one (inviting again resends). The Personal space cannot be shared.
//
// Errors: VALIDATION_FAILED (email, role), NOT_FOUND, FORBIDDEN, CONFLICT
// (details.reason "already_member"), SERVICE_UNAVAILABLE.
func (s *Service) Invite(ctx context.Context, userID, spaceID uuid.UUID, email string, role Role) (Invitation, error) {
	bad := map[string]string{}
	canon, err := mail.Canonical("email", email)
	if err != nil {
		bad["email"] = "not a valid email address"
		if strings.TrimSpace(email) == "" {
			bad["email"] = "required"
		}
	}
	email = canon
	if !role.Valid() {
		bad["role"] = spaceRoleProblem
	}
	if len(bad) > 0 {
		return Invitation{}, web.Invalid(bad)
	}
	tok, hash, err := secret.New(s.rand)
	if err != nil {
		return Invitation{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	inv := Invitation{Email: email, Role: role, Status: InvitationPending, InvitedBy: &userID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.InvitationTTL)}
	var spaceName, inviter string
	err = s.inTx(ctx, "invite", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceLockChange)
		if err != nil {
			return err
		}
		switch {
		case sp.Type == TypePersonal:
			return spaceForbidden("the Personal space cannot be shared")
		case sp.Role == RoleMember:
			return spaceForbidden("only owners and admins may invite")
		case sp.Role == RoleAdmin && role == RoleOwner:
			return spaceForbidden("an admin cannot make an owner")
		}
		spaceName = sp.Name
		var member bool
		if err := tx.QueryRow(ctx, `SELECT coalesce(u.name, u.email),
				EXISTS (SELECT 1 FROM auth.space_members m JOIN auth.users mu ON mu.id = m.user_id
				        WHERE m.space_id = $2 AND mu.email = $3)
			FROM auth.users u WHERE u.id = $1`, userID, spaceID, email).Scan(&inviter, &member); err != nil {
			return err
		}
		if member {
			return spaceConflict("already_member", "this address already belongs to a member of the space")
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.space_invitations SET revoked_at = $3
			WHERE space_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL`, spaceID, email, now); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO auth.space_invitations (space_id, email, role, token_hash, invited_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			spaceID, email, string(role), hash, userID, now, inv.ExpiresAt).Scan(&inv.ID)
	})
	if err != nil {
		return Invitation{}, err
	}
	s.outbox.Post(ctx, "invitation", mail.Invitation(s.cfg.Links, email, spaceName, inviter, tok, s.cfg.InvitationTTL))
	return inv, nil
}

// ListInvitations lists the open invitations of a space, newest first,
// expired ones included (Status says which); owners and admins may.
//
// Errors: NOT_FOUND, FORBIDDEN (a member), SERVICE_UNAVAILABLE.
func (s *Service) ListInvitations(ctx context.Context, userID, spaceID uuid.UUID) ([]Invitation, error) {
	var out []Invitation
	err := s.inTx(ctx, "list invitations", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceNoLock)
		if err != nil {
			return err
		}
		if sp.Role == RoleMember {
			return spaceForbidden("only owners and admins may see the invitations")
		}
		rows, err := tx.Query(ctx, `SELECT id, email, role, invited_by, created_at, expires_at
			FROM auth.space_invitations
			WHERE space_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
			ORDER BY created_at DESC, id`, spaceID)
		if err != nil {
			return err
		}
		now := s.now()
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) {
			var inv Invitation
			var role string
			err := r.Scan(&inv.ID, &inv.Email, &role, &inv.InvitedBy, &inv.CreatedAt, &inv.ExpiresAt)
			inv.Role, inv.CreatedAt, inv.ExpiresAt = Role(role), inv.CreatedAt.UTC(), inv.ExpiresAt.UTC()
			inv.Status = InvitationPending
			if !inv.ExpiresAt.After(now) {
				inv.Status = InvitationExpired
			}
			return inv, err
		})
		return err
	})
	return out, err
}

// RevokeInvitation revokes an open invitation of the space; owners may
// revoke any, admins those that do not make an owner. Revoking a revoked
// invitation changes nothing and succeeds.
//
// Errors: NOT_FOUND (space, or no such invitation in it), FORBIDDEN,
// CONFLICT (details.reason "accepted"), SERVICE_UNAVAILABLE.
func (s *Service) RevokeInvitation(ctx context.Context, userID, spaceID, invitationID uuid.UUID) error {
	return s.inTx(ctx, "revoke invitation", func(tx pgx.Tx) error {
		sp, err := s.membership(ctx, tx, spaceID, userID, spaceLockChange)
		if err != nil {
			return err
		}
		if sp.Role == RoleMember {
			return spaceForbidden("only owners and admins may revoke invitations")
		}
		var role string
		var accepted, revoked bool
		err = tx.QueryRow(ctx, `SELECT role, accepted_at IS NOT NULL, revoked_at IS NOT NULL
			FROM auth.space_invitations WHERE id = $1 AND space_id = $2 FOR UPDATE`, invitationID, spaceID).Scan(&role, &accepted, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return autherr.New(autherr.NotFound, "invitation not found")
		}
		if err != nil {
			return err
		}
		switch {
		case sp.Role == RoleAdmin && Role(role) == RoleOwner:
			return spaceForbidden("an admin cannot revoke an invitation that makes an owner")
		case accepted:
			return spaceConflict("accepted", "the invitation was accepted already")
		case revoked:
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE auth.space_invitations SET revoked_at = $3
			WHERE id = $1 AND space_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL`, invitationID, spaceID, s.now().UTC())
		return err
	})
}

// AcceptInvitation spends an invitation token and makes userID a member of
// its space with the invitation's role. The account must be verified and
// its address must be the invitation's. The token is spent by one
// conditional UPDATE: of any number of parallel accepts one succeeds. An
// invitation whose inviter has meanwhile lost the right to issue it (left
// the space, was demoted) is treated as revoked.
//
// Errors: NOT_FOUND (unknown token), FORBIDDEN (unverified account or
// another address; details.reason "email_not_verified" or
// "email_mismatch"), CONFLICT (details.reason "accepted", "revoked",
// "expired" or "already_member"), SERVICE_UNAVAILABLE.
func (s *Service) AcceptInvitation(ctx context.Context, userID uuid.UUID, token string) (Space, error) {
	if !secret.Shaped(token) {
		return Space{}, invitationNotFound()
	}
	hash := secret.Hash(token)
	var sp Space
	err := s.inTx(ctx, "accept invitation", func(tx pgx.Tx) error {
		var accountEmail string
		var verified bool
		err := tx.QueryRow(ctx, `SELECT email, email_verified_at IS NOT NULL FROM auth.users WHERE id = $1`, userID).Scan(&accountEmail, &verified)
		if errors.Is(err, pgx.ErrNoRows) {
			return autherr.New(autherr.NotFound, "user not found")
		}
		if err != nil {
			return err
		}
		var invID uuid.UUID
		var invEmail string
		err = tx.QueryRow(ctx, `SELECT id, email FROM auth.space_invitations WHERE token_hash = $1`, hash).Scan(&invID, &invEmail)
		if errors.Is(err, pgx.ErrNoRows) {
			return invitationNotFound()
		}
		if err != nil {
			return err
		}
		if !verified {
			return &autherr.Error{Code: autherr.Forbidden, Message: "verify your email address before accepting an invitation",
				Details: map[string]any{"reason": "email_not_verified"}}
		}
		if accountEmail != invEmail {
			return &autherr.Error{Code: autherr.Forbidden, Message: "this invitation is for another email address",
				Details: map[string]any{"reason": "email_mismatch"}}
		}
		now := s.now().UTC()
		var spaceID uuid.UUID
		var role string
		err = tx.QueryRow(ctx, `UPDATE auth.space_invitations i SET accepted_at = $2, accepted_by = $3
			WHERE i.id = $1 AND i.email = $4 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2
			  AND EXISTS (SELECT 1 FROM auth.space_members m
			              WHERE m.space_id = i.space_id AND m.user_id = i.invited_by
			                AND (m.role = 'owner' OR (m.role = 'admin' AND i.role <> 'owner')))
			RETURNING i.space_id, i.role`, invID, now, userID, accountEmail).Scan(&spaceID, &role)
		if errors.Is(err, pgx.ErrNoRows) {
			return s.whyNotAccepted(ctx, tx, invID, now)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO auth.space_members (space_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (space_id, user_id) DO NOTHING`, spaceID, userID, role, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return spaceConflict("already_member", "you are a member of this space already")
		}
		sp, err = s.membership(ctx, tx, spaceID, userID, spaceNoLock)
		return err
	})
	return sp, err
}

// whyNotAccepted explains, after the conditional UPDATE found nothing to
// spend, what state the invitation is in (read after any concurrent accept
// committed, since the UPDATE waited for it).
func (s *Service) whyNotAccepted(ctx context.Context, tx pgx.Tx, invID uuid.UUID, now time.Time) error {
	var accepted, revoked, expired bool
	err := tx.QueryRow(ctx, `SELECT accepted_at IS NOT NULL, revoked_at IS NOT NULL, expires_at <= $2
		FROM auth.space_invitations WHERE id = $1`, invID, now).Scan(&accepted, &revoked, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return invitationNotFound() // its space was deleted meanwhile
	case err != nil:
		return err
	case accepted:
		return spaceConflict("accepted", "this invitation was accepted already")
	case revoked:
		return spaceConflict("revoked", "this invitation was revoked")
	case expired:
		return spaceConflict("expired", "this invitation has expired; ask for a new one")
	}
	return spaceConflict("revoked", "this invitation is no longer valid; ask for a new one")
}

func invitationNotFound() error { return autherr.New(autherr.NotFound, "invitation not found") }

// membership returns the space as its member userID sees it, taking the
// given row lock on the space; NOT_FOUND when there is no such space or
// userID is no member of it (the two look the same).
func (s *Service) membership(ctx context.Context, q querier, spaceID, userID uuid.UUID, lock string) (Space, error) {
	sp, err := scanSpace(q.QueryRow(ctx, `SELECT s.id, s.name, s.type, s.created_at, m.role
		FROM auth.space_members m JOIN auth.spaces s ON s.id = m.space_id
		WHERE m.space_id = $1 AND m.user_id = $2`+lock, spaceID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Space{}, spaceNotFound()
	}
	return sp, err
}

// memberRole returns the role of memberID in the space; NOT_FOUND when it
// is no member.
func spaceMemberRole(ctx context.Context, tx pgx.Tx, spaceID, memberID uuid.UUID) (Role, error) {
	var role string
	err := tx.QueryRow(ctx, `SELECT role FROM auth.space_members WHERE space_id = $1 AND user_id = $2`, spaceID, memberID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", autherr.New(autherr.NotFound, "member not found")
	}
	return Role(role), err
}

// spaceLastOwnerCheck refuses to take away the role of the space's only owner.
// The caller holds the space's row lock, so the count stays true until it
// commits.
func spaceLastOwnerCheck(ctx context.Context, tx pgx.Tx, spaceID uuid.UUID) error {
	var owners int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM auth.space_members WHERE space_id = $1 AND role = 'owner'`, spaceID).Scan(&owners); err != nil {
		return err
	}
	if owners <= 1 {
		return spaceConflict("last_owner", "the last owner cannot leave or step down; make another member an owner first")
	}
	return nil
}

func scanSpace(row pgx.Row) (Space, error) {
	var sp Space
	var typ, role string
	err := row.Scan(&sp.ID, &sp.Name, &typ, &sp.CreatedAt, &role)
	sp.Type, sp.Role, sp.CreatedAt = Type(typ), Role(role), sp.CreatedAt.UTC()
	return sp, err
}

func scanMember(row pgx.Row) (Member, error) {
	var m Member
	var role string
	err := row.Scan(&m.UserID, &m.Email, &m.Name, &role, &m.JoinedAt)
	m.Role, m.JoinedAt = Role(role), m.JoinedAt.UTC()
	return m, err
}

const spaceRoleProblem = "one of owner, admin, member"

func spaceInvalidRole() error { return invalidField("role", spaceRoleProblem) }

// spaceTypeProblem returns why typ cannot be given to CreateSpace, or "".
func spaceTypeProblem(typ Type) string {
	switch typ {
	case TypeBrand, TypeClub, TypeFamily, TypeTeam, TypePractice:
		return ""
	case TypePersonal:
		return "the Personal space is made at signup only"
	case "":
		return "required"
	}
	return "one of brand, club, family, team, practice"
}

// spaceNameLinkLike finds what mail clients turn into links: a scheme, "www.", an
// address, or a dotted host name such as example.com.
var spaceNameLinkLike = regexp.MustCompile(`(?i)://|\bwww\.|[^\s@]@[^\s@]+\.[^\s@]|[\p{L}\p{N}-]\.[a-z]{2,63}(?:$|[^\p{L}\p{N}])`)

// spaceName trims v and returns it, or a client-safe reason why it cannot
// name a space.
func spaceName(v string) (string, string) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", "required"
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > 100:
		return "", "at most 100 characters"
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || spaceNameBidi(r) {
			return "", "must not contain control characters or line breaks"
		}
	}
	if spaceNameLinkLike.MatchString(v) {
		return "", "must not look like a link or an email address"
	}
	return v, ""
}

// spaceNameBidi reports the explicit bidirectional formatting characters,
// which can make a name read differently from what it is.
func spaceNameBidi(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069')
}

// SpaceOwner names a space the user belongs to and its first owner (the
// user a space's singletons are attributed to).
type SpaceOwner struct {
	SpaceID uuid.UUID
	OwnerID uuid.UUID
}

// SpaceOwners lists every space userID belongs to with its earliest owner,
// for the bootstrap reconcile. A space without an owner (its last owner's
// account was deleted) is listed with userID as the owner.
//
// Errors: SERVICE_UNAVAILABLE.
func (s *Service) SpaceOwners(ctx context.Context, userID uuid.UUID) ([]SpaceOwner, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.space_id,
		       coalesce((SELECT o.user_id FROM auth.space_members o
		                 WHERE o.space_id = m.space_id AND o.role = 'owner'
		                 ORDER BY o.joined_at, o.user_id LIMIT 1), m.user_id)
		FROM auth.space_members m WHERE m.user_id = $1 ORDER BY m.space_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("spaces: space owners: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SpaceOwner, error) {
		var o SpaceOwner
		err := r.Scan(&o.SpaceID, &o.OwnerID)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("spaces: space owners: %w", err)
	}
	return out, nil
}

// CheckUserDeletable refuses, inside the transaction that deletes a user's
// account, to leave a shared space without an owner: nobody could delete
// it or make anyone an owner again. The caller hands it over (or removes
// the other members) first. Wire it as manaauth's Hooks.UserDeletingTx. It
// locks the space it reports, so the answer holds until tx ends.
//
// Errors: CONFLICT (details.reason "sole_owner", details.spaceId),
// SERVICE_UNAVAILABLE.
func (s *Service) CheckUserDeletable(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	var sole uuid.UUID
	err := tx.QueryRow(ctx, `SELECT s.id FROM auth.spaces s
		JOIN auth.space_members m ON m.space_id = s.id AND m.user_id = $1 AND m.role = 'owner'
		WHERE s.type <> 'personal'
		  AND NOT EXISTS (SELECT 1 FROM auth.space_members o WHERE o.space_id = s.id AND o.role = 'owner' AND o.user_id <> $1)
		  AND EXISTS (SELECT 1 FROM auth.space_members x WHERE x.space_id = s.id AND x.user_id <> $1)
		ORDER BY s.created_at, s.id LIMIT 1
		FOR UPDATE OF s`, userID).Scan(&sole)
	switch {
	case err == nil:
		e := autherr.New(autherr.Conflict, "you are the only owner of a space with other members; make another member an owner first")
		e.Details = map[string]any{"reason": "sole_owner", "spaceId": sole.String()}
		return e
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	default:
		return fmt.Errorf("spaces: sole owner check: %w", err)
	}
}

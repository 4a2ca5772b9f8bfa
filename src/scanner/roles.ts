/**
 * Who is who among the identities of auth.yaml: anonymous (rank 0), ordinary users (rank 1) and
 * privileged roles (rank 2: admin, support, staff, manager, moderator, …). Object checks pair
 * ordinary users; function-level checks act as the lowest rank first.
 */
import type { IdentityInfo, ScanContext } from './types.js'

/** Role names that mean "more than an ordinary user". */
const PRIVILEGED_ROLE =
  /^(admin|administrator|admins|root|superuser|super-?admin|staff|support|support-?agent|agent|helpdesk|manager|moderator|mod|operator|ops|owner|employee|backoffice|back-?office|auditor|compliance|internal|system|service)$/i

/** The privilege rank of an identity from its roles (see IdentityInfo.rank). */
export function rankOf(roles: readonly string[], anonymous: boolean): number {
  if (anonymous) return 0
  return roles.some((r) => PRIVILEGED_ROLE.test(r)) ? 2 : 1
}

/** Ordinary users: rank 1, in auth.yaml order (the object checks pair each with the next). */
export function userIdentities(ctx: ScanContext): IdentityInfo[] {
  return ctx.identities.filter((i) => i.rank === 1 && !i.throwaway)
}

/** Identities with credentials, lowest privilege first (auth.yaml order within a rank). */
export function byPrivilege(ctx: ScanContext): IdentityInfo[] {
  return ctx.identities
    .filter((i) => !i.anonymous && !i.throwaway)
    .map((i, n) => ({ i, n }))
    .sort((a, b) => a.i.rank - b.i.rank || a.n - b.n)
    .map((x) => x.i)
}

/** The lowest-privilege identity with credentials, if any. */
export function lowestUser(ctx: ScanContext): string | undefined {
  return byPrivilege(ctx)[0]?.name
}

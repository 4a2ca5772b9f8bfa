/**
 * What other parts of the gateway tell the detectors about a request through `ctx.state`.
 *
 * {@link OWNERSHIP_CHECKED}: set by object-ownership when it checked the ids of a request: `true`
 * when every id was found to be the principal's (binding, learned owner or lookup), `false` when
 * one was let through without that (`unknown: allow`, or the store failing with `failOpen`). The
 * enumeration detector never counts a request for objects known to be the caller's.
 */
export const OWNERSHIP_CHECKED = 'object-ownership:checked'

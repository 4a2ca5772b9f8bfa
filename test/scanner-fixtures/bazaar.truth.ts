/**
 * Ground truth of the "bazaar" fixture (test/scanner-fixtures/bazaar.ts): a shop API. A
 * form-encoded login (`POST /auth/login`, email + password) answering a session token nested in
 * the body (`/session/token`), sent as `X-Session`; a profile at `/v2/profile` answered as
 * `{profile: {...}}`; resources nested under the user (`/v2/users/{userId}/addresses/{addressId}`);
 * order numbers as ids (`ORD-1001`) in `{order: {...}}` answers whose objects have list-like
 * fields (`items`); a multi-step checkout (cart → coupon → checkout) that only a declared flow can
 * replay; an operation that never answers in time; a gift-card redemption a safe scan must never
 * call.
 *
 * Written before the scanner's checks were changed for it. The secure twin closes every flaw.
 */
import type { Flaw } from './truth.js'

export const BAZAAR_TRUTH: readonly Flaw[] = [
  {
    id: 'bazaar-user-enum',
    owasp: 'API2:2023',
    check: 'user-enumeration',
    method: 'POST',
    path: '/auth/login',
    flaw: '"no account with this email" vs "wrong password"',
    proof: 'the form-encoded login answers a known email with a wrong password differently from unknown ones',
    mode: 'safe',
  },
  {
    id: 'bazaar-login-rate',
    owasp: 'API4:2023',
    check: 'resource-limits',
    method: 'POST',
    path: '/auth/login',
    title: 'login',
    flaw: 'no limit on failed logins',
    proof: '25 failed form logins for one unknown email all answered 401 without 429 or Retry-After',
    mode: 'safe',
  },
  {
    id: 'bazaar-mass-assign-profile',
    owasp: 'API3:2023',
    check: 'mass-assignment',
    method: 'PATCH',
    path: '/v2/profile',
    flaw: 'PATCH /v2/profile copies readOnly loyaltyPoints and tier from the body',
    proof:
      'a changed loyaltyPoints (or tier) reads back from GET /v2/profile; the scanner writes the old value back',
    mode: 'safe',
  },
  {
    id: 'bazaar-bola-addresses',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/v2/users/{userId}/addresses',
    flaw: "any user lists another user's addresses (the user id from the path is not checked)",
    proof: "bob gets /v2/users/<alice's id>/addresses: the same address ids alice gets, none of bob's",
    mode: 'safe',
  },
  {
    id: 'bazaar-bola-address-item',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/v2/users/{userId}/addresses/{addressId}',
    flaw: "any user reads another user's address",
    proof:
      "bob reads an address the scanner created for alice (nested under alice's user id): alice's object",
    mode: 'safe',
  },
  {
    id: 'bazaar-bola-order',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/v2/orders/{orderNo}',
    flaw: 'no owner check when reading an order by its number',
    proof:
      "bob reads alice's order ORD-… (learned from alice's own list): alice's order, whose items list does not confuse the proof",
    mode: 'safe',
  },
  {
    id: 'bazaar-exposure-order-card',
    owasp: 'API3:2023',
    check: 'excessive-data-exposure',
    method: 'GET',
    path: '/v2/orders/{orderNo}',
    flaw: 'orders carry the full payment card number (paymentCard.cardNumber), undeclared',
    proof: 'the 200 answer has an undeclared sensitive property',
    mode: 'safe',
  },
  {
    id: 'bazaar-flow-coupon',
    owasp: 'API6:2023',
    check: 'business-flow-limits',
    method: 'POST',
    path: '/v2/checkout',
    flaw: 'the one-per-customer coupon WELCOME10 applies to every checkout, and checkouts are not limited',
    proof:
      'the flow declared in auth.yaml (cart item → coupon → checkout, then the order deleted) succeeds every time it is replayed',
    mode: 'safe',
  },
  {
    id: 'bazaar-ssrf-link-preview',
    owasp: 'API7:2023',
    check: 'ssrf',
    method: 'POST',
    path: '/v2/link-preview',
    flaw: 'the server fetches the given link, loopback included',
    proof: "the scanner's canary on 127.0.0.1 is requested",
    mode: 'safe',
  },
  {
    id: 'bazaar-sql-error',
    owasp: 'API8:2023',
    check: 'injection-signatures',
    method: 'GET',
    path: '/v2/products',
    flaw: 'a quote in ?q= gives a database error (string-built query)',
    proof: 'the answer carries an SQL error signature the benign value does not give',
    mode: 'safe',
  },
  {
    id: 'bazaar-old-version',
    owasp: 'API9:2023',
    check: 'shadow-endpoints',
    method: 'GET',
    path: '/v1/products',
    flaw: 'the retired /v1 product list is still served, without a session',
    proof: 'GET /v1/products answers 200 beside the documented /v2/products',
    mode: 'safe',
  },
]

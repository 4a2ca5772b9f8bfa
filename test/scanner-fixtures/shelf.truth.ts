/**
 * Ground truth of the "shelf" fixture (test/scanner-fixtures/shelf.ts): a book-sharing API in the
 * style of a small Flask service. OAuth2 password flow (`POST /oauth/token`, form-encoded) declared
 * as an `oauth2` security scheme, HS256 JWTs, versioned collections (`/books/v1`, `/users/v1`),
 * usernames as ids in paths, creates answered `201` with an empty body and a `Location` header, a
 * register operation, its own spec served at `/openapi.yaml`.
 *
 * Written before the scanner's checks were changed for it. The secure twin closes every flaw.
 */
import type { Flaw } from './truth.js'

export const SHELF_TRUTH: readonly Flaw[] = [
  {
    id: 'shelf-bola-user-read',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/users/v1/{username}',
    flaw: 'any logged-in user reads any user record (email, phone) by username',
    proof:
      "bob's token on /users/v1/alice answers alice's record (her username, email) as alice herself gets it",
    mode: 'safe',
  },
  {
    id: 'shelf-bola-book-read',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/books/v1/{book_id}',
    flaw: 'no owner check when reading a book (its secret_note included)',
    proof: "bob reads alice's book (created by the scanner, id from the Location header): same id and title",
    mode: 'safe',
  },
  {
    id: 'shelf-bola-book-write',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'PUT',
    path: '/books/v1/{book_id}',
    flaw: 'no owner check when replacing a book',
    proof: "bob's PUT with the book's own values on alice's scanner-created book answers 2xx",
    mode: 'safe',
  },
  {
    id: 'shelf-bola-book-delete',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'DELETE',
    path: '/books/v1/{book_id}',
    flaw: 'no owner check when deleting a book',
    proof: 'bob deletes a book the scanner created as alice; alice then gets 404',
    mode: 'safe',
  },
  {
    id: 'shelf-mass-assign-register',
    owasp: 'API3:2023',
    check: 'mass-assignment',
    method: 'POST',
    path: '/users/v1/register',
    flaw: 'registration copies "admin": true from the body onto the new account',
    proof:
      'a throwaway account registered with admin: true, logged in afresh (OAuth2 password flow), reads its own profile with admin: true; the account is deleted after (DELETE /users/v1/me)',
    mode: 'safe',
  },
  {
    id: 'shelf-exposure-me',
    owasp: 'API3:2023',
    check: 'excessive-data-exposure',
    method: 'GET',
    path: '/users/v1/me',
    flaw: 'the profile carries password_hash, which the schema does not declare',
    proof: 'the 200 answer has an undeclared sensitive property',
    mode: 'safe',
  },
  {
    id: 'shelf-user-enum',
    owasp: 'API2:2023',
    check: 'user-enumeration',
    method: 'POST',
    path: '/oauth/token',
    flaw: 'invalid_grant says "unknown user" for unknown names and "wrong password" for known ones',
    proof:
      'the OAuth2 password grant (form body, found from the security scheme) answers a known user with a wrong password differently from unknown users',
    mode: 'safe',
  },
  {
    id: 'shelf-login-rate',
    owasp: 'API4:2023',
    check: 'resource-limits',
    method: 'POST',
    path: '/oauth/token',
    title: 'login',
    flaw: 'no limit on failed password grants',
    proof: '25 failed grants for one throwaway or unknown user all answered (400) without 429 or Retry-After',
    mode: 'safe',
  },
  {
    id: 'shelf-jwt-weak-secret',
    owasp: 'API2:2023',
    check: 'jwt-weaknesses',
    method: 'GET',
    path: '*',
    title: 'weak HMAC secret',
    flaw: 'access tokens are HS256 signed with "sunshine", a common password',
    proof: 'the secret is found offline in the built-in wordlist and a re-signed token is accepted',
    mode: 'safe',
  },
  {
    id: 'shelf-redos-email',
    owasp: 'API4:2023',
    check: 'redos',
    method: 'POST',
    path: '/users/v1/register',
    flaw: 'the email is checked with /^([a-zA-Z0-9_.+-]+)*@…$/ (catastrophic backtracking)',
    proof:
      'a long "aaaa…!" email takes seconds (or hangs) where a short one takes milliseconds, and a short control answers fast again afterwards',
    mode: 'safe',
  },
  {
    id: 'shelf-cors-suffix',
    owasp: 'API8:2023',
    check: 'cors-misconfig',
    method: 'GET',
    path: '*',
    flaw: 'an Origin is trusted when it ends with the API host (origin.endsWith(host)), with credentials',
    proof:
      'Origin http://<evil>127.0.0.1:<port> (suffix) or http://<evil>.127.0.0.1:<port> is reflected with Access-Control-Allow-Credentials: true; a plainly foreign Origin is not',
    mode: 'safe',
  },
  {
    id: 'shelf-tech-errors',
    owasp: 'API8:2023',
    check: 'tech-disclosure',
    method: 'GET',
    path: '*',
    flaw: 'error answers (4xx/5xx) carry Server: Werkzeug/2.0.3 Python/3.9.7; 2xx answers do not',
    proof: 'a 4xx answer seen during the scan shows the versioned Server header',
    mode: 'safe',
  },
  {
    id: 'shelf-shadow-internal-debug',
    owasp: 'API9:2023',
    check: 'shadow-endpoints',
    method: 'GET',
    path: '/internal/debug',
    flaw: 'an undocumented debug route (two segments deep) dumps the configuration',
    proof: 'GET /internal/debug answers 200 with a body; the spec does not document it',
    mode: 'safe',
  },
  {
    id: 'shelf-chain-forged-admin',
    owasp: 'API5:2023',
    check: 'jwt-weaknesses',
    method: 'GET',
    path: '/admin/v1/stats',
    title: 'Forged',
    flaw: 'the admin statistics trust the token\'s "admin" claim, and tokens can be forged (weak secret)',
    proof:
      "with --chain: alice's claims with admin: true, re-signed with the cracked secret, get 200 where alice's own token gets 403",
    mode: 'opt-in',
  },
]

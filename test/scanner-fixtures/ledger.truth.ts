/**
 * Ground truth of the "ledger" fixture (test/scanner-fixtures/ledger.ts): a small banking API in
 * the style of a JSON:API service. Static API keys (`X-Api-Key`), UUID ids, every answer wrapped
 * (`{data: {...}}`, `{data: [...], meta}`), a profile at `/api/me`, roles `customer` and `support`
 * with NO marker on the privileged operations (no tags, no /admin path, no x-roles: only their
 * names and descriptions say "support staff"), a global rate limit answering 429 with Retry-After,
 * and a support identity listed FIRST in its auth.yaml (it owns no account).
 *
 * Written before the scanner's checks were changed for it. The secure twin closes every flaw.
 */
import type { Flaw } from './truth.js'

export const LEDGER_TRUTH: readonly Flaw[] = [
  {
    id: 'ledger-bfla-freeze',
    owasp: 'API5:2023',
    check: 'bfla',
    method: 'POST',
    path: '/api/accounts/{accountId}/freeze',
    flaw: 'freezing an account is a support-desk function, but any customer may call it',
    proof: "alice (customer) freezes an account the scanner created for her: 200 (support's function)",
    mode: 'safe',
  },
  {
    id: 'ledger-bfla-audit',
    owasp: 'API5:2023',
    check: 'bfla',
    method: 'GET',
    path: '/api/audit-events',
    flaw: "the compliance team's audit log answers any customer",
    proof: 'alice (customer) gets 200 with every event',
    mode: 'safe',
  },
  {
    id: 'ledger-bfla-role',
    owasp: 'API5:2023',
    check: 'bfla',
    method: 'PUT',
    path: '/api/users/{userId}/role',
    flaw: 'any customer may change roles (support staff only)',
    proof: "alice sets her own role to its current value ('customer'): 200, nothing changed",
    mode: 'safe',
  },
  {
    id: 'ledger-bola-account',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/api/accounts/{accountId}',
    flaw: 'no owner check when reading an account ({data: {...}} answer)',
    proof: "bob reads alice's account by its UUID: the same object as alice gets",
    mode: 'safe',
  },
  {
    id: 'ledger-bola-transactions',
    owasp: 'API1:2023',
    check: 'bola',
    method: 'GET',
    path: '/api/transactions',
    flaw: 'the accountId query parameter is not checked against the caller',
    proof:
      "bob lists the transactions of alice's account (?accountId=…): the same items alice gets, none of bob's",
    mode: 'safe',
  },
  {
    id: 'ledger-mass-assign-create',
    owasp: 'API3:2023',
    check: 'mass-assignment',
    method: 'POST',
    path: '/api/accounts',
    flaw: 'opening an account copies the readOnly "balance" from the body',
    proof: 'an account created with balance 1000… reads back with that balance; the scanner deletes it',
    mode: 'safe',
  },
  {
    id: 'ledger-exposure-account',
    owasp: 'API3:2023',
    check: 'excessive-data-exposure',
    method: 'GET',
    path: '/api/accounts/{accountId}',
    flaw: 'account answers carry undeclared riskScore and kycDocumentNumber',
    proof: 'the 200 answer (inside data) has properties the schema does not declare',
    mode: 'safe',
  },
  {
    id: 'ledger-key-in-url',
    owasp: 'API2:2023',
    check: 'token-in-url',
    method: 'GET',
    path: '*',
    flaw: 'the API key is also accepted as ?api_key=',
    proof: 'the key moved from X-Api-Key into the query string is accepted like the header',
    mode: 'safe',
  },
  {
    id: 'ledger-cors-null',
    owasp: 'API8:2023',
    check: 'cors-misconfig',
    method: 'GET',
    path: '*',
    flaw: 'Origin: null is allowed with credentials',
    proof: 'Access-Control-Allow-Origin: null with Access-Control-Allow-Credentials: true',
    mode: 'safe',
  },
  {
    id: 'ledger-stack-trace',
    owasp: 'API8:2023',
    check: 'verbose-errors',
    method: 'GET',
    path: '/api/accounts/{accountId}',
    flaw: 'an id that is not a UUID gives a 500 with a Node.js stack trace',
    proof: 'an ill-typed path parameter answers 500 with "at … (file:…:line:col)" lines',
    mode: 'safe',
  },
  {
    id: 'ledger-shadow-internal',
    owasp: 'API9:2023',
    check: 'shadow-endpoints',
    method: 'GET',
    path: '/api/internal/debug',
    flaw: 'an undocumented debug route under the API prefix, two segments deep',
    proof: 'GET /api/internal/debug answers 200; the spec does not document it',
    mode: 'safe',
  },
  {
    id: 'ledger-bfla-reset',
    owasp: 'API5:2023',
    check: 'bfla',
    method: 'POST',
    path: '/api/maintenance/reset',
    flaw: 'any API key may reset the sandbox, which wipes every account and transaction',
    proof:
      'only with --unsafe: a customer key gets 200. A safe scan must never call it (the state diff shows any call)',
    mode: 'unsafe',
  },
]

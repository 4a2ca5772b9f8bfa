/**
 * API2: the login answers differently for an unknown user and for a known user with a wrong
 * password. Known user names come from the login example in the spec and the identities' names;
 * each gets one wrong-password attempt (no lockout risk), compared with two unknown users.
 */
import type { Check, ScanResponse } from '../types.js'
import { SkipCheck } from '../types.js'
import { finding, findLogin, randomName } from './probe.js'

const WRONG_PASSWORD = 'Pcl-wrong-password-1!'

export const userEnumeration: Check = {
  id: 'user-enumeration',
  title: 'User enumeration through the login answer',
  owasp: 'API2:2023',
  severity: 'medium',
  description:
    'Logs in with a wrong password for a user that exists and for users that do not, and compares the ' +
    'answers (status, message, body).',
  why:
    'Different answers tell an attacker which user names or e-mail addresses have accounts, which makes ' +
    'credential stuffing and targeted phishing far cheaper.',
  fix:
    'Answer every failed login the same way (same status, same body, similar timing), whether the user ' +
    'exists or not; hash a dummy password when the user is unknown.',
  fixExample:
    'const user = await users.find(name)\n' +
    'const ok = await verifyPassword(user?.hash ?? DUMMY_HASH, password)\n' +
    "if (!user || !ok) return res.status(401).json({ title: 'Invalid credentials' })",
  async run(ctx) {
    const login = findLogin(ctx)
    if (!login)
      throw new SkipCheck(
        'no login operation (auth.yaml login, OAuth2 token URL, or a POST …/login with a user and a password field)',
      )
    const send = (user: string) => ctx.send(undefined, login.attempt(user, WRONG_PASSWORD))
    const known = login.login.knownUsers ?? []
    const emailish = /mail/i.test(login.userField) || (login.exampleUser ?? known[0])?.includes('@') === true
    const domain = (known.find((u) => u.includes('@')) ?? '').split('@')[1] ?? 'example.invalid'
    const unknownName = () => (emailish ? `${randomName()}@${domain}` : randomName())
    const u1 = unknownName()
    const u2 = unknownName()
    const unknown1 = await send(u1)
    const unknown2 = await send(u2)
    if (unknown1.status === 0 || unknown2.status === 0 || unknown1.status === 429) return []
    // When two unknown users already get different answers, only status and message fields count.
    const stable = signature(unknown1, u1, true) === signature(unknown2, u2, true)
    const candidates = new Set<string>()
    for (const u of known) candidates.add(u)
    if (login.exampleUser) candidates.add(login.exampleUser)
    for (const i of ctx.identities)
      if (!i.anonymous && !i.throwaway)
        candidates.add(emailish && !i.name.includes('@') ? `${i.name}@${domain}` : i.name)
    candidates.add(emailish ? `admin@${domain}` : 'admin')
    // One wrong password per existing account at most: no lockout risk.
    for (const user of [...candidates].slice(0, 5)) {
      const answer = await send(user)
      if (answer.status === 429 || answer.status === 0) break
      const differs = signature(answer, user, stable) !== signature(unknown1, u1, stable)
      if (!differs) continue
      // Confirm: the unknown answer is what any unknown user gets (not noise).
      const unknown3 = await send(unknownName())
      if (unknown3.status !== unknown1.status) continue
      const how =
        answer.status !== unknown1.status
          ? `status ${answer.status} vs ${unknown1.status}`
          : `same status ${answer.status}, different body`
      return [
        finding(this, {
          operation: login.ref,
          summary: `A wrong password for the existing user "${user}" and a login as an unknown user get different answers (${how}) from ${login.login.method} ${login.login.path}${login.login.source === 'security-scheme' ? ' (the OAuth2 token URL of the spec)' : ''}, so anyone can test which accounts exist.`,
          evidence: [
            { note: `existing user "${user}", wrong password`, exchanges: [answer.exchange] },
            { note: 'unknown user, wrong password', exchanges: [unknown1.exchange] },
          ],
        }),
      ]
    }
    return []
  },
}

/** What distinguishes an answer: status and the body with the user name taken out (or only message fields). */
function signature(res: ScanResponse, user: string, wholeBody: boolean): string {
  const text = res.text.split(user).join('<user>').split(encodeURIComponent(user)).join('<user>')
  if (wholeBody) return `${res.status}\n${stripVolatile(text)}`
  const j = res.json
  if (j !== null && typeof j === 'object' && !Array.isArray(j)) {
    const o = j as Record<string, unknown>
    const fields = ['error', 'message', 'title', 'detail', 'code', 'reason', 'error_description']
      .map(
        (k) =>
          `${k}=${JSON.stringify(o[k] ?? null)
            .split(user)
            .join('<user>')}`,
      )
      .join('&')
    return `${res.status}\n${fields}`
  }
  return `${res.status}`
}

/** Request ids, timestamps and UUIDs differ between any two answers. */
function stripVolatile(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z?/g, '<time>')
    .replace(
      /"(instance|requestId|request_id|traceId|trace_id|timestamp|time)"\s*:\s*("[^"]*"|\d+)/g,
      '"$1":<v>',
    )
}

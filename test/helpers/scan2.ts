/** Shared by SCAN2's scanner tests: its check ids and the demo's auth.yaml. */
import { demoCredentials } from '../../examples/demo/api.js'

/** The checks SCAN2 added (API2, API4, API7, API8, API9, injection). */
export const SCAN2_CHECKS = [
  'unauthenticated-access',
  'jwt-weaknesses',
  'token-in-url',
  'user-enumeration',
  'ssrf',
  'cors-misconfig',
  'security-headers',
  'verbose-errors',
  'tech-disclosure',
  'http-methods',
  'plain-http',
  'shadow-endpoints',
  'deprecated-operations',
  'injection-signatures',
  'resource-limits',
]

/** auth.yaml for the demo API: alice and bob (users) and admin, logging in with the seed passwords. */
export function demoAuthYaml(): string {
  const id = (name: keyof typeof demoCredentials, role: string) => `  ${name}:
    roles: [${role}]
    login:
      path: /api/v2/login
      json: { username: ${name}, password: ${demoCredentials[name]} }
      tokenPointer: /token
`
  return `identities:\n${id('alice', 'user')}${id('bob', 'user')}${id('admin', 'admin')}`
}

/**
 * The endpoint URL rule shared by the policies that call an authorization server per token
 * (oauth2-introspection, userinfo-auth): https, or plain http to a loopback host only.
 */

export function isLoopbackHost(hostname: string): boolean {
  // URL normalizes IPv4 (127.1 → 127.0.0.1) and IPv6 ([0:0::1] → [::1]) host names.
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/**
 * Validates the endpoint URL at config time: https, or http to a loopback host only; no
 * credentials in the URL. Messages never repeat the URL (it may come from a secret).
 */
export function parseEndpoint(raw: string | undefined, where: string): URL {
  if (raw === undefined || raw === '') throw new Error(`${where}: \`endpoint\` is required`)
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new Error(`${where}: \`endpoint\` is not an absolute URL`)
  }
  if (u.username !== '' || u.password !== '') {
    throw new Error(`${where}: \`endpoint\` must not carry credentials`)
  }
  if (u.protocol === 'https:') return u
  if (u.protocol === 'http:') {
    if (isLoopbackHost(u.hostname)) return u
    throw new Error(
      `${where}: \`endpoint\` must use https; plain http is allowed only to a loopback host (localhost, 127.0.0.0/8, [::1])`,
    )
  }
  throw new Error(`${where}: \`endpoint\` must be an https URL`)
}

/** Removes every secret (a password, a URL holding one) from a message before it is printed. */
export function scrub(message: string, secrets: readonly string[]): string {
  let out = message
  for (const s of secrets) out = out.split(s).join('(secret)')
  return out
}

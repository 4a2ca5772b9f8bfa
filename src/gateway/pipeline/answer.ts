/**
 * A request hook that answers the request itself — a CORS preflight, which no upstream should see —
 * throws a PolicyAnswer: the gateway writes it (through the response phase, like its own problem
 * responses) without counting it as an error or a denial, and forwards nothing.
 */
export class PolicyAnswer extends Error {
  readonly status: number
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>

  constructor(status: number, headers: Record<string, string>) {
    super('answered by a policy')
    this.name = 'PolicyAnswer'
    this.status = status
    this.headers = headers
  }
}

/**
 * The shape of a scanner fixture's ground truth: every deliberate flaw of a vulnerable fixture
 * API, the OWASP item, the scanner check expected to prove it and how it is provable over HTTP.
 * Written before the checks that find them (see docs/scanner-fixture.md).
 */

export type OwaspItem =
  | 'API1:2023'
  | 'API2:2023'
  | 'API3:2023'
  | 'API4:2023'
  | 'API5:2023'
  | 'API6:2023'
  | 'API7:2023'
  | 'API8:2023'
  | 'API9:2023'

export interface Flaw {
  /** Stable id, `<fixture>-<what>`. */
  id: string
  owasp: OwaspItem
  /** The scanner check id expected to report it. */
  check: string
  /** The operation: method and path template as in the spec (a concrete path when undocumented; `*` for any). */
  method: string
  path: string
  /** When the check reports several kinds of finding on one operation: a word of the finding's title. */
  title?: string
  /** What is wrong in the vulnerable twin. */
  flaw: string
  /** How it is proven over HTTP (what a finding must show). */
  proof: string
  /**
   * Which scan can prove it: `safe` (the default scan), `opt-in` (a flag the user turns on, e.g.
   * `--chain`), `unsafe` (only with `--unsafe`: a safe scan must NOT touch it).
   */
  mode: 'safe' | 'opt-in' | 'unsafe'
}

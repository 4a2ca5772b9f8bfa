/**
 * What every SARIF 2.1.0 report of Portcullis shares (scan, lint, secrets): the schema URI, the
 * mapping of severities to SARIF levels and to GitHub code scanning's `security-severity`, and
 * artifact URIs from file paths or URLs.
 */
import { isAbsolute } from 'node:path'
import { pathToFileURL } from 'node:url'

export const SARIF_SCHEMA_URI =
  'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json'

export type SarifSeverity = 'critical' | 'high' | 'medium' | 'low' | 'info'

export const SARIF_LEVEL: Record<SarifSeverity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  info: 'note',
}

/** GitHub code scanning reads `security-severity` (0–10) to rank security results. */
export const SECURITY_SEVERITY: Record<SarifSeverity, string> = {
  critical: '9.5',
  high: '8.0',
  medium: '5.5',
  low: '3.0',
  info: '0.0',
}

/** A spec given as a URL stays as it is; a file path becomes a relative reference or a file: URL. */
export function toUriReference(spec: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(spec)) {
    try {
      return new URL(spec).href
    } catch {
      return encodeURI(spec)
    }
  }
  if (isAbsolute(spec)) return pathToFileURL(spec).href
  return spec
    .replaceAll('\\', '/')
    .split('/')
    .map((seg) => encodeURIComponent(seg))
    .join('/')
}

/** Private keys (RSA, EC, DSA, OpenSSH, PGP, PKCS#8, PuTTY), JWTs, WireGuard, Portcullis keys. */
import type { Detector } from '../types.js'
import { END, END64 } from './helpers.js'

/** A PEM block with `label`: base64 lines (real newlines or JSON `\n` escapes), optional headers. */
function pem(id: string, name: string, label: string, description: string): Detector {
  const line = '(?:\\r?\\n|(?:\\\\r)?\\\\n|[ \\t])'
  return {
    id,
    name,
    provider: 'Private key',
    keywords: [`BEGIN ${label}`],
    pattern: `(-----BEGIN ${label}-----${line}*(?:[A-Za-z0-9+/=]|${line}|[A-Za-z-]+:[^\\n\\\\]*)+?-----END ${label}-----)`,
    before: 5,
    after: 16384,
    boundary: false,
    validator: 'pem',
    severity: 'critical',
    specificity: 2,
    description,
    docs: 'https://www.rfc-editor.org/rfc/rfc7468',
  }
}

export const KEYS: Detector[] = [
  pem(
    'private-key-rsa',
    'RSA private key',
    'RSA PRIVATE KEY',
    'PKCS#1 RSA key (PEM; the body is decoded and must be DER).',
  ),
  pem('private-key-ec', 'EC private key', 'EC PRIVATE KEY', 'SEC1 elliptic-curve key (PEM).'),
  pem('private-key-dsa', 'DSA private key', 'DSA PRIVATE KEY', 'DSA key (PEM).'),
  pem('private-key-pkcs8', 'PKCS#8 private key', 'PRIVATE KEY', 'PKCS#8 key of any algorithm (PEM).'),
  pem(
    'private-key-pkcs8-encrypted',
    'Encrypted PKCS#8 private key',
    'ENCRYPTED PRIVATE KEY',
    'Encrypted, but offline guessing of its passphrase is unlimited.',
  ),
  pem(
    'private-key-openssh',
    'OpenSSH private key',
    'OPENSSH PRIVATE KEY',
    'openssh-key-v1 (PEM armour; checked).',
  ),
  pem(
    'private-key-pgp',
    'PGP private key block',
    'PGP PRIVATE KEY BLOCK',
    'OpenPGP secret key (ASCII armour).',
  ),
  {
    id: 'private-key-putty',
    name: 'PuTTY private key',
    provider: 'Private key',
    keywords: ['PuTTY-User-Key-File-'],
    pattern:
      '(PuTTY-User-Key-File-[23]: [a-z0-9-]+\\r?\\nEncryption: [a-z0-9-]+\\r?\\nComment: [^\\n]*\\r?\\nPublic-Lines: [0-9]+\\r?\\n(?:[A-Za-z0-9+/=]+\\r?\\n)+?Private-Lines: [0-9]+\\r?\\n(?:[A-Za-z0-9+/=]+\\r?\\n?)+)',
    after: 8192,
    severity: 'critical',
    docs: 'https://the.earth.li/~sgtatham/putty/0.78/htmldoc/AppendixC.html',
  },
  {
    id: 'jwt',
    name: 'JSON Web Token',
    provider: 'Generic',
    keywords: ['eyJ'],
    pattern: `(eyJ[A-Za-z0-9_-]{10,500}\\.eyJ[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{16,600})${END}`,
    after: 4110,
    validator: 'jwt',
    severity: 'medium',
    specificity: 1,
    description:
      'A signed JWT (header and payload decoded and checked). Often short-lived, but a bearer credential until it expires.',
    docs: 'https://www.rfc-editor.org/rfc/rfc7519',
  },
  {
    id: 'wireguard-private-key',
    name: 'WireGuard private key',
    provider: 'WireGuard',
    keywords: ['PrivateKey'],
    pattern: `PrivateKey[ \\t]*=[ \\t]*([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)${END64}`,
    boundary: false,
    after: 70,
    severity: 'critical',
    docs: 'https://www.wireguard.com/quickstart/',
  },
  {
    id: 'portcullis-api-key',
    name: 'Portcullis API key',
    provider: 'Portcullis',
    keywords: ['pcl_'],
    pattern: `(pcl_[0-9A-Za-z]{36})${END}`,
    after: 42,
    validator: 'portcullis-crc32',
    severity: 'critical',
    description:
      'pcl_ + 30 random base62 characters + a CRC32 checksum (checked); see docs/policies/api-key-auth.md.',
    docs: 'docs/policies/api-key-auth.md',
  },
]

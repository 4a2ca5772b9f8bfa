/**
 * Just enough TLS to see that a CONNECT tunnel starts with a ClientHello, and which server name
 * (SNI) it asks for: the first record must be a handshake record holding a whole ClientHello.
 * Hostile input is bounded by the record size (at most 16 KiB plus a small allowance).
 */

/** Bytes read from the client before deciding: one TLS record at most. */
export const MAX_HELLO_BYTES = 5 + 16_384 + 2048

export type HelloResult =
  | { kind: 'incomplete' }
  | { kind: 'not-tls' }
  | { kind: 'hello'; sni: string | undefined }

/**
 * Parses the start of a tunnel. `incomplete` while more bytes are needed; `not-tls` when it is not
 * a ClientHello in one record (or is malformed); else the SNI host name (lower-case) if sent.
 *
 * @example
 * parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')) // { kind: 'not-tls' }
 */
export function parseClientHello(buf: Buffer): HelloResult {
  if (buf.length < 5) {
    if (buf.length >= 1 && buf[0] !== 0x16) return { kind: 'not-tls' }
    if (buf.length >= 2 && buf[1] !== 0x03) return { kind: 'not-tls' }
    return { kind: 'incomplete' }
  }
  if (buf[0] !== 0x16 || buf[1] !== 0x03) return { kind: 'not-tls' }
  const recordLen = buf.readUInt16BE(3)
  if (recordLen < 4 || recordLen > MAX_HELLO_BYTES - 5) return { kind: 'not-tls' }
  if (buf.length < 5 + recordLen) return { kind: 'incomplete' }
  const rec = buf.subarray(5, 5 + recordLen)
  if (rec[0] !== 0x01) return { kind: 'not-tls' } // handshake type: client_hello
  const helloLen = ((rec[1] as number) << 16) | ((rec[2] as number) << 8) | (rec[3] as number)
  // A ClientHello spread over several records is legal but rare: refused (the SNI is unseen).
  if (helloLen + 4 > rec.length) return { kind: 'not-tls' }
  const h = rec.subarray(4, 4 + helloLen)
  let i = 2 + 32 // client_version, random
  const skip = (lenBytes: 1 | 2): boolean => {
    if (i + lenBytes > h.length) return false
    const n = lenBytes === 1 ? (h[i] as number) : h.readUInt16BE(i)
    i += lenBytes + n
    return i <= h.length
  }
  if (!skip(1) || !skip(2) || !skip(1)) return { kind: 'not-tls' } // session id, suites, compression
  if (i === h.length) return { kind: 'hello', sni: undefined } // no extensions
  if (i + 2 > h.length) return { kind: 'not-tls' }
  const extEnd = i + 2 + h.readUInt16BE(i)
  if (extEnd > h.length) return { kind: 'not-tls' }
  i += 2
  while (i + 4 <= extEnd) {
    const type = h.readUInt16BE(i)
    const len = h.readUInt16BE(i + 2)
    const start = i + 4
    if (start + len > extEnd) return { kind: 'not-tls' }
    if (type === 0) {
      // server_name: list length (2), then entries of type (1), length (2), name
      if (len < 5) return { kind: 'not-tls' }
      const nameType = h[start + 2]
      const nameLen = h.readUInt16BE(start + 3)
      if (nameType !== 0 || start + 5 + nameLen > start + len) return { kind: 'not-tls' }
      const name = h.subarray(start + 5, start + 5 + nameLen).toString('latin1')
      if (!/^[A-Za-z0-9.-]{1,253}$/.test(name)) return { kind: 'not-tls' }
      return { kind: 'hello', sni: name.toLowerCase() }
    }
    i = start + len
  }
  return { kind: 'hello', sni: undefined }
}

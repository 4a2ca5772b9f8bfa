/** XML text escaping for the JUnit report. */

// Characters XML 1.0 does not allow at all (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone surrogates).
const INVALID_XML =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Escapes text for an XML element or a double- or single-quoted attribute; drops characters XML cannot hold. */
export function xmlEscape(s: string): string {
  return s
    .replace(INVALID_XML, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

/** For attributes: also keeps newlines and tabs (attribute normalisation would turn them into spaces). */
export function xmlAttr(s: string): string {
  return xmlEscape(s).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;')
}

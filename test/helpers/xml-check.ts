/**
 * A small, strict XML 1.0 well-formedness check (no DTDs, no processing instructions but the
 * declaration, no CDATA): elements nest and close, attributes are quoted and unique, entity and
 * character references are valid, no raw `<` or `&` in text, only characters XML allows.
 * node_modules has no XML parser; the tests also parse with Chromium's DOMParser when it is there.
 * Returns the element tree, or throws with the offset of the first problem.
 */
export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const NAME = /[A-Za-z_:][A-Za-z0-9_.:-]*/y
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }
const BAD_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/

export function parseXml(xml: string): XmlElement {
  let i = 0
  const fail = (msg: string, at = i): never => {
    throw new Error(`XML not well-formed at ${at}: ${msg} (near ${JSON.stringify(xml.slice(at, at + 40))})`)
  }
  for (let k = 0; k < xml.length; k++) {
    const c = xml.charCodeAt(k)
    if (BAD_CHAR.test(xml[k] as string)) fail('character not allowed in XML', k)
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = xml.charCodeAt(k + 1)
      if (!(n >= 0xdc00 && n <= 0xdfff)) fail('lone surrogate', k)
      k++
    } else if (c >= 0xdc00 && c <= 0xdfff) fail('lone surrogate', k)
  }
  const ws = () => {
    while (i < xml.length && /\s/.test(xml[i] as string)) i++
  }
  const name = (): string => {
    NAME.lastIndex = i
    const m = NAME.exec(xml)
    if (!m) return fail('expected a name')
    i += m[0].length
    return m[0]
  }
  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;]*);|&/g, (all, ref: string | undefined) => {
      if (ref === undefined) fail('bare &', at)
      if (ref && ENTITIES[ref] !== undefined) return ENTITIES[ref] as string
      const num = ref?.match(/^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/)
      if (!num) fail(`unknown entity ${all}`, at)
      const cp = num?.[1] ? Number.parseInt(num[1], 16) : Number(num?.[2])
      const ok =
        cp === 9 ||
        cp === 10 ||
        cp === 13 ||
        (cp >= 0x20 && cp <= 0xd7ff) ||
        (cp >= 0xe000 && cp <= 0xfffd) ||
        (cp >= 0x10000 && cp <= 0x10ffff)
      if (!ok) fail(`character reference not allowed: ${all}`, at)
      return String.fromCodePoint(cp)
    })
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>')
    if (end < 0) fail('unterminated declaration')
    i = end + 2
  }
  ws()
  const element = (): XmlElement => {
    if (xml[i] !== '<') fail('expected <')
    i++
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' }
    for (;;) {
      const before = i
      ws()
      if (xml.startsWith('/>', i)) {
        i += 2
        return el
      }
      if (xml[i] === '>') {
        i++
        break
      }
      if (i === before) fail('expected whitespace before an attribute')
      const an = name()
      if (an in el.attrs) fail(`duplicate attribute ${an}`)
      ws()
      if (xml[i] !== '=') fail('expected =')
      i++
      ws()
      const q = xml[i]
      if (q !== '"' && q !== "'") fail('attribute value not quoted')
      const end = xml.indexOf(q as string, i + 1)
      if (end < 0) fail('unterminated attribute')
      const raw = xml.slice(i + 1, end)
      if (raw.includes('<')) fail('< in an attribute value')
      el.attrs[an] = decode(raw, i)
      i = end + 1
    }
    for (;;) {
      const lt = xml.indexOf('<', i)
      if (lt < 0) fail(`unclosed element ${el.name}`)
      const raw = xml.slice(i, lt)
      if (raw.includes(']]>')) fail(']]> in text')
      el.text += decode(raw, i)
      i = lt
      if (xml.startsWith('</', i)) {
        i += 2
        const closing = name()
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`)
        ws()
        if (xml[i] !== '>') fail('expected >')
        i++
        return el
      }
      if (xml.startsWith('<!--', i)) {
        const end = xml.indexOf('-->', i)
        if (end < 0) fail('unterminated comment')
        i = end + 3
        continue
      }
      if (xml.startsWith('<!', i) || xml.startsWith('<?', i)) fail('markup not supported by this check')
      el.children.push(element())
    }
  }
  const root = element()
  ws()
  if (i !== xml.length) fail('content after the root element')
  return root
}

import { Type } from '@sinclair/typebox'

export const LeakGuardConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal('block'), Type.Literal('mask'), Type.Literal('monitor')], {
      default: 'block',
      description:
        'What to do with a response that carries a credential or private key: `block` answers 502 GW_ERR_RESPONSE_LEAK instead; `mask` replaces each value in place (`ghp_***`, `***`) and sends the rest; `monitor` sends it unchanged. All three log, count and audit (`leak.detected`).',
    }),
    maxScanBytes: Type.Integer({
      minimum: 1024,
      maximum: 64 * 1024 * 1024,
      default: 4 * 1024 * 1024,
      description:
        'Largest response body scanned, in bytes (the route buffers responses up to `responseBodyLimit`). A larger body gets `onOversize`.',
    }),
    onOversize: Type.Union([Type.Literal('block'), Type.Literal('pass')], {
      default: 'block',
      description: 'A body over `maxScanBytes`: `block` (502, fail closed) or `pass` unscanned (logged).',
    }),
    onEncoded: Type.Union([Type.Literal('block'), Type.Literal('pass')], {
      default: 'block',
      description:
        'A body with a `content-encoding` (the policy asks upstreams for identity, but one may compress anyway): `block` (502) or `pass` unscanned (logged).',
    }),
    contentTypes: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
      default: [
        'application/json',
        '+json',
        'text/',
        'application/xml',
        '+xml',
        'application/x-www-form-urlencoded',
        'application/javascript',
        'application/x-yaml',
        'application/yaml',
      ],
      maxItems: 100,
      description:
        'Media types scanned (a prefix such as `text/`, a suffix such as `+json`, or a full type); a body without a Content-Type is scanned too. Others (images, archives) pass.',
    }),
    generic: Type.Boolean({
      default: false,
      description:
        'Also run the generic detectors (password / secret / token assignments, bearer tokens): off by default, because API responses legitimately carry fields with such names.',
    }),
    exclude: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
      default: [],
      maxItems: 500,
      description:
        'Detector ids not to run (see docs/secrets.md), e.g. `jwt` for an API that hands out tokens.',
    }),
  },
  { additionalProperties: false },
)

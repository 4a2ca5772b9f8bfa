import { type Static, Type } from '@sinclair/typebox'

const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

export const CorsConfig = Type.Object(
  {
    origins: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
      default: [],
      maxItems: 1000,
      description:
        'Allowed origins, exactly as browsers send them (`https://app.example.com`, `http://localhost:3000`), or `*` for any origin (never with credentials). `null` is refused: sandboxed frames and file: pages send it.',
    }),
    originPatterns: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
      default: [],
      maxItems: 100,
      description:
        'Allowed origins by pattern (linear-time regular expressions, matched against the whole origin), e.g. `https://[a-z0-9-]+\\.example\\.com`. With credentials, a pattern that matches an arbitrary origin is refused.',
    }),
    credentials: Type.Boolean({
      default: false,
      description:
        'Send `Access-Control-Allow-Credentials: true` to allowed origins (cookies, HTTP authentication); the origin is then always one of the listed ones, never `*`.',
    }),
    methods: Type.Array(Type.String({ pattern: TOKEN, maxLength: 32 }), {
      default: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      minItems: 1,
      description: 'Methods a preflight may ask for (the route must take them too).',
    }),
    allowHeaders: Type.Array(Type.String({ pattern: TOKEN, maxLength: 128 }), {
      default: ['content-type', 'authorization'],
      description:
        'Request headers a preflight may ask for (case-insensitive); `*` for any (not with credentials).',
    }),
    exposeHeaders: Type.Array(Type.String({ pattern: TOKEN, maxLength: 128 }), {
      default: [],
      description:
        'Response headers scripts may read besides the safelisted ones (e.g. `x-request-id`, `ratelimit`).',
    }),
    maxAgeSec: Type.Integer({
      minimum: 0,
      maximum: 86_400,
      default: 600,
      description: 'How long browsers may cache a preflight answer (`Access-Control-Max-Age`).',
    }),
    refuseDisallowedOrigins: Type.Boolean({
      default: false,
      description:
        'Refuse requests whose `Origin` is not allowed with 403 GW_ERR_CORS_ORIGIN (a CSRF defence), instead of only leaving out the CORS headers (which stops a browser from reading the answer, not from sending the request).',
    }),
  },
  { additionalProperties: false },
)
export type CorsConfig = Static<typeof CorsConfig>

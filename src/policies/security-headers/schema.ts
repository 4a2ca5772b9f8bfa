import { Type } from '@sinclair/typebox'

export const SecurityHeadersConfig = Type.Object(
  {
    hsts: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Send Strict-Transport-Security on HTTPS responses.',
        }),
        maxAge: Type.Integer({ minimum: 0, default: 31536000, description: 'max-age in seconds.' }),
        includeSubDomains: Type.Boolean({ default: true, description: 'Add includeSubDomains.' }),
        preload: Type.Boolean({
          default: false,
          description: 'Add preload (only if you submit the domain).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'HTTP Strict Transport Security.' },
    ),
    noSniff: Type.Boolean({ default: true, description: 'Send `X-Content-Type-Options: nosniff`.' }),
    cacheControl: Type.Union([Type.String({ minLength: 1 }), Type.Literal(false)], {
      default: 'no-store',
      description: 'Cache-Control value for API responses, or false to leave it to the upstream.',
    }),
    overrideUpstreamCacheControl: Type.Boolean({
      default: false,
      description: 'Replace a Cache-Control the upstream set (otherwise only added when absent).',
    }),
    frameOptions: Type.Union([Type.Literal('DENY'), Type.Literal('SAMEORIGIN'), Type.Literal(false)], {
      default: 'DENY',
      description: 'X-Frame-Options value, or false.',
    }),
    contentSecurityPolicy: Type.Union([Type.String({ minLength: 1 }), Type.Literal(false)], {
      default: "default-src 'none'; frame-ancestors 'none'",
      description: 'Content-Security-Policy for API responses (OWASP REST cheat sheet), or false.',
    }),
    referrerPolicy: Type.Union([Type.String({ minLength: 1 }), Type.Literal(false)], {
      default: 'no-referrer',
      description: 'Referrer-Policy value, or false.',
    }),
    removeHeaders: Type.Array(Type.String({ minLength: 1 }), {
      default: ['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version'],
      description: 'Upstream response headers removed because they disclose technology.',
    }),
  },
  { additionalProperties: false, default: {} },
)

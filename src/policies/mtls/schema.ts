import { Type } from '@sinclair/typebox'

export const MtlsConfig = Type.Object(
  {
    principalFrom: Type.Union(
      [
        Type.Literal('subject-cn'),
        Type.Literal('san-dns'),
        Type.Literal('san-uri'),
        Type.Literal('san-email'),
      ],
      {
        default: 'subject-cn',
        description:
          'Which part of the verified client certificate names the principal: the subject CN or the first SAN of a type.',
      },
    ),
    allowedPrincipals: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'If not empty, only these principals may use the route (403 for others).',
    }),
    forwardHeader: Type.Union([Type.String({ pattern: '^[a-z0-9-]+$' }), Type.Literal(false)], {
      default: false,
      description:
        'Send the principal to the upstream in this header (a client-sent header of that name is always removed).',
    }),
  },
  { additionalProperties: false },
)

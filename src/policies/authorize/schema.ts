import { Type } from '@sinclair/typebox'

const Names = (description: string) => Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description })
const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()])

export const AuthorizeCondition = Type.Object(
  {
    claim: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A claim of the principal (dotted paths reach nested claims).',
      }),
    ),
    path: Type.Optional(Type.String({ minLength: 1, description: 'A path parameter (decoded), by name.' })),
    query: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'A query parameter (decoded); a repeated one fails the condition.',
      }),
    ),
    header: Type.Optional(
      Type.String({ minLength: 1, description: 'A request header; a repeated one fails the condition.' }),
    ),
    equals: Type.Optional(
      Type.Union([Scalar], { description: 'The value equals this (compared as strings).' }),
    ),
    in: Type.Optional(Type.Array(Scalar, { minItems: 1, description: 'The value is one of these.' })),
    contains: Type.Optional(
      Type.Union([Scalar], {
        description:
          'The value is a list with this member: an array (claims) or a comma-separated string (request values).',
      }),
    ),
    matches: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1000,
        description:
          'The value matches this regular expression (JavaScript syntax, anywhere in the value: anchor it with ^…$). It runs on a linear-time engine (RE2): no backreferences or lookaround.',
      }),
    ),
    gt: Type.Optional(Type.Number({ description: 'The value is a number greater than this.' })),
    gte: Type.Optional(Type.Number({ description: 'The value is a number greater than or equal to this.' })),
    lt: Type.Optional(Type.Number({ description: 'The value is a number less than this.' })),
    lte: Type.Optional(Type.Number({ description: 'The value is a number less than or equal to this.' })),
  },
  {
    additionalProperties: false,
    description:
      'One source (`claim`, `path`, `query` or `header`) and one or more operators, all of which must hold. A missing value fails every operator.',
  },
)

export const AuthorizeRule = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, description: 'A name for logs.' })),
    match: Type.Object(
      {
        operationIds: Type.Optional(
          Names('OpenAPI operationIds (needs `spec`); an unknown id is a config error.'),
        ),
        tags: Type.Optional(Names('OpenAPI tags: operations with any of them (needs `spec`).')),
        methods: Type.Optional(
          Names('HTTP methods (upper case); GET also covers HEAD. Combined with the other keys (AND).'),
        ),
        path: Type.Optional(
          Type.String({
            pattern: '^/',
            description:
              'A path template (`/api/v2/users/{id}`) matched against the whole gateway path; its variables can be used by `path` conditions.',
          }),
        ),
        pathPrefix: Type.Optional(
          Type.String({
            pattern: '^/',
            description: 'A path prefix, on segment boundaries, compared without regard to case.',
          }),
        ),
      },
      {
        additionalProperties: false,
        description: 'Which requests the rule covers: every key given must match (at least one key).',
      },
    ),
    anonymous: Type.Boolean({
      default: false,
      description:
        'The rule passes requests without a principal (public operations). Its other checks still apply to those that have one.',
    }),
    scopes: Type.Optional(
      Names('Scopes the principal must all have (403 `insufficient_scope` naming them otherwise).'),
    ),
    roles: Type.Optional(Names('Roles of which the principal must have at least one.')),
    conditions: Type.Optional(
      Type.Array(AuthorizeCondition, { description: 'Conditions that must all hold.' }),
    ),
  },
  { additionalProperties: false },
)

export const AuthorizeConfig = Type.Object(
  {
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The OpenAPI 3.0/3.1 document (relative to the config file): its operations, `security` requirements, tags and `x-portcullis-roles`. Without it only `path`/`pathPrefix`/`methods` rules apply.',
      }),
    ),
    basePath: Type.String({
      default: '',
      pattern: '^(/.*[^/])?$',
      description: "Prefix of the gateway path the spec's paths are relative to; '' for none.",
    }),
    default: Type.Union([Type.Literal('deny'), Type.Literal('allow')], {
      default: 'deny',
      description:
        'Requests that no rule, no spec security requirement and no administrative setting covers: `deny` (403 GW_ERR_FORBIDDEN) or `allow`.',
    }),
    specSecurity: Type.Union([Type.Literal('enforce'), Type.Literal('ignore')], {
      default: 'enforce',
      description:
        "The spec's `security` requirements: `enforce` (any one requirement object must be met, all scopes inside it; `security: []` or `{}` makes an operation public) or `ignore`.",
    }),
    rolesClaims: Type.Array(Type.String({ minLength: 1 }), {
      default: ['roles', 'realm_access.roles', 'groups'],
      description:
        "Claims (dotted paths allowed) whose string values are roles, in addition to the principal's own roles (set by its authentication policy).",
    }),
    methodOverride: Type.Union([Type.Literal('reject'), Type.Literal('strip')], {
      default: 'reject',
      description:
        'Requests carrying `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` or a `_method` query parameter: `reject` (400 GW_ERR_METHOD_OVERRIDE) or `strip` (removed before the upstream). Never obeyed.',
    }),
    admin: Type.Object(
      {
        roles: Type.Array(Type.String({ minLength: 1 }), {
          default: ['admin'],
          description: 'Roles, any one of which administrative operations require.',
        }),
        tags: Type.Array(Type.String({ minLength: 1 }), {
          default: ['admin'],
          description: 'OpenAPI tags that make an operation administrative.',
        }),
        pathPrefixes: Type.Array(Type.String({ pattern: '^/' }), {
          default: [],
          description:
            'Gateway path prefixes (segment boundaries, any case) that are administrative, in the spec or not.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          "Administrative operations. An operation's own `x-portcullis-roles` (a list of roles, any one required) applies besides.",
      },
    ),
    rules: Type.Array(AuthorizeRule, {
      default: [],
      description:
        'Rules; every rule that matches a request must pass (together with the spec requirements and the administrative roles).',
    }),
  },
  { additionalProperties: false },
)

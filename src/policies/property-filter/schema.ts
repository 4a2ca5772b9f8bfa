import { Type } from '@sinclair/typebox'

/** Removed from every JSON response unless an operation allows them. */
export const DEFAULT_SENSITIVE_NAMES = ['password', 'passwordHash', 'passwordSalt', 'ssn', 'secret', 'token']

const Names = (description: string, def?: string[]) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
    maxItems: 1000,
    description,
    ...(def ? { default: def } : {}),
  })

const RoleMap = (description: string, def?: Record<string, string[]>) =>
  Type.Record(
    Type.String({ minLength: 1, maxLength: 200 }),
    Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 100 }),
    { description, ...(def ? { default: def } : {}) },
  )

const RESTRICTED =
  'Response properties (by name, at any depth) that only some roles may see: `{ salary: [admin, hr] }`. A principal without any of the roles gets the response without them.'
const RESERVED =
  'Request properties (by name, at any depth) that only some roles may send: `{ role: [admin], isAdmin: [admin] }`; `[]` means nobody. A request carrying one without the role is refused (400 GW_ERR_PROPERTY_NOT_ALLOWED) naming the field.'

export const PropertyFilterConfig = Type.Object(
  {
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The OpenAPI 3.0/3.1 document (relative to the config file). Its response schemas mark properties with `x-portcullis-roles` (only those roles see them) and `writeOnly` (never in responses); its request schemas mark them with `readOnly` (never accepted) and `x-portcullis-roles` (only those roles may send them). Without it only the names in this config apply.',
      }),
    ),
    basePath: Type.String({
      default: '',
      pattern: '^(/.*[^/])?$',
      description: "Prefix of the gateway path the spec's paths are relative to; '' for none.",
    }),
    sensitive: Type.Object(
      {
        names: Names(
          'Property names always removed from JSON responses, at any depth, for every principal. Compared ignoring case, `_` and `-` (`passwordHash` also removes `password_hash` and `PASSWORD-HASH`).',
          DEFAULT_SENSITIVE_NAMES,
        ),
        patterns: Type.Array(Type.String({ minLength: 1, maxLength: 500 }), {
          default: [],
          maxItems: 100,
          description:
            'Regular expressions (linear-time engine, case-insensitive, unanchored) on property names; a property whose name matches any is removed like a sensitive name. E.g. `^(api_?key|private_?key)$`.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Sensitive properties: removed from every JSON response of the route unless an operation allows them (`operations.<id>.allowSensitive`).',
      },
    ),
    restricted: RoleMap(RESTRICTED, {}),
    reserved: RoleMap(RESERVED, {}),
    rolesClaims: Type.Array(Type.String({ minLength: 1 }), {
      default: ['roles', 'realm_access.roles', 'groups'],
      description:
        "Claims (dotted paths allowed) whose string values are roles, in addition to the principal's own roles. Without a principal, no role is held.",
    }),
    operations: Type.Record(
      Type.String({ minLength: 1 }),
      Type.Object(
        {
          allowSensitive: Type.Optional(
            Names(
              'Sensitive names this operation may return (e.g. `[token]` on a login operation). Compared like `sensitive.names`; a name matched by a pattern is allowed when listed here too.',
            ),
          ),
          restricted: Type.Optional(RoleMap(`${RESTRICTED} Added to the route-wide map.`)),
          reserved: Type.Optional(RoleMap(`${RESERVED} Added to the route-wide map.`)),
        },
        { additionalProperties: false },
      ),
      {
        default: {},
        description:
          'Per operation settings, by operationId (or `METHOD /path` for operations without one) with `spec`, or by `METHOD /path/{template}` (gateway path) without it. An unknown operationId is a config error.',
      },
    ),
    requests: Type.Union([Type.Literal('enforce'), Type.Literal('off')], {
      default: 'enforce',
      description:
        'Mass assignment checks on JSON request bodies (`readOnly`, reserved and role-marked properties): `enforce` or `off`.',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1,
      default: 1048576,
      description:
        "Largest JSON body parsed, in bytes, for requests (413 above; it only lowers the route's limit) and responses (see `onOversize`; the route's `responseBodyLimit` applies first).",
    }),
    onOversize: Type.Union([Type.Literal('block'), Type.Literal('pass')], {
      default: 'block',
      description:
        'A JSON response larger than `maxBodyBytes`: `block` (502 GW_ERR_RESPONSE_NOT_FILTERED, fail closed) or `pass` (sent unfiltered, and logged).',
    }),
    json: Type.Object(
      {
        maxDepth: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 64,
          description: 'Deepest nesting of a JSON request body.',
        }),
        maxKeys: Type.Integer({
          minimum: 1,
          default: 1000,
          description: 'Most members of one JSON object in a request body.',
        }),
        maxArrayLength: Type.Integer({
          minimum: 1,
          default: 10000,
          description: 'Most elements of one JSON array in a request body.',
        }),
      },
      {
        additionalProperties: false,
        default: {},
        description:
          'Guards for JSON request bodies (the guarded parser of openapi-validation: duplicate keys, `__proto__`/`constructor`/`prototype` keys and U+0000 are always refused, 400 GW_ERR_MALFORMED_BODY).',
      },
    ),
    maxViolations: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: 10,
      description: 'Most refused fields listed in a 400 response.',
    }),
  },
  { additionalProperties: false },
)

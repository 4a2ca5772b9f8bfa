import { Type } from '@sinclair/typebox'

const Names = (description: string) => Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description })

const Pointer = (description: string) => Type.String({ pattern: '^(/.*)?$', maxLength: 512, description })

/** Which requests (or responses) a rule covers. */
export const OwnershipMatch = Type.Object(
  {
    methods: Type.Optional(
      Names(
        'HTTP methods (upper case); GET also covers HEAD. Default: GET, HEAD, POST, PUT, PATCH, DELETE (not OPTIONS: CORS preflights carry no credentials).',
      ),
    ),
    path: Type.Optional(
      Type.String({
        pattern: '^/',
        description:
          'A path template (`/api/v2/orders/{id}`) matched against the whole canonical gateway path; its variables are what `path.<name>` selectors read.',
      }),
    ),
    operationIds: Type.Optional(
      Names(
        'OpenAPI operationIds (needs `spec`): each stands for its method and path template (under `basePath`).',
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Give `path` (with `methods` optionally) or `operationIds`.',
  },
)

export const IdSelector = Type.Union(
  [
    Type.String({
      pattern: '^(path|query|header|body)\\.',
      description:
        '`path.<param>`, `query.<name>`, `header.<name>` or `body.<JSON pointer>` (`body./items/*/id`: `*` walks an array).',
    }),
    Type.Object(
      {
        from: Type.String({
          pattern: '^(path|query|header|body)\\.',
          description: 'Where the id is: as in the string form.',
        }),
        split: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 4,
            description: 'The value is a list of ids separated by this (`?ids=1,2` → `split: ","`).',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Where an object id is read from the request.' },
)

export const AccessRule = Type.Object(
  {
    match: OwnershipMatch,
    ids: Type.Array(IdSelector, {
      description:
        'Where the ids of objects of this type are in the request: every id found is checked. `[]` declares an operation that addresses no object (`/users/me` beside `/users/{id}`: the literal template wins).',
    }),
  },
  {
    additionalProperties: false,
    description: 'Operations that read, change or delete objects of this type.',
  },
)

export const LearnRule = Type.Object(
  {
    match: OwnershipMatch,
    id: Type.String({
      pattern: '^(body\\.(/.*)?|header\\.location)$',
      description:
        "Where the new object's id is in the 2xx response: `body.<JSON pointer>` (`body./id`) or `header.location` (the Location header's last path segment).",
    }),
  },
  {
    additionalProperties: false,
    description:
      'Create operations: a 2xx answer records the caller as the owner of the new object (replacing any earlier owner of that id).',
  },
)

export const ListRule = Type.Object(
  {
    match: OwnershipMatch,
    items: Pointer("JSON pointer to the array of objects in the response ('' for a top-level array)."),
    id: Pointer('JSON pointer to the id within an item (`/id`).'),
    owner: Type.Optional(
      Pointer(
        "JSON pointer to the owner within an item (`/ownerId`), compared with the principal's id as a string. Without it the learned owner is used.",
      ),
    ),
    learn: Type.Boolean({
      default: false,
      description:
        "The list is the caller's own collection: its items' ids are recorded as the caller's, unless already owned by someone else (never overwritten).",
    }),
    action: Type.Union([Type.Literal('filter'), Type.Literal('block')], {
      default: 'filter',
      description:
        'Items owned by others: `filter` removes them (Content-Length is recomputed), `block` answers the denial status instead.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'List responses (2xx JSON): items owned by someone else are filtered or blocked; with `learn` the items are recorded as the caller’s.',
  },
)

export const LookupConfig = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://',
      description:
        'URL template: `{type}`, `{id}` and `{principal}` are replaced (percent-encoded). E.g. `http://owners.internal/{type}/{id}`.',
    }),
    method: Type.Union([Type.Literal('GET'), Type.Literal('POST')], {
      default: 'GET',
      description: 'GET the URL, or POST it a JSON body `{type, id, principal}`.',
    }),
    forwardHeaders: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Request headers passed on to the lookup (e.g. `authorization`, to GET the object from the upstream itself as the caller). The cache then stays correct only for owner answers, which do not depend on the caller.',
    }),
    owner: Type.Optional(Pointer('JSON pointer to the owner id in the answer (`/ownerId`).')),
    allowed: Type.Optional(
      Pointer('JSON pointer to a boolean in the answer (`/allowed`): whether this principal may access.'),
    ),
    notFoundStatuses: Type.Array(Type.Integer({ minimum: 300, maximum: 599 }), {
      default: [404, 403],
      description: 'Answers meaning "no such object for this caller": denied (and cached as negative).',
    }),
    timeoutMs: Type.Integer({
      minimum: 10,
      maximum: 60_000,
      default: 1000,
      description: 'Deadline for the whole exchange.',
    }),
    maxResponseBytes: Type.Integer({
      minimum: 64,
      maximum: 10 * 1024 * 1024,
      default: 65_536,
      description: 'Largest answer read; a larger one is a failure (503).',
    }),
    cacheSize: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      default: 10_000,
      description: 'Entries of the answer cache (LRU); 0: no cache.',
    }),
    cacheTtlSec: Type.Integer({
      minimum: 1,
      default: 300,
      description: 'How long a positive answer is cached.',
    }),
    negativeCacheTtlSec: Type.Integer({
      minimum: 1,
      default: 30,
      description: 'How long a negative answer is cached.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'An HTTP callout that tells the owner of an object the store does not know. Any failure (connection, timeout, another status, an answer too large or without the pointer) answers 503 GW_ERR_OWNERSHIP_UNAVAILABLE: fail closed.',
  },
)

export const BindingConfig = Type.Object(
  {
    equals: Type.Optional(
      Type.String({
        pattern: '^(principal\\.id|claims\\..+)$',
        description: 'The id must equal this: `principal.id` or `claims.<dotted path>`.',
      }),
    ),
    in: Type.Optional(
      Type.String({
        pattern: '^claims\\..+$',
        description:
          'The id must be one of this claim’s values (an array, or a space-separated string): `claims.<dotted path>`.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Binding: the id must be bound to the principal. When set it decides alone (the store and the lookup are not asked).',
  },
)

export const ObjectRule = Type.Object(
  {
    type: Type.String({
      pattern: '^[a-z0-9][a-z0-9_-]{0,63}$',
      description: 'The object type (`order`, `account`): part of store keys, audit events and logs.',
    }),
    access: Type.Array(AccessRule, {
      default: [],
      description: 'Operations that address objects of this type by id.',
    }),
    idPattern: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description:
          'Ids must match this regular expression (anchor it: `^[1-9][0-9]{0,17}$`), else the request is denied: aliases the upstream would resolve to another spelling (`02`, `+2`) never reach it. Linear-time engine.',
      }),
    ),
    binding: Type.Optional(BindingConfig),
    learn: Type.Array(LearnRule, {
      default: [],
      description: 'Create operations whose answers teach the owner.',
    }),
    lists: Type.Array(ListRule, {
      default: [],
      description: 'List operations whose items are checked (and maybe learned).',
    }),
    lookup: Type.Optional(LookupConfig),
    unknown: Type.Union([Type.Literal('deny'), Type.Literal('allow')], {
      default: 'deny',
      description:
        'Objects whose owner is not known (not learned, no lookup answer): `deny`, or `allow` with an `ownership.unknown` audit event.',
    }),
    allowRoles: Type.Optional(
      Names(
        'Roles that may access objects of this type whoever owns them (replaces the policy-wide `allowRoles`).',
      ),
    ),
  },
  { additionalProperties: false },
)

export const ObjectOwnershipConfig = Type.Object(
  {
    spec: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'OpenAPI document (relative to the config file) for `operationIds` in matches.',
      }),
    ),
    basePath: Type.String({
      default: '',
      pattern: '^(/.*[^/])?$',
      description: "Prefix of the gateway path the spec's paths are relative to; '' for none.",
    }),
    namespace: Type.String({
      default: 'default',
      pattern: '^[a-z0-9][a-z0-9_-]{0,63}$',
      description:
        'Store key namespace: gateways (and routes) that share ownership use the same one; two APIs whose ids overlap use different ones.',
    }),
    objects: Type.Array(ObjectRule, {
      minItems: 1,
      description: 'Object types and how their ownership is checked.',
    }),
    allowRoles: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Roles that may access any object (e.g. `admin`, `support`).',
    }),
    rolesClaims: Type.Array(Type.String({ minLength: 1 }), {
      default: ['roles', 'realm_access.roles', 'groups'],
      description: "Claims (dotted paths) whose string values are roles, besides the principal's own roles.",
    }),
    denyStatus: Type.Union([Type.Literal(404), Type.Literal(403)], {
      default: 404,
      description:
        'Denials answer 404 GW_ERR_OBJECT_NOT_FOUND (the object’s existence is not revealed) or 403 GW_ERR_OBJECT_FORBIDDEN.',
    }),
    ttlSec: Type.Integer({
      minimum: 60,
      default: 2_592_000,
      description: 'How long learned ownership is kept (default 30 days); each learn renews it.',
    }),
    maxIds: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 100,
      description: 'Most object ids one request may address; more → 400 GW_ERR_BAD_REQUEST.',
    }),
    maxBodyBytes: Type.Integer({
      minimum: 1,
      default: 1_048_576,
      description:
        'Largest request body read for `body.` selectors (lowers the route limit for those requests).',
    }),
    failOpen: Type.Boolean({
      default: false,
      description:
        'When the store fails: false answers 503 GW_ERR_STATE_UNAVAILABLE; true lets the request through (logged). Learning failures are logged, never fail a response.',
    }),
  },
  { additionalProperties: false },
)

/**
 * The `audit:` section of the config (wired into config/schema.ts). See docs/audit.md.
 */
import { isIP } from 'node:net'
import { type Static, Type } from '@sinclair/typebox'
import { INSTANCE_PATTERN } from './record.js'
import { FACILITIES } from './sinks/syslog.js'

export const AUDIT_DEFAULTS = {
  maxBytes: 64 * 1024 * 1024,
  maxAgeSec: 86400,
  fsyncIntervalMs: 1000,
  checkpointEvery: 1000,
  checkpointIntervalSec: 60,
  maxQueue: 10000,
} as const

// ---- forwarding sinks (http, syslog) and their spool: docs/audit.md#forwarding-sinks ----

export const SPOOL_DEFAULTS = {
  maxBytes: 256 * 1024 * 1024,
  httpTimeoutMs: 10_000,
  httpMaxRecords: 1000,
  httpMaxBytes: 1024 * 1024,
  httpLingerMs: 200,
  retryMinMs: 200,
  retryMaxMs: 30_000,
  syslogSettleMs: 1000,
} as const

const Retry = Type.Object(
  {
    minMs: Type.Integer({
      minimum: 10,
      maximum: 60_000,
      default: SPOOL_DEFAULTS.retryMinMs,
      description: 'First retry after about this long.',
    }),
    maxMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: SPOOL_DEFAULTS.retryMaxMs,
      description: 'Retries back off exponentially (with jitter) up to this; they never stop.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Retry backoff.' },
)

export const SpoolConfig = Type.Object(
  {
    dir: Type.String({
      minLength: 1,
      default: 'audit-spool',
      description:
        'Directory of the spool (created 0700; relative to the config file): records not yet delivered, and the tail of the chain, which continues from it on restart. Keep it across restarts.',
    }),
    maxBytes: Type.Integer({
      minimum: 65536,
      default: SPOOL_DEFAULTS.maxBytes,
      description:
        'Most undelivered bytes. When full, writes wait for deliveries (the audit queue fills, then events are dropped and recorded as an `audit.gap`; with `file.fsync: always` audited responses wait).',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The on-disk spool of the `http` and `syslog` sinks. Synced per `file.fsync` / `file.fsyncIntervalMs`.',
  },
)

export const HttpSinkConfig = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      description: 'Collector URL, `https://…` (`http://` only to a loopback address).',
    }),
    token: Type.Optional(
      Type.String({
        minLength: 1,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${…} syntax is the advice itself
        description: 'Secret sent with every batch (use `${env:NAME}` or `${file:PATH}`; never logged).',
      }),
    ),
    tokenHeader: Type.String({
      pattern: '^[A-Za-z0-9-]{1,64}$',
      default: 'authorization',
      description:
        '`authorization`: the token is sent as `Bearer <token>`; any other header: the token as is.',
    }),
    ca: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'PEM file of the CA(s) to trust for the collector instead of the system ones.',
      }),
    ),
    timeoutMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: SPOOL_DEFAULTS.httpTimeoutMs,
      description: 'Deadline of one POST (connect, send, answer).',
    }),
    batch: Type.Object(
      {
        maxRecords: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: SPOOL_DEFAULTS.httpMaxRecords,
          description: 'Most records per POST.',
        }),
        maxBytes: Type.Integer({
          minimum: 1024,
          maximum: 64 * 1024 * 1024,
          default: SPOOL_DEFAULTS.httpMaxBytes,
          description: 'Most bytes per POST (a single longer record goes alone).',
        }),
        lingerMs: Type.Integer({
          minimum: 0,
          maximum: 60_000,
          default: SPOOL_DEFAULTS.httpLingerMs,
          description: 'How long to wait for more records before sending a batch that is not full.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Batching.' },
    ),
    retry: Retry,
  },
  {
    additionalProperties: false,
    description: 'The `http` sink: batches of record lines POSTed as `application/x-ndjson`.',
  },
)

export const SyslogSinkConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'Receiver host name or address.' }),
    port: Type.Integer({
      minimum: 1,
      maximum: 65535,
      description: 'Receiver port (usually 601 TCP, 6514 TLS).',
    }),
    transport: Type.Union([Type.Literal('tcp'), Type.Literal('tls')], {
      default: 'tcp',
      description: '`tcp` (RFC 6587 octet counting) or `tls` (RFC 5425).',
    }),
    tls: Type.Optional(
      Type.Object(
        {
          ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA(s) to trust.' })),
          cert: Type.Optional(
            Type.String({ minLength: 1, description: 'Client certificate (PEM), with `key`.' }),
          ),
          key: Type.Optional(
            Type.String({ minLength: 1, description: 'Client private key (PEM), with `cert`.' }),
          ),
          servername: Type.Optional(
            Type.String({ minLength: 1, description: 'Name the certificate must carry (default: `host`).' }),
          ),
          minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], {
            default: 'TLSv1.2',
            description: 'Lowest TLS version.',
          }),
        },
        { additionalProperties: false, description: 'With `transport: tls`.' },
      ),
    ),
    facility: Type.Union(
      Object.keys(FACILITIES).map((f) => Type.Literal(f)),
      { default: 'local0', description: 'Syslog facility (`kern` … `local7`).' },
    ),
    hostname: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: "HOSTNAME field (default: the machine's name).",
      }),
    ),
    connectTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: SPOOL_DEFAULTS.httpTimeoutMs,
      description: 'Deadline of a connection (and TLS handshake).',
    }),
    settleMs: Type.Integer({
      minimum: 10,
      maximum: 600_000,
      default: SPOOL_DEFAULTS.syslogSettleMs,
      description:
        'Records leave the spool once the connection they were written on stayed up this long after; when it fails first they are sent again.',
    }),
    retry: Retry,
  },
  { additionalProperties: false, description: 'The `syslog` sink: RFC 5424 messages, one per record.' },
)

/** Combinations the schema cannot express; each message names the field. */
export function checkSinkConfig(c: {
  sink: string
  anchor?: { witness?: unknown; redis: boolean } | undefined
  http?: { url: string } | undefined
  syslog?:
    | { transport: string; tls?: { cert?: string | undefined; key?: string | undefined } | undefined }
    | undefined
}): string[] {
  const out: string[] = []
  if (c.sink === 'http') {
    if (c.http === undefined) out.push('audit.sink is http but audit.http (url, …) is missing')
    else {
      let u: URL | undefined
      try {
        u = new URL(c.http.url)
      } catch {
        out.push('audit.http.url: not a URL')
      }
      if (u !== undefined) {
        const host = u.hostname.replace(/^\[|\]$/g, '')
        const loopback =
          host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1'
        if (u.protocol === 'http:' && !loopback)
          out.push(
            'audit.http.url: http:// only to a loopback address (127.0.0.0/8, ::1, localhost); use https://',
          )
        else if (u.protocol !== 'http:' && u.protocol !== 'https:')
          out.push('audit.http.url: must be https:// (or http:// to a loopback address)')
        if (u.username !== '' || u.password !== '')
          out.push('audit.http.url: no credentials in the URL; use audit.http.token')
      }
    }
  } else if (c.http !== undefined) out.push(`audit.http is set but audit.sink is ${c.sink}`)
  if (c.sink === 'syslog') {
    if (c.syslog === undefined) out.push('audit.sink is syslog but audit.syslog (host, port, …) is missing')
    else {
      if (c.syslog.transport !== 'tls' && c.syslog.tls !== undefined)
        out.push('audit.syslog.tls is set but audit.syslog.transport is tcp (set transport: tls)')
      const t = c.syslog.tls
      if (t && (t.cert === undefined) !== (t.key === undefined))
        out.push('audit.syslog.tls: cert and key go together')
    }
  } else if (c.syslog !== undefined) out.push(`audit.syslog is set but audit.sink is ${c.sink}`)
  if (c.anchor !== undefined) {
    if (c.anchor.witness === undefined && !c.anchor.redis)
      out.push('audit.anchor needs a place: witness (a directory) and/or redis: true')
    if (c.sink === 'stdout')
      out.push('audit.anchor does not work with sink: stdout (every process start begins a new chain)')
  }
  return out
}

export const AuditConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'Write the tamper-evident audit log (needs `keyring`).',
    }),
    instanceId: Type.Optional(
      Type.String({
        pattern: INSTANCE_PATTERN,
        description:
          "This gateway's chain id, in every record and file name. Default: the one found in `file.dir` (a new random one when the directory holds none). Give each gateway sharing a directory its own.",
      }),
    ),
    sink: Type.Union(
      [Type.Literal('file'), Type.Literal('stdout'), Type.Literal('http'), Type.Literal('syslog')],
      {
        default: 'file',
        description:
          '`file`: JSON lines in numbered files under `file.dir`, the chain continued across restarts. `stdout`: JSON lines on standard output, a new chain per process start (send the access log elsewhere). `http`: batches POSTed to a collector (`http`), through the on-disk `spool`. `syslog`: RFC 5424 messages over TCP or TLS (`syslog`), through the on-disk `spool`.',
      },
    ),
    file: Type.Object(
      {
        dir: Type.String({
          minLength: 1,
          default: 'audit',
          description: 'Directory of the chain files (created 0700; relative to the config file).',
        }),
        prefix: Type.String({
          pattern: '^[a-z0-9_]{1,32}$',
          default: 'audit',
          description: 'File names are `<prefix>-<instanceId>-<NNNNNN>.jsonl`.',
        }),
        fsync: Type.Union([Type.Literal('always'), Type.Literal('interval')], {
          default: 'interval',
          description:
            '`always`: each batch is fdatasync-ed before it counts as written, and responses with an audit record are held until their record is on disk. `interval`: synced every `fsyncIntervalMs`; a crash of the machine can lose that much.',
        }),
        fsyncIntervalMs: Type.Integer({
          minimum: 10,
          maximum: 60000,
          default: AUDIT_DEFAULTS.fsyncIntervalMs,
          description: 'With `fsync: interval`: how often written records are synced.',
        }),
        maxBytes: Type.Integer({
          minimum: 0,
          default: AUDIT_DEFAULTS.maxBytes,
          description: 'Rotate to a new file once the current one holds this many bytes (0: never by size).',
        }),
        maxAgeSec: Type.Integer({
          minimum: 0,
          default: AUDIT_DEFAULTS.maxAgeSec,
          description: 'Rotate to a new file once the current one is this old (0: never by age).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The file sink.' },
    ),
    spool: Type.Optional(SpoolConfig),
    http: Type.Optional(HttpSinkConfig),
    syslog: Type.Optional(SyslogSinkConfig),
    keyring: Type.Optional(
      Type.Object(
        {
          file: Type.Optional(
            Type.String({
              minLength: 1,
              description: 'Keyring file `{ active, keys: { kid: base64 } }` (JSON or YAML; keep it 0600).',
            }),
          ),
          env: Type.Optional(
            Type.String({
              pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
              description: 'Name of an environment variable holding the keyring text instead.',
            }),
          ),
        },
        {
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          description:
            'The HMAC keys records are signed with (one of `file` or `env`). `portcullis audit keygen` makes one.',
        },
      ),
    ),
    encryption: Type.Optional(
      Type.Object(
        {
          keyring: Type.Object(
            {
              file: Type.Optional(
                Type.String({
                  minLength: 1,
                  description:
                    'Encryption keyring file `{ active, keys: { kid: base64 of 32 bytes } }` (JSON or YAML; keep it 0600). Re-read each second: after `portcullis keys rotate-audit` the next file uses the new key.',
                }),
              ),
              env: Type.Optional(
                Type.String({
                  pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
                  description:
                    'Name of an environment variable holding the encryption keyring text instead (read at start).',
                }),
              ),
            },
            {
              additionalProperties: false,
              minProperties: 1,
              maxProperties: 1,
              description:
                "The AES-256 keys that wrap each file's data key (one of `file` or `env`); separate from the HMAC `keyring`.",
            },
          ),
        },
        {
          additionalProperties: false,
          description:
            'Encrypt the chain files at rest (file sink): AES-256-GCM, a random data key per file wrapped by the active key of this keyring, one encrypted frame per record (docs/audit.md#encryption-at-rest).',
        },
      ),
    ),
    anchor: Type.Optional(
      Type.Object(
        {
          witness: Type.Optional(
            Type.Object(
              {
                dir: Type.String({
                  minLength: 1,
                  description:
                    'Directory of the witness files (`<instanceId>.anchor`, replaced atomically; relative to the config file). Put it on other storage than `file.dir`: a mount the audit files are not on, ideally one whoever could rewrite the audit files cannot.',
                }),
              },
              { additionalProperties: false, description: 'Anchors in a witness file per instance.' },
            ),
          ),
          redis: Type.Boolean({
            default: false,
            description:
              "Anchors in the gateway's Redis store (`stores.backend: redis`), key `audit:anchor:<instanceId>`: every gateway on that Redis keeps its own chain's anchor there.",
          }),
          intervalMs: Type.Integer({
            minimum: 100,
            maximum: 3_600_000,
            default: 1000,
            description:
              'An anchor at most this often while records are written (and one at a clean stop). Records written after the newest anchor can be cut without the anchor showing it: this bounds how many.',
          }),
          startTimeoutMs: Type.Integer({
            minimum: 100,
            maximum: 120_000,
            default: 5000,
            description:
              'At start, how long to wait for the anchors (Redis connecting) before starting without the truncation check (logged as an error and recorded in `audit.start`).',
          }),
        },
        {
          additionalProperties: false,
          description:
            "Anchoring: the chain's head (seq and hash), signed, kept outside its files, so that a chain cut at its end is reported truncated by `audit verify`/`report` and refused by a restart (docs/audit.md#anchors). Needs `witness` and/or `redis`.",
        },
      ),
    ),
    checkpoint: Type.Object(
      {
        everyRecords: Type.Integer({
          minimum: 1,
          default: AUDIT_DEFAULTS.checkpointEvery,
          description: 'A signed checkpoint record after this many records.',
        }),
        intervalSec: Type.Integer({
          minimum: 1,
          default: AUDIT_DEFAULTS.checkpointIntervalSec,
          description: 'A signed checkpoint at least this often while records are written.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Checkpoints (signed chain heads).' },
    ),
    maxQueue: Type.Integer({
      minimum: 100,
      maximum: 1000000,
      default: AUDIT_DEFAULTS.maxQueue,
      description:
        'Most events waiting to be written. When full, further events are dropped, counted, logged as errors, and recorded in the chain as an `audit.gap`.',
    }),
    events: Type.Object(
      {
        authSuccess: Type.Boolean({
          default: false,
          description:
            'Record every authenticated request that the gateway let through (`auth.success`: who, which route and path, the status). Denials, authentication failures, lockouts and reloads are always recorded.',
        }),
        authFailureStatuses: Type.Optional(
          Type.Array(Type.Integer({ minimum: 400, maximum: 599 }), {
            default: [401],
            maxItems: 16,
            description:
              "Upstream answers recorded as a failed authentication (`auth.failure`, `data.source: upstream`): a wrong password answered by the API's login, an expired session. On routes with brute-force-lockout its `failureStatuses` are recorded too. The gateway's own refusals are recorded whatever this says.",
          }),
        ),
      },
      { additionalProperties: false, default: {}, description: 'Which optional events are recorded.' },
    ),
    redact: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'Event members replaced by "[redacted]" before records are sealed: dotted paths, `*` for any member (`path`, `clientIp`, `data.subject`).',
    }),
  },
  {
    additionalProperties: false,
    default: {},
    description:
      'The tamper-evident audit log (docs/audit.md). Bound at start: changes take effect on restart.',
  },
)

export type AuditConfig = Static<typeof AuditConfig>

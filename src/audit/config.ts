/**
 * The `audit:` section of the config (wired into config/schema.ts). See docs/audit.md.
 */
import { type Static, Type } from '@sinclair/typebox'
import { INSTANCE_PATTERN } from './record.js'

export const AUDIT_DEFAULTS = {
  maxBytes: 64 * 1024 * 1024,
  maxAgeSec: 86400,
  fsyncIntervalMs: 1000,
  checkpointEvery: 1000,
  checkpointIntervalSec: 60,
  maxQueue: 10000,
} as const

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
    sink: Type.Union([Type.Literal('file'), Type.Literal('stdout')], {
      default: 'file',
      description:
        '`file`: JSON lines in numbered files under `file.dir`, the chain continued across restarts. `stdout`: JSON lines on standard output, a new chain per process start (send the access log elsewhere).',
    }),
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

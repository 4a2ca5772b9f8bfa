/**
 * Usage text of every command, kept apart from the commands so that `--help` loads none of them.
 */

export const KEYS_USAGE = `usage:
  portcullis keys create (--store FILE | --config FILE) --owner ID [--scopes a,b] [--expires 30d] [--name N] [--format text|json]
  portcullis keys list   (--store FILE | --config FILE) [--format text|json]
  portcullis keys revoke (--store FILE | --config FILE) ID
  portcullis keys rotate (--store FILE | --config FILE) ID [--overlap 24h] [--expires 30d] [--format text|json]
  portcullis keys import --store FILE --config FILE [--format text|json]
  portcullis keys rotate-audit --config FILE [--kid ID]   (a new audit encryption key, docs/audit.md)
--store FILE: a key store file; --config FILE: the Redis store in that gateway config's stores: section
durations: 90s, 15m, 24h, 30d, 2w`

export const AUDIT_USAGE = `usage:
  portcullis audit verify KEYS [ANCHORS] [--instance ID] [--partial] [--require-closed] [--require-anchor]
                          [--format text|json] [FILE|DIR...]
  portcullis audit report KEYS [ANCHORS] [--dir DIR] (--principal ID | --object TYPE:ID) [--since T] [--until T]
                          [--partial] [--format text|json]
  portcullis audit decrypt (--encryption-keyring FILE | --encryption-keyring-env NAME | --config FILE)
                          [--out DIR] FILE|DIR...
  portcullis audit keygen --keyring FILE [--kid ID]
KEYS: --config FILE (the audit: section of a gateway config: keyrings, and the chain's directory when
      no FILE|DIR is given), or --keyring FILE | --keyring-env NAME
      [--encryption-keyring FILE | --encryption-keyring-env NAME] (for encrypted files)
ANCHORS: where the chain's anchors are (a chain ending before its anchor is truncated): --anchor-dir DIR
      (witness files) and/or --anchor-redis redis://HOST:PORT; with --config, audit.anchor by default;
      --no-anchors skips them
T: an ISO 8601 date or time (2026-03-01, 2026-03-01T10:00:00Z), or a duration back from now (24h, 30d)`

export const SCAN_USAGE = `usage: portcullis scan --spec FILE|URL --target URL [--auth auth.yaml] [--checks a,b]
         [--fail-on critical|high|medium|low|info] [--format text|json|sarif|junit|html[,…]]
         [--output FILE | --output-dir DIR] [--baseline FILE] [-H 'Name: value']…
         [--include OPS] [--exclude OPS] [--jwt-wordlist FILE] [--chain] [--unsafe]
         [--rate N] [--concurrency N] [--timeout DURATION] [--verbose]
OPS: operationIds, 'METHOD /path' or '/path' (* matches anything), comma-separated or repeated.
exit: 0 nothing new at or above --fail-on, 1 findings, 2 usage/config error, 3 target unreachable.`

export const SERVE_USAGE = `usage: portcullis serve [--config FILE] [--workers N|auto]
  runs the gateway until SIGTERM or SIGINT; SIGHUP (or a change of the file) reloads the config.
  --config FILE      the gateway config (default: $PORTCULLIS_CONFIG, else ./portcullis.yaml)
  --workers N|auto   N worker processes (auto: one per core) sharing the listeners; signals to
                     the primary reach every worker (docs/deployment.md#workers)`

export const CONFIG_USAGE = `usage: portcullis config check [FILE] [--format text|json]
  FILE: default $PORTCULLIS_CONFIG, else ./portcullis.yaml (as serve)
  validates a gateway config exactly as serve and reload do (schema, then every policy's rules);
  prints every problem with file:line:col; exit 0 valid, 2 invalid.`

export const INVENTORY_USAGE = `usage: portcullis inventory (--admin URL [--token T] | --config FILE)
         [--format text|json|csv|openapi] [--flag F] [--diff SPEC [--diff-prefix P]] [--output FILE]
  the API inventory learned from traffic (docs/inventory.md):
  --admin URL     a gateway's admin listener (http://127.0.0.1:9901); the token: --token or
                  $PORTCULLIS_ADMIN_TOKEN
  --config FILE   read the shared inventory from the Redis store of that gateway config
  --format        text (a table), json, csv, or openapi (an OpenAPI 3.1 document reconstructed from
                  traffic, which lint and scan accept)
  --flag F        only operations flagged F (shadow, zombie, unused, unauthenticated,
                  undeclared-sensitive, blocked)
  --diff SPEC     compare with an OpenAPI document (its paths served under --diff-prefix): shadow,
                  zombie and unseen operations; exit 1 when traffic reaches shadow or zombie ones
  exit: 0 ok, 1 differences (--diff), 2 usage or config error, 3 the gateway or store did not answer`

export const SECRETS_USAGE = `usage: portcullis secrets [PATH...] [--git [--since T] [--branch B]] [--stdin]
         [--format text|json|sarif] [--output FILE] [--baseline FILE [--update-baseline]]
         [--jobs N|auto] [--redact] [--config FILE] [--max-file-size 100m] [--no-gitignore] [--no-archives]
  finds API keys, tokens, passwords and private keys (192 detectors; docs/secrets.md).
  PATH: files and directories (default .): .gitignore honoured, binaries and files over
        --max-file-size (0: no cap) skipped, symlinks never followed out of the root;
        .zip/.jar/.tar/.tar.gz/.tgz archives read in memory, bounded.
  --git     the lines every commit added, all refs (or --branch B), commits since T (git's --since)
  --stdin   scan standard input
  --baseline FILE  report only findings not in FILE; --update-baseline writes FILE instead
  --config FILE    user detectors and allow rules (YAML, see docs/secrets.md)
  --redact         show no character of a secret (default: its first 4, then ***)
  --jobs N|auto    scan files on N threads, this one and N-1 workers (auto: one per CPU);
                   trees under 64 MiB, --git and --stdin stay on one thread
  a line with portcullis:allow is not reported.
  exit codes: 0 nothing found, 1 findings, 2 usage/config error, or an input not scanned
              (unreadable, a worker died on it) or not fully scanned`
export const LINT_USAGE = `usage: portcullis lint SPEC|URL [--format text|json|sarif|junit] [--output FILE]
         [--fail-on critical|high|medium|low|info] [--min-score N] [--rules FILE]
         [--gateway portcullis.yaml] [--verbose]
  audits an OpenAPI 3.0/3.1 or Swagger 2.0 document for security design flaws (docs/cli/lint.md);
  --gateway also checks which protections a gateway config really applies to each operation.
  --fail-on SEV    exit 1 on findings (and gateway gaps) at or above SEV (default high)
  --min-score N    exit 1 when the score (0-100) is below N
  --rules FILE     per-rule settings: rules: { rule-id: off | critical | high | medium | low | info }
  --verbose        list every location (text output shows 5 per finding)
exit codes: 0 ok, 1 findings at or above --fail-on or score below --min-score, 2 usage, spec or config error`

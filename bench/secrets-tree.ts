// biome-ignore-all lint/suspicious/noTemplateCurlyInString: placeholders like ${VAR} are test data here
/**
 * The synthetic tree `npm run bench:secrets` scans: files shaped like a real repository's, so the
 * scanner meets the keyword density of real code rather than a stream of `token:` lines.
 *
 * - source (TypeScript, Python, Go): most lines have no detector keyword; about one line in 40
 *   is a realistic near-miss (`const token = req.headers.authorization`, `password:
 *   process.env.DB_PASSWORD`, `Authorization: \`Bearer ${token}\``, a docs URL in a comment);
 * - JSON fixtures (API records with ids, e-mails, URLs, timestamps);
 * - logs: nginx combined format (a referer URL on every line) and pino JSON lines;
 * - minified JS bundles: a few lines of 50–500 KB, with URLs and SVG data URIs;
 * - lockfiles: package-lock.json (sha512 integrity base64 on every third line), yarn.lock, go.sum;
 * - a few .env files, `.env.example` files of placeholders, GCP service-account JSON files.
 *
 * Keys of 35 providers are planted in all of these contexts (an assignment in code, a JSON field,
 * a query string in an access log, a string in a minified bundle, a PEM in a JSON string). The
 * ground truth is the list of plants: provider, file and line range. Seeded: the same seed makes
 * the same tree.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Fakes } from '../src/secrets/testing/fakes.js'
import { prng } from '../src/util/prng.js'

export interface Plant {
  provider: string
  /** Path relative to the tree's root, `/`-separated. */
  file: string
  /** 1-based first and last line of the planted value. */
  line: number
  endLine: number
  /** True when secretlint's recommended preset has a rule for this provider. */
  secretlint: boolean
}

export interface Tree {
  files: number
  bytes: number
  plants: Plant[]
  /** Bytes per kind of file. */
  kinds: Record<string, number>
}

type Ctx = 'code' | 'json' | 'query' | 'logmsg' | 'minified' | 'env'

interface KeyMaker {
  provider: string
  /** The name it is assigned to (what keyed detectors and secretlint's AWS rule need). */
  name: string
  value: () => string
  /** Contexts the value can appear in (multi-line values: not in a log line or a query string). */
  ctx?: readonly Ctx[]
  secretlint: boolean
}

/**
 * Generates the tree under `dir` until it holds `targetBytes`. Returns the ground truth.
 */
export function buildTree(dir: string, targetBytes: number, seed = 2026): Tree {
  const rand = prng(seed)
  const f = new Fakes(seed)
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T
  const chance = (p: number) => rand() < p

  const b64json = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64')
  const opsToken = () => {
    // A 1Password service account token: ops_ + base64 of a JSON object (ends in `fQ==`).
    let o = {
      signInAddress: 'my.1password.com',
      userAuth: { method: 'SRPg-4096', alg: 'PBES2g-HS256', iterations: 650000, salt: f.chars('w', 22) },
      email: `${f.chars('l', 12)}@1passwordserviceaccounts.com`,
      srpX: f.chars('h', 64),
      muk: { alg: 'A256GCM', ext: true, k: f.chars('w', 43), key_ops: ['encrypt', 'decrypt'], kty: 'oct' },
      secretKey: `A3-${f.chars('u', 6)}-${f.chars('u', 6)}-${f.chars('u', 5)}`,
      deviceUuid: f.chars('l', 26),
      pad: '',
    }
    while (JSON.stringify(o).length % 3 !== 1) o = { ...o, pad: `${o.pad}x` }
    return `ops_${b64json(o)}`
  }
  const keys: KeyMaker[] = [
    { provider: 'github', name: 'githubToken', value: () => f.crcToken('ghp_'), secretlint: true },
    {
      provider: 'github-fine-grained',
      name: 'GH_PAT',
      value: () => `github_pat_${f.chars('a', 22)}_${f.chars('a', 59)}`,
      secretlint: true,
    },
    { provider: 'gitlab', name: 'GITLAB_TOKEN', value: () => `glpat-${f.chars('w', 20)}`, secretlint: true },
    { provider: 'npm', name: 'NPM_TOKEN', value: () => f.crcToken('npm_'), secretlint: true },
    {
      provider: 'aws',
      name: 'AWS_ACCESS_KEY_ID',
      value: () => `AKIA${f.chars('B32', 16)}`,
      secretlint: true,
    },
    {
      provider: 'aws-secret',
      name: 'AWS_SECRET_ACCESS_KEY',
      value: () => f.chars('b', 40),
      ctx: ['code', 'json', 'env'],
      secretlint: true,
    },
    {
      provider: 'slack-token',
      name: 'SLACK_BOT_TOKEN',
      value: () => `xoxb-${f.chars('d', 12)}-${f.chars('d', 13)}-${f.chars('a', 24)}`,
      secretlint: true,
    },
    {
      provider: 'slack-webhook',
      name: 'slackWebhook',
      value: () =>
        `https://hooks.slack.com/services/T${f.chars('u', 9)}/B${f.chars('u', 9)}/${f.chars('a', 24)}`,
      secretlint: true,
    },
    {
      provider: 'sendgrid',
      name: 'SENDGRID_API_KEY',
      value: () => `SG.${f.chars('w', 22)}.${f.chars('w', 43)}`,
      secretlint: true,
    },
    { provider: 'stripe', name: 'stripeKey', value: () => `sk_live_${f.chars('a', 24)}`, secretlint: true },
    {
      provider: 'shopify',
      name: 'SHOPIFY_TOKEN',
      value: () => `shpat_${f.chars('h', 32)}`,
      secretlint: true,
    },
    {
      provider: 'openai',
      name: 'OPENAI_API_KEY',
      value: () => `sk-proj-${f.chars('w', 74)}T3BlbkFJ${f.chars('w', 74)}`,
      secretlint: true,
    },
    {
      provider: 'anthropic',
      name: 'ANTHROPIC_API_KEY',
      value: () => `sk-ant-api03-${f.chars('w', 93)}AA`,
      secretlint: true,
    },
    { provider: 'groq', name: 'GROQ_API_KEY', value: () => `gsk_${f.chars('a', 52)}`, secretlint: true },
    { provider: 'huggingface', name: 'HF_TOKEN', value: () => `hf_${f.chars('A', 34)}`, secretlint: true },
    { provider: 'linear', name: 'LINEAR_KEY', value: () => `lin_api_${f.chars('a', 40)}`, secretlint: true },
    {
      provider: 'notion',
      name: 'NOTION_TOKEN',
      value: () => `ntn_${f.chars('d', 11)}${f.chars('a', 35)}`,
      secretlint: true,
    },
    { provider: 'vault', name: 'VAULT_TOKEN', value: () => `hvs.${f.chars('w', 95)}`, secretlint: true },
    {
      provider: 'databricks',
      name: 'DATABRICKS_TOKEN',
      value: () => `dapi${f.chars('h', 32)}`,
      secretlint: true,
    },
    {
      provider: 'dockerhub',
      name: 'DOCKER_PAT',
      value: () => `dckr_pat_${f.chars('w', 27)}`,
      secretlint: true,
    },
    { provider: 'figma', name: 'FIGMA_TOKEN', value: () => `figd_${f.chars('w', 43)}`, secretlint: true },
    {
      provider: 'grafana',
      name: 'GRAFANA_SA_TOKEN',
      value: () => `glsa_${f.chars('a', 32)}_${f.chars('h', 8)}`,
      secretlint: true,
    },
    {
      provider: 'tailscale',
      name: 'TS_AUTHKEY',
      value: () => `tskey-auth-${f.chars('a', 17)}-${f.chars('a', 32)}`,
      secretlint: true,
    },
    {
      provider: 'vercel',
      name: 'VERCEL_TOKEN',
      value: () => `${pick(['vcp', 'vci', 'vck'])}_${f.chars('a', 56)}`,
      secretlint: true,
    },
    {
      provider: 'cloudflare',
      name: 'CF_TOKEN',
      value: () => `${pick(['cfut', 'cfat', 'cfk'])}_${f.chars('a', 40)}${f.chars('h', 8)}`,
      secretlint: true,
    },
    { provider: '1password', name: 'OP_SERVICE_ACCOUNT_TOKEN', value: opsToken, secretlint: true },
    {
      provider: 'postgres',
      name: 'DATABASE_URL',
      value: () => `postgres://app_${f.chars('L', 4)}:${f.chars('a', 18)}@db-${int(9)}.internal:5432/orders`,
      ctx: ['code', 'json', 'env', 'logmsg', 'minified'],
      secretlint: true,
    },
    {
      provider: 'basic-auth-url',
      name: 'mirrorUrl',
      value: () => `https://deploy-${f.chars('L', 5)}:${f.chars('a', 20)}@artifacts.example.net/repo`,
      ctx: ['code', 'json', 'env', 'logmsg', 'minified'],
      secretlint: true,
    },
    {
      provider: 'private-key',
      name: 'privateKey',
      value: () => f.pem(pick(['rsa', 'ec', 'pkcs8'] as const)).trimEnd(),
      ctx: ['code', 'json', 'env'],
      secretlint: true,
    },
    // Providers secretlint's recommended preset has no rule for.
    {
      provider: 'mailchimp',
      name: 'MAILCHIMP_KEY',
      value: () => `${f.chars('h', 32)}-us${1 + int(20)}`,
      secretlint: false,
    },
    {
      provider: 'twilio',
      name: 'TWILIO_API_KEY',
      value: () => `SK${f.chars('h', 32)}`,
      ctx: ['code', 'json', 'env'],
      secretlint: false,
    },
    {
      provider: 'discord',
      name: 'discordWebhook',
      value: () => `https://discord.com/api/webhooks/${f.chars('d', 18)}/${f.chars('w', 68)}`,
      secretlint: false,
    },
    {
      provider: 'telegram',
      name: 'TELEGRAM_BOT_TOKEN',
      value: () => `${f.chars('d', 10)}:AA${f.chars('w', 33)}`,
      secretlint: false,
    },
    {
      provider: 'pypi',
      name: 'PYPI_TOKEN',
      value: () => `pypi-AgEIcHlwaS5vcmc${f.chars('w', 70)}`,
      secretlint: false,
    },
    {
      provider: 'sentry',
      name: 'SENTRY_AUTH_TOKEN',
      value: () => `sntryu_${f.chars('h', 64)}`,
      secretlint: false,
    },
    {
      provider: 'digitalocean',
      name: 'DO_TOKEN',
      value: () => `dop_v1_${f.chars('h', 64)}`,
      secretlint: false,
    },
    {
      provider: 'azure-storage',
      name: 'AZURE_STORAGE_CONNECTION_STRING',
      value: () =>
        `DefaultEndpointsProtocol=https;AccountName=${f.chars('l', 12)};AccountKey=${f.chars('b', 86)}==;EndpointSuffix=core.windows.net`,
      ctx: ['code', 'json', 'env'],
      secretlint: false,
    },
    {
      provider: 'heroku',
      name: 'HEROKU_API_KEY',
      value: () => `HRKU-${f.chars('w', 60)}`,
      secretlint: false,
    },
  ]

  // ---- vocabulary ------------------------------------------------------------------------------
  const nouns =
    'order customer invoice payment shipment account session request response handler service client server config value result error status item list map index count total user cache queue event message channel product price tax discount cart address region zone tenant project report metric span trace job task worker batch record entry page cursor filter query schema model view route path header body stream buffer chunk file folder upload image profile avatar comment review rating vendor warehouse stock inventory refund dispute ledger balance transfer webhook notification email phone device locale currency timezone'.split(
      ' ',
    )
  const verbs =
    'get set load save fetch update create delete find list parse format build render validate normalize compute apply resolve merge emit handle send read write open close start stop retry flush sync map reduce filter sort group check'.split(
      ' ',
    )
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)
  const ident = () => pick(nouns) + (chance(0.5) ? cap(pick(nouns)) : '')
  const fn = () => pick(verbs) + cap(pick(nouns)) + (chance(0.3) ? cap(pick(nouns)) : '')
  const num = () => String(int(chance(0.8) ? 100 : 100000))
  const str = () => `${pick(nouns)}${chance(0.4) ? `-${pick(nouns)}` : ''}`
  const host = () => pick(['api', 'app', 'cdn', 'auth', 'docs', 'static', 'img'])
  const url = () =>
    `https://${host()}.${pick(['example.com', 'acme.io', 'shop.example.org', 'internal.test'])}/${pick(nouns)}/${pick(nouns)}${chance(0.3) ? `?page=${num()}` : ''}`

  // Near-misses: what real code says about credentials without holding one.
  const nearMissTs = [
    () => `  const token = req.headers.authorization?.slice(7) ?? ''`,
    () => `  if (!user.password) throw new ValidationError('password is required')`,
    () => `    password: process.env.DB_PASSWORD,`,
    () => `  const secretName = '${pick(['prod', 'staging'])}/${pick(nouns)}/db'`,
    () => `    headers: { Authorization: \`Bearer \${token}\` },`,
    () => `  // see ${url()} for the details`,
    () => `  const apiKey = config.get('${pick(nouns)}.apiKey')`,
    () => `import { verifyToken, signToken } from '../auth/token.js'`,
    () => `    token_type: 'bearer',`,
    () => `  expect(res.body.access_token).toBeDefined()`,
    () => `  const hash = await bcrypt.hash(password, 12)`,
    () => `  await secretsManager.getSecretValue({ SecretId: ${ident()}Arn })`,
    () => `  const { accessKeyId, secretAccessKey } = await sts.assumeRole(params)`,
    () => `  logger.warn({ ${ident()}Id }, 'token expired, refreshing')`,
    () => `  const res = await fetch(\`${url()}\`, { method: 'POST' })`,
    () => `    credentials: 'include',`,
    () => `  private readonly cardNumberMask = '**** **** **** ####'`,
    () => `  // TODO: rotate the signing secret every 90 days (key-value store)`,
    () => `  const ${ident()}Token = crypto.randomBytes(32).toString('hex')`,
    () => `  if (secret.length < 32) throw new Error('secret too short')`,
  ]
  const nearMissPy = [
    () => `    password = os.environ["DB_PASSWORD"]`,
    () => `    token = request.headers.get("Authorization", "").removeprefix("Bearer ")`,
    () => `    # docs: ${url()}`,
    () => `    api_key = settings.${pick(nouns).toUpperCase()}_API_KEY`,
    () => `    secret_name = f"{env}/${pick(nouns)}/credentials"`,
    () => `    resp = requests.get("${url()}", timeout=10)`,
  ]
  const nearMissGo = [
    () => `\ttoken := r.Header.Get("Authorization")`,
    () => `\tpassword := os.Getenv("DB_PASSWORD")`,
    () => `\t// See ${url()}`,
    () => `\treq, err := http.NewRequest("GET", "${url()}", nil)`,
    () =>
      `\tsecret, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})`,
  ]

  // ---- files ---------------------------------------------------------------------------------
  function tsLine(indent: string): string {
    switch (int(14)) {
      case 0:
        return `${indent}const ${ident()} = await ${ident()}.${fn()}(${ident()}, { ${ident()}: ${num()} })`
      case 1:
        return `${indent}if (${ident()}.${ident()} === ${num()}) return ${ident()}`
      case 2:
        return `${indent}for (const ${pick(nouns)} of ${ident()}s) ${fn()}(${pick(nouns)})`
      case 3:
        return `${indent}// ${pick(verbs)} the ${pick(nouns)} before we ${pick(verbs)} the ${pick(nouns)} ${pick(nouns)}`
      case 4:
        return `${indent}throw new ${cap(pick(nouns))}Error(\`${pick(verbs)} ${pick(nouns)} \${${ident()}.id} failed\`)`
      case 5:
        return `${indent}${ident()}.${fn()}(${ident()}, '${str()}')`
      case 6:
        return `${indent}return { ${ident()}, ${ident()}: ${ident()}.${ident()} ?? ${num()} }`
      case 7:
        return `${indent}let ${ident()} = ${ident()}.length > ${num()} ? ${ident()}.slice(0, ${num()}) : []`
      case 8:
        return `${indent}this.${ident()} = new Map<string, ${cap(ident())}>()`
      case 9:
        return `${indent}const { ${ident()}, ${ident()} } = ${ident()}`
      case 10:
        return `${indent}${ident()}.push({ id: ${ident()}.id, ${ident()}: ${num()}, status: '${pick(['active', 'pending', 'closed'])}' })`
      case 11:
        return `${indent}await this.${ident()}.${fn()}(${ident()}Id, ${ident()})`
      case 12:
        return ''
      default:
        return `${indent}}`
    }
  }
  function source(lang: 'ts' | 'py' | 'go', lines: number): string[] {
    const out: string[] = []
    if (lang === 'ts') {
      for (let i = 0; i < 6; i++)
        out.push(`import { ${cap(ident())}, ${fn()} } from '../${pick(nouns)}/${pick(nouns)}.js'`)
      while (out.length < lines) {
        out.push('', `/** ${cap(pick(verbs))}s the ${pick(nouns)} of a ${pick(nouns)}. */`)
        out.push(
          `export async function ${fn()}(${ident()}: ${cap(ident())}, ${ident()}: number): Promise<void> {`,
        )
        const body = 5 + int(30)
        for (let i = 0; i < body; i++)
          out.push(chance(1 / 40) ? pick(nearMissTs)() : tsLine(chance(0.5) ? '  ' : '    '))
        out.push('}')
      }
    } else if (lang === 'py') {
      out.push('import json', 'import os', `from .${pick(nouns)} import ${cap(ident())}`)
      while (out.length < lines) {
        out.push('', '', `def ${pick(verbs)}_${pick(nouns)}(${pick(nouns)}, ${pick(nouns)}=None):`)
        out.push(`    """${cap(pick(verbs))} the ${pick(nouns)}."""`)
        const body = 4 + int(20)
        for (let i = 0; i < body; i++) {
          if (chance(1 / 40)) out.push(pick(nearMissPy)())
          else
            out.push(
              pick([
                () => `    ${pick(nouns)} = ${pick(nouns)}.get("${pick(nouns)}", ${num()})`,
                () => `    if ${pick(nouns)} is None:`,
                () => `        return []`,
                () => `    for ${pick(nouns)} in ${pick(nouns)}s:`,
                () => `        ${pick(nouns)}.${pick(verbs)}(${pick(nouns)}_id=${num()})`,
                () => `    # ${pick(verbs)} ${pick(nouns)} ${pick(nouns)}`,
                () => `    return {"${pick(nouns)}": ${pick(nouns)}, "count": len(${pick(nouns)}s)}`,
              ])(),
            )
        }
      }
    } else {
      out.push(`package ${pick(nouns)}`, '', 'import (', '\t"context"', '\t"fmt"', '\t"net/http"', ')')
      while (out.length < lines) {
        out.push('', `// ${cap(fn())} ${pick(verbs)}s a ${pick(nouns)}.`)
        out.push(`func ${cap(fn())}(ctx context.Context, ${pick(nouns)} *${cap(ident())}) error {`)
        const body = 4 + int(20)
        for (let i = 0; i < body; i++) {
          if (chance(1 / 40)) out.push(pick(nearMissGo)())
          else
            out.push(
              pick([
                () => `\t${pick(nouns)}, err := ${pick(nouns)}.${cap(fn())}(ctx, ${num()})`,
                () => `\tif err != nil {`,
                () => `\t\treturn fmt.Errorf("${pick(verbs)} ${pick(nouns)}: %w", err)`,
                () => '\t}',
                () => `\tfor _, ${pick(nouns)} := range ${pick(nouns)}s {`,
                () => `\t\t${pick(nouns)}.${cap(ident())} = ${num()}`,
              ])(),
            )
        }
        out.push('\treturn nil', '}')
      }
    }
    return out
  }
  function jsonFixture(records: number): string[] {
    const out = ['[']
    for (let i = 0; i < records; i++) {
      out.push(
        '  {',
        `    "id": ${int(1e7)},`,
        `    "uuid": "${f.uuid()}",`,
        `    "name": "${cap(pick(nouns))} ${cap(pick(nouns))}",`,
        `    "email": "${pick(nouns)}.${pick(nouns)}${int(99)}@example.com",`,
        `    "created_at": "2025-${String(1 + int(12)).padStart(2, '0')}-${String(1 + int(28)).padStart(2, '0')}T${String(int(24)).padStart(2, '0')}:${String(int(60)).padStart(2, '0')}:00Z",`,
        `    "status": "${pick(['active', 'pending', 'archived', 'failed'])}",`,
        `    "amount": ${int(100000) / 100},`,
        `    "currency": "${pick(['EUR', 'USD', 'GBP'])}",`,
        `    "url": "${url()}",`,
        `    "tags": ["${pick(nouns)}", "${pick(nouns)}"],`,
        `    "${pick(nouns)}": { "${pick(nouns)}": ${int(1000)}, "${pick(nouns)}": "${str()}" }`,
        i === records - 1 ? '  }' : '  },',
      )
    }
    out.push(']')
    return out
  }
  const agents = [
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
    'curl/8.5.0',
    'okhttp/4.12.0',
  ]
  function nginxLine(q?: string): string {
    const ip = `10.${int(255)}.${int(255)}.${int(255)}`
    const path = `/api/v1/${pick(nouns)}s/${int(1e6)}`
    return `${ip} - - [${String(1 + int(28)).padStart(2, '0')}/Mar/2026:${String(int(24)).padStart(2, '0')}:${String(int(60)).padStart(2, '0')}:${String(int(60)).padStart(2, '0')} +0000] "${pick(['GET', 'GET', 'POST', 'PUT'])} ${path}${q ?? (chance(0.3) ? `?page=${int(50)}&limit=50` : '')} HTTP/1.1" ${pick([200, 200, 200, 201, 204, 304, 404, 500])} ${int(50000)} "${url()}" "${pick(agents)}"`
  }
  function pinoLine(msg?: string): string {
    return `{"level":${pick([30, 30, 30, 40, 50])},"time":${1760000000000 + int(1e9)},"pid":${1000 + int(9000)},"hostname":"api-${f.chars('l', 5)}","reqId":"req-${f.chars('l', 6)}","req":{"method":"${pick(['GET', 'POST'])}","url":"/api/v1/${pick(nouns)}s/${int(1e6)}","remoteAddress":"10.0.${int(255)}.${int(255)}"},"res":{"statusCode":${pick([200, 201, 404, 500])}},"responseTime":${int(5000) / 10},"msg":"${msg ?? `${pick(verbs)} ${pick(nouns)} completed`}"}`
  }
  function logFile(lines: number): string[] {
    const nginx = chance(0.5)
    const out: string[] = []
    for (let i = 0; i < lines; i++) out.push(nginx ? nginxLine() : pinoLine())
    return out
  }
  const svg = () =>
    Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M${int(24)} ${int(24)}l${int(9)} ${int(9)}h-${int(9)}z" fill="#${f.chars('h', 6)}"/></svg>`,
    ).toString('base64')
  function minifiedLine(bytes: number): string {
    const parts: string[] = []
    let n = 0
    const v = () => pick(['e', 't', 'n', 'r', 'o', 'i', 'a', 's', 'u', 'c', 'l', 'f', 'd', 'p', 'h'])
    while (n < bytes) {
      const p = pick([
        () => `function ${v()}(${v()},${v()}){return ${v()}.${ident()}(${v()})||${v()}[${v()}]}`,
        () => `var ${v()}=${v()}(${int(999)}),${v()}=${v()}.n(${v()});`,
        () => `${v()}.${ident()}=function(${v()}){this.${ident()}=${v()}.${ident()}||"${str()}"};`,
        () => `if(!${v()}.${ident()})throw new Error("${pick(verbs)} ${pick(nouns)}");`,
        () => `${v()}.exports={${ident()}:"${str()}",${ident()}:${int(9999)},${ident()}:!0};`,
        () => `fetch("${url()}").then(function(${v()}){return ${v()}.json()});`,
        () => `${v()}.${ident()}="data:image/svg+xml;base64,${svg()}";`,
        () => `case ${int(99)}:${v()}=${v()}.${ident()};break;`,
      ])()
      parts.push(p)
      n += p.length
    }
    return parts.join('')
  }
  function minified(lines: number, perLine: number): string[] {
    const out = ['/*! bundle.js | MIT */']
    for (let i = 0; i < lines; i++) out.push(minifiedLine(perLine))
    out.push('//# sourceMappingURL=bundle.js.map')
    return out
  }
  function packageLock(n: number): string[] {
    const out = [
      '{',
      '  "name": "app",',
      '  "version": "1.0.0",',
      '  "lockfileVersion": 3,',
      '  "packages": {',
    ]
    for (let i = 0; i < n; i++) {
      const name = `${pick(nouns)}-${pick(nouns)}${i}`
      const ver = `${int(9)}.${int(30)}.${int(20)}`
      out.push(
        `    "node_modules/${name}": {`,
        `      "version": "${ver}",`,
        `      "resolved": "https://registry.npmjs.org/${name}/-/${name}-${ver}.tgz",`,
        `      "integrity": "sha512-${f.chars('b', 86)}==",`,
        chance(0.3) ? `      "dev": true,` : `      "license": "MIT",`,
        `      "engines": { "node": ">=${14 + int(8)}" }`,
        i === n - 1 ? '    }' : '    },',
      )
    }
    out.push('  }', '}')
    return out
  }
  function yarnLock(n: number): string[] {
    const out = ['# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.', '# yarn lockfile v1', '']
    for (let i = 0; i < n; i++) {
      const name = `${pick(nouns)}-${pick(nouns)}${i}`
      const ver = `${int(9)}.${int(30)}.${int(20)}`
      out.push(
        `"${name}@^${ver}":`,
        `  version "${ver}"`,
        `  resolved "https://registry.yarnpkg.com/${name}/-/${name}-${ver}.tgz#${f.chars('h', 40)}"`,
        `  integrity sha512-${f.chars('b', 86)}==`,
        '',
      )
    }
    return out
  }
  function goSum(n: number): string[] {
    const out: string[] = []
    for (let i = 0; i < n; i++) {
      const mod = `github.com/${pick(nouns)}/${pick(nouns)}-${pick(nouns)}`
      const ver = `v${int(3)}.${int(30)}.${int(20)}`
      out.push(`${mod} ${ver} h1:${f.chars('b', 43)}=`, `${mod} ${ver}/go.mod h1:${f.chars('b', 43)}=`)
    }
    return out
  }
  function envExample(): string[] {
    return [
      '# Copy to .env and fill in',
      'DATABASE_URL=postgres://user:password@localhost:5432/app',
      'STRIPE_KEY=sk_live_your_stripe_key_here',
      'GITHUB_TOKEN=<your-token>',
      'AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}',
      'SESSION_SECRET=changeme',
      'OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    ]
  }

  // ---- planting ------------------------------------------------------------------------------
  const render = (k: KeyMaker, v: string, ctx: Ctx, lang: string): string => {
    const jsonStr = (s: string) => JSON.stringify(s).slice(1, -1)
    switch (ctx) {
      case 'code':
        if (lang === 'py') return `${k.name.toUpperCase()} = "${v.includes('\n') ? jsonStr(v) : v}"`
        if (lang === 'go') return `\t${k.name} := \`${v}\``
        return v.includes('\n') ? `  const ${k.name} = \`${v}\`` : `  const ${k.name} = '${v}'`
      case 'json':
        return `    "${k.name}": "${jsonStr(v)}",`
      case 'env':
        return v.includes('\n') ? `${k.name.toUpperCase()}="${v}"` : `${k.name.toUpperCase()}=${v}`
      case 'query':
        return nginxLine(`?${k.name.toLowerCase()}=${encodeURIComponent(v)}&page=1`)
      case 'logmsg':
        return pinoLine(`config loaded ${k.name}=${v}`)
      case 'minified':
        return `${k.name}:"${v}",`
    }
  }
  const plants: Plant[] = []
  const kinds: Record<string, number> = {}
  let bytes = 0
  let files = 0
  let keyIdx = 0
  const nextKey = (ctx: Ctx): KeyMaker => {
    for (;;) {
      const k = keys[keyIdx++ % keys.length] as KeyMaker
      if ((k.ctx ?? ['code', 'json', 'env', 'query', 'logmsg', 'minified']).includes(ctx)) return k
    }
  }
  /** Inserts a planted line at a random line of `lines`; returns its 0-based index. */
  const plantInto = (lines: string[], file: string, ctx: Ctx, lang: string, from = 1) => {
    const k = nextKey(ctx)
    const v = k.value()
    const text = render(k, v, ctx, lang)
    const at = from + int(Math.max(1, lines.length - from - 1))
    lines.splice(at, 0, text)
    const offset = lines.slice(0, at).reduce((n, l) => n + l.split('\n').length, 0)
    plants.push({
      provider: k.provider,
      file,
      line: offset + 1,
      endLine: offset + text.split('\n').length,
      secretlint: k.secretlint,
    })
  }
  const write = (rel: string, kind: string, lines: string[]) => {
    const text = `${lines.join('\n')}\n`
    const abs = join(dir, rel)
    mkdirSync(join(abs, '..'), { recursive: true })
    writeFileSync(abs, text)
    const n = Buffer.byteLength(text)
    bytes += n
    kinds[kind] = (kinds[kind] ?? 0) + n
    files++
  }

  // Shares of the tree's bytes by kind; the next file is of the kind furthest below its share.
  const shares: [string, number][] = [
    ['source', 0.3],
    ['json', 0.15],
    ['log', 0.2],
    ['minified', 0.2],
    ['lockfile', 0.15],
  ]
  let seq = 0
  while (bytes < targetBytes) {
    const pkg = `packages/${pick(nouns)}-${Math.floor(seq / 40)}`
    const kind = shares.reduce((a, b) =>
      b[1] * (bytes + 1) - (kinds[b[0]] ?? 0) > a[1] * (bytes + 1) - (kinds[a[0]] ?? 0) ? b : a,
    )[0]
    const i = seq++
    if (kind === 'source') {
      const lang = pick(['ts', 'ts', 'ts', 'py', 'go'] as const)
      const lines = source(lang, 150 + int(900))
      const rel = `${pkg}/src/${pick(nouns)}-${i}.${lang}`
      if (chance(0.12)) plantInto(lines, rel, 'code', lang, 8)
      write(rel, 'source', lines)
    } else if (kind === 'json') {
      const lines = jsonFixture(50 + int(400))
      const rel = `${pkg}/test/fixtures/${pick(nouns)}s-${i}.json`
      if (chance(0.12)) {
        // A field inside a record: right after a `{` line, so the file stays valid JSON.
        const k = nextKey('json')
        const text = render(k, k.value(), 'json', 'json')
        let at = 2 + int(lines.length - 4)
        while (lines[at - 1] !== '  {') at--
        lines.splice(at, 0, text)
        plants.push({
          provider: k.provider,
          file: rel,
          line: at + 1,
          endLine: at + 1,
          secretlint: k.secretlint,
        })
      }
      write(rel, 'json', lines)
    } else if (kind === 'log') {
      const lines = logFile(2000 + int(6000))
      const rel = `logs/${pick(['api', 'worker', 'gateway'])}-${i}.log`
      if (chance(0.5)) plantInto(lines, rel, lines[0]?.startsWith('{') ? 'logmsg' : 'query', 'log')
      write(rel, 'log', lines)
    } else if (kind === 'minified') {
      const lines = minified(1 + int(6), 50_000 + int(450_000))
      const rel = `${pkg}/dist/bundle-${i}.min.js`
      if (chance(0.5)) {
        // Inside a long line: between two statements of the bundle.
        const k = nextKey('minified')
        const li = 1 + int(lines.length - 2)
        const line = lines[li] as string
        const cut = line.indexOf(';', int(line.length))
        const at = cut < 0 ? line.length : cut + 1
        lines[li] =
          `${line.slice(0, at)}var cfg={${render(k, k.value(), 'minified', 'js')}v:1};${line.slice(at)}`
        plants.push({
          provider: k.provider,
          file: rel,
          line: li + 1,
          endLine: li + 1,
          secretlint: k.secretlint,
        })
      }
      write(rel, 'minified', lines)
    } else {
      const which = rand()
      if (which < 0.5) write(`${pkg}/package-lock-${i}.json`, 'lockfile', packageLock(200 + int(1500)))
      else if (which < 0.8) write(`${pkg}/yarn-${i}.lock`, 'lockfile', yarnLock(200 + int(1500)))
      else write(`${pkg}/go-${i}.sum`, 'lockfile', goSum(200 + int(1500)))
    }
    // Now and then: configuration files.
    if (i % 97 === 0) {
      const lines = ['NODE_ENV=production', `PORT=${3000 + int(100)}`, `LOG_LEVEL=info`, `REGION=eu-west-1`]
      const rel = `${pkg}/.env.${pick(['production', 'staging'])}`
      plantInto(lines, rel, 'env', 'env', 1)
      write(rel, 'config', lines)
      write(`${pkg}/.env.example`, 'config', envExample())
    }
    if (i % 331 === 0) {
      const pem = f.pem('pkcs8')
      const sa = {
        type: 'service_account',
        project_id: `${pick(nouns)}-${f.chars('l', 6)}`,
        private_key_id: f.chars('h', 40),
        private_key: pem,
        client_email: `deployer@${pick(nouns)}.iam.gserviceaccount.com`,
        client_id: f.chars('d', 21),
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: 'https://oauth2.googleapis.com/token',
      }
      const rel = `${pkg}/deploy/service-account-${i}.json`
      const lines = JSON.stringify(sa, null, 2).split('\n')
      // The credential is the file (secretlint reports it at its first line, Portcullis at the key).
      plants.push({
        provider: 'gcp-service-account',
        file: rel,
        line: 1,
        endLine: lines.length,
        secretlint: true,
      })
      write(rel, 'config', lines)
    }
  }
  return { files, bytes, plants, kinds }
}

/**
 * One large file of realistic lines (access logs, JSON lines, lockfile integrity lines), for the
 * streaming memory test: written in 16 MiB appends, never held whole. One GitHub token is planted
 * in the last append; its line number is returned.
 */
export function writeBigFile(
  path: string,
  targetBytes: number,
  seed = 7,
): { bytes: number; plantLine: number } {
  const rand = prng(seed)
  const f = new Fakes(seed)
  const int = (n: number) => Math.floor(rand() * n)
  // A pool of 20,000 varied lines, cycled with a changing prefix: realistic density, fast to write.
  const pool: string[] = []
  for (let i = 0; i < 20_000; i++) {
    const r = rand()
    pool.push(
      r < 0.5
        ? `10.${int(255)}.${int(255)}.${int(255)} - - [12/Mar/2026:10:${int(60)}:${int(60)} +0000] "GET /api/v1/orders/${int(1e6)}?page=${int(9)} HTTP/1.1" 200 ${int(50000)} "https://app.example.com/orders" "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0"`
        : r < 0.9
          ? `{"level":30,"time":${1760000000000 + int(1e9)},"reqId":"req-${f.chars('l', 6)}","msg":"request completed","url":"/api/v1/items/${int(1e6)}","responseTime":${int(900)}}`
          : `  "integrity": "sha512-${f.chars('b', 86)}==",`,
    )
  }
  const CHUNK = 16 * 1024 * 1024
  const fd = openSync(path, 'w')
  let written = 0
  let lines = 0
  let plantLine = 0
  try {
    for (let round = 0; written < targetBytes; round++) {
      const parts: string[] = []
      let n = 0
      while (n < CHUNK) {
        const line = `${round % 1000} ${pool[(round * 7919 + parts.length) % pool.length]}`
        parts.push(line)
        n += line.length + 1
      }
      if (written + n >= targetBytes) {
        const at = parts.length >> 1
        parts.splice(at, 0, `{"level":50,"msg":"upstream said: bad credentials ${f.crcToken('ghp_')}"}`)
        plantLine = lines + at + 1
      }
      const buf = Buffer.from(`${parts.join('\n')}\n`)
      writeSync(fd, buf)
      written += buf.length
      lines += parts.length
    }
  } finally {
    closeSync(fd)
  }
  return { bytes: written, plantLine }
}

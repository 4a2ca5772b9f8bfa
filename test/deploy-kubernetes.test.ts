/**
 * The Kubernetes manifests (deploy/kubernetes/) and the Helm chart (deploy/helm/portcullis/,
 * rendered without helm by test/helpers/helm-render.ts with several value sets), checked against
 * the Kubernetes API schemas: kubernetes-models' validators (types, required fields, enums,
 * formats) and, for unknown fields (what `kubeconform -strict` catches: a misspelt field is
 * silently dropped by the API server), TypeScript's excess property check against the same
 * package's interfaces. Then what the schemas cannot know: probes on the declared admin port,
 * selectors that match the pods, the hardening, and the gateway config in the ConfigMap loading
 * as `portcullis config check` would.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { parseAllDocuments } from 'yaml'
import { loadGatewayConfig } from '../src/config/policy-checks.js'
import { Chart } from './helpers/helm-render.js'

const ROOT = new URL('../../', import.meta.url).pathname
const PLAIN = join(ROOT, 'deploy/kubernetes')
const CHART = join(ROOT, 'deploy/helm/portcullis')

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML
type Doc = Record<string, any>

/** Each kind the project ships: its validator and its TypeScript interface. */
const KINDS: Record<string, { model: new (d: never) => { validate(): void }; iface: string; from: string }> =
  {
    'apps/v1/Deployment': { model: Deployment, iface: 'IDeployment', from: 'apps/v1/Deployment' },
    'v1/Service': { model: Service, iface: 'IService', from: 'v1/Service' },
    'v1/ConfigMap': { model: ConfigMap, iface: 'IConfigMap', from: 'v1/ConfigMap' },
    'v1/Secret': { model: Secret, iface: 'ISecret', from: 'v1/Secret' },
    'policy/v1/PodDisruptionBudget': {
      model: PodDisruptionBudget,
      iface: 'IPodDisruptionBudget',
      from: 'policy/v1/PodDisruptionBudget',
    },
  }

function plainManifests(): Doc[] {
  const docs: Doc[] = []
  for (const f of readdirSync(PLAIN).sort()) {
    if (!f.endsWith('.yaml') || f === 'kustomization.yaml') continue
    for (const d of parseAllDocuments(readFileSync(join(PLAIN, f), 'utf8'))) {
      assert.equal(d.errors.length, 0, `${f}: ${d.errors.map((e) => e.message).join('; ')}`)
      const js = d.toJS() as Doc | null
      if (js) docs.push({ ...js, __file: f })
    }
  }
  return docs
}

const chart = new Chart(CHART)
const TOKEN = 'x'.repeat(40)
/** Value sets the chart is rendered with: its defaults and each optional part switched on. */
const VALUE_SETS: Record<string, Record<string, unknown>> = {
  defaults: {},
  'admin token from an existing Secret, secrets mounted, extras': {
    adminToken: { existingSecret: 'my-admin-secret' },
    secretMounts: [{ name: 'jwt-keys', secretName: 'my-jwt-keys', mountPath: '/etc/portcullis/secrets/jwt' }],
    extraEnv: [{ name: 'UPSTREAM_TOKEN', valueFrom: { secretKeyRef: { name: 'up', key: 'token' } } }],
    podAnnotations: { 'example.com/team': 'api' },
    podLabels: { team: 'api' },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gateway', effect: 'NoSchedule' }],
    imagePullSecrets: [{ name: 'registry' }],
    service: { type: 'LoadBalancer', annotations: { 'example.com/lb': 'internal' } },
  },
  'admin token value, Redis, no PDB, no preStop': {
    adminToken: { value: TOKEN },
    redis: { enabled: true },
    podDisruptionBudget: { enabled: false },
    preStopSleepSeconds: 0,
    metrics: { podAnnotations: false },
    replicaCount: 3,
  },
}
const rendered: Record<string, Doc[]> = {}
for (const [name, values] of Object.entries(VALUE_SETS)) {
  rendered[name] = chart.manifests(values).map((d) => ({ ...d, __file: `chart (${name})` }))
}

function kindOf(d: Doc): string {
  return `${d.apiVersion}/${d.kind}`
}

function strip(d: Doc): Doc {
  const { __file: _, ...rest } = d
  return rest
}

/**
 * Runs TypeScript's excess property check over `docs` typed as their kubernetes-models
 * interfaces; resolves the names of the documents it refused, with tsc's messages.
 */
function unknownFields(docs: { name: string; doc: Doc }[]): Map<string, string[]> {
  const dir = join(ROOT, 'dist/.k8s-check')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const imports = new Set<string>()
  const lines: string[] = []
  const at: { name: string; from: number; to: number }[] = []
  for (const { name, doc } of docs) {
    const k = KINDS[kindOf(doc)]
    assert.ok(k, `${name}: no schema for ${kindOf(doc)}`)
    imports.add(`import type { ${k.iface} } from 'kubernetes-models/${k.from}'`)
    const from = lines.length
    lines.push(`export const d${at.length}: ${k.iface} = ${JSON.stringify(strip(doc), null, 1)}`)
    at.push({ name, from, to: from + lines[lines.length - 1]!.split('\n').length })
  }
  const header = [...imports]
  const text = [...header, ...lines].join('\n')
  writeFileSync(join(dir, 'check.ts'), text)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ['check.ts'],
    }),
  )
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  const out = new Map<string, string[]>()
  // check.ts(LINE,COL): error TS2353: Object literal may only specify known properties, …
  const lineStarts: number[] = []
  let n = header.length
  for (const l of lines) {
    lineStarts.push(n)
    n += l.split('\n').length
  }
  for (const m of r.stdout.matchAll(/check\.ts\((\d+),\d+\): error (TS\d+: .*)$/gm)) {
    const line = Number(m[1]) - 1
    let idx = lineStarts.length - 1
    while (idx > 0 && (lineStarts[idx] as number) > line) idx--
    const name = at[idx]?.name ?? '?'
    out.set(name, [...(out.get(name) ?? []), m[2] as string])
  }
  if (r.status !== 0 && out.size === 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`)
  rmSync(dir, { recursive: true, force: true })
  return out
}

/** The gateway's Deployment and its container in a set of manifests. */
function gateway(docs: Doc[]): { dep: Doc; pod: Doc; c: Doc } {
  const dep = docs.find(
    (d) =>
      d.kind === 'Deployment' && d.spec.template.spec.containers.some((c: Doc) => c.name === 'portcullis'),
  )
  assert.ok(dep, 'a Deployment runs the gateway')
  const pod = dep.spec.template
  return { dep, pod, c: pod.spec.containers.find((c: Doc) => c.name === 'portcullis') }
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

const ALL: [string, Doc[]][] = [['deploy/kubernetes', plainManifests()], ...Object.entries(rendered)]

describe('Kubernetes manifests and Helm chart', () => {
  test('every resource validates against the Kubernetes API schemas', () => {
    let n = 0
    for (const [set, docs] of ALL) {
      assert.ok(docs.length >= 4, `${set}: ${docs.length} resources`)
      for (const d of docs) {
        const k = KINDS[kindOf(d)]
        assert.ok(k, `${set} ${d.__file}: unexpected kind ${kindOf(d)}`)
        assert.doesNotThrow(
          () => new k.model(strip(d) as never).validate(),
          `${set} ${d.__file} ${d.kind}/${d.metadata?.name}`,
        )
        n++
      }
    }
    assert.ok(n >= 20, `${n} resources validated`)
  })

  test('no unknown field anywhere (strict), and the check refuses a misspelt or mistyped one', () => {
    const docs = ALL.flatMap(([set, ds]) => ds.map((doc, i) => ({ name: `${set}#${i} ${doc.kind}`, doc })))
    const base = gateway(ALL[0]?.[1] ?? []).dep
    const misspelt = structuredClone(strip(base))
    misspelt.spec.template.spec.containers[0].imagePulPolicy = 'Always'
    const misplaced = structuredClone(strip(base))
    misplaced.spec.template.spec.readinessProbe = { httpGet: { path: '/readyz', port: 'admin' } }
    const mistyped = structuredClone(strip(base))
    mistyped.spec.replicas = 'two'
    const refused = unknownFields([
      ...docs,
      { name: 'bad: misspelt', doc: misspelt },
      { name: 'bad: misplaced', doc: misplaced },
    ])
    assert.deepEqual(
      [...refused.keys()].sort(),
      ['bad: misplaced', 'bad: misspelt'],
      [...refused].map(([k, v]) => `${k}: ${v.join('; ')}`).join('\n'),
    )
    assert.match(refused.get('bad: misspelt')?.join() ?? '', /imagePulPolicy/)
    assert.throws(() => new Deployment(mistyped as never).validate(), /replicas must be integer/)
  })

  for (const [set, docs] of ALL) {
    test(`${set}: probes, selectors, hardening, config`, async () => {
      const { dep, pod, c } = gateway(docs)
      const ports = new Map<string, number>(c.ports.map((p: Doc) => [p.name, p.containerPort]))
      assert.ok(ports.has('http') && ports.has('admin'), 'http and admin ports declared')
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' })
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' })
      // Hardening.
      assert.equal(pod.spec.securityContext.runAsNonRoot, true)
      assert.equal(pod.spec.securityContext.runAsUser, 1000, 'the image user')
      assert.equal(c.securityContext.readOnlyRootFilesystem, true)
      assert.equal(c.securityContext.allowPrivilegeEscalation, false)
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL'])
      assert.equal(pod.spec.automountServiceAccountToken, false)
      // Selectors.
      const labels = pod.metadata.labels as Record<string, string>
      assert.ok(matches(dep.spec.selector.matchLabels, labels))
      for (const s of docs.filter((d) => d.kind === 'Service' && d.metadata.name === dep.metadata.name)) {
        assert.ok(matches(s.spec.selector, labels), 'the Service selects the gateway pods')
        for (const p of s.spec.ports) assert.ok(ports.has(p.targetPort), `Service targetPort ${p.targetPort}`)
        assert.ok(!s.spec.ports.some((p: Doc) => p.targetPort === 'admin'), 'the admin port is not exposed')
      }
      for (const pdb of docs.filter((d) => d.kind === 'PodDisruptionBudget'))
        assert.ok(matches(pdb.spec.selector.matchLabels, labels), 'the PDB covers the gateway pods')
      if (dep.spec.replicas > 1 && set !== 'admin token value, Redis, no PDB, no preStop')
        assert.ok(docs.some((d) => d.kind === 'PodDisruptionBudget'))
      // The drain fits in the grace period: preStop pause + shutdown.drainTimeoutMs (10 s).
      const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0)
      assert.ok(pod.spec.terminationGracePeriodSeconds > preStop + 10)
      // The config volume is a ConfigMap of this set, and its document loads.
      const vol = pod.spec.volumes.find((v: Doc) => v.name === 'config')
      const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === vol.configMap.name)
      assert.ok(cm, 'the mounted ConfigMap is part of the set')
      const mount = c.volumeMounts.find((m: Doc) => m.name === 'config')
      assert.equal(`${mount.mountPath}/portcullis.yaml`, c.args[c.args.indexOf('--config') + 1])
      const env = new Map<string, Doc>(c.env.map((e: Doc) => [e.name, e]))
      const text = cm.data['portcullis.yaml'] as string
      const dir = join(ROOT, 'dist/.k8s-config')
      mkdirSync(dir, { recursive: true })
      const file = join(dir, `${set.replace(/\W+/g, '-')}.yaml`)
      writeFileSync(file, text)
      const loaded = await loadGatewayConfig(file, { env: { PORTCULLIS_ADMIN_TOKEN: TOKEN } })
      assert.deepEqual(loaded.errors, [], `${set}: the ConfigMap's config loads`)
      const config = loaded.config!
      assert.equal(config.admin.host, '0.0.0.0', 'probes reach the admin port from outside the pod')
      assert.equal(ports.get('admin'), config.admin.port)
      assert.equal(ports.get('http'), config.listeners[0]?.port)
      // Secrets: referenced, never written into the ConfigMap.
      if (config.admin.token !== undefined) {
        assert.ok(text.includes(['${env:', 'PORTCULLIS_ADMIN_TOKEN}'].join('')))
        const ref = env.get('PORTCULLIS_ADMIN_TOKEN')?.valueFrom?.secretKeyRef
        assert.ok(ref, 'the token comes from a Secret')
        const made = docs.find((d) => d.kind === 'Secret' && d.metadata.name === ref.name)
        if (made) assert.equal(Buffer.from(made.data[ref.key], 'base64').toString(), TOKEN)
      }
      assert.ok(!text.includes(TOKEN), 'no secret value in the ConfigMap')
      // Redis, when deployed, is what the config's store points at.
      const redisSvc = docs.find((d) => d.kind === 'Service' && d.metadata.name.endsWith('-redis'))
      if (redisSvc && set !== 'deploy/kubernetes') {
        assert.equal(config.stores.backend, 'redis')
        assert.equal(config.stores.redis.url, `redis://${redisSvc.metadata.name}:6379`)
        const redisDep = docs.find(
          (d) => d.kind === 'Deployment' && d.metadata.name === redisSvc.metadata.name,
        )
        assert.ok(matches(redisSvc.spec.selector, redisDep?.spec.template.metadata.labels))
      }
    })
  }

  test('kustomization.yaml lists files that exist', () => {
    const k = parseAllDocuments(readFileSync(join(PLAIN, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as Doc
    for (const r of k.resources as string[]) assert.doesNotThrow(() => readFileSync(join(PLAIN, r)), r)
  })

  test('the chart README documents every value', () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8')
    const keys: string[] = []
    const walk = (o: Doc, prefix: string) => {
      for (const [k, v] of Object.entries(o)) {
        const path = prefix ? `${prefix}.${k}` : k
        // config, resources: free-form documents, documented as a whole.
        if (
          v &&
          typeof v === 'object' &&
          !Array.isArray(v) &&
          Object.keys(v).length > 0 &&
          !/^(config|.*resources)$/.test(path)
        )
          walk(v, path)
        else keys.push(path)
      }
    }
    walk(chart.defaults, '')
    const missing = keys.filter((k) => !readme.includes(`| \`${k}\` |`))
    assert.deepEqual(missing, [])
  })
})

/**
 * The Portcullis dashboard (browser side). Bundled with uPlot by scripts/build-dashboard.mjs into
 * src/dashboard/assets.generated.ts; served by the admin listener under /ui with a strict CSP (no
 * inline script or style, same-origin requests only).
 *
 * Everything shown comes from the admin API through /ui/api/v1/… (the session cookie
 * authenticates; writes carry the CSRF token from /ui/session). Text from the gateway is always
 * put in the page with textContent, never parsed as HTML.
 */
import uPlot from 'uplot'

type Json = Record<string, unknown>

let csrf = ''
let timers: number[] = []
let live: EventSource | undefined

// ---------------------------------------------------------------- DOM helpers

type Child = Node | string | number | undefined | null | false

function h(
  tag: string,
  attrs: Record<string, string | ((e: Event) => void) | undefined> = {},
  ...children: Child[]
): HTMLElement {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue
    if (typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'class') el.className = v
    else el.setAttribute(k, v)
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
  return el
}

function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild)
}

function fmtNum(n: unknown): string {
  return typeof n === 'number' ? n.toLocaleString('en-US') : n === undefined || n === null ? '–' : String(n)
}

function ago(iso: unknown): string {
  if (typeof iso !== 'string') return '–'
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000)
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}

function badge(text: string, kind = ''): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text)
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

async function api(path: string, init: { method?: string; body?: unknown } = {}): Promise<Json> {
  const method = init.method ?? 'GET'
  const headers: Record<string, string> = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrf
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`/ui/api${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  if (res.status === 401) {
    showSignIn('Your session ended. Sign in again.')
    throw new ApiError(401, 'signed out')
  }
  const text = await res.text()
  const body = text === '' ? {} : (JSON.parse(text) as Json)
  if (!res.ok) throw new ApiError(res.status, String(body.detail ?? body.title ?? res.statusText))
  return body
}

// ---------------------------------------------------------------- shell

const PAGES: [string, string, (main: HTMLElement, arg: string) => void][] = [
  ['overview', 'Overview', overview],
  ['live', 'Live requests', livePage],
  ['alerts', 'Alerts', alertsPage],
  ['bans', 'Bans', bansPage],
  ['inventory', 'Inventory', inventoryPage],
  ['ratelimits', 'Rate limits', rateLimitsPage],
  ['audit', 'Audit chain', auditPage],
  ['config', 'Config', configPage],
]

function stopPage(): void {
  for (const t of timers) window.clearInterval(t)
  timers = []
  live?.close()
  live = undefined
}

function every(ms: number, fn: () => void): void {
  fn()
  timers.push(window.setInterval(fn, ms))
}

function route(): void {
  stopPage()
  const root = document.getElementById('app') as HTMLElement
  clear(root)
  const hash = location.hash.replace(/^#\/?/, '')
  const [name = 'overview', ...rest] = hash.split('/')
  const page = PAGES.find((p) => p[0] === name) ?? (PAGES[0] as (typeof PAGES)[number])
  const nav = h(
    'nav',
    {},
    h('span', { class: 'brand' }, 'Portcullis'),
    ...PAGES.map(([id, label]) => h('a', { href: `#/${id}`, class: id === page[0] ? 'active' : '' }, label)),
    h('button', { class: 'link', id: 'signout', onclick: () => void signOut() }, 'Sign out'),
  )
  const main = h('main', { id: 'page', 'data-page': page[0] })
  root.append(nav, main)
  page[2](main, decodeURIComponent(rest.join('/')))
}

function showSignIn(message = ''): void {
  stopPage()
  const root = document.getElementById('app') as HTMLElement
  clear(root)
  const err = h('p', { class: 'error', id: 'signin-error' }, message)
  const input = h('input', {
    type: 'password',
    id: 'token',
    autocomplete: 'current-password',
    placeholder: 'Admin token',
  }) as HTMLInputElement
  const form = h(
    'form',
    {
      id: 'signin',
      onsubmit: (e: Event) => {
        e.preventDefault()
        void (async () => {
          const res = await fetch('/ui/login', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            credentials: 'same-origin',
            body: JSON.stringify({ token: input.value }),
          })
          if (!res.ok) {
            err.textContent =
              res.status === 429 ? 'Too many attempts; wait a minute.' : 'That token is not valid.'
            return
          }
          csrf = String(((await res.json()) as Json).csrf ?? '')
          input.value = ''
          route()
        })()
      },
    },
    h('h1', {}, 'Portcullis'),
    h('p', {}, 'Sign in with the admin token (admin.token in the gateway config).'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    err,
  )
  root.append(h('div', { class: 'signin' }, form))
  input.focus()
}

async function signOut(): Promise<void> {
  await fetch('/ui/logout', { method: 'POST', headers: { 'x-csrf-token': csrf }, credentials: 'same-origin' })
  csrf = ''
  showSignIn('Signed out.')
}

function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', {}, h('h2', {}, title), ...children)
}

function table(head: string[], rows: Child[][], attrs: Record<string, string> = {}): HTMLElement {
  return h(
    'table',
    attrs,
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  )
}

function errorBox(el: HTMLElement, err: unknown): void {
  if (err instanceof ApiError && err.status === 401) return
  clear(el)
  el.append(h('p', { class: 'error' }, `Could not load: ${(err as Error).message}`))
}

// ---------------------------------------------------------------- overview

function chart(title: string, series: uPlot.Series[], el: HTMLElement): uPlot {
  const width = Math.max(320, Math.min(1100, (el.parentElement?.clientWidth ?? 900) - 20))
  return new uPlot(
    {
      title,
      width,
      height: 200,
      series: [{}, ...series],
      axes: [{}, { size: 60 }],
      scales: { x: { time: true } },
      legend: { live: false },
    },
    [[]],
    el,
  )
}

function overview(main: HTMLElement): void {
  const stats = h('div', { class: 'cards', id: 'overview-cards' })
  const c1 = h('div', { class: 'chart', id: 'chart-rps' })
  const c2 = h('div', { class: 'chart', id: 'chart-codes' })
  const c3 = h('div', { class: 'chart', id: 'chart-latency' })
  main.append(h('h1', {}, 'Overview'), stats, c1, c2, c3)
  const rps = chart(
    'Requests per second',
    [
      { label: 'requests', stroke: '#2563eb', width: 2 },
      { label: 'denied', stroke: '#d97706', width: 2 },
      { label: 'errors', stroke: '#dc2626', width: 2 },
    ],
    c1,
  )
  const lat = chart(
    'Latency (ms)',
    [
      { label: 'p50', stroke: '#059669', width: 2 },
      { label: 'p99', stroke: '#7c3aed', width: 2 },
    ],
    c3,
  )
  let codesChart: uPlot | undefined
  let codeNames: string[] = []
  const palette = ['#d97706', '#dc2626', '#7c3aed', '#0891b2', '#be185d', '#4d7c0f', '#9333ea', '#0f766e']
  every(2000, () => {
    api('/v1/traffic?window=5m')
      .then((b) => {
        const pts = (b.points ?? []) as Json[]
        const xs = pts.map((p) => p.t as number)
        rps.setData([
          xs,
          pts.map((p) => p.requests as number),
          pts.map((p) => p.denied as number),
          pts.map((p) => p.errors as number),
        ])
        lat.setData([
          xs,
          pts.map((p) => (p.p50 as number) ?? null),
          pts.map((p) => (p.p99 as number) ?? null),
        ] as uPlot.AlignedData)
        const codes = [...new Set(pts.flatMap((p) => Object.keys((p.codes ?? {}) as Json)))]
          .sort()
          .slice(0, 8)
        if (codesChart === undefined || codes.join() !== codeNames.join()) {
          codesChart?.destroy()
          clear(c2)
          codeNames = codes
          codesChart = chart(
            'Denials and errors by code (per second)',
            codes.map((c, i) => ({ label: c, stroke: palette[i % palette.length], width: 2 })),
            c2,
          )
        }
        codesChart.setData([xs, ...codes.map((c) => pts.map((p) => ((p.codes as Json)[c] as number) ?? 0))])
        const last60 = pts.slice(-60)
        const sum = (k: string) => last60.reduce((a, p) => a + (p[k] as number), 0)
        clear(stats)
        stats.append(
          card('Requests / s (last minute)', (sum('requests') / 60).toFixed(1)),
          card('Denied (last minute)', fmtNum(sum('denied'))),
          card('Errors (last minute)', fmtNum(sum('errors'))),
          card('Requests since start', fmtNum(b.total)),
        )
      })
      .catch((e) => errorBox(stats, e))
  })
}

function card(label: string, value: string): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label))
}

// ---------------------------------------------------------------- live requests

function livePage(main: HTMLElement): void {
  const status = h('p', { class: 'muted', id: 'live-status' }, 'Connecting…')
  const body = h('tbody', { id: 'live-rows' })
  main.append(
    h('h1', {}, 'Live requests'),
    h(
      'p',
      { class: 'muted' },
      'This gateway’s requests as they finish. Identifiers in paths, query values and client address hosts are masked; principals are shown as a hash.',
    ),
    status,
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Time', 'Method', 'Path', 'Status', 'ms', 'Code', 'Client', 'Principal', 'Route'].map((c) =>
            h('th', {}, c),
          ),
        ),
      ),
      body,
    ),
  )
  live = new EventSource('/ui/api/live')
  live.onopen = () => {
    status.textContent = 'Live'
  }
  live.onerror = () => {
    status.textContent = 'Reconnecting…'
  }
  live.onmessage = (ev) => {
    const r = JSON.parse(ev.data as string) as Json
    const cls = (r.status as number) >= 500 ? 'err' : (r.status as number) >= 400 ? 'warn' : ''
    const row = h(
      'tr',
      { class: cls },
      h('td', {}, String(r.time).slice(11, 23)),
      h('td', {}, String(r.method)),
      h(
        'td',
        { class: 'mono' },
        `${String(r.path)}${(r.query as string[]).length ? `?${(r.query as string[]).join('&')}` : ''}`,
      ),
      h('td', {}, String(r.status)),
      h('td', {}, String(r.ms)),
      h('td', {}, String(r.code ?? '')),
      h('td', {}, String(r.client)),
      h('td', { class: 'mono' }, String(r.principal ?? '')),
      h('td', {}, String(r.route)),
    )
    body.prepend(row)
    while (body.childElementCount > 200) body.lastElementChild?.remove()
  }
}

// ---------------------------------------------------------------- alerts

function alertsPage(main: HTMLElement): void {
  const box = h('div', { id: 'alerts' })
  main.append(h('h1', {}, 'Alerts'), box)
  const load = () =>
    api('/v1/alerts?limit=200')
      .then((b) => {
        clear(box)
        if (b.enabled === false) {
          box.append(h('p', { class: 'muted' }, 'Detection is off (detect.enabled).'))
          return
        }
        const items = (b.items ?? []) as Json[]
        box.append(
          h(
            'p',
            { class: 'muted' },
            `${fmtNum(b.total)} alerts since start, ${fmtNum(b.unacknowledged)} not acknowledged.`,
          ),
        )
        box.append(
          table(
            ['Time', 'Detector', 'Subject', 'Summary', 'Action', 'Acknowledged'],
            items.map((a) => [
              String(a.time),
              String(a.detector),
              h('span', { class: 'mono' }, String(a.subject)),
              String(a.summary),
              String(a.action),
              a.acknowledged
                ? `${String((a.acknowledged as Json).by)}, ${ago((a.acknowledged as Json).at)}`
                : h(
                    'button',
                    {
                      class: 'ack',
                      onclick: () =>
                        void api(`/v1/alerts/${encodeURIComponent(String(a.id))}/ack`, {
                          method: 'POST',
                        }).then(load),
                    },
                    'Acknowledge',
                  ),
            ]),
            { id: 'alerts-table' },
          ),
        )
      })
      .catch((e) => errorBox(box, e))
  every(5000, () => void load())
}

// ---------------------------------------------------------------- bans

function bansPage(main: HTMLElement): void {
  const box = h('div', { id: 'bans' })
  const kind = h(
    'select',
    { id: 'ban-kind' },
    h('option', { value: 'ip' }, 'IP address'),
    h('option', { value: 'cidr' }, 'Network (CIDR)'),
    h('option', { value: 'principal' }, 'Principal'),
  ) as HTMLSelectElement
  const subject = h('input', {
    id: 'ban-subject',
    placeholder: '203.0.113.7, 198.51.100.0/24 or a principal id',
  }) as HTMLInputElement
  // a duration in the one grammar (10m, 1h, 7d), as the admin API takes it
  const duration = h('input', {
    id: 'ban-duration',
    value: '1h',
    placeholder: 'Duration: 10m, 1h, 7d',
    size: '8',
  }) as HTMLInputElement
  const reason = h('input', { id: 'ban-reason', placeholder: 'Reason (optional)' }) as HTMLInputElement
  const msg = h('p', { id: 'ban-message', class: 'muted' })
  const form = h(
    'form',
    {
      id: 'ban-form',
      class: 'inline',
      onsubmit: (e: Event) => {
        e.preventDefault()
        const body: Json = { [kind.value]: subject.value.trim(), duration: duration.value.trim() }
        if (reason.value.trim() !== '') body.reason = reason.value.trim()
        api('/v1/bans', { method: 'POST', body })
          .then((b) => {
            msg.textContent = `Banned ${String(b.id)} until ${String(b.until)}.`
            subject.value = ''
            void load()
          })
          .catch((err: Error) => {
            msg.textContent = `Refused: ${err.message}`
          })
      },
    },
    kind,
    subject,
    duration,
    reason,
    h('button', { type: 'submit' }, 'Ban'),
  )
  main.append(h('h1', {}, 'Bans'), section('Add a ban', form, msg), section('Active bans', box))
  const load = () =>
    api('/v1/bans?limit=1000')
      .then((b) => {
        clear(box)
        const items = (b.items ?? []) as Json[]
        if (items.length === 0) box.append(h('p', { class: 'muted' }, 'No active bans.'))
        else
          box.append(
            table(
              ['Kind', 'Subject', 'Until', 'By', 'Reason', ''],
              items.map((x) => [
                String(x.kind),
                h('span', { class: 'mono' }, String(x.subject)),
                String(x.until),
                String(x.by),
                String(x.reason),
                h(
                  'button',
                  {
                    class: 'lift',
                    onclick: () =>
                      void api(`/v1/bans/${encodeURIComponent(String(x.id))}`, { method: 'DELETE' }).then(
                        load,
                      ),
                  },
                  'Lift',
                ),
              ]),
              { id: 'bans-table' },
            ),
          )
      })
      .catch((e) => errorBox(box, e))
  every(5000, () => void load())
}

// ---------------------------------------------------------------- inventory

const FLAG_KIND: Record<string, string> = {
  shadow: 'warn',
  zombie: 'err',
  unused: '',
  unauthenticated: 'warn',
  'undeclared-sensitive': 'err',
  blocked: '',
}

function inventoryPage(main: HTMLElement, arg: string): void {
  if (arg !== '') {
    operationPage(main, arg)
    return
  }
  const filter = h('input', { id: 'inv-filter', placeholder: 'Filter: method or path' }) as HTMLInputElement
  const flag = h(
    'select',
    { id: 'inv-flag' },
    h('option', { value: '' }, 'Any flag'),
    ...Object.keys(FLAG_KIND).map((f) => h('option', { value: f }, f)),
  ) as HTMLSelectElement
  const cls = h(
    'select',
    { id: 'inv-class' },
    h('option', { value: '' }, 'Any data class'),
  ) as HTMLSelectElement
  const info = h('p', { class: 'muted', id: 'inv-info' })
  const box = h('div', { id: 'inventory' })
  main.append(h('h1', {}, 'API inventory'), h('div', { class: 'inline' }, filter, flag, cls), info, box)
  let ops: Json[] = []
  let sortKey = 'path'
  let sortDir = 1
  const cols: [string, string, (o: Json) => string | number][] = [
    ['Method', 'method', (o) => String(o.method)],
    ['Path', 'path', (o) => String(o.path)],
    ['Requests', 'requests', (o) => o.requests as number],
    ['Auth share', 'authenticatedShare', (o) => o.authenticatedShare as number],
    ['Principals', 'principals', (o) => o.principals as number],
    ['p50 ms', 'p50', (o) => ((o.latencyMs as Json).p50 as number) ?? -1],
    ['p99 ms', 'p99', (o) => ((o.latencyMs as Json).p99 as number) ?? -1],
    ['Last seen', 'lastSeen', (o) => String(o.lastSeen ?? '')],
    ['Data classes', 'classes', (o) => ((o.dataClasses as Json[]) ?? []).length],
    ['Flags', 'flags', (o) => ((o.flags as string[]) ?? []).join(',')],
  ]
  const render = () => {
    clear(box)
    const q = filter.value.trim().toLowerCase()
    const rows = ops.filter(
      (o) =>
        (q === '' || String(o.id).toLowerCase().includes(q)) &&
        (flag.value === '' || (o.flags as string[]).includes(flag.value)) &&
        (cls.value === '' || (o.dataClasses as Json[]).some((d) => d.class === cls.value)),
    )
    const col = cols.find((c) => c[1] === sortKey) ?? (cols[1] as (typeof cols)[number])
    rows.sort((a, b) => {
      const x = col[2](a)
      const y = col[2](b)
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir
    })
    const head = h(
      'tr',
      {},
      ...cols.map(([label, key]) =>
        h(
          'th',
          {
            class: `sortable ${key === sortKey ? (sortDir > 0 ? 'asc' : 'desc') : ''}`,
            'data-key': key,
            onclick: () => {
              if (sortKey === key) sortDir = -sortDir
              else {
                sortKey = key
                sortDir = key === 'path' || key === 'method' ? 1 : -1
              }
              render()
            },
          },
          label,
        ),
      ),
    )
    const body = h(
      'tbody',
      {},
      ...rows.map((o) =>
        h(
          'tr',
          {
            class: 'clickable',
            onclick: () => (location.hash = `#/inventory/${encodeURIComponent(String(o.id))}`),
          },
          h('td', {}, String(o.method)),
          h(
            'td',
            { class: 'mono' },
            String(o.path),
            o.inSpec ? '' : h('span', { class: 'muted' }, ' (not in spec)'),
          ),
          h('td', {}, fmtNum(o.requests)),
          h('td', {}, `${Math.round((o.authenticatedShare as number) * 100)}%`),
          h('td', {}, fmtNum(o.principals)),
          h('td', {}, fmtNum((o.latencyMs as Json).p50)),
          h('td', {}, fmtNum((o.latencyMs as Json).p99)),
          h('td', {}, ago(o.lastSeen)),
          h(
            'td',
            {},
            ...((o.dataClasses as Json[]) ?? []).map((d) =>
              badge(String(d.class), d.undeclared ? 'err' : 'info'),
            ),
          ),
          h('td', {}, ...((o.flags as string[]) ?? []).map((f) => badge(f, FLAG_KIND[f] ?? ''))),
        ),
      ),
    )
    box.append(h('table', { id: 'inventory-table' }, h('thead', {}, head), body))
  }
  filter.oninput = render
  flag.onchange = render
  cls.onchange = render
  every(5000, () => {
    api('/v1/inventory')
      .then((b) => {
        ops = (b.operations ?? []) as Json[]
        const bounds = b.bounds as Json
        info.textContent = `${ops.length} operations (${fmtNum(bounds.operations)} observed, bound ${fmtNum(bounds.maxOperations)}); ${fmtNum((b.specs as Json).operations)} in the specs; store: ${String(b.store)}; observing since ${String(b.observingSince)}.`
        const classes = [
          ...new Set(ops.flatMap((o) => (o.dataClasses as Json[]).map((d) => String(d.class)))),
        ].sort()
        const have = [...cls.options].map((o) => o.value)
        for (const c of classes) if (!have.includes(c)) cls.append(h('option', { value: c }, c))
        render()
      })
      .catch((e) => errorBox(box, e))
  })
}

function kv(rows: [string, Child][]): HTMLElement {
  return h('dl', { class: 'kv' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

function operationPage(main: HTMLElement, id: string): void {
  const box = h('div', { id: 'operation' }, 'Loading…')
  main.append(h('p', {}, h('a', { href: '#/inventory' }, '← Inventory')), h('h1', { class: 'mono' }, id), box)
  api(`/v1/inventory/operations/${encodeURIComponent(id)}`)
    .then((o) => {
      clear(box)
      const reasons = (o.reasons ?? {}) as Json
      box.append(
        section(
          'Summary',
          kv([
            ['In spec', o.inSpec ? `yes${o.operationId ? ` (${String(o.operationId)})` : ''}` : 'no'],
            ['Requests', fmtNum(o.requests)],
            ['Denied / errors', `${fmtNum(o.denied)} / ${fmtNum(o.errors)}`],
            [
              'Statuses',
              Object.entries(o.statuses as Json)
                .map(([k, v]) => `${k}: ${fmtNum(v)}`)
                .join(', ') || '–',
            ],
            [
              'Gateway codes',
              Object.entries(o.errorCodes as Json)
                .map(([k, v]) => `${k}: ${fmtNum(v)}`)
                .join(', ') || '–',
            ],
            ['First / last seen', `${String(o.firstSeen ?? '–')} / ${String(o.lastSeen ?? '–')}`],
            [
              'Authenticated',
              `${Math.round((o.authenticatedShare as number) * 100)}% of requests, ~${fmtNum(o.principals)} principals`,
            ],
            [
              'Latency',
              `p50 ${fmtNum((o.latencyMs as Json).p50)} ms, p99 ${fmtNum((o.latencyMs as Json).p99)} ms`,
            ],
            [
              'Content types',
              `request: ${((o.contentTypes as Json).request as string[]).join(', ') || '–'}; response: ${((o.contentTypes as Json).response as string[]).join(', ') || '–'}`,
            ],
            [
              'Query parameters',
              ((o.queryParams as Json[]) ?? [])
                .map((q) => `${String(q.name)} (${fmtNum(q.count)})`)
                .join(', ') || '–',
            ],
          ]),
        ),
        section(
          'Flags',
          ((o.flags as string[]) ?? []).length === 0
            ? h('p', { class: 'muted' }, 'None.')
            : h(
                'ul',
                {},
                ...(o.flags as string[]).map((f) =>
                  h('li', {}, badge(f, FLAG_KIND[f] ?? ''), ' ', String(reasons[f] ?? '')),
                ),
              ),
        ),
        section(
          'Data classes',
          table(
            ['Class', 'In', 'Fields', 'Samples', 'Regulations', 'Declared'],
            ((o.dataClasses as Json[]) ?? []).map((d) => [
              String(d.label),
              (d.in as string[]).join(', '),
              h('span', { class: 'mono' }, (d.paths as string[]).join(', ')),
              fmtNum(d.count),
              h(
                'ul',
                { class: 'plain' },
                ...Object.entries(d.regulations as Json).map(([r, why]) =>
                  h('li', {}, h('b', {}, r.toUpperCase()), `: ${String(why)}`),
                ),
              ),
              d.undeclared ? badge('undeclared', 'err') : 'yes',
            ]),
            { id: 'classes-table' },
          ),
        ),
        section(
          'Fields seen (samples)',
          table(
            ['Where', 'Path', 'Types'],
            ((o.fields as Json[]) ?? []).map((f) => [
              String(f.where),
              h('span', { class: 'mono' }, String(f.path)),
              Object.entries(f.types as Json)
                .map(([t, n]) => `${t} ×${fmtNum(n)}`)
                .join(', '),
            ]),
          ),
        ),
      )
    })
    .catch((e) => errorBox(box, e))
}

// ---------------------------------------------------------------- rate limits, audit, config

function rateLimitsPage(main: HTMLElement): void {
  const box = h('div', { id: 'ratelimits' })
  main.append(
    h('h1', {}, 'Rate-limit top keys'),
    h(
      'p',
      { class: 'muted' },
      'Keys with the most requests under a limit on this gateway (space-saving estimates: a count may be over by “error”).',
    ),
    box,
  )
  every(3000, () =>
    api('/v1/rate-limit/top?limit=50')
      .then((b) => {
        clear(box)
        const items = (b.items ?? []) as Json[]
        if (items.length === 0) box.append(h('p', { class: 'muted' }, 'No rate-limited traffic yet.'))
        else
          box.append(
            table(
              ['Limit', 'Key', 'Requests', 'Denied', 'Remaining (last)', 'Error'],
              items.map((k) => [
                String(k.limit),
                h('span', { class: 'mono' }, String(k.key)),
                fmtNum(k.requests),
                fmtNum(k.denied),
                fmtNum(k.lastRemaining),
                fmtNum(k.error),
              ]),
              { id: 'ratelimit-table' },
            ),
          )
      })
      .catch((e) => errorBox(box, e)),
  )
}

function auditPage(main: HTMLElement): void {
  const box = h('div', { id: 'audit' })
  const verify = h(
    'button',
    { id: 'audit-verify', onclick: () => void load(true) },
    'Verify the current file now',
  )
  main.append(h('h1', {}, 'Audit chain'), verify, box)
  const load = (check = false) =>
    api(`/v1/audit/status${check ? '?verify=1' : ''}`)
      .then((b) => {
        clear(box)
        if (b.enabled === false) {
          box.append(h('p', { class: 'muted' }, 'The audit log is off (audit.enabled).'))
          return
        }
        const v = (b.verify ?? {}) as Json
        box.append(
          kv([
            [
              'Chain check',
              badge(
                String(v.status ?? 'not-run'),
                v.status === 'ok' ? 'ok' : v.status === 'failed' ? 'err' : '',
              ),
            ],
            ...Object.entries(b)
              .filter(([k]) => k !== 'verify' && k !== 'enabled')
              .map(([k, val]): [string, Child] => [
                k,
                typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val),
              ]),
            ...Object.entries(v)
              .filter(([k]) => k !== 'status')
              .map(([k, val]): [string, Child] => [
                `check.${k}`,
                typeof val === 'object' && val !== null ? JSON.stringify(val) : String(val),
              ]),
          ]),
        )
      })
      .catch((e) => errorBox(box, e))
  every(10000, () => void load())
}

function configPage(main: HTMLElement): void {
  const box = h('div', { id: 'config' })
  main.append(
    h('h1', {}, 'Effective config'),
    h(
      'p',
      { class: 'muted' },
      'The config serving now, defaults filled in, secrets redacted. Read-only: change the file and reload.',
    ),
    box,
  )
  api('/v1/config')
    .then((b) => {
      clear(box)
      box.append(
        h(
          'p',
          { class: 'muted' },
          `Loaded ${String(b.loadedAt ?? '')}; redacted: ${((b.redacted as string[]) ?? []).join(', ') || 'nothing'}.`,
        ),
        h('pre', { id: 'config-json' }, JSON.stringify(b.config, null, 2)),
      )
    })
    .catch((e) => errorBox(box, e))
}

// ---------------------------------------------------------------- start

window.addEventListener('hashchange', () => {
  if (csrf !== '') route()
})
void (async () => {
  const res = await fetch('/ui/session', { credentials: 'same-origin' })
  if (res.ok) {
    csrf = String(((await res.json()) as Json).csrf ?? '')
    route()
  } else showSignIn()
})()

import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { SpecError } from './errors.js'
import { loadOpenApi } from './load.js'
import { SchemaCompiler } from './schema.js'
import { convertSwagger2, originalPointer } from './swagger2.js'

const PETSTORE = 'test/fixtures/lint/real/petstore-swagger2.yaml'

function file(text: string): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-sw2-'))
  writeFileSync(join(d, 'api.yaml'), text)
  return join(d, 'api.yaml')
}

test('Swagger 2.0 Petstore loads as OpenAPI 3.0: servers, bodies, forms, collections, security', () => {
  const spec = loadOpenApi(PETSTORE)
  assert.equal(spec.version, '3.0')
  assert.equal(spec.documents.convertedFrom, '2.0')
  assert.equal(spec.operations.length, 20)
  const root = spec.documents.root as Record<string, unknown>
  assert.deepEqual(root.servers, [{ url: 'http://petstore.swagger.io/v2' }])
  const add = spec.operations.find((o) => o.id === 'addPet')
  assert.deepEqual(
    add?.requestBody?.content.map((m) => m.type),
    ['application/json', 'application/xml'],
  )
  assert.equal(add?.requestBody?.required, true)
  assert.deepEqual(add?.requestBody?.content[0]?.schema, { $ref: '#/components/schemas/Pet' })
  const byStatus = spec.operations.find((o) => o.id === 'findPetsByStatus')
  const status = byStatus?.parameters[0]
  assert.deepEqual([status?.style, status?.explode], ['form', true])
  assert.equal((status?.schema as { type: string } | undefined)?.type, 'array')
  const ok = byStatus?.responses.find((r) => r.status === '200')
  assert.deepEqual(
    ok?.content.map((m) => m.type),
    ['application/xml', 'application/json'],
  )
  const upload = spec.operations.find((o) => o.id === 'uploadFile')
  const media = upload?.requestBody?.content[0]
  assert.equal(media?.type, 'multipart/form-data')
  const props = (
    media?.schema as { properties: Record<string, { type: string; format?: string }> } | undefined
  )?.properties
  assert.deepEqual(props?.file, { type: 'string', format: 'binary' })
  const form = spec.operations.find((o) => o.id === 'updatePetWithForm')
  assert.equal(form?.requestBody?.content[0]?.type, 'application/x-www-form-urlencoded')
  const schemes = (root.components as { securitySchemes: Record<string, unknown> }).securitySchemes
  assert.deepEqual(schemes.api_key, { type: 'apiKey', name: 'api_key', in: 'header' })
  const oauth = schemes.petstore_auth as { type: string; flows: Record<string, { authorizationUrl: string }> }
  assert.equal(oauth.type, 'oauth2')
  assert.ok(oauth.flows.implicit?.authorizationUrl === 'http://petstore.swagger.io/oauth/dialog')
  // The converted schemas compile and validate like any 3.0 schema.
  const c = new SchemaCompiler(spec.documents, spec.version)
  const addMedia = add?.requestBody?.content[0]
  assert.ok(addMedia?.schemaLocation)
  const h = c.add(addMedia.schema, addMedia.schemaLocation, 'declared')
  c.compile()
  assert.equal(c.get(h).validate({ name: 'rex', photoUrls: [] }), true)
  assert.equal(c.get(h).validate({ name: 'rex' }), false)
})

test('converted pointers map back to the 2.0 file', () => {
  const spec = loadOpenApi(PETSTORE)
  const docs = spec.documents
  const add = spec.operations.find((o) => o.id === 'addPet')
  assert.equal(
    docs.sourcePointer(docs.rootFile, add?.requestBody?.content[0]?.schemaLocation?.pointer ?? ''),
    '/paths/~1pet/post/parameters/0/schema',
  )
  assert.equal(
    docs.sourcePointer(docs.rootFile, '/components/schemas/Pet/properties/name'),
    '/definitions/Pet/properties/name',
  )
  assert.equal(
    docs.sourcePointer(docs.rootFile, '/components/securitySchemes/api_key'),
    '/securityDefinitions/api_key',
  )
  assert.equal(originalPointer(new Map([['', '']]), '/a/b'), '/a/b')
})

test('Swagger 2.0: shared body parameters, path-level parameters, x-nullable, discriminator, tsv', () => {
  const spec = loadOpenApi(
    file(`swagger: "2.0"
info: { title: t, version: "1" }
basePath: /api
consumes: [application/json]
parameters:
  Body: { in: body, name: body, required: true, schema: { $ref: "#/definitions/Thing" } }
  Limit: { in: query, name: limit, type: integer, maximum: 100 }
  Tags: { in: query, name: tags, type: array, items: { type: string }, collectionFormat: tsv }
responses:
  NotFound: { description: nope, schema: { $ref: "#/definitions/Err" } }
definitions:
  Thing:
    type: object
    discriminator: kind
    properties:
      kind: { type: string }
      note: { type: string, x-nullable: true }
  Err: { type: object }
paths:
  /things/{id}:
    parameters:
      - { in: path, name: id, required: true, type: string, pattern: "^[a-z]+$" }
    put:
      operationId: put
      parameters:
        - $ref: "#/parameters/Body"
        - $ref: "#/parameters/Limit"
        - $ref: "#/parameters/Tags"
      responses:
        "404": { $ref: "#/responses/NotFound" }
`),
  )
  const put = spec.operations[0]
  assert.deepEqual(
    put?.parameters.map((p) => [p.name, p.in, p.style]),
    [
      ['id', 'path', 'simple'],
      ['limit', 'query', 'form'],
      ['tags', 'query', 'form'],
    ],
  )
  assert.deepEqual((put?.parameters[0]?.schema as { pattern: string } | undefined)?.pattern, '^[a-z]+$')
  assert.equal(put?.requestBody?.required, true)
  assert.equal(put?.requestBody?.content[0]?.type, 'application/json')
  assert.equal(put?.responses[0]?.content[0]?.type, 'application/json')
  const root = spec.documents.root as {
    servers: unknown
    components: {
      schemas: Record<string, { discriminator?: unknown; properties: { note: { nullable?: boolean } } }>
    }
  }
  assert.deepEqual(root.servers, [{ url: '/api' }])
  assert.deepEqual(root.components.schemas.Thing?.discriminator, { propertyName: 'kind' })
  assert.equal(root.components.schemas.Thing?.properties.note.nullable, true)
  assert.ok(spec.warnings.some((w) => /tsv/.test(w)))
})

test('hostile Swagger 2.0 documents are refused with problems, never a crash', () => {
  const cases = [
    'swagger: "2.0"\ninfo: {}\npaths: 7\n',
    'swagger: "2.0"\ninfo: {}\npaths: { /a: { get: { parameters: "x", responses: {} } } }\n',
    'swagger: "2.0"\ninfo: {}\npaths: { /a: { get: { parameters: [ { $ref: "#/parameters/Nope" } ] } } }\n',
    'swagger: "2.0"\ninfo: {}\nparameters: { P: { $ref: "#/parameters/P" } }\npaths: { /a: { get: { parameters: [ { $ref: "#/parameters/P" } ] } } }\n',
    'swagger: "2.0"\ninfo: {}\npaths: { /a: { post: { parameters: [ { in: formData }, { in: body } ], responses: { "200": 5 } } } }\n',
    'swagger: "2.0"\ninfo: {}\nsecurityDefinitions: { a: 1, b: { type: oauth2 } }\ndefinitions: 3\nresponses: []\npaths: {}\n',
  ]
  for (const text of cases) {
    try {
      loadOpenApi(file(text))
    } catch (err) {
      assert.ok(err instanceof SpecError, `${text}: ${(err as Error).stack}`)
    }
  }
  // The converter itself is total on any object.
  for (const v of [
    {},
    { paths: [] },
    { parameters: { a: null } },
    { definitions: { a: [1, { $ref: 3 }] } },
  ]) {
    assert.equal(convertSwagger2(v).document.openapi, '3.0.3')
  }
})

/**
 * The demo config (examples/demo/portcullis.yaml) as tests run it: the demo API's address
 * replaced by a test API's, the listener and admin ports by 0 (free ones), and the files it names
 * relative to itself (the OpenAPI contract) made absolute, since tests write the config elsewhere.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('../../../', import.meta.url).pathname
const DEMO_DIR = join(ROOT, 'examples/demo')

export function demoConfigYaml(apiUrl: string, file = 'portcullis.yaml'): string {
  let yaml = readFileSync(join(DEMO_DIR, file), 'utf8')
  yaml = yaml.split('http://127.0.0.1:8081').join(apiUrl)
  yaml = yaml.replace('port: 8080', 'port: 0').replace('port: 9901', 'port: 0')
  yaml = yaml.replace(/\bspec: openapi\.yaml\b/g, `spec: ${join(DEMO_DIR, 'openapi.yaml')}`)
  if (yaml.includes('openapi.yaml') && /spec: (?!\/)/.test(yaml))
    throw new Error('a relative spec path is left')
  return yaml
}

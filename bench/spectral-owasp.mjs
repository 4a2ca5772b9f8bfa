// The Spectral ruleset `npm run bench:lint` compares against: the OWASP API Security ruleset alone,
// loaded from node_modules (a YAML `extends` of a package name could be fetched from a CDN).
import owasp from '@stoplight/spectral-owasp-ruleset'

export default { extends: [owasp] }

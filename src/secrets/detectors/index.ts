/**
 * The built-in detectors, as data. docs/secrets.md's table is generated from this list
 * (`npm run docs:secrets`); tests check every detector against the labelled corpus.
 */
import type { Detector } from '../types.js'
import { AI } from './ai.js'
import { CLOUD } from './cloud.js'
import { CODE } from './code.js'
import { GENERIC } from './generic.js'
import { INFRA } from './infra.js'
import { KEYS } from './keys.js'
import { MESSAGING } from './messaging.js'
import { PAYMENTS } from './payments.js'
import { REGISTRIES } from './registries.js'

/** Every built-in detector, grouped by category (the order of docs/secrets.md). */
export const DETECTOR_GROUPS: readonly { category: string; detectors: readonly Detector[] }[] = [
  { category: 'Cloud providers', detectors: CLOUD },
  { category: 'Code hosts and CI', detectors: CODE },
  { category: 'Messaging and mail', detectors: MESSAGING },
  { category: 'Payments and commerce', detectors: PAYMENTS },
  { category: 'AI providers', detectors: AI },
  { category: 'Package registries', detectors: REGISTRIES },
  { category: 'Infrastructure and SaaS', detectors: INFRA },
  { category: 'Private keys and tokens', detectors: KEYS },
  { category: 'Generic and structural', detectors: GENERIC },
]

export const BUILTIN_DETECTORS: readonly Detector[] = DETECTOR_GROUPS.flatMap((g) => g.detectors)

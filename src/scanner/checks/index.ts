/** Every check the scanner knows, in run order. `--checks` picks from these by id. */
import type { Check } from '../types.js'
import { bola } from './bola.js'

export const ALL_CHECKS: readonly Check[] = [bola]

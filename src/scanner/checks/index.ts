/** Every check the scanner knows, in run order. `--checks` picks from these by id. */
import type { Check } from '../types.js'
import { bfla } from './bfla.js'
import { bola } from './bola.js'
import { businessFlowLimits } from './business-flow-limits.js'
import { excessiveDataExposure } from './excessive-data-exposure.js'
import { massAssignment } from './mass-assignment.js'

// Mass assignment runs last of these: it writes (and restores) the caller's own profile.
export const ALL_CHECKS: readonly Check[] = [
  bola,
  bfla,
  excessiveDataExposure,
  businessFlowLimits,
  massAssignment,
]

/**
 * A clock read on every request by the log phase's observers (the inventory, the dashboard's
 * telemetry), where millisecond precision buys nothing: Date.now() costs ~300 ns on some virtual
 * machines (a clock source without vDSO), this costs a variable read. Updated every 100 ms by one
 * unref'd timer, started on first use.
 */
let current = Date.now()
let timer: NodeJS.Timeout | undefined

/** Milliseconds since the epoch, at most ~100 ms behind. */
export function coarseNow(): number {
  if (timer === undefined) {
    timer = setInterval(() => {
      current = Date.now()
    }, 100)
    timer.unref()
    current = Date.now()
  }
  return current
}

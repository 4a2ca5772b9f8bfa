import { parseArgs } from 'node:util'
import { type RunningGateway, startGateway } from '../../../gateway/serve.js'
import { ConfigError, UsageError } from '../../command.js'
import { SERVE_USAGE } from '../../usage.js'

export interface ServeOptions {
  config: string
  /** `--workers`: this process is worker n (1-based). */
  worker?: number
}

/** `portcullis serve [--config FILE]`; the file defaults to $PORTCULLIS_CONFIG, then ./portcullis.yaml. */
export async function serveCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, workers: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n${SERVE_USAGE}`)
  const env = process.env.PORTCULLIS_CONFIG
  const config = values.config ?? (env !== undefined && env !== '' ? env : 'portcullis.yaml')
  if (values.workers !== undefined) {
    const { parseWorkers, runPrimary, workerNumber } = await import('./workers.js')
    const count = parseWorkers(values.workers)
    const n = workerNumber()
    if (n !== undefined) {
      const code = await serve({ config, worker: n })
      // the IPC channel to the primary keeps a worker alive: close it once the gateway has stopped
      const cluster = (await import('node:cluster')).default
      cluster.worker?.disconnect()
      return code
    }
    // The primary checks the config once, so that a bad one is one error, not N crashing workers.
    const { loadGatewayConfig } = await import('../../../config/policy-checks.js')
    const checked = await loadGatewayConfig(config)
    if (checked.config === undefined) {
      const { formatProblem } = await import('../../../config/load.js')
      throw new ConfigError(checked.errors.map(formatProblem))
    }
    return runPrimary(count)
  }
  return serve({ config })
}

/**
 * `portcullis serve`: runs until SIGTERM/SIGINT; SIGHUP reloads the config. The handlers are in
 * place before the gateway starts: as PID 1 in a container a signal without a handler is ignored,
 * so a stop sent while the gateway is still starting would otherwise be lost. Such a stop is
 * carried out as soon as the gateway is up.
 */
export async function serve(opts: ServeOptions): Promise<number> {
  let running: RunningGateway | undefined
  let stopWith: ((signal: string) => void) | undefined
  let early: string | undefined
  const onStop = (signal: string) => () => {
    if (stopWith) stopWith(signal)
    else early ??= signal
  }
  const onTerm = onStop('SIGTERM')
  const onInt = onStop('SIGINT')
  const onHup = () => {
    if (!running) return // the config is being read now
    running.logger.info('SIGHUP: reloading config')
    void running.reload('signal')
  }
  process.once('SIGTERM', onTerm)
  process.once('SIGINT', onInt)
  process.on('SIGHUP', onHup)
  const unhook = () => {
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onInt)
    process.off('SIGHUP', onHup)
  }
  try {
    running = await startGateway(opts.config, opts.worker !== undefined ? { worker: opts.worker } : {})
  } catch (err) {
    unhook()
    throw err
  }
  const gw = running
  return new Promise<number>((resolve) => {
    stopWith = (signal: string) => {
      gw.logger.info({ signal }, 'signal received')
      gw.close().then(
        () => {
          unhook()
          resolve(0)
        },
        (err: unknown) => {
          gw.logger.error({ err }, 'shutdown failed')
          unhook()
          resolve(1)
        },
      )
    }
    if (early !== undefined) stopWith(early)
  })
}

import { parseArgs } from 'node:util'
import { startGateway } from '../../../gateway/serve.js'
import { UsageError } from '../../command.js'
import { SERVE_USAGE } from '../../usage.js'

export interface ServeOptions {
  config: string
}

/** `portcullis serve [--config FILE]`; the file defaults to $PORTCULLIS_CONFIG, then ./portcullis.yaml. */
export async function serveCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true,
  })
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n${SERVE_USAGE}`)
  const env = process.env.PORTCULLIS_CONFIG
  return serve({ config: values.config ?? (env !== undefined && env !== '' ? env : 'portcullis.yaml') })
}

/** `portcullis serve`: runs until SIGTERM/SIGINT; SIGHUP reloads the config. */
export async function serve(opts: ServeOptions): Promise<number> {
  const running = await startGateway(opts.config)
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      running.logger.info({ signal }, 'signal received')
      running.close().then(
        () => resolve(0),
        (err: unknown) => {
          running.logger.error({ err }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => {
      running.logger.info('SIGHUP: reloading config')
      void running.reload('signal')
    })
  })
}

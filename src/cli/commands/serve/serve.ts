import { startGateway } from '../../../gateway/serve.js'

export interface ServeOptions {
  config: string
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

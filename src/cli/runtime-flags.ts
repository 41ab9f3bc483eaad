/**
 * Turns the runtime flags of src/cli/base.ts (--redis-url, --mongo-url, --in-process) into
 * openRuntime() options, so every command reads them the same way.
 */
import type {OpenRuntimeOptions} from '../runtime/open.js'

export interface RuntimeFlagValues {
  'redis-url'?: string
  'mongo-url'?: string
  'in-process'?: boolean
}

export function runtimeOptionsFromFlags(
  flags: RuntimeFlagValues,
  extra: Omit<OpenRuntimeOptions, 'redisUrl' | 'mongoUrl' | 'inProcess'> = {},
): OpenRuntimeOptions {
  return {
    ...extra,
    ...(flags['redis-url'] ? {redisUrl: flags['redis-url']} : {}),
    ...(flags['mongo-url'] ? {mongoUrl: flags['mongo-url']} : {}),
    inProcess: Boolean(flags['in-process']),
  }
}

/** Opens the runtime a command's flags ask for (lazily imported: `--help` never loads adapters). */
export async function openRuntimeFromFlags(
  flags: RuntimeFlagValues,
  extra: Omit<OpenRuntimeOptions, 'redisUrl' | 'mongoUrl' | 'inProcess'> = {},
) {
  const {openRuntime} = await import('../runtime/open.js')
  return openRuntime(runtimeOptionsFromFlags(flags, extra))
}

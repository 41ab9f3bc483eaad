/**
 * Turns the runtime flags of src/cli/base.ts (--bus-url, --store-url, their older names --redis-url
 * and --mongo-url, --in-process) into openRuntime() options, so every command reads them the same way.
 */
import {driverFor, type Role} from '../adapters/drivers.js'
import {maskUrl, UserError} from '../errors.js'
import type {OpenRuntimeOptions} from '../adapters/open.js'

export interface RuntimeFlagValues {
  'bus-url'?: string
  'store-url'?: string
  'redis-url'?: string
  'mongo-url'?: string
  'in-process'?: boolean
}

type UrlOptions = 'busUrl' | 'storeUrl' | 'redisUrl' | 'mongoUrl' | 'inProcess'

/** Each URL flag, the role it names, its older alias and their environment variables. */
const URL_FLAGS = [
  {flag: 'bus-url', alias: 'redis-url', role: 'bus', env: 'TEKTREE_BUS_URL', aliasEnv: 'TEKTREE_REDIS_URL'},
  {flag: 'store-url', alias: 'mongo-url', role: 'store', env: 'TEKTREE_STORE_URL', aliasEnv: 'TEKTREE_MONGO_URL'},
] as const satisfies ReadonlyArray<{flag: keyof RuntimeFlagValues; alias: keyof RuntimeFlagValues; role: Role; env: string; aliasEnv: string}>

/**
 * Checks the URL flags against the driver table (an unknown scheme, or a store URL given for the bus,
 * is a UserError listing the accepted ones, exit 2) and makes each flag and its alias hold the same
 * value, so that code reading either name (simulate reads the older ones) sees what was given.
 */
export function normalizeRuntimeFlags(flags: RuntimeFlagValues): void {
  for (const {flag, alias, role, env, aliasEnv} of URL_FLAGS) {
    const primary = flags[flag]
    const older = flags[alias]
    if (primary && older && primary !== older) {
      throw new UserError(`Both --${flag} (${maskUrl(primary)}) and --${alias} (${maskUrl(older)}) are set`, {
        code: 'INVALID_FLAGS',
        hint: `--${alias} is the older name of --${flag}: give one (check the environment for ${env} and ${aliasEnv}).`,
        exitCode: 2,
      })
    }
    if (primary) driverFor(primary, role, `--${flag}`)
    else if (older) driverFor(older, role, `--${alias}`)
    const value = primary ?? older
    if (value) {
      flags[flag] = value
      flags[alias] = value
    }
  }
}

export function runtimeOptionsFromFlags(flags: RuntimeFlagValues, extra: Omit<OpenRuntimeOptions, UrlOptions> = {}): OpenRuntimeOptions {
  return {
    ...extra,
    ...(flags['bus-url'] ? {busUrl: flags['bus-url']} : {}),
    ...(flags['store-url'] ? {storeUrl: flags['store-url']} : {}),
    ...(flags['redis-url'] ? {redisUrl: flags['redis-url']} : {}),
    ...(flags['mongo-url'] ? {mongoUrl: flags['mongo-url']} : {}),
    inProcess: Boolean(flags['in-process']),
  }
}

/** Opens the runtime a command's flags ask for (lazily imported: `--help` never loads adapters). */
export async function openRuntimeFromFlags(flags: RuntimeFlagValues, extra: Omit<OpenRuntimeOptions, UrlOptions> = {}) {
  const {openRuntime} = await import('../adapters/open.js')
  return openRuntime(runtimeOptionsFromFlags(flags, extra))
}

/**
 * Shared by every command: --debug, --catalog, the runtime flags, and the one place where errors
 * become messages and exit codes. Commands stay thin: parse, call a module, render.
 */
import {Command, Errors, Flags, Interfaces} from '@oclif/core'
import {closest, didYouMean} from '../core/suggest.js'
import {interruption} from '../core/interrupt.js'
import {printable} from '../core/redact.js'
import {isUserError, UserError} from '../errors.js'
import {isClosedPipe} from './pipe.js'
import {normalizeRuntimeFlags, type RuntimeFlagValues} from './runtime-flags.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export const catalogFlag = Flags.string({
  char: 'c',
  summary: 'AsyncAPI 3 catalog (YAML or JSON). Default: the TekTree catalog shipped with tektree.',
  env: 'TEKTREE_CATALOG',
  helpGroup: 'GLOBAL',
})

/** Flags of every command that talks to a runtime (bus, store); URLs are checked in BaseCommand.init. */
export const runtimeFlags = {
  'bus-url': Flags.string({
    summary: 'The bus (and leaderboards) by URL instead of the embedded runtime: redis://HOST:PORT, rediss://..., kafka://HOST:PORT (leaderboards then in the store), or memory: (in this process).',
    env: 'TEKTREE_BUS_URL',
    helpGroup: 'RUNTIME',
  }),
  'store-url': Flags.string({
    summary: 'The event store by URL instead of the embedded runtime: sqlite:PATH, mongodb://HOST:PORT/DB, mongodb+srv://..., or memory:.',
    env: 'TEKTREE_STORE_URL',
    helpGroup: 'RUNTIME',
  }),
  'redis-url': Flags.string({
    summary: 'Older name of --bus-url.',
    env: 'TEKTREE_REDIS_URL',
    helpGroup: 'RUNTIME',
  }),
  'mongo-url': Flags.string({
    summary: 'Older name of --store-url.',
    env: 'TEKTREE_MONGO_URL',
    helpGroup: 'RUNTIME',
  }),
  'in-process': Flags.boolean({
    summary: 'Run on the in-process engine only (no servers; state lives and dies with this command).',
    default: false,
    helpGroup: 'RUNTIME',
  }),
}

/** Serves the runtime's metrics to Prometheus while the command runs (commands that run for a while). */
export const metricsPortFlag = Flags.integer({
  summary: 'Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while this runs (0 = a free port).',
  min: 0,
  max: 65535,
  helpGroup: 'RUNTIME',
})

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    debug: Flags.boolean({summary: 'Show stack traces and internal detail on errors.', default: false, helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    // A bad runtime URL is a usage error now (exit 2), before the command does anything.
    if (this.ctor.flags && 'bus-url' in this.ctor.flags) normalizeRuntimeFlags(flags as RuntimeFlagValues)
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  protected get debugMode(): boolean {
    return Boolean((this.flags as {debug?: boolean} | undefined)?.debug) || process.argv.includes('--debug')
  }

  /** A user's mistake: message, next step, exit code; no stack unless --debug. */
  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // The reader of stdout went away (`| head -1`): a quiet end, not an error (see ./pipe.ts).
    if (isClosedPipe(error)) {
      process.exitCode = 0
      return undefined
    }
    // Its servers are being stopped after Ctrl+C: whatever failed because of that is not news.
    const interrupted = interruption()
    if (interrupted) {
      await interrupted.stopped
      process.exitCode = interrupted.exitCode
      return this.exit(interrupted.exitCode)
    }
    if (isParseError(error)) error = this.usageError(error)
    if (isUserError(error)) {
      if (this.jsonEnabled()) {
        this.logJson(error.toContract())
      } else {
        // A message or hint may quote what came off the bus or from a file (a DLQ id, a value): escaped.
        process.stderr.write(`Error: ${printable(error.message, {layout: true})}\n`)
        if (error.hint) process.stderr.write(`${printable(error.hint, {layout: true})}\n`)
        if (this.debugMode && error.stack) process.stderr.write(`${error.stack}\n`)
      }
      process.exitCode = error.exitCode
      return this.exit(error.exitCode)
    }
    // this.exit() and oclif's other errors already carry their exit code and message.
    if (error.oclif?.exit !== undefined || error.constructor?.name === 'ExitError') throw error
    if (this.debugMode) throw error
    const message = error?.message ?? String(error)
    process.stderr.write(`Error: ${printable(message, {layout: true})}\n(an unexpected error; run again with --debug for the stack trace)\n`)
    process.exitCode = 1
    return this.exit(1)
  }

  /**
   * oclif's parse errors (unknown flag, missing or extra argument, bad option value) as a short
   * usage error: what is wrong, the closest flag or value when one is close, and where the full
   * usage is, instead of the whole usage text (47 lines for simulate).
   */
  private usageError(error: ParseError): UserError {
    const command = `${this.config.bin} ${(this.id ?? '').replaceAll(':', this.config.topicSeparator ?? ' ')}`.trim()
    const hint = `See \`${command} --help\`.`
    if (Array.isArray(error.flags)) {
      const known = this.knownFlagNames()
      const guess = (flag: string) => closest(flag.replace(/^-+/, '').split('=')[0], known).map((name) => `--${name}`)
      const message =
        error.flags.length === 1
          ? `Unknown flag ${error.flags[0]}.${didYouMean(guess(error.flags[0]))}`
          : `Unknown flags: ${error.flags.map((flag) => `${flag}${guess(flag).length > 0 ? ` (did you mean ${guess(flag)[0]}?)` : ''}`).join(', ')}.`
      return new UserError(message, {code: 'UNKNOWN_FLAG', hint, exitCode: 2, details: {flags: error.flags}})
    }
    let message = error.message.replace(/\nSee more help with --help$/, '')
    // "Expected --kind=questin to be one of: question, insight, ..." -> add the closest value.
    const option = /^Expected (?:--[\w-]+=)?(.+) to be one of: (.+)$/s.exec(message)
    if (option) message += `.${didYouMean(closest(option[1], option[2].split(', ')))}`
    return new UserError(message, {code: 'USAGE', hint, exitCode: 2})
  }

  private knownFlagNames(): string[] {
    const flags = {...(this.ctor.baseFlags ?? {}), ...(this.ctor.flags ?? {})}
    return [...Object.keys(flags), 'help', ...(this.ctor.enableJsonFlag ? ['json'] : [])]
  }
}

type ParseError = Errors.CLIError & {parse: unknown; flags?: string[]}

/** oclif's CLIParseError and its subclasses (not exported by @oclif/core): a CLIError with the parse it came from. */
function isParseError(error: unknown): error is ParseError {
  return error instanceof Errors.CLIError && 'parse' in error
}

export {UserError}

/**
 * Errors a user can fix. They carry the error contract code (seed 002), what is wrong, what to do,
 * and the exit code. Anything else that escapes a command is a bug and is reported as one.
 */
import type {ErrorContract} from './core/envelope.js'

export class UserError extends Error {
  readonly code: string
  readonly hint?: string
  readonly exitCode: number
  readonly details: Record<string, unknown>

  constructor(
    message: string,
    options: {code?: string; hint?: string; exitCode?: number; details?: Record<string, unknown>; cause?: unknown} = {},
  ) {
    super(message, {cause: options.cause})
    this.name = 'UserError'
    this.code = options.code ?? 'USER_ERROR'
    this.hint = options.hint
    this.exitCode = options.exitCode ?? 2
    this.details = options.details ?? {}
  }

  toContract(): ErrorContract {
    return {error: {code: this.code, message: this.message, details: {...this.details, ...(this.hint ? {hint: this.hint} : {})}}}
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError
}

/** Hides the password (and token-like query params) of a connection URL before it is printed. */
export {maskUrl, maskUrlsIn} from './core/redact.js'

/** Asking before something that cannot be undone: on a terminal a [y/N] question, elsewhere a refusal naming --yes. */
import {createInterface} from 'node:readline/promises'
import {UserError} from '../errors.js'

/** Resolves on yes; throws ABORTED (exit 1) on anything else, CONFIRMATION_REQUIRED (exit 2) without a terminal. */
export async function confirm(question: string, refusal: {message: string; hint: string}): Promise<void> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new UserError(refusal.message, {code: 'CONFIRMATION_REQUIRED', hint: refusal.hint, exitCode: 2})
  const rl = createInterface({input: process.stdin, output: process.stderr})
  try {
    const answer = await rl.question(`${question} [y/N] `)
    if (!/^y(es)?$/i.test(answer.trim())) throw new UserError('Nothing was done', {code: 'ABORTED', exitCode: 1})
  } finally {
    rl.close()
  }
}

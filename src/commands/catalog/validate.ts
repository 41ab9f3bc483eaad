import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {once} from 'node:events'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, catalogFlag, UserError} from '../../cli/base.js'
import {loadCatalog} from '../../catalog/load.js'
import {validateNdjson, type NdjsonSummary} from '../../catalog/ndjson.js'
import {createValidator} from '../../catalog/validate.js'
import type {ErrorContract} from '../../core/envelope.js'

export interface ValidateResult extends NdjsonSummary {
  source: string
  ok: boolean
  /** The first --max-errors error contracts (with details.line). */
  errors: ErrorContract[]
}

export default class CatalogValidate extends BaseCommand<typeof CatalogValidate> {
  static override summary = 'Validate NDJSON events (one envelope per line) against the catalog.'
  static override description = `Reads FILE (or stdin when FILE is "-" or absent) line by line, in constant memory, and checks each line: JSON, the envelope (event_id UUID v4, semver event_version, UTC timestamp, metadata.ip only "redacted", ...) and the payload schema of its event_type (aliases accepted). Blank lines are skipped.

Each bad line prints one error contract (the platform's error format: {"error": {"code", "message", "details"}}, with details.line) on stdout; the summary goes to stderr. With --json, stdout gets one summary object instead, holding the first --max-errors errors.

Exit codes: 0 every line valid, 1 a line is invalid, 2 a usage error (no such file, bad catalog).`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> events.ndjson',
    'cat events.ndjson | <%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> - --json < events.ndjson',
    '<%= config.bin %> <%= command.id %> events.ndjson --catalog ./other.asyncapi.yaml',
  ]

  static override args = {
    file: Args.string({description: 'NDJSON file to check, or "-" for stdin (the default).', required: false, ignoreStdin: true}),
  }

  static override flags = {
    'max-errors': Flags.integer({summary: 'With --json: how many error contracts the summary keeps.', default: 100, min: 0}),
    catalog: catalogFlag,
  }

  public async run(): Promise<ValidateResult> {
    const file = this.args.file ?? '-'
    if (file !== '-') {
      const info = await stat(file).catch(() => null)
      if (!info || !info.isFile()) throw new UserError(`No such file: ${file}`, {code: 'FILE_NOT_FOUND', details: {path: file}, hint: 'Give an NDJSON file, or "-" to read stdin.'})
    }
    if (file === '-' && process.stdin.isTTY) {
      throw new UserError('No input: give an NDJSON FILE, or pipe events into stdin.', {code: 'NO_INPUT', hint: 'e.g. tektree catalog validate events.ndjson'})
    }
    const catalog = await loadCatalog(this.flags.catalog)
    const validator = createValidator(catalog)
    const json = this.jsonEnabled()
    const errors: ErrorContract[] = []
    const max = this.flags['max-errors']
    const input = file === '-' ? process.stdin : createReadStream(file, {highWaterMark: 1 << 20})
    const summary = await validateNdjson(input, validator, (error) => {
      if (json) {
        if (errors.length < max) errors.push(error)
        return
      }
      // Respect stdout back-pressure so a flood of errors cannot pile up in memory.
      if (!process.stdout.write(`${JSON.stringify(error)}\n`)) return once(process.stdout, 'drain').then(() => undefined)
    })
    const ok = summary.invalid === 0
    if (!json) process.stderr.write(`${summary.valid} valid, ${summary.invalid} invalid of ${summary.total} lines${summary.blank > 0 ? ` (${summary.blank} blank skipped)` : ''}\n`)
    if (!ok) process.exitCode = 1
    return {source: file, ok, ...summary, errors}
  }
}

import {Args} from '@oclif/core'
import {createStyle, wrap} from '../../cli/style.js'
import {BaseCommand} from '../../cli/base.js'
import {diffCatalogs, summarizeDiff, type CatalogChange, type DiffSummary} from '../../catalog/diff.js'
import {loadCatalog} from '../../catalog/load.js'

export default class CatalogDiff extends BaseCommand<typeof CatalogDiff> {
  static override summary = 'Compare two catalogs: breaking, minor and patch changes per event, and whether versions were bumped.'
  static override description = `Compares every event of OLD with NEW (an alias in NEW matches the old name), field by field through the payload schemas.

breaking: field removed, type changed, new required field, field made optional, enum narrowed, format or pattern changed, a limit tightened, topic changed, event removed. These need a MAJOR bump of the event's version (for a removed event, of the catalog's info.version).
minor: added optional field, enum widened, limit relaxed, event added, partition key changed. These need at least a MINOR bump (a warning otherwise).
patch: descriptions, examples, consumers, retention.

Exit codes: 0 every breaking change is covered by a major bump, 1 an un-bumped breaking change (use it as a CI gate), 2 a usage error.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> catalog-main.yaml catalog-pr.yaml',
    'git show main:fixtures/catalog/tektree.asyncapi.yaml > /tmp/old.yaml && <%= config.bin %> <%= command.id %> /tmp/old.yaml fixtures/catalog/tektree.asyncapi.yaml',
    '<%= config.bin %> <%= command.id %> old.yaml new.yaml --json | jq \'.changes[] | select(.versionOk | not)\'',
  ]

  static override args = {
    old: Args.string({description: 'The catalog before the change (AsyncAPI 3, YAML or JSON).', required: true, ignoreStdin: true}),
    new: Args.string({description: 'The catalog after the change.', required: true, ignoreStdin: true}),
  }

  public async run(): Promise<{changes: CatalogChange[]; summary: DiffSummary}> {
    const [before, after] = await Promise.all([loadCatalog(this.args.old), loadCatalog(this.args.new)])
    const changes = diffCatalogs(before, after)
    const summary = summarizeDiff(changes)
    if (!this.jsonEnabled()) {
      const style = createStyle()
      if (changes.length === 0) this.log('No changes.')
      else {
        // One block per change: seven columns do not fit 80.
        for (const c of changes) {
          const kind = c.kind === 'breaking' ? style.bad(c.kind) : c.kind === 'minor' ? style.warn(c.kind) : c.kind
          const bump = c.versionOk ? 'covered' : c.kind === 'breaking' ? style.bad('NOT COVERED: needs a major bump') : style.warn('not covered: needs a minor bump')
          const say = (text: string, lead: string) => {
            for (const line of wrap(text, style.width, `${lead}  `, lead)) this.log(line)
          }
          say(`${kind} ${c.type}: ${c.change}${c.path === '$' ? '' : ` at ${c.path}`}`, '')
          if (c.detail) say(c.detail, '  ')
          say(`version ${c.oldVersion ?? '-'} -> ${c.newVersion ?? '-'}: ${bump}`, '  ')
          say(`consumers hit: ${c.consumers.join(', ') || '-'}`, '  ')
        }
      }
      this.log(`${summary.breaking} breaking, ${summary.minor} minor, ${summary.patch} patch`)
      if (summary.unbumpedMinor > 0) this.log(`${style.warn('warning')}: ${summary.unbumpedMinor} minor change(s) without at least a minor version bump`)
      if (summary.unbumpedBreaking > 0) this.log(`${style.bad('FAIL')}: ${summary.unbumpedBreaking} breaking change(s) without a major version bump`)
    }
    if (!summary.ok) process.exitCode = 1
    return {changes, summary}
  }
}

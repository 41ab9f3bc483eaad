import {Args} from '@oclif/core'
import {makeTable} from '../../catalog/render.js'
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
    old: Args.string({description: 'The catalog before the change (AsyncAPI 3, YAML or JSON).', required: true}),
    new: Args.string({description: 'The catalog after the change.', required: true}),
  }

  public async run(): Promise<{changes: CatalogChange[]; summary: DiffSummary}> {
    const [before, after] = await Promise.all([loadCatalog(this.args.old), loadCatalog(this.args.new)])
    const changes = diffCatalogs(before, after)
    const summary = summarizeDiff(changes)
    if (!this.jsonEnabled()) {
      if (changes.length === 0) this.log('No changes.')
      else {
        const table = makeTable(['type', 'kind', 'change', 'path', 'version', 'ok', 'consumers hit'])
        for (const c of changes) {
          table.push([
            c.type,
            c.kind,
            c.detail ? `${c.change}\n${c.detail}` : c.change,
            c.path,
            `${c.oldVersion ?? '-'} -> ${c.newVersion ?? '-'}`,
            c.versionOk ? 'yes' : c.kind === 'breaking' ? 'NO' : 'warn',
            c.consumers.join(', ') || '-',
          ])
        }
        this.log(table.toString())
      }
      this.log(`${summary.breaking} breaking, ${summary.minor} minor, ${summary.patch} patch`)
      if (summary.unbumpedMinor > 0) this.log(`warning: ${summary.unbumpedMinor} minor change(s) without at least a minor version bump`)
      if (summary.unbumpedBreaking > 0) this.log(`FAIL: ${summary.unbumpedBreaking} breaking change(s) without a major version bump`)
    }
    if (!summary.ok) process.exitCode = 1
    return {changes, summary}
  }
}

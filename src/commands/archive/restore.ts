import {Flags} from '@oclif/core'
import {archiveDir, archiveDirFlag, archiveFilterFlags, archiveFilterFrom, checkFilterTypes} from '../../cli/archive-flags.js'
import {BaseCommand, catalogFlag, runtimeFlags} from '../../cli/base.js'
import {openRuntimeFromFlags} from '../../cli/runtime-flags.js'
import type {RestoreResult} from '../../ops/archive/index.js'

export default class ArchiveRestore extends BaseCommand<typeof ArchiveRestore> {
  static override summary = 'Brings archived events back into the store (all, or by the query filters), as already published.'
  static override description = `The events go back exactly as they were archived (the same bytes), with when they were published and which groups handled them (\`tektree trace\` shows it again). They do not enter the outbox: the bus and the services do not see them again (\`tektree replay\` sends them on purpose). Running it twice changes nothing the second time: events already in the store are left as they are. The files stay in the archive.

A stopped \`tektree archive run\` is completed first, so that it cannot later remove what this brings back.`
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> <%= command.id %> --user 3f1c2a9e-7b4d-4e21-9a6f-1c2d3e4f5a61',
    '<%= config.bin %> <%= command.id %> --type "payment.*" --from 2025-01-01 --dry-run',
    '<%= config.bin %> <%= command.id %> --json',
  ]
  static override flags = {
    ...archiveFilterFlags,
    'dry-run': Flags.boolean({summary: 'Count what would come back; change nothing.', default: false}),
    dir: archiveDirFlag,
    catalog: catalogFlag,
    ...runtimeFlags,
  }

  public async run(): Promise<RestoreResult> {
    const filter = archiveFilterFrom(this.flags)
    const dir = await archiveDir(this.flags.dir)
    const [{loadCatalog}, {restoreArchive, openArchive}] = await Promise.all([import('../../catalog/load.js'), import('../../ops/archive/index.js')])
    openArchive(dir)
    await checkFilterTypes(filter, dir, this.flags.catalog)
    const catalog = await loadCatalog(this.flags.catalog)
    const runtime = await openRuntimeFromFlags(this.flags)
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    process.once('SIGINT', onSigint)
    try {
      if (runtime.describe().store.origin === 'in-process') process.stderr.write('The store is in this process only: what comes back is gone when this command ends (start `tektree up`, or give --store-url).\n')
      const result = await restoreArchive({store: runtime.store, catalog, dir, filter, dryRun: this.flags['dry-run'], signal: stop.signal})
      if (!this.jsonEnabled()) {
        const n = (value: number) => value.toLocaleString('en-US')
        if (result.dry_run) this.log(`${n(result.read)} archived event(s) from ${result.files} file(s) would come back (dry run: nothing changed)`)
        else {
          this.log(`${n(result.read)} archived event(s) from ${result.files} file(s): ${n(result.inserted)} restored, ${n(result.duplicates)} already in the store`)
          if (result.conflicts.length > 0) this.log(`${result.conflicts.length} left out: the store holds other content under their ids (first: ${result.conflicts[0]})`)
        }
        if (result.interrupted) this.log('Interrupted: run it again to go on (what came back stays).')
      }
      if (result.interrupted) process.exitCode = 130
      else if (result.conflicts.length > 0) process.exitCode = 1
      return result
    } finally {
      process.off('SIGINT', onSigint)
      await runtime.close()
    }
  }
}

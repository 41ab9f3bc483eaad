import {archiveDir, archiveDirFlag} from '../../cli/archive-flags.js'
import {BaseCommand} from '../../cli/base.js'
import type {VerifyResult} from '../../ops/archive/index.js'

export default class ArchiveVerify extends BaseCommand<typeof ArchiveVerify> {
  static override summary = 'Checks every archive file against the manifest: present, sha256, readable gzip, event count; and no file unlisted.'
  static override description = 'Exit codes: 0 every file matches, 1 a mismatch (each named, with what is wrong), 2 no archive there.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --dir /backups/tektree-archive --json']
  static override flags = {dir: archiveDirFlag}

  public async run(): Promise<VerifyResult> {
    const dir = await archiveDir(this.flags.dir)
    const {verifyArchive} = await import('../../ops/archive/index.js')
    const result = await verifyArchive(dir)
    if (!this.jsonEnabled()) {
      const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}…`)
      for (const p of result.problems) {
        this.log(cut(p.file, 80))
        this.log(cut(`  ${p.problem}`, 80))
      }
      const summary = `${result.files} file(s), ${result.events.toLocaleString('en-US')} event(s), ${result.bytes.toLocaleString('en-US')} bytes`
      this.log(result.ok ? `${summary}: every file matches the manifest` : `${summary}: ${result.problems.length} problem(s)`)
      if (result.running !== null) this.log(`A run (pid ${result.running}) is archiving now: check again once it ends`)
      else if (result.pending > 0) this.log(`${result.pending} file(s) of a stopped run still to finish: \`tektree archive run\` does`)
    }
    if (!result.ok) process.exitCode = 1
    return result
  }
}

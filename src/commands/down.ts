import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base.js'
import {fitLines, terminalWidth} from '../cli/style.js'
import {downEmbeddedRuntime, type DownResult} from '../embedded/index.js'
import {dataDirFlag} from './up.js'

export default class Down extends BaseCommand<typeof Down> {
  static override summary = 'Stop the embedded runtime that `tektree up` started.'
  static override description = `Stops each server of the embedded runtime (redis-server with SHUTDOWN, which flushes its append-only file; mongod and a Kafka broker with SIGTERM, their clean shutdown; SIGKILL after the grace period), waits until the processes are gone, and removes the discovery file. Data stays in <data-dir> (the store file store.db, Redis' append-only file, mongod's files) for the next command or \`tektree up\`, unless --purge, which deletes it.

A server a running command started for its own run is left to that command, which stops it when it ends.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --purge', '<%= config.bin %> <%= command.id %> --grace 3 --json']
  static override flags = {
    'data-dir': dataDirFlag,
    grace: Flags.integer({summary: 'Seconds to wait after SIGTERM before SIGKILL.', default: 10, min: 0}),
    purge: Flags.boolean({summary: 'Also delete the data: the store file (store.db) and the servers\' data directories.', default: false}),
  }

  /** Prints a line fitted to the terminal (80 columns when not one). */
  private say(text = ''): void {
    for (const line of fitLines(text, terminalWidth(process.stdout))) this.log(line)
  }

  public async run(): Promise<DownResult> {
    const result = await downEmbeddedRuntime({dataDir: this.flags['data-dir'], graceMs: this.flags.grace * 1000, purge: this.flags.purge})
    if (!this.jsonEnabled()) {
      if (result.state === 'not-running') this.say('The embedded runtime is not running.')
      for (const s of result.stopped) {
        const how = {terminated: 'stopped', killed: 'killed after the grace period', 'not-running': 'was not running', survived: 'still running', 'pid-reused': 'pid now belongs to another program: left alone'}[s.how]
        this.say(`  ${s.part === 'mongo' ? 'store' : 'bus  '} (pid ${s.pid}): ${how}`)
      }
      for (const l of result.left) this.say(`  ${l.part === 'mongo' ? 'store' : 'bus  '} (pid ${l.pid}): left to the tektree command with pid ${l.owner_pid}, which started it and stops it when it ends`)
      if (result.discovery_file_removed) this.say('Discovery file removed.')
      for (const dir of result.purged) this.say(`Deleted ${dir}`)
    }
    return result
  }
}

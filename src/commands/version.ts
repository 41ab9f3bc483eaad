import {BaseCommand} from '../cli/base.js'

export default class Version extends BaseCommand<typeof Version> {
  static override summary = 'Print tektree\'s version and the Node.js it runs on.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json']

  async run(): Promise<{tektree: string; node: string; platform: string}> {
    const info = {tektree: this.config.version, node: process.version, platform: `${process.platform}-${process.arch}`}
    if (!this.jsonEnabled()) this.log(`tektree ${info.tektree} (node ${info.node}, ${info.platform})`)
    return info
  }
}

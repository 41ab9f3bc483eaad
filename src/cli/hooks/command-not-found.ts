/**
 * oclif's command_not_found hook (package.json oclif.hooks): `tektree simulat` says which command
 * was probably meant, in two lines, exit 2, instead of "command simulat not found". Reads the command
 * ids from the manifest; loads no command.
 */
import type {Hook} from '@oclif/core'
import {closest, didYouMean} from '../../core/suggest.js'

const hook: Hook.CommandNotFound = async function (options) {
  const separator = options.config.topicSeparator ?? ' '
  const shown = (id: string) => id.replaceAll(':', separator)
  const typed = shown(options.id)
  const bin = options.config.bin
  const known = [...options.config.commandIDs, ...options.config.topics.map((t) => t.name)].map(shown)
  const guess = closest(typed, known)
  process.stderr.write(`Error: "${typed}" is not a ${bin} command.${didYouMean(guess, (name) => `\`${bin} ${name}\``)}\nSee \`${bin} --help\` for the commands.\n`)
  // A usage error; ExitError is not printed again by oclif.
  this.exit(2)
}

export default hook

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
  const [first, ...rest] = typed.split(separator)
  let message: string
  if (first.startsWith('-')) message = `Unknown flag ${first}: ${bin} itself has only --help and --version.`
  else if (first === 'help') {
    // `tektree help simulate`: the help is a flag here.
    const target = closest(rest.join(separator), known)[0] ?? (known.includes(rest.join(separator)) ? rest.join(separator) : undefined)
    message = `There is no help command: use \`${bin} ${target ?? '<command>'} --help\`.`
  } else message = `"${typed}" is not a ${bin} command.${didYouMean(closest(typed, known), (name) => `\`${bin} ${name}\``)}`
  process.stderr.write(`Error: ${message}\nSee \`${bin} --help\` for the commands.\n`)
  // A usage error; ExitError is not printed again by oclif.
  this.exit(2)
}

export default hook

#!/usr/bin/env node
/**
 * Writes oclif.manifest.json from the compiled commands in dist/ (run by `npm run build`, after tsc).
 * With it, oclif reads every command's id, flags and help from one JSON file instead of importing
 * each command module (and what they import) at start-up: `tektree --help` loads no command and
 * `tektree catalog list` loads only its own. This is what the oclif dev CLI's `oclif manifest` does,
 * with @oclif/core's own Plugin loader (the dev CLI is not a dependency of tektree).
 *
 * The file is generated, not committed (.gitignore): it describes dist/, which is generated too, and
 * a committed copy would go stale with the first flag someone adds. test/cli/manifest.test.ts checks
 * that it matches dist/.
 */
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
// ignoreManifest: build from the commands, never from the previous manifest; errorOnManifestCreate:
// a command that cannot be loaded fails the build instead of vanishing from the CLI.
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
await plugin.load()
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)

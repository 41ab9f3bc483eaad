/** The resolve hook of record-imports.mjs (module.register runs it off the main thread). */
import {appendFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  if (result.url.startsWith('file:')) appendFileSync(process.env.RECORD_IMPORTS_FILE, `${fileURLToPath(result.url)}\n`)
  return result
}

/** Resolve hook for bench/compiled.mjs: <root>/src/**.{ts,js} -> <root>/dist/**.js. */
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const src = new URL('../src/', import.meta.url).href
const dist = new URL('../dist/', import.meta.url).href

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  if (!resolved.url.startsWith(src)) return resolved
  const url = dist + resolved.url.slice(src.length).replace(/\.tsx?$/, '.js')
  if (!existsSync(fileURLToPath(url))) throw new Error(`${url} is missing: run \`npm run build\` before the benchmarks`)
  return {url, format: 'module', shortCircuit: true}
}

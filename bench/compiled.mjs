/**
 * `node --import tsx --import ./bench/compiled.mjs bench/x.ts`: the benchmark's own .ts runs through
 * tsx, but every module it imports from src/ is loaded from the compiled build in dist/, the code the
 * `tektree` CLI runs. Under tsx the same code ran about 20% slower (its transform wraps named
 * functions and closures), which is not what a user gets. Needs `npm run build` first.
 */
import {register} from 'node:module'

register('./compiled-hooks.mjs', import.meta.url)

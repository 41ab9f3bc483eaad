#!/usr/bin/env node
import {execute} from '@oclif/core'
import {endQuietlyOnClosedPipe} from '../dist/cli/pipe.js'

endQuietlyOnClosedPipe()
await execute({dir: import.meta.url})

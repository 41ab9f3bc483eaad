/**
 * Rules as data: fixtures/catalog/rules/<service>.yaml, next to the catalog. Each service validates
 * its own file with a JSON Schema, so a bad rules file fails with the file and the field named.
 */
import {readFileSync} from 'node:fs'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv, type ErrorObject} from 'ajv'
import {parse} from 'yaml'
import {UserError} from '../errors.js'

export function defaultRulesDir(): string {
  // dist/services or src/services -> the package root
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'catalog', 'rules')
}

/** Reads and validates one rules file; the result is typed by the caller's schema. */
export function loadRulesFile<T>(name: string, schema: Record<string, unknown>, rulesDir = defaultRulesDir()): T {
  const file = join(rulesDir, `${name}.yaml`)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new UserError(`Cannot read the ${name} rules file ${file}: ${(error as Error).message}`, {
      code: 'RULES_NOT_FOUND',
      hint: 'Pass the folder holding gamification.yaml, payment.yaml and notification.yaml, or restore fixtures/catalog/rules.',
    })
  }
  let data: unknown
  try {
    data = parse(text)
  } catch (error) {
    throw new UserError(`${file} is not valid YAML: ${(error as Error).message}`, {code: 'RULES_INVALID'})
  }
  const ajv = new Ajv({allErrors: true, useDefaults: true})
  const validate = ajv.compile(schema)
  if (!validate(data)) {
    const first = validate.errors?.[0] as ErrorObject
    const where = first.instancePath === '' ? '(root)' : first.instancePath
    throw new UserError(`${file}: ${where} ${first.message ?? 'is invalid'}`, {
      code: 'RULES_INVALID',
      hint: `Fix the field ${where} in ${file}.`,
    })
  }
  return data as T
}

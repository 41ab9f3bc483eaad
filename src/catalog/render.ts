/** Tables for the catalog commands: colours only on a terminal, so piped output stays plain text. */
import Table from 'cli-table3'

export function makeTable(head: string[]): InstanceType<typeof Table> {
  const tty = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
  return new Table({head, ...(tty ? {} : {style: {head: [], border: []}})})
}

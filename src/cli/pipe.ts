/**
 * A closed pipe ends quietly: `tektree catalog validate big.ndjson | head -1` stops when head has its
 * line, with exit 0 and no "Error: write EPIPE", as `cat` does. The reader chose to stop reading;
 * that is not a failure of the command. Installed once, by bin/run.js, for every command.
 */

/** True for the error a write to a pipe whose reader has gone gets. */
export function isClosedPipe(error: unknown): boolean {
  return (error as {code?: unknown} | null)?.code === 'EPIPE'
}

/**
 * On EPIPE from stdout or stderr the process exits 0 at once (like the default SIGPIPE of a C
 * program; the 'exit' hooks still stop any server this command started). Any other stream error is
 * thrown, as it would be with no listener.
 */
export function endQuietlyOnClosedPipe(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr], exit: (code: number) => void = (code) => process.exit(code)): void {
  for (const stream of streams) {
    stream.on('error', (error) => {
      if (isClosedPipe(error)) exit(0)
      else throw error
    })
  }
}

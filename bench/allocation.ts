/**
 * Bytes allocated on this thread while `run` runs, from V8's sampling heap profiler with the
 * objects later collected kept in (an estimate: one sample per `intervalBytes` allocated on
 * average). What the GC has to clear is set by what is allocated, and unlike CPU time this moves
 * little with a busy machine: a figure to compare two builds by.
 */
import {Session} from 'node:inspector'

type Node = {selfSize: number; children: Node[]}

export async function allocatedBytes<T>(run: () => Promise<T>, intervalBytes = 32 * 1024): Promise<{result: T; bytes: number}> {
  const session = new Session()
  session.connect()
  const post = <R>(method: string, params?: object) =>
    new Promise<R>((resolve, reject) => session.post(method, params, (error, reply) => (error ? reject(error) : resolve(reply as R))))
  try {
    await post('HeapProfiler.enable')
    await post('HeapProfiler.startSampling', {samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true})
    const result = await run()
    const {profile} = await post<{profile: {head: Node}}>('HeapProfiler.stopSampling')
    return {result, bytes: sum(profile.head)}
  } finally {
    session.disconnect()
  }
}

function sum(node: Node): number {
  let total = node.selfSize
  for (const child of node.children) total += sum(child)
  return total
}

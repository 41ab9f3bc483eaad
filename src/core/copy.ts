/**
 * A deep copy of JSON-shaped data (plain objects, arrays, primitives): what the in-process store
 * copies on every append, read and projection write. structuredClone serializes and deserializes,
 * about 9x slower on an envelope; this walks the value. Anything else inside (a Date, a Map, a typed
 * array, a class instance, a function) is handed to structuredClone, so the result, or the error, is
 * what structuredClone gives.
 */
export function copyData<T>(value: T): T {
  if (typeof value !== 'object' || value === null) {
    // structuredClone refuses these (DataCloneError), and so does the store.
    return typeof value === 'function' || typeof value === 'symbol' ? structuredClone(value) : value
  }
  if (Array.isArray(value)) {
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = copyData(value[i])
    return out as T
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return structuredClone(value)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const item = copyData((value as Record<string, unknown>)[key])
    // An own "__proto__" (JSON.parse makes one) must stay data, not become the copy's prototype.
    if (key === '__proto__') Object.defineProperty(out, key, {value: item, enumerable: true, writable: true, configurable: true})
    else out[key] = item
  }
  return out as T
}

/**
 * Text made safe to print. A connection URL (messages, errors, status, discovery, logs, metrics
 * labels): its secrets masked, working on the text without parsing it as a URL, so a URL that does
 * not parse (a port out of range, several MongoDB hosts) is masked the same way as one that does.
 * Untrusted text (bytes from the bus, error messages quoting them): its control characters shown.
 */

const MASK = '****'

/** Query parameters that carry a secret (password=, pwd=, token=, secret=, sasl_password=, apiKey=, ...). */
const SECRET_PARAM = /pass|pwd|token|secret|credential|sasl|api_?key|^auth$|^key$|signature/i

/**
 * Hides the password of the userinfo (`scheme://user:PASSWORD@`, `scheme://:PASSWORD@`) and the value
 * of every secret-looking query parameter. Everything else is left as written.
 */
export function maskUrl(url: string): string {
  let out = url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)@/, (_all, scheme: string, userinfo: string) => {
    // The last '@' before the path ends the userinfo (a password may hold an unescaped '@').
    const colon = userinfo.indexOf(':')
    return colon === -1 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:${MASK}@`
  })
  const query = out.indexOf('?')
  if (query !== -1) {
    const hash = out.indexOf('#', query)
    const end = hash === -1 ? out.length : hash
    const params = out
      .slice(query + 1, end)
      .split(/([&;])/)
      .map((part) => {
        const eq = part.indexOf('=')
        if (eq === -1) return part
        let name = part.slice(0, eq)
        try {
          name = decodeURIComponent(name)
        } catch {
          // keep it as written
        }
        return SECRET_PARAM.test(name) ? `${part.slice(0, eq)}=${MASK}` : part
      })
      .join('')
    out = `${out.slice(0, query + 1)}${params}${out.slice(end)}`
  }
  return out
}

/** Every URL inside a text (an error message from a driver, a log line) masked with maskUrl. */
export function maskUrlsIn(text: string): string {
  return text.replace(/[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>]+/g, (url) => maskUrl(url))
}

// C0, DEL and C1: ESC starts CSI/OSC sequences, and a terminal may read U+009B as CSI, U+009D as OSC.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g
const CONTROL_OR_LAYOUT_KEPT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g
const SHORT: Record<string, string> = {'\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f'}

/**
 * Untrusted text (event bytes, ids and types from the bus, error messages that quote them) as it
 * may reach an operator's terminal: every control character is shown the way JSON writes it
 * (\u001b, \n, \r), so none of it can move the cursor, clear the screen, set the title or write
 * the clipboard (ESC [ 2J, OSC 52). A single line stays one line; `layout: true` keeps \n and \t
 * for a block printed as lines (a message's original bytes); JSON text shown that way stays valid
 * JSON that means the same.
 */
export function printable(text: string, options: {layout?: boolean} = {}): string {
  return text.replace(options.layout ? CONTROL_OR_LAYOUT_KEPT : CONTROL, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

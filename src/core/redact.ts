/**
 * The one place a connection URL is made safe to print (messages, errors, status, discovery, logs,
 * metrics labels). Works on the text, without parsing it as a URL: a URL that does not parse (a port
 * out of range, several MongoDB hosts) is masked the same way as one that does.
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

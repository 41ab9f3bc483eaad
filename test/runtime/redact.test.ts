/** maskUrl, the one place a URL is made safe to print (issue 12, item 9). */
import {describe, expect, it} from 'vitest'
import {maskUrl, maskUrlsIn} from '../../src/errors.js'

describe('maskUrl', () => {
  it('masks the userinfo password with or without a user name, even when the URL does not parse', () => {
    expect(maskUrl('redis://:PASSWORD@127.0.0.1:99999')).toBe('redis://:****@127.0.0.1:99999')
    expect(maskUrl('redis://admin:PASSWORD@127.0.0.1:6379/0')).toBe('redis://admin:****@127.0.0.1:6379/0')
    expect(maskUrl('redis://:PASS@WORD@[::1')).toBe('redis://:****@[::1')
    expect(maskUrl('mongodb://app:PASSWORD@h1:27017,h2:27018/db?replicaSet=rs')).toBe('mongodb://app:****@h1:27017,h2:27018/db?replicaSet=rs')
  })

  it('masks secret query parameters and leaves the others as written', () => {
    expect(maskUrl('redis://127.0.0.1:6391/?password=PASSWORD')).toBe('redis://127.0.0.1:6391/?password=****')
    expect(maskUrl('mongodb://h/db?authSource=admin&authMechanism=SCRAM-SHA-256&tlsCertificateKeyFilePassword=PASSWORD&pwd=PASSWORD')).toBe(
      'mongodb://h/db?authSource=admin&authMechanism=SCRAM-SHA-256&tlsCertificateKeyFilePassword=****&pwd=****',
    )
    expect(maskUrl('kafka://h:9092?sasl_password=PASSWORD;token=PASSWORD&secret=PASSWORD#x')).toBe('kafka://h:9092?sasl_password=****;token=****&secret=****#x')
  })

  it('leaves URLs without secrets alone', () => {
    for (const url of ['redis://127.0.0.1:6379', 'redis://user@h:1/', 'sqlite:/tmp/a.db', 'sqlite::memory:', 'memory:', 'not a url']) expect(maskUrl(url)).toBe(url)
  })

  it('maskUrlsIn masks every URL inside a text', () => {
    expect(maskUrlsIn('connect redis://:PASSWORD@h:1 failed, then mongodb://u:PASSWORD@h/db?token=PASSWORD.')).not.toContain('PASSWORD')
  })
})

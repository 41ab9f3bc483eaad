/**
 * Email: the welcome and verification mails of user.registered, as RFC 5322 .eml files in a local
 * folder (no network). TekTree events carry no raw address (seed 004: email_hash only), so a mail is
 * addressed to a placeholder derived from the hash and says so in a header; a real sender would look
 * the address up in the user service. File names are deterministic: a redelivery overwrites.
 */
import {mkdirSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {ServiceDefinition} from '../../engine/consumer.js'
import type {ServiceOptions} from '../types.js'
import {effectsByType, stableId, str} from '../util.js'

export const MESSAGES = 'email_messages'

const SUBJECTS: Record<string, string> = {
  welcome: 'Welcome to TekTree',
  verification: 'Verify your TekTree email address',
}

export function renderEml(template: string, user: string, username: string, emailHash: string, at: string, messageId: string): string {
  const to = `user-${emailHash.replace(/^sha256:/, '').slice(0, 16)}@users.tektree.invalid`
  const body =
    template === 'verification'
      ? `Hi ${username},\r\n\r\nPlease confirm your email address: https://tektree.invalid/verify/${user}\r\n`
      : `Hi ${username},\r\n\r\nWelcome to TekTree. Ask a question, share an insight, follow people you learn from.\r\n`
  return [
    `From: TekTree <no-reply@tektree.invalid>`,
    `To: ${to}`,
    `Subject: ${SUBJECTS[template] ?? template}`,
    `Date: ${new Date(Date.parse(at)).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${messageId}@tektree.invalid>`,
    `MIME-Version: 1.0`,
    `Content-Type: text/plain; charset=utf-8`,
    `X-TekTree-Template: ${template}`,
    `X-TekTree-User-Id: ${user}`,
    `X-TekTree-Email-Hash: ${emailHash}`,
    `X-TekTree-Note: events carry no raw address (email_hash only); To is a placeholder`,
    '',
    body,
  ].join('\r\n')
}

export function createEmailService(options: ServiceOptions): ServiceDefinition {
  const effects = effectsByType(options.catalog, 'email')
  const dir = options.emailDir ?? null
  if (dir) mkdirSync(dir, {recursive: true})
  return {
    name: 'email',
    consumes: [...effects.keys()],
    async handle(event, ctx) {
      for (const effect of effects.get(ctx.definition.type) ?? []) {
        if (effect.action !== 'send_email') continue
        const user = str(event.payload, 'user_id')
        if (!user) continue
        const hash = str(event.payload, 'email_hash') ?? 'unknown'
        const username = str(event.payload, 'username') ?? 'there'
        for (const template of (effect.params.templates as string[] | undefined) ?? []) {
          const messageId = stableId('email', event.event_id, template)
          let file: string | null = null
          if (dir) {
            file = join(dir, `${user}-${template}.eml`)
            // Write then rename: a reader never sees half a mail, a redelivery replaces it whole.
            const tmp = `${file}.${process.pid}.tmp`
            writeFileSync(tmp, renderEml(template, user, username, hash, event.timestamp, messageId))
            renameSync(tmp, file)
          }
          await ctx.store.projections.applyOnce(MESSAGES, `${template}:${user}`, event.event_id, {
            $set: {template, user_id: user, email_hash: hash, file, message_id: messageId, sent_at: event.timestamp},
          })
        }
      }
    },
  }
}

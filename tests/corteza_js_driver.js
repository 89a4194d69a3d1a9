// Drives every Messaging method of the official @cortezaproject/corteza-js client against the mock
// and prints what each returned (or rejected with) as one JSON object on stdout.
// Env: CORTEZA_BASE (base URL), CORTEZA_TOKEN (the caller's JWT), CORTEZA_OTHER (another user's ID).
const { apiClients } = require('@cortezaproject/corteza-js')

const api = new apiClients.Messaging({ baseURL: process.env.CORTEZA_BASE, jwt: process.env.CORTEZA_TOKEN })
const other = process.env.CORTEZA_OTHER
const results = {}

async function call (name, args) {
  try {
    results[name] = { ok: await api[name](args) }
  } catch (error) {
    // stdResolve rejects with the envelope's `error`; axios with an HTTP error
    results[name] = { error: error && error.message !== undefined ? error.message : String(error) }
  }
  return results[name].ok
}

async function main () {
  await call('commandsList')
  await call('statusSet', { icon: '🍔', message: 'Lunch', expires: 'tomorrow 1h' })
  await call('statusList')
  await call('activitySend', { kind: 'typing' })
  const channel = await call('channelCreate', { name: 'corteza-js', topic: 'Driven by the official client', type: 'public' })
  const channelID = channel && channel.channelID
  await call('channelList', { query: 'corteza-js' })
  await call('channelRead', { channelID })
  await call('channelUpdate', { channelID, name: 'corteza-js 2', topic: 'Renamed', type: 'public' })
  await call('channelSetFlag', { channelID, flag: 'pinned' })
  await call('channelRemoveFlag', { channelID })
  await call('channelInvite', { channelID, userID: [other] })
  await call('channelJoin', { channelID, userID: other })
  await call('channelMembers', { channelID })
  await call('channelPart', { channelID, userID: other })
  const message = await call('messageCreate', { channelID, message: 'Hello from corteza-js' })
  const messageID = message && message.messageID
  await call('messageEdit', { channelID, messageID, message: 'Hello, edited' })
  await call('messageReplyCreate', { channelID, messageID, message: 'A reply' })
  await call('messagePinCreate', { channelID, messageID })
  await call('messageBookmarkCreate', { channelID, messageID })
  await call('messageReactionCreate', { channelID, messageID, reaction: 'thumbsup' })
  await call('searchMessages', { channelID: [channelID], limit: 10 })
  await call('searchThreads', { channelID: [channelID] })
  await call('messageMarkAsRead', { channelID, lastReadMessageID: messageID })
  await call('messageExecuteCommand', { channelID, command: 'shrug', input: 'oh well' })
  await call('messageReactionRemove', { channelID, messageID, reaction: 'thumbsup' })
  await call('messageBookmarkRemove', { channelID, messageID })
  await call('messagePinRemove', { channelID, messageID })
  // The client sends this body as JSON, which cannot carry a file (on the real server as here);
  // browsers' webapps upload with a multipart form, as done next, to get an attachment to serve.
  await call('channelAttach', { channelID, upload: new Blob(['hello, file'], { type: 'text/plain' }) })
  const form = new FormData()
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==', 'base64')
  form.append('upload', new Blob([png], { type: 'image/png' }), 'chart.png')  // a 1x1 PNG
  const uploaded = await fetch(`${process.env.CORTEZA_BASE}/channels/${channelID}/attach`, {
    method: 'POST', body: form, headers: { Authorization: `Bearer ${process.env.CORTEZA_TOKEN}` }
  }).then(response => response.json())
  results.multipartUpload = uploaded
  const attachment = uploaded.response
  if (attachment && attachment.url) {
    const url = new URL(attachment.url, 'http://x')
    await call('attachmentOriginal', { attachmentID: attachment.attachmentID, name: attachment.name,
      sign: url.searchParams.get('sign'), userID: url.searchParams.get('userID') })
    await call('attachmentPreview', { attachmentID: attachment.attachmentID, ext: 'png',
      sign: url.searchParams.get('sign'), userID: url.searchParams.get('userID') })
  }
  await call('messageDelete', { channelID, messageID })
  await call('permissionsList')
  await call('permissionsEffective', {})
  await call('permissionsRead', { roleID: '2' })
  await call('permissionsUpdate', { roleID: '2', rules: [{ resource: 'messaging', operation: 'channel.group.create', access: 'allow' }] })
  await call('permissionsDelete', { roleID: '2' })
  await call('channelState', { channelID, state: 'archive' })
  await call('statusDelete')
  process.stdout.write(JSON.stringify(results))
}

main().catch(error => { console.error(error); process.exit(1) })

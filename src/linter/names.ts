/**
 * Name classifiers shared by the rules: which property and parameter names mean a password, a
 * secret, a server-set field, a privilege, a URL the server will fetch, a page size, an id.
 * Names are compared normalised: lower case, without `_`, `-`, `.` and spaces (`password_hash`,
 * `passwordHash` and `Password-Hash` are one name).
 */

export function norm(name: string): string {
  return name.toLowerCase().replace(/[_\-.\s]/g, '')
}

const PASSWORD_EXACT = new Set(['password', 'passwd', 'pwd', 'passphrase', 'pass', 'pin'])

/** A password the client sends (login, registration, change). */
export function isPasswordName(name: string): boolean {
  const n = norm(name)
  if (PASSWORD_EXACT.has(n)) return true
  return /(password|passwd|passphrase)$/.test(n) && !/(hint|policy|reset|expires?|length|strength)/.test(n)
}

const SENSITIVE_EXACT = new Set([
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'passwordhash',
  'hashedpassword',
  'passwordsalt',
  'pwdhash',
  'pinhash',
  'secret',
  'clientsecret',
  'secretkey',
  'privatekey',
  'ssn',
  'socialsecuritynumber',
  'cardnumber',
  'creditcard',
  'creditcardnumber',
  'ccnumber',
  'cvv',
  'cvc',
  'cvv2',
  'pin',
  'otpsecret',
  'totpsecret',
  'mfasecret',
  'recoverycodes',
  'backupcodes',
  'securityanswer',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'sessiontoken',
  'sessionid',
  'apisecret',
])
const TOKEN_NAMES = new Set(['token', 'accesstoken', 'refreshtoken', 'idtoken', 'sessiontoken', 'sessionid'])

/** A property that must never be returned (password, hash, secret, token, ssn, card number...). */
export function sensitiveKind(name: string): 'token' | 'secret' | undefined {
  const n = norm(name)
  if (TOKEN_NAMES.has(n)) return 'token'
  if (SENSITIVE_EXACT.has(n)) return 'secret'
  if (
    /(password|passwordhash|passwordsalt|privatekey|clientsecret|secretkey|signingsecret|webhooksecret)$/.test(
      n,
    )
  )
    return 'secret'
  return undefined
}

const SERVER_SET = new Set([
  'id',
  'uuid',
  'createdat',
  'updatedat',
  'modifiedat',
  'deletedat',
  'createdby',
  'updatedby',
  'modifiedby',
  'created',
  'updated',
  'createdon',
  'updatedon',
  'creationdate',
  'ownerid',
  'balance',
  'emailverified',
  'verified',
  'isverified',
  'approved',
  'isapproved',
  'passwordhash',
])

/** A field the server sets (ids, timestamps, owner, balance, verification). `_id` counts. */
export function isServerSetName(name: string): boolean {
  return SERVER_SET.has(norm(name)) || name === '_id'
}

const PRIVILEGE = new Set([
  'role',
  'roles',
  'isadmin',
  'admin',
  'issuperuser',
  'superuser',
  'isstaff',
  'permissions',
  'permission',
  'privileges',
  'accesslevel',
  'scopes',
  'usertype',
  'isowner',
  'groups',
])

/** A field that grants privileges (role, isAdmin, permissions, scopes...). */
export function isPrivilegeName(name: string): boolean {
  return PRIVILEGE.has(norm(name))
}

const URL_EXACT = new Set([
  'url',
  'uri',
  'href',
  'callback',
  'webhook',
  'redirect',
  'endpoint',
  'proxy',
  'feed',
  'host',
  'hostname',
  'domain',
])

/** A name that says the value is a URL or a host (url, callback, webhook, redirect, imageUrl...). */
export function isUrlName(name: string): boolean {
  const n = norm(name)
  if (URL_EXACT.has(n)) return true
  return (
    /(url|uri|href|callback|webhook|endpoint|redirect|hostname)$/.test(n) || /^(webhook|callback)/.test(n)
  )
}

const REDIRECT = new Set([
  'redirect',
  'redirecturi',
  'redirecturl',
  'redirectto',
  'returnurl',
  'returnto',
  'return',
  'next',
  'continue',
  'goto',
  'dest',
  'destination',
  'successurl',
  'cancelurl',
  'failureurl',
])

/** A query parameter whose value the API redirects the browser to. */
export function isRedirectName(name: string): boolean {
  return REDIRECT.has(norm(name))
}

const PAGE_SIZE = new Set([
  'limit',
  'pagesize',
  'perpage',
  'size',
  'top',
  'first',
  'last',
  'maxresults',
  'pagelimit',
  'take',
  'max',
  'rows',
  'count',
  'numresults',
  'resultsperpage',
  'itemsperpage',
  'maxitems',
  'maxpagesize',
  'batchsize',
])

/** A parameter that sets how many items one answer holds. */
export function isPageSizeName(name: string): boolean {
  return PAGE_SIZE.has(norm(name))
}

/** An identifier: `id`, `ids`, `userId`, `user_id`, `accountIDs` (not `valid`, `paid`). */
export function isIdName(name: string): boolean {
  return (
    /^(id|ids|uid)$/i.test(name) || /(_|-|[a-z0-9])(Id|ID|Ids|IDs)$/.test(name) || /[_-](id|ids)$/i.test(name)
  )
}

/** Error detail fields that leak internals. */
export function isInternalErrorName(name: string): boolean {
  return /^(stack|stacktrace|trace|traceback|exception|exceptionmessage|debug|debuginfo|sql|query|innerexception|file|line|errno|syscall|backtrace)$/.test(
    norm(name),
  )
}

/** Personal data that should not travel in URLs (logged by proxies and servers). */
export function isPiiName(name: string): boolean {
  return /^(email|emailaddress|phone|phonenumber|mobile|ssn|socialsecuritynumber|dateofbirth|dob|birthdate|iban|cardnumber|creditcard|passport|passportnumber|taxid|nationalid)$/.test(
    norm(name),
  )
}

/** Error signatures in response bodies: stack traces, SQL and NoSQL errors, command output, file contents. */

export interface Signature {
  kind: 'stack-trace' | 'sql' | 'nosql' | 'command' | 'path-traversal'
  label: string
  re: RegExp
}

export const STACK_TRACES: readonly Signature[] = [
  {
    kind: 'stack-trace',
    label: 'Node.js stack trace',
    re: /\n[ \t]{0,20}at [^\n]{0,200}\.(?:m?js|cjs|ts):\d+:\d+/,
  },
  {
    kind: 'stack-trace',
    label: 'Node.js stack trace',
    re: /\bat (?:async )?[\w.<>$]{1,200} \((?:file:\/\/|node:|\/)[^)\n]{1,200}:\d+:\d+\)/,
  },
  { kind: 'stack-trace', label: 'Python traceback', re: /Traceback \(most recent call last\):/ },
  {
    kind: 'stack-trace',
    label: 'Java stack trace',
    re: /\n[ \t]{0,20}at (?:java|javax|org|com|sun|jdk)\.[\w.$]{1,200}\([\w.]{1,100}\.java:\d+\)/,
  },
  {
    kind: 'stack-trace',
    label: '.NET stack trace',
    re: /\bat System\.[\w.`]{1,200}\(|--- End of inner exception stack trace ---/,
  },
  {
    kind: 'stack-trace',
    label: 'PHP error',
    re: /(?:Fatal error|Warning|Parse error)<?\/?b?>?:\s[^\n]{1,300} on line <?b?>?\d+/,
  },
  { kind: 'stack-trace', label: 'Go panic', re: /goroutine \d+ \[running\]:|panic: runtime error/ },
  { kind: 'stack-trace', label: 'Ruby backtrace', re: /\.rb:\d+:in `[^'\n]{1,200}'/ },
]

export const SQL_ERRORS: readonly Signature[] = [
  {
    kind: 'sql',
    label: 'MySQL error',
    re: /You have an error in your SQL syntax|mysql_fetch|MySqlException|com\.mysql\.jdbc/i,
  },
  {
    kind: 'sql',
    label: 'PostgreSQL error',
    re: /PG::SyntaxError|pg_query\(\)|PSQLException|unterminated quoted string at or near|syntax error at or near "/i,
  },
  {
    kind: 'sql',
    label: 'SQLite error',
    re: /SQLITE_ERROR|sqlite3\.OperationalError|SQLiteException|unrecognized token: "|near "[^"]{0,40}": syntax error/i,
  },
  { kind: 'sql', label: 'Oracle error', re: /\bORA-\d{5}\b|quoted string not properly terminated/i },
  {
    kind: 'sql',
    label: 'SQL Server error',
    re: /Unclosed quotation mark after the character string|Microsoft OLE DB Provider for SQL Server|\[SQL Server\]/i,
  },
  {
    kind: 'sql',
    label: 'SQL error',
    re: /SQLSTATE\[|SQL syntax error|java\.sql\.SQLException|SequelizeDatabaseError|QueryFailedError/i,
  },
]

export const NOSQL_ERRORS: readonly Signature[] = [
  {
    kind: 'nosql',
    label: 'MongoDB error',
    re: /MongoError|MongoServerError|BSONTypeError|unknown operator: \$\w+|\$where/i,
  },
  { kind: 'nosql', label: 'Mongoose cast error', re: /CastError: Cast to \w+ failed/ },
]

export const COMMAND_OUTPUT: readonly Signature[] = [
  { kind: 'command', label: 'output of `id`', re: /\buid=\d+\([\w-]+\) gid=\d+\([\w-]+\)/ },
]

export const FILE_CONTENTS: readonly Signature[] = [
  { kind: 'path-traversal', label: '/etc/passwd contents', re: /\broot:[x*!]?:0:0:/ },
  { kind: 'path-traversal', label: 'win.ini contents', re: /\[fonts\][\s\S]{0,200}\[extensions\]/i },
]

/** The first signature found in a text (bounded: only the first 64 KiB is looked at). */
export function matchSignature(text: string, sigs: readonly Signature[]): Signature | undefined {
  let t = text.length > 65_536 ? text.slice(0, 65_536) : text
  // A stack inside a JSON string has its newlines escaped.
  if (t.includes('\\n')) t = t.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
  return sigs.find((s) => s.re.test(t))
}

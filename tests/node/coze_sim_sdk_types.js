// Required fields of the official Coze SDK's TypeScript types (@coze/api's
// dist/types/**/*.d.ts), derived from the .d.ts text when a test runs, so a
// check follows the installed SDK rather than a hand-copied list.
//
// A small reader for the subset of TypeScript those files use: interfaces
// (with `extends`), type aliases, object literals, `A & B`, `Omit<T, 'k'|…>`,
// `Required<T>`, `T[]`, enums of string values. A member `name: T` is
// required, `name?: T` optional; unions and primitives are leaves (only
// presence is checked, not the type). Exports:
//   load()                       → the parsed declarations of the SDK
//   wsEventSchemas(decls)        → Map event_type → [schema] (downstream WebSocket events)
//   sseEventSchemas(decls)       → Map SSE event name → data schema (StreamChatData)
//   schemaOf(decls, 'Name')      → schema of a named type
//   violations(value, schema)    → list of "path: missing" strings ([] = conforms)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function typesDir() {
  // require.resolve gives dist/cjs/index.js; the types are in dist/types.
  const main = require.resolve('@coze/api');
  return path.join(path.dirname(main), '..', 'types', 'resources');
}

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

// Splits `text` at `sep` characters that are not nested in {} <> () [] or quotes.
function splitTop(text, sep) {
  const out = [];
  let depth = 0, quote = null, cur = '';
  for (const ch of text) {
    if (quote) { cur += ch; if (ch === quote) quote = null; continue; }
    if (ch === '\'' || ch === '"') { quote = ch; cur += ch; continue; }
    if ('{<(['.includes(ch)) depth++;
    if ('}>)]'.includes(ch)) depth--;
    if (ch === sep && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

// The text between the brace at `open` and its match.
function braceBody(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced braces in the SDK types');
}

// Members of an object-literal body: name → {optional, expr}.
function members(body) {
  const fields = {};
  for (const m of splitTop(body, ';').flatMap((x) => splitTop(x, ','))) {
    const mm = /^(?:readonly\s+)?['"]?([A-Za-z_$][\w$]*)['"]?(\?)?\s*:\s*([\s\S]+)$/.exec(m);
    if (mm) fields[mm[1]] = { optional: Boolean(mm[2]), expr: mm[3].trim() };
  }
  return fields;
}

function load() {
  const decls = { interfaces: {}, aliases: {}, enums: {} };
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith('.d.ts')) files.push(path.join(d, e.name));
    }
  };
  walk(typesDir());
  for (const f of files) {
    const text = stripComments(fs.readFileSync(f, 'utf8'));
    const scope = path.relative(typesDir(), f);
    for (const m of text.matchAll(/(?:export\s+)?(?:declare\s+)?interface\s+(\w+)(?:<[^>]*>)?\s*(?:extends\s+([^{]+))?\{/g)) {
      const body = braceBody(text, m.index + m[0].length - 1);
      decls.interfaces[`${scope}:${m[1]}`] = { name: m[1], scope, extends: m[2] ? splitTop(m[2], ',') : [], fields: members(body) };
    }
    for (const m of text.matchAll(/(?:export\s+)?(?:declare\s+)?type\s+(\w+)(?:<[^>]*>)?\s*=\s*/g)) {
      // The alias runs to the first ';' outside braces.
      let depth = 0, i = m.index + m[0].length;
      for (; i < text.length; i++) {
        if ('{<(['.includes(text[i])) depth++;
        else if ('}>)]'.includes(text[i])) depth--;
        else if (text[i] === ';' && depth === 0) break;
      }
      decls.aliases[`${scope}:${m[1]}`] = { name: m[1], scope, expr: text.slice(m.index + m[0].length, i).trim() };
    }
    for (const m of text.matchAll(/(?:export\s+)?(?:declare\s+)?enum\s+(\w+)\s*\{/g)) {
      const body = braceBody(text, m.index + m[0].length - 1);
      const values = {};
      for (const v of body.matchAll(/(\w+)\s*=\s*"([^"]*)"/g)) values[v[1]] = v[2];
      decls.enums[`${scope}:${m[1]}`] = values;
    }
  }
  return decls;
}

// A named declaration, preferring the one in `scope` (names repeat across files).
function find(map, name, scope) {
  if (map[`${scope}:${name}`]) return map[`${scope}:${name}`];
  const hits = Object.keys(map).filter((k) => k.endsWith(`:${name}`));
  return hits.length ? map[hits[0]] : null;
}

// Schema: {fields: {name: {optional, expr}}, scope} | {array: schema} | null (leaf).
function evalType(decls, expr, scope, seen = new Set()) {
  expr = expr.trim();
  if (expr.endsWith('[]')) {
    const item = evalType(decls, expr.slice(0, -2), scope, seen);
    return item ? { array: item } : null;
  }
  if (splitTop(expr, '|').length > 1) return null;  // unions: presence only
  const parts = splitTop(expr, '&');
  if (parts.length > 1) {
    const fields = {};
    for (const p of parts) {
      const s = evalType(decls, p, scope, seen);
      if (s && s.fields) Object.assign(fields, s.fields);
    }
    return { fields, scope };
  }
  if (expr.startsWith('(') && expr.endsWith(')')) return evalType(decls, expr.slice(1, -1), scope, seen);
  if (expr.startsWith('{')) return { fields: members(braceBody(expr, 0)), scope };
  let m = /^Omit<([\s\S]+)>$/.exec(expr);
  if (m) {
    const [base, keys] = splitTop(m[1], ',');
    const s = evalType(decls, base, scope, seen);
    const drop = new Set([...keys.matchAll(/'([^']+)'/g)].map((k) => k[1]));
    const fields = {};
    for (const [k, v] of Object.entries((s && s.fields) || {})) if (!drop.has(k)) fields[k] = v;
    return { fields, scope: s ? s.scope : scope };
  }
  m = /^Required<([\s\S]+)>$/.exec(expr);
  if (m) {
    const s = evalType(decls, m[1], scope, seen);
    const fields = {};
    for (const [k, v] of Object.entries((s && s.fields) || {})) fields[k] = { ...v, optional: false };
    return { fields, scope: s ? s.scope : scope };
  }
  if (!/^[A-Za-z_]\w*$/.test(expr) || seen.has(expr)) return null;
  const next = new Set(seen).add(expr);
  const itf = find(decls.interfaces, expr, scope);
  if (itf) {
    const fields = {};
    for (const e of itf.extends) {
      const s = evalType(decls, e, itf.scope, next);
      if (s && s.fields) Object.assign(fields, s.fields);
    }
    Object.assign(fields, itf.fields);
    return { fields, scope: itf.scope };
  }
  const alias = find(decls.aliases, expr, scope);
  if (alias) return evalType(decls, alias.expr, alias.scope, next);
  return null;
}

function schemaOf(decls, name) {
  const s = evalType(decls, name, '');
  if (!s) throw new Error(`no type ${name} in the SDK`);
  return s;
}

// Downstream WebSocket events: every interface with `event_type:
// WebsocketsEventType.X` whose base has `detail` or that is not a request.
function wsEventSchemas(decls) {
  const scope = path.join('websockets', 'types.d.ts');
  const values = decls.enums[`${scope}:WebsocketsEventType`];
  const map = new Map();
  for (const itf of Object.values(decls.interfaces)) {
    if (itf.scope !== scope || !itf.fields.event_type) continue;
    const m = /^WebsocketsEventType\.(\w+)$/.exec(itf.fields.event_type.expr);
    if (!m || !values[m[1]]) continue;
    const schema = evalType(decls, itf.name, scope);
    if (!map.has(values[m[1]])) map.set(values[m[1]], []);
    map.get(values[m[1]]).push({ name: itf.name, schema });
  }
  return map;
}

// SSE events of /v3/chat: the alternatives of StreamChatData.
function sseEventSchemas(decls) {
  const scope = path.join('chat', 'chat.d.ts');
  const values = decls.enums[`${scope}:ChatEventType`];
  const alias = decls.aliases[`${scope}:StreamChatData`];
  const map = new Map();
  for (const alt of splitTop(alias.expr, '|')) {
    const f = members(braceBody(alt, 0));
    const data = f.data.expr.startsWith('\'') ? null : evalType(decls, f.data.expr, scope);
    for (const ev of splitTop(f.event.expr, '|')) {
      const m = /^ChatEventType\.(\w+)$/.exec(ev);
      if (m) map.set(values[m[1]], data);
    }
  }
  return map;
}

function violations(value, schema, at = '') {
  if (!schema) return [];
  if (schema.array) {
    if (!Array.isArray(value)) return [`${at}: not an array`];
    return value.flatMap((v, i) => violations(v, schema.array, `${at}[${i}]`));
  }
  if (value === null || typeof value !== 'object') return [`${at}: not an object`];
  const out = [];
  for (const [k, f] of Object.entries(schema.fields)) {
    const p = at ? `${at}.${k}` : k;
    if (!(k in value) || value[k] === undefined || value[k] === null) {
      if (!f.optional) out.push(`${p}: missing`);
      continue;
    }
    const sub = evalType(module.exports._decls, f.expr, schema.scope);
    if (sub && typeof value[k] === 'object') out.push(...violations(value[k], sub, p));
  }
  return out;
}

module.exports = {
  load() { const d = load(); module.exports._decls = d; return d; },
  wsEventSchemas, sseEventSchemas, schemaOf, violations, _decls: null,
};

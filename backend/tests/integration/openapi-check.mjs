// openapi-check.mjs: zero-dependency helpers for checking docs/openapi.yaml against the server.
//
//   parseYaml(text)                 the YAML subset docs/openapi.yaml is written in
//   resolveRef(doc, ref)            '#/components/...' -> the object it names
//   validate(schema, value, doc)    a JSON Schema subset; returns a list of error strings
//
// YAML subset: block mappings and sequences (indented by spaces), `- key: value` items,
// plain scalars (null ~ true false, integers, decimals, strings), 'single' and "double" quoted
// strings, flow sequences of scalars ([a, 'b', 3]), empty flow collections ({} []), block
// scalars (| and >, with an optional - or + chomping indicator) and # comments. Anything else
// (anchors, aliases, tags, tabs, multi-line flow collections, documents) throws with the line
// number, so the document cannot silently mean something other than what it says.
//
// JSON Schema subset (2020-12 keywords as OpenAPI 3.1 uses them): type (string or array,
// "integer", "null"), properties, required, additionalProperties (boolean or schema), items,
// enum, const, $ref (to #/...), allOf, anyOf, oneOf, minimum, maximum, minLength, maxLength,
// pattern, format (date-time, uuid), minItems, maxItems, maxProperties. Annotations
// (description, default, example...) are ignored; an unknown assertion keyword throws.

// ---------------------------------------------------------------------------------------------
// YAML

const PLAIN_SPECIAL = /^[&*!%@`|>]/;

function scalar(raw, lineNo) {
  const s = raw.trim();
  if (s === '') return null;
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new Error(`line ${lineNo}: unterminated single-quoted string: ${s}`);
    const body = s.slice(1, -1);
    if (/(^|[^'])'([^']|$)/.test(body.replaceAll("''", ''))) throw new Error(`line ${lineNo}: stray quote in ${s}`);
    return body.replaceAll("''", "'");
  }
  if (s.startsWith('"')) {
    try {
      return JSON.parse(s);
    } catch {
      throw new Error(`line ${lineNo}: bad double-quoted string: ${s}`);
    }
  }
  if (s === '{}') return {};
  if (s === '[]') return [];
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new Error(`line ${lineNo}: multi-line flow sequences are not supported: ${s}`);
    return splitFlow(s.slice(1, -1), lineNo).map((x) => scalar(x, lineNo));
  }
  if (s.startsWith('{')) throw new Error(`line ${lineNo}: flow mappings are not supported: ${s}`);
  if (PLAIN_SPECIAL.test(s)) throw new Error(`line ${lineNo}: unsupported YAML construct: ${s}`);
  if (s === 'null' || s === '~') return null;
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (/^-?(0|[1-9][0-9]*)$/.test(s)) return Number(s);
  if (/^-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/:\s|\s#/.test(s)) throw new Error(`line ${lineNo}: plain scalar with ': ' or ' #' (quote it): ${s}`);
  return s;
}

function splitFlow(inner, lineNo) {
  const parts = [];
  let cur = '';
  let q = null;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (q) {
      cur += c;
      if (c === q) {
        if (q === "'" && inner[i + 1] === "'") cur += inner[++i];
        else q = null;
      }
    } else if (c === "'" || c === '"') {
      q = c;
      cur += c;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else if (c === '[' || c === '{' || c === ']' || c === '}') {
      throw new Error(`line ${lineNo}: nested flow collections are not supported`);
    } else cur += c;
  }
  if (q) throw new Error(`line ${lineNo}: unterminated quote in flow sequence`);
  if (cur.trim() !== '' || parts.length) parts.push(cur);
  if (parts.some((p) => p.trim() === '')) throw new Error(`line ${lineNo}: empty entry in flow sequence`);
  return parts;
}

/** Removes a trailing comment (a # after whitespace, outside quotes). */
function stripComment(line) {
  let q = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
    } else if (c === "'" || c === '"') {
      if (i === 0 || /[\s[,:-]/.test(line[i - 1])) q = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i).replace(/\s+$/, '');
    }
  }
  if (q) return line; // a quote that does not close on this line: left to scalar() to reject
  return line.replace(/\s+$/, '');
}

/** Splits "key: rest" (key plain or quoted); returns null if the line is not a mapping entry. */
function splitKey(text, lineNo) {
  let key;
  let rest;
  if (text.startsWith("'") || text.startsWith('"')) {
    const q = text[0];
    let i = 1;
    for (; i < text.length; i++) {
      if (text[i] === q) {
        if (q === "'" && text[i + 1] === "'") i++;
        else break;
      }
    }
    if (i >= text.length || text[i + 1] !== ':') return null;
    key = scalar(text.slice(0, i + 1), lineNo);
    rest = text.slice(i + 2);
  } else {
    const m = /^([^\s:'"#][^:]*?):(\s|$)/.exec(text);
    if (!m) return null;
    key = m[1];
    rest = text.slice(m[0].length - (m[2] ? 1 : 0));
  }
  if (rest !== '' && !/^\s/.test(rest)) return null;
  return { key: String(key), rest: rest.trim() };
}

export function parseYaml(text) {
  const raw = text.split('\n');
  const lines = []; // {indent, text, no, raw}
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i].replace(/\r$/, '');
    if (/^\t| \t|^\s*\t/.test(r)) throw new Error(`line ${i + 1}: tabs are not supported`);
    if (/^(---|\.\.\.)(\s|$)/.test(r)) throw new Error(`line ${i + 1}: multiple documents are not supported`);
    if (/^%/.test(r)) throw new Error(`line ${i + 1}: directives are not supported`);
    lines.push({ raw: r, no: i + 1 });
  }
  let pos = 0;
  const meaningful = (l) => stripComment(l.raw).trim() !== '';
  const skip = () => {
    while (pos < lines.length && !meaningful(lines[pos])) pos++;
  };
  const indentOf = (l) => l.raw.length - l.raw.trimStart().length;

  function blockScalar(indicator, parentIndent, lineNo) {
    const m = /^([|>])([-+]?)$/.exec(indicator);
    if (!m) throw new Error(`line ${lineNo}: unsupported block scalar header ${indicator}`);
    const body = [];
    let ind = null;
    while (pos < lines.length) {
      const l = lines[pos];
      if (l.raw.trim() === '') {
        body.push('');
        pos++;
        continue;
      }
      const i = indentOf(l);
      if (i <= parentIndent) break;
      if (ind === null) ind = i;
      if (i < ind) throw new Error(`line ${l.no}: block scalar line indented less than its first line`);
      body.push(l.raw.slice(ind));
      pos++;
    }
    while (body.length && body[body.length - 1] === '') body.pop();
    let out;
    if (m[1] === '|') out = body.join('\n');
    else {
      out = '';
      for (let i = 0; i < body.length; i++) {
        if (body[i] === '') out += '\n';
        else out += (out && !out.endsWith('\n') ? ' ' : '') + body[i];
      }
    }
    if (m[2] === '-') return out;
    return out + '\n';
  }

  function value(rest, parentIndent, lineNo) {
    if (/^[|>][-+]?$/.test(rest)) return blockScalar(rest, parentIndent, lineNo);
    if (rest !== '') return scalar(rest, lineNo);
    skip();
    if (pos >= lines.length) return null;
    const l = lines[pos];
    const i = indentOf(l);
    const t = stripComment(l.raw).trim();
    if (i > parentIndent) return block(i);
    if (i === parentIndent && (t === '-' || t.startsWith('- '))) return block(i); // "key:\n- item"
    return null;
  }

  function block(indent) {
    skip();
    const first = stripComment(lines[pos].raw).trim();
    const isSeq = first === '-' || first.startsWith('- ');
    const out = isSeq ? [] : {};
    for (;;) {
      skip();
      if (pos >= lines.length) return out;
      const l = lines[pos];
      const i = indentOf(l);
      if (i < indent) return out;
      if (i > indent) throw new Error(`line ${l.no}: unexpected indentation`);
      const t = stripComment(l.raw).trim();
      if (isSeq) {
        if (!(t === '-' || t.startsWith('- '))) return out; // a mapping key after "key:\n- items"
        pos++;
        const rest = t === '-' ? '' : t.slice(2).trim();
        const kv = rest ? splitKey(rest, l.no) : null;
        if (kv) {
          // "- key: value" starts a mapping whose further keys sit at indent + 2
          const inner = indent + 2;
          const obj = {};
          obj[kv.key] = value(kv.rest, inner, l.no);
          for (;;) {
            skip();
            if (pos >= lines.length || indentOf(lines[pos]) !== inner) break;
            const tt = stripComment(lines[pos].raw).trim();
            if (tt === '-' || tt.startsWith('- ')) break;
            const kv2 = splitKey(tt, lines[pos].no);
            if (!kv2) throw new Error(`line ${lines[pos].no}: expected "key: value"`);
            if (Object.hasOwn(obj, kv2.key)) throw new Error(`line ${lines[pos].no}: duplicate key ${kv2.key}`);
            const no = lines[pos].no;
            pos++;
            obj[kv2.key] = value(kv2.rest, inner, no);
          }
          if (pos < lines.length && indentOf(lines[pos]) > indent && !(indentOf(lines[pos]) === inner) && meaningful(lines[pos])) {
            throw new Error(`line ${lines[pos].no}: unexpected indentation in a sequence item`);
          }
          out.push(obj);
        } else {
          out.push(value(rest, indent, l.no));
        }
      } else {
        if (t === '-' || t.startsWith('- ')) throw new Error(`line ${l.no}: sequence item where a mapping key was expected`);
        const kv = splitKey(t, l.no);
        if (!kv) throw new Error(`line ${l.no}: expected "key: value", got: ${t}`);
        if (Object.hasOwn(out, kv.key)) throw new Error(`line ${l.no}: duplicate key ${kv.key}`);
        pos++;
        out[kv.key] = value(kv.rest, indent, l.no);
      }
    }
  }

  skip();
  if (pos >= lines.length) return null;
  if (indentOf(lines[pos]) !== 0) throw new Error(`line ${lines[pos].no}: the document must start at column 0`);
  const doc = block(0);
  skip();
  if (pos < lines.length) throw new Error(`line ${lines[pos].no}: unexpected content`);
  return doc;
}

// ---------------------------------------------------------------------------------------------
// $ref and JSON Schema

export function resolveRef(doc, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) throw new Error(`unsupported $ref ${JSON.stringify(ref)}`);
  let node = doc;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) throw new Error(`unresolvable $ref ${ref}`);
    node = node[key];
  }
  return node;
}

/** Follows $ref chains (for responses, headers, parameters). */
export function deref(doc, node) {
  for (let guard = 0; node && typeof node === 'object' && '$ref' in node; guard++) {
    if (guard > 20) throw new Error('$ref loop');
    node = resolveRef(doc, node.$ref);
  }
  return node;
}

const ANNOTATIONS = new Set([
  'description',
  'title',
  'default',
  'example',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
  'externalDocs',
  'xml',
  'discriminator',
]);
const ASSERTIONS = new Set([
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'allOf',
  'anyOf',
  'oneOf',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minItems',
  'maxItems',
  'maxProperties',
]);

const DATE_TIME = /^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v; // string, boolean, object
}
function hasType(v, t) {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}
const fmt = (v) => {
  const s = JSON.stringify(v);
  return s && s.length > 80 ? s.slice(0, 77) + '...' : s;
};

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

/**
 * Validates value against schema (doc resolves $refs). Returns an array of "path: problem" strings
 * (empty when valid).
 */
export function validate(schema, value, doc, where = '$') {
  const errors = [];
  check(schema, value, where, errors, doc);
  return errors;
}

function check(schema, v, at, errors, doc) {
  if (schema === true || schema === undefined) return;
  if (schema === false) {
    errors.push(`${at}: no value is allowed here`);
    return;
  }
  if (typeof schema !== 'object' || schema === null) throw new Error(`${at}: schema is not an object: ${fmt(schema)}`);
  for (const k of Object.keys(schema)) {
    if (!ASSERTIONS.has(k) && !ANNOTATIONS.has(k) && !k.startsWith('x-')) throw new Error(`${at}: unsupported schema keyword "${k}"`);
  }
  if (schema.$ref) check(resolveRef(doc, schema.$ref), v, at, errors, doc);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(v, t))) {
      errors.push(`${at}: expected ${types.join(' or ')}, got ${typeOf(v)} ${fmt(v)}`);
      return;
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => deepEqual(e, v)))
    errors.push(`${at}: ${fmt(v)} is not one of ${fmt(schema.enum)}`);
  if (Object.hasOwn(schema, 'const') && !deepEqual(schema.const, v)) errors.push(`${at}: ${fmt(v)} is not ${fmt(schema.const)}`);
  for (const sub of schema.allOf || []) check(sub, v, at, errors, doc);
  if (schema.anyOf) {
    if (!schema.anyOf.some((sub) => validate(sub, v, doc, at).length === 0)) errors.push(`${at}: matches none of anyOf`);
  }
  if (schema.oneOf) {
    const n = schema.oneOf.filter((sub) => validate(sub, v, doc, at).length === 0).length;
    if (n !== 1) errors.push(`${at}: matches ${n} of oneOf (must be exactly 1)`);
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) errors.push(`${at}: ${v} < minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) errors.push(`${at}: ${v} > maximum ${schema.maximum}`);
  }
  if (typeof v === 'string') {
    const len = [...v].length;
    if (schema.minLength !== undefined && len < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && len > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(v))
      errors.push(`${at}: ${fmt(v)} does not match ${schema.pattern}`);
    if (schema.format === 'date-time' && !(DATE_TIME.test(v) && !Number.isNaN(Date.parse(v))))
      errors.push(`${at}: ${fmt(v)} is not an RFC 3339 date-time`);
    if (schema.format === 'uuid' && !UUID.test(v)) errors.push(`${at}: ${fmt(v)} is not a UUID`);
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems) errors.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.items !== undefined) v.forEach((item, i) => check(schema.items, item, `${at}[${i}]`, errors, doc));
  }
  if (typeOf(v) === 'object') {
    const props = schema.properties || {};
    for (const r of schema.required || []) if (!Object.hasOwn(v, r)) errors.push(`${at}: required property "${r}" is missing`);
    if (schema.maxProperties !== undefined && Object.keys(v).length > schema.maxProperties)
      errors.push(`${at}: more than ${schema.maxProperties} properties`);
    for (const [k, val] of Object.entries(v)) {
      if (Object.hasOwn(props, k)) check(props[k], val, `${at}.${k}`, errors, doc);
      else if (schema.additionalProperties === false) errors.push(`${at}: property "${k}" is not allowed`);
      else if (schema.additionalProperties !== undefined && schema.additionalProperties !== true)
        check(schema.additionalProperties, val, `${at}.${k}`, errors, doc);
    }
  }
}

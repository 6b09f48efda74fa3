// A small YAML reader for the subset our provisioning and Compose files use: block mappings and
// block sequences by indentation, "- key: value" items, plain / 'single' / "double" quoted
// scalars, [flow, sequences] of scalars, "|" literal blocks, and comments. Anything else (anchors,
// aliases, tags, flow mappings, multi-document streams) is refused with the line number, so a file
// that starts using more YAML than this reads fails the tests instead of being misread.

function stripComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) {
        if (quote === "'" && line[i + 1] === "'") { i++; continue; }
        quote = null;
      } else if (c === '\\' && quote === '"') i++;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:\[,-]/.test(line[i - 1])) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

function scalar(text, lineNo) {
  const t = text.trim();
  if (t === '') return null;
  if (t[0] === '"') {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(t)) throw new Error(`line ${lineNo}: bad double-quoted scalar ${t}`);
    return JSON.parse(t.replace(/\\'/g, "'"));
  }
  if (t[0] === "'") {
    if (!/^'(?:[^']|'')*'$/.test(t)) throw new Error(`line ${lineNo}: bad single-quoted scalar ${t}`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t[0] === '[') {
    if (!t.endsWith(']')) throw new Error(`line ${lineNo}: unterminated flow sequence`);
    const inner = t.slice(1, -1).trim();
    if (inner === '') return [];
    const items = [];
    let cur = '', quote = null;
    for (let i = 0; i < inner.length; i++) {
      const c = inner[i];
      if (quote) { cur += c; if (c === quote) quote = null; else if (c === '\\' && quote === '"') cur += inner[++i]; continue; }
      if (c === '"' || c === "'") { quote = c; cur += c; continue; }
      if (c === '[' || c === '{') throw new Error(`line ${lineNo}: nested flow collections are not supported`);
      if (c === ',') { items.push(scalar(cur, lineNo)); cur = ''; continue; }
      cur += c;
    }
    items.push(scalar(cur, lineNo));
    return items;
  }
  if (t[0] === '{') throw new Error(`line ${lineNo}: flow mappings are not supported`);
  if (t[0] === '&' || t[0] === '*' || t[0] === '!') throw new Error(`line ${lineNo}: anchors, aliases and tags are not supported`);
  if (/^(true|True|TRUE)$/.test(t)) return true;
  if (/^(false|False|FALSE)$/.test(t)) return false;
  if (/^(null|Null|NULL|~)$/.test(t)) return null;
  if (/^[-+]?[0-9]+$/.test(t)) return Number(t);
  if (/^[-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?$/.test(t)) return Number(t);
  return t;
}

// Splits "key: value" (key plain or quoted). Returns null when the line is not a mapping entry.
function splitKey(text) {
  let m = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:(?:\s+(.*)|)$/.exec(text);
  if (m) return { key: scalar(m[1]), rest: m[2] ?? '' };
  m = /^([^\s"'#\[\]{},&*!|>@`-][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+(.*)|)$/.exec(text);
  if (m) return { key: m[1], rest: m[2] ?? '' };
  return null;
}

export function parseYaml(source) {
  const raw = source.replace(/\r\n/g, '\n').split('\n');
  const lines = [];
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i];
    if (/\t/.test(line.match(/^\s*/)[0])) throw new Error(`line ${i + 1}: tab in indentation`);
    if (/^(---|\.\.\.)\s*$/.test(line)) {
      if (lines.length) throw new Error(`line ${i + 1}: multiple documents are not supported`);
      continue;
    }
    lines.push({ no: i + 1, raw: line });
  }
  let pos = 0;

  const significant = () => {
    while (pos < lines.length) {
      const l = lines[pos];
      const text = stripComment(l.raw).replace(/\s+$/, '');
      if (text.trim() !== '') { l.text = text; l.indent = text.match(/^ */)[0].length; return l; }
      pos++;
    }
    return null;
  };

  function blockScalar(parentIndent, style) {
    const out = [];
    let indent = null;
    while (pos < lines.length) {
      const l = lines[pos];
      if (l.raw.trim() === '') { out.push(''); pos++; continue; }
      const ind = l.raw.match(/^ */)[0].length;
      if (ind <= parentIndent) break;
      if (indent === null) indent = ind;
      if (ind < indent) break;
      out.push(l.raw.slice(indent));
      pos++;
    }
    while (out.length && out[out.length - 1] === '') out.pop();
    if (style[0] === '>') return out.join(' ') + '\n';
    return out.join('\n') + (style.endsWith('-') ? '' : '\n');
  }

  function value(rest, indent, lineNo) {
    const t = rest.trim();
    if (t === '') {
      const next = significant();
      if (!next || next.indent < indent || (next.indent === indent && !next.text.trim().startsWith('- '))) return null;
      if (next.indent === indent) return parseBlock(indent); // "key:\n- item" at the same indent
      return parseBlock(next.indent);
    }
    if (/^[|>][-+]?$/.test(t)) return blockScalar(indent, t);
    return scalar(t, lineNo);
  }

  function parseBlock(indent) {
    const first = significant();
    if (!first) return null;
    const isSeq = first.text.trim() === '-' || first.text.trim().startsWith('- ');
    const result = isSeq ? [] : {};
    while (true) {
      const l = significant();
      if (!l || l.indent < indent) break;
      if (l.indent > indent) throw new Error(`line ${l.no}: unexpected indentation`);
      const body = l.text.slice(indent);
      if (isSeq) {
        if (!(body === '-' || body.startsWith('- '))) break;
        pos++;
        const itemText = body === '-' ? '' : body.slice(2);
        const itemIndent = indent + 2 + (itemText.match(/^ */)[0].length);
        const trimmed = itemText.trim();
        if (trimmed === '') { result.push(value('', indent + 1, l.no)); continue; }
        const kv = splitKey(trimmed);
        if (kv) {
          // a mapping that starts on the dash line: re-read it as a block at the item's indent
          lines[pos - 1] = { no: l.no, raw: ' '.repeat(itemIndent) + trimmed };
          pos--;
          result.push(parseBlock(itemIndent));
        } else {
          result.push(scalar(trimmed, l.no));
        }
      } else {
        if (body.startsWith('- ')) throw new Error(`line ${l.no}: sequence item inside a mapping`);
        const kv = splitKey(body);
        if (!kv) throw new Error(`line ${l.no}: expected "key: value", got ${body}`);
        if (Object.prototype.hasOwnProperty.call(result, kv.key)) throw new Error(`line ${l.no}: duplicate key ${kv.key}`);
        if (kv.key === '<<') throw new Error(`line ${l.no}: merge keys are not supported`);
        pos++;
        result[kv.key] = value(kv.rest, indent, l.no);
      }
    }
    return result;
  }

  const first = significant();
  if (!first) return null;
  if (first.indent !== 0) throw new Error(`line ${first.no}: document must start at column 0`);
  const doc = parseBlock(0);
  const rest = significant();
  if (rest) throw new Error(`line ${rest.no}: unexpected content`);
  return doc;
}

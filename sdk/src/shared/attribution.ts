// Which package or file a loaded module belongs to.
//
// A file under node_modules belongs to the package named by the segment after the LAST
// `node_modules/` (`@scope/name` for scoped packages), so nested copies are attributed to the
// innermost package. The function's own files are named by their path relative to the task root,
// without the JavaScript extension: `./src/handlers/payment`. Files outside the task root (a
// layer in /opt without node_modules, say) keep their absolute path.

const NODE_MODULES = '/node_modules/';
const SCRIPT_EXTENSION = /\.(?:[cm]?js|[cm]?ts|jsx|tsx)$/;

export interface Attribution {
  /** Key in module_timings / name in module_tree. */
  key: string;
  /** Directory holding the package's package.json, for packages; undefined for own files. */
  packageDir: string | undefined;
}

export function attributeFile(filename: string, taskRoot: string): Attribution {
  const path = filename.includes('\\') ? filename.replace(/\\/g, '/') : filename;
  const at = path.lastIndexOf(NODE_MODULES);
  if (at >= 0) {
    const start = at + NODE_MODULES.length;
    let end = path.indexOf('/', start);
    if (end > start && path.charCodeAt(start) === 64 /* @ */) end = path.indexOf('/', end + 1);
    if (end < 0) end = path.length;
    const key = path.slice(start, end);
    if (key !== '') return { key, packageDir: path.slice(0, end) };
  }
  const root = taskRoot.endsWith('/') ? taskRoot.slice(0, -1) : taskRoot;
  const bare = path.replace(SCRIPT_EXTENSION, '');
  if (root !== '' && bare.startsWith(root + '/')) return { key: '.' + bare.slice(root.length), packageDir: undefined };
  return { key: bare, packageDir: undefined };
}

/** Same, for a module URL (file: URLs only; others are kept as they are). */
export function attributeUrl(url: string, taskRoot: string): Attribution {
  if (!url.startsWith('file://')) return { key: url, packageDir: undefined };
  let path = url.slice(7);
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  try {
    path = decodeURIComponent(path);
  } catch {
    // keep the encoded form
  }
  return attributeFile(path, taskRoot);
}

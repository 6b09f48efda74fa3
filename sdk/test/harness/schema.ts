// A small JSON Schema checker for the keywords profile.schema.json uses (type, const, enum, required,
// properties, additionalProperties, items, minimum, maximum, local $ref). Returns the errors.
type Schema = Record<string, any>;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

export function validate(root: Schema, value: unknown, schema: Schema = root, path = '$'): string[] {
  if (schema.$ref !== undefined) {
    const target = (schema.$ref as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce((s: Schema, key: string) => s[key], root);
    return validate(root, value, target, path);
  }
  const errors: string[] = [];
  if (schema.enum !== undefined && !schema.enum.includes(value)) errors.push(`${path}: not one of ${JSON.stringify(schema.enum)}`);
  if (schema.const !== undefined && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number')))
      return [`${path}: ${actual}, expected ${types.join('|')}`];
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items !== undefined)
    value.forEach((item, i) => errors.push(...validate(root, item, schema.items, `${path}[${i}]`)));
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj)) errors.push(`${path}: ${key} missing`);
    for (const [key, item] of Object.entries(obj)) {
      const property = schema.properties?.[key];
      if (property !== undefined) errors.push(...validate(root, item, property, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected ${key}`);
      else if (typeof schema.additionalProperties === 'object')
        errors.push(...validate(root, item, schema.additionalProperties, `${path}.${key}`));
    }
  }
  return errors;
}

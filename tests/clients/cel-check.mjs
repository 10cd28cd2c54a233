// Evaluates CRD validation rules (x-kubernetes-validations) with a real CEL implementation (@bufbuild/cel),
// the way the API server binds them: `self` is the value at the schema node that holds the rule.
//
// stdin:  {"cases":[{"rule": "...", "self": <json>, "schema": <openAPIV3 schema of self>}]}
// stdout: {"results":[true | false | "error: ..." | "skipped: ..."]}
//
// The schema matters because CEL tells int from double and JSON does not: values are converted per
// schema type (integer -> int, number -> double), as the API server does, before evaluation. Without a
// schema (or under x-kubernetes-preserve-unknown-fields) integral numbers become int, others double, as
// Kubernetes treats unstructured JSON.
import { run, parse, isCelError } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";

// Functions of Kubernetes' own CEL libraries (quantity, URLs, IPs, CIDRs, semver, regex find, list
// extensions, authorizer, format). Standard CEL does not have them, so a rule using one is reported as
// skipped with its reason instead of failing with "unbound function" or, worse, passing on a short-circuit.
const kubernetesOnly = new Set([
  "quantity", "isQuantity", "url", "isURL", "ip", "isIP", "cidr", "isCIDR", "semver", "isSemver",
  "find", "findAll", "isSorted", "sum", "min", "max", "authorizer", "validate", "getScheme", "getHost",
  "getHostname", "getPort", "getEscapedPath", "getQuery", "isCanonical", "family", "containsIP",
  "containsCIDR", "prefixLength", "masked", "dns1123Label", "dns1123Subdomain", "dns1035Label",
  "qualifiedName", "labelValue", "uri", "uuid", "byte", "date", "datetime",
]);

function calledFunctions(expr, into = new Set()) {
  if (!expr || typeof expr !== "object") return into;
  if (expr.$typeName === "cel.expr.Expr.Call") into.add(expr.function);
  for (const [key, value] of Object.entries(expr)) {
    if (key === "$typeName") continue;
    if (Array.isArray(value)) value.forEach((v) => calledFunctions(v, into));
    else if (value && typeof value === "object") calledFunctions(value, into);
  }
  return into;
}

function toCel(value, schema, path) {
  if (value === null || value === undefined) return null;
  if (schema?.["x-kubernetes-int-or-string"]) {
    if (typeof value === "string") return value;
    if (Number.isInteger(value)) return BigInt(value);
    throw new Error(`${path}: expected an integer or a string, got ${JSON.stringify(value)}`);
  }
  switch (schema?.type) {
    case "integer":
      if (!Number.isSafeInteger(value)) throw new Error(`${path}: expected an integer, got ${JSON.stringify(value)}`);
      return BigInt(value);
    case "number":
      if (typeof value !== "number") throw new Error(`${path}: expected a number, got ${JSON.stringify(value)}`);
      return value;
    case "string":
    case "boolean":
      if (typeof value !== schema.type) throw new Error(`${path}: expected a ${schema.type}, got ${JSON.stringify(value)}`);
      return value;
    case "array":
      if (!Array.isArray(value)) throw new Error(`${path}: expected an array`);
      return value.map((item, i) => toCel(item, schema.items, `${path}[${i}]`));
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) throw new Error(`${path}: expected an object`);
      const additional = typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
      return new Map(Object.entries(value).map(([key, child]) =>
        [key, toCel(child, schema.properties?.[key] ?? additional, `${path}.${key}`)]));
    }
    default:
      if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : value;
      if (Array.isArray(value)) return value.map((item, i) => toCel(item, undefined, `${path}[${i}]`));
      if (typeof value === "object") return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v, undefined, `${path}.${k}`)]));
      return value;
  }
}

function evaluate({ rule, self, schema }) {
  let ast;
  try {
    ast = parse(rule);
  } catch (e) {
    return `error: does not parse: ${e.message}`;
  }
  const k8s = [...calledFunctions(ast.expr)].filter((f) => kubernetesOnly.has(f));
  if (k8s.length > 0) return `skipped: uses Kubernetes-only CEL function(s) ${k8s.map((f) => f + "()").join(", ")}, which standard CEL lacks`;
  let bound;
  try {
    bound = toCel(self, schema, "self");
  } catch (e) {
    return `error: ${e.message}`;
  }
  // Kubernetes' CEL environment includes the strings extension (charAt, indexOf, lowerAscii, ...).
  const result = run(rule, { self: bound }, { funcs: strings });
  if (isCelError(result)) return `error: ${result.message}`;
  if (typeof result !== "boolean") return `error: the rule returned ${typeof result}, not a bool`;
  return result;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { cases } = JSON.parse(input);
process.stdout.write(JSON.stringify({ results: cases.map(evaluate) }) + "\n");

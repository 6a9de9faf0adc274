/**
 * The JSON bodies of the two records every statement gets (`statement` before it is forwarded,
 * `result` after), written by hand: they are made for every statement the sidecar forwards,
 * and JSON.stringify of an object built with spreads costs several times more. Each gives the
 * exact text JSON.stringify would for the object in its comment (tested). Pure.
 */
import type { Decision } from '@airlock/policy';

/** A decision's fields (`"decision":…,"classes":…,"rules":…[,"message":…]`), made once per decision. */
const decisionJsons = new WeakMap<Decision, string>();
function decisionJson(d: Decision): string {
  let json = decisionJsons.get(d);
  if (json === undefined) {
    json = `"decision":${JSON.stringify(d.decision)},"classes":${JSON.stringify(d.classes)},"rules":${JSON.stringify(d.rules)}`;
    if (d.decision !== 'Allow') json += `,"message":${JSON.stringify(d.message)}`;
    decisionJsons.set(d, json);
  }
  return json;
}

/**
 * `{ type: 'statement', id, via, ...extra, text, statements?, decision, classes, rules, message? }`
 * (message when not Allow; statements: each statement of a query with several, its text and
 * its own classes). `extra` must not hold the other keys, nor integer-like ones.
 */
export function statementJson(id: number, via: string, extra: Readonly<Record<string, string>>, text: string, d: Decision, statements?: readonly { readonly text: string; readonly classes: readonly string[] }[]): string {
  let json = `{"type":"statement","id":${String(id)},"via":${JSON.stringify(via)}`;
  for (const k in extra) json += `,${JSON.stringify(k)}:${JSON.stringify(extra[k])}`;
  json += `,"text":${JSON.stringify(text)}`;
  if (statements !== undefined) json += `,"statements":${JSON.stringify(statements.map((s) => ({ text: s.text, classes: s.classes })))}`;
  return `${json},${decisionJson(d)}}`;
}

/** `{ type: 'result', statement, rows, masked, maskRules?, tag?, error? }` (tag: the tags joined by '; '). */
export function resultJson(statement: number, rows: number, masked: number, rules: ReadonlySet<string> | undefined, tags: readonly string[], error: string | undefined): string {
  let json = `{"type":"result","statement":${String(statement)},"rows":${String(rows)},"masked":${String(masked)}`;
  if (rules !== undefined) json += `,"maskRules":${JSON.stringify([...rules])}`;
  if (tags.length > 0) json += `,"tag":${JSON.stringify(tags.length === 1 ? tags[0] : tags.join('; '))}`;
  if (error !== undefined) json += `,"error":${JSON.stringify(error)}`;
  return `${json}}`;
}

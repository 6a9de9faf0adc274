/**
 * The order of names and timestamps, the same in every process: code-unit order, as Go's
 * sort.Strings and kubectl order them. String.prototype.localeCompare follows the process's
 * default locale (LANG): in Danish "aa-policy" sorts after "b-policy", so a bundle's rule order
 * and digest computed on a laptop would differ from the operator's.
 */

/** -1, 0 or 1 as `a` sorts before, with or after `b` in code-unit order */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Kubernetes objects by metadata.name, in code-unit order (an object without a name first) */
export function byName(a: { readonly metadata?: { readonly name?: string } }, b: { readonly metadata?: { readonly name?: string } }): number {
  return compareCodeUnits(a.metadata?.name ?? '', b.metadata?.name ?? '');
}

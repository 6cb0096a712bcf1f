/** Where a key sits in a YAML file, so config and manifest errors can name the line and column. */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** Line/column of the deepest node on `path`: the key's position for mappings, the item's for lists. */
export function yamlPosition(
  doc: Document,
  path: readonly (string | number)[],
  lines: LineCounter,
): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (node as Node | null)?.range?.[0];
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      offset = (node as Node | undefined)?.range?.[0] ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset);
}

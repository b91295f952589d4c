import { XMLParser } from 'fast-xml-parser';
import { XmlElement } from './xml-element.js';

/** Why an XML document was refused before any of it was read: the sender gets this text (400 / CLI error). */
export class UnsafeXmlError extends Error {}

/** Default largest document accepted (TESSERA_CCDA_MAX_BYTES): real summaries are 50 KB-2 MB, a few with embedded PDFs more. */
export const DEFAULT_MAX_XML_BYTES = 10 * 1024 * 1024;
/** Elements nested deeper than this are refused (a deeply nested document is an attack, not a record). */
const MAX_DEPTH = 200;

/**
 * Parses an XML document without the features attacks use: a DOCTYPE (and with it every entity
 * declaration: external entities reading files or URLs, XXE; nested entities expanding exponentially,
 * "billion laughs") is refused outright, since C-CDA documents never need one; documents over `maxBytes`
 * are refused before parsing; only the five predefined entities and character references are decoded.
 */
export function parseSecureXml(text: string, maxBytes = DEFAULT_MAX_XML_BYTES): XmlElement {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) {
    throw new UnsafeXmlError(`document of ${size} bytes exceeds the limit of ${maxBytes} bytes`);
  }
  const body = text.replace(/^\uFEFF/, '');
  const declaration = /<!(DOCTYPE|ENTITY)\b/i.exec(body);
  if (declaration) {
    throw new UnsafeXmlError(`a ${declaration[1].toUpperCase()} declaration is not accepted (document type declarations and entities are refused: external entities, entity expansion)`);
  }
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    processEntities: true,
    htmlEntities: false,
    commentPropName: false,
  });
  let nodes: unknown[];
  try {
    nodes = parser.parse(body, true) as unknown[];
  } catch (err) {
    throw new UnsafeXmlError(`not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const roots = nodes.map((n) => toElement(n as OrderedNode, 0)).filter((e): e is XmlElement => e instanceof XmlElement);
  if (roots.length !== 1) {
    throw new UnsafeXmlError(roots.length ? 'more than one root element' : 'no root element');
  }
  return roots[0];
}

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

function toElement(node: OrderedNode, depth: number): XmlElement | string | undefined {
  if (depth > MAX_DEPTH) {
    throw new UnsafeXmlError(`elements nested more than ${MAX_DEPTH} deep`);
  }
  const name = Object.keys(node).find((k) => k !== ':@');
  if (!name) return undefined;
  if (name === '#text') return String(node[name]);
  if (name.startsWith('?')) return undefined; // the XML declaration, processing instructions
  const children = ((node[name] as OrderedNode[]) ?? []).map((c) => toElement(c, depth + 1)).filter((c): c is XmlElement | string => c !== undefined);
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(node[':@'] ?? {})) attributes[localName(key)] = String(value);
  return new XmlElement(localName(name), attributes, children);
}

/** "sdtc:raceCode" -> "raceCode", "xsi:type" -> "type"... except that xsi:type is needed: kept as "xsi:type". */
function localName(name: string): string {
  if (name === 'xsi:type') return name;
  const colon = name.indexOf(':');
  return colon >= 0 ? name.slice(colon + 1) : name;
}

import { h, type ComponentChildren } from 'preact';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * A C-CDA document made readable in the page: its header (title, date, author) and, section by section,
 * its narrative block (CDA R2 NarrativeBlock: paragraph, list/item, table, content with styleCode, br,
 * sub/sup, footnote, caption) turned into HTML elements.
 *
 * Safe by construction: the document is parsed by a plain XML parser into data (fast-xml-parser), never
 * into a DOM (a DOMParser document would create XHTML or SVG elements of the document, whose event
 * handlers a browser may fire), and each narrative element becomes one of a fixed set of HTML elements
 * built with Preact (text is escaped). A document declaring a DOCTYPE (entities) is not read.
 * No attribute of the document is copied except a whitelist (th/td colspan, rowspan; th scope; list
 * type), styleCode becomes one of a fixed set of classes, and nothing that would load or link anything
 * else is rendered as such: linkHtml becomes its text, renderMultiMedia a note that the media is not shown.
 * Any other element (unknown, another namespace, a script) is dropped and only its text is kept.
 */
export interface CdaSection {
  title: string;
  narrative: ComponentChildren;
  sections: CdaSection[];
}

export interface CdaDocument {
  title: string;
  date?: string;
  author?: string;
  sections: CdaSection[];
}

/** Narrative elements and the HTML element each becomes (caption: see `captionTag`). */
const ELEMENTS: Record<string, string> = {
  paragraph: 'p',
  item: 'li',
  table: 'table',
  thead: 'thead',
  tbody: 'tbody',
  tfoot: 'tfoot',
  tr: 'tr',
  th: 'th',
  td: 'td',
  colgroup: 'colgroup',
  col: 'col',
  content: 'span',
  linkHtml: 'span',
  sub: 'sub',
  sup: 'sup',
  br: 'br',
  footnote: 'small',
};

/** styleCode values (CDA R2 NarrativeBlock) and the portal's class for each; others are ignored. */
const STYLES: Record<string, string> = {
  Bold: 'cda-bold',
  Italics: 'cda-italics',
  Underline: 'cda-underline',
  Emphasis: 'cda-emphasis',
  Lrule: 'cda-lrule',
  Rrule: 'cda-rrule',
  Toprule: 'cda-toprule',
  Botrule: 'cda-botrule',
};

const SPAN = /^[1-9][0-9]{0,2}$/;
const SCOPES = new Set(['row', 'col', 'rowgroup', 'colgroup']);

/** A parsed node (fast-xml-parser, preserveOrder): `{ name: children, ':@': attributes }` or `{ '#text': text }`. */
type XmlNode = { [name: string]: XmlNode[] | string | Record<string, string> | undefined; ':@'?: Record<string, string> };

const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', trimValues: false, parseTagValue: false, parseAttributeValue: false, processEntities: true, htmlEntities: false });

/** Element names read with the document's CDA prefix removed; an element of another namespace prefix has none. */
class Names {
  constructor(private readonly prefix: string) {}
  of(node: XmlNode): string | undefined {
    const name = Object.keys(node).find((k) => k !== ':@');
    if (!name || name === '#text') return name;
    if (this.prefix) return name.startsWith(`${this.prefix}:`) ? name.slice(this.prefix.length + 1) : undefined;
    return name.includes(':') ? undefined : name;
  }
}

const kids = (node: XmlNode | undefined): XmlNode[] => {
  const name = node && Object.keys(node).find((k) => k !== ':@');
  const value = name ? node[name] : undefined;
  return Array.isArray(value) ? value : [];
};
const textOf = (node: XmlNode | undefined): string => {
  if (!node) return '';
  if (typeof node['#text'] === 'string') return node['#text'];
  return kids(node).map(textOf).join('');
};
const squeeze = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** The whitelisted attributes of a narrative element, as HTML properties. */
function attributesOf(node: XmlNode, tag: string): Record<string, string> {
  const attrs = node[':@'] ?? {};
  const props: Record<string, string> = {};
  const classes = (attrs.styleCode ?? '').split(/\s+/).map((s) => STYLES[s]).filter(Boolean);
  if (classes.length) props.class = classes.join(' ');
  if (tag === 'td' || tag === 'th') {
    for (const name of ['colspan', 'rowspan']) if (SPAN.test(attrs[name] ?? '')) props[name] = attrs[name];
  }
  if (tag === 'th' && SCOPES.has(attrs.scope ?? '')) props.scope = attrs.scope;
  return props;
}

class Reader {
  constructor(private readonly names: Names) {}

  child(node: XmlNode | undefined, ...path: string[]): XmlNode | undefined {
    return path.reduce<XmlNode | undefined>((at, name) => kids(at).find((k) => this.names.of(k) === name), node);
  }

  children(node: XmlNode | undefined, name: string): XmlNode[] {
    return kids(node).filter((k) => this.names.of(k) === name);
  }

  /** A narrative node as Preact children (text escaped by Preact; elements from the fixed set only). */
  narrative(node: XmlNode, parent?: string): ComponentChildren {
    const name = this.names.of(node);
    if (name === '#text') return node['#text'] as string;
    const inner = () => kids(node).map((k) => this.narrative(k, name));
    if (!name) return textOf(node); // not CDA narrative: its text only
    if (name === 'list') return h((node[':@'] ?? {}).listType === 'ordered' ? 'ol' : 'ul', attributesOf(node, 'ul'), inner());
    if (name === 'caption') return parent === 'table' ? h('caption', attributesOf(node, 'caption'), inner()) : h('strong', { class: 'cda-caption' }, inner());
    if (name === 'renderMultiMedia') return h('span', { class: 'note' }, '[image or media in the original, not shown here]');
    if (name === 'footnoteRef') return null;
    const tag = ELEMENTS[name];
    if (!tag) return inner(); // an element the narrative block does not define: its content only
    if (tag === 'br' || tag === 'col') return h(tag, {});
    return h(tag, attributesOf(node, tag), inner());
  }

  section(section: XmlNode): CdaSection {
    const body = this.child(section, 'text');
    return {
      title: squeeze(textOf(this.child(section, 'title'))) || (this.child(section, 'code')?.[':@'] ?? {}).displayName || 'Section',
      narrative: body ? kids(body).map((k) => this.narrative(k, 'text')) : null,
      sections: this.children(section, 'component').map((c) => this.child(c, 'section')).filter((s): s is XmlNode => !!s).map((s) => this.section(s)),
    };
  }
}

/** A CDA date/time (YYYYMMDD[HHMM…]) as YYYY-MM-DD. */
const cdaDate = (value: string | undefined): string | undefined => (value && /^\d{8}/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : undefined);

/** Reads a C-CDA document (its XML as sent); throws when it is not a CDA document with a structured body. */
export function readCda(xml: string): CdaDocument {
  if (/<!(DOCTYPE|ENTITY)\b/i.test(xml)) throw new Error('the document declares a DOCTYPE');
  if (XMLValidator.validate(xml) !== true) throw new Error('not well-formed XML');
  const top = (parser.parse(xml) as XmlNode[]).find((n) => /(^|:)ClinicalDocument$/.test(Object.keys(n).find((k) => k !== ':@') ?? ''));
  if (!top) throw new Error('not a CDA document');
  const rootName = Object.keys(top).find((k) => k !== ':@') as string;
  const prefix = rootName.includes(':') ? rootName.split(':')[0] : '';
  const attrs = top[':@'] ?? {};
  if ((prefix ? attrs[`xmlns:${prefix}`] : attrs.xmlns) !== 'urn:hl7-org:v3') throw new Error('not a CDA document');
  const read = new Reader(new Names(prefix));
  const body = read.child(top, 'component', 'structuredBody');
  if (!body) throw new Error('the document has no structured body');
  const assigned = read.child(top, 'author', 'assignedAuthor');
  const person = read.child(assigned, 'assignedPerson', 'name');
  const author = person ? ['prefix', 'given', 'family'].flatMap((part) => read.children(person, part)).map((p) => squeeze(textOf(p))).join(' ') : squeeze(textOf(read.child(assigned, 'representedOrganization', 'name')));
  return {
    title: squeeze(textOf(read.child(top, 'title'))) || 'Clinical document',
    date: cdaDate((read.child(top, 'effectiveTime')?.[':@'] ?? {}).value),
    author: author || undefined,
    sections: read.children(body, 'component').map((c) => read.child(c, 'section')).filter((s): s is XmlNode => !!s).map((s) => read.section(s)),
  };
}

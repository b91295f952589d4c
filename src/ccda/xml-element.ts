/**
 * An XML element as the C-CDA mappers read it: local name (namespace prefix dropped: CDA documents use the
 * default namespace for urn:hl7-org:v3 and `sdtc:` for a few extensions), attributes, and children in
 * document order. Only what the mappers need: child lookup by name or path, attributes, text.
 */
export class XmlElement {
  constructor(
    readonly name: string,
    readonly attributes: Readonly<Record<string, string>>,
    readonly children: readonly (XmlElement | string)[],
  ) {}

  attr(name: string): string | undefined {
    const value = this.attributes[name];
    return value === undefined || value === '' ? undefined : value;
  }

  /** Child elements, all or those of one name. */
  elements(name?: string): XmlElement[] {
    return this.children.filter((c): c is XmlElement => typeof c !== 'string' && (name === undefined || c.name === name));
  }

  /** The first element at a path of child names ("consumable/manufacturedProduct/manufacturedMaterial/code"). */
  first(path: string): XmlElement | undefined {
    return this.all(path)[0];
  }

  /** Every element at a path of child names. */
  all(path: string): XmlElement[] {
    let level: XmlElement[] = [this];
    for (const step of path.split('/')) {
      level = level.flatMap((e) => e.elements(step));
      if (!level.length) break;
    }
    return level;
  }

  /** The text content, all descendants' text in order, whitespace collapsed. */
  text(): string {
    return this.rawText().replace(/\s+/g, ' ').trim();
  }

  /** templateId roots of this element. */
  templates(): string[] {
    return this.elements('templateId')
      .map((t) => t.attr('root'))
      .filter((r): r is string => !!r);
  }

  hasTemplate(...roots: string[]): boolean {
    return this.templates().some((t) => roots.includes(t));
  }

  /** Every descendant element (depth first) carrying the attribute `ID` with this value: narrative anchors. */
  findById(id: string): XmlElement | undefined {
    for (const child of this.elements()) {
      if (child.attributes.ID === id) return child;
      const found = child.findById(id);
      if (found) return found;
    }
    return undefined;
  }

  private rawText(): string {
    return this.children.map((c) => (typeof c === 'string' ? c : ` ${c.rawText()} `)).join('');
  }
}

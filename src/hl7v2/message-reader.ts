import { Hl7Message, type Hl7Segment } from '@medplum/core';

/**
 * Read access to a parsed HL7 v2 message with the numbering of the specification (field, component and
 * subcomponent from 1, repetition from 0) and escape sequences decoded. @medplum/core parses the
 * structure; it leaves values escaped and counts subcomponents from 0, which this layer hides.
 */
export class V2Message {
  private constructor(readonly message: Hl7Message) {}

  /**
   * Parses ER7 text (segments separated by CR, LF or CRLF). Throws MalformedMessageError for text that
   * is not an HL7 v2 message: the sender gets AR.
   */
  static parse(text: string): V2Message {
    const trimmed = text.replace(/^[\s\u000b]+|[\s\u001c]+$/g, '');
    if (!/^MSH(.)(.{1,4})\1/.test(trimmed.slice(0, 9))) {
      throw new MalformedMessageError('not an HL7 v2 message: it must start with an MSH segment and its encoding characters');
    }
    const message = Hl7Message.parse(trimmed.split(/\r\n|\r|\n/).filter((line) => line.trim()).join('\r'));
    const bad = message.segments.find((s) => !/^[A-Z][A-Z0-9]{2}$/.test(s.name));
    if (bad) {
      throw new MalformedMessageError(`segment "${bad.name.slice(0, 20)}" is not a segment name`);
    }
    const reader = new V2Message(message);
    if (!reader.header.value(9, 1)) {
      throw new MalformedMessageError('MSH-9 (message type) is empty');
    }
    if (!reader.header.value(10)) {
      throw new MalformedMessageError('MSH-10 (message control ID) is empty');
    }
    return reader;
  }

  get header(): V2Segment {
    return new V2Segment(this.message.header, this.escape);
  }

  /** MSH-9.1^MSH-9.2, e.g. ADT^A01. */
  get type(): string {
    const event = this.header.value(9, 2);
    return event ? `${this.header.value(9, 1)}^${event}` : this.header.value(9, 1);
  }

  get controlId(): string {
    return this.header.value(10);
  }

  get version(): string {
    return this.header.value(12, 1);
  }

  /** MSH-4.1 (namespace), else MSH-4.2 (universal id): the sending facility. */
  get sendingFacility(): string {
    return this.header.value(4, 1) || this.header.value(4, 2);
  }

  get sendingApplication(): string {
    return this.header.value(3, 1) || this.header.value(3, 2);
  }

  segment(name: string): V2Segment | undefined {
    const s = this.message.getSegment(name);
    return s && new V2Segment(s, this.escape);
  }

  segments(name?: string): V2Segment[] {
    return this.message.segments.filter((s) => !name || s.name === name).map((s) => new V2Segment(s, this.escape));
  }

  toString(): string {
    return this.message.toString();
  }

  private get escape(): string {
    return this.message.context.escapeCharacter ?? '\\';
  }
}

export class MalformedMessageError extends Error {}

export class V2Segment {
  constructor(
    readonly segment: Hl7Segment,
    private readonly escape: string,
  ) {}

  get name(): string {
    return this.segment.name;
  }

  /** A component (or subcomponent) of one repetition of a field, unescaped and trimmed; '' when absent. */
  value(field: number, component = 1, subcomponent = 1, repetition = 0): string {
    const f = this.segment.fields[this.segment.name === 'MSH' ? field - 1 : field];
    if (!f) {
      return '';
    }
    const raw = f.components[repetition]?.[component - 1] ?? '';
    const sub = raw.split(this.segment.context.subcomponentSeparator)[subcomponent - 1] ?? '';
    return unescapeV2(sub, this.segment.context, this.escape).trim();
  }

  /** The whole component with its subcomponents, unescaped (for free text such as NTE-3). */
  text(field: number, component = 1, repetition = 0): string {
    const f = this.segment.fields[this.segment.name === 'MSH' ? field - 1 : field];
    return unescapeV2(f?.components[repetition]?.[component - 1] ?? '', this.segment.context, this.escape).trim();
  }

  /** Each non-empty repetition's index. */
  eachRepetition(field: number): number[] {
    const f = this.segment.fields[this.segment.name === 'MSH' ? field - 1 : field];
    return (f?.components ?? []).flatMap((c, i) => (c.some((x) => x !== '') ? [i] : []));
  }
}

interface Separators {
  fieldSeparator: string;
  componentSeparator: string;
  repetitionSeparator: string;
  subcomponentSeparator: string;
}

/**
 * Decodes HL7 v2 escape sequences (section 2.7): \F\ \S\ \T\ \R\ \E\ for the delimiters, \.br\ for a line
 * break, \Xhh..\ for hexadecimal bytes (read as UTF-8). Formatting commands (\H\ \N\ \.sp\ ...) are dropped.
 */
export function unescapeV2(text: string, sep: Separators, escape = '\\'): string {
  if (!text.includes(escape)) {
    return text;
  }
  const e = escape.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`${e}([^${e}]*)${e}`, 'g'), (_all, code: string) => {
    switch (code) {
      case 'F':
        return sep.fieldSeparator;
      case 'S':
        return sep.componentSeparator;
      case 'T':
        return sep.subcomponentSeparator;
      case 'R':
        return sep.repetitionSeparator;
      case 'E':
        return escape;
      case '.br':
        return '\n';
      default:
        if (/^X([0-9A-Fa-f]{2})+$/.test(code)) {
          return Buffer.from(code.slice(1), 'hex').toString('utf8');
        }
        return '';
    }
  });
}

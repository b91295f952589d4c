import type { Narrative } from '@medplum/fhirtypes';
import type { XmlElement } from './xml-element.js';

/** Narrative elements after which a line ends (CDA narrative block elements and table rows). */
const LINE_BREAKS = new Set(['paragraph', 'br', 'tr', 'item', 'caption', 'list', 'table', 'thead', 'tbody', 'content']);

/**
 * A section's CDA narrative (<text>) as plain text lines: tables become one line per row with cells
 * separated by " | ", lists one line per item. The original markup stays in the stored document; this is
 * what a FHIR client shows.
 */
export function narrativeLines(text: XmlElement): string[] {
  const lines: string[] = [];
  let current = '';
  const flush = () => {
    const line = current.replace(/\s+/g, ' ').trim();
    if (line) lines.push(line);
    current = '';
  };
  const walk = (element: XmlElement) => {
    for (const child of element.children) {
      if (typeof child === 'string') {
        current += child;
        continue;
      }
      if (child.name === 'td' || child.name === 'th') {
        if (current.trim()) current += ' | ';
        walk(child);
      } else if (LINE_BREAKS.has(child.name) && child.name !== 'content') {
        flush();
        walk(child);
        flush();
      } else {
        current += ' ';
        walk(child);
        current += ' ';
      }
    }
  };
  walk(text);
  flush();
  return lines;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** FHIR Narrative (XHTML div) of narrative lines. */
export function narrative(lines: string[]): Narrative {
  return { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${lines.map(escape).join('<br/>')}</div>` };
}

/**
 * The bytes of an HL7 v2 message to text. MSH-18 (HL7 table 0211) names the character set; without it
 * the bytes are read as UTF-8, and bytes that are not valid UTF-8 (a Latin-1 or Windows-1252 sender that
 * never filled MSH-18) are read as Windows-1252, with a warning, never as U+FFFD replacement characters.
 */
export interface DecodedMessage {
  text: string;
  /** What the message log and the ACK should say about the decoding (empty when nothing was guessed). */
  warnings: string[];
}

/** Table 0211 values and the WHATWG encoding names Node's TextDecoder knows them by. */
const CHARSETS: Record<string, string> = {
  ASCII: 'utf-8', // a subset: bytes above 0x7F are checked below
  'ISO IR6': 'utf-8',
  // Read as Windows-1252, as WHATWG reads "iso-8859-1": the two differ only in 0x80-0x9F, C1 control
  // codes no name or result contains, where senders labelled 8859/1 put Windows-1252's ’ “ ” € Œ.
  '8859/1': 'windows-1252',
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'windows-1254', // WHATWG's ISO-8859-9 decoder
  '8859/15': 'iso-8859-15',
  'ISO IR14': 'shift_jis', // JIS X 0201 (half-width katakana, as in Shift_JIS)
  'ISO IR87': 'shift_jis', // JIS X 0208 as senders send it
  'ISO IR159': 'euc-jp',
  'GB 18030-2000': 'gb18030',
  'KS X 1001': 'euc-kr',
  'BIG-5': 'big5',
  'CNS 11643-1992': 'big5',
  UNICODE: 'utf-8',
  'UNICODE UTF-8': 'utf-8',
  'UNICODE UTF-16': 'utf-16le',
};

/** Single-byte character sets: bytes that are valid multi-byte UTF-8 under one of these are a mislabelled UTF-8 message. */
const SINGLE_BYTE = new Set(['windows-1252', 'iso-8859-2', 'iso-8859-3', 'iso-8859-4', 'iso-8859-5', 'iso-8859-6', 'iso-8859-7', 'iso-8859-8', 'windows-1254', 'iso-8859-15']);

export function decodeMessage(bytes: Buffer): DecodedMessage {
  const warnings: string[] = [];
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return checked(new TextDecoder('utf-16le').decode(bytes.subarray(2)), warnings);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return checked(new TextDecoder('utf-16be').decode(bytes.subarray(2)), warnings);
  // UTF-16 without a byte-order mark (MSH-18 UNICODE UTF-16 cannot be read before the encoding is known): "M\0S\0H\0".
  if (bytes[0] === 0x4d && bytes[1] === 0 && bytes[2] === 0x53 && bytes[3] === 0) return checked(new TextDecoder('utf-16le').decode(bytes), warnings);
  if (bytes[0] === 0 && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 0x53) return checked(new TextDecoder('utf-16be').decode(bytes), warnings);
  const declared = declaredCharset(bytes);
  let encoding = declared ? CHARSETS[declared.toUpperCase()] : undefined;
  if (declared && !encoding) {
    warnings.push(`MSH-18 character set "${declared}" is not one Tessera can decode: read as UTF-8`);
  } else if (encoding && !decodable(encoding)) {
    // A Node built with small ICU knows UTF-8, UTF-16 and Latin-1 only.
    warnings.push(`MSH-18 character set "${declared}" cannot be decoded by this Node build (${encoding}): read as UTF-8`);
    encoding = undefined;
  }
  if (encoding && encoding !== 'utf-8') {
    if (SINGLE_BYTE.has(encoding) && hasMultibyteUtf8(bytes) && strictUtf8(bytes) !== undefined) {
      warnings.push(`MSH-18 says ${declared} but the message is UTF-8 (its non-ASCII bytes are valid UTF-8 sequences): read as UTF-8`);
      return checked(strictUtf8(bytes) as string, warnings);
    }
    return checked(encoding === 'windows-1252' ? decodeWindows1252(bytes) : new TextDecoder(encoding).decode(bytes), warnings);
  }
  const utf8 = strictUtf8(bytes);
  if (utf8 !== undefined) {
    if (declared?.toUpperCase() === 'ASCII' && /[^\x00-\x7f]/.test(utf8)) warnings.push('MSH-18 says ASCII but the message has non-ASCII characters: read as UTF-8');
    return checked(utf8, warnings);
  }
  warnings.push(`the message is not valid UTF-8 and ${declared ? `MSH-18 says ${declared}` : 'names no character set (MSH-18)'}: read as Windows-1252 (a superset of ISO-8859-1); check names and text, and ask the sender to fill MSH-18`);
  return checked(decodeWindows1252(bytes), warnings);
}

/**
 * Windows-1252's 0x80-0x9F (the rest is ISO-8859-1). Our own table: Node built without full ICU decodes
 * "windows-1252" as Latin-1, leaving ’ as the control code U+0092. The five bytes the code page leaves
 * undefined stay as their C1 codes.
 */
const WINDOWS_1252_HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

export function decodeWindows1252(bytes: Buffer): string {
  const latin1 = bytes.toString('latin1');
  return latin1.replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_HIGH[c.charCodeAt(0) - 0x80]);
}

/** MSH-18's first repetition, read from the MSH segment's bytes (ASCII in every character set but UTF-16). */
function declaredCharset(bytes: Buffer): string | undefined {
  const head = bytes.subarray(0, 2048).toString('latin1').replace(/^\uFEFF|^\u00EF\u00BB\u00BF/, '').replace(/^[\s\u000b]+/, '');
  if (!head.startsWith('MSH') || head.length < 8) return undefined;
  const msh = head.split(/\r|\n/)[0];
  const fields = msh.split(msh[3]);
  const repetition = msh[5] ?? '~';
  const value = (fields[17] ?? '').split(repetition)[0].trim();
  return value || undefined;
}

function decodable(encoding: string): boolean {
  try {
    new TextDecoder(encoding);
    return true;
  } catch {
    return false;
  }
}

function strictUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function hasMultibyteUtf8(bytes: Buffer): boolean {
  return bytes.some((b) => b >= 0xc2 && b <= 0xf4);
}

/** A replacement character in the decoded text means bytes were lost: never without a warning. */
function checked(text: string, warnings: string[]): DecodedMessage {
  const out = text.replace(/^\uFEFF/, '');
  if (out.includes('\uFFFD')) warnings.push('the message contains U+FFFD replacement characters (bytes its character set does not define): the text around them may be wrong');
  return { text: out, warnings };
}

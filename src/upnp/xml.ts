import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { err, ok, type Err, type Result } from '../../machines/result.ts';

/** A parsed XML element: child elements by local name (namespace prefixes dropped). */
export type XmlElement = { readonly [name: string]: unknown };

/** Why a text is not XML we read. */
export interface XmlError {
  readonly code: 'BAD_XML';
  readonly message: string;
}

/** Parsed XML, or why it is not XML we read. */
export type XmlParse = Result<XmlElement, XmlError>;

const notXml = (message: string): Err<XmlError> => err({ code: 'BAD_XML', message });

// Real device descriptions nest root > device > deviceList > device > ... three or four deep;
// the bound keeps a hostile document from exhausting the stack.
const MAX_NESTED_TAGS = 64;

const parser = new XMLParser({
  ignoreAttributes: true,
  // UPnP documents use namespaces, but prefixes vary by vendor (s:, SOAP-ENV:, none): match local names.
  removeNSPrefix: true,
  // Values stay strings: "0012" and "1" are meaningful as written (ports are checked by the caller).
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  htmlEntities: false,
  // Always lists, so a description with one service and one with three read the same.
  isArray: (name) => name === 'device' || name === 'service',
  maxNestedTags: MAX_NESTED_TAGS,
});

/** Whether a value is a parsed element (not a text value or a list). */
export function isElement(value: unknown): value is XmlElement {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The text of a leaf child, or undefined when absent or not text. Empty elements read as ''. */
export function textOf(element: XmlElement, name: string): string | undefined {
  const value = Object.hasOwn(element, name) ? element[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** A child element, or undefined when absent or not an element. */
export function childOf(element: XmlElement, name: string): XmlElement | undefined {
  const value = Object.hasOwn(element, name) ? element[name] : undefined;
  return isElement(value) ? value : undefined;
}

/** A list child (see `isArray` above), keeping only its elements. */
export function listOf(element: XmlElement, name: string): XmlElement[] {
  const value = Object.hasOwn(element, name) ? element[name] : undefined;
  return Array.isArray(value) ? value.filter(isElement) : [];
}

/**
 * Parse a UPnP XML document (device description or SOAP envelope). Never throws: malformed XML,
 * a DOCTYPE (UPnP documents have none, and entity expansion is a known attack) or nesting deeper
 * than real documents reach are errors, not exceptions.
 */
export function parseXml(text: string): XmlParse {
  if (/<!DOCTYPE/i.test(text)) return notXml('it has a DOCTYPE, which UPnP documents never have');
  try {
    const valid = XMLValidator.validate(text);
    if (valid !== true) return notXml(`${valid.err.msg} (line ${valid.err.line})`);
    const value: unknown = parser.parse(text);
    if (!isElement(value)) return notXml('it has no root element');
    return ok(value);
  } catch (thrown) {
    return notXml(thrown instanceof Error ? thrown.message : String(thrown));
  }
}

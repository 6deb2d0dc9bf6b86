import fs from 'node:fs';
import readline from 'node:readline';
import { parse as parseCsvStream, CsvError, type Info } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import YAML, { LineCounter } from 'yaml';
import { NyckelError } from '../errors.ts';
import { importColumns, type ImportRow } from './import-rows.ts';

/**
 * The rows of an import file. CSV (a header row, then one user a line) and JSON Lines (one object a
 * line: `.jsonl`, `.ndjson`) are read as streams, so a file of any size takes little memory; a JSON
 * array is read whole (its elements' lines come from a YAML parse).
 */

const csvOptions = { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true } as const;

function csvHeader(record: string[]): string[] {
  const header = record.map((name) => name.trim().toLowerCase());
  const unknown = header.filter((name) => !(importColumns as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new NyckelError('invalid_input', `line 1: unknown column(s) ${unknown.join(', ')}; the columns are ${importColumns.join(', ')}`);
  if (!header.includes('email') && !header.includes('username'))
    throw new NyckelError('invalid_input', 'line 1: the header row has neither an email nor a username column');
  const duplicate = header.find((name, i) => header.indexOf(name) !== i);
  if (duplicate) throw new NyckelError('invalid_input', `line 1: the column ${duplicate} appears twice`);
  return header;
}

function csvRow(header: string[], record: string[], info: Pick<Info, 'lines'>): ImportRow {
  const fields: Record<string, unknown> = Object.fromEntries(header.map((name, i) => [name, record[i]]));
  // A row with too many or too few cells is reported, not guessed at.
  if (record.length !== header.length) {
    const hint =
      record.length > header.length && header.includes('password_hash') ? ' (a hash with commas, such as $argon2id$…m=…,t=…,p=…, must be quoted)' : '';
    fields[' cells'] = `has ${record.length} cells, the header has ${header.length}${hint}`;
  }
  // `lines` is the line the record ends on; a quoted cell may span lines, so count back.
  const spanned = record.reduce((sum, cell) => sum + (cell.match(/\n/g)?.length ?? 0), 0);
  return { line: info.lines - spanned, fields };
}

const notCsv = (error: unknown) => (error instanceof CsvError ? new NyckelError('invalid_input', `not valid CSV: ${error.message}`) : error);
const emptyCsv = () => new NyckelError('invalid_input', 'the file is empty (expected a header row: email,name,…)');

function parseCsvRows(content: string): ImportRow[] {
  let records: Array<{ record: string[]; info: Info }>;
  try {
    records = parseCsv(content, csvOptions) as unknown as typeof records;
  } catch (error) {
    throw notCsv(error);
  }
  if (records.length === 0) throw emptyCsv();
  const header = csvHeader(records[0].record);
  return records.slice(1).map(({ record, info }) => csvRow(header, record, info));
}

const asFields = (value: unknown): Record<string, unknown> =>
  value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { ' object': 'is not an object' };

/** The line each element of a JSON array starts on (JSON is YAML: its parser knows). */
export function elementLines(content: string, path: string[] = []): number[] {
  const lineCounter = new LineCounter();
  const document = YAML.parseDocument(content, { lineCounter });
  const node = path.length > 0 ? document.getIn(path, true) : document.contents;
  const items = YAML.isSeq(node) ? node.items : [];
  return items.map((item) => {
    const range = (item as { range?: [number, number, number] }).range;
    return range ? lineCounter.linePos(range[0]).line : 0;
  });
}

export function parseJson(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch (error) {
    throw new NyckelError('invalid_input', `not valid JSON: ${(error as Error).message}`);
  }
}

function parseJsonRows(content: string): ImportRow[] {
  const value = parseJson(content);
  if (!Array.isArray(value)) throw new NyckelError('invalid_input', 'the JSON file must be an array of objects, one per user');
  const lines = elementLines(content);
  return value.map((fields, index) => ({ line: lines[index] || index + 1, fields: asFields(fields) }));
}

const isJsonLines = (fileName: string) => /\.(jsonl|ndjson)$/i.test(fileName);

function parseJsonLines(content: string): ImportRow[] {
  return content.split('\n').flatMap((text, index) => (text.trim() ? [jsonLine(text, index + 1)] : []));
}

function jsonLine(text: string, line: number): ImportRow {
  try {
    return { line, fields: asFields(JSON.parse(text)) };
  } catch {
    return { line, fields: { ' object': 'is not valid JSON' } };
  }
}

/** Rows of a CSV, JSON or JSON Lines file; JSON when the name says so or the content starts with `[`. */
export function parseImportFile(content: string, fileName = ''): ImportRow[] {
  if (isJsonLines(fileName)) return parseJsonLines(content);
  const json = fileName.toLowerCase().endsWith('.json') || content.trimStart().startsWith('[');
  return json ? parseJsonRows(content) : parseCsvRows(content);
}

async function* streamCsv(file: string): AsyncGenerator<ImportRow> {
  const parser = fs.createReadStream(file).pipe(parseCsvStream(csvOptions));
  let header: string[] | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      if (!header) header = csvHeader(record);
      else yield csvRow(header, record, info);
    }
  } catch (error) {
    throw notCsv(error);
  }
  if (!header) throw emptyCsv();
}

async function* streamJsonLines(file: string): AsyncGenerator<ImportRow> {
  let line = 0;
  for await (const text of readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })) {
    line += 1;
    if (text.trim()) yield jsonLine(text, line);
  }
}

/** The rows of a file on disk, read as a stream when the format allows (CSV, JSON Lines). */
export async function* streamImportFile(file: string): AsyncGenerator<ImportRow> {
  if (isJsonLines(file)) yield* streamJsonLines(file);
  else if (file.toLowerCase().endsWith('.json') || (await firstCharacter(file)) === '[') yield* parseJsonRows(await fs.promises.readFile(file, 'utf8'));
  else yield* streamCsv(file);
}

async function firstCharacter(file: string): Promise<string> {
  const handle = await fs.promises.open(file);
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return buffer
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .trimStart()
      .charAt(0);
  } finally {
    await handle.close();
  }
}

/**
 * Rebuilds the command line an agent types into an interactive shell from its keystrokes, the
 * way readline (and a tty in canonical mode) would edit it, so the line can be decided when
 * Enter is pressed. What it cannot follow with certainty (tab completion, history, kill-ring
 * yanks, unknown escape sequences or control keys, bracketed paste, an overlong line) makes the
 * line *uncertain*: the caller must then treat it as unresolvable. Pure: no I/O.
 *
 * Supported editing: printable characters (inserted at the cursor), Backspace (DEL or ^H),
 * ^U (kill to start), ^W (kill the previous word, whitespace-delimited), ^K (kill to end),
 * ^A/^E and Home/End, ^B/^F and Left/Right arrows, Delete and ^D on a non-empty line,
 * ^L (redraw), ^C (abandons the line: it starts afresh, certain). Enter is CR or LF.
 */

export interface EnterSegment {
  readonly kind: 'enter';
  /** the key that ended the line, to forward when the line may run */
  readonly key: string;
  /** the rebuilt line */
  readonly line: string;
  /** false when the line could not be rebuilt with certainty */
  readonly certain: boolean;
  /** why it is uncertain */
  readonly reasons: readonly string[];
}

export interface DataSegment {
  readonly kind: 'data';
  /** keystrokes to forward as they are */
  readonly text: string;
}

export type EditorSegment = DataSegment | EnterSegment;

export interface LineEditorOptions {
  /** longest line followed (characters); longer lines are uncertain */
  readonly maxLine?: number;
}

const ESC = '\x1b';

/** CSI/SS3 finals and `~` codes the editor understands. */
const MOVES: Readonly<Record<string, 'left' | 'right' | 'home' | 'end' | 'delete'>> = {
  D: 'left',
  C: 'right',
  H: 'home',
  F: 'end',
  '1~': 'home',
  '7~': 'home',
  '4~': 'end',
  '8~': 'end',
  '3~': 'delete',
};

const HISTORY: ReadonlySet<string> = new Set(['A', 'B', '5~', '6~']);

export class LineEditor {
  readonly #maxLine: number;
  #chars: string[] = [];
  #cursor = 0;
  #reasons = new Set<string>();
  /** an escape sequence being read (starts with ESC) */
  #escape = '';

  constructor(options: LineEditorOptions = {}) {
    this.#maxLine = options.maxLine ?? 16 * 1024;
  }

  /** The line as rebuilt so far (for tests and diagnostics). */
  get line(): string {
    return this.#chars.join('');
  }

  get certain(): boolean {
    return this.#reasons.size === 0;
  }

  #uncertain(reason: string): void {
    this.#reasons.add(reason);
  }

  #reset(): void {
    this.#chars = [];
    this.#cursor = 0;
    this.#reasons = new Set();
    this.#escape = '';
  }

  #insert(ch: string): void {
    if (this.#chars.length >= this.#maxLine) {
      this.#uncertain('line too long');
      return;
    }
    this.#chars.splice(this.#cursor, 0, ch);
    this.#cursor++;
  }

  #move(what: 'left' | 'right' | 'home' | 'end' | 'delete'): void {
    if (what === 'left') this.#cursor = Math.max(0, this.#cursor - 1);
    else if (what === 'right') this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
    else if (what === 'home') this.#cursor = 0;
    else if (what === 'end') this.#cursor = this.#chars.length;
    else if (this.#cursor < this.#chars.length) this.#chars.splice(this.#cursor, 1);
  }

  #killWord(): void {
    let i = this.#cursor;
    while (i > 0 && /\s/.test(this.#chars[i - 1] ?? '')) i--;
    while (i > 0 && !/\s/.test(this.#chars[i - 1] ?? '')) i--;
    this.#chars.splice(i, this.#cursor - i);
    this.#cursor = i;
  }

  /** Feeds one complete escape sequence. */
  #escapeSequence(seq: string): void {
    // ESC [ params final, or ESC O final
    const body = seq.slice(2);
    if (seq[1] === 'O' && body.length === 1) {
      const move = MOVES[body];
      if (move !== undefined && move !== 'delete') this.#move(move);
      else if (HISTORY.has(body)) this.#uncertain('history');
      else this.#uncertain(`escape sequence ${JSON.stringify(seq)}`);
      return;
    }
    if (seq[1] === '[') {
      const move = MOVES[body];
      if (move !== undefined) this.#move(move);
      else if (HISTORY.has(body)) this.#uncertain('history');
      else if (body === '200~' || body === '201~') this.#uncertain('bracketed paste');
      else this.#uncertain(`escape sequence ${JSON.stringify(seq)}`);
      return;
    }
    this.#uncertain(`escape sequence ${JSON.stringify(seq)}`);
  }

  /** Reads one (non-control) character of an escape sequence. */
  #escapeChar(ch: string): void {
    this.#escape += ch;
    const s = this.#escape;
    if (s.length === 2) {
      if (ch === '[' || ch === 'O') return;
      // ESC + key: a meta binding (word moves, history, ...): not followed
      this.#escape = '';
      this.#escapeSequence(s);
      return;
    }
    if (s[1] === 'O') {
      this.#escape = '';
      this.#escapeSequence(s);
      return;
    }
    // CSI: parameter/intermediate bytes 0x20-0x3f, final byte 0x40-0x7e
    const c = ch.charCodeAt(0);
    if (c >= 0x40 && c <= 0x7e) {
      this.#escape = '';
      this.#escapeSequence(s);
    } else if (c > 0x7e || s.length > 16) {
      this.#escape = '';
      this.#uncertain(`escape sequence ${JSON.stringify(s)}`);
    }
  }

  /**
   * Feeds keystrokes (decoded text). Returns the segments in order: keystrokes to forward, and
   * each Enter with the line it ends. After an Enter the editor starts a new, empty line.
   */
  push(text: string): EditorSegment[] {
    const out: EditorSegment[] = [];
    let from = 0;
    let i = 0;
    for (const ch of text) {
      const at = i;
      i += ch.length;
      if (this.#escape !== '') {
        if (ch.charCodeAt(0) >= 0x20) {
          this.#escapeChar(ch);
          continue;
        }
        // a control key (Enter among them) inside an escape sequence ends it, and counts itself
        this.#uncertain(`escape sequence ${JSON.stringify(this.#escape)}`);
        this.#escape = '';
      }
      switch (ch) {
        case '\r':
        case '\n': {
          if (at > from) out.push({ kind: 'data', text: text.slice(from, at) });
          from = i;
          out.push({ kind: 'enter', key: ch, line: this.line, certain: this.certain, reasons: [...this.#reasons] });
          this.#reset();
          break;
        }
        case ESC:
          this.#escape = ESC;
          break;
        case '\x7f':
        case '\b':
          if (this.#cursor > 0) {
            this.#chars.splice(this.#cursor - 1, 1);
            this.#cursor--;
          }
          break;
        case '\x15': // ^U
          this.#chars.splice(0, this.#cursor);
          this.#cursor = 0;
          break;
        case '\x17': // ^W
          this.#killWord();
          break;
        case '\x0b': // ^K
          this.#chars.splice(this.#cursor);
          break;
        case '\x01':
          this.#move('home');
          break;
        case '\x05':
          this.#move('end');
          break;
        case '\x02':
          this.#move('left');
          break;
        case '\x06':
          this.#move('right');
          break;
        case '\x04': // ^D: delete at the cursor; EOF on an empty line
          if (this.#chars.length > 0) this.#move('delete');
          break;
        case '\x0c': // ^L: redraw
          break;
        case '\x03': // ^C: the line is abandoned
          this.#reset();
          break;
        case '\t':
          this.#uncertain('tab completion');
          break;
        default: {
          const c = ch.codePointAt(0) ?? 0;
          if (c < 0x20 || (c >= 0x80 && c < 0xa0)) this.#uncertain(`control key 0x${c.toString(16).padStart(2, '0')}`);
          else this.#insert(ch);
        }
      }
    }
    if (from < text.length) out.push({ kind: 'data', text: text.slice(from) });
    return out;
  }
}
